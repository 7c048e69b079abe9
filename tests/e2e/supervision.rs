//! The job supervisor through the real server: start and stop under concurrency, shutdown with
//! live readers, resumption after SIGTERM and SIGINT, hot-swaps that survive a restart, host
//! panics and crash loops contained, dead letters kept, ids never reused. Each test reproduces
//! a defect the hostile-tenant review found (issue 7, items 1, 4, 5, 6, 7, 8, 10, 18).

use std::io::{BufRead, BufReader};
use std::time::Duration;

use serde_json::{Value, json};

use super::harness::{
    Server, agent, call, code, create_and_start, eventually, job, new_tenant, post_spec, start, start_at, try_start,
    upload, wait_status,
};

/// Scenario 1 on a paced generator: batches every 100 ms.
fn visits(name: &str) -> Value {
    json!({
        "name": name, "batch_interval": "100ms",
        "source": { "generator": { "format": "visits", "rate_per_s": 1000 } },
        "stages": [ { "map": { "udf": "examples@latest", "function": "parse_visit", "value": "i64" } }, { "reduce_by_key": { "builtin": "sum" } } ],
        "sink": { "print": {} }
    })
}

fn tenant_with_examples(s: &Server, name: &str) -> String {
    let t = new_tenant(s, name);
    assert_eq!(upload(s, &t, "examples", sluice_udf_artifacts::EXAMPLES).0, 201);
    t
}

fn batches(s: &Server, token: &str, id: i64) -> Vec<Value> {
    call("GET", &s.url(&format!("/api/v1/jobs/{id}/batches")), Some(token), None)
        .1
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Item 5: of 16 concurrent starts exactly one succeeds; the run that did not win never writes
/// `stopped` over the one that runs, so the job is resumed after a restart. Stops race the same
/// way.
#[test]
fn concurrent_starts_and_stops_give_one_run_and_a_true_status() {
    let s = start();
    let a = tenant_with_examples(&s, "acme");
    let (_, created) = post_spec(&s, "/api/v1/jobs", &a, &visits("racer"));
    let id = created["id"].as_i64().unwrap();
    let url = s.url(&format!("/api/v1/jobs/{id}/start"));
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| call("POST", &url, Some(&a), None)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = answers.iter().filter(|(st, _)| *st == 200).count();
    assert_eq!(ok, 1, "exactly one start wins: {answers:?}");
    for (st, body) in answers.iter().filter(|(st, _)| *st != 200) {
        assert_eq!((*st, code(body)), (409, "running"), "{body}");
    }
    let ran = eventually(Duration::from_secs(5), || {
        Some(()).filter(|_| batches(&s, &a, id).len() >= 3)
    });
    assert!(ran.is_some(), "the job runs");
    assert_eq!(job(&s, &a, id)["status"], "running");

    // A restart resumes it: no losing run wrote `stopped`.
    let dir = s.terminate();
    let s = start_at(dir);
    assert_eq!(job(&s, &a, id)["status"], "running");
    let ran = eventually(Duration::from_secs(5), || {
        Some(()).filter(|_| batches(&s, &a, id).len() >= 3)
    });
    assert!(ran.is_some(), "the job runs again after the restart");

    // 16 concurrent stops: all answer, the job is stopped and stays stopped after a restart.
    let url = s.url(&format!("/api/v1/jobs/{id}/stop"));
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| call("POST", &url, Some(&a), None)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|(st, _)| *st == 200), "{answers:?}");
    assert_eq!(job(&s, &a, id)["status"], "stopped");
    let n = batches(&s, &a, id).len();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(batches(&s, &a, id).len(), n, "a stopped job makes no batches");
    let s = start_at(s.terminate());
    assert_eq!(job(&s, &a, id)["status"], "stopped", "a stopped job is not resumed");
}

/// Items 4 and 6: SIGTERM and SIGINT end the server within 5 s even with a client reading the
/// live output stream, and every job that was running is resumed at the next start.
#[test]
fn shutdown_is_bounded_with_a_live_reader_and_running_jobs_resume() {
    let mut s = start();
    let a = tenant_with_examples(&s, "acme");
    let id = create_and_start(&s, &a, &visits("survivor"));
    for (round, signal) in [libc::SIGTERM, libc::SIGINT, libc::SIGINT, libc::SIGTERM, libc::SIGINT]
        .into_iter()
        .enumerate()
    {
        // A live reader holds a connection open on the output stream.
        let resp = agent()
            .get(&s.url(&format!("/api/v1/jobs/{id}/output/stream")))
            .header("Authorization", &format!("Bearer {a}"))
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let reader = BufReader::new(resp.into_body().into_reader());
            for line in reader.lines() {
                if line.is_err() || tx.send(()).is_err() {
                    break;
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the stream delivers records");
        let (dir, exit, took) = s.signal(signal);
        assert!(exit.success(), "round {round}: clean exit: {exit:?}");
        assert!(took < Duration::from_secs(5), "round {round}: exit took {took:?}");
        s = start_at(dir);
        let j = job(&s, &a, id);
        assert_eq!(j["status"], "running", "round {round}: resumed: {j}");
        let ran = eventually(Duration::from_secs(5), || {
            Some(()).filter(|_| batches(&s, &a, id).len() >= 2)
        });
        assert!(ran.is_some(), "round {round}: the job runs after the restart");
    }
}

/// Item 8: a restart runs the version a hot-swap put in, not the one in the spec.
#[test]
fn a_restart_keeps_the_swapped_version() {
    let s = start();
    let a = tenant_with_examples(&s, "acme");
    let v2 = wat::parse_str(super::server::PARSE_VISIT_V2).unwrap();
    assert_eq!(upload(&s, &a, "examples", &v2).1["version"], 2);
    let mut spec = visits("swapped");
    spec["stages"][0]["map"]["udf"] = json!("examples@1");
    let id = create_and_start(&s, &a, &spec);
    let (status, swapped) = call(
        "POST",
        &s.url(&format!("/api/v1/jobs/{id}/swap")),
        Some(&a),
        Some((
            "application/json",
            json!({ "stage": 0, "udf": "examples@2" }).to_string().into_bytes(),
        )),
    );
    assert_eq!(status, 200, "{swapped}");
    assert_eq!(
        job(&s, &a, id)["stage_udfs"],
        json!([{ "stage": 0, "udf": "examples@2" }])
    );
    let s = start_at(s.terminate());
    let out = eventually(Duration::from_secs(10), || {
        let (_, out) = call("GET", &s.url(&format!("/api/v1/jobs/{id}/output")), Some(&a), None);
        out.as_array().filter(|o| !o.is_empty()).cloned()
    })
    .expect("output after the restart");
    assert!(
        out.iter().all(|r| r["key"] == "v2"),
        "after the restart every batch runs v2: {out:?}"
    );
}

/// Item 10: a host panic inside a job fails that job (with the panic's message), leaves the
/// server and its other jobs running, and the job is not restarted at the next boot.
#[test]
fn a_host_panic_fails_its_job_only_and_is_not_resumed() {
    let env = [("SLUICE_FAILPOINT", "panic:panicky")];
    let s = try_start(tempfile::tempdir().unwrap(), &[], &env).unwrap();
    let a = tenant_with_examples(&s, "acme");
    let calm = create_and_start(&s, &a, &visits("calm"));
    let panicky = create_and_start(&s, &a, &visits("panicky"));
    let failed = wait_status(&s, &a, panicky, "failed", Duration::from_secs(10));
    let error = failed["last_error"].as_str().unwrap();
    assert!(
        error.contains("internal error") && error.contains("failpoint"),
        "{error}"
    );
    assert_eq!(call("GET", &s.url("/api/v1/health"), None, None).0, 200);
    let n = batches(&s, &a, calm).len();
    std::thread::sleep(Duration::from_millis(500));
    assert!(batches(&s, &a, calm).len() > n, "the other job goes on");
    let s = start_at(s.terminate());
    assert_eq!(job(&s, &a, panicky)["status"], "failed", "a failed job is not resumed");
    assert_eq!(job(&s, &a, calm)["status"], "running");
}

/// Item 1: a job that takes the whole process down (here a failpoint aborts it in the job's
/// first batch; before admission, a spec asking for a 560 TB batch did) is restarted by at most
/// 3 boots in a row; the next boot marks it failed and stays up.
#[test]
fn a_job_that_crashes_the_server_is_failed_after_three_boots() {
    let env = [("SLUICE_FAILPOINT", "abort:crasher")];
    let s = try_start(tempfile::tempdir().unwrap(), &[], &env).unwrap();
    let a = tenant_with_examples(&s, "acme");
    let (_, created) = post_spec(&s, "/api/v1/jobs", &a, &visits("crasher"));
    let id = created["id"].as_i64().unwrap();
    // The start answers, then the first batch aborts the process.
    let _ = call("POST", &s.url(&format!("/api/v1/jobs/{id}/start")), Some(&a), None);
    let (exit, mut dir) = s
        .wait_exit(Duration::from_secs(20))
        .ok()
        .expect("the failpoint aborts the server");
    assert!(!exit.success());
    let mut crashes = 1;
    let s = loop {
        // A boot crashes when the resumed job's first batch aborts it: after it began to
        // listen, or before (the job resumes first, so a fast batch beats the listen line).
        let crashed = match try_start(dir, &[], &env) {
            Ok(s) => match s.wait_exit(Duration::from_secs(3)) {
                Ok((_, d)) => d,
                Err(s) => break s,
            },
            Err((_, d)) => d,
        };
        crashes += 1;
        dir = crashed;
        assert!(crashes <= 4, "the server keeps crashing");
    };
    assert_eq!(crashes, 4, "the first crash and three boots that restarted the job");
    let failed = job(&s, &a, id);
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("crashed the server 3 times"),
        "{failed}"
    );
    assert_eq!(call("GET", &s.url("/api/v1/health"), None, None).0, 200);
}

/// Item 7: refused records are kept per job (bounded), with stage, batch, record and error, and
/// counted in the job's status.
#[test]
fn refused_records_are_kept_as_dead_letters() {
    let s = start();
    let a = tenant_with_examples(&s, "acme");
    let spec = json!({
        "name": "picky", "batch_interval": "100ms", "on_bad_record": "skip",
        "source": { "http": {} },
        "stages": [ { "map": { "udf": "examples", "function": "parse_visit", "value": "i64" } } ],
        "sink": { "print": {} }
    });
    let id = create_and_start(&s, &a, &spec);
    let (status, _) = call(
        "POST",
        &s.url(&format!("/api/v1/jobs/{id}/ingest")),
        Some(&a),
        Some(("text/plain", b"u1,1,/a\nnot a visit\nu2,2,/b\n".to_vec())),
    );
    assert_eq!(status, 202);
    let dead = eventually(Duration::from_secs(5), || {
        let (_, d) = call(
            "GET",
            &s.url(&format!("/api/v1/jobs/{id}/dead-letters")),
            Some(&a),
            None,
        );
        Some(d).filter(|d| d["total"] == 1)
    })
    .expect("one dead letter");
    let letter = &dead["dead_letters"][0];
    assert_eq!(letter["stage"], "stages[0].map");
    assert_eq!(letter["value"], "not a visit");
    assert!(letter["batch_id"].as_u64().unwrap() >= 1);
    assert!(
        letter["error"].as_str().unwrap().contains("expected 3 fields"),
        "{letter}"
    );
    assert_eq!(job(&s, &a, id)["run"]["dead_letters_total"], 1);
    let (_, out) = call("GET", &s.url(&format!("/api/v1/jobs/{id}/output")), Some(&a), None);
    assert_eq!(out.as_array().unwrap().len(), 2, "the good records went on");
}

/// Item 18: ids are never reused, and nothing of a deleted job is shown for a new one.
#[test]
fn a_deleted_jobs_id_and_output_never_come_back() {
    let s = start();
    let a = tenant_with_examples(&s, "acme");
    let old = create_and_start(&s, &a, &visits("old"));
    let out = eventually(Duration::from_secs(5), || {
        let (_, out) = call("GET", &s.url(&format!("/api/v1/jobs/{old}/output")), Some(&a), None);
        out.as_array().filter(|o| !o.is_empty()).cloned()
    });
    assert!(out.is_some());
    assert_eq!(
        call("POST", &s.url(&format!("/api/v1/jobs/{old}/stop")), Some(&a), None).0,
        200
    );
    assert_eq!(
        call("DELETE", &s.url(&format!("/api/v1/jobs/{old}")), Some(&a), None).0,
        204
    );
    let (_, created) = post_spec(&s, "/api/v1/jobs", &a, &visits("new"));
    let new = created["id"].as_i64().unwrap();
    assert_ne!(new, old);
    let (status, body) = call("GET", &s.url(&format!("/api/v1/jobs/{old}/output")), Some(&a), None);
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (_, out) = call("GET", &s.url(&format!("/api/v1/jobs/{new}/output")), Some(&a), None);
    assert_eq!(out, json!([]), "the new job shows nothing of the old one");
    // And after a restart too (AUTOINCREMENT survives it).
    let s = start_at(s.terminate());
    assert_eq!(
        call("DELETE", &s.url(&format!("/api/v1/jobs/{new}")), Some(&a), None).0,
        204
    );
    let (_, created) = post_spec(&s, "/api/v1/jobs", &a, &visits("newer"));
    assert!(created["id"].as_i64().unwrap() > new);
}
