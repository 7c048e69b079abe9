//! `sluice bench --ingest`: durable HTTP ingest on a real server (this binary's `serve` on a
//! scratch directory, over loopback): records per second acknowledged with 202, each request
//! 1,000 small records (~30 B lines) sent as text lines and as a JSON array, by 8 senders at
//! once, so the server's group commit syncs many requests at a time. The senders run on the
//! same machine as the server and take part of its cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use super::isolation::Server;

const SENDERS: usize = 8;
const PER_REQUEST: usize = 1_000;

struct Sent {
    records: u64,
    refused: u64,
    latencies_ms: Vec<f64>,
}

fn body(json: bool, n: u64) -> Vec<u8> {
    let lines = (0..PER_REQUEST as u64).map(|i| {
        format!(
            "user{},{},/page/{}",
            (n + i) % 10_000,
            1_700_000_000_000u64 + i,
            i % 100
        )
    });
    if json {
        serde_json::to_vec(&lines.collect::<Vec<_>>()).unwrap_or_default()
    } else {
        lines.map(|l| l + "\n").collect::<String>().into_bytes()
    }
}

fn send(url: String, token: String, json: bool, stop: Arc<AtomicBool>) -> Sent {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let ct = if json { "application/json" } else { "text/plain" };
    let bodies: Vec<Vec<u8>> = (0..16).map(|k| body(json, k * PER_REQUEST as u64)).collect();
    let mut sent = Sent {
        records: 0,
        refused: 0,
        latencies_ms: Vec::new(),
    };
    let mut k = 0;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let answer = agent
            .post(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", ct)
            .send(&bodies[k % bodies.len()][..]);
        k += 1;
        match answer.map(|r| r.status().as_u16()) {
            Ok(202) => {
                sent.records += PER_REQUEST as u64;
                sent.latencies_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            _ => {
                sent.refused += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    sent
}

/// Runs the ingest measurement and prints it.
pub fn run(quick: bool) -> Result<()> {
    let span = Duration::from_secs(if quick { 5 } else { 15 });
    let s = Server::start()?;
    let t = s.tenant(
        "ingest",
        json!({
            "ingest_records_per_s_max": 1_000_000_000u64,
            "batch_records_max": 10_000_000,
            "source_buffer_bytes_max": 1u64 << 30,
        }),
    )?;
    println!(
        "durable HTTP ingest: a real server on loopback ({} cores), {SENDERS} senders, {PER_REQUEST} records (~30 B) a request, fsync before 202\n",
        super::available_cores()
    );
    println!(
        "{:<12} {:>14} {:>10} {:>10} {:>9} {:>9}",
        "body", "records/s", "MB/s", "refused", "p50 ms", "p99 ms"
    );
    for json in [false, true] {
        let id = s.job(
            &t,
            json!({
                "name": "ingest", "batch_interval": "100ms",
                "source": { "http": { "buffer_records": 5_000_000 } },
                "stages": [], "sink": { "print": { "records": 1 } }
            }),
        )?;
        let url = format!("{}/api/v1/jobs/{id}/ingest", s.base);
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let senders: Vec<_> = (0..SENDERS)
            .map(|_| {
                let (url, t, stop) = (url.clone(), t.clone(), stop.clone());
                std::thread::spawn(move || send(url, t, json, stop))
            })
            .collect();
        std::thread::sleep(span);
        stop.store(true, Ordering::Relaxed);
        let sent: Vec<Sent> = senders.into_iter().filter_map(|h| h.join().ok()).collect();
        let secs = started.elapsed().as_secs_f64();
        let records: u64 = sent.iter().map(|s| s.records).sum();
        let refused: u64 = sent.iter().map(|s| s.refused).sum();
        let mut lat: Vec<f64> = sent.into_iter().flat_map(|s| s.latencies_ms).collect();
        lat.sort_by(f64::total_cmp);
        let (p50, p99) = if lat.is_empty() {
            (0.0, 0.0)
        } else {
            (super::percentile(&lat, 0.5), super::percentile(&lat, 0.99))
        };
        let bytes = body(json, 0).len() as f64 * records as f64 / PER_REQUEST as f64;
        println!(
            "{:<12} {:>14.0} {:>10.1} {:>10} {:>9.1} {:>9.1}",
            if json { "JSON array" } else { "text lines" },
            records as f64 / secs,
            bytes / secs / 1e6,
            refused,
            p50,
            p99
        );
        s.ok("POST", &format!("/api/v1/jobs/{id}/stop"), &t, None)?;
    }
    Ok(())
}
