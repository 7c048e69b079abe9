//! The host half of each UDF kind: encode the call's input, call once, and decode the module's
//! untrusted output into host types, checking every count and index against the ABI. One file
//! per kind, named as the guest SDK's `rt/kinds.rs` functions they pair with.

mod filter;
mod flat_map;
mod map;
mod reduce;

use sluice_abi::Reader;

use super::error::{RecordError, UdfError, UdfRef};
use crate::batch::RecordBatch;

pub use reduce::Reduced;

/// The result of a `map` or `flat_map` call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapped {
    /// The records out, in input order.
    pub records: RecordBatch,
    /// The inputs the UDF refused.
    pub errors: Vec<RecordError>,
}

/// The result of a `filter` call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    /// The records kept, copied from the host's own input batch (never from the module).
    pub kept: RecordBatch,
    /// The inputs the UDF refused (dropped from `kept`).
    pub errors: Vec<RecordError>,
}

pub(super) fn bad(udf: &UdfRef, detail: impl Into<String>) -> UdfError {
    UdfError::BadOutput {
        udf: udf.clone(),
        detail: detail.into(),
    }
}

/// Reads `[u32 n_err][error × n_err]`, checks indices are ascending and below `inputs`, and that
/// nothing follows.
pub(super) fn read_errors(r: &mut Reader<'_>, inputs: u32, udf: &UdfRef) -> Result<Vec<RecordError>, UdfError> {
    let n = r.u32().map_err(|e| bad(udf, e.to_string()))?;
    if n > inputs {
        return Err(bad(udf, format!("{n} errors for {inputs} inputs")));
    }
    let mut errors = Vec::with_capacity(n as usize);
    let mut next_min = 0u32;
    for _ in 0..n {
        let (index, message) = r.error().map_err(|e| bad(udf, e.to_string()))?;
        if index < next_min || index >= inputs {
            return Err(bad(
                udf,
                format!("error index {index} is out of order or not below {inputs}"),
            ));
        }
        next_min = index + 1;
        errors.push(RecordError { index, message });
    }
    if !r.is_empty() {
        return Err(bad(
            udf,
            format!("unexpected bytes after the error list (at byte {})", r.position()),
        ));
    }
    Ok(errors)
}
