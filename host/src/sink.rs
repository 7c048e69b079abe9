//! Sinks: where a job's output goes, one call per output batch. Values print by the type the
//! job's last stage produces (numbers as numbers, text as text).

mod jsonl;
pub mod kafka;
pub mod memory;
mod print;
pub mod sqlite;
mod text_files;

use std::io::Write;

use sluice_abi::RecordRef;

use crate::batch::RecordBatch;
use crate::engine::Tick;
use crate::job::spec::{SinkSpec, ValueType};

pub use jsonl::JsonlSink;
pub use print::PrintSink;
pub use text_files::TextFilesSink;

/// Where output goes.
pub trait Sink: Send {
    /// Writes the output of batch `tick`.
    fn write(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()>;

    /// Commits batch `tick`: its output, if it has one, and its refused records (a sink that
    /// commits by batch keeps them in the same transaction, so each is reported once; the
    /// others leave them to the job's dead-letter output).
    fn write_batch(
        &mut self,
        tick: Tick,
        batch: Option<&RecordBatch>,
        _dead_letters: &[crate::engine::DeadLetter],
    ) -> std::io::Result<()> {
        match batch {
            Some(b) => self.write(tick, b),
            None => Ok(()),
        }
    }
}

/// A value as JSON, by the stream's value type.
pub fn value_json(v: &[u8], ty: ValueType) -> serde_json::Value {
    match (ty, <[u8; 8]>::try_from(v)) {
        (ValueType::I64, Ok(a)) => serde_json::Value::from(i64::from_le_bytes(a)),
        (ValueType::F64, Ok(a)) => serde_json::Value::from(f64::from_le_bytes(a)),
        _ => serde_json::Value::from(String::from_utf8_lossy(v).into_owned()),
    }
}

/// A record as text, Spark-style: `(key, value)` with a key, else `value`.
pub fn record_text(r: &RecordRef<'_>, ty: ValueType) -> String {
    let value = match value_json(r.value, ty) {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    match r.key {
        Some(k) => format!("({}, {value})", String::from_utf8_lossy(k)),
        None => value,
    }
}

/// Appends `record_text(r, ty)` to `buf`, without allocating for text.
pub fn write_record_text(buf: &mut Vec<u8>, r: &RecordRef<'_>, ty: ValueType) {
    if let Some(k) = r.key {
        buf.push(b'(');
        buf.extend_from_slice(String::from_utf8_lossy(k).as_bytes());
        buf.extend_from_slice(b", ");
    }
    match (ty, <[u8; 8]>::try_from(r.value)) {
        (ValueType::I64, Ok(a)) => {
            let _ = write!(buf, "{}", i64::from_le_bytes(a));
        }
        (ValueType::F64, Ok(_)) => {
            let _ = write!(buf, "{}", value_json(r.value, ty));
        }
        _ => buf.extend_from_slice(String::from_utf8_lossy(r.value).as_bytes()),
    }
    if r.key.is_some() {
        buf.push(b')');
    }
}

/// A record as one JSON object with its batch.
pub fn record_json(tick: Tick, r: &RecordRef<'_>, ty: ValueType) -> serde_json::Value {
    serde_json::json!({
        "batch": tick.batch_id,
        "time": tick.time_ms,
        "key": r.key.map(|k| String::from_utf8_lossy(k).into_owned()),
        "value": value_json(r.value, ty),
    })
}

/// Opens the sink a spec describes; `stdout` is where `print` and `jsonl` without a path write;
/// `job` (the job's name) makes the default transactional id of an exactly-once `kafka` sink.
pub fn open(
    spec: &SinkSpec,
    ty: ValueType,
    stdout: Box<dyn Write + Send>,
    job: &str,
) -> std::io::Result<Box<dyn Sink>> {
    Ok(match spec {
        SinkSpec::Print { records } => Box::new(PrintSink::new(*records, ty, stdout)),
        SinkSpec::Jsonl { path } => match path.as_deref() {
            None | Some("-") => Box::new(JsonlSink::new(ty, stdout)),
            Some(p) => Box::new(JsonlSink::new(
                ty,
                Box::new(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
            )),
        },
        SinkSpec::TextFiles { prefix, suffix } => Box::new(TextFilesSink::new(prefix.clone(), suffix.clone(), ty)),
        SinkSpec::Sqlite {
            path: Some(path),
            table,
        } => Box::new(sqlite::SqliteSink::open(
            std::path::Path::new(path),
            table,
            0,
            ty,
            None,
        )?),
        SinkSpec::Kafka(k) => {
            let slug: String = job
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            let id = k.transactional_id.clone().unwrap_or_else(|| format!("sluice-{slug}"));
            Box::new(kafka::KafkaSink::new(k, ty, id))
        }
        SinkSpec::Sqlite { path: None, .. } => {
            return Err(std::io::Error::other(
                "a sqlite sink needs `path` (the SQLite file to write) outside the server",
            ));
        }
    })
}

/// Two sinks as one (the server keeps a job's output and writes its table).
pub struct Both(pub Box<dyn Sink>, pub Box<dyn Sink>);

impl Sink for Both {
    fn write(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        self.1.write(tick, batch)?;
        self.0.write(tick, batch)
    }

    fn write_batch(
        &mut self,
        tick: Tick,
        batch: Option<&RecordBatch>,
        dead_letters: &[crate::engine::DeadLetter],
    ) -> std::io::Result<()> {
        self.1.write_batch(tick, batch, dead_letters)?;
        self.0.write_batch(tick, batch, dead_letters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_text_is_record_text() {
        let values: [(ValueType, Vec<u8>); 6] = [
            (ValueType::Text, b"plain".to_vec()),
            (ValueType::Text, b"bad \xff utf8".to_vec()),
            (ValueType::I64, (-7i64).to_le_bytes().to_vec()),
            (ValueType::I64, b"short".to_vec()),
            (ValueType::F64, 2.25f64.to_le_bytes().to_vec()),
            (ValueType::F64, f64::INFINITY.to_le_bytes().to_vec()),
        ];
        for (ty, v) in values {
            for key in [None, Some(&b"k\xfe"[..])] {
                let mut b = RecordBatch::new();
                b.push(key, &v, 0);
                let r = b.iter().next().unwrap();
                let mut buf = Vec::new();
                write_record_text(&mut buf, &r, ty);
                assert_eq!(String::from_utf8(buf).unwrap(), record_text(&r, ty), "{ty:?} {v:?}");
            }
        }
    }
}
