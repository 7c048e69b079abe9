//! End-to-end tests, one binary with a module per feature (the pattern of wasmtime's
//! `tests/all`): the real runtime with the real UDF modules built by the build, and the real
//! `sluice` binary.

mod abi_by_hand;
mod authoring;
mod c_udf;
mod cache;
mod checkpoints;
mod cli;
mod cli_guide;
mod console;
mod crash;
mod crash_directory;
mod crash_ingest;
mod disk_full;
mod foreign_files;
mod harness;
mod isolation;
mod kafka;
mod live_sources;
mod load_errors;
mod native_parity;
mod nexmark;
mod poison;
mod readme;
mod run_jobs;
mod sandbox;
mod scheduler;
mod server;
mod supervision;
mod tenant_limits;
mod upgrade;
