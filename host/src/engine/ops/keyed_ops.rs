//! Per-batch keyed stages (`reduce_by_key`, `count_by_value`) and the stateful
//! `update_state_by_key`.

use super::{Operator, StateKind};
use crate::batch::RecordBatch;
use crate::engine::EngineError;
use crate::engine::context::StageContext;
use crate::engine::keyed::{KeyedMap, combine, reduce_by_key, to_batch};
use crate::engine::reducer::{Builtin, Reducer};
use crate::engine::state::{DirtyKeys, StateDelta, StateError, StoredState};

/// `reduce_by_key`: one record per key per batch, its values folded.
pub struct ReduceByKey(pub Reducer);

impl Operator for ReduceByKey {
    fn on_batch(
        &mut self,
        cx: &mut StageContext<'_>,
        input: Option<RecordBatch>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        let Some(input) = input else { return Ok(None) };
        let map = reduce_by_key(cx, &self.0, &input)?;
        Ok(Some(to_batch(&map, &self.0, cx.tick.time_ms)))
    }

    fn map_side_fold(&self) -> Option<Builtin> {
        match self.0 {
            Reducer::Builtin { builtin, .. } => Some(builtin),
            Reducer::Wasm { .. } => None,
        }
    }
}

/// Each record's value becomes its key, with the number 1 as value: counting by value.
pub fn values_as_keys(input: &RecordBatch) -> RecordBatch {
    let one = 1i64.to_le_bytes();
    let mut out = RecordBatch::with_capacity(input.len(), input.as_abi_bytes().len());
    for r in input.iter() {
        out.push(Some(r.value), &one, r.timestamp_ms);
    }
    out
}

/// `count_by_value`: per batch, each distinct value with how often it occurs (as key and count).
pub struct CountByValue;

impl Operator for CountByValue {
    fn on_batch(
        &mut self,
        cx: &mut StageContext<'_>,
        input: Option<RecordBatch>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        let Some(input) = input else { return Ok(None) };
        let sum = Reducer::builtin(Builtin::Sum);
        let map = reduce_by_key(cx, &sum, &values_as_keys(&input))?;
        Ok(Some(to_batch(&map, &sum, cx.tick.time_ms)))
    }
}

/// `update_state_by_key` with a reduce: per key, the state becomes `f(state, reduce(new values))`
/// each batch; every key's state is output every batch (as Spark's `updateStateByKey`).
pub struct UpdateStateByKey {
    reducer: Reducer,
    state: KeyedMap,
    dirty: DirtyKeys,
}

impl UpdateStateByKey {
    /// State folded with `reducer`.
    pub fn new(reducer: Reducer) -> UpdateStateByKey {
        UpdateStateByKey {
            reducer,
            state: KeyedMap::default(),
            dirty: DirtyKeys::default(),
        }
    }
}

impl Operator for UpdateStateByKey {
    fn on_batch(
        &mut self,
        cx: &mut StageContext<'_>,
        input: Option<RecordBatch>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        let Some(input) = input else { return Ok(None) };
        let partial = reduce_by_key(cx, &self.reducer, &input)?;
        let state = std::mem::take(&mut self.state);
        self.state = combine(cx, &self.reducer, state, &partial, false)?;
        self.dirty.mark(partial.keys());
        Ok(Some(to_batch(&self.state, &self.reducer, cx.tick.time_ms)))
    }

    fn state_kind(&self) -> Option<StateKind> {
        Some(StateKind {
            shape: format!("update_state_by_key reducer={}", self.reducer.state_name()),
            format: 1,
        })
    }

    fn snapshot(&mut self, full: bool) -> StateDelta {
        let mut delta = StateDelta {
            full,
            ..StateDelta::default()
        };
        self.dirty.delta(full, "state", &self.state, &mut delta);
        delta
    }

    fn restore(&mut self, mut state: StoredState) -> Result<(), StateError> {
        self.state = state.maps.remove("state").unwrap_or_default();
        self.dirty = DirtyKeys::default();
        Ok(())
    }
}
