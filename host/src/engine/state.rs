//! Operator state as data, for checkpoints. A stateful operator describes what changed in its
//! state since its last snapshot as a `StateDelta` (named blobs put or removed, and single
//! entries of keyed maps put or removed), and rebuilds itself from a `StoredState`. Nothing is
//! serialized code: a job can resume with another version of its UDFs, and a blob's layout has
//! a format version the checkpoint records.
//!
//! Deltas keep checkpoints incremental: a window's per-batch partials are written once and
//! removed when they leave; a running keyed map writes only the keys that changed.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::keyed::{Key, KeyedMap};
use crate::batch::RecordBatch;

/// What changed in one operator's state since its last snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateDelta {
    /// The whole state: drop what is stored for the operator first.
    pub full: bool,
    /// Named blobs written (new or replaced).
    pub put_blobs: Vec<(String, Vec<u8>)>,
    /// Named blobs gone.
    pub removed_blobs: Vec<String>,
    /// Entries of keyed maps written: `(map, key, value)`.
    pub put_keys: Vec<(String, Key, Vec<u8>)>,
    /// Entries of keyed maps gone: `(map, key)`.
    pub removed_keys: Vec<(String, Key)>,
}

impl StateDelta {
    /// Bytes it carries (keys and values).
    pub fn bytes(&self) -> usize {
        self.put_blobs.iter().map(|(n, b)| n.len() + b.len()).sum::<usize>()
            + self
                .put_keys
                .iter()
                .map(|(m, k, v)| m.len() + k.as_ref().map_or(0, Vec::len) + v.len())
                .sum::<usize>()
    }
}

/// One operator's state as stored, for its restore.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredState {
    /// Named blobs.
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// Keyed maps by name.
    pub maps: HashMap<String, KeyedMap>,
}

impl StoredState {
    /// Applies a delta (what a store does when it writes a checkpoint).
    pub fn apply(&mut self, delta: StateDelta) {
        if delta.full {
            *self = StoredState::default();
        }
        for name in delta.removed_blobs {
            self.blobs.remove(&name);
        }
        for (name, b) in delta.put_blobs {
            self.blobs.insert(name, b);
        }
        for (map, key) in delta.removed_keys {
            if let Some(m) = self.maps.get_mut(&map) {
                m.remove(&key);
            }
        }
        for (map, key, v) in delta.put_keys {
            self.maps.entry(map).or_default().insert(key, v);
        }
        // An empty map is no map (as a store that keeps entries, not maps, reads it back).
        self.maps.retain(|_, m| !m.is_empty());
    }
}

/// A stored state that does not fit the operator (a bug, or a file written by something else).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operator state does not read back: {0}")]
pub struct StateError(pub String);

/// Tracks which named blobs are stored, to put only new ones and remove the ones that went.
#[derive(Debug, Default)]
pub struct BlobSet {
    stored: HashSet<String>,
}

impl BlobSet {
    /// The delta from what is stored to `current` (names with a way to make their bytes): new
    /// names are put, missing ones removed; names in `mutable` are put every time.
    pub fn delta<'a>(
        &mut self,
        full: bool,
        current: impl Iterator<Item = (String, Box<dyn FnOnce() -> Vec<u8> + 'a>)>,
        delta: &mut StateDelta,
        mutable: &[&str],
    ) {
        if full {
            self.stored.clear();
        }
        let mut now = HashSet::new();
        for (name, bytes) in current {
            if full || !self.stored.contains(&name) || mutable.contains(&name.as_str()) {
                delta.put_blobs.push((name.clone(), bytes()));
            }
            now.insert(name);
        }
        for gone in self.stored.difference(&now) {
            delta.removed_blobs.push(gone.clone());
        }
        self.stored = now;
    }

    /// After a restore: these are stored.
    pub fn restored<'a>(&mut self, names: impl Iterator<Item = &'a String>) {
        self.stored = names.cloned().collect();
    }
}

/// Tracks the keys of a keyed map that changed since the last snapshot.
#[derive(Debug, Default)]
pub struct DirtyKeys {
    keys: rustc_hash::FxHashSet<Key>,
}

impl DirtyKeys {
    /// Marks keys changed.
    pub fn mark<'a>(&mut self, keys: impl Iterator<Item = &'a Key>) {
        for k in keys {
            if !self.keys.contains(k) {
                self.keys.insert(k.clone());
            }
        }
    }

    /// The delta of `map` (named `name`): every entry when `full`, else the changed keys (put
    /// if present, removed if not).
    pub fn delta(&mut self, full: bool, name: &str, map: &KeyedMap, delta: &mut StateDelta) {
        if full {
            for (k, v) in map {
                delta.put_keys.push((name.to_owned(), k.clone(), v.clone()));
            }
        } else {
            for k in self.keys.drain() {
                match map.get(&k) {
                    Some(v) => delta.put_keys.push((name.to_owned(), k, v.clone())),
                    None => delta.removed_keys.push((name.to_owned(), k)),
                }
            }
        }
        self.keys.clear();
    }
}

/// Writes a keyed map as one blob: `[u32 n]([u8 tag][u32 klen][key][u32 vlen][value])*`.
pub fn map_bytes(map: &KeyedMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + map.len() * 32);
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in entries {
        match k {
            None => out.push(0),
            Some(k) => {
                out.push(1);
                out.extend_from_slice(&(k.len() as u32).to_le_bytes());
                out.extend_from_slice(k);
            }
        }
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// Reads a keyed map written by `map_bytes`.
pub fn map_from_bytes(b: &[u8]) -> Result<KeyedMap, StateError> {
    let mut r = Cursor(b);
    let n = r.u32()?;
    let mut map = KeyedMap::with_capacity_and_hasher((n as usize).min(1 << 20), Default::default());
    for _ in 0..n {
        let key = match r.take(1)?[0] {
            0 => None,
            1 => {
                let len = r.u32()? as usize;
                Some(r.take(len)?.to_vec())
            }
            t => return Err(StateError(format!("bad key tag {t}"))),
        };
        let len = r.u32()? as usize;
        map.insert(key, r.take(len)?.to_vec());
    }
    if !r.0.is_empty() {
        return Err(StateError("bytes after the map".into()));
    }
    Ok(map)
}

/// A batch's records as a blob (its ABI bytes).
pub fn batch_bytes(b: &RecordBatch) -> Vec<u8> {
    b.as_abi_bytes().to_vec()
}

/// Reads a batch written by `batch_bytes`.
pub fn batch_from_bytes(b: &[u8]) -> Result<RecordBatch, StateError> {
    let mut r = sluice_abi::Reader::new(b);
    let n = r.u32().map_err(|e| StateError(e.to_string()))?;
    RecordBatch::read_from(&mut r, n).map_err(|e| StateError(e.to_string()))
}

/// A key as bytes that sort and compare like the key (for stores): `[0]` for none, `[1]+key`.
pub fn key_bytes(k: &Key) -> Vec<u8> {
    match k {
        None => vec![0],
        Some(k) => {
            let mut v = Vec::with_capacity(k.len() + 1);
            v.push(1);
            v.extend_from_slice(k);
            v
        }
    }
}

/// The key `key_bytes` wrote.
pub fn key_from_bytes(b: &[u8]) -> Result<Key, StateError> {
    match b.split_first() {
        Some((0, [])) => Ok(None),
        Some((1, k)) => Ok(Some(k.to_vec())),
        _ => Err(StateError("bad key".into())),
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        if self.0.len() < n {
            return Err(StateError("the blob ends early".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_batches_and_keys_read_back() {
        let mut m = KeyedMap::default();
        m.insert(None, vec![1, 2]);
        m.insert(Some(b"k".to_vec()), vec![]);
        m.insert(Some(Vec::new()), vec![9; 8]);
        assert_eq!(map_from_bytes(&map_bytes(&m)).unwrap(), m);
        assert!(map_from_bytes(&map_bytes(&m)[..5]).is_err());
        let mut b = RecordBatch::new();
        b.push(Some(b"a"), b"x", 5);
        b.push(None, b"", -1);
        assert_eq!(batch_from_bytes(&batch_bytes(&b)).unwrap(), b);
        for k in [None, Some(Vec::new()), Some(b"z".to_vec())] {
            assert_eq!(key_from_bytes(&key_bytes(&k)).unwrap(), k);
        }
    }

    #[test]
    fn dirty_keys_put_what_is_there_and_remove_what_went() {
        let mut map = KeyedMap::default();
        map.insert(Some(b"a".to_vec()), vec![1]);
        let mut dirty = DirtyKeys::default();
        dirty.mark([Some(b"a".to_vec()), Some(b"gone".to_vec())].iter());
        let mut d = StateDelta::default();
        dirty.delta(false, "m", &map, &mut d);
        assert_eq!(d.put_keys, [("m".to_owned(), Some(b"a".to_vec()), vec![1])]);
        assert_eq!(d.removed_keys, [("m".to_owned(), Some(b"gone".to_vec()))]);
        let mut again = StateDelta::default();
        dirty.delta(false, "m", &map, &mut again);
        assert_eq!(again, StateDelta::default(), "nothing changed since");
    }
}
