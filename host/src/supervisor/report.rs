//! `BatchReport`: the figures of one batch, as the API, the console and the metrics show them.

use serde::Serialize;

use crate::engine::StageCounts;

/// The figures of one batch.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BatchReport {
    /// Batch id.
    pub batch_id: u64,
    /// Batch time, ms.
    pub time_ms: i64,
    /// Records the source gave.
    pub records_in: u64,
    /// Records the job output (`None`: no output at this batch).
    pub records_out: Option<u64>,
    /// Per stage.
    pub stages: Vec<StageCounts>,
    /// Time to read the source, run the stages and write the sink.
    pub processing_ms: f64,
    /// How late the batch started after its time (a slow batch delays the next).
    pub scheduling_delay_ms: f64,
    /// Scheduling delay plus processing time.
    pub total_delay_ms: f64,
    /// Records refused and sent to the dead letters.
    pub dead_letters: u64,
    /// Warm UDF instances the job holds after the batch, over all its workers.
    pub warm_instances: usize,
    /// For a `kafka` source: each partition's offsets and lag, and a broker or topic error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<crate::source::kafka::KafkaStatus>,
}

impl BatchReport {
    /// About how many bytes the report takes in memory (for the bytes bound on kept reports).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .stages
                .iter()
                .map(|s| std::mem::size_of::<StageCounts>() + s.stage.len())
                .sum::<usize>()
    }
}
