//! The sandboxed wasm runtime: load (validate, compile once per content hash, read the
//! manifest), instantiate with limits, and call a UDF once per batch partition.
//!
//! Architecture Invariant: this module is the only one that names wasmtime. The engine above it
//! sees `LoadedModule`, `UdfInstance`, batches and typed errors.
//!
//! ```text
//! bytes --precheck--> compile (cache by sha256) --check_compiled--> manifest
//!       --instantiate_pre--> LoadedModule --instantiate(limits)--> UdfInstance --map/filter/...-->
//! ```

mod cache;
pub mod config;
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

pub use config::{CallLimits, RuntimeConfig};
pub use error::{LoadError, RecordError, UdfError, UdfRef};
pub use instance::{UdfInstance, UdfLog};
pub use kinds::{Filtered, Mapped, Reduced};
pub use manifest::{Manifest, UdfInfo};
pub use module::LoadedModule;
pub use warm::WarmInstances;

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
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(config.instances_max)
            .total_memories(config.instances_max)
            .total_tables(config.instances_max)
            .max_memory_size(config.memory_bytes_ceiling);
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .consume_fuel(config.fuel_metering)
            .max_wasm_stack(config.wasm_stack_bytes_max)
            .wasm_multi_memory(false)
            .wasm_memory64(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| err(&e))?;
        let linker = instance::linker(&engine).map_err(|e| err(&e))?;
        let cache = CompileCache::new(&engine, config.cache_dir.as_deref()).map_err(|e| err(&e))?;
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

    /// Validates and compiles a module (once per content hash), reads its manifest and checks
    /// its ABI version. `label` names it in errors and logs (`name@version`).
    pub fn load(&self, label: &str, bytes: &[u8]) -> Result<Arc<LoadedModule>, LoadError> {
        validate::precheck(bytes, self.config.module_bytes_max)?;
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        let module = self
            .cache
            .get_or_compile(&self.engine, &sha256, || Module::from_binary(&self.engine, bytes))
            .map_err(|e| {
                let msg = format!("{e:#}");
                if msg.contains("failed to parse") || msg.contains("WebAssembly") {
                    LoadError::Invalid(msg)
                } else {
                    LoadError::Compile(msg)
                }
            })?;
        let manifest = validate::check_compiled(&module)?;
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        let loaded = Arc::new(LoadedModule::new(
            label.to_owned(),
            sha256,
            module,
            pre,
            manifest,
            self.config.epoch_tick_ms,
        ));
        let mut probe = self
            .instantiate(&loaded, &self.config.default_limits)
            .map_err(|e| LoadError::Instantiate(e.to_string()))?;
        let found = probe.abi_version().map_err(|e| LoadError::Instantiate(e.to_string()))?;
        if found != sluice_abi::ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                found,
                expected: sluice_abi::ABI_VERSION,
            });
        }
        Ok(loaded)
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
}
