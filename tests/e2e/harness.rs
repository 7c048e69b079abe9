//! The harness of the server tests: the real `sluice serve` on loopback with a real SQLite
//! file in a scratch data directory, and small helpers to drive it over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_tests::sluice_bin;

/// A running server, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The admin token.
    pub admin: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Sends SIGTERM, waits for a clean exit, and hands back the data directory.
    pub fn terminate(self) -> tempfile::TempDir {
        let (dir, exit, _) = self.signal(libc::SIGTERM);
        assert!(exit.success(), "the server exits cleanly on SIGTERM: {exit:?}");
        dir
    }

    /// Sends `signal`, waits (at most 30 s) for the process to end; the data directory, how it
    /// ended and how long that took.
    pub fn signal(mut self, signal: i32) -> (tempfile::TempDir, std::process::ExitStatus, Duration) {
        let t = Instant::now();
        // SAFETY: kill(2) with the pid of our own child process and a valid signal number.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(sent, 0, "the signal could not be sent");
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the server did not exit within 30 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = t.elapsed();
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        (dir, exit, took)
    }

    /// Waits (at most `timeout`) for the process to exit by itself: how it ended, and the data
    /// directory; `Err(self)` if it is still running.
    pub fn wait_exit(mut self, timeout: Duration) -> Result<(std::process::ExitStatus, tempfile::TempDir), Server> {
        let t = Instant::now();
        while t.elapsed() < timeout {
            if let Some(exit) = self.child.try_wait().unwrap() {
                let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
                return Ok((exit, dir));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(self)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The data directory.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A metric's value from `/metrics` (the first line starting with `prefix`).
    pub fn metric(&self, prefix: &str) -> Option<f64> {
        let (_, text) = call("GET", &self.url("/metrics"), Some(&self.admin), None);
        text.as_str()?
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start() -> Server {
    start_at(tempfile::tempdir().unwrap())
}

/// A server on an existing data directory.
pub fn start_at(dir: tempfile::TempDir) -> Server {
    start_with(dir, &[])
}

/// A server with more command-line options.
pub fn start_with(dir: tempfile::TempDir, extra: &[&str]) -> Server {
    try_start(dir, extra, &[]).unwrap_or_else(|(e, _)| panic!("the server did not start: {e}"))
}

/// A server with more options and environment; `Err` (with the data directory) if it exits
/// before it listens.
pub fn try_start(
    dir: tempfile::TempDir,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Result<Server, (String, tempfile::TempDir)> {
    let mut child = Command::new(sluice_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(extra)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.strip_prefix("sluice is listening on ") {
                    break rest.split_whitespace().next().unwrap().to_owned();
                }
            }
            _ => {
                let exit = child.wait().unwrap();
                return Err((format!("the server ended before it listened: {exit:?}"), dir));
            }
        }
    };
    // Keep reading what the server prints, so its stdout never closes under it.
    std::thread::spawn(move || lines.for_each(drop));
    let admin = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    Ok(Server {
        child,
        base,
        admin,
        _dir: dir,
    })
}

/// Waits (at most `timeout`) until `f` gives `Some`.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A new tenant: its id and its token.
pub fn new_tenant_id(s: &Server, name: &str) -> (i64, String) {
    let (status, body) = call(
        "POST",
        &s.url("/api/v1/tenants"),
        Some(&s.admin),
        Some(("application/json", json!({ "name": name }).to_string().into_bytes())),
    );
    assert_eq!(status, 201, "{body}");
    (
        body["tenant"]["id"].as_i64().unwrap(),
        body["token"].as_str().unwrap().to_owned(),
    )
}

/// Sets some quotas of a tenant (admin).
pub fn set_quotas(s: &Server, tenant_id: i64, quotas: Value) {
    let (status, body) = call(
        "PATCH",
        &s.url(&format!("/api/v1/tenants/{tenant_id}")),
        Some(&s.admin),
        Some(("application/json", quotas.to_string().into_bytes())),
    );
    assert_eq!(status, 200, "{body}");
}

/// Creates a job from `spec` and starts it; its id.
pub fn create_and_start(s: &Server, token: &str, spec: &Value) -> i64 {
    let (status, job) = post_spec(s, "/api/v1/jobs", token, spec);
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_i64().unwrap();
    let (status, started) = call("POST", &s.url(&format!("/api/v1/jobs/{id}/start")), Some(token), None);
    assert_eq!(status, 200, "{started}");
    id
}

/// A job as the API shows it.
pub fn job(s: &Server, token: &str, id: i64) -> Value {
    call("GET", &s.url(&format!("/api/v1/jobs/{id}")), Some(token), None).1
}

/// Waits (at most `timeout`) until job `id` has `status`; the job as it is then.
pub fn wait_status(s: &Server, token: &str, id: i64, status: &str, timeout: Duration) -> Value {
    eventually(timeout, || Some(job(s, token, id)).filter(|j| j["status"] == status))
        .unwrap_or_else(|| panic!("job {id} never became {status}: {}", job(s, token, id)))
}

/// A route to try: method, path, body (content type and bytes).
pub type Route<'a> = (&'a str, String, Option<(&'a str, Vec<u8>)>);

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// `(status, JSON body or the raw text as a JSON string)`.
pub fn call(method: &str, url: &str, token: Option<&str>, body: Option<(&str, Vec<u8>)>) -> (u16, Value) {
    let a = agent();
    let mut resp = match (method, body) {
        ("GET", _) => {
            let mut r = a.get(url);
            if let Some(t) = token {
                r = r.header("Authorization", &format!("Bearer {t}"));
            }
            r.call()
        }
        ("DELETE", _) => {
            let mut r = a.delete(url);
            if let Some(t) = token {
                r = r.header("Authorization", &format!("Bearer {t}"));
            }
            r.call()
        }
        ("PATCH", body) => {
            let mut r = a.patch(url);
            if let Some(t) = token {
                r = r.header("Authorization", &format!("Bearer {t}"));
            }
            let (ct, bytes) = body.unwrap_or(("application/json", Vec::new()));
            r.header("Content-Type", ct).send(&bytes[..])
        }
        (_, body) => {
            let mut r = a.post(url);
            if let Some(t) = token {
                r = r.header("Authorization", &format!("Bearer {t}"));
            }
            let (ct, bytes) = body.unwrap_or(("application/json", Vec::new()));
            r.header("Content-Type", ct).send(&bytes[..])
        }
    }
    .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

pub fn new_tenant(s: &Server, name: &str) -> String {
    let (status, body) = call(
        "POST",
        &format!("{}/api/v1/tenants", s.base),
        Some(&s.admin),
        Some(("application/json", json!({ "name": name }).to_string().into_bytes())),
    );
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

pub fn upload(s: &Server, token: &str, name: &str, wasm: &[u8]) -> (u16, Value) {
    call(
        "POST",
        &format!("{}/api/v1/udfs/{name}", s.base),
        Some(token),
        Some(("application/wasm", wasm.to_vec())),
    )
}

pub fn code(v: &Value) -> &str {
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {v}"))
}

pub fn post_spec(s: &Server, path: &str, token: &str, spec: &Value) -> (u16, Value) {
    call(
        "POST",
        &format!("{}{path}", s.base),
        Some(token),
        Some(("application/json", spec.to_string().into_bytes())),
    )
}
