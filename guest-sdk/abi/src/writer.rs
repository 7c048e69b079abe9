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
#[inline(always)]
pub fn put_record(buf: &mut Vec<u8>, key: Option<&[u8]>, value: &[u8], timestamp_ms: i64) {
    buf.reserve(16 + key.map_or(0, <[u8]>::len) + value.len());
    match key {
        Some(k) => {
            put_u32(buf, k.len() as u32);
            extend_small(buf, k);
        }
        None => put_u32(buf, NO_KEY),
    }
    put_u32(buf, value.len() as u32);
    extend_small(buf, value);
    buf.extend_from_slice(&timestamp_ms.to_le_bytes());
}

/// `extend_from_slice`, with slices of up to 16 bytes copied as two overlapping words instead of
/// a `memcpy` call (in wasm a variable-length copy is a library call that costs more than the
/// copy itself for the short keys and values records usually have).
#[inline(always)]
fn extend_small(buf: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len();
    if !(4..=16).contains(&n) || buf.capacity() - buf.len() < n {
        buf.extend_from_slice(bytes);
        return;
    }
    let len = buf.len();
    let src = bytes.as_ptr();
    // SAFETY: the spare capacity holds at least `n` bytes (checked above), `src` has `n` bytes,
    // the two do not overlap (one is borrowed shared, the other is the Vec's own spare room),
    // and every byte in `len..len + n` is written before `set_len` makes it part of the Vec.
    unsafe {
        let dst = buf.as_mut_ptr().add(len);
        if n >= 8 {
            let head = std::ptr::read_unaligned(src as *const u64);
            let tail = std::ptr::read_unaligned(src.add(n - 8) as *const u64);
            std::ptr::write_unaligned(dst as *mut u64, head);
            std::ptr::write_unaligned(dst.add(n - 8) as *mut u64, tail);
        } else {
            let head = std::ptr::read_unaligned(src as *const u32);
            let tail = std::ptr::read_unaligned(src.add(n - 4) as *const u32);
            std::ptr::write_unaligned(dst as *mut u32, head);
            std::ptr::write_unaligned(dst.add(n - 4) as *mut u32, tail);
        }
        buf.set_len(len + n);
    }
}

/// Appends one error entry: the index of the input it belongs to and its message.
pub fn put_error(buf: &mut Vec<u8>, index: u32, message: &str) {
    put_u32(buf, index);
    put_bytes(buf, message.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_copies_of_every_length_are_exact() {
        let src: Vec<u8> = (1..=40).collect();
        for n in 0..=40 {
            for reserve in [0, 64] {
                let mut buf = Vec::with_capacity(reserve);
                buf.push(0xAA);
                extend_small(&mut buf, &src[..n]);
                assert_eq!(&buf[1..], &src[..n], "n = {n}, reserve = {reserve}");
            }
        }
    }
}
