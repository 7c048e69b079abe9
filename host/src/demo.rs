//! The demo the README's first command runs: loads the example UDF module (built into the
//! binary), feeds it generated lines of the seed's three formats, and prints what each stage
//! produced per batch, with the per-call figures. It shows the runtime end to end until the
//! engine and the server (later issues) take over this command.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::batch::{RecordBatch, ValueGroups};
use crate::runtime::{InstanceBudget, Runtime, RuntimeConfig, WarmInstances};

/// Lines of the seed's three formats, deterministic for a seed.
pub fn generate_lines(kind: &str, n: usize, seed: u64) -> Vec<String> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let r = next();
            let ts = 1_700_000_000 + (i as u64 / 100);
            match kind {
                "visits" => format!("u{},{ts},/page/{}", r % 50, (r >> 8) % 20),
                "logs" => {
                    let level = ["INFO", "WARN", "ERROR", "DEBUG"][(r % 4) as usize];
                    format!("{ts}|{level}|request {} took {} ms", r >> 40, (r >> 20) % 500)
                }
                _ => {
                    let action = ["view", "click", "scroll", "purchase"][(r % 4) as usize];
                    format!(
                        "{},{ts},{action},/products/item/{}",
                        10_000 + r % 90_000,
                        (r >> 24) % 10_000
                    )
                }
            }
        })
        .collect()
}

fn batch_of(lines: &[String]) -> RecordBatch {
    let mut b = RecordBatch::new();
    for l in lines {
        b.push(None, l.as_bytes(), 0);
    }
    b
}

/// Sums i64 values per key with the module's `sum_counts` reduce: one call for all keys.
fn count_by_key(
    warm: &mut WarmInstances,
    rt: &Runtime,
    module: &std::sync::Arc<crate::runtime::LoadedModule>,
    pairs: &RecordBatch,
) -> Result<BTreeMap<String, i64>> {
    let mut by_key: BTreeMap<String, Vec<&[u8]>> = BTreeMap::new();
    for r in pairs.iter() {
        let key = String::from_utf8_lossy(r.key.unwrap_or_default()).into_owned();
        by_key.entry(key).or_default().push(r.value);
    }
    let mut groups = ValueGroups::new();
    for values in by_key.values() {
        groups.start_group();
        for v in values {
            groups.push_value(v);
        }
    }
    let limits = rt.config().default_limits.clone();
    let reduced = warm.with(rt, module, &limits, &InstanceBudget::unlimited(), |i| {
        i.reduce("sum_counts", &mut groups)
    })?;
    let mut out = BTreeMap::new();
    for (key, value) in by_key.keys().zip(reduced.values) {
        let v = value.context("sum_counts refused a group")?;
        out.insert(
            key.clone(),
            i64::from_le_bytes(v.as_slice().try_into().context("sum_counts returned a non-i64")?),
        );
    }
    Ok(out)
}

fn top(counts: &BTreeMap<String, i64>, n: usize) -> String {
    let mut v: Vec<_> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .take(n)
        .map(|(k, c)| format!("{k}={c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `batches` demo batches of `records` lines each and prints the results.
pub fn run(batches: usize, records: usize) -> Result<()> {
    let rt = Runtime::new(RuntimeConfig::default())?;
    let t = Instant::now();
    let module = rt.load("examples@1", sluice_udf_artifacts::EXAMPLES)?;
    println!(
        "loaded examples@1 in {:.1} ms: {}",
        t.elapsed().as_secs_f64() * 1e3,
        module.manifest().describe()
    );
    let limits = rt.config().default_limits.clone();
    let mut warm = WarmInstances::new();
    let budget = InstanceBudget::unlimited();
    for k in 1..=batches {
        println!("-------------------------------------------\nBatch {k}");
        let visits = batch_of(&generate_lines("visits", records, k as u64));
        let t = Instant::now();
        let pairs = warm.with(&rt, &module, &limits, &budget, |i| i.map("parse_visit", &visits))?;
        let per_user = count_by_key(&mut warm, &rt, &module, &pairs.records)?;
        println!(
            "visits per user (parse_visit + sum_counts, {:.0} us): {}",
            t.elapsed().as_secs_f64() * 1e6,
            top(&per_user, 5)
        );

        let logs = batch_of(&generate_lines("logs", records, k as u64));
        let t = Instant::now();
        let errors = warm.with(&rt, &module, &limits, &budget, |i| i.filter("is_error", &logs))?;
        let minutes = warm.with(&rt, &module, &limits, &budget, |i| i.map("minute_bucket", &errors.kept))?;
        let per_minute = count_by_key(&mut warm, &rt, &module, &minutes.records)?;
        println!(
            "ERROR lines per minute (is_error + minute_bucket + sum_counts, {:.0} us): {}",
            t.elapsed().as_secs_f64() * 1e6,
            top(&per_minute, 3)
        );

        let behaviour = batch_of(&generate_lines("behaviour", records, k as u64));
        let t = Instant::now();
        let clicks = warm.with(&rt, &module, &limits, &budget, |i| {
            i.flat_map("clicks_by_user", &behaviour)
        })?;
        let per_user = count_by_key(&mut warm, &rt, &module, &clicks.records)?;
        println!(
            "clicks: {} of {} lines, {} users (clicks_by_user + sum_counts, {:.0} us)",
            clicks.records.len(),
            behaviour.len(),
            per_user.len(),
            t.elapsed().as_secs_f64() * 1e6
        );
    }
    Ok(())
}
