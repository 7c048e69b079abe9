//! Per-tenant quotas: every size a tenant's specs and requests can ask for, each a named field
//! with its default here. The operator sets the defaults (`sluice serve --config FILE`, section
//! `[quotas]`, or the `--quota-*` flags); an admin overrides them per tenant
//! (`PATCH /api/v1/tenants/{id}`). Over a quota the API answers 403 (stored things, admission),
//! 429 (rates, buffers) or 400 with the spec field's path, always naming the quota.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::ApiError;
use super::error::ErrorCode;
use crate::runtime::CallLimits;

/// What a tenant may use. Every field is a quota of its own name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Quotas {
    /// Jobs the tenant may have (stored, running or not).
    pub jobs_max: usize,
    /// Bytes of UDF modules (all versions) the tenant may store.
    pub module_bytes_max: i64,
    /// Bytes of compiled artifacts of its module versions the compile cache may hold for it.
    pub compiled_bytes_max: i64,
    /// Time to compile one upload, ms (past it the compile is killed: 422).
    pub compile_time_ms_max: u64,
    /// Uploads of the tenant compiling at once (more wait, then 429).
    pub compiles_concurrent_max: usize,
    /// Linear memory of one UDF call of its jobs.
    pub call_memory_bytes_max: usize,
    /// CPU time of one UDF call of its jobs, ms (the calling thread's own CPU clock).
    pub call_cpu_time_ms_max: u64,
    /// Wall-clock time of one UDF call, ms: a backstop for calls starved of CPU.
    pub call_wall_time_ms_max: u64,
    /// Warm UDF instances its running jobs may hold at once, over all jobs and workers.
    pub instances_max: usize,
    /// Worker threads its jobs share (its lane); its jobs together never run on more.
    pub cpu_workers_max: usize,
    /// Records per second one job may take over HTTP.
    pub ingest_records_per_s_max: u64,
    /// Records one batch may hold, from any source (a generator's `rate_per_s` x the
    /// interval, `lines_per_batch`, an `http` source's `buffer_records`, a socket's buffer).
    pub batch_records_max: u64,
    /// Bytes a job's source may hold between batches (the `http` ingest buffer, a socket's
    /// buffer).
    pub source_buffer_bytes_max: usize,
    /// Bytes of one line from a socket (longer lines are dropped and counted).
    pub socket_line_bytes_max: usize,
    /// Shortest batch interval, ms.
    pub batch_interval_ms_min: i64,
    /// Longest batch interval, ms.
    pub batch_interval_ms_max: i64,
    /// Stages one job may have.
    pub stages_max: usize,
    /// Batches one window may span (`length / batch_interval`): the panes a window keeps.
    pub window_batches_max: i64,
    /// Output records kept per job for the API.
    pub output_records_max: usize,
    /// Bytes of output records kept per job for the API.
    pub output_bytes_max: usize,
    /// Bytes of batch reports kept per job for the API.
    pub reports_bytes_max: usize,
    /// Bytes of refused records (dead letters) kept per job; the oldest are dropped (counted).
    pub dead_letter_bytes_max: usize,
    /// Bytes of UDF log lines and errors kept per job; the oldest are dropped (counted).
    pub udf_log_bytes_max: usize,
    /// Bytes of the tenant's output database (its jobs' `sqlite` sinks).
    pub sink_db_bytes_max: u64,
    /// Bytes of a job's ingest log (its `http` source's acknowledged records) that no
    /// checkpoint covers yet; a request that would go over is refused with 429.
    pub ingest_log_bytes_max: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            jobs_max: 20,
            module_bytes_max: 100 << 20,
            compiled_bytes_max: 512 << 20,
            compile_time_ms_max: 10_000,
            compiles_concurrent_max: 1,
            call_memory_bytes_max: 64 << 20,
            call_cpu_time_ms_max: 1_000,
            call_wall_time_ms_max: 10_000,
            instances_max: 64,
            cpu_workers_max: crate::engine::workers::available_cores(),
            ingest_records_per_s_max: 1_000_000,
            batch_records_max: 1_000_000,
            source_buffer_bytes_max: 64 << 20,
            socket_line_bytes_max: 1 << 20,
            batch_interval_ms_min: 10,
            batch_interval_ms_max: 86_400_000,
            stages_max: 64,
            window_batches_max: 100_000,
            output_records_max: 1_000,
            output_bytes_max: 4 << 20,
            reports_bytes_max: 2 << 20,
            dead_letter_bytes_max: 1 << 20,
            udf_log_bytes_max: 1 << 20,
            sink_db_bytes_max: 1 << 30,
            ingest_log_bytes_max: 1 << 30,
        }
    }
}

impl Quotas {
    /// The call limits of the tenant's jobs.
    pub fn call_limits(&self, base: &CallLimits) -> CallLimits {
        CallLimits {
            memory_bytes_max: self.call_memory_bytes_max,
            cpu_time_ms_max: self.call_cpu_time_ms_max,
            wall_time_ms_max: self.call_wall_time_ms_max.max(self.call_cpu_time_ms_max),
            ..base.clone()
        }
    }

    /// These quotas with `overrides` (a JSON object of quota fields; `null` removes one)
    /// applied; unknown names and wrong types are refused with the field named.
    pub fn with_overrides(&self, overrides: &serde_json::Value) -> Result<Quotas, String> {
        let mut merged = serde_json::to_value(self).expect("quotas serialize");
        let (serde_json::Value::Object(base), serde_json::Value::Object(over)) = (&mut merged, overrides) else {
            return Err("quotas are a JSON object of quota names and values".into());
        };
        for (k, v) in over {
            if !v.is_null() {
                base.insert(k.clone(), v.clone());
            }
        }
        let q: Quotas = serde_path_to_error::deserialize(merged).map_err(|e| {
            let path = e.path().to_string();
            format!(
                "{}{}",
                if path == "." {
                    String::new()
                } else {
                    format!("{path}: ")
                },
                e.into_inner()
            )
        })?;
        q.check()?;
        Ok(q)
    }

    /// Refuses quotas that could not work (zero workers, an empty range).
    pub fn check(&self) -> Result<(), String> {
        if self.cpu_workers_max == 0 || self.cpu_workers_max > 256 {
            return Err("cpu_workers_max: must be 1 to 256".into());
        }
        if self.batch_interval_ms_min <= 0 || self.batch_interval_ms_min > self.batch_interval_ms_max {
            return Err("batch_interval_ms_min: must be positive and at most batch_interval_ms_max".into());
        }
        if self.compiles_concurrent_max == 0 {
            return Err("compiles_concurrent_max: must be at least 1".into());
        }
        Ok(())
    }
}

/// The error for a quota that a stored thing would exceed.
pub fn exceeded(quota: &str, detail: String) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        ErrorCode::Quota,
        format!("over the quota {quota}: {detail}"),
    )
}

/// Records taken per job in the current second, for the ingest rate quota.
#[derive(Default)]
pub struct IngestRates(Mutex<HashMap<i64, (i64, u64)>>);

impl IngestRates {
    /// Counts `n` records for job `id` now; 429 if that passes `max` records in this second.
    pub fn take(&self, id: i64, n: u64, max: u64) -> Result<(), ApiError> {
        let second = crate::engine::Clock::now_ms(&crate::engine::SystemClock) / 1000;
        let mut rates = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = rates.entry(id).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        if entry.1.saturating_add(n) > max {
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::Quota,
                format!(
                    "over the quota ingest_records_per_s_max: job {id} may take {max} records a second; retry in the next second"
                ),
            ));
        }
        entry.1 += n;
        Ok(())
    }

    /// Forgets a deleted job.
    pub fn forget(&self, id: i64) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::Quotas;
    use serde_json::json;

    #[test]
    fn overrides_apply_by_name_and_refuse_unknown_names() {
        let q = Quotas::default()
            .with_overrides(&json!({ "jobs_max": 2, "stages_max": null }))
            .unwrap();
        assert_eq!((q.jobs_max, q.stages_max), (2, Quotas::default().stages_max));
        let e = Quotas::default().with_overrides(&json!({ "jobs": 2 })).unwrap_err();
        assert!(e.contains("unknown field `jobs`"), "{e}");
        let e = Quotas::default()
            .with_overrides(&json!({ "jobs_max": "two" }))
            .unwrap_err();
        assert!(e.contains("jobs_max"), "{e}");
        let e = Quotas::default()
            .with_overrides(&json!({ "cpu_workers_max": 0 }))
            .unwrap_err();
        assert!(e.contains("cpu_workers_max"), "{e}");
    }
}
