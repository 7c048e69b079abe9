//! Property tests: random batches through each window operator against a naive model that
//! recomputes every window from scratch.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::ops::{ReduceByKeyAndWindow, Window, WindowFilter, WindowOutput};
use super::reducer::{Builtin, Reducer};
use super::testing::{B, Out, Rec, run, wasm_sum};

const KEYS: [&str; 4] = ["a", "b", "c", "d"];

fn batches(max_value: i64, min_value: i64) -> impl Strategy<Value = Vec<Vec<Rec>>> {
    proptest::collection::vec(
        proptest::collection::vec(
            (proptest::option::weighted(0.9, 0..KEYS.len()), min_value..=max_value),
            0..5,
        ),
        0..14,
    )
    .prop_map(|bs| {
        bs.into_iter()
            .map(|b| b.into_iter().map(|(k, v)| (k.map(|i| KEYS[i]), v)).collect())
            .collect()
    })
}

/// The records of the window ending at batch `t` (batches `(t - l, t]`, from 1).
fn window_records(input: &[Vec<Rec>], t: usize, l: usize) -> Vec<Rec> {
    let first = t.saturating_sub(l) + 1;
    (first..=t)
        .flat_map(|k| input.get(k - 1).cloned().unwrap_or_default())
        .collect()
}

fn to_out(m: &BTreeMap<Option<String>, i64>) -> Out {
    m.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

fn fold(records: &[Rec], f: fn(i64, i64) -> i64) -> BTreeMap<Option<String>, i64> {
    let mut m = BTreeMap::new();
    for (k, v) in records {
        m.entry(k.map(str::to_owned))
            .and_modify(|a| *a = f(*a, *v))
            .or_insert(*v);
    }
    m
}

fn output_times(batches: usize, s: usize) -> impl Iterator<Item = usize> {
    (1..=batches).filter(move |t| t % s == 0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn window_matches_the_model(input in batches(50, -50), l in 1usize..6, s in 1usize..6, extra in 0usize..6) {
        let n = input.len() + extra;
        let got = run(&mut Window::new(l as i64 * B, s as i64 * B, B), &input, n);
        let want: Vec<Out> = output_times(n, s).map(|t| {
            let mut w: Out = window_records(&input, t, l).into_iter().map(|(k, v)| (k.map(str::to_owned), v)).collect();
            w.sort();
            w
        }).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn reduce_without_inverse_matches_the_model(input in batches(50, -50), l in 1usize..6, s in 1usize..6, extra in 0usize..6, max in any::<bool>()) {
        let n = input.len() + extra;
        let (builtin, f): (Builtin, fn(i64, i64) -> i64) = if max { (Builtin::Max, i64::max) } else { (Builtin::Min, i64::min) };
        let mut op = ReduceByKeyAndWindow::new(l as i64 * B, s as i64 * B, B, Reducer::builtin(builtin), None, WindowOutput::ByKey);
        let got = run(&mut op, &input, n);
        let want: Vec<Out> = output_times(n, s).map(|t| to_out(&fold(&window_records(&input, t, l), f))).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn reduce_with_inverse_keeps_keys_at_the_identity(input in batches(50, -50), l in 1usize..6, s in 1usize..6, extra in 0usize..6) {
        let n = input.len() + extra;
        let mut op = ReduceByKeyAndWindow::new(l as i64 * B, s as i64 * B, B, Reducer::sum_with_inverse(), None, WindowOutput::ByKey);
        let got = run(&mut op, &input, n);
        let mut seen: BTreeSet<Option<String>> = BTreeSet::new();
        let want: Vec<Out> = output_times(n, s).map(|t| {
            let sums = fold(&window_records(&input, t, l), i64::wrapping_add);
            seen.extend(sums.keys().cloned());
            seen.iter().map(|k| (k.clone(), sums.get(k).copied().unwrap_or(0))).collect()
        }).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn counts_with_the_nonzero_filter_match_the_model(input in batches(9, 1), l in 1usize..6, s in 1usize..6, extra in 0usize..6) {
        let n = input.len() + extra;
        let mut op = ReduceByKeyAndWindow::new(l as i64 * B, s as i64 * B, B, Reducer::sum_with_inverse(), Some(WindowFilter::NonZero), WindowOutput::ByKey);
        let got = run(&mut op, &input, n);
        let want: Vec<Out> = output_times(n, s).map(|t| to_out(&fold(&window_records(&input, t, l), i64::wrapping_add))).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn count_by_window_matches_the_model(input in batches(9, 1), l in 1usize..6, s in 1usize..6, extra in 0usize..6) {
        let n = input.len() + extra;
        let mut op = ReduceByKeyAndWindow::new(l as i64 * B, s as i64 * B, B, Reducer::sum_with_inverse(), None, WindowOutput::Count);
        let got = run(&mut op, &input, n);
        let mut any = false;
        let want: Vec<Out> = output_times(n, s).map(|t| {
            let count = window_records(&input, t, l).len() as i64;
            any |= count > 0;
            if any { vec![(None, count)] } else { vec![] }
        }).collect();
        prop_assert_eq!(got, want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn wasm_reducers_match_the_model(input in batches(20, -20), l in 1usize..5, s in 1usize..4, inverse in any::<bool>()) {
        let n = input.len() + 3;
        let mut op = ReduceByKeyAndWindow::new(l as i64 * B, s as i64 * B, B, wasm_sum(inverse), None, WindowOutput::ByKey);
        let got = run(&mut op, &input, n);
        let mut seen: BTreeSet<Option<String>> = BTreeSet::new();
        let want: Vec<Out> = output_times(n, s).map(|t| {
            let sums = fold(&window_records(&input, t, l), i64::wrapping_add);
            if inverse {
                seen.extend(sums.keys().cloned());
                seen.iter().map(|k| (k.clone(), sums.get(k).copied().unwrap_or(0))).collect()
            } else {
                to_out(&sums)
            }
        }).collect();
        prop_assert_eq!(got, want);
    }
}
