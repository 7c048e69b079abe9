//! Modules the runtime refuses at load, each with a typed error that names the problem.

use std::time::Instant;

use sluice::runtime::{LoadError, Runtime, RuntimeConfig};
use sluice_tests::{config, runtime};

/// A minimal valid module, with `extra` spliced in and `version` as its ABI version.
fn module(version: i32, extra: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
            {extra}
            (memory (export "memory") 1)
            (func (export "sluice_abi_version") (result i32) i32.const {version})
            (func (export "sluice_input") (param i32) (result i32) i32.const 1024))"#
    ))
    .unwrap()
}

const A_MAP: &str = r#"(func (export "sluice:map:f") (param i32 i32) (result i64) i64.const 0)"#;

fn load(bytes: &[u8]) -> LoadError {
    runtime().load("m@1", bytes).expect_err("the module is refused")
}

#[test]
fn the_minimal_module_loads() {
    let m = runtime().load("m@1", &module(1, A_MAP)).unwrap();
    assert_eq!(m.manifest().describe(), "f (map)");
}

#[test]
fn not_wasm() {
    let e = load(b"#!/bin/sh\necho hi\n");
    assert_eq!(e, LoadError::NotWasm);
    assert!(e.to_string().contains("wasm32-unknown-unknown"), "{e}");
}

#[test]
fn a_component_is_not_a_core_module() {
    assert_eq!(load(b"\0asm\x0d\0\x01\0"), LoadError::Component);
}

#[test]
fn corrupt_bytes_after_a_valid_header() {
    let mut bytes = module(1, A_MAP);
    let n = bytes.len();
    bytes[n - 10..].fill(0xff);
    assert!(matches!(load(&bytes), LoadError::Invalid(_)), "{:?}", load(&bytes));
}

#[test]
fn over_the_size_limit() {
    let rt = Runtime::new(RuntimeConfig {
        module_bytes_max: 64,
        ..config()
    })
    .unwrap();
    let bytes = module(1, A_MAP);
    assert_eq!(
        rt.load("m@1", &bytes).unwrap_err(),
        LoadError::TooLarge {
            size: bytes.len(),
            limit: 64
        }
    );
}

#[test]
fn wasi_and_other_imports_are_refused_by_name() {
    let e = load(&module(
        1,
        &format!(r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) {A_MAP}"#),
    ));
    assert_eq!(
        e,
        LoadError::ForbiddenImport {
            module: "wasi_snapshot_preview1".into(),
            name: "fd_write".into()
        }
    );
    let msg = e.to_string();
    assert!(
        msg.contains("wasi_snapshot_preview1.fd_write") && msg.contains("docs/abi.md"),
        "{msg}"
    );
    let e = load(&module(
        1,
        &format!(r#"(import "sluice" "clock" (func (result i64))) {A_MAP}"#),
    ));
    assert_eq!(
        e,
        LoadError::ForbiddenImport {
            module: "sluice".into(),
            name: "clock".into()
        }
    );
}

#[test]
fn a_host_import_with_the_wrong_type() {
    let e = load(&module(
        1,
        &format!(r#"(import "sluice" "log" (func (param i32))) {A_MAP}"#),
    ));
    assert!(
        matches!(&e, LoadError::ImportType { name, .. } if name == "log"),
        "{e:?}"
    );
}

#[test]
fn more_than_one_memory() {
    let e = load(&module(1, &format!(r#"(memory 1) {A_MAP}"#)));
    assert_eq!(e, LoadError::MemoryCount(2));
}

#[test]
fn missing_exports_are_named() {
    let no_version = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) (func (export "sluice_input") (param i32) (result i32) i32.const 0) {A_MAP})"#
    ))
    .unwrap();
    assert!(matches!(load(&no_version), LoadError::MissingExport { name, .. } if name == "sluice_abi_version"));
    let no_memory = wat::parse_str(format!(
        r#"(module (func (export "sluice_abi_version") (result i32) i32.const 1)
                   (func (export "sluice_input") (param i32) (result i32) i32.const 0) {A_MAP})"#
    ))
    .unwrap();
    assert!(matches!(load(&no_memory), LoadError::MissingExport { name, .. } if name == "memory"));
    assert_eq!(load(&module(1, "")), LoadError::NoUdfs);
}

#[test]
fn another_abi_version() {
    let e = load(&module(2, A_MAP));
    assert_eq!(e, LoadError::AbiMismatch { found: 2, expected: 1 });
    assert!(e.to_string().contains("rebuild"), "{e}");
}

#[test]
fn malformed_udf_exports() {
    let wrong_type = load(&module(
        1,
        r#"(func (export "sluice:map:f") (param i32) (result i32) i32.const 0)"#,
    ));
    assert!(
        matches!(&wrong_type, LoadError::BadExport(m) if m.contains("(i32, i32) -> (i64)")),
        "{wrong_type:?}"
    );
    let unknown_kind = load(&module(
        1,
        r#"(func (export "sluice:mapp:f") (param i32 i32) (result i64) i64.const 0)"#,
    ));
    assert!(
        matches!(&unknown_kind, LoadError::BadExport(m) if m.contains("unknown UDF kind `mapp`")),
        "{unknown_kind:?}"
    );
    let lone_inverse = load(&module(
        1,
        &format!(r#"{A_MAP} (func (export "sluice:inverse:g") (param i32 i32) (result i64) i64.const 0)"#),
    ));
    assert!(
        matches!(&lone_inverse, LoadError::BadExport(m) if m.contains("no reduce")),
        "{lone_inverse:?}"
    );
    let twice = load(&module(
        1,
        &format!(r#"{A_MAP} (func (export "sluice:filter:f") (param i32 i32) (result i64) i64.const 0)"#),
    ));
    assert!(
        matches!(&twice, LoadError::BadExport(m) if m.contains("two UDFs named `f`")),
        "{twice:?}"
    );
}

#[test]
fn a_start_function_that_never_ends_is_stopped() {
    let t = Instant::now();
    let e = load(&module(
        1,
        &format!(r#"(func $forever (loop $l (br $l))) (start $forever) {A_MAP}"#),
    ));
    assert!(
        matches!(&e, LoadError::Instantiate(m) if m.contains("time limit")),
        "{e:?}"
    );
    assert!(t.elapsed().as_millis() < 2 * config().default_limits.cpu_time_ms_max as u128 + 500);
}

#[test]
fn an_initial_memory_over_the_limit() {
    // 1,000 pages = 62.5 MiB, over the tests' 32 MiB.
    let bytes = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1000)
                   (func (export "sluice_abi_version") (result i32) i32.const 1)
                   (func (export "sluice_input") (param i32) (result i32) i32.const 0) {A_MAP})"#
    ))
    .unwrap();
    let e = load(&bytes);
    assert!(
        matches!(&e, LoadError::Instantiate(m) if m.contains("memory_bytes_max")),
        "{e:?}"
    );
}
