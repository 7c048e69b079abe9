//! The UDF author's commands, which need no server: `sluice udf new` (a crate to start from),
//! `sluice udf build` (to wasm, checked as the server checks uploads) and `sluice udf test` (one
//! UDF over sample records, with its outputs, refusals, log lines, time and memory).

mod build;
mod scaffold;
mod try_udf;

pub use build::build;
pub use scaffold::{Kind, new};
pub use try_udf::test;

/// Where the guest SDK of this build is (the `guest-sdk` folder next to `host/`), if it is still
/// there.
pub fn sdk_of_this_build() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    dir.join("Cargo.toml")
        .exists()
        .then(|| dir.canonicalize().unwrap_or(dir))
}
