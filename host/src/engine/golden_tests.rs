//! The window operators against Spark's `WindowOperationsSuite` vectors (batch interval 1 s,
//! outputs compared per output time, the number of outputs exact), each reducer both native
//! and as a wasm UDF. Vectors: `../shared/research/stream-engines.md` section 3.3.

use super::ops::{Operator, ReduceByKeyAndWindow, Window, WindowFilter, WindowOutput};
use super::reducer::{Builtin, Reducer};
use super::testing::{B, Out, Rec, out, run, wasm_sum};

fn ints(v: &[i64]) -> Vec<Rec> {
    v.iter().map(|n| (None, *n)).collect()
}

fn a(n: i64) -> Rec {
    (Some("a"), n)
}

fn pairs(v: &[(&'static str, i64)]) -> Vec<Rec> {
    v.iter().map(|(k, n)| (Some(*k), *n)).collect()
}

fn expect_ints(v: &[&[i64]]) -> Vec<Out> {
    v.iter()
        .map(|o| out(&o.iter().map(|n| (None, *n)).collect::<Vec<_>>()))
        .collect()
}

fn expect_pairs(v: &[&[(&str, i64)]]) -> Vec<Out> {
    v.iter()
        .map(|o| out(&o.iter().map(|(k, n)| (Some(*k), *n)).collect::<Vec<_>>()))
        .collect()
}

/// Spark's harness: `expected.len() * slide / batch` batches.
fn check(op: &mut dyn Operator, input: &[Vec<Rec>], slide_s: i64, expected: Vec<Out>) {
    let batches = expected.len() * slide_s as usize;
    assert_eq!(run(op, input, batches), expected);
}

fn six() -> Vec<Vec<Rec>> {
    (0..6).map(|n| ints(&[n])).collect()
}

#[test]
fn v1_basic_window() {
    check(
        &mut Window::new(2 * B, B, B),
        &six(),
        1,
        expect_ints(&[&[0], &[0, 1], &[1, 2], &[2, 3], &[3, 4], &[4, 5]]),
    );
}

#[test]
fn v2_tumbling_window() {
    check(
        &mut Window::new(2 * B, 2 * B, B),
        &six(),
        2,
        expect_ints(&[&[0, 1], &[2, 3], &[4, 5]]),
    );
}

#[test]
fn v3_larger_window() {
    check(
        &mut Window::new(4 * B, 2 * B, B),
        &six(),
        2,
        expect_ints(&[&[0, 1], &[0, 1, 2, 3], &[2, 3, 4, 5], &[4, 5]]),
    );
}

#[test]
fn v4_non_overlapping_window() {
    check(
        &mut Window::new(2 * B, 3 * B, B),
        &six(),
        3,
        expect_ints(&[&[1, 2], &[4, 5]]),
    );
}

fn reducers(inverse: bool) -> Vec<Reducer> {
    if inverse {
        vec![Reducer::sum_with_inverse(), wasm_sum(true)]
    } else {
        vec![Reducer::builtin(Builtin::Max), wasm_sum(false)]
    }
}

fn rbkw(l: i64, s: i64, reducer: Reducer, filter: Option<WindowFilter>) -> ReduceByKeyAndWindow {
    ReduceByKeyAndWindow::new(l * B, s * B, B, reducer, filter, WindowOutput::ByKey)
}

#[test]
fn v5_key_removed_from_window() {
    let input = vec![vec![a(1)], vec![a(1)], vec![], vec![]];
    // Without an inverse (wasm sum without its inverse: the pane path).
    check(
        &mut rbkw(2, 1, wasm_sum(false), None),
        &input,
        1,
        expect_pairs(&[&[("a", 1)], &[("a", 2)], &[("a", 1)], &[]]),
    );
    for r in reducers(true) {
        check(
            &mut rbkw(2, 1, r, None),
            &input,
            1,
            expect_pairs(&[&[("a", 1)], &[("a", 2)], &[("a", 1)], &[("a", 0)]]),
        );
    }
}

#[test]
fn v6_larger_slide_time() {
    let input: Vec<Vec<Rec>> = vec![
        vec![a(1)],
        vec![a(2)],
        vec![a(3)],
        vec![a(4)],
        vec![a(5)],
        vec![a(6)],
        vec![],
        vec![],
    ];
    let expected = expect_pairs(&[&[("a", 3)], &[("a", 10)], &[("a", 18)], &[("a", 11)]]);
    check(&mut rbkw(4, 2, wasm_sum(false), None), &input, 2, expected.clone());
    for r in reducers(true) {
        check(&mut rbkw(4, 2, r, None), &input, 2, expected.clone());
    }
}

fn big_input() -> Vec<Vec<Rec>> {
    vec![
        pairs(&[("a", 1)]),
        pairs(&[("a", 1), ("b", 1)]),
        pairs(&[("a", 1), ("b", 1), ("c", 1)]),
        pairs(&[("a", 1), ("b", 1)]),
        pairs(&[("a", 1)]),
        vec![],
        pairs(&[("a", 1)]),
        pairs(&[("a", 1), ("b", 1)]),
        pairs(&[("a", 1), ("b", 1), ("c", 1)]),
        pairs(&[("a", 1), ("b", 1)]),
        pairs(&[("a", 1)]),
        vec![],
    ]
}

fn big_reduce_output() -> Vec<Out> {
    expect_pairs(&[
        &[("a", 1)],
        &[("a", 2), ("b", 1)],
        &[("a", 2), ("b", 2), ("c", 1)],
        &[("a", 2), ("b", 2), ("c", 1)],
        &[("a", 2), ("b", 1)],
        &[("a", 1)],
        &[("a", 1)],
        &[("a", 2), ("b", 1)],
        &[("a", 2), ("b", 2), ("c", 1)],
        &[("a", 2), ("b", 2), ("c", 1)],
        &[("a", 2), ("b", 1)],
        &[("a", 1)],
    ])
}

#[test]
fn v7_big_test() {
    check(
        &mut rbkw(2, 1, wasm_sum(false), None),
        &big_input(),
        1,
        big_reduce_output(),
    );
    for r in reducers(true) {
        check(
            &mut rbkw(2, 1, r.clone(), Some(WindowFilter::NonZero)),
            &big_input(),
            1,
            big_reduce_output(),
        );
        let inv = expect_pairs(&[
            &[("a", 1)],
            &[("a", 2), ("b", 1)],
            &[("a", 2), ("b", 2), ("c", 1)],
            &[("a", 2), ("b", 2), ("c", 1)],
            &[("a", 2), ("b", 1), ("c", 0)],
            &[("a", 1), ("b", 0), ("c", 0)],
            &[("a", 1), ("b", 0), ("c", 0)],
            &[("a", 2), ("b", 1), ("c", 0)],
            &[("a", 2), ("b", 2), ("c", 1)],
            &[("a", 2), ("b", 2), ("c", 1)],
            &[("a", 2), ("b", 1), ("c", 0)],
            &[("a", 1), ("b", 0), ("c", 0)],
        ]);
        check(&mut rbkw(2, 1, r, None), &big_input(), 1, inv);
    }
}

#[test]
fn basic_reduction_in_one_batch() {
    check(
        &mut rbkw(1, 1, Reducer::builtin(Builtin::Sum), None),
        &[pairs(&[("a", 1), ("a", 3)])],
        1,
        expect_pairs(&[&[("a", 4)]]),
    );
}

#[test]
fn v8_count_by_window() {
    let input = vec![ints(&[1]), ints(&[1]), ints(&[1, 2]), ints(&[0]), vec![], vec![]];
    let mut op = ReduceByKeyAndWindow::new(2 * B, B, B, Reducer::sum_with_inverse(), None, WindowOutput::Count);
    check(&mut op, &input, 1, expect_ints(&[&[1], &[2], &[3], &[3], &[1], &[0]]));
}

#[test]
fn v9_count_by_value_and_window() {
    // Values "a", "b" as the numbers 10, 11; counted by value they become keys.
    let input = vec![ints(&[10]), ints(&[11, 11]), ints(&[10, 11])];
    let mut op = ReduceByKeyAndWindow::new(
        2 * B,
        B,
        B,
        Reducer::sum_with_inverse(),
        Some(WindowFilter::NonZero),
        WindowOutput::CountByValue,
    );
    let got = run(&mut op, &input, 3);
    let ten = String::from_utf8_lossy(&10i64.to_le_bytes()).into_owned();
    let eleven = String::from_utf8_lossy(&11i64.to_le_bytes()).into_owned();
    let e = |v: &[(&String, i64)]| {
        let mut o: Out = v.iter().map(|(k, n)| (Some((*k).clone()), *n)).collect();
        o.sort();
        o
    };
    assert_eq!(
        got,
        vec![
            e(&[(&ten, 1)]),
            e(&[(&ten, 1), (&eleven, 2)]),
            e(&[(&ten, 1), (&eleven, 3)])
        ]
    );
}

#[test]
fn reduce_by_window_without_inverse_is_empty_for_an_empty_window() {
    let input = vec![ints(&[3]), ints(&[4]), vec![], vec![]];
    let mut op = ReduceByKeyAndWindow::new(2 * B, B, B, Reducer::builtin(Builtin::Max), None, WindowOutput::Values);
    check(&mut op, &input, 1, expect_ints(&[&[3], &[4], &[4], &[]]));
}
