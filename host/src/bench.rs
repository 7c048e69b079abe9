//! `sluice bench`: the engine's throughput and batch latency on generated data, as fast as
//! possible (no rate limit), with wasm UDFs and with native built-ins, on one worker and on all
//! cores. Every figure of one table comes from one run, so ratios are comparable on a noisy
//! machine. Jobs are built from spec text through the same checks and plan as `sluice run`.
//!
//! - word count: 8-word lines (~31 bytes) from a 1,000-word Zipf(1) vocabulary, batches of 10k,
//!   100k and 1M lines; split by the wasm `split_words` (or the native `split`), counted by the
//!   native `reduce_by_key` sum;
//! - the seed's scenario 1: parse `user_id,timestamp,page`, key by user, count per user over a
//!   60 s window sliding 1 s, against the same with a 2 s window;
//! - a 100 ms interval at 1 million lines/s offered (100k lines a batch): batch time p50/p99.

pub mod checkpoints;
mod curves;
mod density;
mod e2e;
pub mod ingest;
pub mod isolation;
mod nexmark;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::batch::RecordBatch;
use crate::engine::Tick;
use crate::engine::workers::available_cores;
use crate::job::{self, JobPlan};
use crate::run::LocalModules;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::source::{GeneratorSource, Source};

/// How long to measure.
#[derive(Clone, Copy, Debug)]
pub struct BenchOptions {
    /// Fewer batches per case (noisier).
    pub quick: bool,
    /// Run the isolation measurements on a real server instead of the engine's.
    pub isolation: bool,
    /// Measure checkpoints (write, recovery, throughput cost) instead.
    pub checkpoints: bool,
    /// Measure durable HTTP ingest on a real server instead.
    pub ingest: bool,
    /// Only the density figures (many light jobs of many tenants on a real server).
    pub density: bool,
    /// Only the Nexmark figures.
    pub nexmark: bool,
}

struct Case {
    lines_per_batch: usize,
    batches: usize,
}

struct Measured {
    lines_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn plan(runtime: &Arc<Runtime>, spec: &str) -> Result<JobPlan> {
    let spec = job::parse(spec).map_err(|e| anyhow::anyhow!("{e}"))?;
    let modules = LocalModules::new(
        runtime.clone(),
        [("examples".to_owned(), "builtin:examples".to_owned())].into(),
        ".".into(),
    );
    job::check(spec, &modules).map_err(|e| anyhow::anyhow!("{e}"))
}

fn pool(format: crate::job::spec::GeneratorFormat, lines: usize, count: usize) -> Result<Vec<RecordBatch>> {
    let mut g = GeneratorSource::new(format, None, lines as u64, 7, 1000);
    (1..=count as u64)
        .map(|k| {
            g.next_batch(Tick {
                batch_id: k,
                time_ms: k as i64 * 1000,
            })
            .context("generator")
        })
        .collect()
}

/// Runs `batches` batches (after 2 warm-up batches) cycling through `inputs`.
fn measure(
    runtime: &Arc<Runtime>,
    plan: &JobPlan,
    workers: usize,
    inputs: &[RecordBatch],
    case: &Case,
) -> Result<Measured> {
    let mut pipeline = plan.pipeline(runtime.clone(), &runtime.config().default_limits, workers);
    let mut times = Vec::with_capacity(case.batches);
    let mut total = 0.0;
    for k in 1..=(case.batches + 2) as u64 {
        let input = inputs[k as usize % inputs.len()].clone();
        let t = Instant::now();
        pipeline.run_batch(
            Tick {
                batch_id: k,
                time_ms: k as i64 * plan.batch_ms,
            },
            input,
        )?;
        let took = t.elapsed().as_secs_f64();
        if k > 2 {
            times.push(took * 1e3);
            total += took;
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(Measured {
        lines_per_s: (case.lines_per_batch * case.batches) as f64 / total,
        p50_ms: percentile(&times, 0.5),
        p99_ms: percentile(&times, 0.99),
    })
}

const WORDS_WASM: &str = r#"{ "name": "wc", "batch_interval": "1s", "source": { "generator": { "format": "words" } },
  "stages": [ { "flat_map": { "udf": "examples", "function": "split_words", "value": "i64" } },
              { "reduce_by_key": { "builtin": "sum" } } ], "sink": { "print": {} } }"#;
const WORDS_NATIVE: &str = r#"{ "name": "wc", "batch_interval": "1s", "source": { "generator": { "format": "words" } },
  "stages": [ { "split": { "sep": " ", "pairs": true } }, { "reduce_by_key": { "builtin": "sum" } } ], "sink": { "print": {} } }"#;

fn visits(interval: &str, window: &str, wasm: bool) -> String {
    let parse = if wasm {
        r#"{ "map": { "udf": "examples", "function": "parse_visit", "value": "i64" } }"#
    } else {
        r#"{ "key_by": { "field": 0 } }, { "set_value": 1 }"#
    };
    format!(
        r#"{{ "name": "visits", "batch_interval": "{interval}", "source": {{ "generator": {{ "format": "visits" }} }},
          "stages": [ {parse}, {{ "reduce_by_key_and_window": {{ "length": "{window}", "slide": "{interval}",
              "reduce": {{ "builtin": "sum", "inverse": true }}, "filter": "nonzero" }} }} ], "sink": {{ "print": {{}} }} }}"#
    )
}

/// Runs the benchmark and prints its tables.
pub fn run(options: BenchOptions) -> Result<()> {
    if options.isolation {
        return isolation::run(options.quick);
    }
    if options.checkpoints {
        return checkpoints::run(options.quick);
    }
    if options.ingest {
        return ingest::run(options.quick);
    }
    if options.density {
        return density::run(options.quick);
    }
    if options.nexmark {
        return nexmark::run(options.quick);
    }
    let cores = available_cores();
    println!("# sluice bench: {cores} cores\n");
    e2e::run(options.quick, cores)?;
    nexmark::run(options.quick)?;
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
    let dir = std::env::temp_dir().join(format!("sluice-bench-curves-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let curves = curves::run(&runtime, options.quick, cores, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    curves?;
    density::run(options.quick)?;
    let scale = if options.quick { 1 } else { 3 };
    println!(
        "\n## Micro-benchmarks: `Pipeline::run_batch` only, on data generated beforehand (no source, sink or scheduler)\n"
    );

    println!("word count: 8-word lines (~31 B), Zipf(1) vocabulary of 1,000 words");
    println!(
        "{:<9} {:>10} {:>8} {:>14} {:>14} {:>9} {:>9}",
        "split", "lines/batch", "workers", "lines/s", "lines/s/core", "p50 ms", "p99 ms"
    );
    let wc = [(WORDS_WASM, "wasm"), (WORDS_NATIVE, "native")].map(|(s, n)| (plan(&runtime, s), n));
    for lines in [10_000usize, 100_000, 1_000_000] {
        let case = Case {
            lines_per_batch: lines,
            batches: (3_000_000 / lines).clamp(5, 40) * scale / 3,
        };
        let inputs = pool(
            crate::job::spec::GeneratorFormat::Words,
            lines,
            if lines >= 1_000_000 { 2 } else { 4 },
        )?;
        let mut by = std::collections::BTreeMap::new();
        for workers in [1, cores] {
            for (p, name) in &wc {
                let m = measure(
                    &runtime,
                    p.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?,
                    workers,
                    &inputs,
                    &case,
                )?;
                println!(
                    "{name:<9} {lines:>10} {workers:>8} {:>14.0} {:>14.0} {:>9.2} {:>9.2}",
                    m.lines_per_s,
                    m.lines_per_s / workers as f64,
                    m.p50_ms,
                    m.p99_ms
                );
                by.insert((workers, *name), m.lines_per_s);
            }
        }
        for workers in [1, cores] {
            println!(
                "  -> {lines} lines, {workers} worker(s): native / wasm throughput = {:.2}",
                by[&(workers, "native")] / by[&(workers, "wasm")]
            );
        }
    }

    println!("\nscenario 1: visits per user over a window sliding 1 s, 100k lines a batch");
    println!(
        "{:<9} {:>7} {:>8} {:>14} {:>12} {:>9} {:>9}",
        "parse", "window", "workers", "lines/s", "ns/line", "p50 ms", "p99 ms"
    );
    let inputs = pool(crate::job::spec::GeneratorFormat::Visits, 100_000, 4)?;
    let case = Case {
        lines_per_batch: 100_000,
        batches: 20 * scale,
    };
    for wasm in [true, false] {
        let mut per_line = Vec::new();
        for window in ["2s", "60s"] {
            let p = plan(&runtime, &visits("1s", window, wasm))?;
            let m = measure(&runtime, &p, 1, &inputs, &case)?;
            let ns = 1e9 / m.lines_per_s;
            per_line.push(ns);
            let name = if wasm { "wasm" } else { "native" };
            println!(
                "{name:<9} {window:>7} {:>8} {:>14.0} {:>12.1} {:>9.2} {:>9.2}",
                1, m.lines_per_s, ns, m.p50_ms, m.p99_ms
            );
        }
        println!(
            "  -> 60 s window costs {:.2}x the 2 s window per line",
            per_line[1] / per_line[0]
        );
    }

    println!("\n100 ms batches at 1,000,000 lines/s offered (100k lines a batch), scenario 1 with wasm, all cores");
    let p = plan(&runtime, &visits("100ms", "60s", true))?;
    let m = measure(
        &runtime,
        &p,
        cores,
        &inputs,
        &Case {
            lines_per_batch: 100_000,
            batches: 50 * scale,
        },
    )?;
    println!(
        "p50 {:.2} ms, p99 {:.2} ms per batch (budget 100 ms; target p99 < 50 ms); capacity {:.0} lines/s",
        m.p50_ms, m.p99_ms, m.lines_per_s
    );
    Ok(())
}
