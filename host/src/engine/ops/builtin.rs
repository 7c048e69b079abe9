//! Native built-in stages for simple parsing, so a wasm call is needed only for custom logic:
//! split a line, key by a field (optionally bucketed), pick a field, parse an integer, set a
//! constant value, key by value, and keep records whose field equals a text.

use super::{Operator, PartitionOp};
use crate::batch::RecordBatch;
use crate::engine::EngineError;
use crate::engine::context::{StageContext, describe, lossy};
use crate::runtime::RecordError;
use sluice_abi::RecordRef;

/// Field `index` (from 0) of a line split at `sep`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// The separator (one or more characters).
    pub sep: String,
    /// Which field, from 0.
    pub index: usize,
}

impl FieldSpec {
    fn get<'a>(&self, line: &'a str) -> Result<&'a str, String> {
        line.split(self.sep.as_str()).nth(self.index).ok_or_else(|| {
            let found = line.split(self.sep.as_str()).count();
            format!(
                "malformed line {line:?}: expected at least {} fields separated by {:?}, found {found}",
                self.index + 1,
                self.sep
            )
        })
    }
}

/// A native stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// flat_map: one record per piece of the value split at `sep`, empty pieces kept (as
    /// Python's `line.split(sep)`); the piece becomes the key and the value the number 1 when
    /// `pairs`, else the piece becomes the value.
    Split { sep: String, pairs: bool },
    /// flat_map: as `Split` at runs of whitespace, no empty pieces (Python's `line.split()`).
    SplitWhitespace { pairs: bool },
    /// map: the key becomes a field of the value; with `bucket`, the field parsed as an integer
    /// and floored to a multiple of `bucket` divided by it (`floor(field / bucket)`).
    KeyByField { field: FieldSpec, bucket: Option<i64> },
    /// map: the value becomes a field of it.
    PickField(FieldSpec),
    /// map: the value, decimal text, becomes a number.
    ParseInt,
    /// map: the value becomes this number.
    SetValue(i64),
    /// map: the key becomes the value.
    KeyByValue,
    /// filter: keeps records whose field equals `equals` exactly.
    FieldEquals { field: FieldSpec, equals: String },
}

fn text(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|_| format!("value is not UTF-8 text: {:?}", lossy(v)))
}

fn int(line: &str, s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| format!("malformed line {line:?}: {s:?} is not an integer"))
}

/// Pieces of `line` split at `sep`: a `char` search for one-byte separators (memchr), a
/// substring search otherwise.
fn pieces<'a>(line: &'a str, sep: &'a str) -> Box<dyn Iterator<Item = &'a str> + 'a> {
    match sep.as_bytes() {
        [b] if b.is_ascii() => Box::new(line.split(*b as char)),
        _ => Box::new(line.split(sep)),
    }
}

impl Builtin {
    /// Appends what the stage makes of one record to `out`.
    fn apply(&self, r: RecordRef<'_>, out: &mut RecordBatch) -> Result<(), String> {
        const ONE: [u8; 8] = 1i64.to_le_bytes();
        let ts = r.timestamp_ms;
        match self {
            Builtin::Split { sep, pairs } => {
                for w in pieces(text(r.value)?, sep) {
                    if *pairs {
                        out.push(Some(w.as_bytes()), &ONE, ts)
                    } else {
                        out.push(r.key, w.as_bytes(), ts)
                    }
                }
            }
            Builtin::SplitWhitespace { pairs } => {
                for w in text(r.value)?.split_whitespace() {
                    if *pairs {
                        out.push(Some(w.as_bytes()), &ONE, ts)
                    } else {
                        out.push(r.key, w.as_bytes(), ts)
                    }
                }
            }
            Builtin::KeyByField { field, bucket } => {
                let line = text(r.value)?;
                let f = field.get(line)?;
                match bucket {
                    Some(b) => out.push(Some(int(line, f)?.div_euclid(*b).to_string().as_bytes()), r.value, ts),
                    None => out.push(Some(f.as_bytes()), r.value, ts),
                }
            }
            Builtin::PickField(field) => out.push(r.key, field.get(text(r.value)?)?.as_bytes(), ts),
            Builtin::ParseInt => {
                let line = text(r.value)?;
                out.push(r.key, &int(line, line)?.to_le_bytes(), ts);
            }
            Builtin::SetValue(n) => out.push(r.key, &n.to_le_bytes(), ts),
            Builtin::KeyByValue => out.push(Some(r.value), r.value, ts),
            Builtin::FieldEquals { field, equals } => {
                if field.get(text(r.value)?)? == equals {
                    out.push_ref(r);
                }
            }
        }
        Ok(())
    }
}

impl Operator for Builtin {
    fn on_batch(
        &mut self,
        cx: &mut StageContext<'_>,
        input: Option<RecordBatch>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        input.map(|b| self.on_partition(cx, b)).transpose()
    }

    fn partitioned(&self) -> Option<&dyn PartitionOp> {
        Some(self)
    }
}

impl PartitionOp for Builtin {
    fn on_partition(&self, cx: &mut StageContext<'_>, input: RecordBatch) -> Result<RecordBatch, EngineError> {
        let mut out = RecordBatch::with_capacity(input.len(), input.as_abi_bytes().len());
        let mut errors = Vec::new();
        for (i, r) in input.iter().enumerate() {
            if let Err(message) = self.apply(r, &mut out) {
                errors.push(RecordError {
                    index: i as u32,
                    message,
                });
            }
        }
        cx.refuse(&errors, describe(&input))?;
        Ok(out)
    }
}
