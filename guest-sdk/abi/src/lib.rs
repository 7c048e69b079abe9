//! The Sluice batch ABI, version 1: the one definition of the byte layout that the host writes
//! into a UDF module's memory and the module writes back.
//!
//! Both halves use this crate: the guest SDK to decode a batch and encode its results, the host
//! to encode a batch and to decode (and bounds-check) what an untrusted module returned. The
//! layout, the export names and the calling convention are documented for UDF authors in
//! `docs/abi.md`; this crate is the executable form of that page and the two must agree.
//!
//! Everything is little-endian. A *record* is
//! `[u32 key_len | NO_KEY][key][u32 value_len][value][i64 timestamp_ms]`.

mod names;
mod reader;
mod writer;

pub use names::{
    EXPORT_ABI_VERSION, EXPORT_INPUT, IMPORT_LOG, IMPORT_MODULE, IMPORT_PANIC, LogLevel, UdfKind, UdfName,
    udf_export_name,
};
pub use reader::{DecodeError, Reader, RecordRef};
pub use writer::{patch_u32, put_bytes, put_error, put_record, put_u32};

/// The ABI version this crate describes. A module exports it from `sluice_abi_version`; the host
/// refuses a module whose version differs.
pub const ABI_VERSION: u32 = 1;

/// The key length that marks a record without a key.
pub const NO_KEY: u32 = u32::MAX;

/// Bytes a record takes besides its key and value: two lengths and the timestamp.
pub const RECORD_OVERHEAD: usize = 4 + 4 + 8;

/// Selection byte of a filter: the record stays.
pub const KEEP: u8 = 1;
/// Selection byte of a filter: the record goes.
pub const DROP: u8 = 0;

/// Packs an output location into the `i64` a UDF export returns: `(ptr << 32) | len`.
pub fn pack(ptr: u32, len: u32) -> i64 {
    (((ptr as u64) << 32) | len as u64) as i64
}

/// Splits a UDF export's `i64` result into `(ptr, len)`.
pub fn unpack(packed: i64) -> (u32, u32) {
    let v = packed as u64;
    ((v >> 32) as u32, v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_extreme_values() {
        for (p, l) in [(0, 0), (1, 2), (u32::MAX, 0), (0, u32::MAX), (u32::MAX, u32::MAX)] {
            assert_eq!(unpack(pack(p, l)), (p, l));
        }
    }

    #[test]
    fn records_round_trip_through_writer_and_reader() {
        let mut buf = Vec::new();
        put_u32(&mut buf, 3);
        put_record(&mut buf, Some(b"k"), b"value", -5);
        put_record(&mut buf, None, b"", i64::MAX);
        put_record(&mut buf, Some(b""), b"x", 0);
        let mut r = Reader::new(&buf);
        assert_eq!(r.u32().unwrap(), 3);
        let a = r.record().unwrap();
        assert_eq!((a.key, a.value, a.timestamp_ms), (Some(&b"k"[..]), &b"value"[..], -5));
        let b = r.record().unwrap();
        assert_eq!((b.key, b.value, b.timestamp_ms), (None, &b""[..], i64::MAX));
        let c = r.record().unwrap();
        assert_eq!((c.key, c.value, c.timestamp_ms), (Some(&b""[..]), &b"x"[..], 0));
        assert!(r.is_empty());
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        put_record(&mut buf, Some(b"key"), b"value", 1);
        for cut in 0..buf.len() {
            let mut r = Reader::new(&buf[..cut]);
            assert!(r.record().is_err(), "cut at {cut} decoded");
        }
    }
}
