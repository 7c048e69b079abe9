//! A job's stages in order, run over one batch at a time, with the per-stage counts and the
//! refused records of each batch.

use std::sync::Arc;

use super::context::{BadRecordPolicy, DeadLetter, StageContext, StageCounts};
use super::ops::Operator;
use super::workers::Workers;
use super::{EngineError, Tick};
use crate::batch::RecordBatch;
use crate::runtime::Runtime;

/// A stage: its name (its path in the job spec, for errors and metrics) and its operator.
pub struct Stage {
    /// The name.
    pub name: String,
    /// The operator.
    pub op: Box<dyn Operator>,
}

/// What one batch produced.
#[derive(Debug)]
pub struct BatchOutput {
    /// The batch.
    pub tick: Tick,
    /// The job's output for this batch; `None` when the last stage emits only once per slide
    /// and this batch is not on a slide boundary.
    pub output: Option<RecordBatch>,
    /// Records in and out per stage.
    pub counts: Vec<StageCounts>,
    /// Records refused under the `skip` policy.
    pub dead_letters: Vec<DeadLetter>,
}

/// The stages of a job, with the warm UDF instances they call.
pub struct Pipeline {
    runtime: Arc<Runtime>,
    stages: Vec<Stage>,
    policy: BadRecordPolicy,
    workers: Workers,
}

impl Pipeline {
    /// A pipeline of `stages` on `workers` threads, refusing records per `policy`.
    pub fn new(runtime: Arc<Runtime>, stages: Vec<Stage>, policy: BadRecordPolicy, workers: usize) -> Pipeline {
        Pipeline {
            runtime,
            stages,
            policy,
            workers: Workers::new(workers),
        }
    }

    /// Runs every stage over batch `tick`, whose records are `input`.
    pub fn run_batch(&mut self, tick: Tick, input: RecordBatch) -> Result<BatchOutput, EngineError> {
        let mut data = Some(input);
        let mut counts = Vec::with_capacity(self.stages.len());
        let mut dead_letters = Vec::new();
        for stage in &mut self.stages {
            let records_in = data.as_ref().map_or(0, |b| b.len() as u64);
            let mut cx = StageContext::new(&self.runtime, &self.workers, self.policy, tick, &stage.name);
            data = match (stage.op.partitioned(), data) {
                (Some(op), Some(input)) if cx.partitions_for(input.len()) > 1 => {
                    let mut first = 0;
                    let parts: Vec<(usize, RecordBatch)> = input
                        .split(cx.partitions_for(input.len()))
                        .into_iter()
                        .map(|p| {
                            first += p.len();
                            (first - p.len(), p)
                        })
                        .collect();
                    let outs = cx.parallel(parts, |cx, (first, part)| {
                        cx.first_record = first as u32;
                        op.on_partition(cx, part)
                    })?;
                    Some(RecordBatch::concat(&outs))
                }
                (_, data) => stage.op.on_batch(&mut cx, data)?,
            };
            let errors = cx.errors;
            dead_letters.append(&mut cx.dead_letters);
            counts.push(StageCounts {
                stage: stage.name.clone(),
                records_in,
                records_out: data.as_ref().map_or(0, |b| b.len() as u64),
                errors,
            });
        }
        Ok(BatchOutput {
            tick,
            output: data,
            counts,
            dead_letters,
        })
    }
}
