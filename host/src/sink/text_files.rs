//! `text_files`: one file per output batch, `PREFIX-TIME_IN_MS[.SUFFIX]` (Spark's
//! `saveAsTextFiles`), a record per line. Each file is written to a temporary name, synced and
//! renamed into place, so readers never see half a file; a batch whose file is there already
//! (it was committed before a crash, and the job re-runs it from its checkpoint) is skipped:
//! exactly once per batch.

use std::io::Write;

use super::{Sink, write_record_text};
use crate::batch::RecordBatch;
use crate::engine::Tick;
use crate::job::spec::ValueType;

/// Writes a file per batch.
pub struct TextFilesSink {
    prefix: String,
    suffix: Option<String>,
    ty: ValueType,
    buf: Vec<u8>,
}

impl TextFilesSink {
    /// Files named `prefix-TIME[.suffix]`.
    pub fn new(prefix: String, suffix: Option<String>, ty: ValueType) -> TextFilesSink {
        TextFilesSink {
            prefix,
            suffix,
            ty,
            buf: Vec::new(),
        }
    }

    /// The file for batch time `time_ms`.
    pub fn file_name(&self, time_ms: i64) -> String {
        match &self.suffix {
            Some(s) => format!("{}-{time_ms}.{s}", self.prefix),
            None => format!("{}-{time_ms}", self.prefix),
        }
    }
}

impl Sink for TextFilesSink {
    fn write(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        let path = std::path::PathBuf::from(self.file_name(tick.time_ms));
        if path.exists() {
            return Ok(());
        }
        crate::failpoints::storage("text_files sink")?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_file_name(format!(
            ".{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("batch")
        ));
        self.buf.clear();
        for r in batch.iter() {
            write_record_text(&mut self.buf, &r, self.ty);
            self.buf.push(b'\n');
        }
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&self.buf)?;
            f.sync_all()?;
        }
        if self.buf.capacity() > (64 << 20) {
            self.buf = Vec::new();
        }
        std::fs::rename(&tmp, &path)?;
        // The rename is durable once the directory is.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}
