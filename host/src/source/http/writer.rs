//! The log writer of a durable `http` buffer: one thread per log that takes every request
//! waiting, appends their frames in one write and syncs once (group commit), then pushes
//! their records into the buffer in log order and answers each request. Batch marks go the
//! same way, so a mark is on disk before its batch's output is committed.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};

use super::{IngestBuffer, Ingested, Link, Refused};
use crate::source::ingest_log::{self, Appender, LogError};

/// Bytes gathered into one write at most.
const GROUP_BYTES_MAX: usize = 8 << 20;

/// What a request hands the writer.
pub(super) struct Append {
    frame: Vec<u8>,
    what: What,
}

enum What {
    Records {
        records: Vec<Ingested>,
        arrived_ms: i64,
        bytes: usize,
        reply: tokio::sync::oneshot::Sender<Result<usize, Refused>>,
    },
    Mark {
        reply: mpsc::SyncSender<Result<(), LogError>>,
    },
}

fn send(link: &Link, append: Append) -> bool {
    link.tx
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .is_some_and(|tx| tx.send(append).is_ok())
}

/// Logs a request's records (room for them is reserved in the buffer); they are in the
/// buffer when this answers `Ok`.
pub(super) async fn append(
    link: &Link,
    records: Vec<Ingested>,
    arrived_ms: i64,
    bytes: usize,
) -> Result<usize, Refused> {
    let mut frame = Vec::with_capacity(bytes + 32);
    ingest_log::records_frame(&mut frame, arrived_ms, &records);
    let uncovered = link
        .end
        .load(Ordering::SeqCst)
        .saturating_sub(link.covered.load(Ordering::SeqCst));
    if uncovered + frame.len() as u64 > link.uncovered_max {
        return Err(Refused::LogFull {
            uncovered,
            max: link.uncovered_max,
        });
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    let what = What::Records {
        records,
        arrived_ms,
        bytes,
        reply,
    };
    if !send(link, Append { frame, what }) {
        return Err(Refused::Closed);
    }
    answer.await.unwrap_or(Err(Refused::Closed))
}

/// Logs that batch `batch_id` took every record before `end`; returns once it is on disk.
pub(super) fn mark(link: &Link, batch_id: u64, end: u64) -> Result<(), LogError> {
    let mut frame = Vec::with_capacity(32);
    ingest_log::mark_frame(&mut frame, batch_id, end);
    let (reply, answer) = mpsc::sync_channel(1);
    let closed = || LogError::Io {
        path: "ingest log".into(),
        source: std::io::Error::other("the log writer is gone"),
    };
    if !send(
        link,
        Append {
            frame,
            what: What::Mark { reply },
        },
    ) {
        return Err(closed());
    }
    answer.recv().unwrap_or_else(|_| Err(closed()))
}

/// Starts the writer of `log` for `buffer`; it ends when the buffer's sender is dropped and
/// everything sent before is written.
pub(super) fn spawn(
    rx: mpsc::Receiver<Append>,
    log: Appender,
    buffer: Arc<IngestBuffer>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ingest-log".into())
        .spawn(move || run(rx, log, buffer))
}

fn run(rx: mpsc::Receiver<Append>, mut log: Appender, buffer: Arc<IngestBuffer>) {
    let link = buffer.log.as_ref().expect("a durable buffer");
    let mut group: Vec<Append> = Vec::new();
    let mut bytes = Vec::new();
    while let Ok(first) = rx.recv() {
        bytes.clear();
        bytes.extend_from_slice(&first.frame);
        group.push(first);
        while bytes.len() < GROUP_BYTES_MAX {
            match rx.try_recv() {
                Ok(a) => {
                    bytes.extend_from_slice(&a.frame);
                    group.push(a);
                }
                Err(_) => break,
            }
        }
        let mut at = log.end();
        match log.append(&bytes) {
            Ok(end) => {
                let mut taken = Vec::new();
                let mut marked = Vec::new();
                {
                    // The end moves with the queue, under its lock: a seek sees both agree.
                    let mut q = buffer.queue();
                    link.end.store(end, Ordering::SeqCst);
                    for a in group.drain(..) {
                        at += a.frame.len() as u64;
                        match a.what {
                            What::Records {
                                records,
                                arrived_ms,
                                bytes,
                                reply,
                            } => {
                                let n = records.len();
                                q.release(n, bytes);
                                q.push(records, arrived_ms, bytes);
                                q.end = at;
                                taken.push((reply, n));
                            }
                            What::Mark { reply } => marked.push(reply),
                        }
                    }
                }
                for (reply, n) in taken {
                    let _ = reply.send(Ok(n));
                }
                for reply in marked {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) => {
                let disk_full = e.io_kind() == Some(std::io::ErrorKind::StorageFull);
                tracing::warn!(error = %e, "the ingest log could not be written");
                for a in group.drain(..) {
                    match a.what {
                        What::Records { reply, .. } => {
                            let _ = reply.send(Err(Refused::Storage {
                                disk_full,
                                message: e.to_string(),
                            }));
                        }
                        What::Mark { reply } => {
                            let _ = reply.send(Err(LogError::Io {
                                path: "ingest log".into(),
                                source: std::io::Error::new(
                                    e.io_kind().unwrap_or(std::io::ErrorKind::Other),
                                    e.to_string(),
                                ),
                            }));
                        }
                    }
                }
            }
        }
    }
}
