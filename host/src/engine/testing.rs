//! Test helpers: run one operator over batches of `(key, number)` records on a manual batch
//! clock (batch `k` at `k` seconds), collecting the outputs as sorted lists.

use std::sync::{Arc, OnceLock};

use super::Tick;
use super::context::{BadRecordPolicy, StageContext, UdfHandle};
use super::ops::Operator;
use super::reducer::Reducer;
use super::workers::Workers;
use crate::batch::RecordBatch;
use crate::runtime::{Runtime, RuntimeConfig};

pub const B: i64 = 1000;

pub type Rec = (Option<&'static str>, i64);
pub type Out = Vec<(Option<String>, i64)>;

pub fn runtime() -> Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| Arc::new(Runtime::new(RuntimeConfig::default()).unwrap()))
        .clone()
}

/// The examples module's `sum_counts` (with its inverse when `inverse`) as a reducer.
pub fn wasm_sum(inverse: bool) -> Reducer {
    let rt = runtime();
    let module = rt.load("examples@1", sluice_udf_artifacts::EXAMPLES).unwrap();
    Reducer::Wasm {
        udf: UdfHandle {
            module,
            function: "sum_counts".into(),
            limits: rt.config().default_limits.clone(),
        },
        use_inverse: inverse,
    }
}

pub fn batch_of(records: &[Rec]) -> RecordBatch {
    let mut b = RecordBatch::new();
    for (k, v) in records {
        b.push(k.map(str::as_bytes), &v.to_le_bytes(), 0);
    }
    b
}

pub fn decode(b: &RecordBatch) -> Out {
    let mut v: Out = b
        .iter()
        .map(|r| {
            (
                r.key.map(|k| String::from_utf8_lossy(k).into_owned()),
                i64::from_le_bytes(r.value.try_into().expect("i64 values")),
            )
        })
        .collect();
    v.sort();
    v
}

/// Runs `op` for `batches` batches (inputs past the end are empty) and returns its outputs.
pub fn run(op: &mut dyn Operator, inputs: &[Vec<Rec>], batches: usize) -> Vec<Out> {
    run_range(op, inputs, 1, batches, |_, _| {})
        .into_iter()
        .map(|(_, out)| out)
        .collect()
}

/// Runs batches `from..=to` through `op` (inputs past the end are empty), calling `after` after
/// each: the outputs by batch.
pub fn run_range(
    op: &mut dyn Operator,
    inputs: &[Vec<Rec>],
    from: usize,
    to: usize,
    mut after: impl FnMut(usize, &mut dyn Operator),
) -> Vec<(usize, Out)> {
    let rt = runtime();
    let workers = Workers::new(1);
    let mut outputs = Vec::new();
    for k in from..=to {
        let tick = Tick {
            batch_id: k as u64,
            time_ms: k as i64 * B,
        };
        let mut cx = StageContext::new(&rt, &workers, BadRecordPolicy::Fail, tick, "test");
        let input = batch_of(inputs.get(k - 1).map_or(&[][..], Vec::as_slice));
        if let Some(out) = op.on_batch(&mut cx, Some(input)).unwrap() {
            outputs.push((k, decode(&out)));
        }
        after(k, op);
    }
    outputs
}

/// Shorthand for expected outputs.
pub fn out(v: &[(Option<&str>, i64)]) -> Out {
    let mut o: Out = v.iter().map(|(k, n)| (k.map(str::to_owned), *n)).collect();
    o.sort();
    o
}
