//! Hostile UDFs: each failure is a typed error naming the UDF, its module version and the limit
//! or trap, within 2x the deadline, and the host and every other UDF keep working.

use std::time::{Duration, Instant};

use sluice::runtime::{InstanceBudget, UdfError, WarmInstances};
use sluice_tests::{batch, config, examples, hostile, runtime};

/// After a failure, the same worker runs a good UDF of another module and gets the right answer.
fn assert_examples_still_work(warm: &mut WarmInstances, rt: &sluice::runtime::Runtime) {
    let ex = examples(rt);
    let limits = rt.config().default_limits.clone();
    let out = warm
        .with(rt, &ex, &limits, &InstanceBudget::unlimited(), |i| {
            i.map("parse_visit", &batch(&["u1,10,/a"]))
        })
        .unwrap();
    assert_eq!(out.records.get(0).unwrap().key, Some(&b"u1"[..]));
}

fn call_hostile(function: &str, kind: &str) -> (UdfError, Duration) {
    let rt = runtime();
    let module = hostile(&rt);
    let limits = rt.config().default_limits.clone();
    let mut warm = WarmInstances::new();
    let input = batch(&["one", "two"]);
    let t = Instant::now();
    let err = warm
        .with(&rt, &module, &limits, &InstanceBudget::unlimited(), |i| match kind {
            "flat_map" => i.flat_map(function, &input).map(|_| ()),
            _ => i.map(function, &input).map(|_| ()),
        })
        .expect_err("the hostile UDF fails");
    let took = t.elapsed();
    assert_eq!(warm.len(), 0, "the failed instance is dropped, never reused");
    assert_examples_still_work(&mut warm, &rt);
    // The hostile module itself is usable again with a fresh instance.
    let ok = warm
        .with(&rt, &module, &limits, &InstanceBudget::unlimited(), |i| {
            i.map("chatty", &batch(&["hello"]))
        })
        .unwrap();
    assert_eq!(ok.records.len(), 1);
    (err, took)
}

#[test]
fn an_endless_loop_is_stopped_within_twice_the_deadline() {
    let deadline = config().default_limits.cpu_time_ms_max;
    let (err, took) = call_hostile("spin", "map");
    assert!(
        matches!(err, UdfError::Timeout { limit_ms, .. } if limit_ms == deadline),
        "{err:?}"
    );
    assert!(
        took < Duration::from_millis(2 * deadline),
        "stopped after {took:?}, deadline {deadline} ms"
    );
    assert!(
        took >= Duration::from_millis(deadline / 2),
        "stopped too early: {took:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`spin`") && msg.contains("hostile@1") && msg.contains("cpu_time_ms_max"),
        "{msg}"
    );
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let (err, _) = call_hostile("memory_bomb", "map");
    assert!(
        matches!(err, UdfError::MemoryLimit { limit_bytes, .. } if limit_bytes == 32 << 20),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`memory_bomb`") && msg.contains("hostile@1") && msg.contains("memory_bytes_max"),
        "{msg}"
    );
}

#[test]
fn endless_recursion_overflows_the_stack() {
    let (err, _) = call_hostile("recurse", "map");
    assert!(matches!(err, UdfError::StackOverflow { .. }), "{err:?}");
    assert!(err.to_string().contains("wasm_stack_bytes_max"), "{err}");
}

#[test]
fn endless_recursion_on_the_stack_in_linear_memory_is_a_trap() {
    let (err, _) = call_hostile("recurse_in_memory", "map");
    assert!(
        matches!(&err, UdfError::Trap { trap, .. } if trap.contains("out of bounds") && trap.contains("recursion")),
        "{err:?}"
    );
}

#[test]
fn a_trap_is_reported_as_a_trap() {
    let (err, _) = call_hostile("trap", "map");
    match &err {
        UdfError::Trap { udf, trap } => {
            assert_eq!(udf.function, "trap");
            assert_eq!(udf.module, "hostile@1");
            assert!(trap.contains("unreachable"), "{trap}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn a_panic_reports_its_message() {
    let (err, _) = call_hostile("panics", "map");
    match &err {
        UdfError::Panic { udf, message } => {
            assert_eq!(udf.function, "panics");
            assert!(message.contains("boom on record \"one\""), "{message}");
            assert!(message.contains("src/lib.rs"), "the location is kept: {message}");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
}

#[test]
fn oversized_output_hits_the_output_limit() {
    let (err, _) = call_hostile("flood", "flat_map");
    assert!(
        matches!(err, UdfError::OutputLimit { limit_bytes, .. } if limit_bytes == 1 << 20),
        "{err:?}"
    );
}

#[test]
fn logs_reach_the_host() {
    let rt = runtime();
    let module = hostile(&rt);
    let mut inst = rt.instantiate(&module, &rt.config().default_limits).unwrap();
    inst.map("chatty", &batch(&["hi"])).unwrap();
    let lines: Vec<_> = inst.last_logs().iter().map(|l| (l.level, l.message.as_str())).collect();
    use sluice_abi::LogLevel::*;
    assert_eq!(lines, [(Debug, "debug: hi"), (Info, "info: hi"), (Warn, "warn: hi")]);
}

#[test]
fn a_hostile_udf_on_one_thread_does_not_slow_or_break_another() {
    let rt = std::sync::Arc::new(runtime());
    let ex = examples(&rt);
    let bad = hostile(&rt);
    let hostile_thread = {
        let rt = rt.clone();
        std::thread::spawn(move || {
            let limits = rt.config().default_limits.clone();
            let mut warm = WarmInstances::new();
            let mut failures = 0;
            for f in ["spin", "memory_bomb", "recurse", "spin"] {
                failures += warm
                    .with(&rt, &bad, &limits, &InstanceBudget::unlimited(), |i| {
                        i.map(f, &batch(&["x"]))
                    })
                    .is_err() as u32;
            }
            failures
        })
    };
    let limits = rt.config().default_limits.clone();
    let mut warm = WarmInstances::new();
    let lines: Vec<String> = (0..1000).map(|i| format!("u{},{i},/p", i % 7)).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let input = batch(&refs);
    let mut calls = 0;
    while !hostile_thread.is_finished() {
        let out = warm
            .with(&rt, &ex, &limits, &InstanceBudget::unlimited(), |i| {
                i.map("parse_visit", &input)
            })
            .unwrap();
        assert_eq!(out.records.len(), 1000);
        assert!(out.errors.is_empty());
        calls += 1;
    }
    assert_eq!(hostile_thread.join().unwrap(), 4);
    assert!(calls > 0);
    assert_eq!(warm.len(), 1, "the good instance stayed warm throughout");
}

#[test]
fn with_fuel_metering_an_endless_loop_runs_out_of_fuel_and_normal_udfs_still_run() {
    use sluice::runtime::{CallLimits, Runtime, RuntimeConfig};
    let base = config();
    let rt = Runtime::new(RuntimeConfig {
        fuel_metering: true,
        default_limits: CallLimits {
            fuel_per_call_max: 50_000_000,
            cpu_time_ms_max: 10_000,
            ..base.default_limits
        },
        ..base
    })
    .unwrap();
    let limits = rt.config().default_limits.clone();
    let mut warm = WarmInstances::new();
    let bad = hostile(&rt);
    let err = warm
        .with(&rt, &bad, &limits, &InstanceBudget::unlimited(), |i| {
            i.map("spin", &batch(&["x"]))
        })
        .unwrap_err();
    assert!(matches!(err, UdfError::OutOfFuel { limit: 50_000_000, .. }), "{err:?}");
    assert!(err.to_string().contains("fuel_per_call_max"), "{err}");
    // Fuel is refilled per call: many calls in a row each get the whole budget.
    let ex = examples(&rt);
    for _ in 0..20 {
        let out = warm
            .with(&rt, &ex, &limits, &InstanceBudget::unlimited(), |i| {
                i.map("parse_visit", &batch(&["u1,10,/a", "u2,11,/b"]))
            })
            .unwrap();
        assert_eq!(out.records.len(), 2);
    }
}
