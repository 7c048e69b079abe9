//! Property: for random batches (well-formed and malformed lines, keys, timestamps), each example
//! UDF run through wasm gives exactly what the same Rust function gives called natively.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use sluice::batch::{RecordBatch, ValueGroups};
use sluice::runtime::{LoadedModule, RecordError, Runtime, UdfInstance};
use sluice_guest::{Bytes, FilterOutput, FlatMapOutput, MapOutput, Record, ReduceValue, UdfError};
use sluice_udf_examples as ex;

fn shared() -> &'static (Runtime, Arc<LoadedModule>) {
    static RT: OnceLock<(Runtime, Arc<LoadedModule>)> = OnceLock::new();
    RT.get_or_init(|| {
        let rt = sluice_tests::runtime();
        let m = sluice_tests::examples(&rt);
        (rt, m)
    })
}

fn instance() -> UdfInstance {
    let (rt, m) = shared();
    rt.instantiate(m, &rt.config().default_limits).unwrap()
}

type Owned = (Option<Vec<u8>>, Vec<u8>, i64);

fn owned(r: &Record<'_>) -> Owned {
    (r.key.as_ref().map(|k| k.to_vec()), r.value.to_vec(), r.timestamp_ms)
}

fn owned_batch(b: &RecordBatch) -> Vec<Owned> {
    b.iter()
        .map(|r| (r.key.map(<[u8]>::to_vec), r.value.to_vec(), r.timestamp_ms))
        .collect()
}

fn native_record<'a>(r: sluice_abi::RecordRef<'a>) -> Record<'a> {
    Record {
        key: r.key.map(Bytes::Borrowed),
        value: Bytes::Borrowed(r.value),
        timestamp_ms: r.timestamp_ms,
    }
}

fn err(index: usize, e: UdfError) -> RecordError {
    RecordError {
        index: index as u32,
        message: e.message().to_owned(),
    }
}

/// What a map gives natively: the records and the errors.
fn native_map<'a, O: MapOutput<'a>>(
    batch: &'a RecordBatch,
    f: impl Fn(Record<'a>) -> O,
) -> (Vec<Owned>, Vec<RecordError>) {
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    for (i, r) in batch.iter().enumerate() {
        match f(native_record(r)).into_result() {
            Ok(r) => out.push(owned(&r)),
            Err(e) => errors.push(err(i, e)),
        }
    }
    (out, errors)
}

fn native_flat_map<'a, O: FlatMapOutput<'a>>(
    batch: &'a RecordBatch,
    f: impl Fn(Record<'a>) -> O,
) -> (Vec<Owned>, Vec<RecordError>) {
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    for (i, r) in batch.iter().enumerate() {
        let mut acc = Vec::new();
        match f(native_record(r)).emit(&mut |rec| acc.push(rec)) {
            Ok(()) => out.extend(acc.iter().map(owned)),
            Err(e) => errors.push(err(i, e)),
        }
    }
    (out, errors)
}

fn native_filter<O: FilterOutput>(batch: &RecordBatch, f: impl Fn(&Record<'_>) -> O) -> (Vec<Owned>, Vec<RecordError>) {
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    for (i, r) in batch.iter().enumerate() {
        let rec = native_record(r);
        match f(&rec).into_result() {
            Ok(true) => out.push(owned(&rec)),
            Ok(false) => {}
            Err(e) => errors.push(err(i, e)),
        }
    }
    (out, errors)
}

/// A line: one of the seed's formats, well-formed or not, or arbitrary text or bytes.
fn line() -> impl Strategy<Value = Vec<u8>> {
    let ts = prop_oneof![
        -10_000_000_000i64..10_000_000_000,
        Just(0),
        Just(-1),
        Just(-60),
        Just(59)
    ];
    let word = "[a-z0-9]{0,6}";
    prop_oneof![
        (word, ts.clone(), "/[a-z/]{0,8}").prop_map(|(u, t, p)| format!("{u},{t},{p}").into_bytes()),
        (
            ts.clone(),
            prop_oneof![Just("ERROR"), Just("INFO"), Just("error"), Just("WARN")],
            "[ a-z|]{0,12}"
        )
            .prop_map(|(t, l, m)| format!("{t}|{l}|{m}").into_bytes()),
        (word, ts, prop_oneof![Just("click"), Just("view"), Just("clicks")], word)
            .prop_map(|(u, t, a, i)| format!("{u},{t},{a},{i}").into_bytes()),
        "[ a-z,|\t]{0,24}".prop_map(String::into_bytes),
        "\\PC{0,12}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

fn batch_strategy() -> impl Strategy<Value = RecordBatch> {
    proptest::collection::vec((proptest::option::of("[a-z]{0,4}"), line(), any::<i64>()), 0..40).prop_map(|recs| {
        let mut b = RecordBatch::new();
        for (k, v, t) in &recs {
            b.push(k.as_deref().map(str::as_bytes), v, *t);
        }
        b
    })
}

fn check(got: (Vec<Owned>, Vec<RecordError>), want: (Vec<Owned>, Vec<RecordError>)) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.1, want.1, "errors differ");
    prop_assert_eq!(got.0, want.0, "records differ");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn maps_match_native(b in batch_strategy()) {
        let mut inst = instance();
        for (name, f) in [
            ("parse_visit", ex::parse_visit as for<'a> fn(Record<'a>) -> Result<Record<'a>, UdfError>),
            ("minute_bucket", ex::minute_bucket),
            ("parse_behavior", ex::parse_behavior),
        ] {
            let got = inst.map(name, &b).unwrap();
            check((owned_batch(&got.records), got.errors), native_map(&b, f))?;
        }
    }

    #[test]
    fn flat_maps_match_native(b in batch_strategy()) {
        let mut inst = instance();
        let got = inst.flat_map("split_words", &b).unwrap();
        check((owned_batch(&got.records), got.errors), native_flat_map(&b, ex::split_words))?;
        let got = inst.flat_map("split_words_whitespace", &b).unwrap();
        check((owned_batch(&got.records), got.errors), native_flat_map(&b, ex::split_words_whitespace))?;
        let got = inst.flat_map("clicks_by_user", &b).unwrap();
        check((owned_batch(&got.records), got.errors), native_flat_map(&b, ex::clicks_by_user))?;
    }

    #[test]
    fn filters_match_native(b in batch_strategy()) {
        let mut inst = instance();
        for (name, f) in [
            ("is_error", ex::is_error as for<'a, 'b> fn(&'b Record<'a>) -> Result<bool, UdfError>),
            ("is_click", ex::is_click),
        ] {
            let got = inst.filter(name, &b).unwrap();
            check((owned_batch(&got.kept), got.errors), native_filter(&b, f))?;
        }
    }

    #[test]
    fn reduces_match_native(groups in proptest::collection::vec(
        proptest::collection::vec(prop_oneof![9 => any::<i64>().prop_map(|v| v.to_le_bytes().to_vec()), 1 => proptest::collection::vec(any::<u8>(), 0..12)], 1..6),
        0..20,
    )) {
        let mut inst = instance();
        let mut encoded = ValueGroups::new();
        for g in &groups {
            encoded.start_group();
            for v in g {
                encoded.push_value(v);
            }
        }
        for (name, f, inverse) in [
            ("sum_counts", ex::sum_counts as fn(i64, i64) -> i64, false),
            ("sum_counts", ex::subtract_counts, true),
            ("max_value", ex::max_value, false),
        ] {
            let got = if inverse { inst.inverse(name, &mut encoded) } else { inst.reduce(name, &mut encoded) }.unwrap();
            let mut want_values = Vec::new();
            let mut want_errors = Vec::new();
            for (gi, g) in groups.iter().enumerate() {
                let folded = g.iter().map(|v| i64::decode(v)).try_fold(None, |acc: Option<i64>, v| {
                    let v = v?;
                    Ok::<_, UdfError>(Some(match acc { Some(a) => f(a, v), None => v }))
                });
                match folded {
                    Ok(v) => want_values.push(Some(v.unwrap().to_le_bytes().to_vec())),
                    Err(e) => {
                        want_values.push(None);
                        want_errors.push(err(gi, e));
                    }
                }
            }
            prop_assert_eq!(&got.values, &want_values, "{} (inverse: {})", name, inverse);
            prop_assert_eq!(&got.errors, &want_errors);
        }
    }
}
