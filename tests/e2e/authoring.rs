//! A UDF author's first hour through the real binary: `sluice udf new` makes a crate that
//! builds wherever it is put (inside another workspace too), `sluice udf build` makes and checks
//! its module, `sluice udf test` runs it over the sample, and the CLI uploads it and runs it in
//! a server job.

use std::path::Path;
use std::process::Command;

use serde_json::json;
use sluice_tests::{Finished, sluice_bin};

use super::harness::{call, eventually, start};

/// Runs `sluice ARGS` in `dir` with `env`, to its end.
pub fn sluice_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Finished {
    let out = Command::new(sluice_bin())
        .current_dir(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_SERVER")
        .envs(env.iter().copied())
        .output()
        .expect("sluice runs");
    Finished {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(f: Finished, what: &str) -> String {
    assert!(f.success, "{what} failed:\n{}\n{}", f.stdout, f.stderr);
    f.stdout
}

/// The module `udf build` reported (the first line of its report starts with its path).
fn built_module(report: &str) -> String {
    report.lines().next().unwrap().split(" (").next().unwrap().to_owned()
}

#[test]
fn each_kind_of_new_udf_builds_checks_and_runs_over_its_sample() {
    let root = tempfile::tempdir().unwrap();
    // Another project's workspace around the crates: each must still build on its own.
    std::fs::write(
        root.path().join("Cargo.toml"),
        "[workspace]\nmembers = []\nresolver = \"3\"\n",
    )
    .unwrap();
    // One target dir for the four builds (they share the SDK's crates).
    let target = root.path().join("target");
    let env = [("CARGO_TARGET_DIR", target.to_str().unwrap())];
    for (kind, expect_out, expect_refused) in [
        ("map", vec!["key \"u1\" value 1", "key \"u2\" value 1"], 1),
        ("filter", vec!["value \"1700000000|ERROR|disk full\""], 1),
        ("flat-map", vec!["key \"to\" value 1", "key \"question\" value 1"], 0),
        ("reduce", vec!["key \"u1\" value 3", "key \"u2\" value 5"], 0),
    ] {
        let name = format!("my-{kind}");
        let made = ok(
            sluice_in(root.path(), &["udf", "new", &name, "--kind", kind], &env),
            "udf new",
        );
        assert!(made.contains("sluice udf build"), "it says what to do next: {made}");
        let dir = root.path().join(&name);
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            cargo.contains("[workspace]") && cargo.contains("panic = \"abort\""),
            "{cargo}"
        );
        let report = ok(sluice_in(root.path(), &["udf", "build", &name], &env), "udf build");
        let function = name.replace('-', "_");
        let kind_name = kind.replace('-', "_");
        assert!(report.contains(&format!("{function} ({kind_name}")), "{report}");
        assert!(report.contains("checked as the server checks uploads"), "{report}");
        let module = built_module(&report);
        let size = std::fs::metadata(&module).unwrap().len();
        assert!(
            size < 200_000,
            "the release profile keeps the module small: {size} bytes"
        );
        let sample = dir.join("sample.jsonl");
        let tried = ok(
            sluice_in(
                root.path(),
                &[
                    "udf",
                    "test",
                    &module,
                    "--function",
                    &function,
                    "--input",
                    sample.to_str().unwrap(),
                ],
                &[],
            ),
            "udf test",
        );
        for line in &expect_out {
            assert!(tried.contains(line), "{kind}: {line:?} in\n{tried}");
        }
        assert!(tried.contains(&format!("refused ({expect_refused})")), "{tried}");
        assert!(
            tried.contains("time:") && tried.contains("KiB of linear memory"),
            "{tried}"
        );
        if kind == "map" {
            assert!(
                tried.contains("[warn] no comma in \"not a visit\""),
                "the UDF's log lines: {tried}"
            );
        }
    }
    // The scaffold's native unit test passes as written.
    let test = Command::new(env!("CARGO"))
        .current_dir(root.path().join("my-map"))
        .args(["test", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(test.status.success(), "{}", String::from_utf8_lossy(&test.stderr));
}

#[test]
fn bad_udf_commands_say_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let bad_name = sluice_in(root.path(), &["udf", "new", "Bad Name"], &[]);
    assert!(
        !bad_name.success && bad_name.stderr.contains("not a UDF crate name"),
        "{}",
        bad_name.stderr
    );
    std::fs::create_dir(root.path().join("taken")).unwrap();
    std::fs::write(root.path().join("taken/file"), "x").unwrap();
    let taken = sluice_in(root.path(), &["udf", "new", "taken"], &[]);
    assert!(!taken.success && taken.stderr.contains("not empty"), "{}", taken.stderr);
    let no_crate = sluice_in(root.path(), &["udf", "build", "taken"], &[]);
    assert!(
        !no_crate.success && no_crate.stderr.contains("sluice udf new"),
        "{}",
        no_crate.stderr
    );
    let wasm = root.path().join("examples.wasm");
    std::fs::write(&wasm, sluice_udf_artifacts::EXAMPLES).unwrap();
    std::fs::write(root.path().join("in.txt"), "a line\n").unwrap();
    let no_fn = sluice_in(
        root.path(),
        &[
            "udf",
            "test",
            "examples.wasm",
            "--function",
            "nope",
            "--input",
            "in.txt",
        ],
        &[],
    );
    assert!(
        !no_fn.success && no_fn.stderr.contains("split_words (flat_map)"),
        "it lists what there is: {}",
        no_fn.stderr
    );
}

/// The walk of the UDF guide and the README: a new UDF, built, uploaded with the CLI, run in a
/// server job created from YAML, its output and logs read with the CLI.
#[test]
fn a_new_udf_runs_in_a_server_job_through_the_cli() {
    let s = start();
    let root = tempfile::tempdir().unwrap();
    let admin_file = s.dir().join("admin-token");
    let server = s.base.trim_start_matches("http://").to_owned(); // no scheme: it works too
    let admin_env = [
        ("SLUICE_SERVER", server.as_str()),
        ("SLUICE_TOKEN_FILE", admin_file.to_str().unwrap()),
    ];
    let made = ok(
        sluice_in(root.path(), &["tenant", "create", "acme"], &admin_env),
        "tenant create",
    );
    let token = made.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("sl_"), "{made}");
    let env = [("SLUICE_SERVER", server.as_str()), ("SLUICE_TOKEN", token.as_str())];

    ok(sluice_in(root.path(), &["udf", "new", "visits"], &[]), "udf new");
    let module = built_module(&ok(
        sluice_in(root.path(), &["udf", "build", "visits"], &[]),
        "udf build",
    ));
    let up = ok(
        sluice_in(root.path(), &["udf", "upload", "visits", &module], &env),
        "udf upload",
    );
    assert!(up.contains("uploaded visits@1"), "{up}");
    let again = ok(
        sluice_in(root.path(), &["udf", "upload", "visits", &module], &env),
        "udf upload again",
    );
    assert!(
        again.contains("already visits@1"),
        "the same bytes make no new version: {again}"
    );

    let spec = "name: visits per user\nbatch_interval: 200ms\non_bad_record: skip\nsource:\n  http: {}\nstages:\n  - map: { udf: visits@latest, function: visits, value: i64 }\n  - reduce_by_key: { builtin: sum }\nsink:\n  print: {}\n";
    std::fs::write(root.path().join("visits.yaml"), spec).unwrap();
    let created = ok(
        sluice_in(root.path(), &["job", "create", "visits.yaml"], &env),
        "job create",
    );
    let id: i64 = created
        .split("created job ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the answer names the job: {created}"));
    ok(
        sluice_in(root.path(), &["job", "start", &id.to_string()], &env),
        "job start",
    );
    let (status, _) = call(
        "POST",
        &s.url(&format!("/api/v1/jobs/{id}/ingest")),
        Some(&token),
        Some(("text/plain", b"u1,1,/a\nu1,2,/b\nno comma".to_vec())),
    );
    assert_eq!(status, 202);
    let output = eventually(std::time::Duration::from_secs(20), || {
        let out = ok(
            sluice_in(root.path(), &["job", "output", &id.to_string()], &env),
            "job output",
        );
        out.contains("u1").then_some(out)
    })
    .expect("the job's output");
    assert!(
        output.lines().any(|l| l.contains("u1") && l.trim_end().ends_with('2')),
        "{output}"
    );
    let logs = ok(
        sluice_in(root.path(), &["job", "logs", &id.to_string()], &env),
        "job logs",
    );
    assert!(
        logs.contains("no comma in \"no comma\"") && logs.contains("visits@1"),
        "{logs}"
    );
    assert!(logs.contains("1 record(s) refused"), "{logs}");
    // Swap by the function's name (the stage's index works too).
    let v2 = sluice_tests::with_custom_section(&std::fs::read(&module).unwrap(), "v2");
    std::fs::write(root.path().join("v2.wasm"), v2).unwrap();
    ok(
        sluice_in(root.path(), &["udf", "upload", "visits", "v2.wasm"], &env),
        "upload v2",
    );
    let swapped = ok(
        sluice_in(
            root.path(),
            &["job", "swap", &id.to_string(), "visits", "visits@2"],
            &env,
        ),
        "job swap",
    );
    assert!(swapped.contains("stage 0 runs visits@2"), "{swapped}");
    let missing = sluice_in(root.path(), &["job", "swap", &id.to_string(), "0", "visits@7"], &env);
    assert!(
        !missing.success && missing.stderr.contains("has versions 1, 2"),
        "{}",
        missing.stderr
    );
    let (_, job) = call("GET", &s.url(&format!("/api/v1/jobs/{id}")), Some(&token), None);
    assert_eq!(job["stage_udfs"], json!([{ "stage": 0, "udf": "visits@2" }]));
}
