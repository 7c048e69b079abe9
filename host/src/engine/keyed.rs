//! Values by key: reducing a batch per key, and combining (or un-combining, with an inverse) two
//! keyed partial results. Keys may be absent (`None` is a key of its own).

use rustc_hash::FxHashMap;

use super::EngineError;
use super::context::{PARTITION_RECORDS_MIN, StageContext, describe, lossy};
use super::reducer::{Builtin, Folded, Reducer, avg_partial};
use crate::batch::RecordBatch;
use crate::runtime::RecordError;

/// A record's key (`None`: no key).
pub type Key = Option<Vec<u8>>;
/// One value per key (hashed with Fx: keys are the job's own data, and the table is per job).
pub type KeyedMap = FxHashMap<Key, Vec<u8>>;

/// Reduces the values of `batch` per key with `reducer`: one fold (one wasm call) for all keys.
pub fn reduce_by_key(
    cx: &mut StageContext<'_>,
    reducer: &Reducer,
    batch: &RecordBatch,
) -> Result<KeyedMap, EngineError> {
    if let Reducer::Builtin { builtin, .. } = reducer {
        return fold_builtin_by_key(cx, *builtin, batch);
    }
    let mut groups: FxHashMap<Option<&[u8]>, Vec<&[u8]>> = FxHashMap::default();
    for r in batch.iter() {
        groups.entry(r.key).or_default().push(r.value);
    }
    let (keys, values): (Vec<_>, Vec<_>) = groups.into_iter().unzip();
    let folded = reducer.fold(cx, &values, false)?;
    collect(cx, keys.into_iter().map(|k| k.map(<[u8]>::to_vec)), &values, folded)
}

/// A native reduce by key: numbers folded as they are read (no value lists), on the workers in
/// parallel for large batches (each folds a range of records, then the maps are merged).
fn fold_builtin_by_key(
    cx: &mut StageContext<'_>,
    builtin: Builtin,
    batch: &RecordBatch,
) -> Result<KeyedMap, EngineError> {
    let n = batch.len();
    let parts = if n < PARTITION_RECORDS_MIN {
        1
    } else {
        cx.workers.threads().min(n / (PARTITION_RECORDS_MIN / 2)).max(1)
    };
    let ranges: Vec<(usize, usize)> = (0..parts).map(|p| (p * n / parts, (p + 1) * n / parts)).collect();
    let partials = if parts == 1 {
        vec![owned(fold_range(cx, builtin, batch, 0, n)?)]
    } else {
        cx.parallel(ranges, |cx, (start, end)| {
            fold_range(cx, builtin, batch, start, end).map(owned)
        })?
    };
    Ok(merge_folds(builtin, partials))
}

/// Per key, the folded number and how many values went into it, with owned keys: what one
/// part of a batch contributes to a native reduce by key.
pub type OwnedFolds = FxHashMap<Key, (i64, i64)>;

fn owned(m: Folds<'_>) -> OwnedFolds {
    m.into_iter().map(|(k, v)| (k.map(<[u8]>::to_vec), v)).collect()
}

/// Folds a whole part natively (a map-side combine: the pipeline runs it right after the stage
/// that made the part, while the part is still in cache).
pub fn fold_part(cx: &mut StageContext<'_>, builtin: Builtin, part: &RecordBatch) -> Result<OwnedFolds, EngineError> {
    fold_range(cx, builtin, part, 0, part.len()).map(owned)
}

/// Merges the parts' folds into one value per key (an average as its `(sum, count)` partial).
pub fn merge_folds(builtin: Builtin, mut parts: Vec<OwnedFolds>) -> KeyedMap {
    let mut total = parts.pop().unwrap_or_default();
    for p in parts {
        for (k, (v, c)) in p {
            total
                .entry(k)
                .and_modify(|(a, n)| (*a, *n) = (builtin.apply(*a, v), *n + c))
                .or_insert((v, c));
        }
    }
    total
        .into_iter()
        .map(|(k, (v, count))| {
            (
                k,
                if builtin == Builtin::Avg {
                    avg_partial(v, count)
                } else {
                    v.to_le_bytes().to_vec()
                },
            )
        })
        .collect()
}

/// Per key, the folded number and how many values went into it.
type Folds<'a> = FxHashMap<Option<&'a [u8]>, (i64, i64)>;

fn fold_range<'a>(
    cx: &mut StageContext<'_>,
    builtin: Builtin,
    batch: &'a RecordBatch,
    start: usize,
    end: usize,
) -> Result<Folds<'a>, EngineError> {
    let mut m: Folds<'a> = FxHashMap::default();
    let mut refused = Vec::new();
    for (i, r) in (start..end).zip(batch.iter_range(start, end)) {
        let value = if builtin == Builtin::Count {
            Ok(1i64.to_le_bytes())
        } else {
            <[u8; 8]>::try_from(r.value)
        };
        match value {
            Ok(a) => {
                let v = i64::from_le_bytes(a);
                m.entry(r.key)
                    .and_modify(|(acc, n)| (*acc, *n) = (builtin.apply(*acc, v), *n + 1))
                    .or_insert((v, 1));
            }
            Err(_) => refused.push(RecordError {
                index: i as u32,
                message: format!(
                    "value is not an i64 (8 bytes, little-endian): it has {} bytes",
                    r.value.len()
                ),
            }),
        }
    }
    cx.refuse(&refused, describe(batch))?;
    Ok(m)
}

/// `a` combined with `b` per key: `f(a[k], b[k])` where both have `k`, else the one that has it.
/// With `inverse`: `inv(a[k], b[k])` where both have `k`; keys only in `b` are ignored (their
/// value already left the state).
pub fn combine(
    cx: &mut StageContext<'_>,
    reducer: &Reducer,
    mut a: KeyedMap,
    b: &KeyedMap,
    inverse: bool,
) -> Result<KeyedMap, EngineError> {
    if let Reducer::Builtin { builtin, .. } = reducer {
        return combine_builtin(cx, *builtin, a, b, inverse);
    }
    let mut keys = Vec::new();
    let mut pairs: Vec<Vec<&[u8]>> = Vec::new();
    for (k, vb) in b {
        if let Some(va) = a.get(k) {
            keys.push(k.clone());
            pairs.push(vec![va.as_slice(), vb.as_slice()]);
        }
    }
    let folded = reducer.fold(cx, &pairs, inverse)?;
    let merged = collect(cx, keys.into_iter(), &pairs, folded)?;
    if !inverse {
        for (k, vb) in b {
            if !a.contains_key(k) {
                a.insert(k.clone(), vb.clone());
            }
        }
    }
    a.extend(merged);
    Ok(a)
}

/// `combine` for a built-in: each value folded in place, no per-key allocation but the result's.
fn combine_builtin(
    cx: &mut StageContext<'_>,
    builtin: Builtin,
    mut a: KeyedMap,
    b: &KeyedMap,
    inverse: bool,
) -> Result<KeyedMap, EngineError> {
    let mut refused: Vec<(RecordError, Key, [Vec<u8>; 2])> = Vec::new();
    for (k, vb) in b {
        match a.get_mut(k) {
            Some(va) => match builtin.fold_group(&[va.as_slice(), vb.as_slice()], inverse) {
                Ok(v) => *va = v,
                // The key keeps its value, as a refused group does in the general path.
                Err(message) => refused.push((
                    RecordError {
                        index: refused.len() as u32,
                        message,
                    },
                    k.clone(),
                    [va.clone(), vb.clone()],
                )),
            },
            None if !inverse => {
                a.insert(k.clone(), vb.clone());
            }
            None => {}
        }
    }
    if !refused.is_empty() {
        let errors: Vec<RecordError> = refused.iter().map(|r| r.0.clone()).collect();
        cx.refuse(&errors, |i| {
            let (_, k, values) = &refused[i as usize];
            let values: Vec<String> = values.iter().map(|v| lossy(v)).collect();
            (k.as_deref().map(lossy), format!("values {values:?}"))
        })?;
    }
    Ok(a)
}

/// Pairs keys with their folded values; groups in error go through the job's policy.
fn collect(
    cx: &mut StageContext<'_>,
    keys: impl Iterator<Item = Key>,
    inputs: &[Vec<&[u8]>],
    folded: Vec<Folded>,
) -> Result<KeyedMap, EngineError> {
    let mut out = KeyedMap::with_capacity_and_hasher(folded.len(), Default::default());
    let mut refused = Vec::new();
    let keys: Vec<Key> = keys.collect();
    for (i, (k, f)) in keys.iter().zip(folded).enumerate() {
        match f {
            Ok(v) => {
                out.insert(k.clone(), v);
            }
            Err(message) => refused.push(RecordError {
                index: i as u32,
                message,
            }),
        }
    }
    cx.refuse(&refused, |i| {
        let values: Vec<String> = inputs[i as usize].iter().map(|v| lossy(v)).collect();
        (keys[i as usize].as_deref().map(lossy), format!("values {values:?}"))
    })?;
    Ok(out)
}

/// The map as a batch, sorted by key, every record at `time_ms`, each value `finish`ed by the
/// reducer that made it (an average's partial becomes the average).
pub fn to_batch(map: &KeyedMap, reducer: &Reducer, time_ms: i64) -> RecordBatch {
    // Sorted by each key's first 8 bytes first (one integer compare), then by the whole key.
    let prefix = |k: &Key| -> u64 {
        k.as_deref().map_or(0, |k| {
            let mut p = [0u8; 8];
            let n = k.len().min(8);
            p[..n].copy_from_slice(&k[..n]);
            // Keys order after no key, and by their bytes: a present key's prefix is >= 1.
            u64::from_be_bytes(p).saturating_add(1).max(1)
        })
    };
    let mut entries: Vec<(u64, &Key, &Vec<u8>)> = map.iter().map(|(k, v)| (prefix(k), k, v)).collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    let bytes: usize = entries
        .iter()
        .map(|(_, k, v)| 16 + k.as_ref().map_or(0, Vec::len) + v.len())
        .sum();
    let mut out = RecordBatch::with_capacity(entries.len(), bytes);
    for (_, k, v) in entries {
        out.push(k.as_deref(), &reducer.finish(v), time_ms);
    }
    out
}
