//! A kept-alive HTTP/1.1 connection over real TCP, for tests that send many
//! requests per client. Include it beside `wire.rs`, whose response type it
//! returns.

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::net::TcpStream;

use super::wire::WireResponse;

/// One kept-alive HTTP/1.1 connection, for clients that send many requests,
/// as a CI runner pushing results in a loop would.
pub struct WireClient {
    address: SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<Body>,
}

impl WireClient {
    /// Opens a connection to `address`.
    pub async fn connect(
        address: SocketAddr,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let stream = TcpStream::connect(address).await?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Self { address, sender })
    }

    /// Sends one request on this connection and reads the whole response.
    /// Fails if the connection was closed; open a new one to go on.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<WireResponse, Box<dyn std::error::Error + Send + Sync>> {
        self.sender.ready().await?;
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.address.to_string());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = match body {
            Some(json) => {
                builder = builder.header("content-type", "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let response = self.sender.send_request(builder.body(body)?).await?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await?.to_bytes();
        Ok(WireResponse {
            status: parts.status,
            headers: parts.headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }
}
