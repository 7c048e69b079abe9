//! Helpers of the end-to-end tests: runtimes with test limits, batches from lines, and the path
//! of the real `sluice` binary.

pub mod browser;
pub mod kafka_broker;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use sluice::batch::RecordBatch;
use sluice::runtime::{CallLimits, LoadedModule, Runtime, RuntimeConfig};

/// A runtime with the default settings but short call deadlines, so hostile tests end quickly.
pub fn runtime() -> Runtime {
    Runtime::new(config()).expect("the runtime starts")
}

/// The test settings: 200 ms per call, 32 MiB of memory, 1 MiB of output.
pub fn config() -> RuntimeConfig {
    RuntimeConfig {
        default_limits: CallLimits {
            cpu_time_ms_max: 200,
            memory_bytes_max: 32 << 20,
            output_bytes_max: 1 << 20,
            ..CallLimits::default()
        },
        ..RuntimeConfig::default()
    }
}

/// The example module, loaded.
pub fn examples(rt: &Runtime) -> Arc<LoadedModule> {
    rt.load("examples@1", sluice_udf_artifacts::EXAMPLES)
        .expect("the example module loads")
}

/// The hostile module, loaded.
pub fn hostile(rt: &Runtime) -> Arc<LoadedModule> {
    rt.load("hostile@1", sluice_udf_artifacts::HOSTILE)
        .expect("the hostile module loads")
}

/// `wasm` with a custom section named `name` appended: the same module, other bytes (a new
/// version where identical bytes would give the existing one back).
pub fn with_custom_section(wasm: &[u8], name: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0);
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The seed's second scenario (ERROR lines per minute: wasm filter and map, native sum by key)
/// over `source`, into `sink`, in batches of `batch_interval`.
pub fn errors_per_minute(
    source: serde_json::Value,
    sink: serde_json::Value,
    batch_interval: &str,
) -> serde_json::Value {
    serde_json::json!({
        "name": "ERROR lines per minute",
        "batch_interval": batch_interval,
        "modules": { "examples": "builtin:examples" },
        "source": source,
        "stages": [
            { "filter": { "udf": "examples@1", "function": "is_error" } },
            { "map": { "udf": "examples@1", "function": "minute_bucket", "value": "i64" } },
            { "reduce_by_key": { "builtin": "sum" } }
        ],
        "sink": sink
    })
}

/// `sluice run JOB_FILE` in `dir`, warnings on a piped stderr, stdout discarded.
pub fn spawn_run(dir: &std::path::Path, job_file: &str) -> std::process::Child {
    Command::new(sluice_bin())
        .current_dir(dir)
        .args(["run", job_file])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sluice runs")
}

/// CPU time (user + system) a process has used so far, in seconds.
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, r)| r.split(' ').collect())
        .unwrap_or_default();
    // SAFETY: sysconf with a valid name has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let at = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (at(11) + at(12)) / tick
}

/// The example module with other bytes, for a second version of it.
pub fn examples_v2() -> Vec<u8> {
    with_custom_section(sluice_udf_artifacts::EXAMPLES, "sluice-test-v2")
}

/// A batch of unkeyed records, one per line, timestamps 0, 1, 2...
pub fn batch(lines: &[&str]) -> RecordBatch {
    let mut b = RecordBatch::new();
    for (i, l) in lines.iter().enumerate() {
        b.push(None, l.as_bytes(), i as i64);
    }
    b
}

/// The `sluice` binary of this build, brought up to date once per test process (`cargo test`
/// builds a package's binaries only for that package's own integration tests, and these live in
/// another package; without this, a stale binary could answer).
pub fn sluice_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("the test knows its path");
            // Tests run from <target>/<profile>/deps, the package's binaries from <profile>.
            let parent = exe.parent().expect("a directory");
            let profile_dir = if parent.file_name().is_some_and(|n| n == "deps") {
                parent.parent().expect("<target>/<profile>")
            } else {
                parent
            };
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "--quiet", "-p", "sluice", "--bin", "sluice"]);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            if let Some(target) = profile_dir.parent() {
                cmd.env("CARGO_TARGET_DIR", target);
            }
            let status = cmd.status().expect("cargo runs");
            assert!(status.success(), "building the sluice binary failed");
            profile_dir.join(format!("sluice{}", std::env::consts::EXE_SUFFIX))
        })
        .clone()
}

/// The repository's root (for example jobs and data).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What a finished `sluice` command printed.
#[derive(Debug)]
pub struct Finished {
    /// Whether it exited 0.
    pub success: bool,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

/// Runs `sluice ARGS...` to completion (killed after `timeout_s` seconds).
pub fn sluice(args: &[&str], timeout_s: u64) -> Finished {
    let mut child = Command::new(sluice_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sluice starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout_s);
    loop {
        if child.try_wait().expect("wait works").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    Finished {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Output records of a `jsonl` sink: `(batch, key, value)`.
pub fn jsonl_records(stdout: &str) -> Vec<(u64, Option<String>, serde_json::Value)> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"));
            (
                v["batch"].as_u64().unwrap(),
                v["key"].as_str().map(str::to_owned),
                v["value"].clone(),
            )
        })
        .collect()
}
