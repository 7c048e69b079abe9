//! Through the real scheduler, in this process (`run::run`: a supervisor with its source, the
//! pipeline, a `jsonl` file sink and the batch reports): the cost of a batch from 1 to 1M
//! records, latency under a paced load at 100 ms and 1 s batches, and how the cost grows with
//! keys, window length and stages.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde_json::json;

use super::percentile;
use crate::engine::SystemClock;
use crate::run::{BatchReport, RunIo, RunOptions};
use crate::runtime::Runtime;

/// What a run through the scheduler gave.
struct Ran {
    reports: Vec<BatchReport>,
}

impl Ran {
    /// The batches after the first `skip` (warm-up), by `f`.
    fn tail(&self, skip: usize, f: impl Fn(&BatchReport) -> f64) -> Vec<f64> {
        let mut v: Vec<f64> = self.reports.iter().skip(skip).map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    }
}

/// Runs `spec` through the scheduler (`batches`: stop after so many; a paced source runs on).
fn run_spec(runtime: &Arc<Runtime>, spec: &serde_json::Value, workers: usize, batches: Option<u64>) -> Result<Ran> {
    let plan = super::plan(runtime, &spec.to_string())?;
    let source = crate::source::open(&plan.spec.source, plan.batch_ms)?;
    let sink = crate::sink::open(&plan.spec.sink, plan.output_type, Box::new(std::io::sink()), "bench")?;
    let reports = Arc::new(Mutex::new(Vec::new()));
    let kept = reports.clone();
    crate::run::run(
        &plan,
        runtime.clone(),
        RunIo {
            source,
            sink,
            dead_letters: Box::new(std::io::sink()),
            clock: Arc::new(SystemClock),
        },
        RunOptions {
            workers: Some(workers),
            batches,
            ..RunOptions::default()
        },
        move |r| kept.lock().unwrap_or_else(|p| p.into_inner()).push(r.clone()),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let reports = std::mem::take(&mut *reports.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Ran { reports })
}

fn generator(format: &str, lines: u64, batches: u64) -> serde_json::Value {
    json!({ "generator": { "format": format, "lines_per_batch": lines, "batches": batches } })
}

fn job(interval: &str, source: serde_json::Value, stages: serde_json::Value, out: &Path) -> serde_json::Value {
    json!({
        "name": "bench", "batch_interval": interval,
        "modules": { "examples": "builtin:examples" },
        "source": source, "stages": stages,
        "sink": { "jsonl": { "path": out } }
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Prints the tables.
pub fn run(runtime: &Arc<Runtime>, quick: bool, cores: usize, dir: &Path) -> Result<()> {
    let out = dir.join("curves.jsonl");
    let scenario2 = json!([
        { "filter": { "udf": "examples", "function": "is_error" } },
        { "map": { "udf": "examples", "function": "minute_bucket", "value": "i64" } },
        { "reduce_by_key": { "udf": "examples", "function": "sum_counts" } }
    ]);

    println!(
        "\n## Per-batch cost through the scheduler: scenario 2 (3 wasm stages: filter, map, reduce), generator -> jsonl file, 1 worker\n"
    );
    println!("| lines a batch | batches | ms a batch (mean of processing) | µs a line | lines/s |");
    println!("| --- | --- | --- | --- | --- |");
    let total: u64 = if quick { 1_000_000 } else { 4_000_000 };
    for lines in [1u64, 10, 100, 1_000, 10_000, 100_000, 1_000_000] {
        let batches = (total / lines).clamp(20, 2_000);
        let ran = run_spec(
            runtime,
            &job("1s", generator("logs", lines, batches), scenario2.clone(), &out),
            1,
            None,
        )?;
        let ms = mean(&ran.tail(5, |r| r.processing_ms));
        println!(
            "| {lines} | {batches} | {ms:.3} | {:.3} | {:.0} |",
            ms * 1e3 / lines as f64,
            lines as f64 / ms * 1e3
        );
    }

    println!(
        "\n## Latency under a paced load: word count (wasm split), generator at 1,000,000 lines/s -> jsonl file, {cores} workers\n"
    );
    println!(
        "| batch interval | batches | processing p50 / p99 ms | scheduling delay p50 / p99 ms | total delay p50 / p99 ms |"
    );
    println!("| --- | --- | --- | --- | --- |");
    let words = json!([
        { "flat_map": { "udf": "examples", "function": "split_words", "value": "i64" } },
        { "reduce_by_key": { "builtin": "sum" } }
    ]);
    for (interval, ms, batches) in [
        ("100ms", 100u64, if quick { 30 } else { 100 }),
        ("1s", 1000, if quick { 5 } else { 15 }),
    ] {
        let source = json!({ "generator": { "format": "words", "rate_per_s": 1_000_000 } });
        let ran = run_spec(
            runtime,
            &job(interval, source, words.clone(), &out),
            cores,
            Some(batches),
        )?;
        let p = |f: fn(&BatchReport) -> f64| {
            let v = ran.tail(2, f);
            format!("{:.1} / {:.1}", percentile(&v, 0.5), percentile(&v, 0.99))
        };
        println!(
            "| {ms} ms | {} | {} | {} | {} |",
            ran.reports.len(),
            p(|r| r.processing_ms),
            p(|r| r.scheduling_delay_ms),
            p(|r| r.total_delay_ms)
        );
    }

    println!(
        "\n## Cost growth: distinct keys in a 10 s window sliding 1 s (native key_by, sum with inverse), 1,000,000 lines a batch, 1 worker\n"
    );
    println!("| distinct keys | ms a batch once the window is full | ns a line |");
    println!("| --- | --- | --- |");
    let key_counts: &[u64] = if quick {
        &[1_000, 100_000, 1_000_000]
    } else {
        &[1_000, 10_000, 100_000, 1_000_000, 10_000_000]
    };
    for &keys in key_counts {
        let lines = 1_000_000u64;
        let path = dir.join("keys.jsonl");
        keyed_input(&path, keys, lines, 13)?;
        let stages = json!([
            { "key_by": { "field": 0 } }, { "set_value": 1 },
            { "reduce_by_key_and_window": { "length": "10s", "slide": "1s",
                "reduce": { "builtin": "sum", "inverse": true }, "filter": "nonzero" } }
        ]);
        let spec = json!({
            "name": "keys", "batch_interval": "1s",
            "source": { "batches": { "path": path } }, "stages": stages,
            "sink": { "print": { "records": 1 } }
        });
        let ran = run_spec(runtime, &spec, 1, None)?;
        let ms = mean(&ran.tail(10, |r| r.processing_ms));
        println!("| {keys} | {ms:.1} | {:.0} |", ms * 1e6 / lines as f64);
    }

    println!(
        "\n## Cost growth: window length at a 1 s slide (scenario 1, wasm parse, inverse sum), 1,000 lines a batch, 1 worker\n"
    );
    println!("| window | batches run | ms a batch (last 20) |");
    println!("| --- | --- | --- |");
    let lengths: &[u64] = if quick { &[2, 60, 600] } else { &[2, 10, 60, 600, 3600] };
    for &length in lengths {
        let batches = length + 20;
        let stages = json!([
            { "map": { "udf": "examples", "function": "parse_visit", "value": "i64" } },
            { "reduce_by_key_and_window": { "length": format!("{length}s"), "slide": "1s",
                "reduce": { "builtin": "sum", "inverse": true }, "filter": "nonzero" } }
        ]);
        let ran = run_spec(
            runtime,
            &job("1s", generator("visits", 1_000, batches), stages, &out),
            1,
            None,
        )?;
        let last: Vec<f64> = ran.reports.iter().rev().take(20).map(|r| r.processing_ms).collect();
        println!("| {length} s | {batches} | {:.3} |", mean(&last));
    }

    println!("\n## Cost growth: stages (wasm filters keeping every line), 100,000 lines a batch, 1 worker\n");
    println!("| stages | ms a batch | ns a line a stage |");
    println!("| --- | --- | --- |");
    // ERROR lines only: every filter keeps every line.
    let path = dir.join("errors.jsonl");
    error_lines(&path, 100_000, 12)?;
    for stages in [1usize, 2, 5, 10, 20] {
        let list: Vec<serde_json::Value> = (0..stages)
            .map(|_| json!({ "filter": { "udf": "examples", "function": "is_error" } }))
            .collect();
        let spec = json!({
            "name": "stages", "batch_interval": "1s",
            "modules": { "examples": "builtin:examples" },
            "source": { "batches": { "path": path } }, "stages": list,
            "sink": { "print": { "records": 1 } }
        });
        let ran = run_spec(runtime, &spec, 1, None)?;
        let ms = mean(&ran.tail(2, |r| r.processing_ms));
        println!("| {stages} | {ms:.2} | {:.1} |", ms * 1e6 / 100_000.0 / stages as f64);
    }
    let _ = std::fs::remove_file(&out);
    Ok(())
}

/// `batches` lines of `lines` keys `k0..k{keys-1}` (each batch goes on where the last ended).
fn keyed_input(path: &Path, keys: u64, lines: u64, batches: u64) -> Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut next = 0u64;
    for _ in 0..batches {
        f.write_all(b"[")?;
        for i in 0..lines {
            if i > 0 {
                f.write_all(b",")?;
            }
            write!(f, "\"k{}\"", next % keys)?;
            next += 1;
        }
        f.write_all(b"]\n")?;
    }
    f.flush()?;
    Ok(())
}

/// `batches` lines of `lines` ERROR log lines.
fn error_lines(path: &Path, lines: u64, batches: u64) -> Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for _ in 0..batches {
        let line: Vec<String> = (0..lines)
            .map(|i| format!("{}|ERROR|request {i} failed", 1_700_000_000 + i / 1000))
            .collect();
        serde_json::to_writer(&mut f, &line)?;
        f.write_all(b"\n")?;
    }
    f.flush()?;
    Ok(())
}
