//! The compile cache: once per content hash in memory; on disk across restarts; a tampered
//! artifact is never deserialized.

use sluice::runtime::{Runtime, RuntimeConfig};
use sluice_tests::{batch, config};

fn with_cache(dir: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_owned()),
        ..config()
    })
    .unwrap()
}

/// A fresh runtime on the cache directory loads the examples and runs one of them.
fn restart_and_run(dir: &std::path::Path) {
    let rt = with_cache(dir);
    let m = rt.load("examples@1", sluice_udf_artifacts::EXAMPLES).unwrap();
    let out = rt
        .instantiate(&m, &rt.config().default_limits)
        .unwrap()
        .map("parse_visit", &batch(&["u,1,/"]))
        .unwrap();
    assert_eq!(out.records.len(), 1);
}

fn artifacts(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    v.sort();
    v
}

#[test]
fn one_compile_per_content_hash() {
    let rt = sluice_tests::runtime();
    let a = rt.load("examples@1", sluice_udf_artifacts::EXAMPLES).unwrap();
    let b = rt.load("examples@2", sluice_udf_artifacts::EXAMPLES).unwrap();
    assert_eq!(rt.compiled_modules(), 1);
    assert_eq!(a.sha256(), b.sha256());
    assert_eq!(
        (a.label(), b.label()),
        ("examples@1", "examples@2"),
        "labels stay per version"
    );
}

#[test]
fn artifacts_survive_a_restart_and_tampered_ones_are_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    {
        let rt = with_cache(dir.path());
        rt.load("examples@1", sluice_udf_artifacts::EXAMPLES).unwrap();
    }
    let files = artifacts(dir.path());
    assert_eq!(files.len(), 1, "one artifact per module");
    let written = std::fs::metadata(&files[0]).unwrap().modified().unwrap();

    // A restart loads the artifact (the file is not rewritten) and it runs.
    std::thread::sleep(std::time::Duration::from_millis(20));
    restart_and_run(dir.path());
    assert_eq!(std::fs::metadata(&files[0]).unwrap().modified().unwrap(), written);

    // Flip one byte of the artifact: its tag no longer verifies, so it is recompiled (and
    // rewritten), never deserialized.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&files[0], &bytes).unwrap();
    restart_and_run(dir.path());
    assert_ne!(
        std::fs::read(&files[0]).unwrap(),
        bytes,
        "the tampered artifact was replaced"
    );
}
