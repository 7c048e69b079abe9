//! `jsonl`: one JSON object per record, `{"batch", "time", "key", "value"}`. A batch is written
//! with one `write` (its lines made in a buffer that is kept from batch to batch).

use std::io::Write;

use super::{Sink, value_json};
use crate::batch::RecordBatch;
use crate::engine::Tick;
use crate::job::spec::ValueType;

/// Writes JSON Lines.
pub struct JsonlSink {
    ty: ValueType,
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
}

impl JsonlSink {
    /// Writes to `out`.
    pub fn new(ty: ValueType, out: Box<dyn Write + Send>) -> JsonlSink {
        JsonlSink {
            ty,
            out,
            buf: Vec::new(),
        }
    }
}

/// Appends `r` as one line, exactly as `record_json` serializes, without building its value.
fn write_line(buf: &mut Vec<u8>, tick: Tick, r: &sluice_abi::RecordRef<'_>, ty: ValueType) {
    use std::io::Write as _;
    let _ = write!(buf, "{{\"batch\":{},\"key\":", tick.batch_id);
    match r.key {
        Some(k) => json_text(buf, k),
        None => buf.extend_from_slice(b"null"),
    }
    let _ = write!(buf, ",\"time\":{},\"value\":", tick.time_ms);
    match (ty, <[u8; 8]>::try_from(r.value)) {
        (ValueType::I64, Ok(a)) => {
            let _ = write!(buf, "{}", i64::from_le_bytes(a));
        }
        (ValueType::F64, Ok(_)) => {
            let _ = serde_json::to_writer(&mut *buf, &value_json(r.value, ty));
        }
        _ => json_text(buf, r.value),
    }
    buf.extend_from_slice(b"}\n");
}

/// Bytes as a JSON string (invalid UTF-8 replaced, as `String::from_utf8_lossy`).
fn json_text(buf: &mut Vec<u8>, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    serde_json::to_writer(&mut *buf, &*text).expect("a Vec takes any bytes");
}

impl Sink for JsonlSink {
    fn write(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        self.buf.clear();
        for r in batch.iter() {
            write_line(&mut self.buf, tick, &r, self.ty);
        }
        self.out.write_all(&self.buf)?;
        // A huge batch does not keep its buffer for the small ones after it.
        if self.buf.capacity() > (64 << 20) {
            self.buf = Vec::new();
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::record_json;

    /// Writes through a shared buffer and counts the writes.
    #[derive(Clone, Default)]
    struct Counted(std::sync::Arc<std::sync::Mutex<(Vec<u8>, usize)>>);

    impl Write for Counted {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let mut g = self.0.lock().unwrap();
            g.0.extend_from_slice(b);
            g.1 += 1;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_what_record_json_says_and_a_batch_is_one_write() {
        let tick = Tick {
            batch_id: 3,
            time_ms: 3000,
        };
        for (ty, values) in [
            (
                ValueType::Text,
                vec![b"plain".to_vec(), b"q\"uote\\ \n\x01 \xff".to_vec(), Vec::new()],
            ),
            (
                ValueType::I64,
                vec![
                    i64::MIN.to_le_bytes().to_vec(),
                    42i64.to_le_bytes().to_vec(),
                    b"short".to_vec(),
                ],
            ),
            (
                ValueType::F64,
                vec![
                    1.5f64.to_le_bytes().to_vec(),
                    f64::NAN.to_le_bytes().to_vec(),
                    1e300f64.to_le_bytes().to_vec(),
                ],
            ),
        ] {
            let mut batch = RecordBatch::new();
            for (i, v) in values.iter().enumerate() {
                let key: Option<&[u8]> = [None, Some(&b"k\"1"[..]), Some(&b"\xfe"[..])][i % 3];
                batch.push(key, v, 0);
            }
            let out = Counted::default();
            let mut sink = JsonlSink::new(ty, Box::new(out.clone()));
            sink.write(tick, &batch).unwrap();
            let mut want = String::new();
            for r in batch.iter() {
                want.push_str(&serde_json::to_string(&record_json(tick, &r, ty)).unwrap());
                want.push('\n');
            }
            let got = out.0.lock().unwrap();
            assert_eq!(String::from_utf8(got.0.clone()).unwrap(), want, "{ty:?}");
            assert_eq!(got.1, 1, "one write for the batch");
        }
    }
}
