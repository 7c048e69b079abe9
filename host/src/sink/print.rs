//! `print`: the first records of each output batch under a header with its time, as Spark's
//! `pprint`.

use std::io::Write;

use super::{Sink, record_text};
use crate::batch::RecordBatch;
use crate::engine::Tick;
use crate::job::spec::ValueType;

/// Prints batches.
pub struct PrintSink {
    records: usize,
    ty: ValueType,
    out: Box<dyn Write + Send>,
}

impl PrintSink {
    /// Prints the first `records` records of each batch to `out`.
    pub fn new(records: usize, ty: ValueType, out: Box<dyn Write + Send>) -> PrintSink {
        PrintSink { records, ty, out }
    }
}

impl Sink for PrintSink {
    fn write(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        writeln!(self.out, "-------------------------------------------")?;
        writeln!(self.out, "Time: {} ms (batch {})", tick.time_ms, tick.batch_id)?;
        writeln!(self.out, "-------------------------------------------")?;
        for r in batch.iter().take(self.records) {
            writeln!(self.out, "{}", record_text(&r, self.ty))?;
        }
        if batch.len() > self.records {
            writeln!(self.out, "...")?;
        }
        writeln!(self.out)?;
        self.out.flush()
    }
}
