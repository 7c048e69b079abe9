//! A supervisor's checkpoints: restoring a job from its latest checkpoint before its first
//! batch (operator state, source position, batch id and time zero), and writing one every N
//! batches and when the run ends cleanly. A job whose checkpoint cannot be read, or no longer
//! fits its spec, fails with the reason; it never silently starts from scratch.

use std::sync::Arc;

use super::Job;
use crate::checkpoint::{CheckpointInfo, CheckpointMeta, CheckpointStore, FORMAT, check_operators};
use crate::engine::Tick;

/// Where and how often a job checkpoints.
#[derive(Clone, Debug)]
pub struct Checkpointing {
    /// The store.
    pub store: Arc<CheckpointStore>,
    /// The job's id in the store.
    pub job: i64,
    /// Every how many batches.
    pub every_batches: u64,
    /// How many checkpoints to keep.
    pub keep: usize,
}

/// A checkpoint that could not be written.
pub(super) struct WriteFailure {
    /// Why, for people.
    pub reason: String,
    /// `disk_full` or `io_error` when storage failed (the job pauses, and resumes from its
    /// last checkpoint); `None` when the store is corrupt (the job fails).
    pub storage: Option<&'static str>,
}

/// The checkpoints of one run.
pub(super) struct Checkpointer {
    cfg: Checkpointing,
    /// The next snapshot must hold the whole state (nothing of this run is stored yet).
    full_next: bool,
    /// The last batch a checkpoint covers.
    last: u64,
    /// Write one after the next batch, due or not.
    force: bool,
}

impl Checkpointer {
    pub(super) fn new(cfg: Checkpointing) -> Checkpointer {
        Checkpointer {
            cfg,
            full_next: true,
            last: 0,
            force: false,
        }
    }

    /// Restores `job` from its latest checkpoint, if it has one.
    pub(super) fn restore(&mut self, job: &mut Job) -> Result<Option<CheckpointMeta>, String> {
        let latest = self.cfg.store.latest(self.cfg.job).map_err(|e| {
            format!(
                "its last checkpoint cannot be read ({}: {e}); it was not started from scratch",
                e.kind()
            )
        })?;
        let Some((meta, states)) = latest else {
            self.replay_cuts(job, 0)?;
            return Ok(None);
        };
        check_operators(&meta, &job.pipeline.state_kinds())?;
        job.pipeline
            .restore(states)
            .map_err(|e| format!("its last checkpoint (batch {}) does not restore: {e}", meta.batch_id))?;
        if let Some(position) = &meta.source {
            job.source
                .seek(position)
                .map_err(|e| format!("its source cannot go back to its last checkpoint: {e}"))?;
        }
        self.replay_cuts(job, meta.batch_id)?;
        self.full_next = false;
        self.last = meta.batch_id;
        Ok(Some(meta))
    }

    /// Gives the source the logged cuts of the batches after `batch_id`.
    fn replay_cuts(&self, job: &mut Job, batch_id: u64) -> Result<(), String> {
        let cuts = self
            .cfg
            .store
            .cuts_after(self.cfg.job, batch_id)
            .map_err(|e| format!("the batch log after batch {batch_id} cannot be read: {e}"))?;
        job.source.replay(cuts);
        Ok(())
    }

    /// Logs what batch `batch_id` took from the source, if it needs that to cut it again.
    pub(super) fn log_cut(&self, batch_id: u64, cut: &serde_json::Value) -> std::io::Result<()> {
        self.cfg.store.log_cut(self.cfg.job, batch_id, cut).map_err(|e| {
            let kind = if e.kind() == "disk_full" {
                std::io::ErrorKind::StorageFull
            } else {
                std::io::ErrorKind::Other
            };
            std::io::Error::new(kind, e.to_string())
        })
    }

    /// Forgets what this run wrote: the job goes back to before its first checkpoint.
    pub(super) fn reset(&mut self) {
        self.full_next = true;
        self.last = 0;
    }

    /// Writes one after the next batch, due or not (to learn that storage works again).
    pub(super) fn force_next(&mut self) {
        self.force = true;
    }

    /// Writes a checkpoint after `tick` if it is due (every N batches), or if `finally` and
    /// batches ran since the last one.
    pub(super) fn after(
        &mut self,
        job: &mut Job,
        tick: Tick,
        zero_ms: i64,
        finally: bool,
    ) -> Result<Option<CheckpointInfo>, WriteFailure> {
        let due = self.force || tick.batch_id.is_multiple_of(self.cfg.every_batches.max(1));
        if tick.batch_id <= self.last || !(due || finally) {
            return Ok(None);
        }
        let meta = CheckpointMeta {
            format: FORMAT,
            batch_id: tick.batch_id,
            time_ms: tick.time_ms,
            zero_ms,
            source: job.source.position(),
            operators: job.pipeline.state_kinds(),
            udfs: job.pipeline.udf_labels(),
        };
        let deltas = job.pipeline.snapshot(self.full_next);
        let info = self
            .cfg
            .store
            .write(self.cfg.job, &meta, deltas, self.cfg.keep)
            .map_err(|e| {
                // The operators' change tracking moved on: after a failure the next one is full.
                self.full_next = true;
                WriteFailure {
                    reason: format!(
                        "writing its checkpoint of batch {} failed ({}): {e}",
                        tick.batch_id,
                        e.kind()
                    ),
                    storage: match e.kind() {
                        "corrupt" => None,
                        kind => Some(kind),
                    },
                }
            })?;
        self.force = false;
        // Once incremental checkpoints outweigh the last full one, the next is full again.
        self.full_next = self.cfg.store.wants_full(self.cfg.job).unwrap_or(false);
        self.last = tick.batch_id;
        if let Some(position) = &meta.source {
            job.source.committed(position);
        }
        Ok(Some(info))
    }
}
