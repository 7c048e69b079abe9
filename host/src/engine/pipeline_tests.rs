//! The pipeline over whole batches: parallel partitions give exactly the single-worker result,
//! and the per-batch keyed and stateful stages.

use super::Tick;
use super::context::{BadRecordPolicy, UdfHandle};
use super::ops::{BuiltinOp, CountByValue, ReduceByKey, UdfFlatMap, UdfMap, UpdateStateByKey};
use super::pipeline::{Pipeline, Stage};
use super::reducer::{Builtin, Reducer};
use super::testing::{B, decode, runtime};
use crate::batch::RecordBatch;

fn udf(function: &str) -> UdfHandle {
    let rt = runtime();
    let module = rt.load("examples@1", sluice_udf_artifacts::EXAMPLES).unwrap();
    UdfHandle {
        module,
        function: function.into(),
        limits: rt.config().default_limits.clone(),
    }
}

fn lines(n: usize, k: u64) -> RecordBatch {
    let mut b = RecordBatch::new();
    for i in 0..n {
        b.push(
            None,
            format!("u{},{},/p{}", (i as u64 * 7 + k) % 97, 1_700_000_000 + i, i % 5).as_bytes(),
            0,
        );
    }
    b
}

fn stage(name: &str, op: impl super::ops::Operator + 'static) -> Stage {
    Stage {
        name: name.into(),
        op: Box::new(op),
    }
}

fn run_parallel(
    workers: usize,
    stages: impl Fn() -> Vec<Stage>,
    input: impl Fn(u64) -> RecordBatch,
) -> Vec<super::testing::Out> {
    let mut p = Pipeline::new(runtime(), stages(), BadRecordPolicy::Fail, workers);
    (1..=3u64)
        .map(|k| {
            let batch = input(k);
            let n = batch.len() as u64;
            let out = p
                .run_batch(
                    Tick {
                        batch_id: k,
                        time_ms: k as i64 * B,
                    },
                    batch,
                )
                .unwrap();
            assert_eq!(out.counts[0].records_in, n);
            decode(&out.output.unwrap())
        })
        .collect()
}

#[test]
fn parallel_partitions_give_the_single_worker_result() {
    let visits = || {
        vec![
            stage("map", UdfMap(udf("parse_visit"))),
            stage("count", ReduceByKey(Reducer::builtin(Builtin::Sum))),
        ]
    };
    let one = run_parallel(1, visits, |k| lines(20_000, k));
    assert_eq!(one[0].len(), 97, "97 users");
    assert_eq!(one[0].iter().map(|(_, n)| n).sum::<i64>(), 20_000);
    assert_eq!(run_parallel(2, visits, |k| lines(20_000, k)), one);
    assert_eq!(run_parallel(4, visits, |k| lines(20_000, k)), one);

    let words = || {
        vec![
            stage("split", UdfFlatMap(udf("split_words"))),
            stage("count", ReduceByKey(Reducer::builtin(Builtin::Sum))),
        ]
    };
    let text = |k: u64| {
        let mut b = RecordBatch::new();
        for i in 0..12_000u64 {
            b.push(None, format!("w{} w{} w{}", i % 13, (i + k) % 5, i % 2).as_bytes(), 0);
        }
        b
    };
    let one = run_parallel(1, words, text);
    assert_eq!(one[0].iter().map(|(_, n)| n).sum::<i64>(), 36_000);
    // The map-side combine (large batches) gives what counting every word by hand gives.
    let mut by_hand = std::collections::BTreeMap::<String, i64>::new();
    for r in text(1).iter() {
        for w in std::str::from_utf8(r.value).unwrap().split(' ') {
            *by_hand.entry(w.to_owned()).or_default() += 1;
        }
    }
    let by_hand: Vec<_> = by_hand.into_iter().map(|(k, n)| (Some(k), n)).collect();
    assert_eq!(one[0], by_hand);
    assert_eq!(run_parallel(3, words, text), one);
}

#[test]
fn parallel_map_keeps_record_order() {
    let mut p = Pipeline::new(
        runtime(),
        vec![stage("key", BuiltinOp::KeyByValue)],
        BadRecordPolicy::Fail,
        3,
    );
    let input = lines(10_000, 1);
    let out = p
        .run_batch(
            Tick {
                batch_id: 1,
                time_ms: B,
            },
            input.clone(),
        )
        .unwrap()
        .output
        .unwrap();
    let values: Vec<_> = out.iter().map(|r| r.value.to_vec()).collect();
    let want: Vec<_> = input.iter().map(|r| r.value.to_vec()).collect();
    assert_eq!(values, want);
}

fn pairs(v: &[(&str, i64)]) -> RecordBatch {
    let mut b = RecordBatch::new();
    for (k, n) in v {
        b.push(Some(k.as_bytes()), &n.to_le_bytes(), 0);
    }
    b
}

#[test]
fn update_state_by_key_carries_state_and_outputs_every_key_every_batch() {
    let mut p = Pipeline::new(
        runtime(),
        vec![stage("state", UpdateStateByKey::new(Reducer::builtin(Builtin::Sum)))],
        BadRecordPolicy::Fail,
        1,
    );
    let mut outs = Vec::new();
    for (k, batch) in [pairs(&[("a", 1), ("b", 2)]), pairs(&[]), pairs(&[("a", 5)])]
        .into_iter()
        .enumerate()
    {
        let tick = Tick {
            batch_id: k as u64 + 1,
            time_ms: (k as i64 + 1) * B,
        };
        outs.push(decode(&p.run_batch(tick, batch).unwrap().output.unwrap()));
    }
    let e = |v: &[(&str, i64)]| v.iter().map(|(k, n)| (Some(k.to_string()), *n)).collect::<Vec<_>>();
    assert_eq!(
        outs,
        [
            e(&[("a", 1), ("b", 2)]),
            e(&[("a", 1), ("b", 2)]),
            e(&[("a", 6), ("b", 2)])
        ]
    );
}

#[test]
fn count_by_value_counts_values_per_batch() {
    let mut p = Pipeline::new(runtime(), vec![stage("cbv", CountByValue)], BadRecordPolicy::Fail, 1);
    let mut b = RecordBatch::new();
    for v in ["x", "y", "x"] {
        b.push(None, v.as_bytes(), 0);
    }
    let out = decode(
        &p.run_batch(
            Tick {
                batch_id: 1,
                time_ms: B,
            },
            b,
        )
        .unwrap()
        .output
        .unwrap(),
    );
    assert_eq!(out, [(Some("x".into()), 2), (Some("y".into()), 1)]);
}

#[test]
fn a_bad_value_in_a_native_reduce_is_refused_per_record() {
    let mut p = Pipeline::new(
        runtime(),
        vec![stage("sum", ReduceByKey(Reducer::builtin(Builtin::Sum)))],
        BadRecordPolicy::Skip,
        1,
    );
    let mut b = pairs(&[("a", 1), ("a", 2)]);
    b.push(Some(b"a"), b"three", 0);
    let out = p
        .run_batch(
            Tick {
                batch_id: 1,
                time_ms: B,
            },
            b,
        )
        .unwrap();
    assert_eq!(decode(&out.output.unwrap()), [(Some("a".into()), 3)]);
    assert_eq!(out.dead_letters.len(), 1);
    assert_eq!(out.dead_letters[0].value, "three");
    assert_eq!(out.counts[0].errors, 1);
}

fn floats(b: &RecordBatch) -> Vec<(String, f64)> {
    b.iter()
        .map(|r| {
            (
                String::from_utf8_lossy(r.key.unwrap()).into_owned(),
                f64::from_le_bytes(r.value.try_into().unwrap()),
            )
        })
        .collect()
}

#[test]
fn avg_per_batch_and_over_a_window_with_its_inverse() {
    use super::ops::{ReduceByKeyAndWindow, WindowFilter, WindowOutput};
    let avg = || Reducer::builtin(Builtin::Avg);
    let mut p = Pipeline::new(
        runtime(),
        vec![stage("avg", ReduceByKey(avg()))],
        BadRecordPolicy::Fail,
        1,
    );
    let out = p
        .run_batch(
            Tick {
                batch_id: 1,
                time_ms: B,
            },
            pairs(&[("a", 1), ("a", 2), ("b", 5)]),
        )
        .unwrap();
    assert_eq!(floats(&out.output.unwrap()), [("a".into(), 1.5), ("b".into(), 5.0)]);

    let with_inverse = Reducer::Builtin {
        builtin: Builtin::Avg,
        use_inverse: true,
    };
    for (reducer, filter) in [(with_inverse, Some(WindowFilter::NonZero)), (avg(), None)] {
        let op = ReduceByKeyAndWindow::new(2 * B, B, B, reducer, filter, WindowOutput::ByKey);
        let mut p = Pipeline::new(runtime(), vec![stage("w", op)], BadRecordPolicy::Fail, 1);
        let batches = [pairs(&[("a", 1), ("b", 4)]), pairs(&[("a", 3)]), pairs(&[("b", 10)])];
        let outs: Vec<_> = batches
            .into_iter()
            .enumerate()
            .map(|(k, b)| {
                floats(
                    &p.run_batch(
                        Tick {
                            batch_id: k as u64 + 1,
                            time_ms: (k as i64 + 1) * B,
                        },
                        b,
                    )
                    .unwrap()
                    .output
                    .unwrap(),
                )
            })
            .collect();
        assert_eq!(
            outs,
            [
                vec![("a".into(), 1.0), ("b".into(), 4.0)],
                vec![("a".into(), 2.0), ("b".into(), 4.0)],
                vec![("a".into(), 3.0), ("b".into(), 10.0)]
            ]
        );
    }
}

#[test]
fn a_refused_record_is_named_by_its_index_in_the_whole_batch_when_split() {
    use super::EngineError;
    use crate::engine::ops::FieldSpec;
    let key_by = BuiltinOp::KeyByField {
        field: FieldSpec {
            sep: ",".into(),
            index: 1,
        },
        bucket: None,
    };
    let mut p = Pipeline::new(runtime(), vec![stage("key", key_by)], BadRecordPolicy::Fail, 2);
    let mut b = RecordBatch::new();
    for i in 0..6000 {
        let line = if i == 4321 {
            "no-comma".to_owned()
        } else {
            format!("{i},x")
        };
        b.push(None, line.as_bytes(), 0);
    }
    match p.run_batch(
        Tick {
            batch_id: 1,
            time_ms: B,
        },
        b,
    ) {
        Err(EngineError::BadRecord { index, record, .. }) => {
            assert_eq!(index, 4321);
            assert!(record.contains("no-comma"), "{record}");
        }
        other => panic!("expected a refused record, got {other:?}"),
    }
}
