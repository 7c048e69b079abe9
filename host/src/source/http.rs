//! The `http` source: records a server job receives over HTTP wait in a buffer bounded in
//! records and in bytes until the next batch is cut. A request whose records do not all fit is
//! refused whole (the server answers 429), so nothing is ever dropped silently and a sender can
//! retry. A server job's buffer is durable: a request's records are appended to the job's
//! ingest log and synced (one fsync for every request that came meanwhile: group commit)
//! before they are taken, each cut batch writes a mark saying which records it took, and after
//! a crash the batches after the checkpoint are cut again exactly as before (`replay`).

mod replay;
mod writer;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::ingest_log::{Appender, LogError};
use super::{Source, SourceError};
use crate::batch::RecordBatch;
use crate::engine::{Clock, SystemClock, Tick};
use replay::Replay;

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

/// Why a request's records were not taken (none of them were).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The buffer has no room for them.
    Full(Full),
    /// The ingest log holds `uncovered` bytes no checkpoint covers yet, and they would go
    /// over `max`.
    LogFull { uncovered: u64, max: u64 },
    /// The log could not be written (`disk_full`: no space left).
    Storage { disk_full: bool, message: String },
    /// The source is closed (its run ended).
    Closed,
}

/// The records waiting, with the room taken by requests being logged.
#[derive(Debug, Default)]
struct Queue {
    records: VecDeque<(Ingested, i64)>,
    bytes: usize,
    reserved: usize,
    reserved_bytes: usize,
    /// The log offset after the last records pushed.
    end: u64,
}

impl Queue {
    fn push(&mut self, records: Vec<Ingested>, arrived_ms: i64, bytes: usize) {
        self.bytes += bytes;
        self.records.extend(records.into_iter().map(|r| (r, arrived_ms)));
    }

    fn release(&mut self, n: usize, bytes: usize) {
        self.reserved -= n;
        self.reserved_bytes -= bytes;
    }
}

/// A durable buffer's link to its log writer.
#[derive(Debug)]
struct Link {
    tx: Mutex<Option<std::sync::mpsc::Sender<writer::Append>>>,
    /// The log's end offset.
    end: AtomicU64,
    /// The offset the last checkpoint covers.
    covered: AtomicU64,
    /// `ingest_log_bytes_max`.
    uncovered_max: u64,
}

/// The bounded buffer between the HTTP handler and the job.
#[derive(Debug)]
pub struct IngestBuffer {
    queue: Mutex<Queue>,
    capacity: usize,
    bytes_max: usize,
    log: Option<Link>,
}

impl IngestBuffer {
    /// A buffer of `capacity` records and `bytes_max` bytes, in memory only.
    pub fn new(capacity: usize, bytes_max: usize) -> IngestBuffer {
        IngestBuffer {
            queue: Mutex::default(),
            capacity: capacity.max(1),
            bytes_max: bytes_max.max(1),
            log: None,
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn room_in(&self, q: &Queue) -> Full {
        Full {
            free: self.capacity.saturating_sub(q.records.len() + q.reserved),
            capacity: self.capacity,
            free_bytes: self.bytes_max.saturating_sub(q.bytes + q.reserved_bytes),
            bytes_max: self.bytes_max,
        }
    }

    /// Takes all of `records`, or none. A durable buffer answers once they are on disk.
    pub async fn take(&self, records: Vec<Ingested>) -> Result<usize, Refused> {
        let n = records.len();
        let bytes: usize = records.iter().map(Ingested::size_bytes).sum();
        let arrived_ms = SystemClock.now_ms();
        {
            let mut q = self.queue();
            let room = self.room_in(&q);
            if n > room.free || bytes > room.free_bytes {
                return Err(Refused::Full(room));
            }
            let Some(_) = &self.log else {
                q.push(records, arrived_ms, bytes);
                return Ok(n);
            };
            q.reserved += n;
            q.reserved_bytes += bytes;
        }
        let link = self.log.as_ref().expect("a durable buffer");
        let answer = writer::append(link, records, arrived_ms, bytes).await;
        if answer.is_err() {
            self.queue().release(n, bytes);
        }
        answer
    }

    /// What the buffer can take now.
    pub fn room(&self) -> Full {
        self.room_in(&self.queue())
    }

    /// Everything waiting, and the log offset after it.
    fn drain(&self) -> (Vec<(Ingested, i64)>, u64) {
        let mut q = self.queue();
        q.bytes = 0;
        (q.records.drain(..).collect(), q.end)
    }
}

/// The source side of an `IngestBuffer`.
pub struct HttpSource {
    buffer: Arc<IngestBuffer>,
    durable: Option<Durable>,
}

/// What a durable source keeps besides its buffer.
struct Durable {
    dir: PathBuf,
    writer: Option<std::thread::JoinHandle<()>>,
    /// The log's end when it was opened: what came before is read back from disk.
    end_at_open: u64,
    /// Where reading back starts (the log's start, or the restored checkpoint's position).
    start: u64,
    replay: Option<Replay>,
    /// Every record before this offset is in a cut batch.
    position: u64,
}

impl HttpSource {
    /// A source with a fresh in-memory buffer of `capacity` records and `bytes_max` bytes.
    pub fn new(capacity: usize, bytes_max: usize) -> HttpSource {
        HttpSource {
            buffer: Arc::new(IngestBuffer::new(capacity, bytes_max)),
            durable: None,
        }
    }

    /// A source whose buffer is backed by the ingest log in `dir` (created if need be),
    /// holding at most `uncovered_max` bytes no checkpoint covers yet. Until `seek`, the
    /// batches start from the log's start.
    pub fn durable(
        capacity: usize,
        bytes_max: usize,
        dir: &Path,
        uncovered_max: u64,
    ) -> Result<HttpSource, SourceError> {
        let log = Appender::open(dir).map_err(SourceError::Log)?;
        let (start, end) = (log.start, log.end());
        let (tx, rx) = std::sync::mpsc::channel();
        let buffer = Arc::new(IngestBuffer {
            log: Some(Link {
                tx: Mutex::new(Some(tx)),
                end: AtomicU64::new(end),
                covered: AtomicU64::new(start),
                uncovered_max,
            }),
            ..IngestBuffer::new(capacity, bytes_max)
        });
        buffer.queue().end = end;
        let writer = writer::spawn(rx, log, buffer.clone()).map_err(|e| {
            SourceError::Log(LogError::Io {
                path: dir.display().to_string(),
                source: e,
            })
        })?;
        Ok(HttpSource {
            buffer,
            durable: Some(Durable {
                dir: dir.to_owned(),
                writer: Some(writer),
                end_at_open: end,
                start,
                replay: None,
                position: start,
            }),
        })
    }

    fn batch(records: &[(Ingested, i64)]) -> RecordBatch {
        let mut out = RecordBatch::with_capacity(records.len(), records.iter().map(|(r, _)| r.value.len() + 24).sum());
        for (r, arrived) in records {
            out.push(r.key.as_deref(), &r.value, r.timestamp_ms.unwrap_or(*arrived));
        }
        out
    }
}

impl Source for HttpSource {
    fn next_batch(&mut self, tick: Tick) -> Result<RecordBatch, SourceError> {
        let Some(d) = &mut self.durable else {
            return Ok(Self::batch(&self.buffer.drain().0));
        };
        if d.replay.is_none() {
            d.replay = Some(Replay::read(&d.dir, d.start, d.end_at_open).map_err(SourceError::Log)?);
        }
        let replay = d.replay.as_mut().expect("read above");
        if let Some(cut) = replay.batch(tick.batch_id) {
            d.position = d.position.max(cut.end);
            return Ok(Self::batch(&cut.records));
        }
        let (mut records, tail_end) = replay.take_tail();
        let (queued, queued_end) = self.buffer.drain();
        records.extend(queued);
        if records.is_empty() {
            return Ok(RecordBatch::new());
        }
        let end = tail_end.max(queued_end);
        let link = self.buffer.log.as_ref().expect("a durable buffer");
        writer::mark(link, tick.batch_id, end).map_err(SourceError::Log)?;
        d.position = end;
        Ok(Self::batch(&records))
    }

    fn is_live(&self) -> bool {
        true
    }

    fn ingest(&self) -> Option<Arc<IngestBuffer>> {
        Some(self.buffer.clone())
    }

    /// The ingest log offset before which every record is in a cut batch.
    fn position(&self) -> Option<serde_json::Value> {
        let d = self.durable.as_ref()?;
        Some(serde_json::json!({ "offset": d.position }))
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<(), SourceError> {
        let Some(d) = &mut self.durable else {
            return Ok(());
        };
        let offset = position["offset"]
            .as_u64()
            .filter(|o| {
                *o >= d.start
                    && *o
                        <= self
                            .buffer
                            .log
                            .as_ref()
                            .map_or(d.end_at_open, |l| l.end.load(Ordering::SeqCst))
            })
            .ok_or_else(|| {
                SourceError::Position(format!(
                    "http: the checkpoint's position {position} is outside the ingest log ({}..{})",
                    d.start, d.end_at_open
                ))
            })?;
        d.start = offset;
        d.position = offset;
        d.replay = None;
        if let Some(link) = &self.buffer.log {
            link.covered.store(offset, Ordering::SeqCst);
            // Everything logged so far is read back from the log (a seek in the middle of a
            // run, after a storage failure, goes back over batches cut since the open).
            let mut q = self.buffer.queue();
            d.end_at_open = link.end.load(Ordering::SeqCst);
            q.records.clear();
            q.bytes = 0;
            q.end = d.end_at_open;
        }
        Ok(())
    }

    /// A checkpoint covers the log up to `position`: the segments before it go.
    fn committed(&mut self, position: &serde_json::Value) {
        let (Some(d), Some(offset)) = (&self.durable, position["offset"].as_u64()) else {
            return;
        };
        if let Some(link) = &self.buffer.log {
            link.covered.fetch_max(offset, Ordering::SeqCst);
        }
        if let Err(e) = super::ingest_log::truncate_before(&d.dir, offset) {
            tracing::warn!(error = %e, "the ingest log's checkpointed segments could not be deleted");
        }
    }
}

impl Drop for HttpSource {
    /// Closes the buffer (later requests get `Closed`) and waits for the writer to finish
    /// what it was given, so the next run of the job opens a log no one writes to.
    fn drop(&mut self) {
        if let Some(link) = &self.buffer.log {
            link.tx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        }
        if let Some(w) = self.durable.as_mut().and_then(|d| d.writer.take()) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests;
