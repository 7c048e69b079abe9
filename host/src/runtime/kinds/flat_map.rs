//! `flat_map`: any number of records out per input.

use sluice_abi::{Reader, UdfKind};

use super::{Mapped, bad, read_errors};
use crate::batch::RecordBatch;
use crate::runtime::UdfInstance;
use crate::runtime::error::UdfError;

impl UdfInstance {
    /// Runs the flat_map UDF `function` over `batch` in one call.
    pub fn flat_map(&mut self, function: &str, batch: &RecordBatch) -> Result<Mapped, UdfError> {
        let udf = self.udf_ref(UdfKind::FlatMap, function);
        self.call_decoded(UdfKind::FlatMap, function, batch.as_abi_bytes(), |out| {
            let mut r = Reader::new(out);
            let n = r.u32().map_err(|e| bad(&udf, e.to_string()))?;
            let records = RecordBatch::read_from(&mut r, n).map_err(|e| bad(&udf, e.to_string()))?;
            let errors = read_errors(&mut r, batch.len() as u32, &udf)?;
            Ok(Mapped { records, errors })
        })
    }
}
