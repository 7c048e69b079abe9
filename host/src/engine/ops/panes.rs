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
use crate::engine::state::{StateError, map_from_bytes};

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
        let mut running = KeyedMap::default();
        for (end, pane) in std::mem::take(&mut self.back).into_iter().rev() {
            running = combine(cx, reducer, running, &pane, false)?;
            self.front.push((end, running.clone()));
        }
        self.back_fold = KeyedMap::default();
        Ok(())
    }

    /// Its stacks, as blobs named `front/END` and `back/END` (each never changes once made)
    /// and `back_fold` (changes at every push).
    pub fn blobs(&self) -> impl Iterator<Item = (String, &KeyedMap)> {
        self.front
            .iter()
            .map(|(end, m)| (format!("front/{end:020}"), m))
            .chain(self.back.iter().map(|(end, m)| (format!("back/{end:020}"), m)))
            .chain(std::iter::once(("back_fold".to_owned(), &self.back_fold)))
    }

    /// The queue `blobs` described. The front stack is popped from its end (oldest last), so
    /// its blobs are put back newest first.
    pub fn from_blobs(blobs: &std::collections::BTreeMap<String, Vec<u8>>) -> Result<PaneQueue, StateError> {
        let mut q = PaneQueue::default();
        for (name, bytes) in blobs {
            let end = |rest: &str| {
                rest.parse::<i64>()
                    .map_err(|_| StateError(format!("bad pane blob {name:?}")))
            };
            if let Some(rest) = name.strip_prefix("front/") {
                q.front.push((end(rest)?, map_from_bytes(bytes)?));
            } else if let Some(rest) = name.strip_prefix("back/") {
                q.back.push((end(rest)?, map_from_bytes(bytes)?));
            } else if name == "back_fold" {
                q.back_fold = map_from_bytes(bytes)?;
            }
        }
        q.front.reverse();
        Ok(q)
    }

    /// The fold of every pane in the queue.
    pub fn fold(&self, cx: &mut StageContext<'_>, reducer: &Reducer) -> Result<KeyedMap, EngineError> {
        let front = self.front.last().map(|(_, f)| f.clone()).unwrap_or_default();
        combine(cx, reducer, front, &self.back_fold, false)
    }
}
