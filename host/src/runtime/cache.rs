//! The compile cache: compiled modules per content hash in memory, and, when a cache directory
//! is configured, their serialized artifacts on disk so a restart does not recompile. Both are
//! bounded (modules in memory, bytes on disk) and drop the least recently used entry first.
//! Only modules that passed every check are put in; a module can be forgotten (its last stored
//! version was deleted).
//!
//! Architecture Invariant: only artifacts this host compiled are ever deserialized. Each artifact
//! file carries an HMAC-SHA256 made with a secret key kept in the cache directory (created with
//! mode 0600); a file whose tag does not verify is ignored and recompiled.

use std::collections::HashMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::{Engine, Module};

type HmacSha256 = Hmac<Sha256>;
const TAG_BYTES: usize = 32;

/// A module in memory: compiled, and whether its start function and ABI version were checked.
struct Entry {
    module: Module,
    probed: bool,
    used: u64,
}

/// Compiled modules by content hash.
pub struct CompileCache {
    memory: Mutex<Memory>,
    disk: Option<DiskCache>,
}

struct Memory {
    entries: HashMap<[u8; 32], Entry>,
    max: usize,
    clock: u64,
}

struct DiskCache {
    dir: PathBuf,
    key: Vec<u8>,
    engine_tag: String,
    bytes_max: u64,
    /// Artifact sizes and last use, by hash, and the use clock.
    index: Mutex<(DiskIndex, u64)>,
}

/// Artifact bytes and last use, by hash.
type DiskIndex = HashMap<[u8; 32], (u64, u64)>;

impl CompileCache {
    /// A cache of at most `modules_max` modules in memory, and on disk under `dir` (at most
    /// `dir_bytes_max` bytes) if given.
    pub fn new(
        engine: &Engine,
        modules_max: usize,
        dir: Option<&Path>,
        dir_bytes_max: u64,
    ) -> std::io::Result<CompileCache> {
        let disk = match dir {
            Some(dir) => Some(DiskCache::open(engine, dir, dir_bytes_max)?),
            None => None,
        };
        Ok(CompileCache {
            memory: Mutex::new(Memory {
                entries: HashMap::new(),
                max: modules_max.max(1),
                clock: 0,
            }),
            disk,
        })
    }

    /// The module of this hash, from memory or disk, and whether it was probed.
    pub fn get(&self, engine: &Engine, sha256: &[u8; 32]) -> Option<(Module, bool)> {
        {
            let mut mem = self.memory.lock().expect("cache lock");
            mem.clock += 1;
            let now = mem.clock;
            if let Some(e) = mem.entries.get_mut(sha256) {
                e.used = now;
                return Some((e.module.clone(), e.probed));
            }
        }
        let module = self.disk.as_ref()?.load(engine, sha256)?;
        // It passed every check before it was written (only checked modules are kept).
        self.keep(sha256, &module, true, None);
        Some((module, true))
    }

    /// Keeps a module that passed every check, in memory and (with its serialized artifact, if
    /// the caller has it) on disk.
    pub fn keep(&self, sha256: &[u8; 32], module: &Module, probed: bool, artifact: Option<&[u8]>) {
        {
            let mut mem = self.memory.lock().expect("cache lock");
            mem.clock += 1;
            let now = mem.clock;
            if mem.entries.len() >= mem.max && !mem.entries.contains_key(sha256) {
                let oldest = mem.entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    mem.entries.remove(&k);
                }
            }
            mem.entries.insert(
                *sha256,
                Entry {
                    module: module.clone(),
                    probed,
                    used: now,
                },
            );
        }
        if let Some(d) = &self.disk
            && !d.has(sha256)
        {
            let stored = match artifact {
                Some(a) => d.store(sha256, a),
                None => module
                    .serialize()
                    .map_err(std::io::Error::other)
                    .and_then(|a| d.store(sha256, &a)),
            };
            if let Err(e) = stored {
                tracing::warn!("could not write the compiled module to the cache: {e}");
            }
        }
    }

    /// Drops a module from memory and disk (nobody stores it any more).
    pub fn forget(&self, sha256: &[u8; 32]) {
        self.memory.lock().expect("cache lock").entries.remove(sha256);
        if let Some(d) = &self.disk {
            d.remove(sha256);
        }
    }

    /// How many modules are compiled in memory.
    #[allow(clippy::len_without_is_empty)] // a count for metrics, not a collection
    pub fn len(&self) -> usize {
        self.memory.lock().expect("cache lock").entries.len()
    }

    /// Bytes of artifacts on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| {
            d.index.lock().expect("index lock").0.values().map(|(b, _)| b).sum()
        })
    }
}

impl DiskCache {
    fn open(engine: &Engine, dir: &Path, bytes_max: u64) -> std::io::Result<DiskCache> {
        fs::create_dir_all(dir)?;
        let key_path = dir.join("artifact-key");
        let key = match fs::read(&key_path) {
            Ok(k) if k.len() == 32 => k,
            _ => {
                let key: [u8; 32] = rand::random();
                write_private(&key_path, &key)?;
                key.to_vec()
            }
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_tag = format!("{:016x}", h.finish());
        // What is on disk from earlier runs, oldest first by modification time.
        let mut found = Vec::new();
        for entry in fs::read_dir(dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                // Left by a process that died while writing it.
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some(hash) = name
                .strip_suffix(&format!("-{engine_tag}.cwasm"))
                .and_then(|h| hex::decode(h).ok())
                .and_then(|h| <[u8; 32]>::try_from(h).ok())
            else {
                continue;
            };
            if let Ok(meta) = entry.metadata() {
                found.push((meta.modified().ok(), hash, meta.len()));
            }
        }
        found.sort_by_key(|(t, _, _)| *t);
        let index = found
            .into_iter()
            .enumerate()
            .map(|(i, (_, hash, len))| (hash, (len, i as u64)))
            .collect::<HashMap<_, _>>();
        let clock = index.len() as u64;
        let cache = DiskCache {
            dir: dir.to_owned(),
            key,
            engine_tag,
            bytes_max,
            index: Mutex::new((index, clock)),
        };
        cache.shrink();
        Ok(cache)
    }

    fn path(&self, sha256: &[u8; 32]) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", hex::encode(sha256), self.engine_tag))
    }

    fn tag(&self, artifact: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(artifact);
        mac
    }

    fn has(&self, sha256: &[u8; 32]) -> bool {
        self.index.lock().expect("index lock").0.contains_key(sha256)
    }

    fn touch(&self, sha256: &[u8; 32]) {
        let mut index = self.index.lock().expect("index lock");
        index.1 += 1;
        let now = index.1;
        if let Some(e) = index.0.get_mut(sha256) {
            e.1 = now;
        }
    }

    fn load(&self, engine: &Engine, sha256: &[u8; 32]) -> Option<Module> {
        let file = fs::read(self.path(sha256)).ok()?;
        let module = (file.len() >= TAG_BYTES)
            .then(|| file.split_at(file.len() - TAG_BYTES))
            .filter(|(artifact, tag)| self.tag(artifact).verify_slice(tag).is_ok())
            // SAFETY: the HMAC proves this host (holder of the secret key) wrote these bytes
            // with `Module::serialize`; wasmtime itself checks the engine's version and settings.
            .and_then(|(artifact, _)| unsafe { Module::deserialize(engine, artifact) }.ok());
        match module {
            Some(m) => {
                self.touch(sha256);
                Some(m)
            }
            None => {
                tracing::warn!(
                    "ignoring cached artifact {} whose tag does not verify (or that does not load); it is compiled again",
                    self.path(sha256).display()
                );
                self.remove(sha256);
                None
            }
        }
    }

    fn store(&self, sha256: &[u8; 32], artifact: &[u8]) -> std::io::Result<()> {
        let mut bytes = artifact.to_vec();
        let tag = self.tag(&bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag);
        let path = self.path(sha256);
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("{}-{n}.tmp", std::process::id()));
        fs::write(&tmp, &bytes)?;
        fs::rename(&tmp, &path)?;
        {
            let mut index = self.index.lock().expect("index lock");
            index.1 += 1;
            let now = index.1;
            index.0.insert(*sha256, (bytes.len() as u64, now));
        }
        self.shrink();
        Ok(())
    }

    fn remove(&self, sha256: &[u8; 32]) {
        self.index.lock().expect("index lock").0.remove(sha256);
        let _ = fs::remove_file(self.path(sha256));
    }

    /// Drops the least recently used artifacts until the cache is within its bytes.
    fn shrink(&self) {
        loop {
            let victim = {
                let index = self.index.lock().expect("index lock");
                let total: u64 = index.0.values().map(|(b, _)| b).sum();
                if total <= self.bytes_max || index.0.len() <= 1 {
                    return;
                }
                index.0.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| *k)
            };
            match victim {
                Some(k) => self.remove(&k),
                None => return,
            }
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(path)?.write_all(bytes)
}
