//! Nexmark end to end: `sluice run` of the example jobs of `examples/jobs/nexmark` (the
//! `nexmark` source, the wasm UDFs of `udfs/nexmark`) into a `jsonl` file, one worker, process
//! start included. Events/s by wall time and per core (events over the process's CPU seconds).

use anyhow::{Context, Result};
use serde_json::json;

use super::e2e::{TempDir, sluice_run};

/// The queries: name, what it does, and the job's stages (as in `examples/jobs/nexmark`).
fn queries() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    let jobs = [
        (
            "q0",
            "pass-through (wasm map)",
            include_str!("../../../examples/jobs/nexmark/q0.json"),
        ),
        (
            "q1",
            "currency conversion (wasm flat_map)",
            include_str!("../../../examples/jobs/nexmark/q1.json"),
        ),
        (
            "q2",
            "selection (wasm filter and map)",
            include_str!("../../../examples/jobs/nexmark/q2.json"),
        ),
        (
            "q5",
            "hot items: bids per auction, 10 s window sliding 2 s, then max",
            include_str!("../../../examples/jobs/nexmark/q5.json"),
        ),
        (
            "q7",
            "highest bid per 10 s tumbling window",
            include_str!("../../../examples/jobs/nexmark/q7.json"),
        ),
    ];
    jobs.into_iter()
        .map(|(q, what, text)| {
            let spec: serde_json::Value = serde_json::from_str(text).expect("the example jobs are JSON");
            (q, what, spec["stages"].clone())
        })
        .collect()
}

/// Prints the Nexmark table.
pub fn run(quick: bool) -> Result<()> {
    let dir = TempDir(std::env::temp_dir().join(format!("sluice-bench-nexmark-{}", std::process::id())));
    std::fs::create_dir_all(dir.path())?;
    let (per_s, events) = if quick {
        (100_000u64, 2_000_000u64)
    } else {
        (200_000, 10_000_000)
    };
    let out = dir.path().join("out.jsonl");
    println!(
        "\n## Nexmark end to end: `sluice run` of `examples/jobs/nexmark/qN.json`, {events} events ({per_s} a batch of 1 s of event time), 1 worker -> jsonl file\n"
    );
    println!("process start, generating the events, the wasm stages and the sink included\n");
    println!("| query | what | seconds | events/s | CPU s | events/s per core | output records | peak RSS MB |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (i, (q, what, stages)) in queries().into_iter().enumerate() {
        let spec = json!({
            "name": format!("nexmark {q}"), "batch_interval": "1s",
            "modules": { "nexmark": "builtin:nexmark" },
            "source": { "nexmark": { "events_per_s": per_s, "events": events, "seed": 1 } },
            "stages": stages,
            "sink": { "jsonl": { "path": out } }
        });
        if i == 0 {
            // One batch first, to fill the compile cache.
            let mut warm = spec.clone();
            warm["source"]["nexmark"]["events"] = json!(per_s);
            sluice_run(dir.path(), &warm, 1)?;
        }
        let _ = std::fs::remove_file(&out);
        let r = sluice_run(dir.path(), &spec, 1)?;
        let written = std::fs::File::open(&out)
            .and_then(crate::source::batches::count_lines)
            .with_context(|| format!("{q} wrote no {}", out.display()))?;
        println!(
            "| {q} | {what} | {:.2} | {:.0} | {:.2} | {:.0} | {written} | {:.0} |",
            r.seconds,
            events as f64 / r.seconds,
            r.cpu_seconds,
            events as f64 / r.cpu_seconds,
            r.rss_mb
        );
    }
    Ok(())
}
