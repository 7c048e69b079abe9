//! Appending ABI items to a byte vector.

use crate::NO_KEY;

/// Appends a `u32`.
#[inline]
pub fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Overwrites the `u32` at `at` (a count reserved earlier with `put_u32`).
#[inline]
pub fn patch_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Appends `[u32 len][bytes]`.
#[inline]
pub fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(buf, bytes.len() as u32);
    buf.extend_from_slice(bytes);
}

/// Appends one record.
#[inline]
pub fn put_record(buf: &mut Vec<u8>, key: Option<&[u8]>, value: &[u8], timestamp_ms: i64) {
    match key {
        Some(k) => put_bytes(buf, k),
        None => put_u32(buf, NO_KEY),
    }
    put_bytes(buf, value);
    buf.extend_from_slice(&timestamp_ms.to_le_bytes());
}

/// Appends one error entry: the index of the input it belongs to and its message.
pub fn put_error(buf: &mut Vec<u8>, index: u32, message: &str) {
    put_u32(buf, index);
    put_bytes(buf, message.as_bytes());
}
