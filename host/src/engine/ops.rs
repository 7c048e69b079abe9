//! The operators a job's stages run. One trait with one required method; one operator per file.

mod builtin;
mod keyed_ops;
mod panes;
mod reduce_window;
mod udf;
mod window;

pub use builtin::{Builtin as BuiltinOp, FieldSpec};
pub use keyed_ops::{CountByValue, ReduceByKey, UpdateStateByKey};
pub use reduce_window::{ReduceByKeyAndWindow, WindowFilter, WindowOutput};
pub use udf::{UdfFilter, UdfFlatMap, UdfMap};
pub use window::Window;

use super::EngineError;
use super::context::StageContext;
use super::state::{StateDelta, StateError, StoredState};
use crate::batch::RecordBatch;

/// A stage of a job.
pub trait Operator: Send {
    /// Runs once per batch of the job, in batch order. `input` is `None` when the stream feeding
    /// this stage has no output at this batch (a windowed stream emits once per slide); the
    /// result is `None` when this stage has none.
    fn on_batch(
        &mut self,
        cx: &mut StageContext<'_>,
        input: Option<RecordBatch>,
    ) -> Result<Option<RecordBatch>, EngineError>;

    /// For a stage that treats each record on its own: itself as a `PartitionOp`, so the
    /// pipeline can split large batches and run the parts on the workers in parallel.
    fn partitioned(&self) -> Option<&dyn PartitionOp> {
        None
    }

    /// For a per-batch native keyed reduce: its built-in, so the pipeline can fold each part of
    /// the previous (partitioned) stage's output right where it is made (a map-side combine)
    /// instead of joining the parts first.
    fn map_side_fold(&self) -> Option<crate::engine::reducer::Builtin> {
        None
    }

    /// For a stateful operator: what its state is, recorded with a checkpoint so that a restore
    /// only reads state into an operator of the same kind and shape.
    fn state_kind(&self) -> Option<StateKind> {
        None
    }

    /// What changed in its state since the last snapshot (everything when `full`).
    fn snapshot(&mut self, _full: bool) -> StateDelta {
        StateDelta::default()
    }

    /// Rebuilds its state from what a checkpoint stored.
    fn restore(&mut self, _state: StoredState) -> Result<(), StateError> {
        Ok(())
    }

    /// The UDF this stage calls, if it calls one of its own.
    fn udf(&self) -> Option<&crate::engine::context::UdfHandle> {
        None
    }

    /// Replaces the UDF this stage calls (hot-swap, between batches) and gives back the one it
    /// called; `None` for stages that call no UDF of their own.
    fn swap_udf(&mut self, _udf: crate::engine::context::UdfHandle) -> Option<crate::engine::context::UdfHandle> {
        None
    }
}

/// What a stateful operator's state is: a description of its kind and shape (window length,
/// slide, reducer, ...) and the format version of its stored blobs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateKind {
    /// The kind and shape, e.g. `reduce_by_key_and_window length=60000 slide=1000 ...`.
    pub shape: String,
    /// The format version of its stored state.
    pub format: u32,
}

/// A stage that treats each record on its own, so parts of a batch can run in parallel and be
/// concatenated in order.
pub trait PartitionOp: Sync {
    /// Runs the stage on one part of a batch.
    fn on_partition(&self, cx: &mut StageContext<'_>, input: RecordBatch) -> Result<RecordBatch, EngineError>;
}

/// Whether a stream with slide `slide_ms` has an output at batch `batch_id` (interval
/// `batch_ms`): at `zero + slide, zero + 2 * slide, ...`.
pub fn emits_at(batch_id: u64, batch_ms: i64, slide_ms: i64) -> bool {
    (batch_id as i64 * batch_ms) % slide_ms == 0
}
