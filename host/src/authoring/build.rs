//! `sluice udf build [DIR]`: builds a UDF crate for `wasm32-unknown-unknown` with its release
//! profile, then checks the module as the server checks an upload (validation, the ABI, the
//! exported UDFs and their kinds), and says where it is, how big, and what it exports.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::runtime::{Runtime, RuntimeConfig};

/// Builds the crate in `dir` and checks its module; a report for people.
pub fn build(dir: &Path) -> Result<String> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.exists() {
        bail!(
            "{} has no Cargo.toml: give the folder of a UDF crate (`sluice udf new NAME` makes one)",
            dir.display()
        );
    }
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot open {}", dir.display()))?;
    let manifest = dir.join("Cargo.toml");
    // In the crate's folder, so that rustup reads its rust-toolchain.toml (which names the target).
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Flags meant for the host (coverage, sanitizers) must not reach the wasm build.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET"] {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .spawn()
        .context("cannot run cargo (is Rust installed? see rustup)")?;
    let mut wasm: Vec<PathBuf> = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact" {
            for f in msg["filenames"].as_array().into_iter().flatten() {
                if let Some(f) = f.as_str().filter(|f| f.ends_with(".wasm")) {
                    wasm.push(PathBuf::from(f));
                }
            }
        }
    }
    if !child.wait()?.success() {
        bail!(
            "the build failed (see above). If the wasm target is missing: `rustup target add wasm32-unknown-unknown` \
             (the crate's rust-toolchain.toml asks rustup for it)"
        );
    }
    let Some(module) = wasm.pop() else {
        bail!("the build made no .wasm module: the crate needs `crate-type = [\"cdylib\", ...]` under [lib]");
    };
    let bytes = std::fs::read(&module).with_context(|| format!("cannot read {}", module.display()))?;
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let loaded = runtime
        .load("module", &bytes)
        .map_err(|e| anyhow::anyhow!("{} would be refused by the server: {e}", module.display()))?;
    let mut out = format!(
        "{} ({} bytes, sha256 {})\nchecked as the server checks uploads; its UDFs:",
        module.display(),
        bytes.len(),
        loaded.sha256_hex()
    );
    for u in &loaded.manifest().udfs {
        out.push_str(&format!(
            "\n  {} ({}{})",
            u.name,
            u.kind.as_str(),
            if u.has_inverse { ", with its inverse" } else { "" }
        ));
    }
    Ok(out)
}
