//! The supervisor on a manual clock: batches come at their times and not before, commands are
//! handled between batches, the state machine is what the module doc draws, and a panic ends
//! the run as `Failed`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::batch::RecordBatch;
use crate::engine::ManualClock;
use crate::engine::context::BadRecordPolicy;
use crate::runtime::{Runtime, RuntimeConfig};

/// One record a batch, stamped with its batch id; live (waits for batch times).
struct Ticks;

impl Source for Ticks {
    fn next_batch(&mut self, tick: Tick) -> Result<RecordBatch, SourceError> {
        let mut b = RecordBatch::new();
        b.push(None, tick.batch_id.to_string().as_bytes(), tick.time_ms);
        Ok(b)
    }

    fn is_live(&self) -> bool {
        true
    }
}

struct Collect(Arc<Mutex<Vec<u64>>>);

impl Sink for Collect {
    fn write(&mut self, tick: Tick, _batch: &RecordBatch) -> std::io::Result<()> {
        self.0.lock().unwrap().push(tick.batch_id);
        Ok(())
    }
}

struct NoDeadLetters;

impl DeadLetterSink for NoDeadLetters {
    fn write(&mut self, _letters: &[DeadLetter]) -> std::io::Result<()> {
        Ok(())
    }
}

/// The states the observer saw, in order.
#[derive(Clone, Default)]
struct States(Arc<Mutex<Vec<String>>>);

impl Observer for States {
    fn on_state(&mut self, state: &JobState, ended: Option<&Ended>) {
        let word = match ended {
            Some(Ended::Shutdown) => "stopped(shutdown)".to_owned(),
            _ => state.word().to_owned(),
        };
        self.0.lock().unwrap().push(word);
    }
}

fn job(batches: Arc<Mutex<Vec<u64>>>) -> Job {
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).unwrap());
    Job {
        pipeline: Pipeline::new(runtime, Vec::new(), BadRecordPolicy::Fail, 1),
        batch_ms: 100,
        source: Box::new(Ticks),
        sink: Box::new(Collect(batches)),
        dead_letters: Box::new(NoDeadLetters),
        checkpointing: None,
        max_refused: Default::default(),
    }
}

fn options() -> Options {
    Options {
        batches: None,
        name: "test".into(),
        poll_ms: 2,
    }
}

fn wait_until(f: impl Fn() -> bool) {
    let t = std::time::Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn batches_come_at_their_times_and_stop_waits_for_none() {
    let clock = ManualClock::at(1_000);
    let batches = Arc::default();
    let states = States::default();
    let b = Arc::clone(&batches);
    let handle = spawn(options(), Arc::new(clock.clone()), move || Ok(job(b)), states.clone());
    wait_until(|| handle.state() == JobState::Running);
    std::thread::sleep(Duration::from_millis(30));
    assert!(batches.lock().unwrap().is_empty(), "no batch before its time");
    for k in 1..=3u64 {
        clock.advance(100);
        wait_until(|| batches.lock().unwrap().len() as u64 == k);
    }
    assert_eq!(*batches.lock().unwrap(), [1, 2, 3]);
    assert!(handle.send(Command::Stop));
    assert_eq!(handle.join(), Ended::Stopped);
    assert_eq!(*states.0.lock().unwrap(), ["running", "stopping", "stopped"]);
    assert_eq!(batches.lock().unwrap().len(), 3, "nothing ran after the stop");
}

#[test]
fn a_swap_answers_with_the_batch_it_takes_effect_in() {
    let clock = ManualClock::at(0);
    let batches = Arc::default();
    let b = Arc::clone(&batches);
    let handle = spawn(
        options(),
        Arc::new(clock.clone()),
        move || Ok(job(b)),
        States::default(),
    );
    wait_until(|| handle.state() == JobState::Running);
    clock.advance(100);
    wait_until(|| batches.lock().unwrap().len() == 1);
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let module = runtime.load("examples@1", sluice_udf_artifacts::EXAMPLES).unwrap();
    let (reply, answer) = tokio::sync::oneshot::channel();
    let udf = UdfHandle {
        module,
        function: "parse_visit".into(),
        limits: Default::default(),
    };
    handle.send(Command::Swap(Swap { stage: 0, udf, reply }));
    let answer = answer.blocking_recv().unwrap();
    assert_eq!(answer, Err("stage 0 calls no UDF".into()), "the job has no UDF stage");
    handle.send(Command::Shutdown);
    assert_eq!(handle.join(), Ended::Shutdown);
}

#[test]
fn a_shutdown_ends_the_run_as_stopped_for_a_resume() {
    let clock = ManualClock::at(0);
    let states = States::default();
    let handle = spawn(
        options(),
        Arc::new(clock),
        move || Ok(job(Arc::default())),
        states.clone(),
    );
    wait_until(|| handle.state() == JobState::Running);
    handle.send(Command::Shutdown);
    assert_eq!(handle.join(), Ended::Shutdown);
    assert_eq!(*states.0.lock().unwrap(), ["running", "stopped(shutdown)"]);
}

#[test]
fn a_build_error_or_a_panic_ends_the_run_as_failed() {
    let states = States::default();
    let handle = spawn(
        options(),
        Arc::new(ManualClock::at(0)),
        || Err("source: cannot open".into()),
        states.clone(),
    );
    let ended = handle.join();
    assert!(
        matches!(&ended, Ended::Failed { reason, .. } if reason == "source: cannot open"),
        "{ended:?}"
    );
    assert_eq!(*states.0.lock().unwrap(), ["failed"]);

    let states = States::default();
    let handle = spawn(
        options(),
        Arc::new(ManualClock::at(0)),
        || -> Result<Job, String> { panic!("a bug") },
        states.clone(),
    );
    let watch = handle.watch();
    let ended = handle.join();
    assert!(
        matches!(&ended, Ended::Failed { reason, .. } if reason.contains("internal error") && reason.contains("a bug")),
        "{ended:?}"
    );
    assert!(matches!(&*watch.borrow(), JobState::Failed { .. }));
}

#[test]
fn a_deterministic_source_runs_its_batches_and_ends() {
    struct Three(u64);
    impl Source for Three {
        fn next_batch(&mut self, _tick: Tick) -> Result<RecordBatch, SourceError> {
            self.0 += 1;
            Ok(RecordBatch::new())
        }
        fn batches_hint(&self) -> Option<u64> {
            Some(3)
        }
        fn is_live(&self) -> bool {
            false
        }
    }
    let batches: Arc<Mutex<Vec<u64>>> = Arc::default();
    let b = Arc::clone(&batches);
    let handle = spawn(
        options(),
        Arc::new(ManualClock::at(0)),
        move || {
            let mut j = job(b);
            j.source = Box::new(Three(0));
            Ok(j)
        },
        States::default(),
    );
    assert_eq!(handle.join(), Ended::Done(3));
    assert_eq!(*batches.lock().unwrap(), [1, 2, 3], "without waiting for a clock");
}

/// Six batches of keyed numbers, deterministic (batch `k` from its id alone).
struct Numbers;

impl Source for Numbers {
    fn next_batch(&mut self, tick: Tick) -> Result<RecordBatch, SourceError> {
        let mut b = RecordBatch::new();
        for i in 0..tick.batch_id {
            let key = format!("k{}", (i * 7 + tick.batch_id) % 3);
            b.push(Some(key.as_bytes()), &(i as i64).to_le_bytes(), tick.time_ms);
        }
        Ok(b)
    }

    fn batches_hint(&self) -> Option<u64> {
        Some(6)
    }

    fn is_live(&self) -> bool {
        false
    }

    fn position(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({}))
    }
}

/// Keeps each output batch decoded as `(batch, key, value)`.
struct Outputs(Arc<Mutex<Vec<(u64, String, i64)>>>);

impl Sink for Outputs {
    fn write(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        let mut out = self.0.lock().unwrap();
        for r in batch.iter() {
            let key = String::from_utf8_lossy(r.key.unwrap_or_default()).into_owned();
            out.push((tick.batch_id, key, i64::from_le_bytes(r.value.try_into().unwrap())));
        }
        Ok(())
    }
}

fn stateful_job(out: Arc<Mutex<Vec<(u64, String, i64)>>>, checkpointing: Option<Checkpointing>) -> Job {
    use crate::engine::ops::UpdateStateByKey;
    use crate::engine::pipeline::Stage;
    use crate::engine::reducer::{Builtin, Reducer};
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).unwrap());
    let stages = vec![Stage {
        name: "stages[0].update_state_by_key".into(),
        op: Box::new(UpdateStateByKey::new(Reducer::builtin(Builtin::Sum))),
    }];
    Job {
        pipeline: Pipeline::new(runtime, stages, BadRecordPolicy::Fail, 1),
        batch_ms: 100,
        source: Box::new(Numbers),
        sink: Box::new(Outputs(out)),
        dead_letters: Box::new(NoDeadLetters),
        checkpointing,
        max_refused: Default::default(),
    }
}

#[test]
fn a_run_resumes_from_its_checkpoint_with_its_state_and_batch_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(crate::checkpoint::CheckpointStore::open(&dir.path().join("c.db")).unwrap());
    let cp = || Checkpointing {
        store: store.clone(),
        job: 1,
        every_batches: 2,
        keep: 3,
    };
    let whole: Arc<Mutex<Vec<(u64, String, i64)>>> = Arc::default();
    let w = whole.clone();
    let handle = spawn(
        options(),
        Arc::new(ManualClock::at(0)),
        move || Ok(stateful_job(w, None)),
        States::default(),
    );
    assert_eq!(handle.join(), Ended::Done(6));

    // The first run stops after batch 3 (a last checkpoint at 3), the second resumes at 4.
    let first: Arc<Mutex<Vec<(u64, String, i64)>>> = Arc::default();
    let f = first.clone();
    let c = cp();
    let mut opts = options();
    opts.batches = Some(3);
    let handle = spawn(
        opts,
        Arc::new(ManualClock::at(0)),
        move || Ok(stateful_job(f, Some(c))),
        States::default(),
    );
    assert_eq!(handle.join(), Ended::Done(3));
    assert_eq!(
        store.list(1).unwrap().iter().map(|c| c.batch_id).collect::<Vec<_>>(),
        [3, 2]
    );
    let second: Arc<Mutex<Vec<(u64, String, i64)>>> = Arc::default();
    let s = second.clone();
    let c = cp();
    let handle = spawn(
        options(),
        Arc::new(ManualClock::at(0)),
        move || Ok(stateful_job(s, Some(c))),
        States::default(),
    );
    assert_eq!(handle.join(), Ended::Done(6));
    let mut resumed = first.lock().unwrap().clone();
    resumed.extend(second.lock().unwrap().iter().cloned());
    assert_eq!(
        resumed,
        *whole.lock().unwrap(),
        "the same outputs, batch ids and state as one run"
    );
    assert!(second.lock().unwrap().iter().all(|(b, _, _)| *b > 3));
}

#[test]
fn a_checkpoint_that_no_longer_fits_the_spec_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(crate::checkpoint::CheckpointStore::open(&dir.path().join("c.db")).unwrap());
    let c = Checkpointing {
        store: store.clone(),
        job: 1,
        every_batches: 1,
        keep: 3,
    };
    let mut opts = options();
    opts.batches = Some(2);
    let c2 = c.clone();
    let handle = spawn(
        opts,
        Arc::new(ManualClock::at(0)),
        move || Ok(stateful_job(Arc::default(), Some(c2))),
        States::default(),
    );
    assert_eq!(handle.join(), Ended::Done(2));
    // The same job id now runs a job without that stateful stage.
    let b = Arc::default();
    let handle = spawn(
        options(),
        Arc::new(ManualClock::at(0)),
        move || {
            let mut j = job(b);
            j.checkpointing = Some(c);
            Ok(j)
        },
        States::default(),
    );
    let ended = handle.join();
    assert!(
        matches!(&ended, Ended::Failed { reason, .. } if reason.contains("no longer match") && reason.contains("stages[0].update_state_by_key")),
        "{ended:?}"
    );
}
