//! `kill -9` of `sluice run --checkpoint` reading a `directory` while files keep arriving (also
//! while it is down): each batch's files are logged with the checkpoints before its output is
//! committed, so the batches after a checkpoint take the same files again and the `sqlite`
//! table ends up with every line of every file exactly once.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use sluice_tests::sluice_bin;

use super::crash::{Rng, integrity_ok};
use super::harness::eventually;

const LINES_PER_FILE: usize = 20;

/// The values of the table, read with Python's sqlite3.
fn values(db: &std::path::Path) -> Vec<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,json\ntry:\n  print(json.dumps([r[0] for r in sqlite3.connect(sys.argv[1]).execute('SELECT value FROM lines')]))\nexcept sqlite3.OperationalError:\n  print('[]')",
        ])
        .arg(db)
        .output()
        .expect("python3 runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_directory_job_killed_10_times_holds_every_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    let inbox = d.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let db = d.join("out.db");
    let spec = d.join("job.json");
    std::fs::write(
        &spec,
        json!({
            "name": "inbox", "batch_interval": "100ms", "checkpoint_interval": "500ms",
            "source": { "directory": { "path": inbox.to_str().unwrap() } },
            "stages": [],
            "sink": { "sqlite": { "path": db.to_str().unwrap(), "table": "lines" } }
        })
        .to_string(),
    )
    .unwrap();
    // Files arrive the whole time: written under a .tmp name, then renamed in.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (inbox, stop) = (inbox.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let text: String = (0..LINES_PER_FILE).map(|i| format!("f{n}-{i}\n")).collect();
                let tmp = inbox.join(format!("{n:06}.tmp"));
                std::fs::write(&tmp, text).unwrap();
                std::fs::rename(&tmp, inbox.join(format!("{n:06}.txt"))).unwrap();
                n += 1;
                std::thread::sleep(Duration::from_millis(40));
            }
            n
        })
    };
    let checkpoint = d.join("job.ckpt");
    let run = || {
        Command::new(sluice_bin())
            .args(["run", spec.to_str().unwrap(), "--checkpoint"])
            .arg(&checkpoint)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut rng = Rng::new();
    for _ in 0..10 {
        let mut child = run();
        std::thread::sleep(Duration::from_millis(400 + rng.below(1200)));
        assert!(child.try_wait().unwrap().is_none(), "the job runs until it is killed");
        child.kill().unwrap();
        child.wait().unwrap();
        // Down for a moment; files keep coming.
        std::thread::sleep(Duration::from_millis(rng.below(300)));
    }
    stop.store(true, Ordering::SeqCst);
    let files = writer.join().unwrap();
    let mut child = run();
    let want = files * LINES_PER_FILE;
    let got = eventually(Duration::from_secs(60), || {
        let v = values(&db);
        (v.len() >= want).then_some(v)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let got = got.unwrap_or_else(|| panic!("{} of {want} lines came out", values(&db).len()));
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for v in &got {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "lines in the table more than once: {twice:?}");
    for n in 0..files {
        for i in 0..LINES_PER_FILE {
            assert!(counts.contains_key(format!("f{n}-{i}").as_str()), "f{n}-{i} is missing");
        }
    }
    assert_eq!(got.len(), want);
    integrity_ok(&db);
    integrity_ok(&checkpoint);
}
