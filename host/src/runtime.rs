//! The sandboxed wasm runtime: load (validate, compile once per content hash, read the
//! manifest), instantiate with limits, and call a UDF once per batch partition.
//!
//! Architecture Invariant: this module is the only one that names wasmtime. The engine above it
//! sees `LoadedModule`, `UdfInstance`, batches and typed errors.
//!
//! ```text
//! bytes --precheck--> compile (cache by sha256; in a killable child process in the server)
//!       --check_compiled--> manifest --instantiate_pre--> LoadedModule
//!       --probe (ABI version)--> kept in the cache --instantiate(limits)--> UdfInstance
//! ```
//!
//! Architecture Invariant: only a module that passed every check is kept in the compile cache;
//! an upload that is refused (or not stored) leaves nothing behind in memory or on disk.

mod cache;
mod compiler;
pub mod config;
mod cpu;
pub mod error;
mod instance;
mod kinds;
pub mod manifest;
mod module;
mod ticker;
mod validate;
mod warm;

use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig};

pub use compiler::child_main as compiler_child_main;
pub use config::{CallLimits, CompilerMode, RuntimeConfig};
pub use cpu::thread_cpu_ns;
pub use error::{LoadError, RecordError, UdfError, UdfRef};
pub use instance::{UdfInstance, UdfLog};
pub use kinds::{Filtered, Mapped, Reduced};
pub use manifest::{Manifest, UdfInfo};
pub use module::LoadedModule;
pub use warm::{InstanceBudget, WarmInstances};

use cache::CompileCache;
use instance::HostState;
use ticker::EpochTicker;

/// The runtime: one wasmtime engine (pooling allocator, epoch interruption), the host's linker
/// and the compile cache. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: CompileCache,
    config: RuntimeConfig,
    _ticker: EpochTicker,
}

/// The runtime could not start (bad config, or the OS refused the memory reservation).
#[derive(Debug, thiserror::Error)]
#[error("could not start the wasm runtime: {0}")]
pub struct RuntimeInitError(String);

/// A module that passed every check at upload, not yet kept in the compile cache (the caller
/// keeps it once it is stored: `Runtime::keep`).
pub struct Checked {
    /// The module.
    pub module: Arc<LoadedModule>,
    /// Size of its compiled artifact, in bytes.
    pub artifact_bytes: usize,
    compiled: Module,
    artifact: Vec<u8>,
}

/// The engine settings. The compiler child process builds its engine here too, without the
/// pooling allocator (which is not part of what an artifact must match).
fn engine_config(config: &RuntimeConfig, pooling: bool) -> wasmtime::Result<Config> {
    let mut wasm = Config::new();
    wasm.epoch_interruption(true)
        .consume_fuel(config.fuel_metering)
        .max_wasm_stack(config.wasm_stack_bytes_max)
        .wasm_multi_memory(false)
        .wasm_memory64(false);
    if pooling {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(config.instances_max)
            .total_memories(config.instances_max)
            .total_tables(config.instances_max)
            .max_memory_size(config.memory_bytes_ceiling);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    } else {
        wasm.parallel_compilation(false);
    }
    Ok(wasm)
}

impl Runtime {
    /// Starts a runtime with these settings.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeInitError> {
        let err = |e: &dyn std::fmt::Display| RuntimeInitError(e.to_string());
        if config.default_limits.memory_bytes_max > config.memory_bytes_ceiling {
            return Err(RuntimeInitError(format!(
                "default_limits.memory_bytes_max ({}) is over memory_bytes_ceiling ({})",
                config.default_limits.memory_bytes_max, config.memory_bytes_ceiling
            )));
        }
        let wasm = engine_config(&config, true).map_err(|e| err(&e))?;
        let engine = Engine::new(&wasm).map_err(|e| err(&e))?;
        let linker = instance::linker(&engine).map_err(|e| err(&e))?;
        let cache = CompileCache::new(
            &engine,
            config.cache_modules_max,
            config.cache_dir.as_deref(),
            config.cache_dir_bytes_max,
        )
        .map_err(|e| err(&e))?;
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick_ms);
        Ok(Runtime {
            engine,
            linker,
            cache,
            config,
            _ticker: ticker,
        })
    }

    /// The settings it runs with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// A module from the cache, or validated and compiled now (once per content hash), with
    /// its manifest read and its ABI version checked, and then kept in the cache. `label` names
    /// it in errors and logs (`name@version`). For modules already accepted (stored versions,
    /// local files); uploads go through `check` and `keep`.
    pub fn load(&self, label: &str, bytes: &[u8]) -> Result<Arc<LoadedModule>, LoadError> {
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        if let Some((module, probed)) = self.cache.get(&self.engine, &sha256) {
            let loaded = self.prepare(label, sha256, module.clone())?;
            if !probed {
                self.probe(&loaded)?;
                self.cache.keep(&sha256, &module, true, None);
            }
            return Ok(loaded);
        }
        let checked = self.check(label, bytes)?;
        let module = checked.module.clone();
        self.keep(checked);
        Ok(module)
    }

    /// Validates and compiles an upload, reads its manifest and checks its ABI version, keeping
    /// nothing: a module that is refused here (or by a quota after) leaves nothing behind.
    pub fn check(&self, label: &str, bytes: &[u8]) -> Result<Checked, LoadError> {
        self.check_within(label, bytes, None)
    }

    /// `check`, with a compile time limit of its own (a tenant's) for a child-process compile.
    pub fn check_within(
        &self,
        label: &str,
        bytes: &[u8],
        compile_time_ms_max: Option<u64>,
    ) -> Result<Checked, LoadError> {
        validate::precheck(bytes, self.config.module_bytes_max)?;
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        let mode = match (&self.config.compiler, compile_time_ms_max) {
            (
                CompilerMode::ChildProcess {
                    exe, memory_bytes_max, ..
                },
                Some(ms),
            ) => CompilerMode::ChildProcess {
                exe: exe.clone(),
                time_ms_max: ms,
                memory_bytes_max: *memory_bytes_max,
            },
            (mode, _) => mode.clone(),
        };
        let compiled = compiler::compile(&self.engine, &mode, self.config.fuel_metering, bytes)?;
        let loaded = self.prepare(label, sha256, compiled.module.clone())?;
        self.probe(&loaded)?;
        let artifact = match compiled.artifact {
            Some(a) => a,
            None => compiled
                .module
                .serialize()
                .map_err(|e| LoadError::Compile(format!("{e:#}")))?,
        };
        Ok(Checked {
            module: loaded,
            artifact_bytes: artifact.len(),
            compiled: compiled.module,
            artifact,
        })
    }

    /// Keeps a checked module in the compile cache (memory, and disk when configured).
    pub fn keep(&self, checked: Checked) {
        let sha256 = *checked.module.sha256();
        let artifact = self.config.cache_dir.as_ref().map(|_| checked.artifact.as_slice());
        self.cache.keep(&sha256, &checked.compiled, true, artifact);
    }

    /// Drops a module from the compile cache (nobody stores it any more).
    pub fn forget(&self, sha256: &[u8; 32]) {
        self.cache.forget(sha256);
    }

    fn prepare(&self, label: &str, sha256: [u8; 32], module: Module) -> Result<Arc<LoadedModule>, LoadError> {
        let manifest = validate::check_compiled(&module)?;
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        Ok(Arc::new(LoadedModule::new(
            label.to_owned(),
            sha256,
            module,
            pre,
            manifest,
        )))
    }

    /// Instantiates the module once (its start function runs under the default limits) and
    /// checks the ABI version it speaks.
    fn probe(&self, loaded: &Arc<LoadedModule>) -> Result<(), LoadError> {
        let mut probe = self
            .instantiate(loaded, &self.config.default_limits)
            .map_err(|e| match e {
                UdfError::Capacity { detail, .. } => LoadError::Capacity(detail),
                e => LoadError::Instantiate(e.to_string()),
            })?;
        let found = probe.abi_version().map_err(|e| LoadError::Instantiate(e.to_string()))?;
        if found != sluice_abi::ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                found,
                expected: sluice_abi::ABI_VERSION,
            });
        }
        Ok(())
    }

    /// A fresh instance of `module` whose calls run under `limits`.
    pub fn instantiate(&self, module: &Arc<LoadedModule>, limits: &CallLimits) -> Result<UdfInstance, UdfError> {
        let mut limits = limits.clone();
        limits.memory_bytes_max = limits.memory_bytes_max.min(self.config.memory_bytes_ceiling);
        UdfInstance::new(
            module.clone(),
            limits,
            self.config.fuel_metering,
            self.config.wasm_stack_bytes_max,
        )
    }

    /// How many distinct modules are compiled in memory.
    pub fn compiled_modules(&self) -> usize {
        self.cache.len()
    }

    /// Bytes of compiled artifacts in the cache directory.
    pub fn cache_dir_bytes(&self) -> u64 {
        self.cache.disk_bytes()
    }
}
