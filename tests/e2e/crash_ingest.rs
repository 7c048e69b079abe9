//! `kill -9` of the server, 20 times, while records stream in over HTTP: every record the
//! server acknowledged with 202 ends up in the job's output table exactly once, a refused one
//! never, one whose answer was lost with the server at most once, and nothing else is there.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::crash::{Rng, integrity_ok};
use super::harness::{Server, call, eventually, job, new_tenant, post_spec, try_start};

const PER_REQUEST: u64 = 100;

/// What became of each request's records (record `i` is the line `r{i}`).
#[derive(Default)]
struct Sent {
    acked: Vec<u64>,
    refused: Vec<u64>,
    unsure: Vec<u64>,
}

/// Sends requests of `PER_REQUEST` numbered records to whatever `url` is now, until `stop`.
fn sender(url: Arc<Mutex<String>>, token: String, stop: Arc<AtomicBool>) -> Sent {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut sent = Sent::default();
    let mut next = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let body: String = (next..next + PER_REQUEST).map(|i| format!("r{i}\n")).collect();
        let target = url.lock().unwrap().clone();
        let answer = agent
            .post(&target)
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "text/plain")
            .send(body.as_bytes());
        match answer {
            Ok(r) if r.status().as_u16() == 202 => sent.acked.push(next),
            // 409 while the job resumes after a restart, 429/503 under pressure: none taken.
            Ok(r) => {
                assert!(
                    [409, 429, 503].contains(&r.status().as_u16()),
                    "unexpected answer {}",
                    r.status()
                );
                sent.refused.push(next);
            }
            Err(_) => sent.unsure.push(next),
        }
        next += PER_REQUEST;
        std::thread::sleep(Duration::from_millis(15));
    }
    sent
}

/// The values of the job's rows after `cursor`, which moves on.
fn rows_after(s: &Server, token: &str, id: i64, cursor: &mut (i64, i64), out: &mut Vec<String>) {
    loop {
        let (status, rows) = call(
            "GET",
            &s.url(&format!(
                "/api/v1/jobs/{id}/rows?after={}&after_seq={}&limit=10000",
                cursor.0, cursor.1
            )),
            Some(token),
            None,
        );
        assert_eq!(status, 200, "{rows}");
        let rows = rows.as_array().unwrap();
        for r in rows {
            out.push(r["value"].as_str().unwrap().to_owned());
            *cursor = (r["batch"].as_i64().unwrap(), r["seq"].as_i64().unwrap());
        }
        if rows.len() < 10000 {
            return;
        }
    }
}

#[test]
fn every_record_acknowledged_over_http_is_in_the_table_once_across_kill_9() {
    let mut s = try_start(tempfile::tempdir().unwrap(), &[], &[]).unwrap();
    let a = new_tenant(&s, "acme");
    let spec = json!({
        "name": "ingest", "batch_interval": "200ms", "checkpoint_interval": "1s",
        "source": { "http": {} }, "stages": [],
        "sink": { "sqlite": { "table": "got" } }
    });
    let (status, created) = post_spec(&s, "/api/v1/jobs", &a, &spec);
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        call("POST", &s.url(&format!("/api/v1/jobs/{id}/start")), Some(&a), None).0,
        200
    );
    let ingest = |s: &Server| s.url(&format!("/api/v1/jobs/{id}/ingest"));
    let url = Arc::new(Mutex::new(ingest(&s)));
    let stop = Arc::new(AtomicBool::new(false));
    let sending = {
        let (url, token, stop) = (url.clone(), a.clone(), stop.clone());
        std::thread::spawn(move || sender(url, token, stop))
    };
    let mut rng = Rng::new();
    let batches = |s: &Server| {
        let (_, b) = call("GET", &s.url(&format!("/api/v1/jobs/{id}/batches")), Some(&a), None);
        b.as_array().and_then(|b| b.last()).and_then(|r| r["batch_id"].as_u64())
    };
    for _ in 0..20 {
        eventually(Duration::from_secs(30), || batches(&s)).expect("the job runs after the restart");
        std::thread::sleep(Duration::from_millis(rng.below(1500)));
        // SAFETY: kill(2) with the pid of our own child process.
        assert_eq!(unsafe { libc::kill(s.pid() as libc::pid_t, libc::SIGKILL) }, 0);
        let (_, dir) = s.wait_exit(Duration::from_secs(10)).ok().expect("killed");
        s = try_start(dir, &[], &[]).unwrap();
        *url.lock().unwrap() = ingest(&s);
    }
    eventually(Duration::from_secs(30), || batches(&s)).expect("the job runs after the last restart");
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let sent = sending.join().unwrap();
    assert!(
        sent.acked.len() >= 100,
        "only {} requests acknowledged: the test proves little",
        sent.acked.len()
    );

    let records = |starts: &[u64]| -> Vec<String> {
        starts
            .iter()
            .flat_map(|&n| (n..n + PER_REQUEST).map(|i| format!("r{i}")))
            .collect()
    };
    let acked = records(&sent.acked);
    let (mut cursor, mut got) = ((0, i64::MAX), Vec::new());
    let mut counts: HashMap<String, u32> = HashMap::new();
    eventually(Duration::from_secs(60), || {
        let before = got.len();
        rows_after(&s, &a, id, &mut cursor, &mut got);
        for v in &got[before..] {
            *counts.entry(v.clone()).or_default() += 1;
        }
        acked.iter().all(|r| counts.contains_key(r)).then_some(())
    })
    .unwrap_or_else(|| {
        let missing: Vec<_> = acked.iter().filter(|r| !counts.contains_key(*r)).take(10).collect();
        panic!(
            "{} of {} acknowledged records never came out, e.g. {missing:?}",
            acked.iter().filter(|r| !counts.contains_key(*r)).count(),
            acked.len()
        )
    });
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(twice.is_empty(), "records in the table more than once: {twice:?}");
    for r in records(&sent.refused) {
        assert!(!counts.contains_key(&r), "{r} was refused, yet it is in the table");
    }
    let unsure = records(&sent.unsure);
    let known = acked.len() + unsure.iter().filter(|r| counts.contains_key(*r)).count();
    assert_eq!(counts.len(), known, "the table holds records nobody sent");
    eprintln!(
        "{} records acknowledged, {} refused, {} unanswered ({} of them in the table)",
        acked.len(),
        sent.refused.len() as u64 * PER_REQUEST,
        unsure.len(),
        known - acked.len()
    );
    assert_eq!(job(&s, &a, id)["status"], "running");
    let data = s.dir().to_owned();
    for db in ["registry.db", "checkpoints.db", "tenants/2.db"] {
        integrity_ok(&data.join(db));
    }
}

/// Dead letters are part of the batch's commit: after a `kill -9` the job runs its batches
/// again from the ingest log, refuses the same records again, and each is still reported once.
#[test]
fn a_refused_record_is_reported_once_across_kill_9() {
    let mut s = try_start(tempfile::tempdir().unwrap(), &[], &[]).unwrap();
    let a = new_tenant(&s, "acme");
    assert_eq!(
        super::harness::upload(&s, &a, "examples", sluice_udf_artifacts::EXAMPLES).0,
        201
    );
    let spec = json!({
        "name": "picky", "batch_interval": "100ms", "checkpoint_interval": "60s", "on_bad_record": "skip",
        "source": { "http": {} },
        "stages": [ { "map": { "udf": "examples", "function": "parse_visit", "value": "i64" } } ],
        "sink": { "sqlite": { "table": "visits" } }
    });
    let (status, created) = post_spec(&s, "/api/v1/jobs", &a, &spec);
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let url = |s: &Server, p: &str| s.url(&format!("/api/v1/jobs/{id}{p}"));
    assert_eq!(call("POST", &url(&s, "/start"), Some(&a), None).0, 200);
    let send = |s: &Server, body: &str| {
        call(
            "POST",
            &url(s, "/ingest"),
            Some(&a),
            Some(("text/plain", body.as_bytes().to_vec())),
        )
        .0
    };
    assert_eq!(send(&s, "u1,1,/a\nbad one\nu2,2,/b\nbad two\n"), 202);
    let dead = |s: &Server| call("GET", &url(s, "/dead-letters"), Some(&a), None).1;
    eventually(Duration::from_secs(10), || (dead(&s)["total"] == 2).then_some(()))
        .unwrap_or_else(|| panic!("two dead letters: {}", dead(&s)));
    // No checkpoint yet: after the kill the job runs every batch again from its ingest log.
    // SAFETY: kill(2) with the pid of our own child process.
    assert_eq!(unsafe { libc::kill(s.pid() as libc::pid_t, libc::SIGKILL) }, 0);
    let (_, dir) = s.wait_exit(Duration::from_secs(10)).ok().expect("killed");
    s = try_start(dir, &[], &[]).unwrap();
    let replayed = eventually(Duration::from_secs(30), || {
        let (_, b) = call("GET", &url(&s, "/batches"), Some(&a), None);
        b.as_array()
            .filter(|b| b.iter().any(|r| r["dead_letters"].as_u64() > Some(0)))
            .map(|_| ())
    });
    assert!(
        replayed.is_some(),
        "the batches ran again and refused the records again"
    );
    let d = dead(&s);
    assert_eq!(d["total"], 2, "each refused record once: {d}");
    let values: Vec<&str> = d["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["bad one", "bad two"]);
    let (_, rows) = call("GET", &url(&s, "/rows"), Some(&a), None);
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    // A new run (from the checkpoint its stop wrote) still shows them: they are stored.
    assert_eq!(call("POST", &url(&s, "/stop"), Some(&a), None).0, 200);
    assert_eq!(call("POST", &url(&s, "/start"), Some(&a), None).0, 200);
    assert_eq!(dead(&s)["total"], 2, "{}", dead(&s));
    assert_eq!(send(&s, "bad three\n"), 202);
    eventually(Duration::from_secs(10), || (dead(&s)["total"] == 3).then_some(()))
        .unwrap_or_else(|| panic!("three dead letters: {}", dead(&s)));
}
