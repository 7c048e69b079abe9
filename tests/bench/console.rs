//! The console's figures, measured in a real browser (Debian's Chromium, headless) against the
//! real server with its demo job (2,000 generated visits/s, 1 s batches):
//! - the bytes a first load transfers (the console's own files, then its API calls);
//! - the time from opening a job page to its first chart drawn (page load included; median of
//!   5 opens);
//! - the CPU time of the browser's page processes with the job page's four live charts, against
//!   a blank page, over 30 s each.
//!
//! `cargo run --release -p sluice-tests --bin console-bench`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::browser::Browser;
use sluice_tests::sluice_bin;

/// CPU time (user + system) of `pids`, in seconds.
fn cpu_seconds(pids: &[u32]) -> f64 {
    // SAFETY: sysconf with a valid name has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            let rest = stat.rsplit_once(") ")?.1.to_owned();
            let f: Vec<&str> = rest.split(' ').collect();
            // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the name.
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / tick)
        })
        .sum()
}

/// The renderers' CPU over `secs` seconds, as a share of one core (after 2 s for the page to
/// settle; only processes there at both ends count: a page's process may end when it is left).
fn cpu_share(b: &Browser, secs: u64) -> f64 {
    std::thread::sleep(Duration::from_secs(2));
    let pids = b.renderer_pids();
    let before: Vec<f64> = pids.iter().map(|p| cpu_seconds(&[*p])).collect();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let used: f64 = pids
        .iter()
        .zip(before)
        .filter(|(p, _)| std::path::Path::new(&format!("/proc/{p}")).exists())
        .map(|(p, b)| cpu_seconds(&[*p]) - b)
        .sum();
    used / t.elapsed().as_secs_f64()
}

fn main() {
    let dir = tempfile::tempdir().expect("a data directory");
    let mut server = Command::new(sluice_bin())
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the server prints where it listens")
            .expect("a line");
        if let Some(rest) = line.strip_prefix("sluice is listening on ") {
            break rest.split_whitespace().next().expect("an address").to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let token = std::fs::read_to_string(dir.path().join("demo-token")).expect("the demo token");

    let b = Browser::start(1280, 800);
    // First load, empty cache: the sign-in page loads the whole console.
    b.goto(&base);
    b.wait_for("#token-input");
    let bytes = |b: &Browser| -> (f64, f64, f64) {
        let v: Value = b.js(
            "const nav = performance.getEntriesByType('navigation')[0]; \
             const res = performance.getEntriesByType('resource'); \
             const files = res.filter(r => r.initiatorType !== 'fetch'); \
             const api = res.filter(r => r.initiatorType === 'fetch'); \
             const sum = (l, k) => l.reduce((a, r) => a + (r[k] || 0), 0); \
             return [nav.transferSize + sum(files, 'transferSize'), nav.decodedBodySize + sum(files, 'decodedBodySize'), sum(api, 'transferSize'), files.length + 1];",
            vec![],
        );
        (
            v[0].as_f64().unwrap_or(0.0),
            v[1].as_f64().unwrap_or(0.0),
            v[3].as_f64().unwrap_or(0.0),
        )
    };
    let (transferred, decoded, files) = bytes(&b);
    b.fill("#token-input", &token);
    b.click("#sign-in");
    b.wait_for("#jobs-table tr[data-job-id=\"1\"]");
    let api: f64 = b
        .js(
            "return performance.getEntriesByType('resource').filter(r => r.initiatorType === 'fetch').reduce((a, r) => a + r.transferSize, 0)",
            vec![],
        )
        .as_f64()
        .unwrap_or(0.0);

    // Opening the job page (a full page load, token kept), to its first chart drawn.
    let mut opens = Vec::new();
    for _ in 0..5 {
        b.goto("about:blank");
        b.goto(&format!("{base}/#/jobs/1"));
        let ms: f64 = b.wait("the first chart", Duration::from_secs(30), |b| {
            b.attr("body", "data-first-chart-ms").and_then(|v| v.parse().ok())
        });
        opens.push(ms);
    }
    opens.sort_by(f64::total_cmp);

    // CPU: the job page with its four live charts, then a blank page, 30 s each.
    let live = cpu_share(&b, 30);
    let points = b.attr("#chart-input-rate", "data-points").unwrap_or_default();
    b.goto("about:blank");
    let blank = cpu_share(&b, 30);

    println!("## The console, measured in headless Chromium against the demo job\n");
    println!("| figure | value |");
    println!("| --- | --- |");
    println!(
        "| first load: the console's files ({files:.0} requests), transferred | {:.1} KB ({:.1} KB decoded) |",
        transferred / 1000.0,
        decoded / 1000.0
    );
    println!(
        "| first load: API answers while signing in and listing jobs | {:.1} KB |",
        api / 1000.0
    );
    println!(
        "| opening a job page to its first chart drawn (median of 5; min, max) | {:.0} ms ({:.0}, {:.0}) |",
        opens[2], opens[0], opens[4]
    );
    println!(
        "| page processes' CPU, job page with 4 live charts ({points} points each) | {:.1}% of a core |",
        live * 100.0
    );
    println!(
        "| page processes' CPU, blank page (baseline) | {:.1}% of a core |",
        blank * 100.0
    );
    drop(b);
    let _ = server.kill();
    let _ = server.wait();
}
