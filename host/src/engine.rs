//! The micro-batch engine: a job's stages run over each batch in order, with Spark DStream
//! semantics (batch `k >= 1` at time `zero + k * interval`; windowed streams emit once per
//! slide; the window at time `T` holds the batches in `(T - length, T]`).
//!
//! Architecture Invariant: the engine does no I/O and reads no clock: sources hand it batches,
//! sinks take its outputs, and time arrives as a `Tick`. That is what lets the window tests run
//! on a manual clock and the property tests compare it with a naive model.

pub mod clock;
pub mod context;
#[cfg(test)]
mod golden_tests;
pub mod keyed;
#[cfg(test)]
mod model_tests;
pub mod ops;
pub mod pipeline;
#[cfg(test)]
mod pipeline_tests;
pub mod reducer;
pub mod state;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod testing;
pub mod workers;

pub use clock::{Clock, ManualClock, SystemClock};
pub use context::{DeadLetter, StageContext, StageCounts, UdfLogLine};
pub use pipeline::{BatchOutput, Pipeline};
pub use reducer::{Builtin, Reducer};

use crate::runtime::UdfError;

/// One batch of the job: its id (1, 2, ...) and its time, `zero + id * interval`, in ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tick {
    /// Batch id, from 1; one per interval, also when the batch is empty.
    pub batch_id: u64,
    /// The batch's time (the end of its interval), in milliseconds since the epoch.
    pub time_ms: i64,
}

/// A stage failed on a batch.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// A UDF call failed as a whole (trap, limit, panic).
    #[error("stage {stage}: {source}")]
    Udf {
        /// The stage's name (its path in the job spec).
        stage: String,
        /// What happened.
        source: UdfError,
    },
    /// A record was refused and the job's policy is `fail`.
    #[error("stage {stage}: record {index} of batch {batch_id} was refused: {message}; record: {record}")]
    BadRecord {
        /// The stage's name.
        stage: String,
        /// The batch.
        batch_id: u64,
        /// The record's index in the stage's input.
        index: u32,
        /// The UDF's (or built-in's) message.
        message: String,
        /// The record, as text (cut at 200 bytes).
        record: String,
    },
}
