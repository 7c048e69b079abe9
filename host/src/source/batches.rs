//! The `batches` source: a JSON Lines file where line `k` is batch `k`'s records, as a JSON
//! array of strings (values) or objects `{"key": "...", "value": "...", "timestamp": ms}`. After
//! the last line, batches are empty (as Spark's `queueStream`).
//!
//! The file is streamed: opening it only counts its lines, and each batch reads and parses its
//! own line straight into the batch's records (strings borrowed from the line where they need no
//! unescaping), so memory holds one batch, never the file. A line that does not parse fails its
//! batch with the line's number.

use std::borrow::Cow;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{Source, SourceError};
use crate::batch::RecordBatch;
use crate::engine::Tick;

/// Batches read from a file, one line at a time.
pub struct BatchesSource {
    path: String,
    reader: BufReader<std::fs::File>,
    /// Lines read so far (the next line is `read + 1`).
    read: u64,
    lines: u64,
    line: Vec<u8>,
}

impl BatchesSource {
    /// Opens the file and counts its lines (batches).
    pub fn open(path: &str) -> Result<BatchesSource, SourceError> {
        let file = std::fs::File::open(path).map_err(|e| read_error(path, e))?;
        let lines = count_lines(file).map_err(|e| read_error(path, e))?;
        Ok(BatchesSource {
            path: path.to_owned(),
            reader: Self::reader(path)?,
            read: 0,
            lines,
            line: Vec::new(),
        })
    }

    fn reader(path: &str) -> Result<BufReader<std::fs::File>, SourceError> {
        let file = std::fs::File::open(path).map_err(|e| read_error(path, e))?;
        Ok(BufReader::with_capacity(1 << 20, file))
    }

    fn error(&self, message: String) -> SourceError {
        SourceError::File {
            path: self.path.clone(),
            message,
        }
    }

    /// Reads line `k` (1-based) into `self.line`; false past the end.
    fn read_line(&mut self, k: u64) -> Result<bool, SourceError> {
        if k <= self.read {
            // Back to an earlier batch (a restore): from the top again.
            self.reader = Self::reader(&self.path)?;
            self.read = 0;
        }
        while self.read < k {
            self.line.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.line)
                .map_err(|e| read_error(&self.path, e))?;
            if n == 0 {
                return Ok(false);
            }
            self.read += 1;
        }
        Ok(true)
    }
}

fn read_error(path: &str, e: std::io::Error) -> SourceError {
    SourceError::File {
        path: path.to_owned(),
        message: format!("cannot read the batches file: {e}"),
    }
}

impl Source for BatchesSource {
    fn next_batch(&mut self, tick: Tick) -> Result<RecordBatch, SourceError> {
        if !self.read_line(tick.batch_id)? {
            return Ok(RecordBatch::new());
        }
        // Sized once from the line (a record per comma at most; its bytes plus 16 of layout),
        // so building the batch never doubles and copies it.
        let records = memchr::memchr_iter(b',', &self.line).count() + 1;
        let mut out = RecordBatch::with_capacity(records, self.line.len() + 16 * records);
        let text = std::str::from_utf8(&self.line)
            .map_err(|e| self.error(format!("line {}: not UTF-8 ({e})", tick.batch_id)))?;
        let mut de = serde_json::Deserializer::from_str(text.trim_end());
        let parsed = Records {
            out: &mut out,
            time_ms: tick.time_ms,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        if let Err(e) = parsed {
            return Err(self.error(format!(
                "line {}: expected a JSON array of strings or {{\"key\", \"value\", \"timestamp\"}} objects ({e})",
                tick.batch_id
            )));
        }
        // The line is parsed: its bytes are not held while the batch runs.
        if self.line.capacity() > (64 << 20) {
            self.line = Vec::new();
        }
        Ok(out)
    }

    fn batches_hint(&self) -> Option<u64> {
        Some(self.lines)
    }

    fn is_live(&self) -> bool {
        false
    }

    /// Batch `k` is line `k`: the batch id alone says where the source is.
    fn position(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({}))
    }
}

/// The lines of a file, read 1 MiB at a time (a last line without its newline counts).
pub fn count_lines(mut file: impl Read) -> std::io::Result<u64> {
    let mut lines = 0u64;
    let mut last = b'\n';
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        lines += memchr::memchr_iter(b'\n', &chunk[..n]).count() as u64;
        last = chunk[n - 1];
    }
    if last != b'\n' {
        lines += 1;
    }
    Ok(lines)
}

/// A line's array, parsed straight into `out`.
struct Records<'b> {
    out: &'b mut RecordBatch,
    time_ms: i64,
}

impl<'de> DeserializeSeed<'de> for Records<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Item {
                out: &mut *self.out,
                time_ms: self.time_ms,
            })?
            .is_some()
        {}
        Ok(())
    }
}

/// One element: a string (the value) or `{"key", "value", "timestamp"}`.
struct Item<'b> {
    out: &'b mut RecordBatch,
    time_ms: i64,
}

impl<'de> DeserializeSeed<'de> for Item<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Item<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an object with \"value\" (and \"key\", \"timestamp\")")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.out.push(None, v.as_bytes(), self.time_ms);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut key, mut value, mut timestamp) = (None::<Text<'de>>, None::<Text<'de>>, None::<i64>);
        while let Some(field) = map.next_key::<Text<'de>>()? {
            match &*field.0 {
                "key" => key = map.next_value::<Option<Text<'de>>>()?,
                "value" => value = Some(map.next_value()?),
                "timestamp" => timestamp = map.next_value()?,
                other => {
                    return Err(serde::de::Error::unknown_field(other, &["key", "value", "timestamp"]));
                }
            }
        }
        let value = value.ok_or_else(|| serde::de::Error::missing_field("value"))?;
        self.out.push(
            key.as_ref().map(|k| k.0.as_bytes()),
            value.0.as_bytes(),
            timestamp.unwrap_or(self.time_ms),
        );
        Ok(())
    }
}

/// A JSON string, borrowed from the line unless it had escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(batch_id: u64) -> Tick {
        Tick {
            batch_id,
            time_ms: batch_id as i64 * 1000,
        }
    }

    fn values(b: &RecordBatch) -> Vec<(Option<String>, String, i64)> {
        b.iter()
            .map(|r| {
                (
                    r.key.map(|k| String::from_utf8_lossy(k).into_owned()),
                    String::from_utf8_lossy(r.value).into_owned(),
                    r.timestamp_ms,
                )
            })
            .collect()
    }

    #[test]
    fn lines_are_batches_read_one_at_a_time_and_again_after_a_seek_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.jsonl");
        std::fs::write(
            &path,
            "[\"a\", \"b\\\"q\"]\n[]\n[{\"key\": \"k\", \"value\": \"v\", \"timestamp\": 7}, {\"value\": \"w\", \"key\": null}]",
        )
        .unwrap();
        let mut s = BatchesSource::open(path.to_str().unwrap()).unwrap();
        assert_eq!(s.batches_hint(), Some(3), "a last line without a newline counts");
        let first = s.next_batch(tick(1)).unwrap();
        assert_eq!(values(&first), [(None, "a".into(), 1000), (None, "b\"q".into(), 1000)]);
        assert_eq!(s.next_batch(tick(2)).unwrap().len(), 0);
        let third = values(&s.next_batch(tick(3)).unwrap());
        assert_eq!(third, [(Some("k".into()), "v".into(), 7), (None, "w".into(), 3000)]);
        assert_eq!(s.next_batch(tick(4)).unwrap().len(), 0, "past the end: empty");
        // After a restore: batch 1 again, then a jump forward.
        assert_eq!(values(&s.next_batch(tick(1)).unwrap()), values(&first));
        assert_eq!(values(&s.next_batch(tick(3)).unwrap()), third);
    }

    #[test]
    fn a_bad_line_fails_its_batch_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.jsonl");
        std::fs::write(&path, "[\"a\"]\n[1, 2]\n[{\"value\": \"v\", \"colour\": 1}]\n").unwrap();
        let mut s = BatchesSource::open(path.to_str().unwrap()).unwrap();
        assert!(s.next_batch(tick(1)).is_ok());
        let e = s.next_batch(tick(2)).unwrap_err().to_string();
        assert!(e.contains("line 2: expected a JSON array of strings"), "{e}");
        let e = s.next_batch(tick(3)).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("colour"), "{e}");
    }
}
