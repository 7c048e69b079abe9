//! `jsonl`: one JSON object per record, `{"batch", "time", "key", "value"}`.

use std::io::Write;

use super::{Sink, record_json};
use crate::batch::RecordBatch;
use crate::engine::Tick;
use crate::job::spec::ValueType;

/// Writes JSON Lines.
pub struct JsonlSink {
    ty: ValueType,
    out: Box<dyn Write + Send>,
}

impl JsonlSink {
    /// Writes to `out`.
    pub fn new(ty: ValueType, out: Box<dyn Write + Send>) -> JsonlSink {
        JsonlSink { ty, out }
    }
}

impl Sink for JsonlSink {
    fn write(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        for r in batch.iter() {
            serde_json::to_writer(&mut self.out, &record_json(tick, &r, self.ty))?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush()
    }
}
