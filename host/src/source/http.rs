//! The `http` source: records a server job receives over HTTP wait in a buffer bounded in
//! records and in bytes until the next batch is cut. A request whose records do not all fit is
//! refused whole (the server answers 429), so nothing is ever dropped silently and a sender can
//! retry.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::{Source, SourceError};
use crate::batch::RecordBatch;
use crate::engine::{Clock, SystemClock, Tick};

/// Records waiting by default.
pub const BUFFER_RECORDS_DEFAULT: usize = 100_000;

/// One record sent over HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingested {
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Vec<u8>,
    /// Its timestamp (ms); arrival time when the sender gave none.
    pub timestamp_ms: Option<i64>,
}

impl Ingested {
    /// Bytes it takes in the buffer.
    pub fn size_bytes(&self) -> usize {
        self.value.len() + self.key.as_ref().map_or(0, Vec::len) + 48
    }
}

/// The bounded buffer between the HTTP handler and the job.
#[derive(Debug)]
pub struct IngestBuffer {
    queue: Mutex<(VecDeque<(Ingested, i64)>, usize)>,
    capacity: usize,
    bytes_max: usize,
}

/// The buffer had no room for the whole request.
#[derive(Debug, PartialEq, Eq)]
pub struct Full {
    /// Records it could still take.
    pub free: usize,
    /// Records it holds at most.
    pub capacity: usize,
    /// Bytes it could still take.
    pub free_bytes: usize,
    /// Bytes it holds at most.
    pub bytes_max: usize,
}

impl IngestBuffer {
    /// A buffer of `capacity` records and `bytes_max` bytes.
    pub fn new(capacity: usize, bytes_max: usize) -> IngestBuffer {
        IngestBuffer {
            queue: Mutex::new((VecDeque::new(), 0)),
            capacity: capacity.max(1),
            bytes_max: bytes_max.max(1),
        }
    }

    /// Takes all of `records`, or none if they do not all fit.
    pub fn offer(&self, records: Vec<Ingested>) -> Result<usize, Full> {
        let bytes: usize = records.iter().map(Ingested::size_bytes).sum();
        let mut q = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let free = self.capacity - q.0.len();
        let free_bytes = self.bytes_max.saturating_sub(q.1);
        if records.len() > free || bytes > free_bytes {
            return Err(Full {
                free,
                capacity: self.capacity,
                free_bytes,
                bytes_max: self.bytes_max,
            });
        }
        let now = SystemClock.now_ms();
        let n = records.len();
        q.1 += bytes;
        q.0.extend(records.into_iter().map(|r| (r, now)));
        Ok(n)
    }

    /// What the buffer can take now: `(records, bytes)`.
    pub fn room(&self) -> Full {
        let q = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Full {
            free: self.capacity - q.0.len(),
            capacity: self.capacity,
            free_bytes: self.bytes_max.saturating_sub(q.1),
            bytes_max: self.bytes_max,
        }
    }

    fn drain(&self) -> Vec<(Ingested, i64)> {
        let mut q = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        q.1 = 0;
        q.0.drain(..).collect()
    }
}

/// The source side of an `IngestBuffer`.
pub struct HttpSource {
    buffer: Arc<IngestBuffer>,
}

impl HttpSource {
    /// A source with a fresh buffer of `capacity` records and `bytes_max` bytes.
    pub fn new(capacity: usize, bytes_max: usize) -> HttpSource {
        HttpSource {
            buffer: Arc::new(IngestBuffer::new(capacity, bytes_max)),
        }
    }
}

impl Source for HttpSource {
    fn next_batch(&mut self, _tick: Tick) -> Result<RecordBatch, SourceError> {
        let records = self.buffer.drain();
        let mut out = RecordBatch::with_capacity(records.len(), records.iter().map(|(r, _)| r.value.len() + 24).sum());
        for (r, arrived) in &records {
            out.push(r.key.as_deref(), &r.value, r.timestamp_ms.unwrap_or(*arrived));
        }
        Ok(out)
    }

    fn is_live(&self) -> bool {
        true
    }

    fn ingest(&self) -> Option<Arc<IngestBuffer>> {
        Some(self.buffer.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: &str) -> Ingested {
        Ingested {
            key: None,
            value: v.as_bytes().to_vec(),
            timestamp_ms: None,
        }
    }

    #[test]
    fn a_request_that_does_not_fit_is_refused_whole() {
        let mut s = HttpSource::new(3, 1 << 20);
        let buf = s.ingest().unwrap();
        assert_eq!(buf.offer(vec![rec("a"), rec("b")]), Ok(2));
        assert_eq!(buf.offer(vec![rec("c"), rec("d")]).unwrap_err().free, 1);
        let b = s
            .next_batch(Tick {
                batch_id: 1,
                time_ms: 0,
            })
            .unwrap();
        let values: Vec<_> = b.iter().map(|r| r.value.to_vec()).collect();
        assert_eq!(
            values,
            [b"a".to_vec(), b"b".to_vec()],
            "nothing of the refused request got in"
        );
        assert_eq!(
            buf.offer(vec![rec("c"), rec("d"), rec("e")]),
            Ok(3),
            "a cut batch frees the buffer"
        );
    }

    #[test]
    fn the_buffer_is_bounded_in_bytes_too() {
        let mut s = HttpSource::new(1000, 1000);
        let buf = s.ingest().unwrap();
        let big = |n| Ingested {
            key: None,
            value: vec![b'x'; n],
            timestamp_ms: None,
        };
        assert_eq!(buf.offer(vec![big(600)]), Ok(1));
        let full = buf.offer(vec![big(600)]).unwrap_err();
        assert_eq!((full.free_bytes, full.bytes_max), (1000 - 648, 1000));
        s.next_batch(Tick {
            batch_id: 1,
            time_ms: 0,
        })
        .unwrap();
        assert_eq!(buf.offer(vec![big(600)]), Ok(1), "a cut batch frees the bytes");
    }
}
