//! `filter`: the module returns a selection (one byte per input), not copies; the host gathers
//! the kept records from its own buffer.

use sluice_abi::{DROP, KEEP, Reader, UdfKind};

use super::{Filtered, bad, read_errors};
use crate::batch::RecordBatch;
use crate::runtime::UdfInstance;
use crate::runtime::error::UdfError;

impl UdfInstance {
    /// Runs the filter UDF `function` over `batch` in one call.
    pub fn filter(&mut self, function: &str, batch: &RecordBatch) -> Result<Filtered, UdfError> {
        let udf = self.udf_ref(UdfKind::Filter, function);
        self.call_decoded(UdfKind::Filter, function, batch.as_abi_bytes(), |out| {
            let inputs = batch.len() as u32;
            let mut r = Reader::new(out);
            let n = r.u32().map_err(|e| bad(&udf, e.to_string()))?;
            if n != inputs {
                return Err(bad(&udf, format!("a selection of {n} for {inputs} inputs")));
            }
            let selection = r.raw(n as usize).map_err(|e| bad(&udf, e.to_string()))?;
            if let Some(b) = selection.iter().find(|&&b| b != KEEP && b != DROP) {
                return Err(bad(&udf, format!("selection byte {b} is neither 0 nor 1")));
            }
            let selection = selection.to_vec();
            let errors = read_errors(&mut r, inputs, &udf)?;
            if errors.iter().any(|e| selection[e.index as usize] == KEEP) {
                return Err(bad(&udf, "a record in error is also selected"));
            }
            Ok(Filtered {
                kept: batch.select(&selection),
                errors,
            })
        })
    }
}
