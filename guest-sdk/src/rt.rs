//! The batch glue behind the attribute macros (hidden from the docs; UDF authors never call it).
//!
//! Each `run_*` function takes one encoded batch, calls the user's function once per record (or
//! per group of values), and writes the results in the ABI's output layout. They are plain Rust,
//! so the host's benchmarks and property tests run the very same loop natively.

mod kinds;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use kinds::{Emitter, run_filter, run_flat_map, run_map, run_reduce};
#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::log as wasm_log;
#[cfg(target_arch = "wasm32")]
pub use wasm::{export_batch, init};
