//! A bounds-checked reader over an ABI buffer. The host reads untrusted module output with it, so
//! every read checks its length and a malformed buffer is an error, never a panic.

use std::fmt;

use crate::NO_KEY;

/// A buffer ended early or held an impossible length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the buffer where decoding failed.
    pub offset: usize,
    /// What was being read.
    pub what: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "buffer ends or is malformed at byte {} (reading {})",
            self.offset, self.what
        )
    }
}

impl std::error::Error for DecodeError {}

/// A record borrowed from an ABI buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The key, if the record has one.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: &'a [u8],
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// Reads ABI items from the front of a byte slice.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// The byte offset of the next read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline(always)]
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(DecodeError { offset: self.pos, what }),
        }
    }

    /// Reads a `u32`.
    #[inline(always)]
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4, "u32")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads an `i64`.
    #[inline(always)]
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8, "i64")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    /// Reads `[u32 len][bytes]`.
    #[inline(always)]
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n, "bytes")
    }

    /// Reads `n` raw bytes.
    #[inline]
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.take(n, "raw bytes")
    }

    /// Reads one record.
    #[inline(always)]
    pub fn record(&mut self) -> Result<RecordRef<'a>, DecodeError> {
        let key_len = self.u32()?;
        let key = if key_len == NO_KEY {
            None
        } else {
            Some(self.take(key_len as usize, "record key")?)
        };
        let value = self.bytes()?;
        let timestamp_ms = self.i64()?;
        Ok(RecordRef {
            key,
            value,
            timestamp_ms,
        })
    }

    /// Reads one error entry `[u32 index][u32 len][utf-8 message]`. A message that is not UTF-8
    /// is replaced lossily rather than refused: the error must reach the user.
    pub fn error(&mut self) -> Result<(u32, String), DecodeError> {
        let index = self.u32()?;
        let msg = self.bytes()?;
        Ok((index, String::from_utf8_lossy(msg).into_owned()))
    }
}
