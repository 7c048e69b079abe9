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

/// Keeps the last `capacity` records.
pub struct MemorySink {
    recent: Recent,
    capacity: usize,
    ty: ValueType,
}

impl MemorySink {
    /// A sink into `recent`.
    pub fn new(recent: Recent, capacity: usize, ty: ValueType) -> MemorySink {
        MemorySink { recent, capacity, ty }
    }
}

impl Sink for MemorySink {
    fn write(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        let mut recent = self.recent.lock().expect("output lock");
        for r in batch.iter() {
            if recent.len() == self.capacity {
                recent.pop_front();
            }
            recent.push_back(record_json(tick, &r, self.ty));
        }
        Ok(())
    }
}
