//! `reduce` and `inverse`: fold groups of values, one value out per group not in error.

use sluice_abi::{Reader, UdfKind};

use super::{bad, read_errors};
use crate::batch::ValueGroups;
use crate::runtime::UdfInstance;
use crate::runtime::error::{RecordError, UdfError};

/// The result of a `reduce` or `inverse` call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reduced {
    /// One entry per input group: its folded value, or `None` if the group is in `errors`.
    pub values: Vec<Option<Vec<u8>>>,
    /// The groups the UDF refused.
    pub errors: Vec<RecordError>,
}

impl UdfInstance {
    /// Folds each group with the reduce UDF `function` in one call.
    pub fn reduce(&mut self, function: &str, groups: &mut ValueGroups) -> Result<Reduced, UdfError> {
        self.fold(UdfKind::Reduce, function, groups)
    }

    /// Folds each group with the inverse of the reduce UDF `function` in one call:
    /// `inverse(inverse(v0, v1), v2)...`.
    pub fn inverse(&mut self, function: &str, groups: &mut ValueGroups) -> Result<Reduced, UdfError> {
        self.fold(UdfKind::Inverse, function, groups)
    }

    fn fold(&mut self, kind: UdfKind, function: &str, groups: &mut ValueGroups) -> Result<Reduced, UdfError> {
        let udf = self.udf_ref(kind, function);
        let inputs = groups.len() as u32;
        self.call_decoded(kind, function, groups.as_abi_bytes(), |out| {
            let mut r = Reader::new(out);
            let n = r.u32().map_err(|e| bad(&udf, e.to_string()))?;
            if n > inputs {
                return Err(bad(&udf, format!("{n} values for {inputs} groups")));
            }
            let mut folded = Vec::with_capacity(n as usize);
            for _ in 0..n {
                folded.push(r.bytes().map_err(|e| bad(&udf, e.to_string()))?.to_vec());
            }
            let errors = read_errors(&mut r, inputs, &udf)?;
            if n as usize + errors.len() != inputs as usize {
                return Err(bad(
                    &udf,
                    format!("{n} values and {} errors for {inputs} groups", errors.len()),
                ));
            }
            let mut values = Vec::with_capacity(inputs as usize);
            let mut folded = folded.into_iter();
            let mut errs = errors.iter().map(|e| e.index).peekable();
            for g in 0..inputs {
                if errs.peek() == Some(&g) {
                    errs.next();
                    values.push(None);
                } else {
                    values.push(folded.next());
                }
            }
            Ok(Reduced { values, errors })
        })
    }
}
