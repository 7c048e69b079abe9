//! Checkpoints through the real binary: `sluice run --checkpoint FILE` resumes where its last
//! run stopped (state, batch ids, source position), and a server job resumes from its
//! checkpoint after a restart with its window state.

use std::time::Duration;

use serde_json::json;
use sluice_tests::{jsonl_records, sluice};

use super::harness::{call, create_and_start, eventually, job, new_tenant, start, start_at};

/// A deterministic job with a window (inverse path) and keyed state, on an unpaced generator.
const JOB: &str = r#"{
  "name": "checkpointed visits", "batch_interval": "1s", "checkpoint_interval": "2s",
  "modules": { "examples": "builtin:examples" },
  "source": { "generator": { "format": "visits", "lines_per_batch": 300, "seed": 11 } },
  "stages": [
    { "map": { "udf": "examples", "function": "parse_visit", "value": "i64" } },
    { "reduce_by_key_and_window": { "length": "5s", "slide": "1s", "reduce": { "builtin": "sum", "inverse": true }, "filter": "nonzero" } }
  ],
  "sink": { "jsonl": {} }
}"#;

#[test]
fn a_local_run_resumes_from_its_checkpoint_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("job.json");
    std::fs::write(&spec, JOB).unwrap();
    let spec = spec.to_str().unwrap();
    let whole = sluice(&["run", spec, "--batches", "12"], 120);
    assert!(whole.success, "{}", whole.stderr);
    let checkpoint = dir.path().join("ckpt.db");
    let checkpoint = checkpoint.to_str().unwrap();
    // Three runs of 4 batches each; each resumes where the last one stopped.
    let mut pieces = Vec::new();
    for upto in [4, 8, 12] {
        let out = sluice(
            &["run", spec, "--checkpoint", checkpoint, "--batches", &upto.to_string()],
            120,
        );
        assert!(out.success, "{}", out.stderr);
        pieces.extend(jsonl_records(&out.stdout));
    }
    let whole = jsonl_records(&whole.stdout);
    assert_eq!(whole.iter().map(|r| r.0).max(), Some(12));
    assert_eq!(pieces, whole, "three resumed runs give what one run gives");
    // A run after the last batch has nothing more to do.
    let again = sluice(&["run", spec, "--checkpoint", checkpoint, "--batches", "12"], 60);
    assert!(
        again.success && jsonl_records(&again.stdout).is_empty(),
        "{}",
        again.stdout
    );
    // A spec whose stateful stages changed is refused, and the checkpoint is left as it is.
    let changed = JOB.replace("\"length\": \"5s\"", "\"length\": \"6s\"");
    let changed_path = dir.path().join("changed.json");
    std::fs::write(&changed_path, changed).unwrap();
    let out = sluice(&["run", changed_path.to_str().unwrap(), "--checkpoint", checkpoint], 60);
    assert!(!out.success);
    assert!(out.stderr.contains("no longer match its checkpoint"), "{}", out.stderr);
    // A file that is not a checkpoint store is refused, not overwritten.
    let foreign = dir.path().join("foreign.db");
    std::fs::write(&foreign, b"not a database").unwrap();
    let out = sluice(&["run", spec, "--checkpoint", foreign.to_str().unwrap()], 60);
    assert!(
        !out.success && out.stderr.contains("not a checkpoint store"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&foreign).unwrap(), b"not a database");
}

#[test]
fn a_server_job_resumes_from_its_checkpoint_with_its_window_state() {
    let s = start();
    let a = new_tenant(&s, "acme");
    // 100 lines a batch into a 60 s count: after batch k the window holds 100 k lines, as long
    // as its state carries over restarts (k <= 600).
    let spec = json!({
        "name": "counted", "batch_interval": "100ms", "checkpoint_interval": "500ms",
        "source": { "generator": { "format": "words", "rate_per_s": 1000 } },
        "stages": [ { "count_by_window": { "length": "60s" } } ],
        "sink": { "print": {} }
    });
    let id = create_and_start(&s, &a, &spec);
    let counts = |s: &super::harness::Server| {
        let (_, out) = call("GET", &s.url(&format!("/api/v1/jobs/{id}/output")), Some(&a), None);
        out.as_array()
            .unwrap()
            .iter()
            .map(|r| (r["batch"].as_u64().unwrap(), r["value"].as_i64().unwrap()))
            .collect::<Vec<_>>()
    };
    eventually(Duration::from_secs(10), || Some(()).filter(|_| counts(&s).len() >= 8)).expect("batches");
    let before = counts(&s).last().unwrap().0;
    let s = start_at(s.terminate());
    let j = job(&s, &a, id);
    let restored = j["run"]["restored_from_batch"]
        .as_u64()
        .expect("resumed from a checkpoint");
    assert!(
        restored >= before,
        "the clean stop checkpointed its last batch: {restored} < {before}"
    );
    let after = eventually(Duration::from_secs(10), || Some(counts(&s)).filter(|c| c.len() >= 5)).unwrap();
    assert!(after.iter().all(|(b, _)| *b > restored), "batch ids go on: {after:?}");
    for (batch, count) in &after {
        assert_eq!(*count, 100 * *batch as i64, "batch {batch}: the window kept its state");
    }
    let (_, list) = call("GET", &s.url(&format!("/api/v1/jobs/{id}/checkpoints")), Some(&a), None);
    let list = list.as_array().unwrap();
    assert!(!list.is_empty() && list.len() <= 3, "{list:?}");
    assert!(list[0]["batch_id"].as_u64().unwrap() >= restored);
    // Deleting the checkpoints of a stopped job makes it start from scratch.
    assert_eq!(
        call("POST", &s.url(&format!("/api/v1/jobs/{id}/stop")), Some(&a), None).0,
        200
    );
    assert_eq!(
        call(
            "DELETE",
            &s.url(&format!("/api/v1/jobs/{id}/checkpoints")),
            Some(&a),
            None
        )
        .0,
        204
    );
    assert_eq!(
        call("POST", &s.url(&format!("/api/v1/jobs/{id}/start")), Some(&a), None).0,
        200
    );
    let fresh = eventually(Duration::from_secs(10), || Some(counts(&s)).filter(|c| !c.is_empty())).unwrap();
    assert_eq!(fresh[0].0, 1, "batch ids start at 1 again: {fresh:?}");
}
