//! The durable ingest log of an `http` source: what the server acknowledged, on disk before the
//! acknowledgement. It is a directory of segment files named by the log offset they start at;
//! offsets run on across segments (a segment starts where the one before ends). Each entry is
//! a frame `[length u32][crc32 u32][kind u8][body]`: a request's records (with their arrival
//! time), or a batch mark (batch `b` took every record up to offset `e`). A crash can leave a
//! torn frame at the very end (never acknowledged: its fsync had not returned); opening the log
//! cuts it off. Segments wholly before a checkpointed position are deleted.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::http::Ingested;

/// A segment is rolled over once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 16 << 20;
const HEADER: usize = 8;
const KIND_RECORDS: u8 = 1;
const KIND_MARK: u8 = 2;

/// One entry of the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    /// A request's records, arrived at `arrived_ms`.
    Records { arrived_ms: i64, records: Vec<Ingested> },
    /// Batch `batch_id` took every record before offset `end`.
    Mark { batch_id: u64, end: u64 },
}

/// The log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file operation failed.
    #[error("ingest log {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A frame before the end does not read back.
    #[error("ingest log {path}: damaged at offset {offset} ({what}); it was left as it is")]
    Corrupt { path: String, offset: u64, what: String },
}

impl LogError {
    /// The I/O error's kind, if it is one (`StorageFull`: the disk is full).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            LogError::Io { source, .. } => Some(source.kind()),
            LogError::Corrupt { .. } => None,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Appends one frame of `kind` to `out`, its body written by `body`.
fn frame(out: &mut Vec<u8>, kind: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    out.push(kind);
    body(out);
    let payload = &out[start + HEADER..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// A request's records as one frame.
pub fn records_frame(out: &mut Vec<u8>, arrived_ms: i64, records: &[Ingested]) {
    frame(out, KIND_RECORDS, |out| {
        out.extend_from_slice(&arrived_ms.to_le_bytes());
        out.extend_from_slice(&(records.len() as u32).to_le_bytes());
        for r in records {
            let flags = u8::from(r.key.is_some()) | (u8::from(r.timestamp_ms.is_some()) << 1);
            out.push(flags);
            if let Some(k) = &r.key {
                put_bytes(out, k);
            }
            put_bytes(out, &r.value);
            if let Some(t) = r.timestamp_ms {
                out.extend_from_slice(&t.to_le_bytes());
            }
        }
    });
}

/// A batch mark as one frame.
pub fn mark_frame(out: &mut Vec<u8>, batch_id: u64, end: u64) {
    frame(out, KIND_MARK, |out| {
        out.extend_from_slice(&batch_id.to_le_bytes());
        out.extend_from_slice(&end.to_le_bytes());
    });
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        (self.0.len() >= n).then(|| {
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            a
        })
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        Some(self.take(n)?.to_vec())
    }
}

fn decode(payload: &[u8]) -> Option<Entry> {
    let (&kind, body) = payload.split_first()?;
    let mut r = Reader(body);
    let entry = match kind {
        KIND_RECORDS => {
            let arrived_ms = r.u64()? as i64;
            let n = r.u32()? as usize;
            let mut records = Vec::with_capacity(n.min(body.len()));
            for _ in 0..n {
                let flags = r.take(1)?[0];
                let key = if flags & 1 != 0 { Some(r.bytes()?) } else { None };
                let value = r.bytes()?;
                let timestamp_ms = if flags & 2 != 0 { Some(r.u64()? as i64) } else { None };
                records.push(Ingested {
                    key,
                    value,
                    timestamp_ms,
                });
            }
            Entry::Records { arrived_ms, records }
        }
        KIND_MARK => Entry::Mark {
            batch_id: r.u64()?,
            end: r.u64()?,
        },
        _ => return None,
    };
    r.0.is_empty().then_some(entry)
}

/// The frames of `data` (a segment from its start, or from a frame boundary) as
/// `(end offset within data, entry)`, and where the valid frames end (a torn or damaged frame,
/// or the end of `data`).
fn frames(data: &[u8]) -> (Vec<(usize, Entry)>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while data.len() - at >= HEADER {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(data[at + 4..at + 8].try_into().expect("4 bytes"));
        let Some(payload) = data.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Some(entry) = decode(payload) else { break };
        at += HEADER + len;
        out.push((at, entry));
    }
    (out, at)
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// The segments of the log in `dir`, in order: `(base offset, path)`.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = e.map_err(io(dir))?.path();
        let base = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(base) = base {
            out.push((base, path));
        }
    }
    out.sort();
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// The open end of the log: the segment being appended to.
pub struct Appender {
    dir: PathBuf,
    base: u64,
    file: File,
    len: u64,
    /// Where the log starts (its first segment's base).
    pub start: u64,
}

impl Appender {
    /// Opens (or creates) the log in `dir`, cutting off a torn frame at its end.
    pub fn open(dir: &Path) -> Result<Appender, LogError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut segs = segments(dir)?;
        if segs.is_empty() {
            File::create(segment_path(dir, 0)).map_err(io(dir))?;
            sync_dir(dir)?;
            segs = segments(dir)?;
        }
        let start = segs[0].0;
        let (base, path) = segs.pop().expect("one segment at least");
        let data = std::fs::read(&path).map_err(io(&path))?;
        let (_, valid) = frames(&data);
        let file = OpenOptions::new().write(true).open(&path).map_err(io(&path))?;
        if valid < data.len() {
            tracing::warn!(
                path = %path.display(),
                cut = data.len() - valid,
                "the ingest log ended in a torn write (never acknowledged); cutting it off"
            );
            file.set_len(valid as u64).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        Ok(Appender {
            dir: dir.to_owned(),
            base,
            file,
            len: valid as u64,
            start,
        })
    }

    /// The log offset after its last frame.
    pub fn end(&self) -> u64 {
        self.base + self.len
    }

    /// Appends `frames` (whole frames, one after another) and waits until they are on disk;
    /// the log offset after them. On an error, nothing of them counts (the segment is cut
    /// back).
    pub fn append(&mut self, frames: &[u8]) -> Result<u64, LogError> {
        if self.len >= SEGMENT_BYTES {
            self.roll()?;
        }
        let path = segment_path(&self.dir, self.base);
        let written = crate::failpoints::storage("ingest_log")
            .and_then(|()| {
                use std::os::unix::fs::FileExt;
                self.file.write_all_at(frames, self.len)
            })
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.file.set_len(self.len);
            return Err(io(&path)(e));
        }
        self.len += frames.len() as u64;
        Ok(self.end())
    }

    fn roll(&mut self) -> Result<(), LogError> {
        let base = self.end();
        let path = segment_path(&self.dir, base);
        let file = File::create(&path).map_err(io(&path))?;
        sync_dir(&self.dir)?;
        self.file = file;
        self.base = base;
        self.len = 0;
        Ok(())
    }
}

/// Reads the log's entries from offset `from` up to offset `to` (both frame boundaries), each
/// with the offset it ends at.
pub fn read(dir: &Path, from: u64, to: u64) -> Result<Vec<(u64, Entry)>, LogError> {
    let segs = segments(dir)?;
    if segs.first().is_some_and(|(base, _)| from < *base) {
        return Err(LogError::Corrupt {
            path: dir.display().to_string(),
            offset: from,
            what: format!("it starts at offset {}: its earlier part was deleted", segs[0].0),
        });
    }
    let mut out = Vec::new();
    for (i, (base, path)) in segs.iter().enumerate() {
        let next = segs.get(i + 1).map_or(u64::MAX, |s| s.0);
        if next <= from || *base >= to {
            continue;
        }
        let data = std::fs::read(path).map_err(io(path))?;
        let skip = from.saturating_sub(*base) as usize;
        let want = ((to - base) as usize).min(data.len());
        if skip > want {
            return Err(LogError::Corrupt {
                path: path.display().to_string(),
                offset: from,
                what: "the segment is shorter than the offset".into(),
            });
        }
        let (entries, valid) = frames(&data[skip..want]);
        if skip + valid < want {
            return Err(LogError::Corrupt {
                path: path.display().to_string(),
                offset: base + (skip + valid) as u64,
                what: "a frame does not read back".into(),
            });
        }
        out.extend(entries.into_iter().map(|(end, e)| (base + (skip + end) as u64, e)));
    }
    Ok(out)
}

/// Deletes the segments that end at or before `offset` (a checkpoint covers them), never the
/// last one.
pub fn truncate_before(dir: &Path, offset: u64) -> Result<usize, LogError> {
    let segs = segments(dir)?;
    let mut deleted = 0;
    for w in segs.windows(2) {
        if w[1].0 <= offset {
            std::fs::remove_file(&w[0].1).map_err(io(&w[0].1))?;
            deleted += 1;
        }
    }
    if deleted > 0 {
        sync_dir(dir)?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: &str, key: Option<&str>, ts: Option<i64>) -> Ingested {
        Ingested {
            key: key.map(|k| k.as_bytes().to_vec()),
            value: v.as_bytes().to_vec(),
            timestamp_ms: ts,
        }
    }

    #[test]
    fn entries_read_back_with_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Appender::open(dir.path()).unwrap();
        let a = vec![rec("a", None, None), rec("b", Some("k"), Some(-5))];
        let mut f = Vec::new();
        records_frame(&mut f, 7, &a);
        let e1 = log.append(&f).unwrap();
        f.clear();
        mark_frame(&mut f, 1, e1);
        let e2 = log.append(&f).unwrap();
        let got = read(dir.path(), 0, e2).unwrap();
        assert_eq!(
            got,
            vec![
                (
                    e1,
                    Entry::Records {
                        arrived_ms: 7,
                        records: a
                    }
                ),
                (e2, Entry::Mark { batch_id: 1, end: e1 })
            ]
        );
        assert_eq!(read(dir.path(), e1, e2).unwrap().len(), 1, "from a frame boundary");
        drop(log);
        assert_eq!(
            Appender::open(dir.path()).unwrap().end(),
            e2,
            "the end survives a reopen"
        );
    }

    #[test]
    fn a_torn_last_frame_is_cut_off_and_a_damaged_middle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Appender::open(dir.path()).unwrap();
        let mut f = Vec::new();
        records_frame(&mut f, 1, &[rec("x", None, None)]);
        let end = log.append(&f).unwrap();
        drop(log);
        let seg = segment_path(dir.path(), 0);
        let mut data = std::fs::read(&seg).unwrap();
        data.extend_from_slice(&f[..f.len() - 2]);
        std::fs::write(&seg, &data).unwrap();
        let log = Appender::open(dir.path()).unwrap();
        assert_eq!(log.end(), end, "the torn frame is gone");
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), end);
        drop(log);
        let mut data = std::fs::read(&seg).unwrap();
        data[HEADER + 3] ^= 0xff;
        std::fs::write(&seg, &data).unwrap();
        let err = read(dir.path(), 0, end).unwrap_err();
        assert!(matches!(err, LogError::Corrupt { offset: 0, .. }), "{err}");
    }

    #[test]
    fn segments_roll_and_checkpointed_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Appender::open(dir.path()).unwrap();
        let big = "v".repeat(1 << 20);
        let mut f = Vec::new();
        records_frame(&mut f, 0, &[rec(&big, None, None)]);
        let mut ends = Vec::new();
        for _ in 0..40 {
            ends.push(log.append(&f).unwrap());
        }
        let n = segments(dir.path()).unwrap().len();
        assert!(n >= 2, "{n} segments");
        assert_eq!(
            read(dir.path(), ends[20], ends[39]).unwrap().len(),
            19,
            "reads across segments"
        );
        assert!(truncate_before(dir.path(), ends[39]).unwrap() >= 1);
        let left = segments(dir.path()).unwrap();
        assert!(left.len() < n && left[0].0 <= ends[39]);
        assert!(
            read(dir.path(), 0, ends[39]).is_err(),
            "the deleted part is gone, and said so"
        );
        let reopened = Appender::open(dir.path()).unwrap();
        assert_eq!((reopened.end(), reopened.start), (ends[39], left[0].0));
    }
}
