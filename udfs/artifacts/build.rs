//! Builds the UDF crates of `udfs/` to `wasm32-unknown-unknown` with the `wasm-udf` profile and
//! tells `src/lib.rs` where the modules are, so `cargo build`, `cargo test` and `cargo run` never
//! need a manual pre-build (the pattern of wasmtime's `crates/test-programs/artifacts/build.rs`).
//!
//! The nested cargo uses its own target directory (`<target>/wasm-udfs`): the outer build holds
//! the lock on its own one.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The crates built, and the name of the constant each becomes in `src/lib.rs`.
const CRATES: &[(&str, &str)] = &[
    ("sluice-udf-examples", "EXAMPLES"),
    ("sluice-udf-nexmark", "NEXMARK"),
    ("sluice-udf-hostile", "HOSTILE"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists");
    for dir in [
        "udfs/examples",
        "udfs/nexmark",
        "udfs/hostile",
        "guest-sdk",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = wasm_target_dir(&out_dir);

    ensure_wasm_target();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--target", "wasm32-unknown-unknown", "--profile", "wasm-udf"])
        .arg("--target-dir")
        .arg(&target_dir);
    for (krate, _) in CRATES {
        cmd.args(["-p", krate]);
    }
    if env::var_os("CARGO_NET_OFFLINE").is_some() {
        cmd.arg("--offline");
    }
    // The outer build's flags (coverage, sanitizers, clippy's wrapper) are for host code.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("could not run cargo to build the UDFs in udfs/");
    if !status.success() {
        panic!(
            "building the UDFs in udfs/ for wasm32-unknown-unknown failed (see above). If the target \
             is missing, run `rustup target add wasm32-unknown-unknown` (rust-toolchain.toml names it)."
        );
    }

    let wasm_dir = target_dir.join("wasm32-unknown-unknown/wasm-udf");
    let mut consts = String::new();
    for (krate, name) in CRATES {
        let file = wasm_dir.join(format!("{}.wasm", krate.replace('-', "_")));
        assert!(file.exists(), "the UDF build did not produce {}", file.display());
        consts.push_str(&format!(
            "/// The `{krate}` module (`udfs/`), built by this crate's build script.\n\
             pub const {name}: &[u8] = include_bytes!({:?});\n",
            file.display().to_string()
        ));
    }
    std::fs::write(out_dir.join("modules.rs"), consts).expect("OUT_DIR is writable");
}

/// Makes sure the toolchain has the wasm target's standard library: a toolchain installed
/// without it gets it through rustup (as rust-toolchain.toml asks); without rustup, the build
/// stops with one line that says what to do.
fn ensure_wasm_target() {
    const TARGET: &str = "wasm32-unknown-unknown";
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let has_target = || {
        Command::new(&rustc)
            .args(["--print", "target-libdir", "--target", TARGET])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .and_then(|dir| std::fs::read_dir(dir).ok())
            .is_some_and(|mut entries| {
                entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libcore-")))
            })
    };
    if has_target() {
        return;
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", TARGET]);
    if let Some(toolchain) = env::var_os("RUSTUP_TOOLCHAIN") {
        rustup.arg("--toolchain").arg(toolchain);
    }
    println!("cargo::warning=the {TARGET} target is missing; adding it with `rustup target add {TARGET}`");
    let added = rustup.status().is_ok_and(|s| s.success());
    if !added || !has_target() {
        println!(
            "cargo::error=the Rust toolchain has no {TARGET} target, which the example UDFs need; install it with `rustup target add {TARGET}` (rust-toolchain.toml names it)"
        );
        std::process::exit(0);
    }
}

/// `<target>/wasm-udfs`, found from `OUT_DIR` (`<target>/<profile>/build/<pkg>/out`).
fn wasm_target_dir(out_dir: &Path) -> PathBuf {
    let target = out_dir
        .ancestors()
        .find(|p| p.parent().and_then(|pp| pp.file_name()).is_some_and(|n| n == "build"))
        .and_then(|pkg| pkg.parent()) // <target>/<profile>/build
        .and_then(|build| build.parent()) // <target>/<profile>
        .and_then(|profile| profile.parent()); // <target>
    match target {
        Some(t) => t.join("wasm-udfs"),
        None => out_dir.join("wasm-udfs"),
    }
}
