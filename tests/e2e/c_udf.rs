//! A UDF in C, built with Debian's clang for wasm32 from `udfs/c/is_error.c` (written against
//! docs/abi.md alone), runs the seed's scenario 2 exactly as the Rust SDK's `is_error` does.

use std::process::Command;

use serde_json::json;
use sluice_tests::repo_root;

use super::authoring::sluice_in;

fn build_c_udf(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("is_error.wasm");
    let built = Command::new("clang")
        .args(["--target=wasm32-unknown-unknown", "-O2", "-nostdlib", "-ffreestanding"])
        .args(["-Wl,--no-entry", "-Wl,--strip-all", "-o"])
        .arg(&out)
        .arg(repo_root().join("udfs/c/is_error.c"))
        .output()
        .expect("clang runs (install Debian's clang and lld: .ci/run does)");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    out
}

#[test]
fn a_c_udf_filters_like_the_rust_one() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = build_c_udf(dir.path());
    let logs = repo_root().join("examples/data/logs.jsonl");
    let spec = |filter_udf: &str| {
        json!({
            "name": "ERROR lines per minute",
            "batch_interval": "1s",
            "modules": { "examples": "builtin:examples", "c": wasm.to_str().unwrap() },
            "source": { "batches": { "path": logs.to_str().unwrap() } },
            "stages": [
                { "filter": { "udf": filter_udf, "function": "is_error" } },
                { "map": { "udf": "examples@1", "function": "minute_bucket", "value": "i64" } },
                { "reduce_by_key": { "builtin": "sum" } }
            ],
            "sink": { "jsonl": {} }
        })
    };
    let mut outputs = Vec::new();
    for (file, udf) in [("c.json", "c@1"), ("rust.json", "examples@1")] {
        std::fs::write(dir.path().join(file), spec(udf).to_string()).unwrap();
        let run = sluice_in(dir.path(), &["run", file], &[]);
        assert!(run.success, "{}", run.stderr);
        outputs.push(sluice_tests::jsonl_records(&run.stdout));
    }
    assert!(!outputs[0].is_empty());
    assert_eq!(outputs[0], outputs[1], "the C filter gives the Rust filter's answer");

    // Its refusals and log line, through `sluice udf test`.
    std::fs::write(
        dir.path().join("lines.txt"),
        "1700000000|ERROR|disk full\n1700000030|INFO|ok\nno fields\n",
    )
    .unwrap();
    let tried = sluice_in(
        dir.path(),
        &[
            "udf",
            "test",
            "is_error.wasm",
            "--function",
            "is_error",
            "--input",
            "lines.txt",
        ],
        &[],
    );
    assert!(tried.success, "{}", tried.stderr);
    assert!(
        tried.stdout.contains("out (1):") && tried.stdout.contains("disk full"),
        "{}",
        tried.stdout
    );
    assert!(
        tried.stdout.contains("record 2: expected timestamp|level|message"),
        "{}",
        tried.stdout
    );
    assert!(
        tried.stdout.contains("[warn] a line without two '|' was refused"),
        "{}",
        tried.stdout
    );
}
