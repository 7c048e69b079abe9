//! Batches as the engine holds them: already in the ABI's byte layout, so handing a partition to
//! a wasm UDF is one `memcpy`, and reading a UDF's output back is one `memcpy` plus a bounds check.

use sluice_abi::{DecodeError, Reader, RecordRef, patch_u32, put_bytes, put_record, put_u32};

/// A batch (or partition) of records: `[u32 n][record × n]`, with each record's offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordBatch {
    buf: Vec<u8>,
    offsets: Vec<u32>,
}

impl Default for RecordBatch {
    fn default() -> Self {
        RecordBatch::new()
    }
}

impl RecordBatch {
    /// An empty batch.
    pub fn new() -> RecordBatch {
        RecordBatch {
            buf: vec![0; 4],
            offsets: Vec::new(),
        }
    }

    /// An empty batch with room for `records` records of `bytes` bytes in all.
    pub fn with_capacity(records: usize, bytes: usize) -> RecordBatch {
        let mut buf = Vec::with_capacity(bytes + 4);
        buf.extend_from_slice(&[0; 4]);
        RecordBatch {
            buf,
            offsets: Vec::with_capacity(records),
        }
    }

    /// Appends a record.
    #[inline]
    pub fn push(&mut self, key: Option<&[u8]>, value: &[u8], timestamp_ms: i64) {
        self.offsets.push(self.buf.len() as u32);
        put_record(&mut self.buf, key, value, timestamp_ms);
        patch_u32(&mut self.buf, 0, self.offsets.len() as u32);
    }

    /// Appends a record borrowed from another batch.
    #[inline]
    pub fn push_ref(&mut self, r: RecordRef<'_>) {
        self.push(r.key, r.value, r.timestamp_ms);
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether the batch has no records.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The encoded batch, as a UDF receives it.
    pub fn as_abi_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Record `i`.
    pub fn get(&self, i: usize) -> Option<RecordRef<'_>> {
        let at = *self.offsets.get(i)? as usize;
        Reader::new(&self.buf[at..]).record().ok()
    }

    /// The records in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RecordRef<'_>> + '_ {
        self.offsets.iter().map(|&at| {
            Reader::new(&self.buf[at as usize..])
                .record()
                .expect("a RecordBatch holds well-formed records")
        })
    }

    /// Records `start..end`.
    pub fn iter_range(&self, start: usize, end: usize) -> impl ExactSizeIterator<Item = RecordRef<'_>> + '_ {
        self.offsets[start..end].iter().map(|&at| {
            Reader::new(&self.buf[at as usize..])
                .record()
                .expect("a RecordBatch holds well-formed records")
        })
    }

    /// The records whose selection byte is non-zero (a filter's result), copied from this batch.
    pub fn select(&self, selection: &[u8]) -> RecordBatch {
        let mut out = RecordBatch::with_capacity(self.len(), self.buf.len());
        for (i, &keep) in selection.iter().enumerate().take(self.len()) {
            if keep != 0 {
                let start = self.offsets[i] as usize;
                let end = self.offsets.get(i + 1).map_or(self.buf.len(), |&e| e as usize);
                out.offsets.push(out.buf.len() as u32);
                out.buf.extend_from_slice(&self.buf[start..end]);
            }
        }
        patch_u32(&mut out.buf, 0, out.offsets.len() as u32);
        out
    }

    /// Splits the batch into at most `parts` contiguous batches of about equal record counts.
    pub fn split(&self, parts: usize) -> Vec<RecordBatch> {
        let parts = parts.clamp(1, self.len().max(1));
        let per = self.len().div_ceil(parts);
        let mut out = Vec::with_capacity(parts);
        let mut start = 0;
        while start < self.len() || out.is_empty() {
            let end = (start + per).min(self.len());
            out.push(self.slice(start, end));
            start = end;
        }
        out
    }

    /// Records `start..end` as a batch of their own (one copy of their bytes).
    pub fn slice(&self, start: usize, end: usize) -> RecordBatch {
        let (from, to) = (self.offset(start), self.offset(end));
        let mut b = RecordBatch::with_capacity(end - start, to - from);
        b.offsets
            .extend(self.offsets[start..end].iter().map(|&o| o - from as u32 + 4));
        b.buf.extend_from_slice(&self.buf[from..to]);
        patch_u32(&mut b.buf, 0, (end - start) as u32);
        b
    }

    /// The batches one after the other, as one.
    pub fn concat(batches: &[RecordBatch]) -> RecordBatch {
        let records = batches.iter().map(RecordBatch::len).sum();
        let bytes = batches.iter().map(|b| b.buf.len() - 4).sum();
        let mut out = RecordBatch::with_capacity(records, bytes);
        for b in batches {
            let base = out.buf.len() as u32 - 4;
            out.offsets.extend(b.offsets.iter().map(|&o| o + base));
            out.buf.extend_from_slice(&b.buf[4..]);
        }
        patch_u32(&mut out.buf, 0, records as u32);
        out
    }

    /// Byte offset of record `i` (the end of the buffer for `i == len`).
    fn offset(&self, i: usize) -> usize {
        self.offsets.get(i).map_or(self.buf.len(), |&o| o as usize)
    }

    /// Reads `count` records from the front of `reader` into a batch, checking every length (the
    /// bytes may come from an untrusted module). The records are copied in one piece.
    pub fn read_from(reader: &mut Reader<'_>, count: u32) -> Result<RecordBatch, DecodeError> {
        let start = reader.position();
        let mut offsets = Vec::with_capacity((count as usize).min(1 << 20));
        let mut probe = reader.clone();
        for _ in 0..count {
            offsets.push((probe.position() - start + 4) as u32);
            probe.record()?;
        }
        let bytes = reader.raw(probe.position() - start)?;
        let mut buf = Vec::with_capacity(bytes.len() + 4);
        put_u32(&mut buf, count);
        buf.extend_from_slice(bytes);
        Ok(RecordBatch { buf, offsets })
    }
}

/// Groups of values for a `reduce` (or `inverse`) call: `[u32 g][group × g]`, group
/// `[u32 m][value × m]`, value `[u32 len][bytes]`, `m >= 1`.
#[derive(Clone, Debug, Default)]
pub struct ValueGroups {
    buf: Vec<u8>,
    groups: u32,
    open: Option<(usize, u32)>,
}

impl ValueGroups {
    /// No groups yet.
    pub fn new() -> ValueGroups {
        ValueGroups {
            buf: vec![0; 4],
            groups: 0,
            open: None,
        }
    }

    /// Starts a new group; the values pushed next belong to it.
    pub fn start_group(&mut self) {
        self.close();
        self.open = Some((self.buf.len(), 0));
        put_u32(&mut self.buf, 0);
    }

    /// Adds a value to the current group.
    ///
    /// # Panics
    /// If no group was started: a caller bug.
    #[inline]
    pub fn push_value(&mut self, value: &[u8]) {
        let open = self.open.as_mut().expect("start_group before push_value");
        open.1 += 1;
        put_bytes(&mut self.buf, value);
    }

    fn close(&mut self) {
        if let Some((at, n)) = self.open.take() {
            assert!(n > 0, "a group holds at least one value");
            patch_u32(&mut self.buf, at, n);
            self.groups += 1;
            patch_u32(&mut self.buf, 0, self.groups);
        }
    }

    /// Number of groups.
    pub fn len(&mut self) -> usize {
        self.close();
        self.groups as usize
    }

    /// Whether there are no groups.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// The encoded groups, as a reduce UDF receives them.
    pub fn as_abi_bytes(&mut self) -> &[u8] {
        self.close();
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_iter_select_round_trip() {
        let mut b = RecordBatch::new();
        b.push(Some(b"k1"), b"one", 1);
        b.push(None, b"two", 2);
        b.push(Some(b""), b"", 3);
        assert_eq!(b.len(), 3);
        let values: Vec<_> = b.iter().map(|r| r.value).collect();
        assert_eq!(values, [&b"one"[..], b"two", b""]);
        let s = b.select(&[1, 0, 1]);
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(1).unwrap().timestamp_ms, 3);
        let mut r = Reader::new(s.as_abi_bytes());
        let n = r.u32().unwrap();
        assert_eq!(RecordBatch::read_from(&mut r, n).unwrap(), s);
    }

    #[test]
    fn split_and_concat_round_trip() {
        let mut b = RecordBatch::new();
        for i in 0..10u8 {
            b.push(Some(&[i]), &vec![i; i as usize], i as i64);
        }
        for parts in [1, 2, 3, 4, 10, 20] {
            let split = b.split(parts);
            assert!(split.len() <= parts);
            assert_eq!(split.iter().map(RecordBatch::len).sum::<usize>(), 10);
            assert_eq!(RecordBatch::concat(&split), b, "parts = {parts}");
        }
        let empty = RecordBatch::new();
        assert_eq!(RecordBatch::concat(&empty.split(4)), empty);
    }

    #[test]
    fn read_from_refuses_a_count_larger_than_the_bytes() {
        let mut b = RecordBatch::new();
        b.push(None, b"x", 0);
        let mut r = Reader::new(&b.as_abi_bytes()[4..]);
        assert!(RecordBatch::read_from(&mut r, 2).is_err());
    }

    #[test]
    fn value_groups_encode_counts() {
        let mut g = ValueGroups::new();
        g.start_group();
        g.push_value(b"a");
        g.push_value(b"b");
        g.start_group();
        g.push_value(b"c");
        assert_eq!(g.len(), 2);
        let mut r = Reader::new(g.as_abi_bytes());
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(r.bytes().unwrap(), b"a");
    }
}
