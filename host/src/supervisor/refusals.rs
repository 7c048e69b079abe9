//! Limits on refused records under `on_bad_record: skip` (`max_refused`): a poison record now
//! and then goes to the dead letters, but more than `per_batch` in one batch, or more than
//! `in_a_row` refused one after another by a stage (in the order of its input, across batches,
//! no record taken in between), fail the job with the count, the stage and the last error. The
//! run in a row starts again from zero when the job restarts.

use std::collections::HashMap;

use crate::engine::{DeadLetter, StageCounts};
use crate::job::spec::RefusedLimits;

/// A run's refusal counts.
#[derive(Debug, Default)]
pub struct Refusals {
    limits: RefusedLimits,
    /// Per stage: refused records at the end of its input so far, one after another.
    streaks: HashMap<String, u64>,
}

impl Refusals {
    /// Counts against `limits`.
    pub fn new(limits: RefusedLimits) -> Refusals {
        Refusals {
            limits,
            streaks: HashMap::new(),
        }
    }

    /// Counts one batch's refused records; `Err` with the reason once a limit is passed.
    pub fn check(&mut self, batch_id: u64, letters: &[DeadLetter], counts: &[StageCounts]) -> Result<(), String> {
        if let Some(max) = self.limits.per_batch
            && letters.len() as u64 > max
        {
            return Err(format!(
                "batch {batch_id} refused {} records, more than max_refused.per_batch ({max}); the last: {}",
                letters.len(),
                describe(letters.last())
            ));
        }
        let Some(max) = self.limits.in_a_row else {
            return Ok(());
        };
        for c in counts {
            let mut refused: Vec<&DeadLetter> = letters.iter().filter(|l| l.stage == c.stage).collect();
            refused.sort_by_key(|l| l.index);
            let streak = self.streaks.entry(c.stage.clone()).or_default();
            let mut previous: Option<u32> = None;
            for l in &refused {
                let follows = match previous {
                    None => l.index == 0,
                    Some(p) => l.index == p + 1,
                };
                *streak = if follows { *streak + 1 } else { 1 };
                previous = Some(l.index);
                if *streak > max {
                    return Err(format!(
                        "stage {} refused {} records in a row, more than max_refused.in_a_row ({max}); the last, in batch {batch_id}: {}",
                        c.stage,
                        streak,
                        describe(Some(l))
                    ));
                }
            }
            // A record taken after the last refused one ends the run.
            if c.records_in > 0 && previous.map(|p| u64::from(p) + 1) != Some(c.records_in) {
                *streak = 0;
            }
        }
        Ok(())
    }
}

fn describe(l: Option<&DeadLetter>) -> String {
    l.map_or_else(String::new, |l| {
        let value: String = l.value.chars().take(100).collect();
        format!("record {value:?}: {}", l.error)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(stage: &str, index: u32) -> DeadLetter {
        DeadLetter {
            stage: stage.into(),
            batch_id: 1,
            index,
            key: None,
            value: format!("r{index}"),
            error: "trap".into(),
        }
    }

    fn counts(stage: &str, records_in: u64) -> Vec<StageCounts> {
        vec![StageCounts {
            stage: stage.into(),
            records_in,
            ..StageCounts::default()
        }]
    }

    #[test]
    fn per_batch_counts_every_stage() {
        let mut r = Refusals::new(RefusedLimits {
            per_batch: Some(2),
            in_a_row: None,
        });
        let two = [letter("a", 0), letter("b", 5)];
        assert!(r.check(1, &two, &counts("a", 10)).is_ok());
        let three = [letter("a", 0), letter("a", 3), letter("b", 5)];
        let e = r.check(2, &three, &counts("a", 10)).unwrap_err();
        assert!(e.contains("per_batch (2)") && e.contains("r5"), "{e}");
    }

    #[test]
    fn in_a_row_runs_across_batches_and_a_taken_record_ends_it() {
        let mut r = Refusals::new(RefusedLimits {
            per_batch: None,
            in_a_row: Some(3),
        });
        // Records 8 and 9 of 10 refused: two in a row, going on into the next batch.
        assert!(r.check(1, &[letter("s", 8), letter("s", 9)], &counts("s", 10)).is_ok());
        // Record 0 refused: three in a row; record 1 taken ends the run.
        assert!(r.check(2, &[letter("s", 0), letter("s", 2)], &counts("s", 10)).is_ok());
        // Records 4, 5, 6 refused: three, then 7 taken.
        assert!(
            r.check(3, &[letter("s", 4), letter("s", 5), letter("s", 6)], &counts("s", 10))
                .is_ok()
        );
        let e = r
            .check(
                4,
                &[letter("s", 0), letter("s", 1), letter("s", 2), letter("s", 3)],
                &counts("s", 10),
            )
            .unwrap_err();
        assert!(e.contains("4 records in a row") && e.contains("in_a_row (3)"), "{e}");
    }

    #[test]
    fn an_empty_batch_keeps_the_run() {
        let mut r = Refusals::new(RefusedLimits {
            per_batch: None,
            in_a_row: Some(2),
        });
        assert!(r.check(1, &[letter("s", 1)], &counts("s", 2)).is_ok());
        assert!(r.check(2, &[], &counts("s", 0)).is_ok());
        assert!(r.check(3, &[letter("s", 0), letter("s", 1)], &counts("s", 5)).is_err());
    }
}
