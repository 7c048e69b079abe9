//! `window(length, slide)`: every slide, the union of the batches in `(T - length, T]`. It keeps
//! only the batches a future window can still hold.

use std::collections::VecDeque;

use super::{Operator, StateKind, emits_at};
use crate::batch::RecordBatch;
use crate::engine::EngineError;
use crate::engine::context::StageContext;
use crate::engine::state::{BlobSet, StateDelta, StateError, StoredState, batch_bytes, batch_from_bytes};

/// The window operator.
pub struct Window {
    length_ms: i64,
    slide_ms: i64,
    batch_ms: i64,
    buffer: VecDeque<(i64, RecordBatch)>,
    stored: BlobSet,
}

impl Window {
    /// A window of `length_ms` sliding every `slide_ms`, over a job with batches of `batch_ms`
    /// (both multiples of the feeding stream's slide: checked when the job is validated).
    pub fn new(length_ms: i64, slide_ms: i64, batch_ms: i64) -> Window {
        Window {
            length_ms,
            slide_ms,
            batch_ms,
            buffer: VecDeque::new(),
            stored: BlobSet::default(),
        }
    }
}

/// The blob name of the batch at `t` (zero-padded: names sort by time).
fn batch_name(t: i64) -> String {
    format!("batch/{t:020}")
}

impl Operator for Window {
    fn on_batch(
        &mut self,
        cx: &mut StageContext<'_>,
        input: Option<RecordBatch>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        let t = cx.tick.batch_id as i64 * self.batch_ms;
        // The next window that can hold this batch ends at the next slide boundary at or after t.
        let next_end = (t + self.slide_ms - 1).div_euclid(self.slide_ms) * self.slide_ms;
        if let Some(b) = input
            && t > next_end - self.length_ms
        {
            self.buffer.push_back((t, b));
        }
        if !emits_at(cx.tick.batch_id, self.batch_ms, self.slide_ms) {
            return Ok(None);
        }
        let mut out = RecordBatch::new();
        for (time, b) in &self.buffer {
            if *time > t - self.length_ms {
                for r in b.iter() {
                    out.push_ref(r);
                }
            }
        }
        let keep_after = t + self.slide_ms - self.length_ms;
        while self.buffer.front().is_some_and(|(time, _)| *time <= keep_after) {
            self.buffer.pop_front();
        }
        Ok(Some(out))
    }

    fn state_kind(&self) -> Option<StateKind> {
        Some(StateKind {
            shape: format!(
                "window length={} slide={} batch={}",
                self.length_ms, self.slide_ms, self.batch_ms
            ),
            format: 1,
        })
    }

    fn snapshot(&mut self, full: bool) -> StateDelta {
        let mut delta = StateDelta {
            full,
            ..StateDelta::default()
        };
        let current = self.buffer.iter().map(|(t, b)| {
            let bytes: Box<dyn FnOnce() -> Vec<u8>> = Box::new(move || batch_bytes(b));
            (batch_name(*t), bytes)
        });
        self.stored.delta(full, current, &mut delta, &[]);
        delta
    }

    fn restore(&mut self, state: StoredState) -> Result<(), StateError> {
        self.buffer.clear();
        for (name, bytes) in &state.blobs {
            let t = name
                .strip_prefix("batch/")
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| StateError(format!("unknown window blob {name:?}")))?;
            self.buffer.push_back((t, batch_from_bytes(bytes)?));
        }
        self.stored.restored(state.blobs.keys());
        Ok(())
    }
}
