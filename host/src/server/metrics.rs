//! `/metrics` in the Prometheus text format (admin token): per running job its batches, input
//! records, records in and out and refused per stage, UDF calls and time per stage, batch
//! processing time and scheduling delay as histograms; UDF failures by kind; process figures.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::auth::Caller;
use super::{ApiError, AppState};
use crate::run::BatchReport;

/// Upper bounds of the histograms' buckets, in seconds.
const BUCKETS_S: [f64; 11] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A Prometheus histogram.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    counts: [u64; BUCKETS_S.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, le) in BUCKETS_S.iter().enumerate() {
            if seconds <= *le {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        for (i, le) in BUCKETS_S.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// Totals of one stage.
#[derive(Clone, Debug, Default)]
pub struct StageTotals {
    records_in: u64,
    records_out: u64,
    refused: u64,
    udf_calls: u64,
    udf_seconds: f64,
}

/// What a job did since it started.
#[derive(Clone, Debug, Default)]
pub struct JobMetrics {
    batches: u64,
    records_in: u64,
    stages: BTreeMap<String, StageTotals>,
    processing: Histogram,
    scheduling_delay: Histogram,
}

impl JobMetrics {
    /// Adds one batch.
    pub fn observe(&mut self, r: &BatchReport) {
        self.batches += 1;
        self.records_in += r.records_in;
        for s in &r.stages {
            let t = self.stages.entry(s.stage.clone()).or_default();
            t.records_in += s.records_in;
            t.records_out += s.records_out;
            t.refused += s.errors;
            t.udf_calls += s.udf_calls;
            t.udf_seconds += s.udf_ms / 1e3;
        }
        self.processing.observe(r.processing_ms / 1e3);
        self.scheduling_delay.observe(r.scheduling_delay_ms / 1e3);
    }
}

/// Figures of the server itself.
pub struct ServerMetrics {
    started: Instant,
    /// Jobs that failed, by the kind of their error (`timeout`, `memory_limit`, ...).
    pub failures: Mutex<BTreeMap<String, u64>>,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        ServerMetrics {
            started: Instant::now(),
            failures: Mutex::default(),
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The text of `/metrics`.
pub fn render(state: &AppState, jobs: &[(i64, i64, Arc<Mutex<JobMetrics>>)]) -> String {
    let mut out = String::new();
    let snapshot: Vec<(i64, i64, JobMetrics)> = jobs
        .iter()
        .map(|(t, id, m)| (*t, *id, m.lock().expect("metrics lock").clone()))
        .collect();
    let job_labels = |t: &i64, id: &i64| format!("tenant=\"{t}\",job=\"{id}\"");
    header(&mut out, "sluice_job_batches_total", "counter", "Batches a job ran.");
    for (t, id, m) in &snapshot {
        let _ = writeln!(out, "sluice_job_batches_total{{{}}} {}", job_labels(t, id), m.batches);
    }
    header(
        &mut out,
        "sluice_job_input_records_total",
        "counter",
        "Records a job's source gave (rate() is the input rate).",
    );
    for (t, id, m) in &snapshot {
        let _ = writeln!(
            out,
            "sluice_job_input_records_total{{{}}} {}",
            job_labels(t, id),
            m.records_in
        );
    }
    type Pick = fn(&StageTotals) -> f64;
    let per_stage: [(&str, &str, Pick); 5] = [
        ("sluice_stage_records_in_total", "Records into a stage.", |s| {
            s.records_in as f64
        }),
        ("sluice_stage_records_out_total", "Records out of a stage.", |s| {
            s.records_out as f64
        }),
        (
            "sluice_stage_records_refused_total",
            "Records a stage refused (bad-record policy).",
            |s| s.refused as f64,
        ),
        ("sluice_udf_calls_total", "Wasm UDF calls (one per batch part).", |s| {
            s.udf_calls as f64
        }),
        ("sluice_udf_seconds_total", "Time in wasm UDF calls.", |s| s.udf_seconds),
    ];
    for (name, help, pick) in per_stage {
        header(&mut out, name, "counter", help);
        for (t, id, m) in &snapshot {
            for (stage, totals) in &m.stages {
                let _ = writeln!(
                    out,
                    "{name}{{{},stage=\"{}\"}} {}",
                    job_labels(t, id),
                    escape(stage),
                    pick(totals)
                );
            }
        }
    }
    header(
        &mut out,
        "sluice_batch_processing_seconds",
        "histogram",
        "Time to run a batch's stages and sink.",
    );
    for (t, id, m) in &snapshot {
        m.processing
            .write(&mut out, "sluice_batch_processing_seconds", &job_labels(t, id));
    }
    header(
        &mut out,
        "sluice_batch_scheduling_delay_seconds",
        "histogram",
        "How late a batch started after its time.",
    );
    for (t, id, m) in &snapshot {
        m.scheduling_delay
            .write(&mut out, "sluice_batch_scheduling_delay_seconds", &job_labels(t, id));
    }
    header(
        &mut out,
        "sluice_udf_failures_total",
        "counter",
        "Jobs stopped by a failed UDF call, by kind.",
    );
    for (kind, n) in state.metrics.failures.lock().expect("failures lock").iter() {
        let _ = writeln!(out, "sluice_udf_failures_total{{kind=\"{}\"}} {n}", escape(kind));
    }
    header(
        &mut out,
        "sluice_jobs_running",
        "gauge",
        "Jobs running in this process.",
    );
    let _ = writeln!(out, "sluice_jobs_running {}", jobs.len());
    header(
        &mut out,
        "sluice_compiled_modules",
        "gauge",
        "Distinct UDF modules compiled in memory.",
    );
    let _ = writeln!(out, "sluice_compiled_modules {}", state.runtime.compiled_modules());
    header(
        &mut out,
        "process_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(
        out,
        "process_uptime_seconds {}",
        state.metrics.started.elapsed().as_secs_f64()
    );
    if let Some(bytes) = resident_bytes() {
        header(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory of the server.",
        );
        let _ = writeln!(out, "process_resident_memory_bytes {bytes}");
    }
    out
}

/// `GET /metrics` (admin token).
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> Result<impl IntoResponse, ApiError> {
    if !caller.is_admin {
        return Err(ApiError::forbidden("reading /metrics"));
    }
    let jobs = state.running.metrics();
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&state, &jobs),
    ))
}
