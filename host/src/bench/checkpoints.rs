//! `sluice bench --checkpoints`: what checkpoints cost, in this process on a scratch SQLite
//! file (WAL, synchronous=FULL, as the server's), every figure of a table from one run:
//!
//! - window state of 1e4, 1e5 and 1e6 keys (counts per key over 60 s sliding 1 s, with the
//!   inverse: 60 panes and a running map): the batch stalls for a full checkpoint and for an
//!   incremental one after a batch that changed 1% of the keys (snapshot + write + commit), and
//!   the bytes each wrote;
//! - recovery: reading the latest checkpoint and restoring a fresh pipeline from it, then the
//!   first new batch;
//! - word count over a 60 s window sliding 1 s, 100k lines a batch: throughput checkpointing
//!   every 10 batches against never.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use crate::batch::RecordBatch;
use crate::checkpoint::{CheckpointMeta, CheckpointStore, FORMAT};
use crate::engine::{Pipeline, Tick};
use crate::job::JobPlan;
use crate::runtime::{Runtime, RuntimeConfig};

const KEYED: &str = r#"{ "name": "keys", "batch_interval": "1s", "source": { "http": {} },
  "stages": [ { "key_by": { "field": 0 } }, { "set_value": 1 },
              { "reduce_by_key_and_window": { "length": "60s", "slide": "1s",
                  "reduce": { "builtin": "sum", "inverse": true }, "filter": "nonzero" } } ],
  "sink": { "print": {} } }"#;

const WORDS_WINDOW: &str = r#"{ "name": "wc", "batch_interval": "1s", "source": { "generator": { "format": "words" } },
  "stages": [ { "split": { "sep": " ", "pairs": true } },
              { "reduce_by_key_and_window": { "length": "60s", "slide": "1s",
                  "reduce": { "builtin": "sum", "inverse": true }, "filter": "nonzero" } } ],
  "sink": { "print": {} } }"#;

fn tick(k: u64) -> Tick {
    Tick {
        batch_id: k,
        time_ms: k as i64 * 1000,
    }
}

/// Lines `key,x` for each key `k{i}`.
fn keyed(keys: impl Iterator<Item = u64>) -> RecordBatch {
    let mut b = RecordBatch::new();
    for i in keys {
        b.push(None, format!("k{i},x").as_bytes(), 0);
    }
    b
}

fn meta(p: &Pipeline, batch_id: u64) -> CheckpointMeta {
    CheckpointMeta {
        format: FORMAT,
        batch_id,
        time_ms: tick(batch_id).time_ms,
        zero_ms: 0,
        source: None,
        operators: p.state_kinds(),
        udfs: p.udf_labels(),
    }
}

/// A checkpoint of `p` after batch `batch_id`: the stall in ms (snapshot, write, commit) and
/// the bytes of state written.
fn checkpoint(store: &CheckpointStore, p: &mut Pipeline, batch_id: u64, full: bool) -> Result<(f64, u64)> {
    let t = Instant::now();
    let deltas = p.snapshot(full);
    let info = store.write(1, &meta(p, batch_id), deltas, 3)?;
    Ok((t.elapsed().as_secs_f64() * 1e3, info.bytes))
}

fn pipeline(runtime: &Arc<Runtime>, plan: &JobPlan) -> Pipeline {
    plan.pipeline(runtime.clone(), &runtime.config().default_limits, 1)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// Runs the checkpoint measurements and prints them.
pub fn run(quick: bool) -> Result<()> {
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
    let dir = std::env::temp_dir().join(format!("sluice-bench-checkpoints-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(&runtime, &dir, quick);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure(runtime: &Arc<Runtime>, dir: &std::path::Path, quick: bool) -> Result<()> {
    println!("checkpoints: window state (60 s sliding 1 s, with the inverse), SQLite WAL, synchronous=FULL\n");
    println!("full, incr.: the batch's stall for a full checkpoint and for an incremental one after a batch");
    println!("that changed 1% of the keys; recovery: read the checkpoint, rebuild the operator, run the first");
    println!("new batch (it emits the whole window, as every batch: see `batch`, one batch of the run before)\n");
    println!(
        "{:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "keys",
        "full ms",
        "full MiB",
        "incr. ms",
        "incr. MiB",
        "read ms",
        "rebuild",
        "1st batch",
        "recovery",
        "batch ms"
    );
    let plan = super::plan(runtime, KEYED)?;
    for keys in [10_000u64, 100_000, 1_000_000] {
        let store = CheckpointStore::open(&dir.join(format!("{keys}.db")))?;
        let mut p = pipeline(runtime, &plan);
        p.run_batch(tick(1), keyed(0..keys))?;
        let (full_ms, full_bytes) = checkpoint(&store, &mut p, 1, true)?;
        // Batches that each touch 1% of the keys, each followed by an incremental checkpoint.
        let changed = keys / 100;
        let mut incremental = Vec::new();
        let mut batch_ms = 0.0;
        for k in 2..=6u64 {
            let t = Instant::now();
            p.run_batch(tick(k), keyed((0..changed).map(|j| (j * 7919 + k * 104_729) % keys)))?;
            batch_ms = t.elapsed().as_secs_f64() * 1e3;
            incremental.push(checkpoint(&store, &mut p, k, false)?);
        }
        incremental.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (incr_ms, incr_bytes) = incremental[incremental.len() / 2];
        drop(p);
        drop(store);
        // Recovery: open the store, read the latest checkpoint, restore a fresh pipeline, run the
        // first new batch.
        let t = Instant::now();
        let store = CheckpointStore::open(&dir.join(format!("{keys}.db")))?;
        let (m, states) = store.latest(1)?.ok_or_else(|| anyhow::anyhow!("no checkpoint"))?;
        let read_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut p = pipeline(runtime, &plan);
        p.restore(states)?;
        let restored_ms = t.elapsed().as_secs_f64() * 1e3;
        p.run_batch(tick(m.batch_id + 1), keyed((0..changed).map(|j| j * 13 % keys)))?;
        let recovery_ms = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "{keys:>9} {full_ms:>9.1} {:>9.2} {incr_ms:>9.1} {:>9.3} {read_ms:>9.1} {:>9.1} {:>9.1} {recovery_ms:>9.1} {batch_ms:>9.1}",
            mib(full_bytes),
            mib(incr_bytes),
            restored_ms - read_ms,
            recovery_ms - restored_ms,
        );
    }

    println!("\nword count over 60 s sliding 1 s, 100k lines a batch, 1 worker");
    let plan = super::plan(runtime, WORDS_WINDOW)?;
    let inputs = super::pool(crate::job::spec::GeneratorFormat::Words, 100_000, 4)?;
    let batches = if quick { 40 } else { 120 };
    let mut best = [f64::MAX; 2];
    let mut stalls = (0.0, 0.0, 0u64);
    // Alternate the two, three times, and keep each one's best: the machine is shared.
    for round in 0..3 {
        for (i, every) in [None, Some(10u64)].into_iter().enumerate() {
            let store = CheckpointStore::open(&dir.join(format!("wc-{round}-{i}.db")))?;
            let mut p = pipeline(runtime, &plan);
            let t = Instant::now();
            let mut stalled = 0.0;
            for k in 1..=batches {
                p.run_batch(tick(k), inputs[k as usize % inputs.len()].clone())?;
                if every.is_some_and(|n| k % n == 0) {
                    let (ms, bytes) = checkpoint(&store, &mut p, k, k == 10)?;
                    stalled += ms;
                    stalls.2 = bytes;
                }
            }
            let took = t.elapsed().as_secs_f64();
            if every.is_some() {
                stalls.0 += stalled;
                stalls.1 += took * 1e3;
            }
            best[i] = best[i].min(took);
        }
    }
    let rate = |s: f64| (100_000 * batches) as f64 / s;
    println!("{:<34} {:>14}", "checkpoints", "lines/s");
    println!("{:<34} {:>14.0}", "never", rate(best[0]));
    println!("{:<34} {:>14.0}", "every 10 batches", rate(best[1]));
    println!(
        "{:<34} {:>13.1}%  (best of 3 each; the checkpoints' own stall was {:.2}% of the run, {} KiB each)",
        "slower by",
        (best[1] / best[0] - 1.0) * 100.0,
        stalls.0 / stalls.1 * 100.0,
        stalls.2 >> 10
    );
    Ok(())
}
