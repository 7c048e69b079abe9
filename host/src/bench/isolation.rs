//! `sluice bench --isolation`: what one tenant does to another on a real server (this binary's
//! `serve`, on a scratch data directory, driven over loopback): a neighbour job's batch
//! processing time p50/p99 alone and while another tenant runs CPU-bound UDF calls near its CPU
//! limit back to back, as a ratio measured in one run; and the server's resident memory with
//! 100 idle jobs running.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// A server of this binary on a scratch directory, killed on drop.
pub(super) struct Server {
    child: Child,
    pub(super) base: String,
    admin: String,
    dir: std::path::PathBuf,
    agent: ureq::Agent,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    pub(super) fn start() -> Result<Server> {
        let dir = std::env::temp_dir().join(format!("sluice-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut child = Command::new(std::env::current_exe()?)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let base = loop {
            let line = lines.next().context("the server ended before it listened")??;
            if let Some(rest) = line.strip_prefix("sluice is listening on ") {
                break rest.split_whitespace().next().unwrap_or_default().to_owned();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        let admin = std::fs::read_to_string(dir.join("admin-token"))?;
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Ok(Server {
            child,
            base,
            admin,
            dir,
            agent,
        })
    }

    pub(super) fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {token}");
        let mut resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call()?,
            ("PATCH", Some((ct, b))) => self
                .agent
                .patch(&url)
                .header("Authorization", &auth)
                .header("Content-Type", ct)
                .send(&b[..])?,
            (_, body) => {
                let (ct, b) = body.unwrap_or(("application/json", Vec::new()));
                self.agent
                    .post(&url)
                    .header("Authorization", &auth)
                    .header("Content-Type", ct)
                    .send(&b[..])?
            }
        };
        let status = resp.status().as_u16();
        let bytes = resp.body_mut().with_config().limit(64 << 20).read_to_vec()?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    pub(super) fn ok(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Result<Value> {
        let (status, v) = self.call(
            method,
            path,
            token,
            body.map(|b| ("application/json", b.to_string().into_bytes())),
        )?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: {status} {v}");
        }
        Ok(v)
    }

    pub(super) fn tenant(&self, name: &str, quotas: Value) -> Result<String> {
        let t = self.ok("POST", "/api/v1/tenants", &self.admin, Some(json!({ "name": name })))?;
        let id = t["tenant"]["id"].as_i64().unwrap_or_default();
        self.ok("PATCH", &format!("/api/v1/tenants/{id}"), &self.admin, Some(quotas))?;
        Ok(t["token"].as_str().unwrap_or_default().to_owned())
    }

    pub(super) fn upload(&self, token: &str, name: &str, wasm: &[u8]) -> Result<()> {
        let (status, v) = self.call(
            "POST",
            &format!("/api/v1/udfs/{name}"),
            token,
            Some(("application/wasm", wasm.to_vec())),
        )?;
        if status != 201 {
            bail!("upload {name}: {status} {v}");
        }
        Ok(())
    }

    pub(super) fn job(&self, token: &str, spec: Value) -> Result<i64> {
        let j = self.ok("POST", "/api/v1/jobs", token, Some(spec))?;
        let id = j["id"].as_i64().unwrap_or_default();
        self.ok("POST", &format!("/api/v1/jobs/{id}/start"), token, None)?;
        Ok(id)
    }

    pub(super) fn batches(&self, token: &str, id: i64) -> Result<Vec<Value>> {
        Ok(self
            .ok("GET", &format!("/api/v1/jobs/{id}/batches"), token, None)?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// The server's process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn rss_mib(&self) -> Result<f64> {
        let url = format!("{}/metrics", self.base);
        let mut resp = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.admin))
            .call()?;
        let text = resp.body_mut().read_to_string()?;
        let bytes: f64 = text
            .lines()
            .find(|l| l.starts_with("process_resident_memory_bytes "))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .context("no RSS in /metrics")?;
        Ok(bytes / (1 << 20) as f64)
    }
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (0.0, 0.0);
    }
    (super::percentile(&v, 0.5), super::percentile(&v, 0.99))
}

/// Processing times of the batches of job `id` after batch `after`, for `span`.
fn processing_after(s: &Server, token: &str, id: i64, after: u64, span: Duration) -> Result<(Vec<f64>, u64)> {
    std::thread::sleep(span);
    let batches = s.batches(token, id)?;
    let last = batches.last().and_then(|b| b["batch_id"].as_u64()).unwrap_or(after);
    let times = batches
        .iter()
        .filter(|b| b["batch_id"].as_u64().is_some_and(|n| n > after))
        .filter_map(|b| b["processing_ms"].as_f64())
        .collect();
    Ok((times, last))
}

/// What compiling in a child process costs: the example module checked in this process and in
/// a child, median of `n` each (`check` compiles every time: it keeps nothing).
fn compile_cost(n: usize) -> Result<(f64, f64)> {
    use crate::runtime::{CompilerMode, Runtime, RuntimeConfig};
    let mut medians = Vec::new();
    for compiler in [
        CompilerMode::InProcess,
        CompilerMode::ChildProcess {
            exe: std::env::current_exe()?,
            time_ms_max: 60_000,
            memory_bytes_max: 2 << 30,
        },
    ] {
        let runtime = Runtime::new(RuntimeConfig {
            compiler,
            ..RuntimeConfig::default()
        })?;
        let mut times = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            runtime.check("examples@1", sluice_udf_artifacts::EXAMPLES)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        medians.push(percentiles(times).0);
    }
    Ok((medians[0], medians[1]))
}

/// Runs the isolation measurements and prints them.
pub fn run(quick: bool) -> Result<()> {
    let span = Duration::from_secs(if quick { 8 } else { 20 });
    let s = Server::start()?;
    println!(
        "isolation: a real server on loopback ({} cores)\n",
        super::available_cores()
    );

    // The neighbour: word count of 20k-line batches every 100 ms (wasm split, native sum).
    let neighbour = s.tenant("neighbour", json!({}))?;
    s.upload(&neighbour, "examples", sluice_udf_artifacts::EXAMPLES)?;
    let wc = s.job(
        &neighbour,
        json!({
            "name": "word count", "batch_interval": "100ms",
            "source": { "generator": { "format": "words", "rate_per_s": 200000 } },
            "stages": [ { "flat_map": { "udf": "examples", "function": "split_words" } },
                        { "set_value": 1 }, { "reduce_by_key": { "builtin": "sum" } } ],
            "sink": { "print": { "records": 10 } }
        }),
    )?;
    std::thread::sleep(Duration::from_secs(2));
    let warm = s
        .batches(&neighbour, wc)?
        .last()
        .and_then(|b| b["batch_id"].as_u64())
        .unwrap_or(0);
    let (alone, last) = processing_after(&s, &neighbour, wc, warm, span)?;

    // The hog: CPU-bound UDF calls near its 1 s CPU limit, back to back, on every thread of its
    // lane (its jobs read a deterministic source, so each batch starts when the last ends).
    let hog = s.tenant("hog", json!({ "call_cpu_time_ms_max": 1000 }))?;
    s.upload(&hog, "hostile", sluice_udf_artifacts::HOSTILE)?;
    let burn = |lines: u64| {
        json!({
            "name": "burn", "batch_interval": "100ms",
            "source": { "generator": { "format": "visits", "lines_per_batch": lines } },
            "stages": [ { "map": { "udf": "hostile", "function": "burn" } } ],
            "sink": { "print": { "records": 1 } }
        })
    };
    // Calibrate: CPU per line (each line burns a million iterations).
    let probe = s.job(&hog, burn(20))?;
    std::thread::sleep(Duration::from_secs(3));
    let per_line_ms = s
        .batches(&hog, probe)?
        .iter()
        .filter_map(|b| b["stages"][0]["udf_ms"].as_f64())
        .fold(f64::MAX, f64::min)
        / 20.0;
    s.ok("POST", &format!("/api/v1/jobs/{probe}/stop"), &hog, None)?;
    let lines = ((800.0 / per_line_ms) as u64).max(1);
    let cores = super::available_cores();
    let hogs: Vec<i64> = (0..cores).map(|_| s.job(&hog, burn(lines))).collect::<Result<_>>()?;
    std::thread::sleep(Duration::from_secs(2));
    let (loaded, _) = processing_after(&s, &neighbour, wc, last + 20, span)?;
    let hog_calls: Vec<f64> = hogs
        .iter()
        .flat_map(|id| s.batches(&hog, *id).unwrap_or_default())
        .filter_map(|b| b["stages"][0]["udf_ms"].as_f64())
        .collect();
    for id in &hogs {
        s.ok("POST", &format!("/api/v1/jobs/{id}/stop"), &hog, None)?;
    }
    let (a50, a99) = percentiles(alone.clone());
    let (l50, l99) = percentiles(loaded.clone());
    let (h50, _) = percentiles(hog_calls);
    println!(
        "neighbour: word count, 20k lines every 100 ms; the other tenant: {cores} jobs of UDF calls of ~{h50:.0} ms (CPU limit 1,000 ms) back to back"
    );
    println!(
        "{:<34} {:>8} {:>9} {:>9}",
        "neighbour's batch processing", "batches", "p50 ms", "p99 ms"
    );
    println!("{:<34} {:>8} {:>9.1} {:>9.1}", "alone", alone.len(), a50, a99);
    println!(
        "{:<34} {:>8} {:>9.1} {:>9.1}",
        "with the CPU-bound tenant",
        loaded.len(),
        l50,
        l99
    );
    println!("{:<34} {:>8} {:>9.2} {:>9.2}\n", "ratio", "", l50 / a50, l99 / a99);

    // Memory: 100 idle jobs (http sources, nothing sent), on a fresh server (the one above keeps
    // what its allocator holds from the busy jobs).
    s.ok("POST", &format!("/api/v1/jobs/{wc}/stop"), &neighbour, None)?;
    drop(s);
    let s = Server::start()?;
    let idle = s.tenant("idle", json!({ "jobs_max": 200 }))?;
    std::thread::sleep(Duration::from_secs(1));
    let before = s.rss_mib()?;
    let t = Instant::now();
    for i in 0..100 {
        s.job(
            &idle,
            json!({ "name": format!("idle {i}"), "batch_interval": "1s", "source": { "http": {} }, "sink": { "print": {} } }),
        )?;
    }
    let started = t.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let after = s.rss_mib()?;
    println!(
        "server RSS: {before:.1} MiB with no job running, {after:.1} MiB with 100 idle jobs running ({:.2} MiB a job; 100 creates and starts took {:.1} s)",
        (after - before) / 100.0,
        started.as_secs_f64()
    );
    drop(s);
    let (inside, child) = compile_cost(if quick { 3 } else { 9 })?;
    println!(
        "compiling the example module ({} KiB): {inside:.0} ms in this process, {child:.0} ms in a killable child process ({:.2}x)",
        sluice_udf_artifacts::EXAMPLES.len() >> 10,
        child / inside
    );
    Ok(())
}
