use super::*;

fn rec(v: &str) -> Ingested {
    Ingested {
        key: None,
        value: v.as_bytes().to_vec(),
        timestamp_ms: None,
    }
}

fn take(buf: &IngestBuffer, values: &[&str]) -> Result<usize, Refused> {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(buf.take(values.iter().map(|v| rec(v)).collect()))
}

fn tick(batch_id: u64) -> Tick {
    Tick {
        batch_id,
        time_ms: batch_id as i64 * 1000,
    }
}

fn values(s: &mut HttpSource, batch_id: u64) -> Vec<String> {
    let b = s.next_batch(tick(batch_id)).unwrap();
    b.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap()).collect()
}

#[test]
fn a_request_that_does_not_fit_is_refused_whole() {
    let mut s = HttpSource::new(3, 1 << 20);
    let buf = s.ingest().unwrap();
    assert_eq!(take(&buf, &["a", "b"]), Ok(2));
    let Err(Refused::Full(full)) = take(&buf, &["c", "d"]) else {
        panic!("two records do not fit in one place")
    };
    assert_eq!(full.free, 1);
    assert_eq!(values(&mut s, 1), ["a", "b"], "nothing of the refused request got in");
    assert_eq!(take(&buf, &["c", "d", "e"]), Ok(3), "a cut batch frees the buffer");
}

#[test]
fn the_buffer_is_bounded_in_bytes_too() {
    let mut s = HttpSource::new(1000, 1000);
    let buf = s.ingest().unwrap();
    let big = "x".repeat(600);
    assert_eq!(take(&buf, &[&big]), Ok(1));
    let Err(Refused::Full(full)) = take(&buf, &[&big]) else {
        panic!("over the bytes")
    };
    assert_eq!((full.free_bytes, full.bytes_max), (1000 - 648, 1000));
    s.next_batch(tick(1)).unwrap();
    assert_eq!(take(&buf, &[&big]), Ok(1), "a cut batch frees the bytes");
}

fn durable(dir: &Path) -> HttpSource {
    HttpSource::durable(1000, 1 << 20, dir, 1 << 20).unwrap()
}

#[test]
fn a_durable_source_cuts_its_batches_again_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = durable(dir.path());
    let buf = s.ingest().unwrap();
    take(&buf, &["a", "b"]).unwrap();
    assert_eq!(values(&mut s, 1), ["a", "b"]);
    let checkpoint = s.position().unwrap();
    take(&buf, &["c"]).unwrap();
    assert_eq!(values(&mut s, 2), ["c"]);
    assert!(values(&mut s, 3).is_empty());
    take(&buf, &["d"]).unwrap();
    assert_eq!(values(&mut s, 4), ["d"]);
    take(&buf, &["e", "f"]).unwrap();
    // A crash: batch 1 was checkpointed, "e" and "f" were acknowledged and never cut.
    drop(buf);
    drop(s);
    let mut s = durable(dir.path());
    s.seek(&checkpoint).unwrap();
    let buf = s.ingest().unwrap();
    take(&buf, &["g"]).unwrap();
    assert_eq!(values(&mut s, 2), ["c"], "batch 2 as it was");
    assert!(values(&mut s, 3).is_empty(), "batch 3 was empty");
    assert_eq!(values(&mut s, 4), ["d"], "batch 4 as it was");
    assert_eq!(
        values(&mut s, 5),
        ["e", "f", "g"],
        "then what was acknowledged, in order"
    );
    assert!(values(&mut s, 6).is_empty());
}

#[test]
fn without_a_checkpoint_the_log_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = durable(dir.path());
    let buf = s.ingest().unwrap();
    take(&buf, &["a"]).unwrap();
    assert_eq!(values(&mut s, 1), ["a"]);
    take(&buf, &["b"]).unwrap();
    drop((buf, s));
    let mut s = durable(dir.path());
    assert_eq!(values(&mut s, 1), ["a"]);
    assert_eq!(values(&mut s, 2), ["b"]);
}

#[test]
fn what_no_checkpoint_covers_is_bounded_and_a_checkpoint_frees_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = HttpSource::durable(1000, 1 << 20, dir.path(), 200).unwrap();
    let buf = s.ingest().unwrap();
    let v = "v".repeat(100);
    take(&buf, &[&v]).unwrap();
    let Err(Refused::LogFull { uncovered, max: 200 }) = take(&buf, &[&v]) else {
        panic!("over ingest_log_bytes_max")
    };
    assert!(uncovered > 100);
    values(&mut s, 1);
    let p = s.position().unwrap();
    s.committed(&p);
    assert_eq!(take(&buf, &[&v]), Ok(1), "a checkpoint covers what came before");
}

#[test]
fn a_closed_source_takes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = durable(dir.path());
    let buf = s.ingest().unwrap();
    drop(s);
    assert_eq!(take(&buf, &["a"]), Err(Refused::Closed));
    assert_eq!(buf.room().free, 1000, "the refused request holds no room");
}
