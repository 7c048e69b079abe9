//! Stages that call a wasm UDF once per batch: map, flat_map, filter.

use super::Operator;
use crate::batch::RecordBatch;
use crate::engine::EngineError;
use crate::engine::context::{StageContext, UdfHandle, lossy};

fn describe(batch: &RecordBatch) -> impl Fn(u32) -> (Option<String>, String) + '_ {
    |i| match batch.get(i as usize) {
        Some(r) => (r.key.map(lossy), lossy(r.value)),
        None => (None, String::new()),
    }
}

/// `map` with a wasm UDF.
pub struct UdfMap(pub UdfHandle);
/// `flat_map` with a wasm UDF.
pub struct UdfFlatMap(pub UdfHandle);
/// `filter` with a wasm UDF.
pub struct UdfFilter(pub UdfHandle);

impl Operator for UdfMap {
    fn on_batch(
        &mut self,
        cx: &mut StageContext<'_>,
        input: Option<RecordBatch>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        let Some(input) = input else { return Ok(None) };
        let out = cx.call(&self.0, |i, f| i.map(f, &input))?;
        cx.refuse(&out.errors, describe(&input))?;
        Ok(Some(out.records))
    }
}

impl Operator for UdfFlatMap {
    fn on_batch(
        &mut self,
        cx: &mut StageContext<'_>,
        input: Option<RecordBatch>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        let Some(input) = input else { return Ok(None) };
        let out = cx.call(&self.0, |i, f| i.flat_map(f, &input))?;
        cx.refuse(&out.errors, describe(&input))?;
        Ok(Some(out.records))
    }
}

impl Operator for UdfFilter {
    fn on_batch(
        &mut self,
        cx: &mut StageContext<'_>,
        input: Option<RecordBatch>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        let Some(input) = input else { return Ok(None) };
        let out = cx.call(&self.0, |i, f| i.filter(f, &input))?;
        cx.refuse(&out.errors, describe(&input))?;
        Ok(Some(out.kept))
    }
}
