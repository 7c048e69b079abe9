//! The compile cache: one compiled `Module` per content hash in memory, and, when a cache
//! directory is configured, the serialized artifact on disk so a restart does not recompile.
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

/// Compiled modules by content hash.
pub struct CompileCache {
    memory: Mutex<HashMap<[u8; 32], Module>>,
    disk: Option<DiskCache>,
}

struct DiskCache {
    dir: PathBuf,
    key: Vec<u8>,
    engine_tag: String,
}

impl CompileCache {
    /// A cache in memory, and on disk under `dir` if given.
    pub fn new(engine: &Engine, dir: Option<&Path>) -> std::io::Result<CompileCache> {
        let disk = match dir {
            Some(dir) => Some(DiskCache::open(engine, dir)?),
            None => None,
        };
        Ok(CompileCache {
            memory: Mutex::new(HashMap::new()),
            disk,
        })
    }

    /// The module for `bytes` (hash `sha256`): from memory, from disk, or compiled by `compile`.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        sha256: &[u8; 32],
        compile: impl FnOnce() -> wasmtime::Result<Module>,
    ) -> wasmtime::Result<Module> {
        if let Some(m) = self.memory.lock().expect("cache lock").get(sha256) {
            return Ok(m.clone());
        }
        let from_disk = self.disk.as_ref().and_then(|d| d.load(engine, sha256));
        let module = match from_disk {
            Some(m) => m,
            None => {
                let m = compile()?;
                if let Some(Err(e)) = self.disk.as_ref().map(|d| d.store(sha256, &m)) {
                    tracing::warn!("could not write the compiled module to the cache: {e}");
                }
                m
            }
        };
        self.memory.lock().expect("cache lock").insert(*sha256, module.clone());
        Ok(module)
    }

    /// How many modules are compiled in memory.
    #[allow(clippy::len_without_is_empty)] // a count for metrics, not a collection
    pub fn len(&self) -> usize {
        self.memory.lock().expect("cache lock").len()
    }
}

impl DiskCache {
    fn open(engine: &Engine, dir: &Path) -> std::io::Result<DiskCache> {
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
        Ok(DiskCache {
            dir: dir.to_owned(),
            key,
            engine_tag: format!("{:016x}", h.finish()),
        })
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

    fn load(&self, engine: &Engine, sha256: &[u8; 32]) -> Option<Module> {
        let file = fs::read(self.path(sha256)).ok()?;
        if file.len() < TAG_BYTES {
            return None;
        }
        let (artifact, tag) = file.split_at(file.len() - TAG_BYTES);
        if self.tag(artifact).verify_slice(tag).is_err() {
            tracing::warn!(
                "ignoring cached artifact {} whose tag does not verify",
                self.path(sha256).display()
            );
            return None;
        }
        // SAFETY: the HMAC proves this host (holder of the secret key) wrote these bytes with
        // `Module::serialize`; wasmtime itself checks the engine's version and settings.
        unsafe { Module::deserialize(engine, artifact) }.ok()
    }

    fn store(&self, sha256: &[u8; 32], module: &Module) -> wasmtime::Result<()> {
        let mut bytes = module.serialize()?;
        let tag = self.tag(&bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag);
        let path = self.path(sha256);
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, &bytes)?;
        fs::rename(&tmp, &path)?;
        Ok(())
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
