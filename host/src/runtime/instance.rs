//! One live instance of a module: its store (with the memory limiter, the panic message and the
//! log lines of the current call), and the one raw call every UDF kind goes through: copy the
//! input in, call once under the deadline, bounds-check the output location.
//!
//! Architecture Invariant: a call that trapped leaves the instance poisoned; callers drop it and
//! make a new one (see `warm.rs`), so no state of a failed call leaks into the next.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_abi::{EXPORT_ABI_VERSION, EXPORT_INPUT, IMPORT_LOG, IMPORT_MODULE, IMPORT_PANIC, LogLevel, UdfKind};
use wasmtime::{Caller, Engine, Linker, Memory, ResourceLimiter, Store, Trap, TypedFunc};

use super::config::CallLimits;
use super::error::{UdfError, UdfRef};
use super::module::LoadedModule;

/// Log lines kept per call; the rest are counted, not kept (a UDF cannot flood the host).
const LOG_LINES_PER_CALL_MAX: usize = 100;
/// Bytes kept of one log line or panic message.
const LOG_LINE_BYTES_MAX: usize = 4096;

/// A log line a UDF sent during a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdfLog {
    /// Its level.
    pub level: LogLevel,
    /// Its text (cut at 4 KiB).
    pub message: String,
}

/// Per-store state the host functions and the limiter see.
pub struct HostState {
    memory_bytes_max: usize,
    memory_denied: bool,
    panic_message: Option<String>,
    logs: Vec<UdfLog>,
    logs_dropped: usize,
}

impl ResourceLimiter for HostState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes_max {
            self.memory_denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

fn read_guest_text(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> String {
    let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else {
        return "(module has no memory)".to_owned();
    };
    let data = memory.data(&caller);
    let start = ptr as u32 as usize;
    let len = (len as u32 as usize).min(LOG_LINE_BYTES_MAX);
    match data.get(start..start.saturating_add(len)) {
        Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        None => "(text out of the module's memory bounds)".to_owned(),
    }
}

/// The linker with the host's own module: `sluice.log` and `sluice.panic`.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap(
        IMPORT_MODULE,
        IMPORT_LOG,
        |mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
            if caller.data().logs.len() >= LOG_LINES_PER_CALL_MAX {
                caller.data_mut().logs_dropped += 1;
                return;
            }
            let message = read_guest_text(&mut caller, ptr, len);
            caller.data_mut().logs.push(UdfLog {
                level: LogLevel::from_i32(level),
                message,
            });
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        IMPORT_PANIC,
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
            let message = read_guest_text(&mut caller, ptr, len);
            caller.data_mut().panic_message = Some(message);
        },
    )?;
    Ok(linker)
}

type UdfFunc = TypedFunc<(i32, i32), i64>;

/// A live instance of a module, reused across batches until a call fails.
pub struct UdfInstance {
    module: Arc<LoadedModule>,
    store: Store<HostState>,
    memory: Memory,
    input: TypedFunc<i32, i32>,
    abi_version: TypedFunc<(), i32>,
    funcs: HashMap<(UdfKind, String), UdfFunc>,
    limits: CallLimits,
    fuel_metering: bool,
    stack_bytes_max: usize,
    poisoned: bool,
    /// Log lines of the last call.
    logs: Vec<UdfLog>,
}

impl UdfInstance {
    pub(super) fn new(
        module: Arc<LoadedModule>,
        limits: CallLimits,
        fuel_metering: bool,
        stack_bytes_max: usize,
    ) -> Result<UdfInstance, UdfError> {
        let fail = |reason: String| UdfError::Instantiate {
            module: module.label().to_owned(),
            reason,
        };
        let state = HostState {
            memory_bytes_max: limits.memory_bytes_max,
            memory_denied: false,
            panic_message: None,
            logs: Vec::new(),
            logs_dropped: 0,
        };
        let mut store = Store::new(module.engine(), state);
        store.limiter(|s| s);
        store.set_epoch_deadline(deadline_ticks(limits.cpu_time_ms_max, module.epoch_tick_ms()));
        store.epoch_deadline_trap();
        if fuel_metering {
            store
                .set_fuel(limits.fuel_per_call_max)
                .map_err(|e| fail(e.to_string()))?;
        }
        let instance = module.pre().instantiate(&mut store).map_err(|e| {
            if store.data().memory_denied {
                fail(format!(
                    "its initial memory is over the limit of {} bytes (limit memory_bytes_max)",
                    limits.memory_bytes_max
                ))
            } else if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
                fail(format!(
                    "its start function ran past the time limit of {} ms (limit cpu_time_ms_max)",
                    limits.cpu_time_ms_max
                ))
            } else {
                fail(format!("{e:#}"))
            }
        })?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| fail("no memory export".into()))?;
        let input = instance
            .get_typed_func::<i32, i32>(&mut store, EXPORT_INPUT)
            .map_err(|e| fail(e.to_string()))?;
        let abi_version = instance
            .get_typed_func::<(), i32>(&mut store, EXPORT_ABI_VERSION)
            .map_err(|e| fail(e.to_string()))?;
        let mut funcs = HashMap::new();
        for udf in &module.manifest().udfs {
            let mut kinds = vec![udf.kind];
            if udf.has_inverse {
                kinds.push(UdfKind::Inverse);
            }
            for kind in kinds {
                let name = sluice_abi::udf_export_name(kind, &udf.name);
                let f = instance
                    .get_typed_func::<(i32, i32), i64>(&mut store, &name)
                    .map_err(|e| fail(e.to_string()))?;
                funcs.insert((kind, udf.name.clone()), f);
            }
        }
        Ok(UdfInstance {
            module,
            store,
            memory,
            input,
            abi_version,
            funcs,
            limits,
            fuel_metering,
            stack_bytes_max,
            poisoned: false,
            logs: Vec::new(),
        })
    }

    /// The module this instance runs.
    pub fn module(&self) -> &Arc<LoadedModule> {
        &self.module
    }

    /// The limits its calls run under.
    pub fn limits(&self) -> &CallLimits {
        &self.limits
    }

    /// Whether a call failed in it; a poisoned instance must not be called again.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The log lines of the last call.
    pub fn last_logs(&self) -> &[UdfLog] {
        &self.logs
    }

    /// Calls the module's `sluice_abi_version` export.
    pub fn abi_version(&mut self) -> Result<u32, UdfError> {
        let f = self.abi_version.clone();
        let udf = self.udf_ref(UdfKind::Map, EXPORT_ABI_VERSION);
        self.arm();
        f.call(&mut self.store, ())
            .map(|v| v as u32)
            .map_err(|e| self.classify(udf, e))
    }

    pub(super) fn udf_ref(&self, kind: UdfKind, function: &str) -> UdfRef {
        UdfRef {
            module: self.module.label().to_owned(),
            kind,
            function: function.to_owned(),
        }
    }

    /// Resets the per-call state and the deadline before a call.
    fn arm(&mut self) {
        let ticks = deadline_ticks(self.limits.cpu_time_ms_max, self.module.epoch_tick_ms());
        self.store.set_epoch_deadline(ticks);
        if self.fuel_metering {
            // Cannot fail: fuel metering is on for this engine.
            let _ = self.store.set_fuel(self.limits.fuel_per_call_max);
        }
        let state = self.store.data_mut();
        state.memory_denied = false;
        state.panic_message = None;
        state.logs.clear();
        state.logs_dropped = 0;
    }

    /// Copies `input` into the module, calls `kind:function` once, and returns the output bytes
    /// (borrowed from the module's memory until the next call).
    pub fn call_raw(&mut self, kind: UdfKind, function: &str, input: &[u8]) -> Result<&[u8], UdfError> {
        assert!(!self.poisoned, "a poisoned instance must be replaced, not called");
        let udf = self.udf_ref(kind, function);
        let Some(func) = self.funcs.get(&(kind, function.to_owned())).cloned() else {
            return Err(UdfError::NoSuchUdf {
                module: self.module.label().to_owned(),
                kind,
                function: function.to_owned(),
                available: self.module.manifest().describe(),
            });
        };
        let result = self.call_in(&udf, func, input);
        let state = self.store.data_mut();
        self.logs = std::mem::take(&mut state.logs);
        if state.logs_dropped > 0 {
            self.logs.push(UdfLog {
                level: LogLevel::Warn,
                message: format!("{} more log lines of this call were dropped", state.logs_dropped),
            });
        }
        for line in &self.logs {
            tracing::debug!(target: "sluice::udf", udf = %udf, level = ?line.level, "{}", line.message);
        }
        match result {
            Ok((ptr, len)) => Ok(&self.memory.data(&self.store)[ptr..ptr + len]),
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }

    fn call_in(&mut self, udf: &UdfRef, func: UdfFunc, input: &[u8]) -> Result<(usize, usize), UdfError> {
        let bad = |detail: String| UdfError::BadOutput {
            udf: udf.clone(),
            detail,
        };
        let len = i32::try_from(input.len())
            .map_err(|_| bad(format!("the batch is {} bytes, over the 2 GiB ABI limit", input.len())))?;
        self.arm();
        let ptr = self
            .input
            .call(&mut self.store, len)
            .map_err(|e| self.classify(udf.clone(), e))?;
        self.memory
            .write(&mut self.store, ptr as u32 as usize, input)
            .map_err(|_| {
                bad(format!(
                    "`{EXPORT_INPUT}` returned {ptr:#x}, which has no room for {len} bytes"
                ))
            })?;
        let packed = func
            .call(&mut self.store, (ptr, len))
            .map_err(|e| self.classify(udf.clone(), e))?;
        let (out_ptr, out_len) = sluice_abi::unpack(packed);
        let (out_ptr, out_len) = (out_ptr as usize, out_len as usize);
        if out_len > self.limits.output_bytes_max {
            return Err(UdfError::OutputLimit {
                udf: udf.clone(),
                produced: out_len,
                limit_bytes: self.limits.output_bytes_max,
            });
        }
        if out_ptr
            .checked_add(out_len)
            .is_none_or(|end| end > self.memory.data_size(&self.store))
        {
            return Err(bad(format!(
                "output at {out_ptr:#x}+{out_len} lies outside the module's memory"
            )));
        }
        Ok((out_ptr, out_len))
    }

    /// Turns a failed call into the error that names its cause.
    fn classify(&mut self, udf: UdfRef, err: wasmtime::Error) -> UdfError {
        self.poisoned = true;
        let state = self.store.data_mut();
        if let Some(message) = state.panic_message.take() {
            return UdfError::Panic { udf, message };
        }
        let denied = state.memory_denied;
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => UdfError::Timeout {
                udf,
                limit_ms: self.limits.cpu_time_ms_max,
            },
            Some(Trap::OutOfFuel) => UdfError::OutOfFuel {
                udf,
                limit: self.limits.fuel_per_call_max,
            },
            Some(Trap::StackOverflow) => UdfError::StackOverflow {
                udf,
                limit_bytes: self.stack_bytes_max,
            },
            _ if denied => UdfError::MemoryLimit {
                udf,
                limit_bytes: self.limits.memory_bytes_max,
            },
            Some(Trap::MemoryOutOfBounds) => UdfError::Trap {
                udf,
                trap: format!(
                    "{} (endless recursion that overflows the stack a compiler keeps in linear \
                     memory ends this way too)",
                    Trap::MemoryOutOfBounds
                ),
            },
            Some(trap) => UdfError::Trap {
                udf,
                trap: trap.to_string(),
            },
            None => UdfError::Trap {
                udf,
                trap: format!("{err:#}"),
            },
        }
    }
}

/// Epoch ticks for a deadline: at least one, rounded up.
fn deadline_ticks(ms: u64, tick_ms: u64) -> u64 {
    ms.div_ceil(tick_ms.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::deadline_ticks;

    #[test]
    fn deadlines_round_up_to_whole_ticks() {
        assert_eq!(deadline_ticks(100, 1), 100);
        assert_eq!(deadline_ticks(5, 2), 3);
        assert_eq!(deadline_ticks(0, 1), 1);
        assert_eq!(deadline_ticks(1, 0), 1);
    }
}
