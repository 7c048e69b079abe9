//! The UDF modules of `udfs/`, compiled to wasm by this crate's build script and embedded as
//! bytes: `EXAMPLES` (the seed's functions), `NEXMARK` (Nexmark's queries) and `HOSTILE` (misbehaving UDFs for the sandbox
//! tests). The host uses `EXAMPLES` for its demo; tests and benchmarks use both.

include!(concat!(env!("OUT_DIR"), "/modules.rs"));
