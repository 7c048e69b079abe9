//! `sluice udf test MODULE.wasm --function F --input FILE`: runs one UDF over sample records on
//! this machine, in the same sandbox and with the same limits as a job, and shows what came out,
//! what was refused and why, the UDF's own log lines, and the call's time and memory.
//!
//! Input: one record per line. A JSON object line is `{"key": ..., "value": ..., "timestamp":
//! ...}` (key and timestamp optional; a number value is an i64, as the SDK encodes counts); any
//! other line is the value itself, as text. A reduce folds the values of each key.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use sluice_abi::UdfKind;

use crate::batch::{RecordBatch, ValueGroups};
use crate::runtime::{CallLimits, Runtime, RuntimeConfig, UdfInstance};

/// A record read from the input file.
struct Input {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    timestamp_ms: i64,
}

fn bytes_of(v: &serde_json::Value) -> Vec<u8> {
    match v {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        serde_json::Value::Number(n) if n.is_i64() => n.as_i64().unwrap_or(0).to_le_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

fn read_input(file: &Path) -> Result<Vec<Input>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(o)) => {
                let Some(value) = o.get("value") else {
                    bail!("{}:{}: a JSON record needs a \"value\"", file.display(), i + 1);
                };
                out.push(Input {
                    key: o.get("key").filter(|k| !k.is_null()).map(bytes_of),
                    value: bytes_of(value),
                    timestamp_ms: o.get("timestamp").and_then(|t| t.as_i64()).unwrap_or(i as i64),
                });
            }
            _ => out.push(Input {
                key: None,
                value: line.as_bytes().to_vec(),
                timestamp_ms: i as i64,
            }),
        }
    }
    Ok(out)
}

/// Bytes as people read them: text if it is text, an i64 if it is 8 bytes that are not.
fn show(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(|c| c.is_control()) => format!("{s:?}"),
        _ if b.len() == 8 => i64::from_le_bytes(b.try_into().expect("8 bytes")).to_string(),
        _ => format!("0x{}", hex::encode(b)),
    }
}

fn logs_of(i: &UdfInstance, out: &mut String) {
    for l in i.last_logs() {
        let _ = writeln!(out, "  [{}] {}", l.level.name(), l.message);
    }
}

/// Runs `function` of the module at `module` over the records in `input`; a report for people.
pub fn test(module: &Path, function: &str, input: &Path) -> Result<String> {
    let bytes = std::fs::read(module).with_context(|| format!("cannot read {}", module.display()))?;
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let label = module
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let loaded = runtime
        .load(&label, &bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", module.display()))?;
    let Some(udf) = loaded.manifest().get(function).cloned() else {
        bail!(
            "{} has no UDF `{function}`; it has: {}",
            module.display(),
            loaded.manifest().describe()
        );
    };
    let records = read_input(input)?;
    let limits = CallLimits::default();
    let mut inst = runtime
        .instantiate(&loaded, &limits)
        .map_err(|e| anyhow::anyhow!("cannot start the module: {e}"))?;
    let mut batch = RecordBatch::new();
    for r in &records {
        batch.push(r.key.as_deref(), &r.value, r.timestamp_ms);
    }
    let mut out = String::new();
    let started = std::time::Instant::now();
    let (kept, errors): (Vec<String>, Vec<(u32, String)>) = match udf.kind {
        UdfKind::Map | UdfKind::FlatMap | UdfKind::Filter => {
            let (records_out, errors) = match udf.kind {
                UdfKind::Map => inst.map(function, &batch).map(|m| (m.records, m.errors)),
                UdfKind::FlatMap => inst.flat_map(function, &batch).map(|m| (m.records, m.errors)),
                _ => inst.filter(function, &batch).map(|f| (f.kept, f.errors)),
            }
            .map_err(|e| anyhow::anyhow!("the call failed as a whole: {e}"))?;
            let shown = records_out
                .iter()
                .map(|r| match r.key {
                    Some(k) => format!("key {} value {}", show(k), show(r.value)),
                    None => format!("value {}", show(r.value)),
                })
                .collect();
            (shown, errors.into_iter().map(|e| (e.index, e.message)).collect())
        }
        UdfKind::Reduce | UdfKind::Inverse => {
            let mut by_key: BTreeMap<Vec<u8>, Vec<&[u8]>> = BTreeMap::new();
            for r in &records {
                by_key
                    .entry(r.key.clone().unwrap_or_default())
                    .or_default()
                    .push(&r.value);
            }
            let mut groups = ValueGroups::new();
            for values in by_key.values() {
                groups.start_group();
                for v in values {
                    groups.push_value(v);
                }
            }
            let reduced = inst
                .reduce(function, &mut groups)
                .map_err(|e| anyhow::anyhow!("the call failed as a whole: {e}"))?;
            let shown = by_key
                .keys()
                .zip(&reduced.values)
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("key {} value {}", show(k), show(v))))
                .collect();
            (
                shown,
                reduced.errors.into_iter().map(|e| (e.index, e.message)).collect(),
            )
        }
    };
    let took = started.elapsed();
    let _ = writeln!(
        out,
        "{} {function} ({}) over {} records in one call:",
        module.display(),
        udf.kind.as_str(),
        records.len()
    );
    let _ = writeln!(out, "out ({}):", kept.len());
    for k in &kept {
        let _ = writeln!(out, "  {k}");
    }
    let _ = writeln!(out, "refused ({}):", errors.len());
    for (index, message) in &errors {
        let what = if udf.kind == UdfKind::Reduce { "group" } else { "record" };
        let _ = writeln!(out, "  {what} {index}: {message}");
    }
    let _ = writeln!(out, "log lines ({}):", inst.last_logs().len());
    logs_of(&inst, &mut out);
    let _ = write!(
        out,
        "time: {:.3} ms for the call ({:.2} µs a record); memory: {} KiB of linear memory after it (limit {} MiB)",
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e6 / records.len().max(1) as f64,
        inst.memory_bytes() >> 10,
        limits.memory_bytes_max >> 20
    );
    Ok(out)
}
