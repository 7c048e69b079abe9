//! A sink that keeps the last records in memory, as JSON objects (`record_json`): the output a
//! server job shows through the API.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::{Sink, record_json};
use crate::batch::RecordBatch;
use crate::engine::Tick;
use crate::job::spec::ValueType;

/// Recent output records, newest last.
pub type Recent = Arc<Mutex<VecDeque<serde_json::Value>>>;

/// Keeps the last `capacity` records, and sends each to the live subscribers.
pub struct MemorySink {
    recent: Recent,
    capacity: usize,
    ty: ValueType,
    live: tokio::sync::broadcast::Sender<serde_json::Value>,
}

impl MemorySink {
    /// A sink into `recent` and `live`.
    pub fn new(
        recent: Recent,
        capacity: usize,
        ty: ValueType,
        live: tokio::sync::broadcast::Sender<serde_json::Value>,
    ) -> MemorySink {
        MemorySink {
            recent,
            capacity,
            ty,
            live,
        }
    }
}

impl Sink for MemorySink {
    fn write(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        let mut recent = self.recent.lock().expect("output lock");
        for r in batch.iter() {
            if recent.len() == self.capacity {
                recent.pop_front();
            }
            let record = record_json(tick, &r, self.ty);
            // No subscriber is fine: the stream is for whoever listens now.
            let _ = self.live.send(record.clone());
            recent.push_back(record);
        }
        Ok(())
    }
}
