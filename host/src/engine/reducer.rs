//! Reducers: the native built-ins (sum, min, max over i64 values) and wasm `reduce` UDFs, behind
//! one interface that folds many groups of values in one go (one wasm call per batch).

use super::EngineError;
use super::context::{StageContext, UdfHandle};
use crate::batch::ValueGroups;
use crate::runtime::RecordError;

/// A native reducer over i64 values (8 bytes, little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// Sum (wrapping); its inverse is subtraction.
    Sum,
    /// Minimum; no inverse.
    Min,
    /// Maximum; no inverse.
    Max,
    /// Count of records (values of any type); its partials are summed; has an inverse.
    Count,
    /// Average: folds `(sum, count)` partials (16 bytes) and outputs `sum / count` as an f64;
    /// its inverse subtracts both.
    Avg,
}

/// How a stage folds values.
#[derive(Clone, Debug)]
pub enum Reducer {
    /// A native built-in; `use_inverse` (only for `Sum`) takes the inverse path in windows.
    Builtin { builtin: Builtin, use_inverse: bool },
    /// A wasm `reduce` UDF; `use_inverse` (only if the module exports the inverse) takes the
    /// inverse path in windows.
    Wasm { udf: UdfHandle, use_inverse: bool },
}

/// One fold: a value, or the error for that group.
pub type Folded = Result<Vec<u8>, String>;

fn int(v: &[u8]) -> Result<i64, String> {
    <[u8; 8]>::try_from(v)
        .map(i64::from_le_bytes)
        .map_err(|_| format!("value is not an i64 (8 bytes, little-endian): it has {} bytes", v.len()))
}

impl Builtin {
    /// Folds two numbers.
    pub fn apply(self, a: i64, b: i64) -> i64 {
        match self {
            Builtin::Sum | Builtin::Count | Builtin::Avg => a.wrapping_add(b),
            Builtin::Min => a.min(b),
            Builtin::Max => a.max(b),
        }
    }

    pub(crate) fn fold_group(self, values: &[&[u8]], inverse: bool) -> Folded {
        if self == Builtin::Avg {
            let (mut sum, mut count) = pair(values[0])?;
            for v in &values[1..] {
                let (s, c) = pair(v)?;
                if inverse {
                    (sum, count) = (sum.wrapping_sub(s), count - c);
                } else {
                    (sum, count) = (sum.wrapping_add(s), count + c);
                }
            }
            return Ok(avg_partial(sum, count));
        }
        let mut acc = int(values[0])?;
        for v in &values[1..] {
            let v = int(v)?;
            acc = if inverse {
                acc.wrapping_sub(v)
            } else {
                self.apply(acc, v)
            };
        }
        Ok(acc.to_le_bytes().to_vec())
    }
}

/// An average's partial value: `[i64 sum][i64 count]`.
pub fn avg_partial(sum: i64, count: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&sum.to_le_bytes());
    v.extend_from_slice(&count.to_le_bytes());
    v
}

fn pair(v: &[u8]) -> Result<(i64, i64), String> {
    match <[u8; 16]>::try_from(v) {
        Ok(a) => Ok((
            i64::from_le_bytes(a[..8].try_into().expect("8 bytes")),
            i64::from_le_bytes(a[8..].try_into().expect("8 bytes")),
        )),
        Err(_) => Err(format!("an average's partial value has 16 bytes, not {}", v.len())),
    }
}

impl Reducer {
    /// What its partials are, for checkpoints: the built-in's name, or `udf:FUNCTION` (any
    /// version of the same function reads the same partials).
    pub fn state_name(&self) -> String {
        match self {
            Reducer::Builtin { builtin, .. } => format!("{builtin:?}").to_lowercase(),
            Reducer::Wasm { udf, .. } => format!("udf:{}", udf.function),
        }
    }

    /// Whether it has an inverse (sliding windows can subtract what leaves).
    pub fn has_inverse(&self) -> bool {
        match self {
            Reducer::Builtin { builtin, use_inverse } => {
                *use_inverse && matches!(builtin, Builtin::Sum | Builtin::Count | Builtin::Avg)
            }
            Reducer::Wasm { use_inverse, .. } => *use_inverse,
        }
    }

    /// A native built-in without its inverse.
    pub fn builtin(builtin: Builtin) -> Reducer {
        Reducer::Builtin {
            builtin,
            use_inverse: false,
        }
    }

    /// Native sum with its inverse (subtraction): what the counting windows use.
    pub fn sum_with_inverse() -> Reducer {
        Reducer::Builtin {
            builtin: Builtin::Sum,
            use_inverse: true,
        }
    }

    /// The value a partial stands for in the output: `sum / count` (f64) for an average, the
    /// partial itself otherwise.
    pub fn finish(&self, partial: &[u8]) -> Vec<u8> {
        match self {
            Reducer::Builtin {
                builtin: Builtin::Avg, ..
            } => match pair(partial) {
                Ok((sum, count)) if count != 0 => (sum as f64 / count as f64).to_le_bytes().to_vec(),
                _ => f64::NAN.to_le_bytes().to_vec(),
            },
            _ => partial.to_vec(),
        }
    }

    /// Whether a partial is the identity a windowed reduce with an inverse keeps for a key that
    /// left (`0`; for an average, a count of 0): what the `nonzero` filter drops.
    pub fn is_empty_partial(&self, partial: &[u8]) -> bool {
        match self {
            Reducer::Builtin {
                builtin: Builtin::Avg, ..
            } => pair(partial).is_ok_and(|(_, c)| c == 0),
            _ => partial == 0i64.to_le_bytes(),
        }
    }

    /// Folds each group (`groups[i]` non-empty) left to right: `f(f(v0, v1), v2)...`, or with the
    /// inverse. One wasm call for all groups.
    pub fn fold(
        &self,
        cx: &mut StageContext<'_>,
        groups: &[Vec<&[u8]>],
        inverse: bool,
    ) -> Result<Vec<Folded>, EngineError> {
        match self {
            Reducer::Builtin { builtin, .. } => Ok(groups.iter().map(|g| builtin.fold_group(g, inverse)).collect()),
            Reducer::Wasm { udf, .. } => {
                if groups.is_empty() {
                    return Ok(Vec::new());
                }
                let mut encoded = ValueGroups::new();
                for g in groups {
                    encoded.start_group();
                    for v in g {
                        encoded.push_value(v);
                    }
                }
                let reduced = cx.call(udf, |i, f| {
                    if inverse {
                        i.inverse(f, &mut encoded)
                    } else {
                        i.reduce(f, &mut encoded)
                    }
                })?;
                let mut errors = reduced.errors.iter().peekable();
                Ok(reduced
                    .values
                    .into_iter()
                    .enumerate()
                    .map(|(g, v)| match v {
                        Some(v) => Ok(v),
                        None => Err(errors
                            .next()
                            .filter(|e| e.index as usize == g)
                            .map_or_else(|| "refused".to_owned(), |e: &RecordError| e.message.clone())),
                    })
                    .collect())
            }
        }
    }
}
