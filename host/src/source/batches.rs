//! The `batches` source: a JSON Lines file where line `k` is batch `k`'s records, as a JSON
//! array of strings (values) or objects `{"key": "...", "value": "...", "timestamp": ms}`. After
//! the last line, batches are empty (as Spark's `queueStream`).

use serde::Deserialize;

use super::{Source, SourceError};
use crate::batch::RecordBatch;
use crate::engine::Tick;

#[derive(Deserialize)]
#[serde(untagged)]
enum Item {
    Value(String),
    Record(RecordItem),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordItem {
    #[serde(default)]
    key: Option<String>,
    value: String,
    #[serde(default)]
    timestamp: Option<i64>,
}

/// Batches read from a file.
pub struct BatchesSource {
    batches: Vec<Vec<Item>>,
}

impl BatchesSource {
    /// Reads and checks the whole file.
    pub fn open(path: &str) -> Result<BatchesSource, SourceError> {
        let err = |message: String| SourceError::File {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read the batches file: {e}")))?;
        let mut batches = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let items: Vec<Item> = serde_json::from_str(line).map_err(|e| {
                err(format!(
                    "line {}: expected a JSON array of strings or {{\"key\", \"value\", \"timestamp\"}} objects ({e})",
                    i + 1
                ))
            })?;
            batches.push(items);
        }
        Ok(BatchesSource { batches })
    }
}

impl Source for BatchesSource {
    fn next_batch(&mut self, tick: Tick) -> Result<RecordBatch, SourceError> {
        let mut out = RecordBatch::new();
        if let Some(items) = self.batches.get(tick.batch_id as usize - 1) {
            for item in items {
                match item {
                    Item::Value(v) => out.push(None, v.as_bytes(), tick.time_ms),
                    Item::Record(r) => out.push(
                        r.key.as_deref().map(str::as_bytes),
                        r.value.as_bytes(),
                        r.timestamp.unwrap_or(tick.time_ms),
                    ),
                }
            }
        }
        Ok(out)
    }

    fn batches_hint(&self) -> Option<u64> {
        Some(self.batches.len() as u64)
    }

    fn is_live(&self) -> bool {
        false
    }

    /// Batch `k` is line `k`: the batch id alone says where the source is.
    fn position(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({}))
    }
}
