//! A full disk while a job writes its checkpoints and its sink (an injected ENOSPC at the
//! storage layer: `SLUICE_FAILPOINT=enospc:FILE` fails every checkpoint, sink and ingest-log
//! write while FILE exists, as a full disk would): the job pauses with `disk_full`, no new
//! checkpoint appears, HTTP ingest is refused with 503 and nothing taken, the API stays up;
//! once there is room again the job resumes from its last good checkpoint by itself, and its
//! table ends up equal to a run that never saw the fault.

use std::time::Duration;

use serde_json::json;

use super::crash::{api_rows, clicks_job, fault_free, integrity_ok, same_rows};
use super::harness::{call, code, eventually, job, post_spec, try_start};

const BATCHES: u64 = 400;

#[test]
fn a_full_disk_pauses_the_job_and_it_resumes_from_its_last_checkpoint_when_room_returns() {
    let scratch = tempfile::tempdir().unwrap();
    let clean = fault_free(BATCHES);

    let full = scratch.path().join("disk-is-full");
    let failpoint = format!("enospc:{}", full.display());
    let s = try_start(tempfile::tempdir().unwrap(), &[], &[("SLUICE_FAILPOINT", &failpoint)]).unwrap();
    let (a, id) = clicks_job(&s, BATCHES);
    // An http job of the same tenant: its ingest log is on the same disk.
    let (status, http) = post_spec(
        &s,
        "/api/v1/jobs",
        &a,
        &json!({ "name": "in", "batch_interval": "100ms", "source": { "http": {} }, "stages": [], "sink": { "print": {} } }),
    );
    assert_eq!(status, 201, "{http}");
    let http = http["id"].as_i64().unwrap();
    let url = |id: i64, p: &str| s.url(&format!("/api/v1/jobs/{id}{p}"));
    assert_eq!(call("POST", &url(http, "/start"), Some(&a), None).0, 200);
    assert_eq!(call("POST", &url(id, "/start"), Some(&a), None).0, 200);
    let checkpoints = || {
        let (_, c) = call("GET", &url(id, "/checkpoints"), Some(&a), None);
        c.as_array().cloned().unwrap_or_default()
    };
    eventually(Duration::from_secs(30), || (!checkpoints().is_empty()).then_some(())).expect("a first checkpoint");

    // The disk fills up.
    std::fs::write(&full, b"").unwrap();
    let paused = eventually(Duration::from_secs(30), || {
        Some(job(&s, &a, id)).filter(|j| j["status"] == "paused")
    })
    .unwrap_or_else(|| panic!("the job did not pause: {}", job(&s, &a, id)));
    assert_eq!(paused["run"]["paused"]["code"], "disk_full", "{paused}");
    assert!(
        paused["run"]["paused"]["reason"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{paused}"
    );
    let before = checkpoints();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(checkpoints(), before, "no checkpoint is written while the disk is full");
    assert_eq!(
        job(&s, &a, id)["status"],
        "paused",
        "it stays paused while the disk is full"
    );
    let (status, body) = call(
        "POST",
        &url(http, "/ingest"),
        Some(&a),
        Some(("text/plain", b"a\nb\n".to_vec())),
    );
    assert_eq!((status, code(&body)), (503, "disk_full"), "{body}");
    assert_eq!(
        call("GET", &s.url("/api/v1/health"), None, None).0,
        200,
        "the API stays up"
    );
    assert_eq!(call("GET", &s.url("/api/v1/jobs"), Some(&a), None).0, 200);

    // Room again: it resumes by itself and finishes.
    std::fs::remove_file(&full).unwrap();
    let done = eventually(Duration::from_secs(120), || {
        Some(job(&s, &a, id)).filter(|j| j["status"] == "stopped")
    })
    .unwrap_or_else(|| panic!("the job did not resume and finish: {}", job(&s, &a, id)));
    assert!(done["last_error"].is_null(), "{done}");
    assert_eq!(
        call(
            "POST",
            &url(http, "/ingest"),
            Some(&a),
            Some(("text/plain", b"a\nb\n".to_vec()))
        )
        .0,
        202,
        "ingest takes records again"
    );
    same_rows(
        &api_rows(&s, &a, id),
        &clean,
        "after a full disk, the table holds each batch exactly once",
    );
    for db in ["registry.db", "checkpoints.db", "tenants/2.db"] {
        integrity_ok(&s.dir().join(db));
    }
}
