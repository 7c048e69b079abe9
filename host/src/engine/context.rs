//! What a stage sees besides its input: the wasm runtime and this worker's warm instances, the
//! job's bad-record policy, and where refused records and per-stage counts go.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::workers::Workers;
use super::{EngineError, Tick};
use crate::batch::RecordBatch;
use crate::runtime::{CallLimits, LoadedModule, RecordError, Runtime, UdfError, UdfInstance};

/// What to do with a record a UDF (or built-in) refuses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BadRecordPolicy {
    /// Fail the job with the error and the record.
    #[default]
    Fail,
    /// Send the record with the error to the dead-letter output and go on.
    Skip,
}

/// A refused record, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The stage that refused it.
    pub stage: String,
    /// The batch it was in.
    pub batch_id: u64,
    /// Its index in the stage's input of that batch.
    pub index: u32,
    /// The record's key, as text (lossy).
    pub key: Option<String>,
    /// The record's value, as text (lossy).
    pub value: String,
    /// The error.
    pub error: String,
}

/// A line a UDF wrote with the SDK's `log` during a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UdfLogLine {
    /// The stage whose call wrote it.
    pub stage: String,
    /// The batch.
    pub batch_id: u64,
    /// The UDF's `module@version`.
    pub udf: String,
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// Its text (cut at 4 KiB by the runtime).
    pub message: String,
}

/// Log lines kept per batch; the rest are counted in `logs_dropped`, so a UDF that
/// logs on every record cannot flood the host (each call keeps 100 at most already).
pub const LOG_LINES_PER_BATCH_MAX: usize = 1000;

/// Records in and out of one stage for one batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StageCounts {
    /// The stage's name.
    pub stage: String,
    /// Records in.
    pub records_in: u64,
    /// Records out.
    pub records_out: u64,
    /// Records refused.
    pub errors: u64,
    /// Wasm calls the stage made (one per batch part).
    pub udf_calls: u64,
    /// Time spent in those calls, in ms.
    pub udf_ms: f64,
}

/// A UDF a stage calls: a function of a loaded module, with the limits its calls run under.
#[derive(Clone, Debug)]
pub struct UdfHandle {
    /// The module.
    pub module: Arc<LoadedModule>,
    /// The function.
    pub function: String,
    /// Per-call limits.
    pub limits: CallLimits,
}

/// The per-batch context of a stage.
pub struct StageContext<'a> {
    /// The runtime UDFs run in.
    pub runtime: &'a Runtime,
    /// The worker threads and their warm instances.
    pub workers: &'a Workers,
    /// The job's policy for refused records.
    pub policy: BadRecordPolicy,
    /// The batch.
    pub tick: Tick,
    /// The stage's name (its path in the job spec).
    pub stage: &'a str,
    /// Refused records of this stage in this batch (policy `skip`).
    pub dead_letters: Vec<DeadLetter>,
    /// Records refused by this stage in this batch.
    pub errors: u64,
    /// Index in the stage's input of the first record of the part being processed (errors
    /// name records by their index in the whole input).
    pub first_record: u32,
    /// Wasm calls made by this stage in this batch.
    pub udf_calls: u64,
    /// Time spent in them, in ns.
    pub udf_nanos: u64,
    /// The UDFs' log lines of this stage in this batch.
    pub logs: Vec<UdfLogLine>,
    /// Log lines over `LOG_LINES_PER_BATCH_MAX`, counted and not kept.
    pub logs_dropped: u64,
}

/// Batches smaller than this run as one part on one worker: splitting costs more than it saves.
pub const PARTITION_RECORDS_MIN: usize = 2048;
/// Parts are at most this big, also on one worker: a wasm call's input and output then stay
/// within a few MiB (cache-friendly, and far below a UDF's memory limit).
pub const PARTITION_RECORDS_MAX: usize = 16384;

impl<'a> StageContext<'a> {
    /// A context for `stage` in batch `tick`.
    pub fn new(
        runtime: &'a Runtime,
        workers: &'a Workers,
        policy: BadRecordPolicy,
        tick: Tick,
        stage: &'a str,
    ) -> Self {
        StageContext {
            runtime,
            workers,
            policy,
            tick,
            stage,
            dead_letters: Vec::new(),
            errors: 0,
            first_record: 0,
            udf_calls: 0,
            udf_nanos: 0,
            logs: Vec::new(),
            logs_dropped: 0,
        }
    }

    /// Keeps log lines of this stage (up to `LOG_LINES_PER_BATCH_MAX`; the rest are counted).
    pub fn keep_logs(&mut self, lines: Vec<UdfLogLine>, dropped: u64) {
        let room = LOG_LINES_PER_BATCH_MAX.saturating_sub(self.logs.len());
        self.logs_dropped += dropped + lines.len().saturating_sub(room) as u64;
        self.logs.extend(lines.into_iter().take(room));
    }

    /// Runs `call` on this thread's warm instance of `udf`'s module.
    pub fn call<T>(
        &mut self,
        udf: &UdfHandle,
        call: impl FnOnce(&mut UdfInstance, &str) -> Result<T, UdfError>,
    ) -> Result<T, EngineError> {
        let mut warm = self
            .workers
            .slot()
            .lock()
            .expect("a worker slot is never poisoned: calls do not panic");
        let started = std::time::Instant::now();
        let mut logs = Vec::new();
        let result = warm.with(self.runtime, &udf.module, &udf.limits, self.workers.budget(), |i| {
            let r = call(i, &udf.function);
            logs = i.last_logs().to_vec();
            r
        });
        drop(warm);
        if !logs.is_empty() {
            let lines = logs
                .into_iter()
                .map(|l| UdfLogLine {
                    stage: self.stage.to_owned(),
                    batch_id: self.tick.batch_id,
                    udf: udf.module.label().to_owned(),
                    level: l.level.name(),
                    message: l.message,
                })
                .collect();
            self.keep_logs(lines, 0);
        }
        self.udf_calls += 1;
        self.udf_nanos += started.elapsed().as_nanos() as u64;
        result.map_err(|source| EngineError::Udf {
            stage: self.stage.to_owned(),
            source,
        })
    }

    /// Runs `f` on each item on the worker threads, results in item order. Refused records of
    /// every item are gathered here; the first error (in item order) is returned.
    pub fn parallel<T: Send, R: Send>(
        &mut self,
        items: Vec<T>,
        f: impl Fn(&mut StageContext<'_>, T) -> Result<R, EngineError> + Sync,
    ) -> Result<Vec<R>, EngineError> {
        use rayon::prelude::*;
        let (runtime, workers, policy, tick, stage) = (self.runtime, self.workers, self.policy, self.tick, self.stage);
        let results: Vec<_> = workers.install(|| {
            items
                .into_par_iter()
                .map(|item| {
                    let mut sub = StageContext::new(runtime, workers, policy, tick, stage);
                    let r = f(&mut sub, item);
                    let logs = (std::mem::take(&mut sub.logs), sub.logs_dropped);
                    (r, sub.dead_letters, sub.errors, sub.udf_calls, sub.udf_nanos, logs)
                })
                .collect()
        });
        let mut out = Vec::with_capacity(results.len());
        for (r, dead, errors, calls, nanos, (logs, dropped)) in results {
            self.keep_logs(logs, dropped);
            self.dead_letters.extend(dead);
            self.errors += errors;
            self.udf_calls += calls;
            self.udf_nanos += nanos;
            out.push(r?);
        }
        Ok(out)
    }

    /// Into how many partitions to split a batch of `records`: one per worker for large batches,
    /// and enough that none holds more than `PARTITION_RECORDS_MAX` records.
    pub fn partitions_for(&self, records: usize) -> usize {
        if records < PARTITION_RECORDS_MIN {
            return 1;
        }
        let per_worker = self.workers.threads().min(records / (PARTITION_RECORDS_MIN / 2));
        per_worker.max(records.div_ceil(PARTITION_RECORDS_MAX)).max(1)
    }

    /// Applies the policy to refused inputs: the first fails the batch under `fail`; under `skip`
    /// each goes to the dead letters. `describe(i)` gives input `i` as `(key, value)`.
    pub fn refuse(
        &mut self,
        errors: &[RecordError],
        describe: impl Fn(u32) -> (Option<String>, String),
    ) -> Result<(), EngineError> {
        for e in errors {
            let (key, value) = describe(e.index);
            match self.policy {
                BadRecordPolicy::Fail => {
                    let record = match &key {
                        Some(k) => format!("key {k:?}, value {value:?}"),
                        None => format!("{value:?}"),
                    };
                    return Err(EngineError::BadRecord {
                        stage: self.stage.to_owned(),
                        batch_id: self.tick.batch_id,
                        index: self.first_record + e.index,
                        message: e.message.clone(),
                        record: cut(&record, 200),
                    });
                }
                BadRecordPolicy::Skip => {
                    self.errors += 1;
                    self.dead_letters.push(DeadLetter {
                        stage: self.stage.to_owned(),
                        batch_id: self.tick.batch_id,
                        index: self.first_record + e.index,
                        key,
                        value,
                        error: e.message.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Describes record `i` of `batch` as `(key, value)` text, for `StageContext::refuse`.
pub fn describe(batch: &RecordBatch) -> impl Fn(u32) -> (Option<String>, String) + '_ {
    |i| match batch.get(i as usize) {
        Some(r) => (r.key.map(lossy), lossy(r.value)),
        None => (None, String::new()),
    }
}

/// Bytes as text for messages: lossy UTF-8.
pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
