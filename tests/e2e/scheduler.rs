//! The scheduler of `sluice run`: on a live source, a batch that takes longer than the interval
//! delays the next one (recorded as scheduling delay); no batch is skipped and nothing dropped.

use std::sync::{Arc, Mutex};

use sluice::engine::SystemClock;
use sluice::job;
use sluice::run::{BatchReport, LocalModules, RunIo, RunOptions, run};

#[test]
fn slow_batches_delay_the_next_and_nothing_is_dropped() {
    // 50k lines every 2 ms through a wasm parse and a window: more work than 2 ms allows (this
    // engine does about 20M lines/s on one core at best).
    let spec = r#"{ "name": "slow", "batch_interval": "2ms",
        "modules": { "examples": "builtin:examples" },
        "source": { "generator": { "format": "visits", "rate_per_s": 25000000 } },
        "stages": [ { "map": { "udf": "examples", "function": "parse_visit", "value": "i64" } },
                    { "reduce_by_key_and_window": { "length": "100ms", "reduce": { "builtin": "sum" } } } ],
        "sink": { "jsonl": {} } }"#;
    let runtime = Arc::new(sluice::runtime::Runtime::new(sluice::runtime::RuntimeConfig::default()).unwrap());
    let spec = job::parse(spec).unwrap();
    let modules = LocalModules::new(runtime.clone(), spec.modules.clone(), ".".into());
    let plan = job::check(spec, &modules).unwrap();
    let source = sluice::source::open(&plan.spec.source, plan.batch_ms).unwrap();
    assert!(source.is_live());
    let sink = sluice::sink::open(
        &plan.spec.sink,
        plan.output_type,
        Box::new(std::io::sink()),
        &plan.spec.name,
    )
    .unwrap();
    let io = RunIo {
        source,
        sink,
        dead_letters: Box::new(std::io::sink()),
        clock: Arc::new(SystemClock),
    };
    let reports: Arc<Mutex<Vec<BatchReport>>> = Arc::default();
    let seen = reports.clone();
    let options = RunOptions {
        batches: Some(12),
        workers: Some(1),
        limits: None,
        checkpointing: None,
    };
    let done = run(&plan, runtime, io, options, move |r| {
        seen.lock().unwrap().push(r.clone())
    })
    .unwrap();
    assert_eq!(done, 12);
    let reports = reports.lock().unwrap();
    let ids: Vec<u64> = reports.iter().map(|r| r.batch_id).collect();
    assert_eq!(ids, (1..=12).collect::<Vec<_>>(), "no batch skipped");
    for r in reports.iter() {
        assert_eq!(r.records_in, 50_000, "batch {} got {} lines", r.batch_id, r.records_in);
        assert_eq!(r.stages[0].records_out, 50_000);
        assert!((r.total_delay_ms - (r.scheduling_delay_ms + r.processing_ms)).abs() < 1e-6);
        assert_eq!(r.time_ms % 2, 0);
    }
    let slow: Vec<usize> = (0..reports.len()).filter(|&i| reports[i].processing_ms > 2.0).collect();
    assert!(
        !slow.is_empty(),
        "the test needs batches slower than the interval: {:?}",
        reports.iter().map(|r| r.processing_ms).collect::<Vec<_>>()
    );
    for i in slow {
        if let Some(next) = reports.get(i + 1) {
            assert!(
                next.scheduling_delay_ms > 0.0,
                "batch {} started on time after a {:.1} ms batch",
                next.batch_id,
                reports[i].processing_ms
            );
        }
    }
}
