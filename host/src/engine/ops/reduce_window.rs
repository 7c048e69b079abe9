//! `reduce_by_key_and_window` and the window operators built on it (`reduce_by_window`,
//! `count_by_window`, `count_by_value_and_window`), with Spark's semantics:
//!
//! - each batch is first reduced per key (a partial);
//! - **with an inverse**, the value at output time `T` is
//!   `f(invF(previous, reduce(leaving)), reduce(entering))` per key, where leaving are the
//!   partials in the previous window and not in this one and entering the reverse; a key whose
//!   value returns to the identity stays (e.g. `("a", 0)`) unless the filter removes it;
//! - **without**, the window is the fold of its panes (partials folded per
//!   `gcd(length, slide)`), kept in a two-stacks queue: a key absent from the window disappears.
//!
//! Both do work per slide that does not grow with `length / slide`, and keep state bounded by
//! the window.

use std::borrow::Cow;
use std::collections::VecDeque;

use super::keyed_ops::values_as_keys;
use super::panes::PaneQueue;
use super::{Operator, StateKind, emits_at};
use crate::batch::RecordBatch;
use crate::engine::EngineError;
use crate::engine::context::StageContext;
use crate::engine::keyed::{KeyedMap, combine, reduce_by_key, to_batch};
use crate::engine::reducer::Reducer;
use crate::engine::state::{BlobSet, DirtyKeys, StateDelta, StateError, StoredState, map_bytes, map_from_bytes};

/// Which keys survive a window with an inverse (Spark's `filterFunc`).
///
/// `NonZero` drops keys whose value is back to 0 (for an average, whose count is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowFilter {
    /// Keep keys whose value is not the number 0.
    NonZero,
}

/// What the stage does to its input before, and to the window after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowOutput {
    /// `reduce_by_key_and_window`: records by key in, `(key, value)` out.
    ByKey,
    /// `reduce_by_window`: values in (keys ignored), one value out.
    Values,
    /// `count_by_window`: the number of records in the window.
    Count,
    /// `count_by_value_and_window`: each distinct value with its count in the window.
    CountByValue,
}

enum Strategy {
    Inverse {
        partials: VecDeque<(i64, KeyedMap)>,
        previous: Option<KeyedMap>,
    },
    Panes {
        pane_ms: i64,
        current: Option<KeyedMap>,
        queue: PaneQueue,
    },
}

/// The windowed keyed reduce.
pub struct ReduceByKeyAndWindow {
    length_ms: i64,
    slide_ms: i64,
    batch_ms: i64,
    reducer: Reducer,
    filter: Option<WindowFilter>,
    output: WindowOutput,
    strategy: Strategy,
    /// For checkpoints: the blobs stored, and the keys of the running value changed since.
    stored: BlobSet,
    dirty: DirtyKeys,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl ReduceByKeyAndWindow {
    /// A windowed reduce; the inverse path is taken whenever `reducer` has an inverse.
    pub fn new(
        length_ms: i64,
        slide_ms: i64,
        batch_ms: i64,
        reducer: Reducer,
        filter: Option<WindowFilter>,
        output: WindowOutput,
    ) -> Self {
        let strategy = if reducer.has_inverse() {
            Strategy::Inverse {
                partials: VecDeque::new(),
                previous: None,
            }
        } else {
            Strategy::Panes {
                pane_ms: gcd(length_ms, slide_ms),
                current: None,
                queue: PaneQueue::default(),
            }
        };
        ReduceByKeyAndWindow {
            length_ms,
            slide_ms,
            batch_ms,
            reducer,
            filter,
            output,
            strategy,
            stored: BlobSet::default(),
            dirty: DirtyKeys::default(),
        }
    }

    fn prepare(&self, input: RecordBatch) -> RecordBatch {
        match self.output {
            WindowOutput::ByKey => input,
            WindowOutput::Values => {
                let mut out = RecordBatch::with_capacity(input.len(), input.as_abi_bytes().len());
                for r in input.iter() {
                    out.push(None, r.value, r.timestamp_ms);
                }
                out
            }
            WindowOutput::Count => {
                let one = 1i64.to_le_bytes();
                let mut out = RecordBatch::with_capacity(input.len(), input.len() * 24);
                for r in input.iter() {
                    out.push(None, &one, r.timestamp_ms);
                }
                out
            }
            WindowOutput::CountByValue => values_as_keys(&input),
        }
    }
}

/// The window's map as the stage's output.
fn finish(output: WindowOutput, reducer: &Reducer, map: &KeyedMap, time_ms: i64) -> RecordBatch {
    match output {
        WindowOutput::ByKey | WindowOutput::CountByValue => to_batch(map, reducer, time_ms),
        WindowOutput::Values | WindowOutput::Count => {
            let mut out = RecordBatch::new();
            for v in map.values() {
                out.push(None, &reducer.finish(v), time_ms);
            }
            out
        }
    }
}

/// Folds the partials with time in `(after, until]` into one map (borrowed when it is one
/// partial: the usual slide of one batch).
fn fold_range<'p>(
    cx: &mut StageContext<'_>,
    reducer: &Reducer,
    partials: &'p VecDeque<(i64, KeyedMap)>,
    after: i64,
    until: i64,
) -> Result<Option<Cow<'p, KeyedMap>>, EngineError> {
    let mut acc: Option<Cow<'p, KeyedMap>> = None;
    for (t, p) in partials {
        if *t > after && *t <= until {
            acc = Some(match acc {
                None => Cow::Borrowed(p),
                Some(a) => Cow::Owned(combine(cx, reducer, a.into_owned(), p, false)?),
            });
        }
    }
    Ok(acc)
}

impl Operator for ReduceByKeyAndWindow {
    fn on_batch(
        &mut self,
        cx: &mut StageContext<'_>,
        input: Option<RecordBatch>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        let t = cx.tick.batch_id as i64 * self.batch_ms;
        let partial = match input {
            Some(b) => Some(reduce_by_key(cx, &self.reducer, &self.prepare(b))?),
            None => None,
        };
        let (length, slide) = (self.length_ms, self.slide_ms);
        let emit = emits_at(cx.tick.batch_id, self.batch_ms, slide);
        let state = match &mut self.strategy {
            Strategy::Inverse { partials, previous } => {
                if let Some(p) = partial {
                    partials.push_back((t, p));
                }
                if !emit {
                    return Ok(None);
                }
                // Leaving: in the previous window (T-S-L, T-S] and not in (T-L, T];
                // entering: in (T-L, T] and not in the previous window.
                let leaving = fold_range(
                    cx,
                    &self.reducer,
                    partials,
                    t - slide - length,
                    (t - length).min(t - slide),
                )?;
                let entering = fold_range(cx, &self.reducer, partials, (t - slide).max(t - length), t)?;
                let mut value = previous.take().unwrap_or_default();
                // Only keys that leave or enter change (the filter only drops some of them).
                if let Some(old) = leaving {
                    self.dirty.mark(old.keys());
                    value = combine(cx, &self.reducer, value, &old, true)?;
                }
                if let Some(new) = entering {
                    self.dirty.mark(new.keys());
                    value = combine(cx, &self.reducer, value, &new, false)?;
                }
                if let Some(f) = self.filter {
                    let WindowFilter::NonZero = f;
                    value.retain(|_, v| !self.reducer.is_empty_partial(v));
                }
                while partials.front().is_some_and(|(pt, _)| *pt <= t - length) {
                    partials.pop_front();
                }
                // The output is made from the kept state itself: no copy of the window.
                let kept = previous.insert(value);
                return Ok(Some(finish(self.output, &self.reducer, kept, cx.tick.time_ms)));
            }
            Strategy::Panes {
                pane_ms,
                current,
                queue,
            } => {
                if let Some(p) = partial {
                    *current = Some(match current.take() {
                        None => p,
                        Some(c) => combine(cx, &self.reducer, c, &p, false)?,
                    });
                }
                if t % *pane_ms == 0 {
                    queue.push(cx, &self.reducer, t, current.take().unwrap_or_default())?;
                }
                if !emit {
                    return Ok(None);
                }
                queue.evict(cx, &self.reducer, t - length)?;
                let value = queue.fold(cx, &self.reducer)?;
                // Panes no future window holds (slide > length) go now.
                queue.evict(cx, &self.reducer, t + slide - length)?;
                value
            }
        };
        Ok(Some(finish(self.output, &self.reducer, &state, cx.tick.time_ms)))
    }

    fn state_kind(&self) -> Option<StateKind> {
        let strategy = match self.strategy {
            Strategy::Inverse { .. } => "inverse",
            Strategy::Panes { .. } => "panes",
        };
        Some(StateKind {
            shape: format!(
                "reduce_window length={} slide={} batch={} reducer={} strategy={strategy} output={:?} filter={:?}",
                self.length_ms,
                self.slide_ms,
                self.batch_ms,
                self.reducer.state_name(),
                self.output,
                self.filter
            ),
            format: 1,
        })
    }

    fn snapshot(&mut self, full: bool) -> StateDelta {
        let mut delta = StateDelta {
            full,
            ..StateDelta::default()
        };
        match &self.strategy {
            Strategy::Inverse { partials, previous } => {
                let blobs = partials
                    .iter()
                    .map(|(t, p)| {
                        let bytes: Box<dyn FnOnce() -> Vec<u8>> = Box::new(move || map_bytes(p));
                        (format!("partial/{t:020}"), bytes)
                    })
                    .chain(std::iter::once((
                        "previous_set".to_owned(),
                        Box::new(|| vec![u8::from(previous.is_some())]) as Box<dyn FnOnce() -> Vec<u8>>,
                    )));
                self.stored.delta(full, blobs, &mut delta, &["previous_set"]);
                let empty = KeyedMap::default();
                self.dirty
                    .delta(full, "previous", previous.as_ref().unwrap_or(&empty), &mut delta);
            }
            Strategy::Panes { current, queue, .. } => {
                let blobs = queue
                    .blobs()
                    .map(|(name, m)| {
                        let bytes: Box<dyn FnOnce() -> Vec<u8>> = Box::new(move || map_bytes(m));
                        (name, bytes)
                    })
                    .chain(std::iter::once((
                        "current".to_owned(),
                        Box::new(move || match current {
                            Some(c) => {
                                let mut b = vec![1];
                                b.extend(map_bytes(c));
                                b
                            }
                            None => vec![0],
                        }) as Box<dyn FnOnce() -> Vec<u8>>,
                    )));
                self.stored.delta(full, blobs, &mut delta, &["back_fold", "current"]);
            }
        }
        delta
    }

    fn restore(&mut self, mut state: StoredState) -> Result<(), StateError> {
        match &mut self.strategy {
            Strategy::Inverse { partials, previous } => {
                partials.clear();
                for (name, bytes) in &state.blobs {
                    if let Some(t) = name.strip_prefix("partial/") {
                        let t = t.parse().map_err(|_| StateError(format!("bad blob name {name:?}")))?;
                        partials.push_back((t, map_from_bytes(bytes)?));
                    }
                }
                let set = state.blobs.get("previous_set").is_some_and(|b| b.first() == Some(&1));
                let value = state.maps.remove("previous").unwrap_or_default();
                *previous = set.then_some(value);
            }
            Strategy::Panes { current, queue, .. } => {
                *queue = PaneQueue::from_blobs(&state.blobs)?;
                *current = match state.blobs.get("current").map(Vec::as_slice) {
                    Some([1, rest @ ..]) => Some(map_from_bytes(rest)?),
                    _ => None,
                };
            }
        }
        self.stored.restored(state.blobs.keys());
        self.dirty = DirtyKeys::default();
        Ok(())
    }
}
