//! What the Kafka path costs: the seed's scenario 2 (ERROR lines per minute: wasm filter, wasm
//! map, native sum by key) over the same log lines, from a Kafka topic of 4 partitions on a real
//! broker (Tansu, in memory, on loopback) and from a `batches` file, both into `text_files`,
//! through `sluice run`. Records/s of each, and their ratio, in one run. Then the sinks: every
//! record copied from the topic (no stages) into `text_files`, into a Kafka topic with the
//! idempotent producer, and with `exactly_once` (a transaction per batch).
//!
//! `cargo run --release -p sluice-tests --bin kafka-bench [LINES]` (default 1,000,000)

use std::process::Command;
use std::time::Instant;

use serde_json::json;
use sluice_tests::kafka_broker::Broker;
use sluice_tests::sluice_bin;

const PER_BATCH: usize = 100_000;

fn lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let level = ["ERROR", "INFO", "WARN", "INFO"][i % 4];
            format!("{}|{level}|request {i} took {} ms", 1_700_000_000 + i / 1000, i % 997)
        })
        .collect()
}

fn spec(source: serde_json::Value, out: &std::path::Path) -> serde_json::Value {
    let sink = json!({ "text_files": { "prefix": out.join("part").to_str().unwrap() } });
    sluice_tests::errors_per_minute(source, sink, "1s")
}

/// Runs `sluice run` of `spec` for `batches` batches: the records it read, and the sum of its
/// batches' processing times in seconds (reading the source, the stages, writing the sink), from
/// the supervisor's per-batch debug lines. A live source's batches wait for the clock; summing
/// processing times measures the path, not the pace.
fn run(dir: &std::path::Path, name: &str, spec: &serde_json::Value, batches: usize) -> (u64, f64) {
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, spec.to_string()).unwrap();
    let out = Command::new(sluice_bin())
        .args(["run", file.to_str().unwrap(), "--batches", &batches.to_string()])
        .env("RUST_LOG", "sluice::supervisor=debug")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let field = |line: &str, name: &str| -> Option<f64> {
        let rest = line.split(&format!("{name}=")).nth(1)?;
        rest.split([' ', ',']).next()?.parse().ok()
    };
    let (mut records, mut seconds) = (0u64, 0.0);
    for line in stderr.lines().filter(|l| l.contains("batch done")) {
        let n = field(line, "records_in").unwrap_or(0.0);
        if n > 0.0 {
            records += n as u64;
            seconds += field(line, "processing_ms").unwrap_or(0.0) / 1e3;
        }
    }
    (records, seconds)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let all = lines(n);
    let batches = n.div_ceil(PER_BATCH);

    // The batches file: PER_BATCH lines a batch.
    let mut file = String::new();
    for chunk in all.chunks(PER_BATCH) {
        file.push_str(&serde_json::to_string(chunk).unwrap());
        file.push('\n');
    }
    let path = dir.path().join("logs.jsonl");
    std::fs::write(&path, file).unwrap();

    let broker = Broker::start();
    broker.topic("log_topic", 4);
    let t = Instant::now();
    broker.produce_lines("log_topic", &all);
    let produced = t.elapsed().as_secs_f64();

    let out_b = dir.path().join("out-batches");
    let out_k = dir.path().join("out-kafka");
    std::fs::create_dir_all(&out_b).unwrap();
    std::fs::create_dir_all(&out_k).unwrap();
    let from_file = run(
        dir.path(),
        "batches",
        &spec(json!({ "batches": { "path": path.to_str().unwrap() } }), &out_b),
        batches,
    );
    let kafka = json!({ "kafka": {
        "bootstrap_servers": broker.addr, "topics": ["log_topic"], "max_records_per_partition": PER_BATCH / 4 } });
    let mut kafka_spec = spec(kafka, &out_k);
    kafka_spec["batch_interval"] = json!("200ms");
    let from_kafka = run(dir.path(), "kafka", &kafka_spec, batches * 4 + 10);
    assert_eq!(from_file.0, n as u64, "the file run read every line");
    assert_eq!(from_kafka.0, n as u64, "the kafka run read every record");

    println!("## Scenario 2 from Kafka and from a file, {n} lines, `sluice run` into text_files\n");
    println!("| source | records | seconds of batch processing (source + stages + sink) | records/s |");
    println!("| --- | --- | --- | --- |");
    for (what, (records, secs)) in [
        (format!("batches file, {PER_BATCH} lines a batch"), from_file),
        (
            format!("kafka, 4 partitions, at most {} a partition a batch", PER_BATCH / 4),
            from_kafka,
        ),
    ] {
        println!("| {what} | {records} | {secs:.2} | {:.0} |", records as f64 / secs);
    }
    println!(
        "\nkafka / file: {:.2}x the time; producing the {n} records took {produced:.2} s ({:.0} records/s, idempotent producer)",
        from_kafka.1 / from_file.1,
        n as f64 / produced
    );

    // The sinks: a copy of every record, from the same topic.
    let copy = |sink: serde_json::Value| {
        json!({
            "name": "copy", "batch_interval": "200ms",
            "source": { "kafka": {
                "bootstrap_servers": broker.addr, "topics": ["log_topic"], "max_records_per_partition": PER_BATCH / 4 } },
            "sink": sink
        })
    };
    let out_c = dir.path().join("out-copy");
    std::fs::create_dir_all(&out_c).unwrap();
    broker.topic("copy_once", 4);
    broker.topic("copy_txn", 4);
    let runs = [
        (
            "text_files",
            copy(json!({ "text_files": { "prefix": out_c.join("part").to_str().unwrap() } })),
        ),
        (
            "kafka, idempotent producer (at least once)",
            copy(json!({ "kafka": { "bootstrap_servers": broker.addr, "topic": "copy_once" } })),
        ),
        (
            "kafka, exactly_once (a transaction per batch)",
            copy(json!({ "kafka": { "bootstrap_servers": broker.addr, "topic": "copy_txn", "exactly_once": true } })),
        ),
    ];
    println!("\n## Every record copied from the topic into a sink, {n} records\n");
    println!("| sink | records | seconds of batch processing | records/s |");
    println!("| --- | --- | --- | --- |");
    for (i, (what, spec)) in runs.iter().enumerate() {
        let (records, secs) = run(dir.path(), &format!("copy{i}"), spec, batches * 4 + 10);
        assert_eq!(records, n as u64, "the copy into {what} read every record");
        println!("| {what} | {records} | {secs:.2} | {:.0} |", records as f64 / secs);
    }
}
