//! The real binary as a child process: started on a free port, its JSON log
//! lines collected, stopped by signal. Used by the suites that must see what
//! only a process shows: start-up, signals, crashes, several instances.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a server may take to print its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `test-analytics` process.
pub struct ServerProcess {
    child: Child,
    /// Where it listens (it binds port 0 on 127.0.0.1).
    pub address: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts the binary with `env` on top of a clean configuration and waits
    /// until it logs the address it is listening on.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_test-analytics"));
        for variable in [
            "PORT",
            "HOST",
            "DATABASE_PATH",
            "DATABASE_URL",
            "LOG_LEVEL",
            "ADMIN_TOKEN",
        ] {
            command.env_remove(variable);
        }
        command.env("PORT", "0").env("HOST", "127.0.0.1");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the test-analytics binary");

        let lines = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = listening_address(&line) {
                    let _ = address_tx.send(address);
                }
                collected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line);
            }
        });

        let address = match address_rx.recv_timeout(START_TIMEOUT) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = lines.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                panic!("the server did not report a listening address; its log:\n{log}");
            }
        };
        Self {
            child,
            address,
            lines,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, as an orchestrator stopping the service would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Kills the process with SIGKILL: no drain, no flush, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Every line written to stdout so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every stdout line so far, parsed; panics on a line that is not JSON.
    pub fn log_records(&self) -> Vec<Value> {
        self.log_lines()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
            .collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

fn listening_address(line: &str) -> Option<SocketAddr> {
    let record: Value = serde_json::from_str(line).ok()?;
    if record["message"] != "listening" {
        return None;
    }
    record["address"].as_str()?.parse().ok()
}
