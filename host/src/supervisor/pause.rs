//! A job whose storage fails (the disk is full, a write fails) pauses instead of failing: its
//! state says `paused` with `disk_full` or `io_error` and what failed, it waits (1 s, doubling
//! up to 10 s between tries), then goes back to its last good checkpoint (state, source
//! position, batch id; before its first one, to where the run started) and runs the batches
//! after it again, writing a checkpoint after the first (it is `running` again once that is
//! written). Sinks that commit by batch id skip what they already hold, so nothing is written
//! twice. If storage still fails, it waits again. Stop and shutdown work while paused.

use std::collections::HashMap;

use super::checkpoints::Checkpointer;
use super::{Core, Ended, Job, JobState, RunError};
use crate::engine::Clock;

/// Where the run started: batch, time zero, the source's position then.
pub(super) struct StartPoint {
    pub k: u64,
    pub zero: i64,
    pub position: Option<serde_json::Value>,
}

/// How long the next pause waits.
pub(super) struct Backoff(i64);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(1_000)
    }
}

/// `disk_full` or `io_error` if a batch failed because storage did.
pub(super) fn storage_failure(e: &RunError) -> Option<&'static str> {
    let kind = match e {
        RunError::Sink(e) | RunError::CutLog(e) => e.kind(),
        RunError::Source(e) => e.io_kind()?,
        _ => return None,
    };
    Some(if kind == std::io::ErrorKind::StorageFull {
        "disk_full"
    } else {
        "io_error"
    })
}

impl Core {
    /// Says the job pauses after a storage failure; returns until when it waits (on the job's
    /// clock) before it goes back to its last checkpoint.
    pub(super) fn pause(&mut self, clock: &dyn Clock, code: &'static str, reason: &str, backoff: &mut Backoff) -> i64 {
        tracing::warn!(code, reason, wait_ms = backoff.0, "storage failed: the job pauses");
        self.set(
            JobState::Paused {
                code,
                reason: reason.to_owned(),
            },
            None,
        );
        let until = clock.now_ms() + backoff.0;
        backoff.0 = (backoff.0 * 2).min(10_000);
        until
    }
}

/// After a pause: goes back to the last checkpoint (or where the run started), returning the
/// batch and time zero to go on from, or `Err` when that fails.
pub(super) fn go_back(job: &mut Job, checkpoints: &mut Checkpointer, start: &StartPoint) -> Result<(u64, i64), Ended> {
    let failed = |reason: String| Ended::Failed {
        reason,
        udf_failure: None,
    };
    let back = match checkpoints.restore(job).map_err(failed)? {
        Some(meta) => (meta.batch_id, meta.zero_ms),
        None => {
            job.pipeline
                .restore(HashMap::new())
                .map_err(|e| failed(format!("its state could not be reset: {e}")))?;
            if let Some(position) = &start.position {
                job.source
                    .seek(position)
                    .map_err(|e| failed(format!("its source cannot go back to its start: {e}")))?;
            }
            checkpoints.reset();
            (start.k, start.zero)
        }
    };
    tracing::info!(
        batch = back.0,
        "the job goes back to its last checkpoint and tries again"
    );
    // It stays `paused` until that checkpoint is written: then storage works again.
    checkpoints.force_next();
    Ok(back)
}
