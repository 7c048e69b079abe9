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

use std::collections::VecDeque;

use super::keyed_ops::values_as_keys;
use super::panes::PaneQueue;
use super::{Operator, emits_at};
use crate::batch::RecordBatch;
use crate::engine::EngineError;
use crate::engine::context::StageContext;
use crate::engine::keyed::{KeyedMap, combine, reduce_by_key, to_batch};
use crate::engine::reducer::Reducer;

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

    fn finish(&self, map: &KeyedMap, time_ms: i64) -> RecordBatch {
        match self.output {
            WindowOutput::ByKey | WindowOutput::CountByValue => to_batch(map, &self.reducer, time_ms),
            WindowOutput::Values | WindowOutput::Count => {
                let mut out = RecordBatch::new();
                for v in map.values() {
                    out.push(None, &self.reducer.finish(v), time_ms);
                }
                out
            }
        }
    }
}

/// Folds the partials with time in `(after, until]` into one map.
fn fold_range(
    cx: &mut StageContext<'_>,
    reducer: &Reducer,
    partials: &VecDeque<(i64, KeyedMap)>,
    after: i64,
    until: i64,
) -> Result<Option<KeyedMap>, EngineError> {
    let mut acc: Option<KeyedMap> = None;
    for (t, p) in partials {
        if *t > after && *t <= until {
            acc = Some(match acc {
                None => p.clone(),
                Some(a) => combine(cx, reducer, a, p, false)?,
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
                if let Some(old) = leaving {
                    value = combine(cx, &self.reducer, value, &old, true)?;
                }
                if let Some(new) = entering {
                    value = combine(cx, &self.reducer, value, &new, false)?;
                }
                if let Some(f) = self.filter {
                    let WindowFilter::NonZero = f;
                    value.retain(|_, v| !self.reducer.is_empty_partial(v));
                }
                while partials.front().is_some_and(|(pt, _)| *pt <= t - length) {
                    partials.pop_front();
                }
                *previous = Some(value.clone());
                value
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
        Ok(Some(self.finish(&state, cx.tick.time_ms)))
    }
}
