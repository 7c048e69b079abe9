//! `JobPlan`: a checked job with its UDFs resolved, and how it becomes a running `Pipeline`.

use std::sync::Arc;

use sluice_abi::UdfKind;

use super::spec::{BuiltinReducer, FilterName, JobSpec, StageSpec, ValueType};
use crate::engine::context::UdfHandle;
use crate::engine::ops::{
    BuiltinOp, CountByValue, FieldSpec, Operator, ReduceByKey, ReduceByKeyAndWindow, UdfFilter, UdfFlatMap, UdfMap,
    UpdateStateByKey, Window, WindowFilter, WindowOutput,
};
use crate::engine::pipeline::{Pipeline, Stage};
use crate::engine::reducer::{Builtin, Reducer};
use crate::engine::workers::Workers;
use crate::runtime::{CallLimits, LoadedModule, Runtime};

/// A resolved UDF.
#[derive(Clone, Debug)]
pub struct PlannedUdf {
    /// Its module (pinned version).
    pub module: Arc<LoadedModule>,
    /// The function.
    pub function: String,
}

/// A resolved reducer.
#[derive(Clone, Debug)]
pub enum PlannedReducer {
    /// Native.
    Builtin { builtin: BuiltinReducer, inverse: bool },
    /// Wasm.
    Udf { udf: PlannedUdf, inverse: bool },
}

/// A checked stage.
#[derive(Clone, Debug)]
pub enum PlannedStage {
    /// map / flat_map / filter with a UDF.
    Udf {
        name: String,
        kind: UdfKind,
        udf: PlannedUdf,
    },
    /// A native parsing stage.
    Builtin { name: String, stage: StageSpec },
    /// reduce_by_key.
    ReduceByKey { name: String, reducer: PlannedReducer },
    /// count_by_value.
    CountByValue { name: String },
    /// update_state_by_key.
    UpdateStateByKey { name: String, reducer: PlannedReducer },
    /// window.
    Window {
        name: String,
        length_ms: i64,
        slide_ms: i64,
    },
    /// count_by_window / count_by_value_and_window.
    CountWindow {
        name: String,
        length_ms: i64,
        slide_ms: i64,
        by_value: bool,
    },
    /// reduce_by_window / reduce_by_key_and_window.
    ReduceWindow {
        name: String,
        length_ms: i64,
        slide_ms: i64,
        reducer: PlannedReducer,
        filter: Option<FilterName>,
        by_key: bool,
    },
}

/// A checked job.
#[derive(Clone, Debug)]
pub struct JobPlan {
    /// The spec as given.
    pub spec: JobSpec,
    /// The batch interval.
    pub batch_ms: i64,
    /// The checked stages.
    pub stages: Vec<PlannedStage>,
    /// The type of the values the job outputs (how sinks print them).
    pub output_type: ValueType,
    /// How often the job outputs (the last window's slide, or the batch interval).
    pub output_slide_ms: i64,
}

fn handle(u: &PlannedUdf, limits: &CallLimits) -> UdfHandle {
    UdfHandle {
        module: u.module.clone(),
        function: u.function.clone(),
        limits: limits.clone(),
    }
}

fn reducer(r: &PlannedReducer, limits: &CallLimits) -> Reducer {
    match r {
        PlannedReducer::Builtin { builtin, inverse } => Reducer::Builtin {
            builtin: match builtin {
                BuiltinReducer::Sum => Builtin::Sum,
                BuiltinReducer::Min => Builtin::Min,
                BuiltinReducer::Max => Builtin::Max,
                BuiltinReducer::Avg => Builtin::Avg,
                BuiltinReducer::Count => Builtin::Count,
            },
            use_inverse: *inverse,
        },
        PlannedReducer::Udf { udf, inverse } => Reducer::Wasm {
            udf: handle(udf, limits),
            use_inverse: *inverse,
        },
    }
}

fn builtin(stage: &StageSpec) -> BuiltinOp {
    match stage {
        StageSpec::Split(s) => BuiltinOp::Split {
            sep: s.sep.clone(),
            pairs: s.pairs,
        },
        StageSpec::SplitWhitespace(s) => BuiltinOp::SplitWhitespace { pairs: s.pairs },
        StageSpec::KeyBy(k) => BuiltinOp::KeyByField {
            field: FieldSpec {
                sep: k.sep.clone(),
                index: k.field,
            },
            bucket: k.bucket,
        },
        StageSpec::Pick(f) => BuiltinOp::PickField(FieldSpec {
            sep: f.sep.clone(),
            index: f.field,
        }),
        StageSpec::ParseInt(_) => BuiltinOp::ParseInt,
        StageSpec::SetValue(n) => BuiltinOp::SetValue(*n),
        StageSpec::KeyByValue(_) => BuiltinOp::KeyByValue,
        StageSpec::FieldEquals(f) => BuiltinOp::FieldEquals {
            field: FieldSpec {
                sep: f.sep.clone(),
                index: f.field,
            },
            equals: f.equals.clone(),
        },
        other => unreachable!(
            "validate plans only parsing stages as built-ins, not {}",
            other.op_name()
        ),
    }
}

impl PlannedStage {
    /// The stage's name (its path in the spec).
    pub fn name(&self) -> &str {
        match self {
            PlannedStage::Udf { name, .. }
            | PlannedStage::Builtin { name, .. }
            | PlannedStage::ReduceByKey { name, .. }
            | PlannedStage::CountByValue { name }
            | PlannedStage::UpdateStateByKey { name, .. }
            | PlannedStage::Window { name, .. }
            | PlannedStage::CountWindow { name, .. }
            | PlannedStage::ReduceWindow { name, .. } => name,
        }
    }

    fn operator(&self, batch_ms: i64, limits: &CallLimits) -> Box<dyn Operator> {
        match self {
            PlannedStage::Udf { kind, udf, .. } => match kind {
                UdfKind::Map => Box::new(UdfMap(handle(udf, limits))),
                UdfKind::FlatMap => Box::new(UdfFlatMap(handle(udf, limits))),
                _ => Box::new(UdfFilter(handle(udf, limits))),
            },
            PlannedStage::Builtin { stage, .. } => Box::new(builtin(stage)),
            PlannedStage::ReduceByKey { reducer: r, .. } => Box::new(ReduceByKey(reducer(r, limits))),
            PlannedStage::CountByValue { .. } => Box::new(CountByValue),
            PlannedStage::UpdateStateByKey { reducer: r, .. } => Box::new(UpdateStateByKey::new(reducer(r, limits))),
            PlannedStage::Window {
                length_ms, slide_ms, ..
            } => Box::new(Window::new(*length_ms, *slide_ms, batch_ms)),
            PlannedStage::CountWindow {
                length_ms,
                slide_ms,
                by_value,
                ..
            } => {
                let (filter, output) = if *by_value {
                    (Some(WindowFilter::NonZero), WindowOutput::CountByValue)
                } else {
                    (None, WindowOutput::Count)
                };
                Box::new(ReduceByKeyAndWindow::new(
                    *length_ms,
                    *slide_ms,
                    batch_ms,
                    Reducer::sum_with_inverse(),
                    filter,
                    output,
                ))
            }
            PlannedStage::ReduceWindow {
                length_ms,
                slide_ms,
                reducer: r,
                filter,
                by_key,
                ..
            } => {
                let output = if *by_key {
                    WindowOutput::ByKey
                } else {
                    WindowOutput::Values
                };
                let filter = filter.map(|FilterName::Nonzero| WindowFilter::NonZero);
                Box::new(ReduceByKeyAndWindow::new(
                    *length_ms,
                    *slide_ms,
                    batch_ms,
                    reducer(r, limits),
                    filter,
                    output,
                ))
            }
        }
    }
}

impl JobPlan {
    /// A fresh pipeline (empty window state) running this plan's stages on a pool of its own of
    /// `workers` threads.
    pub fn pipeline(&self, runtime: Arc<Runtime>, limits: &CallLimits, workers: usize) -> Pipeline {
        self.pipeline_on(runtime, limits, Workers::new(workers))
    }

    /// A fresh pipeline (empty window state) running this plan's stages on `workers`.
    pub fn pipeline_on(&self, runtime: Arc<Runtime>, limits: &CallLimits, workers: Workers) -> Pipeline {
        let stages = self
            .stages
            .iter()
            .map(|s| Stage {
                name: s.name().to_owned(),
                op: s.operator(self.batch_ms, limits),
            })
            .collect();
        Pipeline::on(runtime, stages, self.spec.on_bad_record, workers)
    }

    /// Every how many batches a checkpoint is written: the spec's `checkpoint_interval`, else
    /// Spark's default, the output slide times `ceil(10 s / slide)`.
    pub fn checkpoint_every_batches(&self) -> u64 {
        let every_ms = match self.spec.checkpoint_interval {
            Some(m) => m.0,
            None => {
                let slide = self.output_slide_ms.max(self.batch_ms);
                slide * (10_000 + slide - 1).div_euclid(slide)
            }
        };
        (every_ms / self.batch_ms).max(1) as u64
    }

    /// The distinct UDF modules the plan calls (for the instances a run may hold).
    pub fn modules(&self) -> Vec<Arc<LoadedModule>> {
        let mut out: Vec<Arc<LoadedModule>> = Vec::new();
        let mut add = |m: &Arc<LoadedModule>| {
            if !out.iter().any(|o| o.sha256() == m.sha256()) {
                out.push(m.clone());
            }
        };
        for s in &self.stages {
            match s {
                PlannedStage::Udf { udf, .. } => add(&udf.module),
                PlannedStage::ReduceByKey { reducer, .. }
                | PlannedStage::UpdateStateByKey { reducer, .. }
                | PlannedStage::ReduceWindow { reducer, .. } => {
                    if let PlannedReducer::Udf { udf, .. } = reducer {
                        add(&udf.module);
                    }
                }
                _ => {}
            }
        }
        out
    }
}
