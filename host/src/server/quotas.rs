//! Per-tenant quotas, with defaults here and overrides on the command line: jobs, bytes of UDF
//! modules, memory and CPU time per UDF call (fed to the runtime's limits), and ingest rate.
//! Over a quota the API answers 403 (stored things) or 429 (rates) with code `quota` and the
//! quota's name in the message.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::StatusCode;

use super::ApiError;
use crate::runtime::CallLimits;

/// The quotas every tenant gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// Jobs a tenant may have.
    pub jobs_max: usize,
    /// Bytes of UDF modules (all versions) a tenant may store.
    pub module_bytes_max: i64,
    /// Linear memory of one UDF call of the tenant's jobs.
    pub call_memory_bytes_max: usize,
    /// Time of one UDF call of the tenant's jobs.
    pub call_cpu_time_ms_max: u64,
    /// Records per second one job may take over HTTP.
    pub ingest_records_per_s_max: u64,
    /// Time to validate and compile one upload.
    pub compile_time_ms_max: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            jobs_max: 20,
            module_bytes_max: 100 << 20,
            call_memory_bytes_max: 64 << 20,
            call_cpu_time_ms_max: 1_000,
            ingest_records_per_s_max: 1_000_000,
            compile_time_ms_max: 10_000,
        }
    }
}

impl Quotas {
    /// The call limits of the tenant's jobs.
    pub fn call_limits(&self, base: &CallLimits) -> CallLimits {
        CallLimits {
            memory_bytes_max: self.call_memory_bytes_max,
            cpu_time_ms_max: self.call_cpu_time_ms_max,
            ..base.clone()
        }
    }
}

/// The error for a quota that a stored thing would exceed.
pub fn exceeded(quota: &str, detail: String) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "quota",
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
        let mut rates = self.0.lock().expect("rates lock");
        let entry = rates.entry(id).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        if entry.1 + n > max {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "quota",
                format!(
                    "over the quota ingest_records_per_s_max: job {id} may take {max} records a second; retry in the next second"
                ),
            ));
        }
        entry.1 += n;
        Ok(())
    }
}
