//! Admission and bounds through the real server: every size a spec or request asks for is
//! bounded by a named quota (checked before anything runs or is stored, and in the insert's own
//! transaction where rows are counted), what a job holds is bounded in bytes, and the API keeps
//! its contract on odd requests (issue 7, items 1, 13, 16, 19).

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{Value, json};

use super::harness::{
    Server, call, code, create_and_start, eventually, new_tenant, new_tenant_id, post_spec, set_quotas, start, upload,
};

fn problems(body: &Value) -> Vec<(String, String)> {
    body["error"]["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems: {body}"))
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_owned(),
                p["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Items 1 and 13: sizes a spec asks for are refused at admission, each at its field's path
/// with the quota's name: a 1e13 lines/s generator (560 TB per batch), 100,000 stages, a window
/// spanning years, a batch interval near 2^64 s.
#[test]
fn sizes_a_spec_asks_for_are_refused_with_the_quota_named() {
    let s = start();
    let a = new_tenant(&s, "acme");
    let spec = |source: Value, stages: Value, interval: &str| json!({ "name": "big", "batch_interval": interval, "source": source, "stages": stages, "sink": { "print": {} } });
    let cases = [
        (
            spec(
                json!({ "generator": { "format": "words", "rate_per_s": 10_000_000_000_000u64 } }),
                json!([]),
                "1s",
            ),
            "source.generator.rate_per_s",
            "batch_records_max",
        ),
        (
            spec(
                json!({ "generator": { "format": "words", "lines_per_batch": 5_000_000 } }),
                json!([]),
                "1s",
            ),
            "source.generator.lines_per_batch",
            "batch_records_max",
        ),
        (
            spec(json!({ "http": { "buffer_records": 50_000_000 } }), json!([]), "1s"),
            "source.http.buffer_records",
            "batch_records_max",
        ),
        (
            spec(
                json!({ "http": {} }),
                json!((0..100_000).map(|_| json!({ "parse_int": {} })).collect::<Vec<_>>()),
                "1s",
            ),
            "stages",
            "stages_max",
        ),
        (
            spec(
                json!({ "http": {} }),
                json!([ { "window": { "length": "3650d" } } ]),
                "100ms",
            ),
            "stages[0].window.length",
            "window_batches_max",
        ),
        (
            spec(json!({ "http": {} }), json!([]), "1ms"),
            "batch_interval",
            "batch_interval_ms_min",
        ),
    ];
    for (spec, path, quota) in cases {
        let (status, body) = post_spec(&s, "/api/v1/jobs", &a, &spec);
        assert_eq!((status, code(&body)), (400, "invalid_spec"), "{body}");
        let p = problems(&body);
        assert!(
            p.iter().any(|(pp, m)| pp == path && m.contains(quota)),
            "{path} / {quota} in {p:?}"
        );
    }
    // A duration near 2^64 s is an error, not a wrap-around to 384 ms.
    let (status, body) = post_spec(
        &s,
        "/api/v1/jobs",
        &a,
        &spec(json!({ "http": {} }), json!([]), "18446744073709552s"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(problems(&body).iter().any(|(p, _)| p == "batch_interval"), "{body}");
    assert_eq!(
        call("GET", &s.url("/api/v1/jobs"), Some(&a), None).1,
        json!([]),
        "nothing stored"
    );
}

/// Item 16: concurrent uploads cannot pass the module quota together, nor concurrent creates
/// the jobs quota: the quota is counted in the insert's own transaction.
#[test]
fn quota_checks_do_not_race() {
    let s = start();
    let (id, a) = new_tenant_id(&s, "acme");
    let size = sluice_udf_artifacts::EXAMPLES.len() as i64;
    set_quotas(
        &s,
        id,
        json!({ "module_bytes_max": size * 3 / 2, "compiles_concurrent_max": 8, "jobs_max": 2 }),
    );
    let stored: Vec<u16> = std::thread::scope(|scope| {
        // Other bytes each time (the same bytes would give the stored version back).
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let wasm = sluice_tests::with_custom_section(sluice_udf_artifacts::EXAMPLES, &format!("upload-{i}"));
                let s = &s;
                let a = &a;
                scope.spawn(move || upload(s, a, "examples", &wasm).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(stored.iter().filter(|st| **st == 201).count(), 1, "{stored:?}");
    assert!(stored.iter().all(|st| [201, 403].contains(st)), "{stored:?}");
    let (_, modules) = call("GET", &s.url("/api/v1/udfs"), Some(&a), None);
    assert_eq!(modules.as_array().unwrap().len(), 1);

    let spec = json!({ "name": "j", "batch_interval": "1s", "source": { "http": {} }, "sink": { "print": {} } });
    let created: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..30)
            .map(|_| scope.spawn(|| post_spec(&s, "/api/v1/jobs", &a, &spec).0))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(created.iter().filter(|st| **st == 201).count(), 2, "{created:?}");
    let (_, jobs) = call("GET", &s.url("/api/v1/jobs"), Some(&a), None);
    assert_eq!(jobs.as_array().unwrap().len(), 2);
}

fn rss(s: &Server) -> f64 {
    s.metric("process_resident_memory_bytes ")
        .expect("the server reports its RSS")
}

/// Item 13: what a job holds is bounded in bytes: the ingest buffer (15 MiB records to an
/// hourly job are refused with 429 once the buffer's bytes are used), and the output kept (a
/// job echoing large records keeps at most output_bytes_max of them).
#[test]
fn what_a_job_holds_is_bounded_in_bytes() {
    let s = start();
    let (id, a) = new_tenant_id(&s, "acme");
    set_quotas(
        &s,
        id,
        json!({ "source_buffer_bytes_max": 40 << 20, "output_bytes_max": 1 << 20 }),
    );
    let hourly = json!({ "name": "hourly", "batch_interval": "1h", "source": { "http": {} }, "sink": { "print": {} } });
    let job = create_and_start(&s, &a, &hourly);
    let before = rss(&s);
    let record = vec![b'x'; 15 << 20];
    let mut statuses = Vec::new();
    let mut after_ten = 0.0;
    for i in 0..40 {
        if i == 10 {
            after_ten = rss(&s);
        }
        let (status, body) = call(
            "POST",
            &s.url(&format!("/api/v1/jobs/{job}/ingest")),
            Some(&a),
            Some(("text/plain", record.clone())),
        );
        if status == 429 {
            assert_eq!(code(&body), "backpressure");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("source_buffer_bytes_max"),
                "{body}"
            );
        }
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|st| **st == 202).count(), 2, "{statuses:?}");
    // 600 MiB were sent; what the server holds stays bounded: 30 more requests add nothing.
    let mib = |b: f64| b / (1 << 20) as f64;
    let end = rss(&s);
    assert!(
        end - before < 200.0 * (1 << 20) as f64,
        "RSS grew by {} MiB",
        mib(end - before)
    );
    assert!(
        end - after_ten < 40.0 * (1 << 20) as f64,
        "RSS went on growing: {} MiB after 10 requests, {} MiB after 40",
        mib(after_ten),
        mib(end)
    );

    // Output: a pass-through job fed 2 MiB records keeps at most 1 MiB of them.
    let echo = json!({ "name": "echo", "batch_interval": "100ms", "source": { "http": {} }, "sink": { "print": {} } });
    let e = create_and_start(&s, &a, &echo);
    for _ in 0..5 {
        let small = vec![b'y'; 300 << 10];
        let (status, _) = call(
            "POST",
            &s.url(&format!("/api/v1/jobs/{e}/ingest")),
            Some(&a),
            Some(("text/plain", small)),
        );
        assert_eq!(status, 202);
    }
    let out = eventually(Duration::from_secs(5), || {
        let (_, out) = call("GET", &s.url(&format!("/api/v1/jobs/{e}/output")), Some(&a), None);
        out.as_array().filter(|o| !o.is_empty()).cloned()
    })
    .expect("output");
    let bytes: usize = out.iter().map(|r| r.to_string().len()).sum();
    assert!(bytes <= 1 << 20, "output kept: {bytes} bytes");
    assert!(
        out.iter()
            .all(|r| r["value"].as_str().unwrap().len() <= 16 << 10 && r["value_cut_from_bytes"] == 300 << 10),
        "large values are cut and say so"
    );
}

/// Item 19: the contract holds on odd requests: 405 and 431 answer in the error shape, a body
/// that is not UTF-8 or too large is a JSON error, an empty ingest is refused, the registry file
/// is private.
#[test]
fn odd_requests_get_the_error_shape() {
    let s = start();
    let a = new_tenant(&s, "acme");
    let (status, body) = call("DELETE", &s.url("/api/v1/udfs"), Some(&a), None);
    assert_eq!((status, code(&body)), (405, "method_not_allowed"), "{body}");

    let (status, body) = call(
        "POST",
        &s.url("/api/v1/jobs"),
        Some(&a),
        Some(("application/json", vec![0xff, 0xfe, 0x7b])),
    );
    assert_eq!((status, code(&body)), (400, "bad_body"), "{body}");
    let (status, body) = call(
        "POST",
        &s.url("/api/v1/jobs"),
        Some(&a),
        Some(("application/json", vec![b' '; 3 << 20])),
    );
    assert_eq!((status, code(&body)), (413, "too_large"), "{body}");

    // 150 headers: over the server's 100.
    let mut conn = std::net::TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
    let mut req = String::from("GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for i in 0..150 {
        req.push_str(&format!("X-Filler-{i}: {i}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(answer.contains("\"headers_too_large\""), "{answer}");

    let spec = json!({ "name": "h", "batch_interval": "1s", "source": { "http": {} }, "sink": { "print": {} } });
    let job = create_and_start(&s, &a, &spec);
    let (status, body) = call(
        "POST",
        &s.url(&format!("/api/v1/jobs/{job}/ingest")),
        Some(&a),
        Some(("text/plain", Vec::new())),
    );
    assert_eq!((status, code(&body)), (400, "empty_body"), "{body}");

    use std::os::unix::fs::PermissionsExt;
    for name in ["registry.db", "registry.db-wal"] {
        let mode = std::fs::metadata(s.dir().join(name)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let dir_mode = std::fs::metadata(s.dir()).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700, "the data directory");
}

/// Quotas are per tenant and set by an admin; a tenant cannot set its own.
#[test]
fn admins_set_a_tenants_quotas() {
    let s = start();
    let (id, a) = new_tenant_id(&s, "acme");
    let (status, body) = call(
        "PATCH",
        &s.url(&format!("/api/v1/tenants/{id}")),
        Some(&a),
        Some(("application/json", json!({ "jobs_max": 1000 }).to_string().into_bytes())),
    );
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let (status, body) = call(
        "PATCH",
        &s.url(&format!("/api/v1/tenants/{id}")),
        Some(&s.admin),
        Some(("application/json", json!({ "jobs": 1 }).to_string().into_bytes())),
    );
    assert_eq!((status, code(&body)), (400, "bad_quotas"), "{body}");
    set_quotas(&s, id, json!({ "stages_max": 1 }));
    let (_, t) = call("GET", &s.url(&format!("/api/v1/tenants/{id}")), Some(&s.admin), None);
    assert_eq!(t["quotas"]["stages_max"], 1);
    assert_eq!(t["quota_overrides"], json!({ "stages_max": 1 }));
    let spec = json!({ "name": "two", "batch_interval": "1s", "source": { "http": {} },
        "stages": [ { "key_by": { "field": 0 } }, { "key_by": { "field": 1 } } ], "sink": { "print": {} } });
    let (status, body) = post_spec(&s, "/api/v1/jobs", &a, &spec);
    assert_eq!(status, 400);
    assert!(problems(&body)[0].1.contains("stages_max (1)"), "{body}");
    set_quotas(&s, id, json!({ "stages_max": null }));
    assert_eq!(post_spec(&s, "/api/v1/jobs", &a, &spec).0, 201, "back to the default");
}
