//! `window(length, slide)`: every slide, the union of the batches in `(T - length, T]`. It keeps
//! only the batches a future window can still hold.

use std::collections::VecDeque;

use super::{Operator, emits_at};
use crate::batch::RecordBatch;
use crate::engine::EngineError;
use crate::engine::context::StageContext;

/// The window operator.
pub struct Window {
    length_ms: i64,
    slide_ms: i64,
    batch_ms: i64,
    buffer: VecDeque<(i64, RecordBatch)>,
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
        }
    }
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
}
