//! A poison record: a UDF that traps on one specific record. Under `on_bad_record: skip` the
//! call is split until the record stands alone; it goes to the dead letters with the trap, its
//! batch and its value, and every other record is processed. A stream of them (more than
//! `max_refused.in_a_row`) fails the job with the reason.

use std::time::Duration;

use serde_json::json;

use super::harness::{call, create_and_start, eventually, job, new_tenant, start, upload, wait_status};

#[test]
fn a_poison_record_goes_to_the_dead_letters_and_a_stream_of_them_fails_the_job() {
    let s = start();
    let a = new_tenant(&s, "acme");
    assert_eq!(upload(&s, &a, "hostile", sluice_udf_artifacts::HOSTILE).0, 201);
    let id = create_and_start(
        &s,
        &a,
        &json!({
            "name": "poisoned", "batch_interval": "200ms", "on_bad_record": "skip",
            "max_refused": { "in_a_row": 3, "per_batch": 50 },
            "source": { "http": {} },
            "stages": [ { "map": { "udf": "hostile", "function": "trap_on_poison" } } ],
            "sink": { "print": {} }
        }),
    );
    let url = |p: &str| s.url(&format!("/api/v1/jobs/{id}{p}"));
    let lines: Vec<String> = (0..5000)
        .map(|i| {
            if i == 1234 || i == 4321 {
                "poison".to_owned()
            } else {
                format!("r{i}")
            }
        })
        .collect();
    let (status, _) = call(
        "POST",
        &url("/ingest"),
        Some(&a),
        Some(("text/plain", lines.join("\n").into_bytes())),
    );
    assert_eq!(status, 202);
    let dead = eventually(Duration::from_secs(10), || {
        let (_, d) = call("GET", &url("/dead-letters"), Some(&a), None);
        Some(d).filter(|d| d["total"] == 2)
    })
    .unwrap_or_else(|| {
        panic!(
            "two dead letters: {}",
            call("GET", &url("/dead-letters"), Some(&a), None).1
        )
    });
    for letter in dead["dead_letters"].as_array().unwrap() {
        assert_eq!(letter["value"], "poison", "{letter}");
        assert_eq!(letter["stage"], "stages[0].map");
        assert!(letter["batch_id"].as_u64().unwrap() >= 1);
        let error = letter["error"].as_str().unwrap();
        assert!(error.contains("trap") && error.contains("hostile@1"), "{error}");
    }
    let taken = eventually(Duration::from_secs(10), || {
        let (_, batches) = call("GET", &url("/batches"), Some(&a), None);
        let out: u64 = batches
            .as_array()?
            .iter()
            .map(|b| b["stages"][0]["records_out"].as_u64().unwrap_or(0))
            .sum();
        (out == 4998).then_some(out)
    });
    assert_eq!(taken, Some(4998), "every other record was processed");
    assert_eq!(
        job(&s, &a, id)["status"],
        "running",
        "a poison record now and then is fine"
    );

    // Four poison records in a row: over max_refused.in_a_row.
    let (status, _) = call(
        "POST",
        &url("/ingest"),
        Some(&a),
        Some(("text/plain", b"ok\npoison\npoison\npoison\npoison\nok\n".to_vec())),
    );
    assert_eq!(status, 202);
    let failed = wait_status(&s, &a, id, "failed", Duration::from_secs(10));
    let reason = failed["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("4 records in a row")
            && reason.contains("max_refused.in_a_row (3)")
            && reason.contains("poison"),
        "{failed}"
    );
    // The server and the tenant's other work go on.
    assert_eq!(call("GET", &s.url("/api/v1/health"), None, None).0, 200);
}

#[test]
fn max_refused_is_checked_at_admission() {
    let s = start();
    let a = new_tenant(&s, "acme");
    let spec = |policy: &str, limits: serde_json::Value| {
        json!({
            "name": "x", "batch_interval": "1s", "on_bad_record": policy, "max_refused": limits,
            "source": { "http": {} }, "stages": [], "sink": { "print": {} }
        })
    };
    let (status, body) = super::harness::post_spec(&s, "/api/v1/jobs", &a, &spec("fail", json!({ "per_batch": 3 })));
    assert_eq!(status, 400);
    assert_eq!(body["error"]["problems"][0]["path"], "max_refused", "{body}");
    let (status, body) = super::harness::post_spec(&s, "/api/v1/jobs", &a, &spec("skip", json!({ "in_a_row": 0 })));
    assert_eq!(status, 400);
    assert_eq!(body["error"]["problems"][0]["path"], "max_refused.in_a_row", "{body}");
}
