//! Sluice: a micro-batch stream-processing platform whose user functions are sandboxed
//! WebAssembly modules. This crate is the host: the `sluice` binary and its library.
//!
//! - [`batch`]: batches in the ABI's byte layout, shared by the engine and the runtime.
//! - [`runtime`]: the wasm sandbox (the only module that names wasmtime).
//! - [`demo`]: the demo the README's first command runs.
//!
//! See `ARCHITECTURE.md` at the repository root for the code map and invariants.

pub mod authoring;
pub mod batch;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod client;
pub mod demo;
pub mod engine;
mod failpoints;
pub mod job;
pub mod registry;
pub mod run;
pub mod runtime;
pub mod server;
pub mod sink;
pub mod source;
pub mod supervisor;
