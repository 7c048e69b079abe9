//! Stages that call a wasm UDF once per batch partition: map, flat_map, filter.
//!
//! Under `on_bad_record: skip`, a call that fails as a whole because of one record (a trap, a
//! panic, a stack overflow, a memory limit: the same record fails the same way again) is split
//! in halves and called again until the poison records stand alone; each goes to the dead
//! letters with the call's error, and every other record is processed. A time limit is not
//! split (finding the record would cost a time limit per halving): it fails the job.

use super::{Operator, PartitionOp};
use crate::batch::RecordBatch;
use crate::engine::EngineError;
use crate::engine::context::{BadRecordPolicy, StageContext, UdfHandle, describe};
use crate::runtime::{RecordError, UdfError, UdfInstance};

/// A call's output records and the records it refused.
type Called = (RecordBatch, Vec<RecordError>);

/// Whether a whole call failed because of a record in it.
fn record_fault(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::Udf {
            source: UdfError::Trap { .. }
                | UdfError::Panic { .. }
                | UdfError::StackOverflow { .. }
                | UdfError::MemoryLimit { .. },
            ..
        }
    )
}

/// Calls the UDF on `input` (see the module doc for what happens to poison records).
fn call(
    cx: &mut StageContext<'_>,
    udf: &UdfHandle,
    input: &RecordBatch,
    run: &dyn Fn(&mut UdfInstance, &str, &RecordBatch) -> Result<Called, UdfError>,
) -> Result<RecordBatch, EngineError> {
    match cx.call(udf, |i, f| run(i, f, input)) {
        Ok((out, errors)) => {
            cx.refuse(&errors, describe(input))?;
            Ok(out)
        }
        Err(e) if cx.policy == BadRecordPolicy::Skip && record_fault(&e) => {
            if input.len() <= 1 {
                let message = match &e {
                    EngineError::Udf { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                cx.refuse(&[RecordError { index: 0, message }], describe(input))?;
                return Ok(RecordBatch::new());
            }
            let first = cx.first_record;
            let halves = input.split(2);
            let mut outs = Vec::with_capacity(2);
            for half in &halves {
                outs.push(call(cx, udf, half, run)?);
                cx.first_record += half.len() as u32;
            }
            cx.first_record = first;
            Ok(RecordBatch::concat(&outs))
        }
        Err(e) => Err(e),
    }
}

/// `map` with a wasm UDF.
pub struct UdfMap(pub UdfHandle);
/// `flat_map` with a wasm UDF.
pub struct UdfFlatMap(pub UdfHandle);
/// `filter` with a wasm UDF.
pub struct UdfFilter(pub UdfHandle);

impl PartitionOp for UdfMap {
    fn on_partition(&self, cx: &mut StageContext<'_>, input: RecordBatch) -> Result<RecordBatch, EngineError> {
        call(cx, &self.0, &input, &|i, f, b| {
            i.map(f, b).map(|o| (o.records, o.errors))
        })
    }
}

impl PartitionOp for UdfFlatMap {
    fn on_partition(&self, cx: &mut StageContext<'_>, input: RecordBatch) -> Result<RecordBatch, EngineError> {
        call(cx, &self.0, &input, &|i, f, b| {
            i.flat_map(f, b).map(|o| (o.records, o.errors))
        })
    }
}

impl PartitionOp for UdfFilter {
    fn on_partition(&self, cx: &mut StageContext<'_>, input: RecordBatch) -> Result<RecordBatch, EngineError> {
        call(cx, &self.0, &input, &|i, f, b| {
            i.filter(f, b).map(|o| (o.kept, o.errors))
        })
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
