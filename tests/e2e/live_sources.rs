//! Live sources through the real binary on loopback: a TCP server it connects to (and
//! reconnects to after a drop), and a directory it watches.

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use sluice_tests::{jsonl_records, sluice};

fn counts(stdout: &str) -> std::collections::BTreeMap<String, i64> {
    let mut total = std::collections::BTreeMap::new();
    for (_, k, v) in jsonl_records(stdout) {
        *total.entry(k.unwrap()).or_insert(0) += v.as_i64().unwrap();
    }
    total
}

#[test]
fn socket_source_reads_lines_and_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("socket.json");
    std::fs::write(
        &job,
        format!(
            r#"{{ "name": "socket", "batch_interval": "200ms",
                 "source": {{ "socket": {{ "host": "127.0.0.1", "port": {port} }} }},
                 "stages": [ {{ "key_by": {{ "field": 0 }} }}, {{ "set_value": 1 }}, {{ "reduce_by_key": {{ "builtin": "sum" }} }} ],
                 "sink": {{ "jsonl": {{}} }} }}"#
        ),
    )
    .unwrap();
    let server = std::thread::spawn(move || {
        // First connection: three lines, then the server drops it.
        let (mut c, _) = listener.accept().unwrap();
        c.write_all(b"u1,1,/a\nu2,1,/b\nu1,2,/c\n").unwrap();
        drop(c);
        // The source reconnects: two more lines.
        listener.set_nonblocking(false).unwrap();
        let (mut c, _) = listener.accept().unwrap();
        c.write_all(b"u2,3,/d\r\nu3,3,/e\n").unwrap();
        std::thread::sleep(Duration::from_secs(3));
    });
    let out = sluice(&["run", job.to_str().unwrap(), "--batches", "15"], 30);
    assert!(out.success, "{}", out.stderr);
    server.join().unwrap();
    let want: std::collections::BTreeMap<String, i64> = [("u1".into(), 2), ("u2".into(), 2), ("u3".into(), 1)].into();
    assert_eq!(counts(&out.stdout), want, "{}", out.stdout);
}

#[test]
fn directory_source_picks_up_new_files() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    std::fs::write(inbox.join("old.txt"), "a\nb\n").unwrap();
    let job = dir.path().join("dir.json");
    std::fs::write(
        &job,
        r#"{ "name": "dir", "batch_interval": "200ms", "source": { "directory": { "path": "inbox" } },
             "stages": [ { "key_by_value": {} }, { "set_value": 1 }, { "reduce_by_key": { "builtin": "sum" } } ],
             "sink": { "jsonl": {} } }"#,
    )
    .unwrap();
    let writer = {
        let inbox = inbox.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            // Written under a temporary name, then renamed into place: never read half-written.
            std::fs::write(inbox.join("new.txt.tmp"), "b\nc\n").unwrap();
            std::fs::rename(inbox.join("new.txt.tmp"), inbox.join("new.txt")).unwrap();
        })
    };
    let out = sluice(&["run", job.to_str().unwrap(), "--batches", "10"], 30);
    writer.join().unwrap();
    assert!(out.success, "{}", out.stderr);
    let want: std::collections::BTreeMap<String, i64> = [("a".into(), 1), ("b".into(), 2), ("c".into(), 1)].into();
    assert_eq!(counts(&out.stdout), want, "{}", out.stdout);
}
