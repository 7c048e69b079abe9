//! Reading a durable `http` source's log back after a restart: the batches cut after the
//! restored checkpoint, exactly as they were cut (each mark says which records its batch took),
//! and the tail of records logged (and acknowledged) but not yet in any batch, which goes first
//! into the next new batch.

use std::collections::BTreeMap;
use std::path::Path;

use super::Ingested;
use crate::source::ingest_log::{self, Entry, LogError};

/// One batch cut again.
pub(super) struct Cut {
    /// Its records with their arrival times.
    pub records: Vec<(Ingested, i64)>,
    /// The log offset after its last record.
    pub end: u64,
}

/// The log between a checkpoint and the end it had when the source opened.
#[derive(Default)]
pub(super) struct Replay {
    batches: BTreeMap<u64, Cut>,
    tail: Vec<(Ingested, i64)>,
    tail_end: u64,
}

impl Replay {
    /// Reads the log in `dir` from `from` to `to`.
    pub(super) fn read(dir: &Path, from: u64, to: u64) -> Result<Replay, LogError> {
        let mut replay = Replay {
            tail_end: from,
            ..Replay::default()
        };
        // Records not yet claimed by a mark, with the offset each one's frame ends at.
        let mut pending: Vec<(Ingested, i64, u64)> = Vec::new();
        for (end, entry) in ingest_log::read(dir, from, to)? {
            match entry {
                Entry::Records { arrived_ms, records } => {
                    pending.extend(records.into_iter().map(|r| (r, arrived_ms, end)));
                }
                Entry::Mark { batch_id, end: upto } => {
                    let taken = pending.partition_point(|(_, _, e)| *e <= upto);
                    let records = pending.drain(..taken).map(|(r, a, _)| (r, a)).collect();
                    replay.batches.insert(batch_id, Cut { records, end: upto });
                }
            }
        }
        if let Some((_, _, end)) = pending.last() {
            replay.tail_end = *end;
        }
        replay.tail = pending.into_iter().map(|(r, a, _)| (r, a)).collect();
        Ok(replay)
    }

    /// Batch `batch_id` as it was cut before, if it was: marks exist only for batches that took
    /// records, so a batch without one before a later marked batch was empty.
    pub(super) fn batch(&mut self, batch_id: u64) -> Option<Cut> {
        if let Some(cut) = self.batches.remove(&batch_id) {
            return Some(cut);
        }
        let later = self.batches.range(batch_id..).next().is_some();
        self.batches.retain(|&b, _| b > batch_id);
        later.then(Cut::empty)
    }

    /// The records logged after the last mark, and the offset after them.
    pub(super) fn take_tail(&mut self) -> (Vec<(Ingested, i64)>, u64) {
        (std::mem::take(&mut self.tail), self.tail_end)
    }
}

impl Cut {
    fn empty() -> Cut {
        Cut {
            records: Vec::new(),
            end: 0,
        }
    }
}
