//! The runtime's errors. `LoadError`: a module refused at upload, naming what is wrong and what
//! to do. `UdfError`: a call that failed as a whole (trap, limit, panic), naming the UDF, its
//! module version and the limit or trap. Errors of single records are data, not errors: see
//! `RecordError`.

use std::fmt;

use sluice_abi::UdfKind;

/// Where the ABI is documented, for error messages.
pub const ABI_DOC: &str = "docs/abi.md";

/// A module refused at load.
#[derive(Debug, thiserror::Error, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LoadError {
    /// Larger than `RuntimeConfig::module_bytes_max`.
    #[error("the module is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// Does not start with the wasm magic number.
    #[error(
        "not a WebAssembly module (a .wasm file starts with \\0asm); build the UDF crate for wasm32-unknown-unknown, see {ABI_DOC}"
    )]
    NotWasm,
    /// A component, not a core module.
    #[error(
        "this is a WebAssembly component; Sluice runs core modules built for wasm32-unknown-unknown, see {ABI_DOC}"
    )]
    Component,
    /// The bytes are wasm but do not validate.
    #[error("invalid WebAssembly: {0}")]
    Invalid(String),
    /// An import other than the host's own `sluice` module.
    #[error(
        "the module imports `{module}.{name}`, but UDFs may import only `sluice.log` and `sluice.panic` (no WASI, clock, files or network); build for wasm32-unknown-unknown without WASI, see {ABI_DOC}#imports"
    )]
    ForbiddenImport { module: String, name: String },
    /// An import of the host's module with the wrong type.
    #[error(
        "the module imports `sluice.{name}` with type {found}, but the host provides {expected}, see {ABI_DOC}#imports"
    )]
    ImportType {
        name: String,
        found: String,
        expected: String,
    },
    /// More than one linear memory.
    #[error("the module has {0} memories; the ABI allows exactly one, exported as `memory`")]
    MemoryCount(usize),
    /// A required export is absent or has the wrong type.
    #[error(
        "the module is missing the export `{name}` ({what}); modules built with the sluice-guest SDK have it, see {ABI_DOC}#exports"
    )]
    MissingExport { name: String, what: String },
    /// A `sluice:` export that is malformed.
    #[error("{0}, see {ABI_DOC}#exports")]
    BadExport(String),
    /// No UDF exports at all.
    #[error(
        "the module exports no UDFs (exports named `sluice:KIND:NAME`); mark functions with #[map], #[flat_map], #[filter] or #[reduce], see {ABI_DOC}#exports"
    )]
    NoUdfs,
    /// Built for another ABI version.
    #[error(
        "the module was built for ABI version {found}, but this host speaks version {expected}; rebuild it with a sluice-guest SDK of ABI version {expected}"
    )]
    AbiMismatch { found: u32, expected: u32 },
    /// Instantiating failed (start function trapped, memory minimum over the limit, ...).
    #[error("the module could not be instantiated: {0}")]
    Instantiate(String),
    /// Cranelift refused or failed.
    #[error("the module could not be compiled: {0}")]
    Compile(String),
    /// Compiling took longer than its limit; the compile was stopped and nothing of it is kept.
    #[error(
        "compiling the module took longer than the limit of {limit_ms} ms (compile_time_ms_max); make it smaller or simpler"
    )]
    CompileTimeout { limit_ms: u64 },
    /// The compiler process ran out of memory (or died); nothing of it is kept.
    #[error("compiling the module failed: {0}")]
    CompilerDied(String),
    /// The server has no room for the module now (its instance pool is full); not the module's
    /// fault.
    #[error("the server has no room to check the module right now ({0}); retry later")]
    Capacity(String),
}

/// A UDF as errors name it: `module@version`, kind and function.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UdfRef {
    /// `name@version` of the module (or its hash prefix when it has no name).
    pub module: String,
    /// The UDF's kind.
    pub kind: UdfKind,
    /// The function's name.
    pub function: String,
}

impl fmt::Display for UdfRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}` of module {}", self.kind, self.function, self.module)
    }
}

/// A UDF call that failed as a whole. The instance it ran in is discarded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum UdfError {
    /// Used more CPU time than `CallLimits::cpu_time_ms_max`.
    #[error("UDF {udf} ran past its time limit of {limit_ms} ms of CPU time and was stopped (limit cpu_time_ms_max)")]
    Timeout { udf: UdfRef, limit_ms: u64 },
    /// Took longer than `CallLimits::wall_time_ms_max` in wall-clock time (starved or blocked).
    #[error(
        "UDF {udf} ran past its wall-clock backstop of {limit_ms} ms and was stopped (limit wall_time_ms_max; the machine may be overloaded)"
    )]
    WallTimeout { udf: UdfRef, limit_ms: u64 },
    /// Used all of `CallLimits::fuel_per_call_max`.
    #[error("UDF {udf} used all of its fuel ({limit} units) and was stopped (limit fuel_per_call_max)")]
    OutOfFuel { udf: UdfRef, limit: u64 },
    /// Tried to grow memory past `CallLimits::memory_bytes_max`.
    #[error(
        "UDF {udf} tried to grow its memory past the limit of {limit_bytes} bytes and was stopped (limit memory_bytes_max)"
    )]
    MemoryLimit { udf: UdfRef, limit_bytes: usize },
    /// Overflowed the wasm stack (`RuntimeConfig::wasm_stack_bytes_max`): usually endless recursion.
    #[error(
        "UDF {udf} overflowed its stack of {limit_bytes} bytes (endless recursion?) and was stopped (limit wasm_stack_bytes_max)"
    )]
    StackOverflow { udf: UdfRef, limit_bytes: usize },
    /// Returned more than `CallLimits::output_bytes_max`.
    #[error(
        "UDF {udf} returned {produced} bytes for one batch, over the limit of {limit_bytes} bytes (limit output_bytes_max)"
    )]
    OutputLimit {
        udf: UdfRef,
        produced: usize,
        limit_bytes: usize,
    },
    /// Panicked.
    #[error("UDF {udf} panicked: {message}")]
    Panic { udf: UdfRef, message: String },
    /// Trapped (unreachable, out-of-bounds access, division by zero, ...).
    #[error("UDF {udf} trapped: {trap}")]
    Trap { udf: UdfRef, trap: String },
    /// Returned bytes that do not follow the ABI.
    #[error("UDF {udf} returned output that breaks the ABI ({detail}), see {ABI_DOC}")]
    BadOutput { udf: UdfRef, detail: String },
    /// The module has no UDF of this name and kind.
    #[error("the module {module} has no {kind} UDF named `{function}` (it has: {available})")]
    NoSuchUdf {
        module: String,
        kind: UdfKind,
        function: String,
        available: String,
    },
    /// A fresh instance could not be made (memory minimum over the limit, start function
    /// failed, ...).
    #[error("could not instantiate module {module}: {reason}")]
    Instantiate { module: String, reason: String },
    /// No instance could be had: the server's pool or the tenant's instance quota is used up.
    /// Not the module's fault.
    #[error("no instance of module {module} could be had: {detail}")]
    Capacity { module: String, detail: String },
}

impl UdfError {
    /// A short stable word for the error's kind (metrics labels, API codes).
    pub fn code(&self) -> &'static str {
        match self {
            UdfError::Timeout { .. } => "timeout",
            UdfError::WallTimeout { .. } => "wall_timeout",
            UdfError::OutOfFuel { .. } => "out_of_fuel",
            UdfError::MemoryLimit { .. } => "memory_limit",
            UdfError::StackOverflow { .. } => "stack_overflow",
            UdfError::OutputLimit { .. } => "output_limit",
            UdfError::Panic { .. } => "panic",
            UdfError::Trap { .. } => "trap",
            UdfError::BadOutput { .. } => "bad_output",
            UdfError::NoSuchUdf { .. } => "no_such_udf",
            UdfError::Instantiate { .. } => "instantiate",
            UdfError::Capacity { .. } => "capacity",
        }
    }
}

/// One input record (or value group) the UDF refused; the rest of the batch went through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    /// Index of the record (or group) in the call's input.
    pub index: u32,
    /// The UDF's message.
    pub message: String,
}
