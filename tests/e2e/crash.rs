//! `kill -9` at random moments, over and over: a job through map, filter and a windowed reduce
//! from a deterministic source resumes from its checkpoints after every restart, and its
//! exactly-once sinks (text files, a SQLite table) end up holding exactly what a run without
//! faults gives: no batch missing, none twice, no value changed; every SQLite file passes its
//! integrity check. `sluice run` and the server, 20 kills each.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_tests::{sluice, sluice_bin};

use super::harness::{Server, call, eventually, job, new_tenant, post_spec, try_start, upload};

/// A small random number generator, seeded from the clock (the seed is printed on failure).
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
            | 1;
        eprintln!("crash test seed: {seed}");
        Rng(seed)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The job: behaviour lines -> clicks only -> (user, 1) -> clicks per user over 10 s, every 2 s.
pub(super) fn spec(sink: Value, modules: bool, batches: u64) -> Value {
    let mut s = json!({
        "name": "clicks", "batch_interval": "1s", "checkpoint_interval": "2s",
        "source": { "generator": { "format": "behavior", "lines_per_batch": 400, "seed": 5, "batches": batches } },
        "stages": [
            { "filter": { "udf": "examples", "function": "is_click" } },
            { "map": { "udf": "examples", "function": "parse_behavior", "value": "i64" } },
            { "reduce_by_key_and_window": { "length": "10s", "slide": "2s",
                "reduce": { "udf": "examples", "function": "sum_counts", "inverse": true }, "filter": "nonzero" } }
        ],
        "sink": sink
    });
    if modules {
        s["modules"] = json!({ "examples": "builtin:examples" });
    }
    s
}

pub(super) fn integrity_ok(path: &std::path::Path) {
    let conn = rusqlite_check(path);
    assert_eq!(conn, "ok", "{}", path.display());
}

fn rusqlite_check(path: &std::path::Path) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])",
        ])
        .arg(path)
        .output()
        .expect("python3 runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Rows of a table as `(batch, key, value)`, read with Python's sqlite3.
pub(super) fn table_rows(path: &std::path::Path, table: &str) -> Vec<(i64, String, i64)> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,json; c=sqlite3.connect(sys.argv[1]); print(json.dumps(c.execute('SELECT batch, key, value FROM ' + sys.argv[2] + ' ORDER BY batch, seq').fetchall()))",
        ])
        .arg(path)
        .arg(table)
        .output()
        .expect("python3 runs");
    let rows: Vec<(i64, String, i64)> =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    rows
}

fn files(dir: &std::path::Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .filter(|(n, _)| !n.starts_with('.'))
        .collect()
}

#[test]
fn sluice_run_survives_kill_9_and_its_sinks_hold_each_batch_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, v: &Value| {
        let p = d.join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p.to_str().unwrap().to_owned()
    };
    std::fs::create_dir_all(d.join("clean")).unwrap();
    std::fs::create_dir_all(d.join("crashed")).unwrap();
    let clean_files = write(
        "clean-files.json",
        &spec(
            json!({ "text_files": { "prefix": d.join("clean/out").to_str().unwrap() } }),
            true,
            120,
        ),
    );
    let crashed_files = write(
        "crashed-files.json",
        &spec(
            json!({ "text_files": { "prefix": d.join("crashed/out").to_str().unwrap() } }),
            true,
            120,
        ),
    );
    let clean_table = write(
        "clean-table.json",
        &spec(
            json!({ "sqlite": { "path": d.join("clean.db").to_str().unwrap(), "table": "clicks" } }),
            true,
            120,
        ),
    );
    let crashed_table = write(
        "crashed-table.json",
        &spec(
            json!({ "sqlite": { "path": d.join("crashed.db").to_str().unwrap(), "table": "clicks" } }),
            true,
            120,
        ),
    );
    for clean in [&clean_files, &clean_table] {
        let out = sluice(&["run", clean], 300);
        assert!(out.success, "{}", out.stderr);
    }
    let mut rng = Rng::new();
    for (spec, checkpoint) in [(&crashed_files, "files.ckpt"), (&crashed_table, "table.ckpt")] {
        let checkpoint = d.join(checkpoint);
        let mut kills = 0;
        let t = Instant::now();
        loop {
            // Without the local compile cache each start compiles the module, as on a new
            // machine: the run then lasts long enough to be killed in the middle.
            let mut child = Command::new(sluice_bin())
                .args(["run", spec, "--checkpoint"])
                .arg(&checkpoint)
                .env("RUST_LOG", "error")
                .env("SLUICE_CACHE_DIR", "")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            if kills < 10 {
                std::thread::sleep(Duration::from_millis(300 + rng.below(900)));
                if child.try_wait().unwrap().is_none() {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    kills += 1;
                    continue;
                }
            }
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            if kills >= 10 {
                break;
            }
            // It finished before ten kills: run it again (from its checkpoint) with the kills to
            // come; a run that always finishes before a kill fails the test instead of looping.
            assert!(
                t.elapsed() < Duration::from_secs(600),
                "the run always ended before it was killed"
            );
        }
        integrity_ok(&checkpoint);
    }
    let (clean, crashed) = (files(&d.join("clean")), files(&d.join("crashed")));
    assert_eq!(clean.len(), 60, "a file per output batch");
    assert_eq!(
        crashed, clean,
        "the text files are exactly those of a run without faults"
    );
    integrity_ok(&d.join("crashed.db"));
    let (clean, crashed) = (
        table_rows(&d.join("clean.db"), "clicks"),
        table_rows(&d.join("crashed.db"), "clicks"),
    );
    assert!(!clean.is_empty());
    same_rows(&crashed, &clean, "the table holds each batch exactly once");
}

/// Asserts two tables are equal, naming the first batch where they differ (not printing them).
pub(super) fn same_rows(got: &[(i64, String, i64)], want: &[(i64, String, i64)], what: &str) {
    if got == want {
        return;
    }
    let by = |rows: &[(i64, String, i64)]| {
        let mut m: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
        for (b, k, v) in rows {
            m.entry(*b).or_default().push((k.clone(), *v));
        }
        m
    };
    let (g, w) = (by(got), by(want));
    let batches: std::collections::BTreeSet<i64> = g.keys().chain(w.keys()).copied().collect();
    for b in batches {
        let (gb, wb) = (g.get(&b), w.get(&b));
        if gb != wb {
            let diff: Vec<_> = gb
                .into_iter()
                .flatten()
                .filter(|r| !wb.is_some_and(|w| w.contains(r)))
                .take(5)
                .collect();
            let missing: Vec<_> = wb
                .into_iter()
                .flatten()
                .filter(|r| !gb.is_some_and(|g| g.contains(r)))
                .take(5)
                .collect();
            panic!(
                "{what}: batch {b} differs: {} rows against {} ({} batches against {}); extra {diff:?}, missing {missing:?}",
                gb.map_or(0, Vec::len),
                wb.map_or(0, Vec::len),
                g.len(),
                w.len()
            );
        }
    }
}

/// The table of the job (`spec`) over `batches` batches from a run without faults, by
/// `sluice run`.
pub(super) fn fault_free(batches: u64) -> Vec<(i64, String, i64)> {
    let scratch = tempfile::tempdir().unwrap();
    let clean_db = scratch.path().join("clean.db");
    let clean_spec = scratch.path().join("clean.json");
    let sink = json!({ "sqlite": { "path": clean_db.to_str().unwrap(), "table": "clicks" } });
    std::fs::write(&clean_spec, spec(sink, true, batches).to_string()).unwrap();
    let out = sluice(&["run", clean_spec.to_str().unwrap()], 300);
    assert!(out.success, "{}", out.stderr);
    table_rows(&clean_db, "clicks")
}

/// A tenant with the examples, and the job (`spec`) into its `clicks` table on server `s`:
/// `(token, job id)`.
pub(super) fn clicks_job(s: &Server, batches: u64) -> (String, i64) {
    let a = new_tenant(s, "acme");
    assert_eq!(upload(s, &a, "examples", sluice_udf_artifacts::EXAMPLES).0, 201);
    let sink = json!({ "sqlite": { "table": "clicks" } });
    let (status, created) = post_spec(s, "/api/v1/jobs", &a, &spec(sink, false, batches));
    assert_eq!(status, 201, "{created}");
    (a, created["id"].as_i64().unwrap())
}

/// Batches of the server's job: long enough for 20 kills with progress between them.
const SERVER_BATCHES: u64 = 700;

/// The job's rows through the API, all of them.
pub(super) fn api_rows(s: &Server, token: &str, id: i64) -> Vec<(i64, String, i64)> {
    let mut out = Vec::new();
    let (mut after, mut after_seq) = (0, i64::MAX);
    loop {
        let (status, rows) = call(
            "GET",
            &s.url(&format!(
                "/api/v1/jobs/{id}/rows?after={after}&after_seq={after_seq}&limit=10000"
            )),
            Some(token),
            None,
        );
        assert_eq!(status, 200, "{rows}");
        let rows = rows.as_array().unwrap().clone();
        if rows.is_empty() {
            return out;
        }
        for r in &rows {
            out.push((
                r["batch"].as_i64().unwrap(),
                r["key"].as_str().unwrap().to_owned(),
                r["value"].as_i64().unwrap(),
            ));
        }
        let last = rows.last().unwrap();
        (after, after_seq) = (last["batch"].as_i64().unwrap(), last["seq"].as_i64().unwrap());
        if rows.len() < 10000 {
            return out;
        }
    }
}

#[test]
fn the_server_survives_kill_9_and_its_table_holds_each_batch_once() {
    let clean = fault_free(SERVER_BATCHES);

    let mut s = try_start(tempfile::tempdir().unwrap(), &[], &[]).unwrap();
    let (a, id) = clicks_job(&s, SERVER_BATCHES);
    assert_eq!(
        call("POST", &s.url(&format!("/api/v1/jobs/{id}/start")), Some(&a), None).0,
        200
    );
    let mut rng = Rng::new();
    let last_batch = |s: &Server| {
        let (_, b) = call("GET", &s.url(&format!("/api/v1/jobs/{id}/batches")), Some(&a), None);
        b.as_array().and_then(|b| b.last()).and_then(|r| r["batch_id"].as_u64())
    };
    let mut kills = 0;
    while kills < 20 {
        // Let the job make progress in this life (a job that never completes a batch is taken
        // for a crash loop after 3 boots), then kill the server at a random moment.
        eventually(Duration::from_secs(30), || last_batch(&s)).expect("the job runs after the restart");
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        let j = job(&s, &a, id);
        if j["status"] == "stopped" {
            break;
        }
        let pid = s.pid();
        // SAFETY: kill(2) with the pid of our own child process.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
        let (_, dir) = s.wait_exit(Duration::from_secs(10)).ok().expect("killed");
        kills += 1;
        s = try_start(dir, &[], &[]).unwrap();
    }
    assert!(kills >= 20, "the job ended after only {kills} kills: make it longer");
    let done = eventually(Duration::from_secs(120), || {
        Some(job(&s, &a, id)).filter(|j| j["status"] == "stopped")
    })
    .unwrap_or_else(|| panic!("the job did not finish: {}", job(&s, &a, id)));
    assert!(done["last_error"].is_null(), "{done}");
    let crashed = api_rows(&s, &a, id);
    same_rows(
        &crashed,
        &clean,
        &format!("after {kills} kills the table holds each batch exactly once"),
    );
    let data = s.dir().to_owned();
    for db in ["registry.db", "checkpoints.db", "tenants/2.db"] {
        integrity_ok(&data.join(db));
    }
}
