//! Upgrade across a restart: a stateful job's reduce UDF is swapped to a new version while the
//! job is stopped, and at its next start the windowed state it checkpointed carries over (the
//! state is stored as data, by function, not by version): its table ends up equal to a run
//! that never stopped.

use std::time::Duration;

use serde_json::json;

use super::crash::{api_rows, clicks_job, fault_free, same_rows};
use super::harness::{call, eventually, job, start, upload};

const BATCHES: u64 = 300;

#[test]
fn a_reduce_udf_swapped_while_stopped_goes_on_from_the_checkpointed_state() {
    let clean = fault_free(BATCHES);

    let s = start();
    let (a, id) = clicks_job(&s, BATCHES);
    let url = |p: &str| s.url(&format!("/api/v1/jobs/{id}{p}"));
    let swap = |udf: &str| {
        call(
            "POST",
            &url("/swap"),
            Some(&a),
            Some((
                "application/json",
                json!({ "stage": 2, "udf": udf }).to_string().into_bytes(),
            )),
        )
    };
    assert_eq!(call("POST", &url("/start"), Some(&a), None).0, 200);
    eventually(Duration::from_secs(30), || {
        let (_, b) = call("GET", &url("/batches"), Some(&a), None);
        b.as_array()?.last()?["batch_id"].as_u64().filter(|&k| k >= 40)
    })
    .expect("40 batches");
    // A running job's reduce is not swapped under it.
    assert_eq!(upload(&s, &a, "examples", &sluice_tests::examples_v2()).1["version"], 2);
    let (status, body) = swap("examples@2");
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("stopped"), "{body}");

    assert_eq!(call("POST", &url("/stop"), Some(&a), None).0, 200);
    let stopped = eventually(Duration::from_secs(30), || {
        Some(job(&s, &a, id)).filter(|j| j["status"] == "stopped")
    })
    .expect("stopped");
    let last = stopped["run"]["last_checkpoint"]["batch_id"]
        .as_u64()
        .expect("a checkpoint at the stop");
    assert!(last < BATCHES, "stopped before the end: {stopped}");

    // A version without the function is refused, nothing changed.
    let (status, body) = swap("nosuch@1");
    assert_eq!(status, 400, "{body}");
    let (status, swapped) = swap("examples@2");
    assert_eq!(status, 200, "{swapped}");
    assert_eq!(swapped["udf"], "examples@2");
    assert_eq!(swapped["effective_batch"], last + 1);
    let stage_udfs = job(&s, &a, id)["stage_udfs"].clone();
    assert!(
        stage_udfs
            .as_array()
            .unwrap()
            .contains(&json!({ "stage": 2, "udf": "examples@2" })),
        "{stage_udfs}"
    );

    assert_eq!(call("POST", &url("/start"), Some(&a), None).0, 200);
    let done = eventually(Duration::from_secs(120), || {
        Some(job(&s, &a, id)).filter(|j| j["status"] == "stopped" && j["run"]["restored_from_batch"].is_u64())
    })
    .unwrap_or_else(|| panic!("the job did not finish: {}", job(&s, &a, id)));
    assert_eq!(done["run"]["restored_from_batch"], last, "{done}");
    assert!(done["last_error"].is_null(), "{done}");
    same_rows(
        &api_rows(&s, &a, id),
        &clean,
        "after the upgrade the windows go on from the checkpointed state",
    );
}
