//! The real `sluice` binary.

use std::process::Command;

use sluice_tests::sluice_bin;

#[test]
fn the_demo_runs_the_example_udfs_and_prints_per_batch_results() {
    let out = Command::new(sluice_bin())
        .args(["demo", "--batches", "2", "--records", "500"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("loaded examples@1"), "{stdout}");
    assert!(stdout.contains("split_words (flat_map)"), "{stdout}");
    assert_eq!(stdout.matches("visits per user").count(), 2, "{stdout}");
    assert!(stdout.contains("Batch 2"), "{stdout}");
}

#[test]
fn an_unknown_command_fails_with_a_message() {
    let out = Command::new(sluice_bin()).arg("frobnicate").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}
