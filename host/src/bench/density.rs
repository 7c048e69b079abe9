//! Density: many light jobs of many tenants on one real server (this binary's `serve`, driven
//! over loopback): 10 jobs per tenant, each a native word count of 10 generated lines a second
//! in 1 s batches. The server's RSS and threads per job, and the scheduling delay of every
//! batch of every job (p50, p99, max), once all run.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use super::isolation::Server;

fn threads(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("Threads:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Prints the density table.
pub fn run(quick: bool) -> Result<()> {
    let (tenants, per) = if quick { (20usize, 10usize) } else { (100, 10) };
    let jobs = tenants * per;
    let s = Server::start()?;
    std::thread::sleep(Duration::from_secs(1));
    let (rss0, threads0) = (s.rss_mib()?, threads(s.pid()).unwrap_or(0.0));
    let t = Instant::now();
    let mut ids = Vec::with_capacity(jobs);
    for i in 0..tenants {
        let token = s.tenant(&format!("dense{i}"), json!({ "jobs_max": per }))?;
        for j in 0..per {
            let spec = json!({
                "name": format!("light {i}-{j}"), "batch_interval": "1s",
                "source": { "generator": { "format": "words", "rate_per_s": 10, "seed": j } },
                "stages": [ { "split": { "sep": " ", "pairs": true } }, { "reduce_by_key": { "builtin": "sum" } } ],
                "sink": { "print": {} }
            });
            ids.push((token.clone(), s.job(&token, spec)?));
        }
    }
    let started = t.elapsed();
    // Batches due after this ran while no job was being created.
    let steady_from_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as f64
        + 1000.0;
    // Every job runs a while at its pace before anything is read.
    std::thread::sleep(Duration::from_secs(if quick { 8 } else { 15 }));
    let (rss1, threads1) = (s.rss_mib()?, threads(s.pid()).unwrap_or(0.0));
    let mut delays = Vec::new();
    let mut steady = Vec::new();
    let mut processing = Vec::new();
    let mut ran = 0;
    for (token, id) in &ids {
        let reports = s.batches(token, *id)?;
        if !reports.is_empty() {
            ran += 1;
        }
        // The first batches are the start's; the steady state is after them.
        for r in reports.iter().skip(2) {
            let Some(delay) = r["scheduling_delay_ms"].as_f64() else {
                continue;
            };
            delays.push(delay);
            if r["time_ms"].as_f64().is_some_and(|t| t >= steady_from_ms) {
                steady.push(delay);
                processing.extend(r["processing_ms"].as_f64());
            }
        }
    }
    delays.sort_by(f64::total_cmp);
    steady.sort_by(f64::total_cmp);
    processing.sort_by(f64::total_cmp);
    // A table row of a sorted sample: p50 / p99 / max.
    let row = |what: String, v: &[f64], goal: &str| {
        let at = |p: f64| {
            v.get(((v.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        let max = v.last().copied().unwrap_or(f64::NAN);
        println!(
            "| {what}, p50 / p99 / max | {:.2} / {:.2} / {max:.2} ms | {goal} |",
            at(0.5),
            at(0.99)
        );
    };
    println!(
        "\n## Density: {jobs} jobs of {tenants} tenants on one server (1 s batches, 10 lines/s each, native word count)\n"
    );
    println!("| figure | value | goal |");
    println!("| --- | --- | --- |");
    println!("| jobs that ran batches | {ran} of {jobs} | all |");
    println!("| RSS: no job / all running | {rss0:.1} / {rss1:.1} MiB | |");
    println!("| RSS a job | {:.3} MiB | <= 1 MB |", (rss1 - rss0) / jobs as f64);
    println!("| threads: no job / all running | {threads0:.0} / {threads1:.0} | |");
    println!(
        "| threads a job | {:.2} | no thread per job |",
        (threads1 - threads0) / jobs as f64
    );
    row(
        format!(
            "scheduling delay over all {} batches (jobs still being created over HTTP meanwhile)",
            delays.len()
        ),
        &delays,
        "",
    );
    row(
        format!("scheduling delay over the {} batches once all jobs run", steady.len()),
        &steady,
        "p99 < 50 ms",
    );
    row("processing time of those batches".into(), &processing, "");
    println!(
        "| creating and starting the {jobs} jobs over HTTP | {:.1} s | |",
        started.as_secs_f64()
    );
    Ok(())
}
