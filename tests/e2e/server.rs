//! `sluice serve`: the real binary on loopback with a real SQLite file, driven over HTTP: tenants,
//! tokens, UDF upload and versions, tenant isolation, and the error shape.

use std::io::{BufRead, BufReader};
use std::process::Command;

use serde_json::{Value, json};
use sluice_tests::sluice_bin;

use super::harness::{Route, agent, call, code, new_tenant, post_spec, start, start_at, start_with, upload};

#[test]
fn upload_list_get_download_delete_and_versions() {
    let s = start();
    let (status, body) = call("GET", &format!("{}/api/v1/health", s.base), None, None);
    assert_eq!((status, body), (200, json!({ "status": "ok" })));
    let a = new_tenant(&s, "acme");
    let (status, v1) = upload(&s, &a, "examples", sluice_udf_artifacts::EXAMPLES);
    assert_eq!(status, 201, "{v1}");
    assert_eq!(v1["version"], 1);
    let udfs: Vec<(String, String)> = v1["udfs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap().into(), u["kind"].as_str().unwrap().into()))
        .collect();
    assert!(udfs.contains(&("split_words".into(), "flat_map".into())), "{udfs:?}");
    assert!(udfs.contains(&("sum_counts".into(), "reduce".into())), "{udfs:?}");
    let (status, again) = upload(&s, &a, "examples", sluice_udf_artifacts::EXAMPLES);
    assert_eq!(
        (status, again["version"].clone()),
        (200, json!(1)),
        "the same bytes: that version"
    );
    assert!(
        again["note"].as_str().unwrap().contains("already examples@1"),
        "{again}"
    );
    let (status, v2) = upload(&s, &a, "examples", &sluice_tests::examples_v2());
    assert_eq!(
        (status, v2["version"].clone()),
        (201, json!(2)),
        "versions count up per name"
    );
    let (status, list) = call("GET", &format!("{}/api/v1/udfs", s.base), Some(&a), None);
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (status, latest) = call(
        "GET",
        &format!("{}/api/v1/udfs/examples/latest", s.base),
        Some(&a),
        None,
    );
    assert_eq!((status, latest["version"].clone()), (200, json!(2)));
    let wasm = agent()
        .get(&format!("{}/api/v1/udfs/examples/1/wasm", s.base))
        .header("Authorization", &format!("Bearer {a}"))
        .call()
        .unwrap()
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    assert_eq!(wasm, sluice_udf_artifacts::EXAMPLES, "the download is the upload");
    let (status, _) = call("DELETE", &format!("{}/api/v1/udfs/examples/1", s.base), Some(&a), None);
    assert_eq!(status, 204);
    let (status, body) = call("GET", &format!("{}/api/v1/udfs/examples/1", s.base), Some(&a), None);
    assert_eq!((status, code(&body)), (404, "not_found"));
}

#[test]
fn tenants_are_isolated_and_tokens_are_required() {
    let s = start();
    let a = new_tenant(&s, "acme");
    let b = new_tenant(&s, "globex");
    assert_eq!(upload(&s, &a, "private", sluice_udf_artifacts::EXAMPLES).0, 201);
    for url in [
        "/api/v1/udfs/private/1",
        "/api/v1/udfs/private/latest",
        "/api/v1/udfs/private/1/wasm",
    ] {
        let (status, body) = call("GET", &format!("{}{url}", s.base), Some(&b), None);
        assert_eq!((status, code(&body)), (404, "not_found"), "{url}");
    }
    let (status, list) = call("GET", &format!("{}/api/v1/udfs", s.base), Some(&b), None);
    assert_eq!((status, list), (200, json!([])));
    let (status, _) = call("DELETE", &format!("{}/api/v1/udfs/private/1", s.base), Some(&b), None);
    assert_eq!(status, 404);
    assert_eq!(
        call("GET", &format!("{}/api/v1/udfs/private/1", s.base), Some(&a), None).0,
        200,
        "still there for A"
    );

    for (token, want) in [(None, 401), (Some("sl_not_a_token"), 401)] {
        let (status, body) = call("GET", &format!("{}/api/v1/udfs", s.base), token, None);
        assert_eq!((status, code(&body)), (want, "unauthorized"));
    }
    let (status, body) = call(
        "POST",
        &format!("{}/api/v1/tenants", s.base),
        Some(&a),
        Some(("application/json", br#"{"name": "evil"}"#.to_vec())),
    );
    assert_eq!(
        (status, code(&body)),
        (403, "forbidden"),
        "tenants cannot create tenants"
    );
}

#[test]
fn bad_input_gets_its_error_code() {
    let s = start();
    let a = new_tenant(&s, "acme");
    let (status, body) = upload(&s, &a, "junk", b"not wasm at all");
    assert_eq!((status, code(&body)), (400, "invalid_module"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly module"),
        "{body}"
    );
    let wasi = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))"#,
    )
    .unwrap();
    let (status, body) = upload(&s, &a, "wasi", &wasi);
    assert_eq!((status, code(&body)), (400, "invalid_module"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wasi_snapshot_preview1.fd_write"),
        "{body}"
    );
    let (status, body) = upload(&s, &a, "big", &vec![0u8; (10 << 20) + 1]);
    assert_eq!((status, code(&body)), (413, "too_large"));
    let (status, body) = upload(&s, &a, "Bad%20Name", sluice_udf_artifacts::EXAMPLES);
    assert_eq!((status, code(&body)), (400, "invalid_name"));
    let (status, body) = call(
        "POST",
        &format!("{}/api/v1/tenants", s.base),
        Some(&s.admin),
        Some(("application/json", b"{not json".to_vec())),
    );
    assert_eq!((status, code(&body)), (400, "bad_json"));
    let (status, body) = call(
        "POST",
        &format!("{}/api/v1/tenants", s.base),
        Some(&s.admin),
        Some(("application/json", br#"{"name": "x", "admin": true}"#.to_vec())),
    );
    assert_eq!(
        (status, code(&body)),
        (400, "bad_json"),
        "unknown fields are refused, not stored"
    );
    let (status, body) = call(
        "POST",
        &format!("{}/api/v1/tenants", s.base),
        Some(&s.admin),
        Some(("application/json", br#"{"name": "acme"}"#.to_vec())),
    );
    assert_eq!((status, code(&body)), (409, "conflict"));
    let (status, body) = call("GET", &format!("{}/api/v1/udfs/x/latest-ish", s.base), Some(&a), None);
    assert_eq!((status, code(&body)), (400, "bad_version"));
    let (status, body) = call("GET", &format!("{}/api/v1/nothing-here", s.base), Some(&a), None);
    assert_eq!((status, code(&body)), (404, "not_found"));
}

#[test]
fn jobs_are_checked_against_the_tenants_modules_and_pin_versions() {
    // The operator lets server jobs read this one socket.
    let s = start_with(tempfile::tempdir().unwrap(), &["--allow-socket", "127.0.0.1:9999"]);
    let a = new_tenant(&s, "acme");
    let b = new_tenant(&s, "globex");
    assert_eq!(upload(&s, &a, "examples", sluice_udf_artifacts::EXAMPLES).0, 201);
    let spec = json!({
        "name": "visits", "batch_interval": "1s",
        "source": { "socket": { "host": "127.0.0.1", "port": 9999 } },
        "stages": [
            { "map": { "udf": "examples@latest", "function": "parse_visit", "value": "i64" } },
            { "reduce_by_key_and_window": { "length": "60s", "reduce": { "builtin": "sum", "inverse": true }, "filter": "nonzero" } }
        ],
        "sink": { "print": {} }
    });
    let (status, body) = post_spec(&s, "/api/v1/jobs/validate", &a, &spec);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["udfs"], json!([{ "module": "examples", "version": 1 }]));
    let (status, job) = post_spec(&s, "/api/v1/jobs", &a, &spec);
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["status"], "created");
    let id = job["id"].as_i64().unwrap();

    // A new version does not move the job: it stays pinned to version 1.
    assert_eq!(upload(&s, &a, "examples", &sluice_tests::examples_v2()).0, 201);
    let (_, got) = call("GET", &format!("{}/api/v1/jobs/{id}", s.base), Some(&a), None);
    assert_eq!(got["udfs"], json!([{ "module": "examples", "version": 1 }]));
    // The pinned version cannot be deleted while the job exists; the message names the job.
    let (status, body) = call("DELETE", &format!("{}/api/v1/udfs/examples/1", s.base), Some(&a), None);
    assert_eq!((status, code(&body)), (409, "in_use"));
    assert!(
        body["error"]["message"].as_str().unwrap().contains("\"visits\""),
        "{body}"
    );

    // Another tenant neither sees the job nor can use A's modules.
    assert_eq!(
        call("GET", &format!("{}/api/v1/jobs/{id}", s.base), Some(&b), None).0,
        404
    );
    assert_eq!(
        call("DELETE", &format!("{}/api/v1/jobs/{id}", s.base), Some(&b), None).0,
        404
    );
    assert_eq!(
        call("GET", &format!("{}/api/v1/jobs", s.base), Some(&b), None).1,
        json!([])
    );
    let (status, body) = post_spec(&s, "/api/v1/jobs/validate", &b, &spec);
    assert_eq!((status, code(&body)), (400, "invalid_spec"));
    assert!(
        body["error"]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no module `examples@latest`: this tenant has no modules yet"),
        "{body}"
    );

    assert_eq!(
        call("DELETE", &format!("{}/api/v1/jobs/{id}", s.base), Some(&a), None).0,
        204
    );
    assert_eq!(
        call("DELETE", &format!("{}/api/v1/udfs/examples/1", s.base), Some(&a), None).0,
        204
    );
}

#[test]
fn a_bad_spec_lists_every_problem_with_its_path() {
    let s = start();
    let a = new_tenant(&s, "acme");
    assert_eq!(upload(&s, &a, "examples", sluice_udf_artifacts::EXAMPLES).0, 201);
    let spec = json!({
        "name": "bad", "batch_interval": "1s", "owner": "me",
        "modules": { "examples": "builtin:examples" },
        "source": { "socket": { "host": "127.0.0.1", "port": 9999 } },
        "stages": [
            { "map": { "udf": "examples@1", "function": "parse_vist" } },
            { "window": { "length": "3s", "slide": "1500ms" } }
        ],
        "sink": { "print": {} }
    });
    let (status, body) = post_spec(&s, "/api/v1/jobs", &a, &spec);
    assert_eq!((status, code(&body)), (400, "invalid_spec"));
    let paths: Vec<&str> = body["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    for want in ["owner", "stages[0].map.function", "stages[1].window.slide", "modules"] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    assert_eq!(
        call("GET", &format!("{}/api/v1/jobs", s.base), Some(&a), None).1,
        json!([]),
        "nothing stored"
    );
    let two_http = json!({
        "name": "two", "batch_interval": "1s",
        "source": { "union": [ { "http": {} }, { "http": {} } ] },
        "stages": [], "sink": { "print": {} }
    });
    let (status, body) = post_spec(&s, "/api/v1/jobs", &a, &two_http);
    assert_eq!((status, code(&body)), (400, "invalid_spec"));
    assert_eq!(body["error"]["problems"][0]["path"], "source.union", "{body}");
}

#[test]
fn a_job_runs_in_the_server_and_shows_its_batches_and_output() {
    let s = start();
    let a = new_tenant(&s, "acme");
    let b = new_tenant(&s, "globex");
    assert_eq!(upload(&s, &a, "examples", sluice_udf_artifacts::EXAMPLES).0, 201);
    let spec = json!({
        "name": "live visits", "batch_interval": "100ms",
        "source": { "generator": { "format": "visits", "rate_per_s": 5000 } },
        "stages": [
            { "map": { "udf": "examples", "function": "parse_visit", "value": "i64" } },
            { "reduce_by_key": { "builtin": "sum" } }
        ],
        "sink": { "print": {} }
    });
    let (status, job) = post_spec(&s, "/api/v1/jobs", &a, &spec);
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_i64().unwrap();
    let url = |p: &str| format!("{}/api/v1/jobs/{id}{p}", s.base);

    let (status, started) = call("POST", &url("/start"), Some(&a), None);
    assert_eq!(
        (status, started["status"].clone()),
        (200, json!("running")),
        "{started}"
    );
    assert_eq!(call("POST", &url("/start"), Some(&a), None).0, 409, "already running");
    assert_eq!(call("POST", &url("/start"), Some(&b), None).0, 404, "not B's job");
    assert_eq!(
        call("DELETE", &url(""), Some(&a), None).0,
        409,
        "a running job is not deleted"
    );
    std::thread::sleep(std::time::Duration::from_millis(1200));

    let (_, batches) = call("GET", &url("/batches"), Some(&a), None);
    let batches = batches.as_array().unwrap().clone();
    assert!(batches.len() >= 5, "{batches:?}");
    let ids: Vec<i64> = batches.iter().map(|r| r["batch_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>(), "contiguous batch ids");
    assert!(batches.iter().all(|r| r["records_in"] == 500), "{batches:?}");
    let (_, out) = call("GET", &url("/output"), Some(&a), None);
    let out = out.as_array().unwrap();
    assert!(!out.is_empty());
    assert!(
        out.iter()
            .all(|r| r["key"].as_str().unwrap().starts_with('u') && r["value"].as_i64().unwrap() >= 1),
        "{out:?}"
    );
    assert_eq!(call("GET", &url("/output"), Some(&b), None).0, 404);

    // Aggregate rates: 5,000 lines/s offered; rates are over batch times, so exactly that.
    let (status, rates) = call("GET", &url("/rates"), Some(&a), None);
    assert_eq!(status, 200);
    let input = rates["input_records_per_s"].as_f64().unwrap();
    assert!((input - 5000.0).abs() < 1e-6, "{rates}");
    assert!(rates["processing_ms_mean"].as_f64().unwrap() > 0.0, "{rates}");

    // Prometheus metrics (admin only): the job's counters, its UDF calls and its histograms.
    let (status, text) = call("GET", &format!("{}/metrics", s.base), Some(&s.admin), None);
    assert_eq!(status, 200);
    let text = text.as_str().unwrap().to_owned();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    };
    let job = format!("tenant=\"2\",job=\"{id}\"");
    assert!(value(&format!("sluice_job_batches_total{{{job}}}")) >= 5.0);
    assert!(value(&format!("sluice_job_input_records_total{{{job}}}")) >= 2500.0);
    assert!(value(&format!("sluice_udf_calls_total{{{job},stage=\"stages[0].map\"}}")) >= 5.0);
    assert!(
        text.contains("sluice_batch_processing_seconds_bucket{") && text.contains("le=\"+Inf\"}"),
        "{text}"
    );
    assert!(text.contains("sluice_batch_scheduling_delay_seconds_count{"), "{text}");
    assert!(value("sluice_jobs_running ") >= 1.0);
    assert!(value("process_resident_memory_bytes ") > 0.0);
    assert_eq!(
        code(&call("GET", &format!("{}/metrics", s.base), Some(&a), None).1),
        "forbidden"
    );
    assert_eq!(
        code(&call("GET", &format!("{}/metrics", s.base), None, None).1),
        "unauthorized"
    );
    let (status, stopped) = call("POST", &url("/stop"), Some(&a), None);
    assert_eq!(
        (status, stopped["status"].clone()),
        (200, json!("stopped")),
        "{stopped}"
    );
    let (_, after) = call("GET", &url("/batches"), Some(&a), None);
    assert!(
        after.as_array().unwrap().len() >= batches.len(),
        "batches stay readable after the stop"
    );
    assert_eq!(call("DELETE", &url(""), Some(&a), None).0, 204);

    // The server reads and writes no host files for tenants.
    let mut bad = spec.clone();
    bad["source"] = json!({ "batches": { "path": "/etc/passwd" } });
    bad["sink"] = json!({ "jsonl": { "path": "/tmp/x" } });
    let (status, body) = post_spec(&s, "/api/v1/jobs", &a, &bad);
    assert_eq!((status, code(&body)), (400, "invalid_spec"));
    let paths: Vec<&str> = body["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"source") && paths.contains(&"sink"), "{paths:?}");
}

#[test]
fn running_jobs_stop_on_sigterm_and_start_again_with_the_server() {
    let s = start();
    let a = new_tenant(&s, "acme");
    assert_eq!(upload(&s, &a, "examples", sluice_udf_artifacts::EXAMPLES).0, 201);
    let spec = json!({
        "name": "survivor", "batch_interval": "100ms",
        "source": { "generator": { "format": "visits", "rate_per_s": 1000 } },
        "stages": [ { "map": { "udf": "examples@latest", "function": "parse_visit", "value": "i64" } }, { "reduce_by_key": { "builtin": "sum" } } ],
        "sink": { "print": {} }
    });
    let (_, job) = post_spec(&s, "/api/v1/jobs", &a, &spec);
    let id = job["id"].as_i64().unwrap();
    assert_eq!(
        call("POST", &format!("{}/api/v1/jobs/{id}/start", s.base), Some(&a), None).0,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(400));
    let dir = s.terminate();

    let s = start_at(dir);
    let (status, got) = call("GET", &format!("{}/api/v1/jobs/{id}", s.base), Some(&a), None);
    assert_eq!((status, got["status"].clone()), (200, json!("running")), "{got}");
    std::thread::sleep(std::time::Duration::from_millis(600));
    let (_, batches) = call("GET", &format!("{}/api/v1/jobs/{id}/batches", s.base), Some(&a), None);
    assert!(
        batches.as_array().unwrap().len() >= 3,
        "the job runs again after the restart: {batches}"
    );
    let (_, stopped) = call("POST", &format!("{}/api/v1/jobs/{id}/stop", s.base), Some(&a), None);
    assert_eq!(stopped["status"], "stopped");
}

/// A second version of `parse_visit`, written by hand: every record becomes `("v2", 1)`.
pub(super) const PARSE_VISIT_V2: &str = r#"
(module
  (memory (export "memory") 2)
  (func (export "sluice_abi_version") (result i32) i32.const 1)
  (func (export "sluice_input") (param $len i32) (result i32)
    (local $pages i32)
    (local.set $pages (i32.shr_u (i32.add (i32.add (i32.const 66560) (i32.mul (local.get $len) (i32.const 3))) (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size)) (then (drop (memory.grow (i32.sub (local.get $pages) (memory.size))))))
    i32.const 65536)
  (func (export "sluice:map:parse_visit") (param $ptr i32) (param $len i32) (result i64)
    (local $n i32) (local $i i32) (local $p i32) (local $klen i32) (local $out i32) (local $o i32)
    (local.set $n (i32.load (local.get $ptr)))
    (local.set $p (i32.add (local.get $ptr) (i32.const 4)))
    (local.set $out (i32.add (local.get $ptr) (local.get $len)))
    (i32.store (local.get $out) (local.get $n))
    (local.set $o (i32.add (local.get $out) (i32.const 4)))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $klen (i32.load (local.get $p)))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (if (i32.ne (local.get $klen) (i32.const -1)) (then (local.set $p (i32.add (local.get $p) (local.get $klen)))))
      (local.set $p (i32.add (local.get $p) (i32.add (i32.const 4) (i32.load (local.get $p)))))
      ;; [u32 2]["v2"][u32 8][i64 1][i64 ts]
      (i32.store (local.get $o) (i32.const 2))
      (i32.store16 offset=4 (local.get $o) (i32.const 0x3276))
      (i32.store offset=6 (local.get $o) (i32.const 8))
      (i64.store offset=10 (local.get $o) (i64.const 1))
      (i64.store offset=18 (local.get $o) (i64.load (local.get $p)))
      (local.set $p (i32.add (local.get $p) (i32.const 8)))
      (local.set $o (i32.add (local.get $o) (i32.const 26)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each)))
    (i32.store (local.get $o) (i32.const 0))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.sub (i32.add (local.get $o) (i32.const 4)) (local.get $out))))))
"#;

#[test]
fn hot_swap_under_load_switches_at_a_batch_boundary_without_losing_records() {
    let s = start();
    let a = new_tenant(&s, "acme");
    assert_eq!(upload(&s, &a, "examples", sluice_udf_artifacts::EXAMPLES).0, 201);
    let (status, v2) = upload(&s, &a, "examples", &wat::parse_str(PARSE_VISIT_V2).unwrap());
    assert_eq!((status, v2["version"].clone()), (201, json!(2)), "{v2}");
    assert_eq!(upload(&s, &a, "hostile", sluice_udf_artifacts::HOSTILE).0, 201);
    let spec = json!({
        "name": "swappable", "batch_interval": "50ms",
        "source": { "generator": { "format": "visits", "rate_per_s": 20000 } },
        "stages": [ { "map": { "udf": "examples@1", "function": "parse_visit", "value": "i64" } }, { "reduce_by_key": { "builtin": "sum" } } ],
        "sink": { "print": {} }
    });
    let (_, job) = post_spec(&s, "/api/v1/jobs", &a, &spec);
    let id = job["id"].as_i64().unwrap();
    let url = |p: &str| format!("{}/api/v1/jobs/{id}{p}", s.base);
    let swap = |body: Value| {
        call(
            "POST",
            &url("/swap"),
            Some(&a),
            Some(("application/json", body.to_string().into_bytes())),
        )
    };

    // Not running yet: swapped for its next start, checked first (hostile has no parse_visit).
    let (status, body) = swap(json!({ "stage": 0, "udf": "hostile@1" }));
    assert_eq!((status, code(&body)), (400, "invalid_spec"), "{body}");
    assert_eq!(call("POST", &url("/start"), Some(&a), None).0, 200);
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Refused before anything changes: a module without the function, a stage without a UDF.
    let (status, body) = swap(json!({ "stage": 0, "udf": "hostile@1" }));
    assert_eq!((status, code(&body)), (400, "incompatible"), "{body}");
    let (status, body) = swap(json!({ "stage": 1, "udf": "examples@2" }));
    assert_eq!((status, code(&body)), (400, "not_a_udf_stage"), "{body}");

    let (status, done) = swap(json!({ "stage": 0, "udf": "examples@2" }));
    assert_eq!(status, 200, "{done}");
    let effective = done["effective_batch"].as_i64().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(call("POST", &url("/stop"), Some(&a), None).0, 200);

    let (_, batches) = call("GET", &url("/batches"), Some(&a), None);
    let batches = batches.as_array().unwrap();
    let ids: Vec<i64> = batches.iter().map(|b| b["batch_id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as i64).collect::<Vec<_>>(),
        "no batch skipped or repeated"
    );
    assert!(ids.len() as i64 > effective, "batches ran after the swap");
    for b in batches {
        assert_eq!(b["records_in"], 1000);
        assert_eq!(
            b["stages"][0]["records_out"], 1000,
            "no record lost or doubled in batch {}",
            b["batch_id"]
        );
    }
    // Each batch's output comes from exactly one version, and all its records are counted.
    let (_, out) = call("GET", &url("/output"), Some(&a), None);
    let mut by_batch: std::collections::BTreeMap<i64, Vec<(String, i64)>> = Default::default();
    for r in out.as_array().unwrap() {
        by_batch
            .entry(r["batch"].as_i64().unwrap())
            .or_default()
            .push((r["key"].as_str().unwrap().into(), r["value"].as_i64().unwrap()));
    }
    let first = *by_batch.keys().next().unwrap();
    for (batch, records) in by_batch.iter().filter(|(b, _)| **b > first) {
        let v2 = records.iter().filter(|(k, _)| k == "v2").count();
        if *batch >= effective {
            assert_eq!(records, &vec![("v2".to_owned(), 1000)], "batch {batch} ran v2 only");
        } else {
            assert_eq!(v2, 0, "batch {batch} ran v1 only");
            assert_eq!(records.iter().map(|(_, n)| n).sum::<i64>(), 1000);
        }
    }
    let (_, got) = call("GET", &url(""), Some(&a), None);
    assert_eq!(
        got["swaps"],
        json!([{ "stage": 0, "udf": "examples@2", "batch": effective }])
    );
    assert_eq!(
        got["udfs"],
        json!([{ "module": "examples", "version": 1 }, { "module": "examples", "version": 2 }])
    );
}

#[test]
fn scenario_1_over_http_ingest_gives_the_known_answer_and_backpressure_is_429() {
    let s = start();
    let a = new_tenant(&s, "acme");
    assert_eq!(upload(&s, &a, "examples", sluice_udf_artifacts::EXAMPLES).0, 201);
    let spec = json!({
        "name": "visits over http", "batch_interval": "100ms",
        "source": { "http": { "buffer_records": 50 } },
        "stages": [
            { "map": { "udf": "examples@latest", "function": "parse_visit", "value": "i64" } },
            { "reduce_by_key_and_window": { "length": "60s", "reduce": { "builtin": "sum", "inverse": true }, "filter": "nonzero" } }
        ],
        "sink": { "print": {} }
    });
    let (status, job) = post_spec(&s, "/api/v1/jobs", &a, &spec);
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_i64().unwrap();
    let url = |p: &str| format!("{}/api/v1/jobs/{id}{p}", s.base);
    let send = |ct: &str, body: &[u8]| call("POST", &url("/ingest"), Some(&a), Some((ct, body.to_vec())));

    assert_eq!(code(&send("text/plain", b"u1,1,/a\n").1), "not_running");
    assert_eq!(call("POST", &url("/start"), Some(&a), None).0, 200);
    // The seed's scenario 1 input (examples/data/visits.jsonl), as one JSON request and as lines.
    let lines = json!([
        "u1,1700000001,/home",
        "u2,1700000001,/cart",
        "u1,1700000001,/item/3",
        "u3,1700000002,/home"
    ]);
    let (status, body) = send("application/json", lines.to_string().as_bytes());
    assert_eq!((status, body["accepted"].clone()), (202, json!(4)), "{body}");
    let (status, body) = send(
        "text/plain",
        b"u1,1700000004,/checkout\nu2,1700000004,/home\r\nu3,1700000005,/item/7\n",
    );
    assert_eq!((status, body["accepted"].clone()), (202, json!(3)), "{body}");
    std::thread::sleep(std::time::Duration::from_millis(500));

    let (_, out) = call("GET", &url("/output"), Some(&a), None);
    let out = out.as_array().unwrap();
    let last = out.iter().map(|r| r["batch"].as_i64().unwrap()).max().unwrap();
    let mut counts: Vec<(String, i64)> = out
        .iter()
        .filter(|r| r["batch"] == last)
        .map(|r| (r["key"].as_str().unwrap().to_owned(), r["value"].as_i64().unwrap()))
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [("u1".to_owned(), 3), ("u2".to_owned(), 2), ("u3".to_owned(), 2)]
    );

    // More than the buffer holds: refused whole with 429, nothing taken.
    let many: Vec<String> = (0..60).map(|i| format!("u9,{i},/x")).collect();
    let (status, body) = send("text/plain", many.join("\n").as_bytes());
    assert_eq!((status, code(&body)), (429, "backpressure"), "{body}");
    let (status, body) = send("application/json", b"[1, 2]");
    assert_eq!((status, code(&body)), (400, "bad_json"), "{body}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (_, out) = call("GET", &url("/output"), Some(&a), None);
    assert!(
        out.as_array().unwrap().iter().all(|r| r["key"] != "u9"),
        "a refused request adds nothing"
    );
    assert_eq!(call("POST", &url("/stop"), Some(&a), None).0, 200);
}

#[test]
fn quotas_name_themselves_and_feed_the_call_limits() {
    let size = sluice_udf_artifacts::EXAMPLES.len().to_string();
    let s = start_with(
        tempfile::tempdir().unwrap(),
        &[
            "--quota-jobs",
            "1",
            "--quota-module-bytes",
            &size,
            "--quota-ingest-records-per-s",
            "5",
            "--quota-call-cpu-time-ms",
            "100",
        ],
    );
    let a = new_tenant(&s, "acme");
    assert_eq!(upload(&s, &a, "examples", sluice_udf_artifacts::EXAMPLES).0, 201);
    let (status, body) = upload(&s, &a, "examples", &sluice_tests::examples_v2());
    assert_eq!((status, code(&body)), (403, "quota"));
    assert!(
        body["error"]["message"].as_str().unwrap().contains("module_bytes_max"),
        "{body}"
    );
    assert_eq!(
        call("DELETE", &format!("{}/api/v1/udfs/examples/1", s.base), Some(&a), None).0,
        204
    );
    assert_eq!(
        upload(&s, &a, "hostile", sluice_udf_artifacts::HOSTILE).0,
        201,
        "deleting frees the quota"
    );

    // A job whose UDF never returns: the tenant's call time quota (100 ms) stops it.
    let spec = json!({
        "name": "spinner", "batch_interval": "100ms",
        "source": { "http": {} },
        "stages": [ { "map": { "udf": "hostile", "function": "spin" } } ],
        "sink": { "print": {} }
    });
    let (status, job) = post_spec(&s, "/api/v1/jobs", &a, &spec);
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_i64().unwrap();
    let (status, body) = post_spec(&s, "/api/v1/jobs", &a, &spec);
    assert_eq!((status, code(&body)), (403, "quota"));
    assert!(
        body["error"]["message"].as_str().unwrap().contains("jobs_max"),
        "{body}"
    );

    let url = |p: &str| format!("{}/api/v1/jobs/{id}{p}", s.base);
    assert_eq!(call("POST", &url("/start"), Some(&a), None).0, 200);
    let send = |body: &[u8]| call("POST", &url("/ingest"), Some(&a), Some(("text/plain", body.to_vec())));
    let (status, body) = send(b"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
    assert_eq!((status, code(&body)), (429, "quota"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ingest_records_per_s_max"),
        "{body}"
    );
    assert_eq!(send(b"one\n").0, 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let job = loop {
        let (_, job) = call("GET", &url(""), Some(&a), None);
        if job["status"] == "failed" || std::time::Instant::now() > deadline {
            break job;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["last_error"].as_str().unwrap();
    assert!(
        error.contains("time limit of 100 ms") && error.contains("hostile@1"),
        "{error}"
    );
    let (_, text) = call("GET", &format!("{}/metrics", s.base), Some(&s.admin), None);
    assert!(
        text.as_str()
            .unwrap()
            .contains("sluice_udf_failures_total{kind=\"timeout\"} 1"),
        "{text}"
    );
}

#[test]
fn every_tenant_route_answers_404_on_another_tenants_ids_and_401_without_a_token() {
    let s = start();
    let a = new_tenant(&s, "acme");
    let b = new_tenant(&s, "globex");
    assert_eq!(upload(&s, &a, "examples", sluice_udf_artifacts::EXAMPLES).0, 201);
    let spec = json!({
        "name": "a-job", "batch_interval": "100ms", "source": { "http": {} },
        "stages": [ { "map": { "udf": "examples", "function": "parse_visit", "value": "i64" } } ],
        "sink": { "print": {} }
    });
    let (_, job) = post_spec(&s, "/api/v1/jobs", &a, &spec);
    let id = job["id"].as_i64().unwrap();
    assert_eq!(
        call("POST", &format!("{}/api/v1/jobs/{id}/start", s.base), Some(&a), None).0,
        200
    );
    let json_body = |v: Value| Some(("application/json", v.to_string().into_bytes()));
    let routes: Vec<Route<'_>> = vec![
        ("GET", "/api/v1/udfs/examples/1".into(), None),
        ("GET", "/api/v1/udfs/examples/latest".into(), None),
        ("GET", "/api/v1/udfs/examples/1/wasm".into(), None),
        ("DELETE", "/api/v1/udfs/examples/1".into(), None),
        ("GET", format!("/api/v1/jobs/{id}"), None),
        ("DELETE", format!("/api/v1/jobs/{id}"), None),
        ("POST", format!("/api/v1/jobs/{id}/start"), None),
        ("POST", format!("/api/v1/jobs/{id}/stop"), None),
        ("GET", format!("/api/v1/jobs/{id}/batches"), None),
        ("GET", format!("/api/v1/jobs/{id}/output"), None),
        ("GET", format!("/api/v1/jobs/{id}/rates"), None),
        ("GET", format!("/api/v1/jobs/{id}/output/stream"), None),
        (
            "POST",
            format!("/api/v1/jobs/{id}/ingest"),
            Some(("text/plain", b"u1,1,/a".to_vec())),
        ),
        (
            "POST",
            format!("/api/v1/jobs/{id}/swap"),
            json_body(json!({ "stage": 0, "udf": "examples@1" })),
        ),
    ];
    for (method, path, body) in &routes {
        let (status, resp) = call(method, &format!("{}{path}", s.base), Some(&b), body.clone());
        assert_eq!(
            (status, code(&resp)),
            (404, "not_found"),
            "{method} {path} with B's token"
        );
        let (status, resp) = call(method, &format!("{}{path}", s.base), None, body.clone());
        assert_eq!(
            (status, code(&resp)),
            (401, "unauthorized"),
            "{method} {path} without a token"
        );
    }
    for (method, path) in [("GET", "/api/v1/udfs"), ("GET", "/api/v1/jobs")] {
        let (status, list) = call(method, &format!("{}{path}", s.base), Some(&b), None);
        assert_eq!((status, list), (200, json!([])), "{path} lists nothing of A's for B");
    }
    // A's job was untouched by all of that.
    let (_, got) = call("GET", &format!("{}/api/v1/jobs/{id}", s.base), Some(&a), None);
    assert_eq!(got["status"], "running");
    assert_eq!(
        call("POST", &format!("{}/api/v1/jobs/{id}/stop", s.base), Some(&a), None).0,
        200
    );
}

#[test]
fn output_streams_live_as_server_sent_events() {
    let s = start();
    let a = new_tenant(&s, "acme");
    assert_eq!(upload(&s, &a, "examples", sluice_udf_artifacts::EXAMPLES).0, 201);
    let spec = json!({
        "name": "live", "batch_interval": "100ms", "source": { "http": {} },
        "stages": [ { "map": { "udf": "examples", "function": "parse_visit", "value": "i64" } } ],
        "sink": { "print": {} }
    });
    let (_, job) = post_spec(&s, "/api/v1/jobs", &a, &spec);
    let id = job["id"].as_i64().unwrap();
    let stream_url = format!("{}/api/v1/jobs/{id}/output/stream", s.base);
    assert_eq!(code(&call("GET", &stream_url, Some(&a), None).1), "not_running");
    assert_eq!(
        call("POST", &format!("{}/api/v1/jobs/{id}/start", s.base), Some(&a), None).0,
        200
    );

    let resp = agent()
        .get(&stream_url)
        .header("Authorization", &format!("Bearer {a}"))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let reader = BufReader::new(resp.into_body().into_reader());
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let ingest = format!("{}/api/v1/jobs/{id}/ingest", s.base);
    assert_eq!(
        call(
            "POST",
            &ingest,
            Some(&a),
            Some(("text/plain", b"u7,1700000000,/home\n".to_vec()))
        )
        .0,
        202
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = Vec::new();
    let record = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_else(|_| panic!("no record event; saw {seen:?}"));
        if let Some(data) = line.strip_prefix("data: ")
            && seen.last().is_some_and(|l: &String| l == "event: record")
        {
            break serde_json::from_str::<Value>(data).unwrap();
        }
        seen.push(line);
    };
    assert_eq!(record["key"], "u7");
    assert_eq!(record["value"], 1);
    assert_eq!(
        call("POST", &format!("{}/api/v1/jobs/{id}/stop", s.base), Some(&a), None).0,
        200
    );
}

#[test]
fn an_upload_that_compiles_too_long_is_refused() {
    // 1 ms is less than any real module takes to compile (the examples take tens of ms).
    let s = start_with(tempfile::tempdir().unwrap(), &["--compile-time-ms-max", "1"]);
    let a = new_tenant(&s, "acme");
    let (status, body) = upload(&s, &a, "examples", sluice_udf_artifacts::EXAMPLES);
    assert_eq!((status, code(&body)), (422, "compile_timeout"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("compile_time_ms_max"),
        "{body}"
    );
    assert_eq!(
        call("GET", &format!("{}/api/v1/udfs", s.base), Some(&a), None).1,
        json!([]),
        "nothing stored"
    );
    assert_eq!(
        call("GET", &format!("{}/api/v1/health", s.base), None, None).0,
        200,
        "the server is fine"
    );
}

#[test]
fn the_cli_client_drives_the_server() {
    let s = start();
    let token = new_tenant(&s, "acme");
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("examples.wasm");
    std::fs::write(&wasm, sluice_udf_artifacts::EXAMPLES).unwrap();
    let spec = dir.path().join("job.json");
    std::fs::write(
        &spec,
        json!({
            "name": "cli-job", "batch_interval": "100ms", "source": { "generator": { "format": "visits", "rate_per_s": 2000 } },
            "stages": [ { "map": { "udf": "examples", "function": "parse_visit", "value": "i64" } }, { "reduce_by_key": { "builtin": "sum" } } ],
            "sink": { "print": {} }
        })
        .to_string(),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new(sluice_bin())
            .args(args)
            .env("SLUICE_SERVER", &s.base)
            .env("SLUICE_TOKEN", &token)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = cli(&["udf", "upload", "examples", wasm.to_str().unwrap()]);
    assert!(
        ok && out.contains("uploaded examples@1") && out.contains("parse_visit (map)"),
        "{out}{err}"
    );
    let (ok, out, _) = cli(&["udf", "list"]);
    assert!(
        ok && out.lines().next().unwrap().starts_with("NAME") && out.contains("examples  1"),
        "{out}"
    );
    let (ok, out, err) = cli(&["job", "create", spec.to_str().unwrap()]);
    assert!(
        ok && out.contains("cli-job") && out.contains("created") && out.contains("examples@1"),
        "{out}{err}"
    );
    let (ok, out, _) = cli(&["job", "start", "1"]);
    assert!(ok && out.contains("running"), "{out}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (ok, out, _) = cli(&["job", "status", "1"]);
    assert!(ok && out.contains("PROCESSING MS") && out.contains("200"), "{out}");
    let (ok, out, _) = cli(&["job", "output", "1"]);
    assert!(ok && out.contains("BATCH") && out.contains(" u"), "{out}");
    let (ok, out, _) = cli(&["job", "stop", "1"]);
    assert!(ok && out.contains("stopped"), "{out}");
    let (ok, out, _) = cli(&["job", "list"]);
    assert!(ok && out.contains("cli-job") && out.contains("stopped"), "{out}");
    // Errors come back as `code (status): message` and a failing exit.
    let (ok, _, err) = cli(&["job", "status", "99"]);
    assert!(!ok && err.contains("not_found (404)"), "{err}");
    let out = Command::new(sluice_bin())
        .args(["udf", "list"])
        .env("SLUICE_SERVER", &s.base)
        .env_remove("SLUICE_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("SLUICE_TOKEN"));
}

#[test]
fn the_openapi_document_matches_the_server() {
    let s = start();
    let a = new_tenant(&s, "acme");
    let (status, doc) = call("GET", &format!("{}/api/v1/openapi.json", s.base), None, None);
    assert_eq!(status, 200, "the document is served without a token");
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 18, "{}", paths.len());
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap().iter().filter(|(m, _)| *m != "parameters") {
            let url = format!(
                "{}{}",
                s.base,
                path.replace("{name}", "examples")
                    .replace("{version}", "1")
                    .replace("{id}", "999")
            );
            let method = method.to_uppercase();
            let body = (method == "POST").then(|| ("application/json", Vec::new()));
            let (status, resp) = call(&method, &url, Some(&a), body);
            assert!(
                !(status == 404 && resp["error"]["message"] == "no such route"),
                "{method} {path} is documented but not served"
            );
            let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            assert!(
                documented.contains(&&status.to_string()),
                "{method} {path} answered {status}, documented {documented:?}: {resp}"
            );
        }
    }
}

#[test]
fn modules_upload_as_multipart_too() {
    let s = start();
    let a = new_tenant(&s, "acme");
    let form = |name: &str, filename: Option<&str>, bytes: &[u8]| {
        let mut body = Vec::new();
        let file = filename.map(|f| format!("; filename=\"{f}\"")).unwrap_or_default();
        body.extend_from_slice(format!("--XB\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\nContent-Type: application/wasm\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n--XB--\r\n");
        body
    };
    let url = format!("{}/api/v1/udfs/examples", s.base);
    let (status, m) = call(
        "POST",
        &url,
        Some(&a),
        Some((
            "multipart/form-data; boundary=XB",
            form("file", Some("examples.wasm"), sluice_udf_artifacts::EXAMPLES),
        )),
    );
    assert_eq!((status, m["version"].clone()), (201, json!(1)), "{m}");
    let (_, m) = call("GET", &format!("{url}/1"), Some(&a), None);
    assert_eq!(
        m["size_bytes"],
        sluice_udf_artifacts::EXAMPLES.len(),
        "the file part, not the whole form, was stored"
    );
    let (status, body) = call(
        "POST",
        &url,
        Some(&a),
        Some(("multipart/form-data; boundary=XB", form("comment", None, b"hello"))),
    );
    assert_eq!((status, code(&body)), (400, "bad_multipart"), "{body}");
}

#[test]
fn the_demo_seeds_a_tenant_with_the_examples_and_a_running_job() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("demo-token");
    let s = start_with(dir, &["--demo"]);
    let token = std::fs::read_to_string(&token_file).unwrap();
    let (_, jobs) = call("GET", &format!("{}/api/v1/jobs", s.base), Some(&token), None);
    let jobs = jobs.as_array().unwrap().clone();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["status"], "running");
    let id = jobs[0]["id"].as_i64().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (_, out) = call(
        "GET",
        &format!("{}/api/v1/jobs/{id}/output", s.base),
        Some(&token),
        None,
    );
    let out = out.as_array().unwrap();
    assert!(
        !out.is_empty() && out.iter().all(|r| r["key"].as_str().unwrap().starts_with('u')),
        "{out:?}"
    );
    // A restart on the same data resumes the job and seeds nothing twice.
    let dir = s.terminate();
    let s = start_with(dir, &["--demo"]);
    let (_, jobs) = call("GET", &format!("{}/api/v1/jobs", s.base), Some(&token), None);
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(jobs[0]["status"], "running");
}
