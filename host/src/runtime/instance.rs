//! One live instance of a module: its store (with the memory limiter, the call's time budget, the
//! panic message and the log lines of the current call), and the one raw call every UDF kind
//! goes through: copy the input in, call once under the budget, bounds-check the output location.
//!
//! Time: the epoch ticker advances the engine's epoch every tick; at each tick a running call
//! (and a start function at instantiation) reaches its epoch deadline and the store's callback
//! compares the CPU time of the thread running it with `cpu_time_ms_max` (and the wall-clock
//! time with the looser `wall_time_ms_max`). A neighbour's load slows the call down but does not
//! use up its budget.
//!
//! Architecture Invariant: a call that failed (trapped, ran out of a budget, or returned output
//! that breaks the ABI) leaves the instance poisoned; callers drop it and make a new one (see
//! `warm.rs`), so no state of a failed call leaks into the next.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_abi::{EXPORT_ABI_VERSION, EXPORT_INPUT, IMPORT_LOG, IMPORT_MODULE, IMPORT_PANIC, LogLevel, UdfKind};
use wasmtime::{Caller, Engine, Linker, Memory, ResourceLimiter, Store, Trap, TypedFunc, UpdateDeadline};

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

/// Which budget a call ran out of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overrun {
    /// Its CPU time.
    Cpu,
    /// Its wall-clock backstop.
    Wall,
}

/// The time budget of the call in progress.
struct Budget {
    cpu_start_ns: u64,
    cpu_max_ns: u64,
    wall_start: std::time::Instant,
    wall_max: std::time::Duration,
    overrun: Option<Overrun>,
}

impl Budget {
    fn new(limits: &CallLimits) -> Budget {
        Budget {
            cpu_start_ns: super::cpu::thread_cpu_ns(),
            cpu_max_ns: limits.cpu_time_ms_max.saturating_mul(1_000_000),
            wall_start: std::time::Instant::now(),
            wall_max: std::time::Duration::from_millis(limits.wall_time_ms_max.max(limits.cpu_time_ms_max)),
            overrun: None,
        }
    }

    /// At an epoch tick: `Interrupt` once a budget is spent, else check again at the next tick.
    fn check(&mut self) -> UpdateDeadline {
        if super::cpu::thread_cpu_ns().saturating_sub(self.cpu_start_ns) > self.cpu_max_ns {
            self.overrun = Some(Overrun::Cpu);
            UpdateDeadline::Interrupt
        } else if self.wall_start.elapsed() > self.wall_max {
            self.overrun = Some(Overrun::Wall);
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Continue(1)
        }
    }
}

/// Per-store state the host functions, the limiter and the epoch callback see.
pub struct HostState {
    memory_bytes_max: usize,
    memory_denied: bool,
    panic_message: Option<String>,
    logs: Vec<UdfLog>,
    logs_dropped: usize,
    budget: Budget,
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
            budget: Budget::new(&limits),
        };
        let mut store = Store::new(module.engine(), state);
        store.limiter(|s| s);
        store.epoch_deadline_callback(|mut cx| Ok(cx.data_mut().budget.check()));
        store.set_epoch_deadline(1);
        if fuel_metering {
            store
                .set_fuel(limits.fuel_per_call_max)
                .map_err(|e| fail(e.to_string()))?;
        }
        let instance = module.pre().instantiate(&mut store).map_err(|e| {
            let state = store.data();
            if e.is::<wasmtime::PoolConcurrencyLimitError>() {
                UdfError::Capacity {
                    module: module.label().to_owned(),
                    detail: format!("the server's instance pool is full ({e}); retry later"),
                }
            } else if state.memory_denied {
                fail(format!(
                    "its initial memory is over the limit of {} bytes (limit memory_bytes_max)",
                    limits.memory_bytes_max
                ))
            } else if let Some(overrun) = state.budget.overrun {
                let (what, ms, limit) = match overrun {
                    Overrun::Cpu => ("CPU time", limits.cpu_time_ms_max, "cpu_time_ms_max"),
                    Overrun::Wall => ("wall-clock time", limits.wall_time_ms_max, "wall_time_ms_max"),
                };
                fail(format!(
                    "its start function ran past the {what} limit of {ms} ms (limit {limit})"
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

    /// The size of the instance's linear memory now, in bytes (it only grows).
    pub fn memory_bytes(&self) -> usize {
        self.memory.data_size(&self.store)
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

    /// Gives the instance the module it runs under another label (the same bytes uploaded as
    /// another version): errors then name the version the stage runs.
    pub(super) fn relabel(&mut self, module: &Arc<LoadedModule>) {
        debug_assert_eq!(module.sha256(), self.module.sha256());
        self.module = module.clone();
    }

    /// Resets the per-call state and the budget before a call.
    fn arm(&mut self) {
        self.store.set_epoch_deadline(1);
        if self.fuel_metering {
            // Cannot fail: fuel metering is on for this engine.
            let _ = self.store.set_fuel(self.limits.fuel_per_call_max);
        }
        let state = self.store.data_mut();
        state.memory_denied = false;
        state.panic_message = None;
        state.logs.clear();
        state.logs_dropped = 0;
        state.budget = Budget::new(&self.limits);
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

    /// `call_raw`, then `decode` of the output; output that `decode` refuses (it breaks the
    /// ABI) poisons the instance like a trap.
    pub(super) fn call_decoded<T>(
        &mut self,
        kind: UdfKind,
        function: &str,
        input: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, UdfError>,
    ) -> Result<T, UdfError> {
        let out = self.call_raw(kind, function, input)?;
        let decoded = decode(out);
        if decoded.is_err() {
            self.poisoned = true;
        }
        decoded
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
        let overrun = state.budget.overrun;
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) if overrun == Some(Overrun::Wall) => UdfError::WallTimeout {
                udf,
                limit_ms: self.limits.wall_time_ms_max,
            },
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
