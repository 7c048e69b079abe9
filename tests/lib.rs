//! Helpers of the end-to-end tests: runtimes with test limits, batches from lines, and the path
//! of the real `sluice` binary.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use sluice::batch::RecordBatch;
use sluice::runtime::{CallLimits, LoadedModule, Runtime, RuntimeConfig};

/// A runtime with the default settings but short call deadlines, so hostile tests end quickly.
pub fn runtime() -> Runtime {
    Runtime::new(config()).expect("the runtime starts")
}

/// The test settings: 200 ms per call, 32 MiB of memory, 1 MiB of output.
pub fn config() -> RuntimeConfig {
    RuntimeConfig {
        default_limits: CallLimits {
            cpu_time_ms_max: 200,
            memory_bytes_max: 32 << 20,
            output_bytes_max: 1 << 20,
            ..CallLimits::default()
        },
        ..RuntimeConfig::default()
    }
}

/// The example module, loaded.
pub fn examples(rt: &Runtime) -> Arc<LoadedModule> {
    rt.load("examples@1", sluice_udf_artifacts::EXAMPLES)
        .expect("the example module loads")
}

/// The hostile module, loaded.
pub fn hostile(rt: &Runtime) -> Arc<LoadedModule> {
    rt.load("hostile@1", sluice_udf_artifacts::HOSTILE)
        .expect("the hostile module loads")
}

/// A batch of unkeyed records, one per line, timestamps 0, 1, 2...
pub fn batch(lines: &[&str]) -> RecordBatch {
    let mut b = RecordBatch::new();
    for (i, l) in lines.iter().enumerate() {
        b.push(None, l.as_bytes(), i as i64);
    }
    b
}

/// The `sluice` binary of this build (built on demand if the test run did not build it).
pub fn sluice_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from <target>/<profile>/deps");
    let bin = profile_dir.join(format!("sluice{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "sluice", "--bin", "sluice"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building the sluice binary failed");
    }
    bin
}
