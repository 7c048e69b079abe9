//! One batch loop per UDF kind. Input and output layouts are in `docs/abi.md`.

use sluice_abi::{DROP, KEEP, Reader, patch_u32, put_error, put_record, put_u32};

use crate::{Bytes, Record, ReduceValue, UdfError};

/// Output layout tail: `[u32 n_err][error × n_err]`.
fn put_errors(out: &mut Vec<u8>, errors: &[(u32, UdfError)]) {
    put_u32(out, errors.len() as u32);
    for (index, e) in errors {
        put_error(out, *index, e.message());
    }
}

fn bad_input(e: sluice_abi::DecodeError) -> UdfError {
    UdfError::new(format!("the host sent a malformed batch: {e}"))
}

#[inline(always)]
fn put(out: &mut Vec<u8>, r: &Record<'_>) {
    put_record(out, r.key.as_deref(), r.value.as_bytes(), r.timestamp_ms);
}

/// Decodes the records of a `[u32 n][record × n]` batch and hands each to `each`.
#[inline(always)]
fn for_each_record<'a>(input: &'a [u8], mut each: impl FnMut(u32, Record<'a>)) -> Result<(), UdfError> {
    let mut r = Reader::new(input);
    let n = r.u32().map_err(bad_input)?;
    for i in 0..n {
        let rec = r.record().map_err(bad_input)?;
        each(
            i,
            Record {
                key: rec.key.map(Bytes::Borrowed),
                value: Bytes::Borrowed(rec.value),
                timestamp_ms: rec.timestamp_ms,
            },
        );
    }
    Ok(())
}

/// `map`: `[u32 n_out][record × n_out][u32 n_err][error × n_err]`.
pub fn run_map(
    input: &[u8],
    out: &mut Vec<u8>,
    mut f: impl for<'a> FnMut(Record<'a>) -> Result<Record<'a>, UdfError>,
) -> Result<(), UdfError> {
    let mut errors = Vec::new();
    put_u32(out, 0);
    let mut n_out = 0u32;
    for_each_record(input, |i, rec| match f(rec) {
        Ok(r) => {
            put(out, &r);
            n_out += 1;
        }
        Err(e) => errors.push((i, e)),
    })?;
    patch_u32(out, 0, n_out);
    put_errors(out, &errors);
    Ok(())
}

/// Where a flat_map's records go: encoded into the output as they come.
pub struct Emitter<'o> {
    out: &'o mut Vec<u8>,
    count: u32,
}

impl Emitter<'_> {
    /// Encodes one output record.
    #[inline(always)]
    pub fn push(&mut self, r: &Record<'_>) {
        put(self.out, r);
        self.count += 1;
    }
}

/// `flat_map`: `[u32 n_out][record × n_out][u32 n_err][error × n_err]`. Records are encoded as
/// the function emits them; an input in error emits none (its `Result` is known first).
pub fn run_flat_map(
    input: &[u8],
    out: &mut Vec<u8>,
    mut f: impl for<'a> FnMut(Record<'a>, &mut Emitter<'_>) -> Result<(), UdfError>,
) -> Result<(), UdfError> {
    let mut errors = Vec::new();
    put_u32(out, 0);
    let mut emitter = Emitter { out, count: 0 };
    for_each_record(input, |i, rec| {
        if let Err(e) = f(rec, &mut emitter) {
            errors.push((i, e));
        }
    })?;
    let n_out = emitter.count;
    patch_u32(out, 0, n_out);
    put_errors(out, &errors);
    Ok(())
}

/// `filter`: `[u32 n][u8 KEEP|DROP × n][u32 n_err][error × n_err]`; a record in error is dropped.
pub fn run_filter(
    input: &[u8],
    out: &mut Vec<u8>,
    mut f: impl FnMut(&Record<'_>) -> Result<bool, UdfError>,
) -> Result<(), UdfError> {
    let mut errors = Vec::new();
    put_u32(out, 0);
    let mut n = 0u32;
    for_each_record(input, |i, rec| {
        let keep = match f(&rec) {
            Ok(k) => k,
            Err(e) => {
                errors.push((i, e));
                false
            }
        };
        out.push(if keep { KEEP } else { DROP });
        n += 1;
    })?;
    patch_u32(out, 0, n);
    put_errors(out, &errors);
    Ok(())
}

/// `reduce` and `inverse`: input `[u32 g][group × g]`, group `[u32 m][value × m]` with `m >= 1`,
/// value `[u32 len][bytes]`; each group folds left: `f(f(v0, v1), v2)...`. Output
/// `[u32 g_out][value × g_out][u32 n_err][error × n_err]`, one value per group not in error.
pub fn run_reduce<T: ReduceValue>(
    input: &[u8],
    out: &mut Vec<u8>,
    mut f: impl FnMut(T, T) -> Result<T, UdfError>,
) -> Result<(), UdfError> {
    let mut errors = Vec::new();
    let mut r = Reader::new(input);
    let groups = r.u32().map_err(bad_input)?;
    put_u32(out, 0);
    let mut n_out = 0u32;
    for g in 0..groups {
        let m = r.u32().map_err(bad_input)?;
        if m == 0 {
            return Err(UdfError::new(format!("the host sent an empty group ({g})")));
        }
        let mut acc = T::decode(r.bytes().map_err(bad_input)?);
        for _ in 1..m {
            let v = r.bytes().map_err(bad_input)?;
            acc = match acc {
                Ok(a) => T::decode(v).and_then(|b| f(a, b)),
                Err(e) => Err(e),
            };
        }
        match acc {
            Ok(v) => {
                let len_at = out.len();
                put_u32(out, 0);
                v.encode(out);
                let len = (out.len() - len_at - 4) as u32;
                patch_u32(out, len_at, len);
                n_out += 1;
            }
            Err(e) => errors.push((g, e)),
        }
    }
    patch_u32(out, 0, n_out);
    put_errors(out, &errors);
    Ok(())
}

#[cfg(test)]
mod tests {
    use sluice_abi::{Reader, put_bytes, put_record, put_u32};

    use super::*;

    fn batch(lines: &[&str]) -> Vec<u8> {
        let mut b = Vec::new();
        put_u32(&mut b, lines.len() as u32);
        for (i, l) in lines.iter().enumerate() {
            put_record(&mut b, None, l.as_bytes(), i as i64);
        }
        b
    }

    #[test]
    fn map_writes_records_and_errors_by_input_index() {
        let mut out = Vec::new();
        run_map(&batch(&["a", "", "c"]), &mut out, |r| {
            if r.value.is_empty() {
                Err(UdfError::new("empty"))
            } else {
                Ok(r.with_key("k"))
            }
        })
        .unwrap();
        let mut rd = Reader::new(&out);
        assert_eq!(rd.u32().unwrap(), 2);
        assert_eq!(rd.record().unwrap().value, b"a");
        let c = rd.record().unwrap();
        assert_eq!((c.key, c.value, c.timestamp_ms), (Some(&b"k"[..]), &b"c"[..], 2));
        assert_eq!(rd.u32().unwrap(), 1);
        assert_eq!(rd.error().unwrap(), (1, "empty".to_owned()));
        assert!(rd.is_empty());
    }

    #[test]
    fn filter_writes_one_selection_byte_per_record() {
        let mut out = Vec::new();
        run_filter(&batch(&["x", "yy", "z"]), &mut out, |r| Ok(r.value.len() == 1)).unwrap();
        assert_eq!(&out[..4 + 3], &[3, 0, 0, 0, 1, 0, 1]);
    }

    #[test]
    fn reduce_folds_each_group_and_reports_bad_values_per_group() {
        let mut input = Vec::new();
        put_u32(&mut input, 2);
        put_u32(&mut input, 3);
        for v in [1i64, 2, 3] {
            put_bytes(&mut input, &v.to_le_bytes());
        }
        put_u32(&mut input, 2);
        put_bytes(&mut input, &1i64.to_le_bytes());
        put_bytes(&mut input, b"bad");
        let mut out = Vec::new();
        run_reduce::<i64>(&input, &mut out, |a, b| Ok(a + b)).unwrap();
        let mut rd = Reader::new(&out);
        assert_eq!(rd.u32().unwrap(), 1);
        assert_eq!(rd.bytes().unwrap(), &6i64.to_le_bytes());
        assert_eq!(rd.u32().unwrap(), 1);
        let (g, msg) = rd.error().unwrap();
        assert_eq!(g, 1);
        assert!(msg.contains("not an i64"), "{msg}");
    }

    #[test]
    fn a_truncated_batch_is_an_error() {
        let mut b = batch(&["abc"]);
        b.truncate(b.len() - 1);
        assert!(run_map(&b, &mut Vec::new(), |r| Ok(r)).is_err());
    }
}
