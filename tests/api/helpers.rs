//! The test harness: a fresh database per test, on SQLite or PostgreSQL, the
//! real router driven in process, and a real socket where concurrency matters.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use test_analytics::config::{Config, Durability};
use test_analytics::db::Database;
use test_analytics::state::AppState;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower::ServiceExt;

#[path = "../common/keepalive.rs"]
mod keepalive;
#[path = "../common/postgres.rs"]
mod postgres;
#[path = "../common/wire.rs"]
mod wire;

pub use keepalive::WireClient;
use postgres::TestDatabase;
pub use wire::send_over_socket;

/// Which database a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each listed test function,
/// in modules `sqlite` and `postgres`. Each function takes a [`Backend`].
/// Invoke it once per test module, listing all of that module's tests.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Starts a test: `None` (and a notice on stderr) when the backend is
/// PostgreSQL and no server is reachable, unless `TEST_REQUIRE_POSTGRES=1`.
#[macro_export]
macro_rules! app_or_skip {
    ($backend:expr) => {
        match $crate::helpers::TestApp::new($backend).await {
            Some(app) => app,
            None => return,
        }
    };
}

/// A service on its own fresh database.
pub struct TestApp {
    pub backend: Backend,
    pub state: AppState,
    pub router: Router,
    /// Keeps the temporary SQLite directory, or drops the PostgreSQL database.
    _scratch: Scratch,
}

#[expect(
    dead_code,
    reason = "held only so that its Drop cleans up after the test"
)]
enum Scratch {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
}

/// The configuration a test server runs with: defaults, a given database.
pub fn test_config(database_path: PathBuf, database_url: Option<String>) -> Config {
    Config {
        port: 0,
        host: [127, 0, 0, 1].into(),
        database_path,
        database_url,
        log_level: "info".to_owned(),
        admin_token: None,
        body_limit_bytes: 1024 * 1024,
        request_timeout_secs: 15,
        header_read_timeout_secs: 10,
        shutdown_timeout_secs: 10,
        sqlite_synchronous: Durability::Full,
        database_busy_timeout_ms: 5000,
        command: None,
    }
}

impl TestApp {
    /// A service on a fresh database of `backend`, with default settings.
    pub async fn new(backend: Backend) -> Option<Self> {
        Self::with_config(backend, |_| {}).await
    }

    /// A service on a fresh database, with settings adjusted by `configure`.
    pub async fn with_config(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
    ) -> Option<Self> {
        let (mut config, scratch) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("create a temporary directory");
                let config = test_config(dir.path().join("test.db"), None);
                (config, Scratch::Sqlite(dir))
            }
            Backend::Postgres => {
                let database = TestDatabase::create().await?;
                let config = test_config(PathBuf::new(), Some(database.url.clone()));
                (config, Scratch::Postgres(database))
            }
        };
        configure(&mut config);

        let db = Database::connect(&config)
            .await
            .expect("open and migrate the test database");
        let state = AppState::new(db, config);
        let router = test_analytics::app(state.clone());
        Some(Self {
            backend,
            state,
            router,
            _scratch: scratch,
        })
    }

    /// The SQLite file, for tests that inspect or damage it.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match self.backend {
            Backend::Sqlite => Some(self.state.config.database_path.clone()),
            Backend::Postgres => None,
        }
    }

    /// Sends one request through the router, in process.
    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        TestResponse::read(response).await
    }

    /// `method path` with optional JSON body and extra headers.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(path);
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
        self.send(builder.body(body).expect("a valid request"))
            .await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: Value) -> TestResponse {
        self.request(Method::POST, path, &[], Some(body)).await
    }

    /// `method path` as the admin: with `Authorization: Bearer <ADMIN_TOKEN>`
    /// when the app is configured with one, without any header otherwise.
    pub async fn admin_request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let bearer = self
            .state
            .config
            .admin_token
            .as_ref()
            .map(|token| format!("Bearer {}", token.expose()));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|bearer| ("authorization", bearer))
            .into_iter()
            .collect();
        self.request(method, path, &headers, body).await
    }

    /// `POST /orgs`, as the admin.
    pub async fn create_org(&self, name: &str) -> TestResponse {
        self.admin_request(Method::POST, "/orgs", Some(json!({ "name": name })))
            .await
    }

    /// `POST /projects`, as the admin.
    pub async fn create_project(&self, organization_id: &str, name: &str) -> TestResponse {
        let body = json!({ "organization_id": organization_id, "name": name });
        self.admin_request(Method::POST, "/projects", Some(body))
            .await
    }

    /// `POST /tokens`, as the admin.
    pub async fn create_token(&self, project_id: &str) -> TestResponse {
        let body = json!({ "project_id": project_id });
        self.admin_request(Method::POST, "/tokens", Some(body))
            .await
    }

    /// `GET /projects/{project_id}/tokens`, as the admin.
    pub async fn list_tokens(&self, project_id: &str) -> TestResponse {
        let path = format!("/projects/{project_id}/tokens");
        self.admin_request(Method::GET, &path, None).await
    }

    /// `DELETE /tokens/{token_id}`, as the admin.
    pub async fn revoke_token(&self, token_id: &str) -> TestResponse {
        let path = format!("/tokens/{token_id}");
        self.admin_request(Method::DELETE, &path, None).await
    }

    /// `GET path` with no headers.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path, &[], None).await
    }

    /// `POST /ingest` with a bearer token.
    pub async fn ingest(&self, token: &str, body: Value) -> TestResponse {
        let bearer = format!("Bearer {token}");
        self.request(
            Method::POST,
            "/ingest",
            &[("authorization", &bearer)],
            Some(body),
        )
        .await
    }

    /// An organization, a project in it and a token for it, created through
    /// the API. Names are made unique so several projects can coexist.
    pub async fn create_project_with_token(&self) -> ProjectFixture {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let org = self.create_org(&format!("org-{suffix}")).await;
        assert_eq!(org.status, StatusCode::CREATED, "{:?}", org.body);
        let organization_id = org.str("id").to_owned();

        let project = self.create_project(&organization_id, "project").await;
        assert_eq!(project.status, StatusCode::CREATED, "{:?}", project.body);
        let project_id = project.str("id").to_owned();

        let token = self.create_token(&project_id).await;
        assert_eq!(token.status, StatusCode::CREATED, "{:?}", token.body);
        ProjectFixture {
            organization_id,
            project_id,
            token_id: token.str("id").to_owned(),
            token: token.str("token").to_owned(),
        }
    }

    /// Binds `127.0.0.1:0` and serves the app there until the handle drops.
    pub async fn spawn_server(&self) -> ServerHandle {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let address = listener.local_addr().expect("a bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let state = self.state.clone();
        let task = tokio::spawn(async move {
            test_analytics::serve(listener, state, async move {
                let _ = stopped.await;
            })
            .await
        });
        ServerHandle {
            address,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The number of rows in a table, straight from the database.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        match &self.state.db {
            Database::Sqlite(db) => sqlx::query_scalar(sql).fetch_one(&db.reader).await,
            Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .expect("count rows")
    }

    /// Rows of a query whose columns are all `CAST(.. AS TEXT)` (or NULL),
    /// so that one SQL text reads the same on both backends.
    pub async fn text_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        use sqlx::Row;

        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.state.db {
            Database::Sqlite(db) => sqlx::query(sql)
                .fetch_all(&db.reader)
                .await
                .expect("query the test database")
                .iter()
                .map(|row| (0..row.len()).map(|i| row.get(i)).collect())
                .collect(),
            Database::Postgres(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .expect("query the test database")
                .iter()
                .map(|row| (0..row.len()).map(|i| row.get(i)).collect())
                .collect(),
        }
    }

    /// Runs a statement straight on the database, bypassing the API.
    pub async fn execute(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.state.db {
            Database::Sqlite(db) => sqlx::query(sql).execute(&db.writer).await.map(drop),
            Database::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        }
        .expect("execute on the test database");
    }
}

/// Project ids and a working token.
#[derive(Clone, Debug)]
pub struct ProjectFixture {
    pub organization_id: String,
    pub project_id: String,
    pub token_id: String,
    pub token: String,
}

/// A response with its body read and, when it is JSON, parsed.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl TestResponse {
    async fn read(response: axum::response::Response) -> Self {
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("read the body").to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Self {
            status: parts.status,
            headers: parts.headers,
            text,
            body,
        }
    }

    /// A string field of the JSON body; panics with the body if absent.
    pub fn str(&self, field: &str) -> &str {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string {field} in {}", self.text))
    }

    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the error envelope of SPEC section 4: status, code, message,
    /// a request id matching `X-Request-Id`, and `details`.
    pub fn assert_error(&self, status: StatusCode, code: &str, message: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        let error = &self.body["error"];
        assert_eq!(error["code"], code, "{}", self.text);
        assert_eq!(error["message"], message, "{}", self.text);
        let request_id = error["request_id"].as_str().expect("a request_id");
        assert_eq!(
            Some(request_id),
            self.header("x-request-id"),
            "{}",
            self.text
        );
        assert!(error["details"].is_array(), "{}", self.text);
        assert_eq!(self.header("content-type"), Some("application/json"));
    }

    /// The fields named in a `400`'s `details`, in order.
    pub fn detail_fields(&self) -> Vec<String> {
        self.body["error"]["details"]
            .as_array()
            .map(|details| {
                details
                    .iter()
                    .map(|d| d["field"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A server on a real socket; stops gracefully when dropped or stopped.
pub struct ServerHandle {
    pub address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl ServerHandle {
    /// Signals shutdown and waits for the drain to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A valid ingest body for `run_id`.
pub fn run_body(run_id: &str) -> Value {
    json!({
        "run_id": run_id,
        "status": "passed",
        "duration_ms": 1234,
        "timestamp": "2026-01-12T10:10:00Z",
    })
}
