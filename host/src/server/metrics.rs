//! `/metrics` in the Prometheus text format (admin token), encoded with `prometheus-client` from
//! a snapshot taken at scrape time, so a job's series come and go with its run: per job its
//! batches, input records and dead letters, records in and out and refused per stage, UDF calls
//! and time per stage, batch processing time and scheduling delay as histograms; UDF failures
//! by kind; running jobs, tenant lanes, compiled modules and process figures.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::auth::Caller;
use super::{ApiError, AppState};
use crate::supervisor::BatchReport;

/// Upper bounds of the histograms' buckets, in seconds.
const BUCKETS_S: [f64; 11] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A histogram's per-bucket counts (the last bucket is `+Inf`).
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    counts: [u64; BUCKETS_S.len() + 1],
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let i = BUCKETS_S
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(BUCKETS_S.len());
        self.counts[i] += 1;
        self.sum += seconds;
    }

    fn buckets(&self) -> Vec<(f64, u64)> {
        BUCKETS_S
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.iter().copied())
            .collect()
    }

    fn count(&self) -> u64 {
        self.counts.iter().sum()
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
    dead_letters: u64,
    stages: BTreeMap<String, StageTotals>,
    processing: Histogram,
    scheduling_delay: Histogram,
    /// A `kafka` source's lag per (topic, partition), as of the last batch.
    kafka_lag: Vec<(String, i32, i64)>,
}

impl JobMetrics {
    /// Adds one batch.
    pub fn observe(&mut self, r: &BatchReport) {
        self.batches += 1;
        self.records_in += r.records_in;
        self.dead_letters += r.dead_letters;
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
        if let Some(k) = &r.kafka {
            self.kafka_lag = k
                .partitions
                .iter()
                .map(|p| (p.topic.clone(), p.partition, p.lag))
                .collect();
        }
    }
}

/// Figures of the server itself.
#[derive(Debug)]
pub struct ServerMetrics {
    started: Instant,
    /// Jobs that failed, by the kind of their error (`timeout`, `memory_limit`, ...).
    failures: Mutex<BTreeMap<String, u64>>,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        ServerMetrics {
            started: Instant::now(),
            failures: Mutex::default(),
        }
    }
}

impl ServerMetrics {
    /// Counts a job stopped by a failed UDF call of this kind.
    pub fn count_failure(&self, kind: &str) {
        *self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(kind.to_owned())
            .or_default() += 1;
    }
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Everything `/metrics` shows, copied at scrape time.
#[derive(Debug)]
struct Snapshot {
    jobs: Vec<(i64, i64, JobMetrics)>,
    running: usize,
    failures: BTreeMap<String, u64>,
    lanes: usize,
    compiled_modules: usize,
    uptime_s: f64,
    resident_bytes: Option<u64>,
}

type JobLabels = [(&'static str, String); 2];
type StageLabels = [(&'static str, String); 3];

fn job_labels(t: i64, id: i64) -> JobLabels {
    [("tenant", t.to_string()), ("job", id.to_string())]
}

impl Snapshot {
    fn counter(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        pick: fn(&JobMetrics) -> u64,
    ) -> Result<(), std::fmt::Error> {
        let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (t, id, m) in &self.jobs {
            ConstCounter::new(pick(m)).encode(family.encode_family(&job_labels(*t, *id))?)?;
        }
        Ok(())
    }

    fn per_stage(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        pick: fn(&StageTotals) -> f64,
    ) -> Result<(), std::fmt::Error> {
        let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (t, id, m) in &self.jobs {
            for (stage, totals) in &m.stages {
                let labels: StageLabels = [
                    ("tenant", t.to_string()),
                    ("job", id.to_string()),
                    ("stage", stage.clone()),
                ];
                ConstCounter::new(pick(totals)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    fn histogram(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        pick: fn(&JobMetrics) -> &Histogram,
    ) -> Result<(), std::fmt::Error> {
        let mut family = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (t, id, m) in &self.jobs {
            let h = pick(m);
            family
                .encode_family(&job_labels(*t, *id))?
                .encode_histogram::<NoLabelSet>(h.sum, h.count(), &h.buckets(), None)?;
        }
        Ok(())
    }

    fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> Result<(), std::fmt::Error> {
        ConstGauge::new(value).encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.counter(&mut enc, "sluice_job_batches", "Batches a job ran.", |m| m.batches)?;
        self.counter(
            &mut enc,
            "sluice_job_input_records",
            "Records a job's source gave (rate() is the input rate).",
            |m| m.records_in,
        )?;
        self.counter(
            &mut enc,
            "sluice_job_dead_letters",
            "Records a job refused and kept as dead letters.",
            |m| m.dead_letters,
        )?;
        self.per_stage(&mut enc, "sluice_stage_records_in", "Records into a stage.", |s| {
            s.records_in as f64
        })?;
        self.per_stage(&mut enc, "sluice_stage_records_out", "Records out of a stage.", |s| {
            s.records_out as f64
        })?;
        self.per_stage(
            &mut enc,
            "sluice_stage_records_refused",
            "Records a stage refused (bad-record policy).",
            |s| s.refused as f64,
        )?;
        self.per_stage(
            &mut enc,
            "sluice_udf_calls",
            "Wasm UDF calls (one per batch part).",
            |s| s.udf_calls as f64,
        )?;
        self.per_stage(&mut enc, "sluice_udf_seconds", "Time in wasm UDF calls.", |s| {
            s.udf_seconds
        })?;
        self.histogram(
            &mut enc,
            "sluice_batch_processing_seconds",
            "Time to read, run and write a batch.",
            |m| &m.processing,
        )?;
        self.histogram(
            &mut enc,
            "sluice_batch_scheduling_delay_seconds",
            "How late a batch started after its time.",
            |m| &m.scheduling_delay,
        )?;
        {
            let mut family = enc.encode_descriptor(
                "sluice_kafka_lag_records",
                "A kafka source's records written and not yet read, per partition, as of its last batch.",
                None,
                MetricType::Gauge,
            )?;
            for (t, id, m) in &self.jobs {
                for (topic, partition, lag) in &m.kafka_lag {
                    let labels = [
                        ("tenant", t.to_string()),
                        ("job", id.to_string()),
                        ("topic", topic.clone()),
                        ("partition", partition.to_string()),
                    ];
                    ConstGauge::new(*lag as f64).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = enc.encode_descriptor(
                "sluice_udf_failures",
                "Jobs stopped by a failed UDF call, by kind.",
                None,
                MetricType::Counter,
            )?;
            for (kind, n) in &self.failures {
                ConstCounter::new(*n).encode(family.encode_family(&[("kind", kind.as_str())])?)?;
            }
        }
        Snapshot::gauge(
            &mut enc,
            "sluice_jobs_running",
            "Jobs running in this process.",
            self.running as f64,
        )?;
        Snapshot::gauge(
            &mut enc,
            "sluice_tenant_lanes",
            "Tenants with running jobs (each has its own worker lane).",
            self.lanes as f64,
        )?;
        Snapshot::gauge(
            &mut enc,
            "sluice_compiled_modules",
            "Distinct UDF modules compiled in memory.",
            self.compiled_modules as f64,
        )?;
        Snapshot::gauge(
            &mut enc,
            "process_uptime_seconds",
            "Seconds since the server started.",
            self.uptime_s,
        )?;
        if let Some(bytes) = self.resident_bytes {
            Snapshot::gauge(
                &mut enc,
                "process_resident_memory_bytes",
                "Resident memory of the server.",
                bytes as f64,
            )?;
        }
        Ok(())
    }
}

/// The text of `/metrics`.
pub fn render(state: &AppState) -> String {
    let table = state.jobs.snapshot();
    let snapshot = Snapshot {
        running: table.iter().filter(|(_, _, s, _)| !s.is_over()).count(),
        jobs: table
            .iter()
            .map(|(t, id, _, kept)| {
                let m = kept
                    .metrics
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                (*t, *id, m)
            })
            .collect(),
        failures: state
            .metrics
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        lanes: state.jobs.lanes(),
        compiled_modules: state.runtime.compiled_modules(),
        uptime_s: state.metrics.started.elapsed().as_secs_f64(),
        resident_bytes: resident_bytes(),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
        tracing::error!("encoding /metrics failed: {e}");
    }
    out
}

/// Prometheus metrics of the server and its running jobs (admin).
#[utoipa::path(get, path = "/metrics", tag = "server",
    responses(
        (status = 200, description = "the Prometheus text format", body = String, content_type = "text/plain"),
        (status = 403, description = "not an admin", body = super::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> Result<impl IntoResponse, ApiError> {
    if !caller.is_admin {
        return Err(ApiError::forbidden("reading /metrics"));
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        render(&state),
    ))
}
