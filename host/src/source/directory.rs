//! The `directory` source: each new file in a directory becomes records, one per line, like
//! Spark's `textFileStream`. Files are picked up when a batch is cut; names starting with `.` or
//! ending in `.tmp` are skipped (write a file under such a name, then rename it into place).

use std::collections::HashSet;
use std::path::PathBuf;

use super::{Source, SourceError};
use crate::batch::RecordBatch;
use crate::engine::Tick;

/// New files of a directory.
pub struct DirectorySource {
    dir: PathBuf,
    seen: HashSet<PathBuf>,
}

impl DirectorySource {
    /// Watches `dir` (it may not exist yet).
    pub fn new(dir: PathBuf) -> DirectorySource {
        DirectorySource {
            dir,
            seen: HashSet::new(),
        }
    }
}

impl Source for DirectorySource {
    fn next_batch(&mut self, tick: Tick) -> Result<RecordBatch, SourceError> {
        let mut out = RecordBatch::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(out);
        };
        let mut new: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && !self.seen.contains(p))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.') && !n.ends_with(".tmp"))
            })
            .collect();
        new.sort();
        for path in new {
            let text = std::fs::read(&path).map_err(|e| SourceError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            for line in text.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.is_empty() {
                    out.push(None, line, tick.time_ms);
                }
            }
            self.seen.insert(path);
        }
        Ok(out)
    }

    fn is_live(&self) -> bool {
        true
    }

    fn position(&self) -> Option<serde_json::Value> {
        let mut seen: Vec<String> = self.seen.iter().map(|p| p.display().to_string()).collect();
        seen.sort();
        Some(serde_json::json!({ "seen": seen }))
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<(), SourceError> {
        let seen = position["seen"]
            .as_array()
            .ok_or_else(|| super::bad_position("directory", position))?;
        self.seen = seen.iter().filter_map(|p| p.as_str()).map(PathBuf::from).collect();
        Ok(())
    }
}
