//! `print`: the first records of each output batch under a header with its time, as Spark's
//! `pprint`, written with one `write` per batch.

use std::io::Write;

use super::Sink;
use crate::batch::RecordBatch;
use crate::engine::Tick;
use crate::job::spec::ValueType;

/// Prints batches.
pub struct PrintSink {
    records: usize,
    ty: ValueType,
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
}

impl PrintSink {
    /// Prints the first `records` records of each batch to `out`.
    pub fn new(records: usize, ty: ValueType, out: Box<dyn Write + Send>) -> PrintSink {
        PrintSink {
            records,
            ty,
            out,
            buf: Vec::new(),
        }
    }
}

impl Sink for PrintSink {
    fn write(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        let b = &mut self.buf;
        b.clear();
        writeln!(b, "-------------------------------------------")?;
        writeln!(b, "Time: {} ms (batch {})", tick.time_ms, tick.batch_id)?;
        writeln!(b, "-------------------------------------------")?;
        for r in batch.iter().take(self.records) {
            super::write_record_text(b, &r, self.ty);
            b.push(b'\n');
        }
        if batch.len() > self.records {
            writeln!(b, "...")?;
        }
        writeln!(b)?;
        self.out.write_all(&self.buf)?;
        self.out.flush()
    }
}
