//! `map`: one record out per input not in error, in input order.

use sluice_abi::{Reader, UdfKind};

use super::{Mapped, bad, read_errors};
use crate::batch::RecordBatch;
use crate::runtime::UdfInstance;
use crate::runtime::error::UdfError;

impl UdfInstance {
    /// Runs the map UDF `function` over `batch` in one call.
    pub fn map(&mut self, function: &str, batch: &RecordBatch) -> Result<Mapped, UdfError> {
        let udf = self.udf_ref(UdfKind::Map, function);
        self.call_decoded(UdfKind::Map, function, batch.as_abi_bytes(), |out| {
            let inputs = batch.len() as u32;
            let mut r = Reader::new(out);
            let n = r.u32().map_err(|e| bad(&udf, e.to_string()))?;
            let records = RecordBatch::read_from(&mut r, n).map_err(|e| bad(&udf, e.to_string()))?;
            let errors = read_errors(&mut r, inputs, &udf)?;
            if n as usize + errors.len() != inputs as usize {
                return Err(bad(
                    &udf,
                    format!("{n} records and {} errors for {inputs} inputs", errors.len()),
                ));
            }
            Ok(Mapped { records, errors })
        })
    }
}
