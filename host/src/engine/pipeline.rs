//! A job's stages in order, run over one batch at a time, with the per-stage counts and the
//! refused records of each batch.

use std::sync::Arc;

use super::context::{BadRecordPolicy, DeadLetter, PARTITION_RECORDS_MIN, StageContext, StageCounts, UdfLogLine};
use super::keyed;
use super::ops::Operator;
use super::reducer::Reducer;
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
    /// The UDFs' log lines (at most `LOG_LINES_PER_BATCH_MAX`).
    pub logs: Vec<UdfLogLine>,
    /// Log lines counted and not kept.
    pub logs_dropped: u64,
}

/// The stages of a job, with the warm UDF instances they call.
pub struct Pipeline {
    runtime: Arc<Runtime>,
    stages: Vec<Stage>,
    policy: BadRecordPolicy,
    workers: Workers,
}

impl Pipeline {
    /// A pipeline of `stages` on a pool of its own of `workers` threads, refusing records per
    /// `policy`.
    pub fn new(runtime: Arc<Runtime>, stages: Vec<Stage>, policy: BadRecordPolicy, workers: usize) -> Pipeline {
        Pipeline::on(runtime, stages, policy, Workers::new(workers))
    }

    /// A pipeline of `stages` on `workers` (a shared lane), refusing records per `policy`.
    pub fn on(runtime: Arc<Runtime>, stages: Vec<Stage>, policy: BadRecordPolicy, workers: Workers) -> Pipeline {
        Pipeline {
            runtime,
            stages,
            policy,
            workers,
        }
    }

    /// Makes stage `stage` call `udf` from the next batch on (hot-swap), and drops the warm
    /// instances of the module it called. `false` if there is no such stage or it calls no UDF.
    pub fn swap_udf(&mut self, stage: usize, udf: super::context::UdfHandle) -> bool {
        let new_hash = *udf.module.sha256();
        let Some(old) = self.stages.get_mut(stage).and_then(|s| s.op.swap_udf(udf)) else {
            return false;
        };
        if *old.module.sha256() != new_hash {
            for slot in self.workers.slots() {
                slot.lock()
                    .expect("a worker slot is never poisoned")
                    .forget_module(old.module.sha256());
            }
        }
        true
    }

    /// The UDF version each UDF stage calls now: `(stage name, module@version)`.
    pub fn udf_labels(&self) -> Vec<(String, String)> {
        self.stages
            .iter()
            .filter_map(|s| s.op.udf().map(|u| (s.name.clone(), u.module.label().to_owned())))
            .collect()
    }

    /// Its stateful stages, by name, with what their state is.
    pub fn state_kinds(&self) -> Vec<(String, super::ops::StateKind)> {
        self.stages
            .iter()
            .filter_map(|s| s.op.state_kind().map(|k| (s.name.clone(), k)))
            .collect()
    }

    /// What changed in each stateful stage's state since the last snapshot (everything when
    /// `full`), by stage name.
    pub fn snapshot(&mut self, full: bool) -> Vec<(String, super::state::StateDelta)> {
        self.stages
            .iter_mut()
            .filter(|s| s.op.state_kind().is_some())
            .map(|s| (s.name.clone(), s.op.snapshot(full)))
            .collect()
    }

    /// Restores each stateful stage from its stored state (by stage name; a stage without one
    /// starts empty).
    pub fn restore(
        &mut self,
        mut states: std::collections::HashMap<String, super::state::StoredState>,
    ) -> Result<(), super::state::StateError> {
        for s in &mut self.stages {
            if s.op.state_kind().is_some() {
                let state = states.remove(&s.name).unwrap_or_default();
                s.op.restore(state)
                    .map_err(|e| super::state::StateError(format!("{}: {}", s.name, e.0)))?;
            }
        }
        Ok(())
    }

    /// Warm instances this pipeline holds, over all workers.
    pub fn warm_instances(&self) -> usize {
        self.workers
            .slots()
            .iter()
            .map(|s| s.lock().expect("a worker slot is never poisoned").len())
            .sum()
    }

    /// The pipeline's worker pool (a job's whole tick runs there, so a tenant's jobs never use
    /// more threads than its lane has).
    pub fn pool(&self) -> Arc<rayon::ThreadPool> {
        self.workers.pool()
    }

    /// Runs every stage over batch `tick`, whose records are `input`.
    pub fn run_batch(&mut self, tick: Tick, input: RecordBatch) -> Result<BatchOutput, EngineError> {
        let mut data = Some(input);
        let mut counts = Vec::with_capacity(self.stages.len());
        let mut dead_letters = Vec::new();
        let mut logs = StageContext::new(&self.runtime, &self.workers, self.policy, tick, "");
        let mut i = 0;
        while i < self.stages.len() {
            if let Some(out) =
                self.try_map_side_combine(i, tick, &mut data, &mut counts, &mut dead_letters, &mut logs)?
            {
                data = Some(out);
                i += 2;
                continue;
            }
            let stage = &mut self.stages[i];
            let records_in = data.as_ref().map_or(0, |b| b.len() as u64);
            let mut cx = StageContext::new(&self.runtime, &self.workers, self.policy, tick, &stage.name);
            data = match (stage.op.partitioned(), data) {
                (Some(op), Some(input)) if cx.partitions_for(input.len()) > 1 => {
                    let parts = part_ranges(input.len(), cx.partitions_for(input.len()));
                    let outs = cx.parallel(parts, |cx, (start, end)| {
                        cx.first_record = start as u32;
                        // Each part is copied out when its worker takes it: a batch is never
                        // held twice.
                        op.on_partition(cx, input.slice(start, end))
                    })?;
                    Some(RecordBatch::concat(&outs))
                }
                (_, data) => stage.op.on_batch(&mut cx, data)?,
            };
            dead_letters.append(&mut cx.dead_letters);
            logs.logs.append(&mut cx.logs);
            logs.logs_dropped += cx.logs_dropped;
            counts.push(StageCounts {
                stage: stage.name.clone(),
                records_in,
                records_out: data.as_ref().map_or(0, |b| b.len() as u64),
                errors: cx.errors,
                udf_calls: cx.udf_calls,
                udf_ms: cx.udf_nanos as f64 / 1e6,
            });
            i += 1;
        }
        Ok(BatchOutput {
            tick,
            output: data,
            counts,
            dead_letters,
            logs: logs.logs,
            logs_dropped: logs.logs_dropped,
        })
    }

    /// Stage `i` treats records on their own and stage `i + 1` is a native reduce by key: each
    /// part of a large batch goes through stage `i` and is folded at once on the same worker (a
    /// map-side combine, as Spark's `reduceByKey`); only the small per-part folds are merged. The
    /// parts' outputs are never joined. `None` when the two stages do not fit this.
    fn try_map_side_combine(
        &self,
        i: usize,
        tick: Tick,
        data: &mut Option<RecordBatch>,
        counts: &mut Vec<StageCounts>,
        dead_letters: &mut Vec<DeadLetter>,
        logs: &mut StageContext<'_>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        use rayon::prelude::*;
        let (Some(first), Some(second)) = (self.stages.get(i), self.stages.get(i + 1)) else {
            return Ok(None);
        };
        let (Some(op), Some(builtin)) = (first.op.partitioned(), second.op.map_side_fold()) else {
            return Ok(None);
        };
        let Some(input) = data.as_ref().filter(|b| b.len() >= PARTITION_RECORDS_MIN) else {
            return Ok(None);
        };
        let cx = StageContext::new(&self.runtime, &self.workers, self.policy, tick, &first.name);
        let parts = part_ranges(input.len(), cx.partitions_for(input.len()));
        let records_in = input.len() as u64;
        let (runtime, workers, policy) = (&*self.runtime, &self.workers, self.policy);
        let (name_a, name_b) = (first.name.as_str(), second.name.as_str());
        let results: Vec<_> = self.workers.install(|| {
            parts
                .into_par_iter()
                .map(|(start, end)| {
                    let mut a = StageContext::new(runtime, workers, policy, tick, name_a);
                    a.first_record = start as u32;
                    let out = op.on_partition(&mut a, input.slice(start, end))?;
                    // Indexes of refused records in the second stage count from this part's output.
                    let mut b = StageContext::new(runtime, workers, policy, tick, name_b);
                    let folds = keyed::fold_part(&mut b, builtin, &out)?;
                    Ok::<_, EngineError>((
                        out.len() as u64,
                        folds,
                        a.dead_letters,
                        a.errors,
                        b.dead_letters,
                        b.errors,
                        (a.udf_calls, a.udf_nanos),
                        (a.logs, a.logs_dropped),
                    ))
                })
                .collect()
        });
        let (mut mid, mut folds, mut errors_a, mut errors_b, mut dead_b) = (0, Vec::new(), 0, 0, Vec::new());
        let (mut calls, mut nanos) = (0, 0);
        for r in results {
            let (n, f, mut da, ea, db, eb, (c, ns), (l, ld)) = r?;
            logs.keep_logs(l, ld);
            calls += c;
            nanos += ns;
            mid += n;
            folds.push(f);
            dead_letters.append(&mut da);
            dead_b.extend(db);
            errors_a += ea;
            errors_b += eb;
        }
        dead_letters.append(&mut dead_b);
        let reducer = Reducer::builtin(builtin);
        let out = keyed::to_batch(&keyed::merge_folds(builtin, folds), &reducer, tick.time_ms);
        counts.push(StageCounts {
            stage: first.name.clone(),
            records_in,
            records_out: mid,
            errors: errors_a,
            udf_calls: calls,
            udf_ms: nanos as f64 / 1e6,
        });
        counts.push(StageCounts {
            stage: second.name.clone(),
            records_in: mid,
            records_out: out.len() as u64,
            errors: errors_b,
            udf_calls: 0,
            udf_ms: 0.0,
        });
        Ok(Some(out))
    }
}

/// `len` records in at most `n` contiguous ranges of about equal size (as `RecordBatch::split`).
fn part_ranges(len: usize, n: usize) -> Vec<(usize, usize)> {
    let parts = n.clamp(1, len.max(1));
    let per = len.div_ceil(parts).max(1);
    (0..len.div_ceil(per).max(1))
        .map(|p| (p * per, ((p + 1) * per).min(len)))
        .collect()
}
