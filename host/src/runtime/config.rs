//! Sandbox limits and runtime settings: named data with units in the names, defaults in one
//! place (`Default`), read from config files with unknown fields refused.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Limits applied to every call of a UDF. A tenant's quotas (control plane) narrow them further.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallLimits {
    /// CPU time one batch call may use, measured on the calling thread's own CPU clock (so
    /// load elsewhere on the machine never fails a call); checked at every epoch tick.
    pub cpu_time_ms_max: u64,
    /// Wall-clock time one batch call may take, whatever its CPU time: a looser backstop for a
    /// call starved of CPU (or blocked), which the CPU clock alone would let run on.
    pub wall_time_ms_max: u64,
    /// Linear memory one instance may grow to.
    pub memory_bytes_max: usize,
    /// Bytes one batch call may return.
    pub output_bytes_max: usize,
    /// Fuel (roughly, wasm instructions) one batch call may use, when fuel metering is on
    /// (`RuntimeConfig::fuel_metering`); ignored otherwise.
    pub fuel_per_call_max: u64,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            cpu_time_ms_max: 1_000,
            wall_time_ms_max: 10_000,
            memory_bytes_max: 64 << 20,
            output_bytes_max: 32 << 20,
            fuel_per_call_max: 10_000_000_000,
        }
    }
}

/// Settings of the wasm runtime as a whole (one wasmtime engine per process).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Largest module accepted, in bytes.
    pub module_bytes_max: usize,
    /// Wasm stack a call may use, in bytes; deeper recursion traps as a stack overflow.
    pub wasm_stack_bytes_max: usize,
    /// Ceiling on any instance's linear memory (the pooling allocator's slot size). Per-call
    /// limits (`CallLimits::memory_bytes_max`) must not exceed it.
    pub memory_bytes_ceiling: usize,
    /// Instances that may exist at once (the pooling allocator's size).
    pub instances_max: u32,
    /// Period of the epoch ticker: every tick, a running call compares its thread's CPU time
    /// with its limit, so it overruns the limit by at most about one tick.
    pub epoch_tick_ms: u64,
    /// Also meter calls with fuel (deterministic, instruction-counted; costs throughput).
    pub fuel_metering: bool,
    /// Where compiled artifacts are kept between runs (none: compile on every start).
    pub cache_dir: Option<PathBuf>,
    /// Compiled modules kept in memory (least recently used dropped first).
    pub cache_modules_max: usize,
    /// Bytes of compiled artifacts kept in `cache_dir` (least recently used dropped first).
    pub cache_dir_bytes_max: u64,
    /// How modules are compiled: in this process, or in a child process that is killed when it
    /// passes its time limit (the server: Cranelift cannot be interrupted).
    #[serde(skip)]
    pub compiler: CompilerMode,
    /// Limits for calls that name no others.
    pub default_limits: CallLimits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            module_bytes_max: 10 << 20,
            wasm_stack_bytes_max: 512 << 10,
            memory_bytes_ceiling: 1 << 30,
            instances_max: 1_000,
            epoch_tick_ms: 1,
            fuel_metering: false,
            cache_dir: None,
            cache_modules_max: 256,
            cache_dir_bytes_max: 1 << 30,
            compiler: CompilerMode::InProcess,
            default_limits: CallLimits::default(),
        }
    }
}

/// Where modules are compiled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CompilerMode {
    /// In this process, on the calling thread (`sluice run`, tests, benches).
    #[default]
    InProcess,
    /// In a child process (`EXE compile-module`), killed past `time_ms_max`, with its memory
    /// capped at `memory_bytes_max`: a compile bomb costs the server neither CPU nor memory
    /// beyond the limits, and nothing of it is kept.
    ChildProcess {
        /// The `sluice` binary to run.
        exe: PathBuf,
        /// Wall-clock time the compile may take.
        time_ms_max: u64,
        /// Address space of the child (`RLIMIT_AS`).
        memory_bytes_max: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused_and_missing_ones_default() {
        let c: RuntimeConfig = serde_json::from_str(r#"{"epoch_tick_ms": 5}"#).unwrap();
        assert_eq!(c.epoch_tick_ms, 5);
        assert_eq!(c.default_limits, CallLimits::default());
        let e = serde_json::from_str::<RuntimeConfig>(r#"{"epoch_tick": 5}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `epoch_tick`"), "{e}");
    }
}
