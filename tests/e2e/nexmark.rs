//! Nexmark through the real binary: the example jobs of `examples/jobs/nexmark` (wasm UDFs of
//! `udfs/nexmark` over the `nexmark` source) against a straightforward reference of each query,
//! written here over the same events.

use serde_json::{Value, json};
use sluice::source::nexmark::Events;
use sluice_tests::{repo_root, sluice};
use std::collections::{BTreeMap, BTreeSet};

const EVENTS_PER_S: u64 = 5_000;
const EVENTS: u64 = 150_000;
const BATCH_MS: i64 = 1000;
const SEED: u64 = 42;

/// Output records of query `q` (`(time, key, value)`), run with the test's source and a jsonl sink.
fn run(q: &str) -> Vec<(i64, Option<String>, Value)> {
    let dir = tempfile::tempdir().unwrap();
    let mut spec: Value =
        serde_json::from_slice(&std::fs::read(repo_root().join(format!("examples/jobs/nexmark/{q}.json"))).unwrap())
            .unwrap();
    spec["source"] = json!({ "nexmark": { "events_per_s": EVENTS_PER_S, "events": EVENTS, "seed": SEED } });
    let out = dir.path().join("out.jsonl");
    spec["sink"] = json!({ "jsonl": { "path": out.display().to_string() } });
    let job = dir.path().join("job.json");
    std::fs::write(&job, spec.to_string()).unwrap();
    let done = sluice(&["run", job.to_str().unwrap()], 120);
    assert!(done.success, "{q} failed: {}", done.stderr);
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["time"].as_i64().unwrap(),
                v["key"].as_str().map(str::to_owned),
                v["value"].clone(),
            )
        })
        .collect()
}

/// The source's events as the docs define them: batch `k` (time `k` s) holds the next
/// `EVENTS_PER_S` events, stamped evenly over `[k - 1 s, k s)`.
fn events() -> Vec<(i64, String)> {
    let e = Events::new(SEED);
    let per_batch = EVENTS_PER_S as i64 * BATCH_MS / 1000;
    (0..EVENTS)
        .map(|i| {
            let (k, j) = (i as i64 / per_batch + 1, i as i64 % per_batch);
            let date_time = (k - 1) * BATCH_MS + j * BATCH_MS / per_batch;
            let mut line = String::new();
            e.write(i, date_time, &mut line);
            (k * BATCH_MS, line)
        })
        .collect()
}

/// A bid's fields, parsed here on their own (not with the UDFs' parser).
struct Bid {
    auction: i64,
    bidder: i64,
    price: i64,
    date_time: i64,
    extra: String,
}

fn bids() -> Vec<(i64, Bid)> {
    events()
        .into_iter()
        .filter(|(_, l)| l.starts_with("B,"))
        .map(|(t, l)| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 8, "{l}");
            let n = |s: &str| s.parse::<i64>().unwrap();
            let bid = Bid {
                auction: n(f[1]),
                bidder: n(f[2]),
                price: n(f[3]),
                date_time: n(f[6]),
                extra: f[7].to_owned(),
            };
            (t, bid)
        })
        .collect()
}

fn text(records: Vec<(i64, Option<String>, Value)>) -> Vec<(i64, String)> {
    records
        .into_iter()
        .map(|(t, k, v)| {
            assert_eq!(k, None);
            (t, v.as_str().expect("a text value").to_owned())
        })
        .collect()
}

#[test]
fn q0_passes_every_event_through_at_its_batch() {
    let got = text(run("q0"));
    let want = events();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "q0's output differs from the events");
    let kinds = |p: &str| want.iter().filter(|(_, l)| l.starts_with(p)).count();
    assert_eq!((kinds("P,"), kinds("A,"), kinds("B,")), (3_000, 9_000, 138_000));
}

#[test]
fn q1_converts_every_bid_to_euros() {
    let want: Vec<(i64, String)> = bids()
        .into_iter()
        .map(|(t, b)| {
            let euros = b.price * 908 / 1000;
            (
                t,
                format!("{},{},{euros},{},{}", b.auction, b.bidder, b.date_time, b.extra),
            )
        })
        .collect();
    let got = text(run("q1"));
    assert_eq!(got.len(), 138_000);
    assert!(got == want, "q1's output differs from the reference");
}

#[test]
fn q2_selects_the_bids_on_every_123rd_auction() {
    let want: Vec<(i64, String)> = bids()
        .into_iter()
        .filter(|(_, b)| b.auction % 123 == 0)
        .map(|(t, b)| (t, format!("{},{}", b.auction, b.price)))
        .collect();
    assert!(want.len() > 100, "the test's events select some bids ({})", want.len());
    assert_eq!(text(run("q2")), want);
}

#[test]
fn q5_finds_the_auctions_with_the_most_bids_in_each_sliding_window() {
    // HOP(10 s, 2 s) over event time: the window ending at T holds bids with date_time in
    // [T - 10 s, T); in each, the auctions whose count is the window's largest.
    let bids = bids();
    let last = EVENTS as i64 / EVENTS_PER_S as i64 * 1000;
    let mut want = BTreeSet::new();
    for end in (2000..=last).step_by(2000) {
        let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
        for (_, b) in bids.iter().filter(|(_, b)| (end - 10_000..end).contains(&b.date_time)) {
            *counts.entry(b.auction).or_default() += 1;
        }
        let max = counts.values().copied().max().unwrap();
        want.extend(
            counts
                .iter()
                .filter(|(_, c)| **c == max)
                .map(|(a, c)| (end, a.to_string(), *c)),
        );
    }
    let got: BTreeSet<(i64, String, i64)> = run("q5")
        .into_iter()
        .map(|(t, k, v)| (t, k.expect("an auction as key"), v.as_i64().expect("a count")))
        .collect();
    assert_eq!(
        want.iter().map(|w| w.0).collect::<BTreeSet<_>>().len(),
        15,
        "a window every 2 s"
    );
    assert_eq!(got, want);
}

#[test]
fn q7_finds_the_highest_bids_of_each_tumbling_window() {
    // TUMBLE(10 s) over event time: in each window the bids of its highest price.
    let bids = bids();
    let mut want = Vec::new();
    for end in [10_000, 20_000, 30_000] {
        let in_window: Vec<&Bid> = bids
            .iter()
            .map(|(_, b)| b)
            .filter(|b| (end - 10_000..end).contains(&b.date_time))
            .collect();
        let max = in_window.iter().map(|b| b.price).max().unwrap();
        let mut top: Vec<String> = in_window
            .iter()
            .filter(|b| b.price == max)
            .map(|b| format!("{},{},{},{},{}", b.auction, b.price, b.bidder, b.date_time, b.extra))
            .collect();
        top.sort();
        want.extend(top.into_iter().map(|l| (end, l)));
    }
    let mut got = text(run("q7"));
    got.sort();
    assert_eq!(got, want);
}

#[test]
fn a_rate_that_makes_no_event_a_batch_is_refused_at_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let spec = json!({
        "name": "empty", "batch_interval": "100ms",
        "modules": { "nexmark": "builtin:nexmark" },
        "source": { "nexmark": { "events_per_s": 5, "events": 10 } },
        "stages": [ { "map": { "udf": "nexmark", "function": "pass_through" } } ],
        "sink": { "print": {} }
    });
    let job = dir.path().join("job.json");
    std::fs::write(&job, spec.to_string()).unwrap();
    let out = sluice(&["run", job.to_str().unwrap()], 60);
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("source.nexmark.events_per_s: 5 events/s make no event in a batch of 100ms"),
        "{}",
        out.stderr
    );
}
