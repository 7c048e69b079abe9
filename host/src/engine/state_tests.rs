//! Property tests of checkpoints at the operator level: an operator snapshotted (incrementally)
//! at random batches, rebuilt from the stored state of its last snapshot and run on, gives the
//! same outputs as one that never stopped.

use proptest::prelude::*;

use super::ops::{Operator, ReduceByKeyAndWindow, UpdateStateByKey, Window, WindowFilter, WindowOutput};
use super::reducer::{Builtin, Reducer};
use super::state::StoredState;
use super::testing::{B, Rec, run_range as run};

const KEYS: [&str; 5] = ["a", "b", "c", "d", "e"];

fn operator(which: usize, l: i64, s: i64) -> Box<dyn Operator> {
    let sum = || Reducer::Builtin {
        builtin: Builtin::Sum,
        use_inverse: true,
    };
    match which {
        0 => Box::new(Window::new(l * B, s * B, B)),
        1 => Box::new(ReduceByKeyAndWindow::new(
            l * B,
            s * B,
            B,
            sum(),
            None,
            WindowOutput::ByKey,
        )),
        2 => Box::new(ReduceByKeyAndWindow::new(
            l * B,
            s * B,
            B,
            sum(),
            Some(WindowFilter::NonZero),
            WindowOutput::ByKey,
        )),
        3 => Box::new(ReduceByKeyAndWindow::new(
            l * B,
            s * B,
            B,
            Reducer::builtin(Builtin::Max),
            None,
            WindowOutput::ByKey,
        )),
        4 => Box::new(ReduceByKeyAndWindow::new(
            l * B,
            s * B,
            B,
            Reducer::builtin(Builtin::Count),
            None,
            WindowOutput::Count,
        )),
        _ => Box::new(UpdateStateByKey::new(Reducer::builtin(Builtin::Sum))),
    }
}

fn batches() -> impl Strategy<Value = Vec<Vec<Rec>>> {
    proptest::collection::vec(
        proptest::collection::vec((proptest::option::weighted(0.9, 0..KEYS.len()), -20i64..=20), 0..6),
        1..16,
    )
    .prop_map(|bs| {
        bs.into_iter()
            .map(|b| b.into_iter().map(|(k, v)| (k.map(|i| KEYS[i]), v)).collect())
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_restored_operator_goes_on_as_if_it_never_stopped(
        input in batches(),
        which in 0usize..6,
        l in 1i64..6,
        s in 1i64..4,
        checkpoints in proptest::collection::btree_set(1usize..16, 1..5),
        extra in 0usize..5,
    ) {
        let s = s.min(l);
        let n = input.len() + extra;
        let checkpoints: Vec<usize> = checkpoints.into_iter().filter(|c| *c <= n).collect();
        prop_assume!(!checkpoints.is_empty());
        let whole = run(operator(which, l, s).as_mut(), &input, 1, n, |_, _| {});
        // Snapshots at the checkpoints (the first full, the rest incremental), applied to a store,
        // ... whose last state was the last checkpoint's: a new operator resumes from it.
        let resume_at = *checkpoints.last().unwrap();
        let mut stored_at = StoredState::default();
        let mut first = true;
        run(operator(which, l, s).as_mut(), &input, 1, resume_at, |k, op| {
            if checkpoints.contains(&k) {
                stored_at.apply(op.snapshot(first));
                first = false;
            }
        });
        // ... add up to what one full snapshot at that batch holds,
        let mut full = StoredState::default();
        run(operator(which, l, s).as_mut(), &input, 1, resume_at, |k, op| {
            if k == resume_at {
                full.apply(op.snapshot(true));
            }
        });
        prop_assert_eq!(&stored_at, &full);
        let mut resumed = operator(which, l, s);
        resumed.restore(stored_at).unwrap();
        let after = run(resumed.as_mut(), &input, resume_at + 1, n, |_, _| {});
        let expected: Vec<_> = whole.into_iter().filter(|(k, _)| *k > resume_at).collect();
        prop_assert_eq!(after, expected, "op {} l {} s {} resumed after {}", which, l, s, resume_at);
    }
}

#[test]
fn an_unchanged_state_writes_nothing_and_a_changed_key_writes_one_entry() {
    let inputs: Vec<Vec<Rec>> = vec![vec![(Some("a"), 1), (Some("b"), 2)], vec![(Some("a"), 5)], vec![]];
    let mut op = UpdateStateByKey::new(Reducer::builtin(Builtin::Sum));
    let mut deltas = Vec::new();
    run(&mut op, &inputs, 1, 3, |k, op| deltas.push(op.snapshot(k == 1)));
    assert_eq!(deltas[0].put_keys.len(), 2, "the first snapshot has every key");
    assert_eq!(deltas[1].put_keys.len(), 1, "then only `a` changed");
    assert!(deltas[2].put_keys.is_empty() && deltas[2].removed_keys.is_empty());
}
