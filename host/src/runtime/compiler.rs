//! Compiling a module: in this process, or in a child process (`sluice compile-module`) that is
//! killed when it passes its time limit and whose address space is capped. Cranelift cannot be
//! interrupted, so a thread that ran past its limit would go on holding a core and its memory;
//! a killed child gives both back at once, and nothing it made is kept.
//!
//! The child compiles with the same engine settings (the `Config` tunables must match for the
//! artifact to load here; the allocator and parallel compilation are not tunables) and writes
//! `OK` and the serialized artifact on stdout, or `ER` and the `LoadError` as JSON.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Module};

use super::config::CompilerMode;
use super::error::LoadError;

/// A compiled module, and its serialized artifact when the compile made one.
pub struct Compiled {
    /// The module.
    pub module: Module,
    /// The artifact bytes (child compiles make them; in-process compiles serialize on demand).
    pub artifact: Option<Vec<u8>>,
}

/// Classifies a compile error: the bytes are not valid wasm, or Cranelift failed.
pub fn compile_error(e: &wasmtime::Error) -> LoadError {
    let msg = format!("{e:#}");
    if msg.contains("failed to parse") || msg.contains("WebAssembly") {
        LoadError::Invalid(msg)
    } else {
        LoadError::Compile(msg)
    }
}

/// Compiles `bytes` as `mode` says.
pub fn compile(engine: &Engine, mode: &CompilerMode, fuel_metering: bool, bytes: &[u8]) -> Result<Compiled, LoadError> {
    match mode {
        CompilerMode::InProcess => Ok(Compiled {
            module: Module::from_binary(engine, bytes).map_err(|e| compile_error(&e))?,
            artifact: None,
        }),
        CompilerMode::ChildProcess {
            exe,
            time_ms_max,
            memory_bytes_max,
        } => {
            let artifact = in_child(exe, *time_ms_max, *memory_bytes_max, fuel_metering, bytes)?;
            // SAFETY: the artifact was made by `Engine::precompile_module` in a child process
            // running this same binary with the same engine settings, read from its stdout pipe
            // (no file another party could write); wasmtime checks its version and settings.
            let module = unsafe { Module::deserialize(engine, &artifact) }
                .map_err(|e| LoadError::CompilerDied(format!("the compiled artifact does not load: {e:#}")))?;
            Ok(Compiled {
                module,
                artifact: Some(artifact),
            })
        }
    }
}

fn in_child(
    exe: &Path,
    time_ms_max: u64,
    memory_bytes_max: u64,
    fuel: bool,
    bytes: &[u8],
) -> Result<Vec<u8>, LoadError> {
    let started = Instant::now();
    let mut cmd = Command::new(exe);
    cmd.arg("compile-module")
        .arg("--memory-bytes-max")
        .arg(memory_bytes_max.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "error");
    if fuel {
        cmd.arg("--fuel-metering");
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| LoadError::CompilerDied(format!("cannot start the compiler process: {e}")))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let errors = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stderr.by_ref().take(4096).read_to_end(&mut out);
        // Keep draining, so the child never fails on a closed pipe.
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        out
    });
    let limit = Duration::from_millis(time_ms_max);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(LoadError::CompileTimeout { limit_ms: time_ms_max });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(LoadError::CompilerDied(format!("waiting for the compiler failed: {e}")));
            }
        }
    };
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    let err = errors.join().unwrap_or_default();
    match out.split_at_checked(2) {
        Some((b"OK", artifact)) if status.success() => Ok(artifact.to_vec()),
        Some((b"ER", json)) => Err(serde_json::from_slice(json)
            .unwrap_or_else(|e| LoadError::CompilerDied(format!("unreadable answer from the compiler: {e}")))),
        _ => Err(LoadError::CompilerDied(format!(
            "the compiler process ended with {status} (over its memory limit of {memory_bytes_max} bytes, compile_memory_bytes_max?): {}",
            String::from_utf8_lossy(&err).trim()
        ))),
    }
}

/// The child's side (`sluice compile-module`): caps its own address space, reads a module on
/// stdin, compiles it with the runtime's engine settings and answers on stdout.
pub fn child_main(fuel_metering: bool, memory_bytes_max: u64) -> std::io::Result<()> {
    let cap = libc::rlimit {
        rlim_cur: memory_bytes_max as libc::rlim_t,
        rlim_max: memory_bytes_max as libc::rlim_t,
    };
    // SAFETY: setrlimit reads one rlimit struct through the valid pointer it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &cap) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes)?;
    let config = super::RuntimeConfig {
        fuel_metering,
        ..super::RuntimeConfig::default()
    };
    let mut out = std::io::stdout().lock();
    let answer = super::engine_config(&config, false)
        .and_then(|c| Engine::new(&c))
        .map_err(|e| LoadError::Compile(format!("{e:#}")))
        .and_then(|engine| engine.precompile_module(&bytes).map_err(|e| compile_error(&e)));
    match answer {
        Ok(artifact) => {
            out.write_all(b"OK")?;
            out.write_all(&artifact)?;
        }
        Err(e) => {
            out.write_all(b"ER")?;
            out.write_all(&serde_json::to_vec(&e).map_err(std::io::Error::other)?)?;
        }
    }
    out.flush()
}
