//! Sliding aggregation without an inverse, in amortised constant work per slide: the window is a
//! queue of panes (per-pane partial results), kept as two stacks (the "two-stacks" sliding
//! window aggregation). Pushing a pane folds it into the back stack's running value; evicting
//! pops the front stack, whose entries each hold the fold of themselves and everything newer on
//! that stack; when the front is empty the back is flipped onto it once.
//!
//! The fold must be associative and commutative (as Spark requires of `reduceByKey`).

use crate::engine::EngineError;
use crate::engine::context::StageContext;
use crate::engine::keyed::{KeyedMap, combine};
use crate::engine::reducer::Reducer;

/// The panes of one window, oldest first.
#[derive(Default)]
pub struct PaneQueue {
    /// (pane end, fold of this pane and all newer panes on the front stack); last = oldest.
    front: Vec<(i64, KeyedMap)>,
    /// (pane end, the pane), oldest first.
    back: Vec<(i64, KeyedMap)>,
    /// The fold of every pane on the back stack.
    back_fold: KeyedMap,
}

impl PaneQueue {
    /// Adds the newest pane.
    pub fn push(
        &mut self,
        cx: &mut StageContext<'_>,
        reducer: &Reducer,
        end: i64,
        pane: KeyedMap,
    ) -> Result<(), EngineError> {
        let fold = std::mem::take(&mut self.back_fold);
        self.back_fold = combine(cx, reducer, fold, &pane, false)?;
        self.back.push((end, pane));
        Ok(())
    }

    /// Drops the panes that end at or before `until`.
    pub fn evict(&mut self, cx: &mut StageContext<'_>, reducer: &Reducer, until: i64) -> Result<(), EngineError> {
        loop {
            if self.front.is_empty() {
                if self.back.first().is_none_or(|(end, _)| *end > until) {
                    return Ok(());
                }
                self.flip(cx, reducer)?;
            }
            match self.front.last() {
                Some((end, _)) if *end <= until => {
                    self.front.pop();
                }
                _ => return Ok(()),
            }
        }
    }

    fn flip(&mut self, cx: &mut StageContext<'_>, reducer: &Reducer) -> Result<(), EngineError> {
        let mut running = KeyedMap::new();
        for (end, pane) in std::mem::take(&mut self.back).into_iter().rev() {
            running = combine(cx, reducer, running, &pane, false)?;
            self.front.push((end, running.clone()));
        }
        self.back_fold = KeyedMap::new();
        Ok(())
    }

    /// The fold of every pane in the queue.
    pub fn fold(&self, cx: &mut StageContext<'_>, reducer: &Reducer) -> Result<KeyedMap, EngineError> {
        let front = self.front.last().map(|(_, f)| f.clone()).unwrap_or_default();
        combine(cx, reducer, front, &self.back_fold, false)
    }
}
