//! The `directory` source: each new file in a directory becomes records, one per line, like
//! Spark's `textFileStream`. Files are picked up when a batch is cut; names starting with `.` or
//! ending in `.tmp` are skipped (write a file under such a name, then rename it into place).
//!
//! Which files a batch took is its cut: the supervisor logs it with the checkpoints before the
//! batch's output is committed, so after a restore the batches after the checkpoint take the
//! same files again (a batch without a cut before a later one with a cut took none), and only
//! then are new files picked up.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use super::{Source, SourceError};
use crate::batch::RecordBatch;
use crate::engine::Tick;

/// New files of a directory.
pub struct DirectorySource {
    dir: PathBuf,
    seen: HashSet<PathBuf>,
    /// The files the last batch took.
    last_cut: Vec<PathBuf>,
    /// Batches to cut again after a restore: their files.
    replay: BTreeMap<u64, Vec<PathBuf>>,
}

impl DirectorySource {
    /// Watches `dir` (it may not exist yet).
    pub fn new(dir: PathBuf) -> DirectorySource {
        DirectorySource {
            dir,
            seen: HashSet::new(),
            last_cut: Vec::new(),
            replay: BTreeMap::new(),
        }
    }

    fn new_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
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
        new
    }

    fn read(&mut self, files: Vec<PathBuf>, tick: Tick) -> Result<RecordBatch, SourceError> {
        let mut out = RecordBatch::new();
        for path in &files {
            let text = std::fs::read(path).map_err(|e| SourceError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            for line in text.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.is_empty() {
                    out.push(None, line, tick.time_ms);
                }
            }
            self.seen.insert(path.clone());
        }
        self.last_cut = files;
        Ok(out)
    }
}

impl Source for DirectorySource {
    fn next_batch(&mut self, tick: Tick) -> Result<RecordBatch, SourceError> {
        if let Some(files) = self.replay.remove(&tick.batch_id) {
            return self.read(files, tick);
        }
        if self.replay.range(tick.batch_id..).next().is_some() {
            // Cut before the crash with no file: empty again.
            self.replay.retain(|b, _| *b > tick.batch_id);
            self.last_cut.clear();
            return Ok(RecordBatch::new());
        }
        self.replay.clear();
        let files = self.new_files();
        self.read(files, tick)
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

    fn cut(&self) -> Option<serde_json::Value> {
        (!self.last_cut.is_empty())
            .then(|| serde_json::Value::Array(self.last_cut.iter().map(|p| p.display().to_string().into()).collect()))
    }

    fn replay(&mut self, cuts: Vec<(u64, serde_json::Value)>) {
        self.replay = cuts
            .into_iter()
            .map(|(b, files)| {
                let files = files
                    .as_array()
                    .map(|f| f.iter().filter_map(|p| p.as_str()).map(PathBuf::from).collect())
                    .unwrap_or_default();
                (b, files)
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(k: u64) -> Tick {
        Tick {
            batch_id: k,
            time_ms: k as i64 * 1000,
        }
    }

    fn values(b: &RecordBatch) -> Vec<String> {
        b.iter()
            .map(|r| String::from_utf8_lossy(r.value).into_owned())
            .collect()
    }

    #[test]
    fn batches_after_a_checkpoint_take_the_same_files_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DirectorySource::new(dir.path().to_owned());
        std::fs::write(dir.path().join("a"), "a1\na2\n").unwrap();
        assert_eq!(values(&s.next_batch(tick(1)).unwrap()), ["a1", "a2"]);
        let checkpoint = s.position().unwrap();
        std::fs::write(dir.path().join("b"), "b1\n").unwrap();
        assert_eq!(values(&s.next_batch(tick(2)).unwrap()), ["b1"]);
        let cut2 = s.cut().unwrap();
        assert!(s.next_batch(tick(3)).unwrap().is_empty());
        assert!(s.cut().is_none(), "an empty batch logs nothing");
        std::fs::write(dir.path().join("c"), "c1\n").unwrap();
        assert_eq!(values(&s.next_batch(tick(4)).unwrap()), ["c1"]);
        let cut4 = s.cut().unwrap();
        // A crash; "d" comes while the job is down.
        std::fs::write(dir.path().join("d"), "d1\n").unwrap();
        let mut s = DirectorySource::new(dir.path().to_owned());
        s.seek(&checkpoint).unwrap();
        s.replay(vec![(2, cut2), (4, cut4)]);
        assert_eq!(values(&s.next_batch(tick(2)).unwrap()), ["b1"]);
        assert!(s.next_batch(tick(3)).unwrap().is_empty());
        assert_eq!(values(&s.next_batch(tick(4)).unwrap()), ["c1"]);
        assert_eq!(values(&s.next_batch(tick(5)).unwrap()), ["d1"], "then the new files");
    }
}
