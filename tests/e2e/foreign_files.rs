//! A corrupt or foreign SQLite file where the server keeps its registry or its checkpoints: the
//! server does not start, says which file and why, and leaves the file exactly as it was.

use sluice_tests::sluice;

fn serve(dir: &std::path::Path) -> sluice_tests::Finished {
    sluice(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", dir.to_str().unwrap()],
        60,
    )
}

fn foreign_sqlite(path: &std::path::Path) {
    let made = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)'); c.execute('INSERT INTO invoices VALUES (1, 9.5)'); c.commit()",
            path.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(made.success());
}

#[test]
fn a_foreign_registry_is_refused_with_its_name_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry.db");
    foreign_sqlite(&registry);
    let before = std::fs::read(&registry).unwrap();
    let out = serve(dir.path());
    assert!(!out.success, "the server must not start on another program's database");
    assert!(
        out.stderr.contains("registry.db")
            && out.stderr.contains("is not a sluice registry")
            && out.stderr.contains("nothing was changed"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&registry).unwrap(), before, "not a byte changed");

    std::fs::write(&registry, b"garbage, not SQLite at all\n".repeat(200)).unwrap();
    let before = std::fs::read(&registry).unwrap();
    let out = serve(dir.path());
    assert!(!out.success);
    assert!(out.stderr.contains("is not a sluice registry"), "{}", out.stderr);
    assert_eq!(std::fs::read(&registry).unwrap(), before);
}

#[test]
fn a_corrupt_checkpoint_store_is_refused_with_its_name_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("checkpoints.db");
    std::fs::write(
        &store,
        b"SQLite format 3\0 but then nothing that holds together ".repeat(100),
    )
    .unwrap();
    let before = std::fs::read(&store).unwrap();
    let out = serve(dir.path());
    assert!(!out.success, "the server must not start on a damaged checkpoint store");
    assert!(
        out.stderr.contains("checkpoints.db") && out.stderr.contains("nothing was changed"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&store).unwrap(), before, "not a byte changed");
    foreign_sqlite(&std::fs::canonicalize(dir.path()).unwrap().join("other.db"));
    std::fs::rename(dir.path().join("other.db"), &store).unwrap();
    let before = std::fs::read(&store).unwrap();
    let out = serve(dir.path());
    assert!(!out.success);
    assert!(out.stderr.contains("is not a checkpoint store"), "{}", out.stderr);
    assert_eq!(std::fs::read(&store).unwrap(), before);
}
