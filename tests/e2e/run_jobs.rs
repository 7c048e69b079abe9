//! `sluice run`: the seed's scenarios through the real binary, once with wasm UDFs and once with
//! native built-ins (same output, known answers); spec errors; bad-record policies; sinks.

use sluice_tests::{repo_root, sluice};

fn run_example(job: &str, extra: &[&str]) -> String {
    let path = repo_root().join("examples/jobs").join(job);
    let mut args = vec!["run", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = sluice(&args, 60);
    assert!(out.success, "{job} failed: {}", out.stderr);
    out.stdout
}

/// The records printed under each `Time:` header, as (time, records).
fn printed(stdout: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in stdout.lines() {
        if let Some(t) = line.strip_prefix("Time: ") {
            out.push((t.to_owned(), Vec::new()));
        } else if !line.starts_with("---") && !line.is_empty() {
            out.last_mut().expect("records follow a header").1.push(line.to_owned());
        }
    }
    out
}

fn batches(v: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    v.iter()
        .map(|(t, r)| (t.to_string(), r.iter().map(|s| s.to_string()).collect()))
        .collect()
}

#[test]
fn scenario_1_visits_per_user_over_60_s() {
    let wasm = run_example("visits.json", &[]);
    let native = run_example("visits-native.json", &[]);
    assert_eq!(wasm, native, "wasm and native pipelines agree");
    assert_eq!(
        printed(&wasm),
        batches(&[
            ("1000 ms (batch 1)", &["(u1, 2)", "(u2, 1)"]),
            ("2000 ms (batch 2)", &["(u1, 2)", "(u2, 1)", "(u3, 1)"]),
            ("3000 ms (batch 3)", &["(u1, 2)", "(u2, 1)", "(u3, 1)"]),
            ("4000 ms (batch 4)", &["(u1, 3)", "(u2, 2)", "(u3, 1)"]),
            ("5000 ms (batch 5)", &["(u1, 3)", "(u2, 2)", "(u3, 2)"]),
        ])
    );
    // 60 batches later every visit has left the window: keys disappear (filter nonzero).
    let later = printed(&run_example("visits.json", &["--batches", "66"]));
    assert_eq!(later.len(), 66);
    assert_eq!(
        later[60],
        (
            "61000 ms (batch 61)".to_owned(),
            vec!["(u1, 1)".to_owned(), "(u2, 1)".to_owned(), "(u3, 2)".to_owned()]
        )
    );
    assert_eq!(later[65].1, Vec::<String>::new());
}

#[test]
fn scenario_2_errors_per_minute() {
    let wasm = run_example("errors-per-minute.json", &[]);
    let native = run_example("errors-per-minute-native.json", &[]);
    assert_eq!(wasm, native);
    assert_eq!(
        run_example("errors-per-minute.yaml", &[]),
        wasm,
        "the YAML spec is the same job"
    );
    assert_eq!(
        printed(&wasm),
        batches(&[
            ("1000 ms (batch 1)", &["(28333333, 1)", "(28333334, 1)"]),
            ("2000 ms (batch 2)", &["(28333334, 1)", "(28333335, 1)"]),
            ("3000 ms (batch 3)", &[]),
        ])
    );
}

#[test]
fn scenario_3_clicks_per_user_over_5_minutes_every_minute() {
    let wasm = run_example("clicks-per-user.json", &[]);
    let native = run_example("clicks-per-user-native.json", &[]);
    assert_eq!(wasm, native);
    assert_eq!(
        printed(&wasm),
        batches(&[
            ("60000 ms (batch 60)", &["(101, 2)", "(103, 1)"]),
            (
                "120000 ms (batch 120)",
                &["(101, 3)", "(102, 1)", "(103, 1)", "(104, 1)"]
            ),
        ])
    );
}

fn write_job(dir: &std::path::Path, name: &str, json: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, json).unwrap();
    path.display().to_string()
}

#[test]
fn every_spec_problem_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), "[\"a\"]\n").unwrap();
    let job = write_job(
        dir.path(),
        "bad.json",
        r#"{
          "name": "bad", "batch_interval": "1s", "colour": "blue",
          "modules": { "examples": "builtin:examples" },
          "source": { "batches": { "path": "in.jsonl" } },
          "stages": [
            { "map": { "udf": "examples@1", "function": "parse_vist" } },
            { "reduce_by_key": { "builtin": "sum" } },
            { "window": { "length": "3s", "slide": "1500ms" } },
            { "filter": { "udf": "examples@1", "function": "sum_counts" } },
            { "reduce_by_key_and_window": { "length": "4s", "reduce": { "builtin": "max", "inverse": true } } }
          ],
          "sink": { "print": {} }
        }"#,
    );
    // Structural problems (an unknown field) and semantic ones, all in one report.
    let out = sluice(&["run", &job], 30);
    assert!(!out.success);
    let e = &out.stderr;
    for want in [
        "colour: unknown field `colour`",
        "stages[0].map.function: examples@1 has no UDF named `parse_vist`",
        "stages[1].reduce_by_key: the built-in sum needs i64 values, but the stream has text values here",
        "stages[2].window.slide: 1500ms is not a multiple of the batch interval 1s",
        "stages[3].filter.function: `sum_counts` of examples@1 is a reduce, not a filter",
        "stages[4].reduce_by_key_and_window.reduce.inverse: max has no inverse",
        "docs/job-spec.md",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}

#[test]
fn unknown_stage_and_bad_duration_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let job = write_job(
        dir.path(),
        "bad.json",
        r#"{ "name": "x", "batch_interval": "soon", "source": { "batches": { "path": "in.jsonl" } },
             "modules": { "examples": "builtin:examples" },
             "stages": [ { "mapp": {} }, { "window": { "length": "2s", "slide": "1s", "extra": 1 } },
                         { "filter": { "udf": "examples", "function": "nope" } } ],
             "sink": { "print": {} } }"#,
    );
    let out = sluice(&["run", &job], 30);
    assert!(!out.success);
    let e = &out.stderr;
    assert!(e.contains("batch_interval: \"soon\" is not a duration"), "{e}");
    assert!(e.contains("stages[0]: unknown variant `mapp`"), "{e}");
    assert!(
        e.contains("stages[1].window: unknown field `extra`") || e.contains("stages[1].window.extra"),
        "{e}"
    );
}

fn malformed_visits_job(dir: &std::path::Path, policy: &str) -> String {
    std::fs::write(
        dir.join("in.jsonl"),
        "[\"u1,1,/a\", \"garbage line\", \"u2,2,/b\"]\n[\"u1,3,/c\"]\n",
    )
    .unwrap();
    write_job(
        dir,
        &format!("{policy}.json"),
        &format!(
            r#"{{ "name": "x", "batch_interval": "1s", "modules": {{ "examples": "builtin:examples" }},
                 "source": {{ "batches": {{ "path": "in.jsonl" }} }},
                 "stages": [ {{ "map": {{ "udf": "examples", "function": "parse_visit", "value": "i64" }} }},
                             {{ "reduce_by_key": {{ "builtin": "sum" }} }} ],
                 "on_bad_record": "{policy}",
                 "dead_letter": {{ "jsonl": {{ "path": "{}" }} }},
                 "sink": {{ "jsonl": {{}} }} }}"#,
            dir.join("dead.jsonl").display()
        ),
    )
}

#[test]
fn a_bad_record_fails_the_job_with_the_line_under_fail() {
    let dir = tempfile::tempdir().unwrap();
    let out = sluice(&["run", &malformed_visits_job(dir.path(), "fail")], 30);
    assert!(!out.success);
    assert!(
        out.stderr.contains("garbage line") && out.stderr.contains("stages[0].map"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_records_go_to_the_dead_letters_under_skip_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = sluice(&["run", &malformed_visits_job(dir.path(), "skip")], 30);
    assert!(out.success, "{}", out.stderr);
    let records = sluice_tests::jsonl_records(&out.stdout);
    let got: Vec<_> = records
        .iter()
        .map(|(b, k, v)| (*b, k.clone().unwrap(), v.as_i64().unwrap()))
        .collect();
    assert_eq!(got, [(1, "u1".into(), 1), (1, "u2".into(), 1), (2, "u1".into(), 1)]);
    let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap();
    let dead: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["value"], "garbage line");
    assert_eq!(dead[0]["batch_id"], 1);
    assert!(
        dead[0]["error"]
            .as_str()
            .unwrap()
            .contains("malformed line \"garbage line\""),
        "{}",
        dead[0]
    );
}

#[test]
fn text_files_are_written_one_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), "[\"a b a\"]\n[]\n[\"b\"]\n").unwrap();
    let prefix = dir.path().join("out/words");
    let job = write_job(
        dir.path(),
        "words.json",
        &format!(
            r#"{{ "name": "words", "batch_interval": "2s", "source": {{ "batches": {{ "path": "in.jsonl" }} }},
                 "stages": [ {{ "split": {{ "sep": " ", "pairs": true }} }}, {{ "reduce_by_key": {{ "builtin": "sum" }} }} ],
                 "sink": {{ "text_files": {{ "prefix": "{}", "suffix": "txt" }} }} }}"#,
            prefix.display()
        ),
    );
    let out = sluice(&["run", &job], 30);
    assert!(out.success, "{}", out.stderr);
    let read = |ms: u32| std::fs::read_to_string(dir.path().join(format!("out/words-{ms}.txt"))).unwrap();
    assert_eq!(read(2000), "(a, 2)\n(b, 1)\n");
    assert_eq!(read(4000), "");
    assert_eq!(read(6000), "(b, 1)\n");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn union_state_and_window_counts_through_a_spec() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.jsonl"), "[\"x\", \"y\"]\n[\"x\"]\n[]\n").unwrap();
    std::fs::write(dir.path().join("b.jsonl"), "[\"x\"]\n[]\n[\"z\"]\n").unwrap();
    let job = |name: &str, stages: &str| {
        write_job(
            dir.path(),
            name,
            &format!(
                r#"{{ "name": "{name}", "batch_interval": "1s",
                     "source": {{ "union": [ {{ "batches": {{ "path": "a.jsonl" }} }}, {{ "batches": {{ "path": "b.jsonl" }} }} ] }},
                     "stages": {stages}, "sink": {{ "jsonl": {{}} }} }}"#
            ),
        )
    };
    let rows = |path: String, batches: &str| {
        let out = sluice(&["run", &path, "--batches", batches], 30);
        assert!(out.success, "{}", out.stderr);
        sluice_tests::jsonl_records(&out.stdout)
            .into_iter()
            .map(|(b, k, v)| (b, k, v.as_i64().unwrap()))
            .collect::<Vec<_>>()
    };
    let s = |v: &str| Some(v.to_owned());
    // Running totals per value across batches (update_state_by_key with sum).
    let state = job(
        "state.json",
        r#"[ { "key_by_value": {} }, { "set_value": 1 }, { "update_state_by_key": { "builtin": "sum" } } ]"#,
    );
    assert_eq!(
        rows(state, "3"),
        [
            (1, s("x"), 2),
            (1, s("y"), 1),
            (2, s("x"), 3),
            (2, s("y"), 1),
            (3, s("x"), 3),
            (3, s("y"), 1),
            (3, s("z"), 1)
        ]
    );
    // Records in the last 2 s (count_by_window emits 0 once the window empties).
    let count = job(
        "count.json",
        r#"[ { "count_by_window": { "length": "2s", "slide": "1s" } } ]"#,
    );
    assert_eq!(
        rows(count, "5"),
        [(1, None, 3), (2, None, 4), (3, None, 2), (4, None, 1), (5, None, 0)]
    );
    // Per value in the last 2 s, zero counts dropped.
    let by_value = job(
        "by-value.json",
        r#"[ { "count_by_value_and_window": { "length": "2s" } } ]"#,
    );
    assert_eq!(
        rows(by_value, "4"),
        [
            (1, s("x"), 2),
            (1, s("y"), 1),
            (2, s("x"), 3),
            (2, s("y"), 1),
            (3, s("x"), 1),
            (3, s("z"), 1),
            (4, s("z"), 1)
        ]
    );
    // The largest value of each window, keys ignored (reduce_by_window without an inverse).
    let max = job(
        "max.json",
        r#"[ { "key_by_value": {} }, { "set_value": 7 }, { "reduce_by_window": { "length": "2s", "reduce": { "builtin": "max" } } } ]"#,
    );
    assert_eq!(rows(max, "5"), [(1, None, 7), (2, None, 7), (3, None, 7), (4, None, 7)]);
}

#[test]
fn count_and_avg_reducers_through_a_spec() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), "[\"a,1\", \"b,10\", \"a,4\"]\n[\"a,7\"]\n").unwrap();
    let job = |name: &str, stage: &str| {
        write_job(
            dir.path(),
            name,
            &format!(
                r#"{{ "name": "{name}", "batch_interval": "1s", "source": {{ "batches": {{ "path": "in.jsonl" }} }},
                     "stages": [ {{ "key_by": {{ "field": 0 }} }}, {{ "pick": {{ "field": 1 }} }}, {{ "parse_int": {{}} }}, {stage} ],
                     "sink": {{ "jsonl": {{}} }} }}"#
            ),
        )
    };
    let rows = |path: String| {
        let out = sluice(&["run", &path], 30);
        assert!(out.success, "{}", out.stderr);
        sluice_tests::jsonl_records(&out.stdout)
            .into_iter()
            .map(|(b, k, v)| (b, k.unwrap(), v))
            .collect::<Vec<_>>()
    };
    let count = rows(job("count.json", r#"{ "reduce_by_key": { "builtin": "count" } }"#));
    // count needs no numbers: counting the text values works too.
    let text = write_job(
        dir.path(),
        "count-text.json",
        &std::fs::read_to_string(dir.path().join("count.json"))
            .unwrap()
            .replace(r#"{ "parse_int": {} }, "#, ""),
    );
    assert_eq!(rows(text), count);
    assert_eq!(
        count,
        [
            (1, "a".into(), 2.into()),
            (1, "b".into(), 1.into()),
            (2, "a".into(), 1.into())
        ]
    );
    let avg = rows(job(
        "avg.json",
        r#"{ "reduce_by_key_and_window": { "length": "2s", "reduce": { "builtin": "avg", "inverse": true } } }"#,
    ));
    assert_eq!(
        avg,
        [
            (1, "a".into(), 2.5.into()),
            (1, "b".into(), 10.0.into()),
            (2, "a".into(), 4.0.into()),
            (2, "b".into(), 10.0.into())
        ]
    );
}
