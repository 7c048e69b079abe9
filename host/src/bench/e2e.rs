//! End to end through the binary: `sluice run` of a `batches` file (read and parsed batch by
//! batch), the pipeline and a `jsonl` file sink, as a user runs it, process start included.
//! Word count (wasm and native split) at 1 and 2 workers, the seed's three scenarios, the peak
//! RSS of each run against the bound `2 x one batch's bytes + 50 MB`, and a straightforward
//! hand-written Rust word count over the same lines already in memory as the yardstick.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rustc_hash::FxHashMap;
use serde_json::json;

use crate::engine::Tick;
use crate::job::spec::GeneratorFormat;
use crate::source::{GeneratorSource, Source};

/// A folder removed when dropped.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One `sluice run`: wall seconds, CPU seconds (user and system, every thread) and peak RSS.
pub(super) struct Run {
    pub(super) seconds: f64,
    pub(super) cpu_seconds: f64,
    pub(super) rss_mb: f64,
}

/// CPU seconds of this process's children that have ended and been waited for.
fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(u.ru_utime) + s(u.ru_stime)
}

/// Writes `batches` batches of `lines` generated lines as a `batches` file; the lines too.
fn input(dir: &Path, name: &str, format: GeneratorFormat, lines: usize, batches: usize) -> Result<(PathBuf, u64)> {
    use std::io::Write;
    let path = dir.join(format!("{name}.jsonl"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut g = GeneratorSource::new(format, None, lines as u64, 11, 1000);
    let mut text_bytes = 0u64;
    for k in 1..=batches as u64 {
        let b = g.next_batch(Tick {
            batch_id: k,
            time_ms: k as i64 * 1000,
        })?;
        let values: Vec<&str> = b
            .iter()
            .map(|r| std::str::from_utf8(r.value).unwrap_or_default())
            .collect();
        text_bytes = text_bytes.max(values.iter().map(|v| v.len() as u64).sum());
        serde_json::to_writer(&mut f, &values)?;
        f.write_all(b"\n")?;
    }
    f.flush()?;
    Ok((path, text_bytes))
}

/// Runs `sluice run SPEC --workers N` (this binary) and waits for it: its wall time and the
/// peak RSS it reports (`VmHWM` after its exec; `wait4`'s `ru_maxrss` would count this
/// process's memory at the fork too).
pub(super) fn sluice_run(dir: &Path, spec: &serde_json::Value, workers: usize) -> Result<Run> {
    let file = dir.join("job.json");
    std::fs::write(&file, spec.to_string())?;
    let exe = std::env::current_exe()?;
    let cpu_before = children_cpu_seconds();
    let t = Instant::now();
    let out = Command::new(exe)
        .args([
            "run",
            file.to_str().unwrap_or_default(),
            "--workers",
            &workers.to_string(),
        ])
        .env("SLUICE_CACHE_DIR", dir.join("cache"))
        .env("RUST_LOG", "warn,sluice::cli=info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .output()
        .context("sluice run")?;
    let seconds = t.elapsed().as_secs_f64();
    let cpu_seconds = children_cpu_seconds() - cpu_before;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("sluice run of {spec} failed: {stderr}");
    }
    let rss_mb = stderr
        .lines()
        .find_map(|l| l.split("peak RSS ").nth(1)?.split(' ').next()?.parse().ok())
        .context("sluice run did not report its peak RSS")?;
    Ok(Run {
        seconds,
        cpu_seconds,
        rss_mb,
    })
}

fn spec(name: &str, input: &Path, stages: serde_json::Value, out: &Path) -> serde_json::Value {
    json!({
        "name": name, "batch_interval": "1s",
        "modules": { "examples": "builtin:examples" },
        "source": { "batches": { "path": input } },
        "stages": stages,
        "sink": { "jsonl": { "path": out } }
    })
}

/// The yardstick: per batch an `FxHashMap<&str, i64>`, `line.split(' ')`, the lines already
/// in memory; only the counting is timed. Lines/s, and the distinct words of the last batch.
fn reference_loop(batches: &[Vec<String>]) -> (f64, usize) {
    let mut keys = 0;
    let t = Instant::now();
    for lines in batches {
        let mut counts: FxHashMap<&str, i64> = FxHashMap::default();
        for line in lines {
            for w in line.split(' ') {
                *counts.entry(w).or_insert(0) += 1;
            }
        }
        keys = std::hint::black_box(&counts).len();
    }
    let n: usize = batches.iter().map(Vec::len).sum();
    (n as f64 / t.elapsed().as_secs_f64(), keys)
}

fn lines_of(path: &Path) -> Result<Vec<Vec<String>>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .map(|l| serde_json::from_str(l).context("batches line"))
        .collect()
}

/// Prints the end-to-end tables.
pub fn run(quick: bool, cores: usize) -> Result<()> {
    let dir = TempDir(std::env::temp_dir().join(format!("sluice-bench-e2e-{}", std::process::id())));
    std::fs::create_dir_all(dir.path())?;
    let (lines, batches) = if quick { (250_000, 4) } else { (1_000_000, 10) };
    let (words, batch_bytes) = input(dir.path(), "words", GeneratorFormat::Words, lines, batches)?;
    let out = dir.path().join("out.jsonl");
    let total = (lines * batches) as f64;
    let wasm = spec(
        "wc",
        &words,
        json!([{ "flat_map": { "udf": "examples", "function": "split_words", "value": "i64" } },
               { "reduce_by_key": { "builtin": "sum" } }]),
        &out,
    );
    let native = spec(
        "wc",
        &words,
        json!([{ "split": { "sep": " ", "pairs": true } }, { "reduce_by_key": { "builtin": "sum" } }]),
        &out,
    );
    // Once to fill the compile cache (a second `sluice run` does not compile).
    sluice_run(dir.path(), &wasm, 1)?;
    let bound_mb = 2.0 * batch_bytes as f64 / 1e6 + 50.0;
    println!(
        "## End to end: `sluice run` of a batches file ({batches} x {lines} lines of 8 words, {:.1} MB of text a batch) -> jsonl file\n",
        batch_bytes as f64 / 1e6
    );
    println!(
        "process start, reading and parsing the input, the stages and the sink all included; wall time of the process\n"
    );
    println!("| split | workers | seconds | lines/s | lines/s per core | peak RSS MB (bound {bound_mb:.0}) |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut by = std::collections::BTreeMap::new();
    let worker_counts: Vec<usize> = if cores > 1 { vec![1, 2] } else { vec![1] };
    for workers in &worker_counts {
        for (name, s) in [("wasm", &wasm), ("native", &native)] {
            let r = sluice_run(dir.path(), s, *workers)?;
            let rate = total / r.seconds;
            println!(
                "| {name} | {workers} | {:.2} | {rate:.0} | {:.0} | {:.0} |",
                r.seconds,
                rate / *workers as f64,
                r.rss_mb
            );
            by.insert((*workers, name), (rate, r.rss_mb));
        }
    }
    let (loop_rate, keys) = reference_loop(&lines_of(&words)?);
    println!(
        "\nreference: hand-written Rust word count (FxHashMap<&str, i64>, split(' '), lines in memory, counting timed alone): {loop_rate:.0} lines/s ({keys} distinct words a batch)"
    );
    let w1 = by[&(1, "wasm")].0;
    println!(
        "- Sluice wasm word count end to end / the reference loop, 1 worker: **{:.2}x** (goal >= 1)",
        w1 / loop_rate
    );
    println!(
        "- wasm / native split, 1 worker: {:.2}x the throughput (goal >= 1/1.2 = 0.83)",
        w1 / by[&(1, "native")].0
    );
    if let Some((w2, _)) = by.get(&(2, "wasm")) {
        println!("- 2 workers / 1 worker, wasm: {:.2}x (goal >= 1.8)", w2 / w1);
    }
    let worst_rss = by.values().map(|(_, rss)| *rss).fold(0.0, f64::max);
    println!(
        "- peak RSS {worst_rss:.0} MB against the bound {bound_mb:.0} MB (2 x {:.1} MB + 50 MB)",
        batch_bytes as f64 / 1e6
    );

    // The seed's scenarios end to end.
    println!("\n## End to end: the seed's scenarios, `sluice run` of a batches file -> jsonl file, 2 workers\n");
    println!("| scenario | lines | seconds | lines/s | peak RSS MB |");
    println!("| --- | --- | --- | --- | --- |");
    let n = if quick { 200_000 } else { 1_000_000 };
    let scenarios = [
        (
            "1: visits per user, 60 s window sliding 1 s (wasm parse)",
            GeneratorFormat::Visits,
            json!([{ "map": { "udf": "examples", "function": "parse_visit", "value": "i64" } },
                   { "reduce_by_key_and_window": { "length": "60s", "slide": "1s",
                       "reduce": { "builtin": "sum", "inverse": true }, "filter": "nonzero" } }]),
        ),
        (
            "2: ERROR lines per minute (wasm filter and map, native sum)",
            GeneratorFormat::Logs,
            json!([{ "filter": { "udf": "examples", "function": "is_error" } },
                   { "map": { "udf": "examples", "function": "minute_bucket", "value": "i64" } },
                   { "reduce_by_key": { "builtin": "sum" } }]),
        ),
        (
            "3: clicks per user, 5 min window sliding 1 min (wasm flat_map)",
            GeneratorFormat::Behavior,
            json!([{ "flat_map": { "udf": "examples", "function": "clicks_by_user", "value": "i64" } },
                   { "reduce_by_key_and_window": { "length": "5m", "slide": "1m",
                       "reduce": { "builtin": "sum", "inverse": true }, "filter": "nonzero" } }]),
        ),
    ];
    for (i, (name, format, stages)) in scenarios.into_iter().enumerate() {
        let per_batch = n / 10;
        let (path, _) = input(dir.path(), &format!("s{i}"), format, per_batch, 10)?;
        let mut s = spec("scenario", &path, stages, &out);
        if i == 2 {
            // Batches of 1 min, so the window slides once a batch.
            s["batch_interval"] = json!("1m");
        }
        let r = sluice_run(dir.path(), &s, cores.min(2))?;
        println!(
            "| {name} | {n} | {:.2} | {:.0} | {:.0} |",
            r.seconds,
            n as f64 / r.seconds,
            r.rss_mb
        );
    }
    Ok(())
}
