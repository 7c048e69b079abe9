//! The web console, served by the real `sluice serve` on loopback and used in a real browser
//! (Debian's Chromium, headless, over WebDriver): sign in, upload a UDF with the file input,
//! create a job from a template and start it, send records, watch the charts and the output
//! tail, hot-swap a version and see its marker, see a spec's problem at its line, never see
//! another tenant's job, and see a record holding HTML as text. The test also saves the
//! screenshots the README shows (`docs/screenshots/`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_tests::browser::Browser;

use super::harness::{Server, call, create_and_start, new_tenant_id, start};

const WAIT: Duration = Duration::from_secs(30);

/// Saves a screenshot of the page's top as `docs/screenshots/NAME.png`.
fn shot(b: &Browser, name: &str) {
    b.js("window.scrollTo(0, 0)", vec![]);
    std::thread::sleep(Duration::from_millis(300));
    b.screenshot(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../docs/screenshots/{name}.png")));
}

fn get(s: &Server, path: &str, headers: &[(&str, &str)]) -> ureq::http::Response<ureq::Body> {
    let mut req = super::harness::agent().get(&s.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.call().expect("an answer")
}

#[test]
fn the_console_is_embedded_and_served_with_a_strict_csp() {
    let s = start();
    let mut page = get(&s, "/", &[]);
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    for rule in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(rule), "the CSP has {rule}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.body_mut().read_to_string().unwrap();
    // No inline script, no inline style, nothing from another host.
    for script in html.split("<script").skip(1) {
        let tag = &script[..script.find('>').unwrap()];
        assert!(
            tag.contains("src=\"/assets/"),
            "every script is a file of the console: <script{tag}>"
        );
    }
    assert!(!html.contains(" style=") && !html.contains("<style"), "no inline style");
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("src=\"//"));

    // Its files: served with their types and an ETag; revalidation answers 304.
    let mut js = get(&s, "/assets/js/main.js", &[]);
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.headers().contains_key("content-security-policy"));
    let etag = js.headers()["etag"].to_str().unwrap().to_owned();
    assert!(!js.body_mut().read_to_string().unwrap().is_empty());
    assert_eq!(get(&s, "/assets/js/main.js", &[("if-none-match", &etag)]).status(), 304);
    for missing in [
        "/assets/nope.js",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/index.html",
    ] {
        assert_eq!(get(&s, missing, &[]).status(), 404, "{missing}");
    }
}

/// Uploads nothing and creates nothing: a tenant `bob` with a running job named `bob-secret-job`.
fn bobs_job(s: &Server) -> i64 {
    let (_, bob) = new_tenant_id(s, "bob");
    create_and_start(
        s,
        &bob,
        &json!({
            "name": "bob-secret-job",
            "batch_interval": "1s",
            "source": { "generator": { "format": "words", "rate_per_s": 100 } },
            "stages": [ { "key_by": { "field": 0 } }, { "set_value": 1 }, { "reduce_by_key": { "builtin": "sum" } } ],
            "sink": { "print": {} }
        }),
    )
}

/// A browser at 1280x800, signed in to the console with `token`.
fn signed_in(s: &Server, token: &str) -> Browser {
    let b = Browser::start(1280, 800);
    b.goto(&s.base);
    b.fill("#token-input", token);
    b.click("#sign-in");
    b.wait_for("#nav-jobs");
    b
}

fn number(v: Option<String>) -> u64 {
    v.and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[test]
fn a_tenant_works_a_job_through_the_console_in_a_real_browser() {
    let s = start();
    let (_, alice) = new_tenant_id(&s, "alice");
    let bob_job = bobs_job(&s);
    let wasm_dir = tempfile::tempdir().unwrap();
    let wasm = wasm_dir.path().join("examples.wasm");
    std::fs::write(&wasm, sluice_udf_artifacts::EXAMPLES).unwrap();
    let wasm2 = wasm_dir.path().join("examples-v2.wasm");
    std::fs::write(&wasm2, sluice_tests::examples_v2()).unwrap();

    let b = signed_in(&s, &alice);
    // No jobs yet: the page says what to do.
    b.wait_for("#jobs-empty");

    // Upload the example module twice (versions 1 and 2) with the file input.
    b.click("#nav-udfs");
    b.wait_for("#udfs-empty");
    for (version, file) in [(1, &wasm), (2, &wasm2)] {
        b.fill("#udf-name", "examples");
        b.fill("#udf-file", file.to_str().unwrap());
        b.click("#udf-upload");
        b.wait(&format!("version {version} in the UDF list"), WAIT, |b| {
            let (_, list) = call("GET", &s.url("/api/v1/udfs"), Some(&alice), None);
            let uploaded = list
                .as_array()
                .is_some_and(|l| l.iter().any(|m| m["version"] == version));
            let shown = b.text("#udfs-table").is_some_and(|t| t.contains("split_words"));
            (uploaded && shown).then_some(())
        });
    }
    shot(&b, "desktop-udfs");

    // Create the visits job from its template, on the http source, and start it.
    b.click("#nav-new");
    b.select("#spec-template", "visits-http");
    b.wait("the template in the editor", WAIT, |b| {
        b.js("return document.querySelector('#spec-editor').value", vec![])
            .as_str()
            .filter(|t| t.contains("parse_visit"))
            .map(drop)
    });
    shot(&b, "desktop-new");
    b.click("#spec-create-start");
    let id: i64 = b.wait("the new job's page", WAIT, |b| {
        let hash = b.js("return location.hash", vec![]);
        hash.as_str()?.strip_prefix("#/jobs/")?.parse().ok()
    });
    b.wait("the job running", WAIT, |b| {
        b.text("#job-status").filter(|t| t.contains("running")).map(drop)
    });

    // Send records, one of them with HTML in its key: it shows as text, never as markup.
    let html_user = "<img id=\"injected\" src=\"x\">";
    let lines = format!("u1,1000,/home\nu2,1000,/cart\n{html_user},1000,/home\nu1,1001,/pay");
    b.fill("#ingest-text", &lines);
    b.click("#ingest-send");
    b.wait("the records accepted", WAIT, |b| {
        b.text("#ingest-result").filter(|t| t.contains('4')).map(drop)
    });
    b.wait("the HTML record in the output tail", WAIT, |b| {
        b.text("#output-tail").filter(|t| t.contains(html_user)).map(drop)
    });
    assert_eq!(b.count("#injected"), 0, "a record's HTML is never made into elements");
    assert_eq!(b.count("#output-tail img"), 0);

    // The input-rate chart gets points, and one of them counts the records sent.
    b.wait("points on the input-rate chart", WAIT, |b| {
        (number(b.attr("#chart-input-rate", "data-points")) >= 3).then_some(())
    });
    for chart in ["#chart-processing", "#chart-scheduling", "#chart-total-delay"] {
        assert!(number(b.attr(chart, "data-points")) > 0, "{chart} has points");
    }
    b.wait("a batch of 4 records in the batches table", WAIT, |b| {
        b.text("#batches-table").filter(|t| t.contains('4')).map(drop)
    });

    // Hot-swap stage 0 to version 2: the page tells the batch, and the charts get a marker.
    let markers = number(b.attr("#chart-input-rate", "data-markers"));
    b.select("#swap-stage", "0");
    b.select("#swap-version", "examples@2");
    b.click("#swap-apply");
    let result = b.wait("the swap's answer", WAIT, |b| {
        b.text("#swap-result").filter(|t| t.contains("batch"))
    });
    let (_, job) = call("GET", &s.url(&format!("/api/v1/jobs/{id}")), Some(&alice), None);
    let batch = job["swaps"][0]["batch"].as_i64().expect("the swap is recorded");
    assert!(
        result.contains(&batch.to_string()),
        "the page shows the swap's batch {batch}: {result}"
    );
    b.wait("the swap's marker on the charts", WAIT, |b| {
        (number(b.attr("#chart-input-rate", "data-markers")) > markers).then_some(())
    });
    b.wait("the pipeline showing examples@2", WAIT, |b| {
        b.text("#pipeline").filter(|t| t.contains("examples@2")).map(drop)
    });
    shot(&b, "desktop-job");

    // The jobs list: alice's job, never bob's; bob's job page is not found for alice.
    b.click("#nav-jobs");
    b.wait_for(&format!("#jobs-table tr[data-job-id=\"{id}\"]"));
    shot(&b, "desktop-jobs");
    let page = |b: &Browser| {
        b.js("return document.body.innerText", vec![])
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert!(!page(&b).contains("bob-secret-job"));
    b.goto(&format!("{}/#/jobs/{bob_job}", s.base));
    b.wait("an error in place of bob's job", WAIT, |b| {
        let text = page(b);
        text.to_lowercase().contains("no such job").then_some(())
    });
    assert!(!page(&b).contains("bob-secret-job"));

    // The same pages at a phone's width.
    b.resize(390, 844);
    for (hash, name, ready) in [
        ("#/jobs", "jobs", format!("#jobs-table tr[data-job-id=\"{id}\"]")),
        (
            &*format!("#/jobs/{id}"),
            "job",
            "#chart-input-rate[data-points]".to_owned(),
        ),
        ("#/udfs", "udfs", "#udfs-table".to_owned()),
        ("#/new", "new", "#spec-editor".to_owned()),
    ] {
        b.goto(&format!("{}/{hash}", s.base));
        b.wait_for(&ready);
        let overflow = b.js(
            "return document.documentElement.scrollWidth - window.innerWidth",
            vec![],
        );
        assert!(
            overflow.as_i64().unwrap_or(0) <= 1,
            "{name}: the page fits a phone's width (overflow {overflow})"
        );
        shot(&b, &format!("phone-{name}"));
    }
}

/// Sets the editor to `text` in `format` and asks the server's dry run.
fn validate(b: &Browser, format: &str, text: &str) {
    b.select("#spec-format", format);
    b.paste("#spec-editor", text);
    b.click("#spec-validate");
}

#[test]
fn a_specs_problems_are_shown_at_their_lines() {
    let s = start();
    let (_, carol) = new_tenant_id(&s, "carol");
    let b = signed_in(&s, &carol);
    b.click("#nav-new");

    // JSON: a sum over text on line 6, then a bad interval on line 3.
    let json_spec = r#"{
  "name": "bad one",
  "batch_interval": "1s",
  "source": { "http": {} },
  "stages": [
    { "reduce_by_key_and_window": { "length": "8s", "slide": "2s", "reduce": { "builtin": "sum" } } }
  ],
  "sink": { "print": {} }
}"#;
    validate(&b, "json", json_spec);
    let problems = |b: &Browser| -> Vec<(String, String)> {
        let v: Value = b.js(
            "return [...document.querySelectorAll('#spec-problems li.problem')].map(li => [li.dataset.path, li.dataset.line])",
            vec![],
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        (
                            p[0].as_str().unwrap_or("").to_owned(),
                            p[1].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let found = b.wait("the JSON spec's problems", WAIT, |b| {
        let p = problems(b);
        p.iter().any(|(path, _)| path.starts_with("stages[0]")).then_some(p)
    });
    assert!(
        found
            .iter()
            .any(|(path, line)| path.starts_with("stages[0]") && line == "6"),
        "the window's problem is at line 6: {found:?}"
    );
    validate(&b, "json", &json_spec.replace("\"1s\"", "\"soon\""));
    let found = b.wait("the bad interval's problem", WAIT, |b| {
        let p = problems(b);
        p.iter().any(|(path, _)| path == "batch_interval").then_some(p)
    });
    assert!(
        found.contains(&("batch_interval".to_owned(), "3".to_owned())),
        "the interval's problem is at line 3: {found:?}"
    );
    shot(&b, "desktop-new-problems");

    // YAML: the same at its own lines.
    let yaml_spec = "name: bad one\nbatch_interval: 1s\nsource:\n  http: {}\nstages:\n  - set_value: 1\n  - key_by:\n      field: -4\nsink:\n  print: {}\n";
    validate(&b, "yaml", yaml_spec);
    let found = b.wait("the YAML spec's problems", WAIT, |b| {
        let p = problems(b);
        p.iter().any(|(path, _)| path.starts_with("stages[1]")).then_some(p)
    });
    assert!(
        found
            .iter()
            .any(|(path, line)| path.starts_with("stages[1]") && (line == "7" || line == "8")),
        "the key_by's problem is at its lines (7-8): {found:?}"
    );
    // Nothing was created by a dry run.
    let (_, jobs) = call("GET", &s.url("/api/v1/jobs"), Some(&carol), None);
    assert_eq!(jobs, json!([]));
}

/// What the console's job page reads besides batches: the UDF's own log lines (with stage,
/// batch and version), and the run's events (its chart markers), both kept across a restart of
/// the job in the same process.
#[test]
fn a_jobs_udf_log_lines_and_events_are_read_over_the_api() {
    let s = start();
    let (_, dave) = new_tenant_id(&s, "dave");
    let (status, up) = super::harness::upload(&s, &dave, "hostile", sluice_udf_artifacts::HOSTILE);
    assert_eq!(status, 201, "{up}");
    let id = create_and_start(
        &s,
        &dave,
        &json!({
            "name": "chatty",
            "batch_interval": "100ms",
            "source": { "http": {} },
            "stages": [ { "map": { "udf": "hostile@1", "function": "chatty" } } ],
            "sink": { "print": {} }
        }),
    );
    let url = |p: &str| s.url(&format!("/api/v1/jobs/{id}/{p}"));
    let (status, body) = call(
        "POST",
        &url("ingest"),
        Some(&dave),
        Some(("text/plain", b"hello <b>".to_vec())),
    );
    assert_eq!(status, 202, "{body}");
    let logs = super::harness::eventually(WAIT, || {
        let (_, logs) = call("GET", &url("logs"), Some(&dave), None);
        (logs["lines"].as_array()?.len() >= 3).then_some(logs)
    })
    .expect("the UDF's log lines are kept");
    let lines = logs["lines"].as_array().unwrap();
    let levels: Vec<&str> = lines.iter().map(|l| l["level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["debug", "info", "warn"], "{logs}");
    for (l, text) in lines
        .iter()
        .zip(["debug: hello <b>", "info: hello <b>", "warn: hello <b>"])
    {
        assert_eq!(l["message"], text);
        assert_eq!(
            (l["stage"].as_str(), l["udf"].as_str(), l["kind"].as_str()),
            (Some("stages[0].map"), Some("hostile@1"), Some("log"))
        );
        assert!(l["batch"].as_u64().unwrap() >= 1);
    }
    assert_eq!((logs["total"].as_u64(), logs["dropped"].as_u64()), (Some(3), Some(0)));

    // Stop and start again: the events tell it, the logs and batches are still there.
    let (status, _) = call("POST", &url("stop"), Some(&dave), None);
    assert_eq!(status, 200);
    let (status, _) = call("POST", &url("start"), Some(&dave), None);
    assert_eq!(status, 200);
    let (_, events) = call("GET", &url("events"), Some(&dave), None);
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    // A clean stop writes a checkpoint, and the next run resumes from it.
    assert_eq!(kinds, ["started", "stopped", "restored", "started"], "{events}");
    assert!(
        events[1]["batch"].as_u64().unwrap() >= 1,
        "a stop is at the last batch: {events}"
    );
    let (_, logs) = call("GET", &url("logs"), Some(&dave), None);
    assert_eq!(
        logs["lines"].as_array().unwrap().len(),
        3,
        "kept across the restart: {logs}"
    );
    // Reports of both runs (the new run's first batch comes within 100 ms).
    let batches = super::harness::eventually(WAIT, || {
        let (_, all) = call("GET", &url("batches"), Some(&dave), None);
        (all.as_array()?.len() >= 3).then_some(())
    });
    assert!(batches.is_some(), "the new run's batches come");
    let (_, batches) = call("GET", &url("batches?limit=2"), Some(&dave), None);
    assert_eq!(batches.as_array().unwrap().len(), 2);
    let newest = batches[1]["batch_id"].as_u64().unwrap();
    let (_, after) = call("GET", &url(&format!("batches?after={newest}")), Some(&dave), None);
    assert!(
        after
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["batch_id"].as_u64() != Some(newest))
    );
    let (status, bad) = call("GET", &url("batches?limit=-1"), Some(&dave), None);
    assert_eq!(status, 400, "{bad}");
}

/// An admin creates a tenant (its token shown once, and it works), issues it another token and
/// sets one of its quotas, all in the console; a tenant that is no admin sees no tenants page.
#[test]
fn an_admin_manages_tenants_in_the_console() {
    let s = start();
    let b = signed_in(&s, s.admin.trim());
    b.click("#nav-tenants");
    b.fill("#tenant-name", "erin");
    b.click("#tenant-create");
    let first = b.wait("the new tenant's token", WAIT, |b| {
        b.text("#tenant-token").filter(|t| t.starts_with("sl_"))
    });
    let (status, me) = call("GET", &s.url("/api/v1/me"), Some(&first), None);
    assert_eq!((status, me["name"].as_str()), (200, Some("erin")), "{me}");
    let id = me["id"].as_i64().unwrap();
    let row = format!("#tenants-table tr[data-tenant-id=\"{id}\"]");
    b.click(&format!("{row} .tenant-new-token"));
    let second = b.wait("another token", WAIT, |b| {
        b.text("#tenant-token").filter(|t| t.starts_with("sl_") && *t != first)
    });
    assert_eq!(call("GET", &s.url("/api/v1/me"), Some(&second), None).0, 200);
    assert_eq!(
        call("GET", &s.url("/api/v1/me"), Some(&first), None).0,
        200,
        "the first token stays valid"
    );
    b.click(&format!("{row} .tenant-quotas"));
    b.fill("#quota-jobs_max", "3");
    b.click("#quota-save");
    b.wait("the quota saved", WAIT, |_| {
        let (_, t) = call("GET", &s.url(&format!("/api/v1/tenants/{id}")), Some(&s.admin), None);
        (t["quota_overrides"]["jobs_max"] == 3).then_some(())
    });
    shot(&b, "desktop-tenants");
    // Erin is no admin: no tenants link.
    b.click("#sign-out");
    b.fill("#token-input", &second);
    b.click("#sign-in");
    b.wait_for("#nav-jobs");
    assert_eq!(b.count("#nav-tenants"), 0);
}
