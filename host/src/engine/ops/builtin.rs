//! Native built-in stages for simple parsing, so a wasm call is needed only for custom logic:
//! split a line, key by a field (optionally bucketed), pick a field, parse an integer, set a
//! constant value, key by value, and keep records whose field equals a text.

use super::{Operator, PartitionOp};
use crate::batch::RecordBatch;
use crate::engine::EngineError;
use crate::engine::context::{StageContext, lossy};
use crate::runtime::RecordError;

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

enum Out<'a> {
    Keep,
    Drop,
    Record(Option<Vec<u8>>, Vec<u8>),
    Many(Vec<(Option<&'a [u8]>, &'a [u8])>),
}

fn text(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|_| format!("value is not UTF-8 text: {:?}", lossy(v)))
}

fn int(line: &str, s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| format!("malformed line {line:?}: {s:?} is not an integer"))
}

impl Builtin {
    fn apply<'a>(&self, key: Option<&'a [u8]>, value: &'a [u8]) -> Result<Out<'a>, String> {
        const ONE: [u8; 8] = 1i64.to_le_bytes();
        Ok(match self {
            Builtin::Split { sep, pairs } => {
                let line = text(value)?;
                Out::Many(
                    line.split(sep.as_str())
                        .map(|w| {
                            if *pairs {
                                (Some(w.as_bytes()), &ONE[..])
                            } else {
                                (key, w.as_bytes())
                            }
                        })
                        .collect(),
                )
            }
            Builtin::SplitWhitespace { pairs } => {
                let line = text(value)?;
                Out::Many(
                    line.split_whitespace()
                        .map(|w| {
                            if *pairs {
                                (Some(w.as_bytes()), &ONE[..])
                            } else {
                                (key, w.as_bytes())
                            }
                        })
                        .collect(),
                )
            }
            Builtin::KeyByField { field, bucket } => {
                let line = text(value)?;
                let f = field.get(line)?;
                let k = match bucket {
                    Some(b) => int(line, f)?.div_euclid(*b).to_string().into_bytes(),
                    None => f.as_bytes().to_vec(),
                };
                Out::Record(Some(k), value.to_vec())
            }
            Builtin::PickField(field) => {
                let line = text(value)?;
                Out::Record(key.map(<[u8]>::to_vec), field.get(line)?.as_bytes().to_vec())
            }
            Builtin::ParseInt => {
                let line = text(value)?;
                Out::Record(key.map(<[u8]>::to_vec), int(line, line)?.to_le_bytes().to_vec())
            }
            Builtin::SetValue(n) => Out::Record(key.map(<[u8]>::to_vec), n.to_le_bytes().to_vec()),
            Builtin::KeyByValue => Out::Record(Some(value.to_vec()), value.to_vec()),
            Builtin::FieldEquals { field, equals } => {
                let line = text(value)?;
                if field.get(line)? == equals {
                    Out::Keep
                } else {
                    Out::Drop
                }
            }
        })
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
            match self.apply(r.key, r.value) {
                Ok(Out::Keep) => out.push_ref(r),
                Ok(Out::Drop) => {}
                Ok(Out::Record(k, v)) => out.push(k.as_deref(), &v, r.timestamp_ms),
                Ok(Out::Many(pieces)) => {
                    for (k, v) in pieces {
                        out.push(k, v, r.timestamp_ms);
                    }
                }
                Err(message) => errors.push(RecordError {
                    index: i as u32,
                    message,
                }),
            }
        }
        cx.refuse(&errors, |i| match input.get(i as usize) {
            Some(r) => (r.key.map(lossy), lossy(r.value)),
            None => (None, String::new()),
        })?;
        Ok(out)
    }
}
