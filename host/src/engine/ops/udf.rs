//! Stages that call a wasm UDF once per batch partition: map, flat_map, filter.

use super::{Operator, PartitionOp};
use crate::batch::RecordBatch;
use crate::engine::EngineError;
use crate::engine::context::{StageContext, UdfHandle, describe};

/// `map` with a wasm UDF.
pub struct UdfMap(pub UdfHandle);
/// `flat_map` with a wasm UDF.
pub struct UdfFlatMap(pub UdfHandle);
/// `filter` with a wasm UDF.
pub struct UdfFilter(pub UdfHandle);

impl PartitionOp for UdfMap {
    fn on_partition(&self, cx: &mut StageContext<'_>, input: RecordBatch) -> Result<RecordBatch, EngineError> {
        let out = cx.call(&self.0, |i, f| i.map(f, &input))?;
        cx.refuse(&out.errors, describe(&input))?;
        Ok(out.records)
    }
}

impl PartitionOp for UdfFlatMap {
    fn on_partition(&self, cx: &mut StageContext<'_>, input: RecordBatch) -> Result<RecordBatch, EngineError> {
        let out = cx.call(&self.0, |i, f| i.flat_map(f, &input))?;
        cx.refuse(&out.errors, describe(&input))?;
        Ok(out.records)
    }
}

impl PartitionOp for UdfFilter {
    fn on_partition(&self, cx: &mut StageContext<'_>, input: RecordBatch) -> Result<RecordBatch, EngineError> {
        let out = cx.call(&self.0, |i, f| i.filter(f, &input))?;
        cx.refuse(&out.errors, describe(&input))?;
        Ok(out.kept)
    }
}

macro_rules! per_partition {
    ($($t:ty),*) => {$(
        impl Operator for $t {
            fn on_batch(&mut self, cx: &mut StageContext<'_>, input: Option<RecordBatch>) -> Result<Option<RecordBatch>, EngineError> {
                input.map(|b| self.on_partition(cx, b)).transpose()
            }

            fn partitioned(&self) -> Option<&dyn PartitionOp> {
                Some(self)
            }

            fn udf(&self) -> Option<&UdfHandle> {
                Some(&self.0)
            }

            fn swap_udf(&mut self, udf: UdfHandle) -> Option<UdfHandle> {
                Some(std::mem::replace(&mut self.0, udf))
            }
        }
    )*};
}

per_partition!(UdfMap, UdfFlatMap, UdfFilter);
