//! The README's server walkthrough works when pasted: its marked block runs as written, with
//! bash, against a real `sluice serve --demo`, from a folder laid out like the repository's root
//! (`examples/`, and the server's `sluice-data/`). Only the address is changed, to the test
//! server's.

use std::process::Command;

use sluice_tests::repo_root;

use super::harness::start_with;

/// The fenced block after the README's marker line.
fn walkthrough() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let after = readme
        .split("<!-- tests/e2e/readme.rs runs this block as written -->")
        .nth(1)
        .expect("the README marks its walkthrough");
    let block = after.split("```sh\n").nth(1).unwrap();
    block.split("\n```").next().unwrap().to_owned()
}

#[test]
fn the_readmes_server_walkthrough_works_when_pasted() {
    let s = start_with(tempfile::tempdir().unwrap(), &["--demo"]);
    let root = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo_root().join("examples"), root.path().join("examples")).unwrap();
    std::os::unix::fs::symlink(s.dir(), root.path().join("sluice-data")).unwrap();
    let script = walkthrough().replace("127.0.0.1:8080", s.base.trim_start_matches("http://"));
    let out = Command::new("bash")
        .current_dir(root.path())
        .args(["-e", "-o", "pipefail", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the walkthrough failed:\n{script}\n---\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The ingest's answer, then the output: u1 visited twice in the sample, u2 once.
    assert!(stdout.contains("\"accepted\":3"), "{stdout}");
    let output: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let counts: Vec<(String, i64)> = output
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["key"].as_str().unwrap().to_owned(), r["value"].as_i64().unwrap()))
        .collect();
    assert!(
        counts.contains(&("u1".to_owned(), 2)) && counts.contains(&("u2".to_owned(), 1)),
        "{counts:?}"
    );
}

/// Every server-ready example passes the server's dry run as the demo tenant (JSON, and YAML
/// with its content type).
#[test]
fn every_server_ready_example_passes_the_servers_dry_run() {
    let s = start_with(tempfile::tempdir().unwrap(), &["--demo"]);
    let token = std::fs::read_to_string(s.dir().join("demo-token")).unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(repo_root().join("examples/jobs/server")).unwrap() {
        let path = entry.unwrap().path();
        let content_type = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => "application/json",
            Some("yaml") => "application/yaml",
            _ => continue,
        };
        let (status, body) = super::harness::call(
            "POST",
            &s.url("/api/v1/jobs/validate"),
            Some(token.trim()),
            Some((content_type, std::fs::read(&path).unwrap())),
        );
        assert_eq!(status, 200, "{}: {body}", path.display());
        checked += 1;
    }
    assert_eq!(checked, 7);
}

/// The docs point only inside the repository: every relative link resolves to a file of it, and
/// no text names a folder outside it.
#[test]
fn the_docs_link_only_inside_the_repository() {
    let root = repo_root().canonicalize().unwrap();
    let mut files = vec![
        root.join("README.md"),
        root.join("ARCHITECTURE.md"),
        root.join("web-ui/README.md"),
    ];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    let mut links = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            !text.contains("../shared") && !text.contains("../.library"),
            "{} points outside",
            file.display()
        );
        for part in text.split("](").skip(1) {
            let target = part.split(')').next().unwrap().split('#').next().unwrap();
            if target.is_empty() || target.contains("://") {
                continue;
            }
            let resolved = file.parent().unwrap().join(target);
            let resolved = resolved
                .canonicalize()
                .unwrap_or_else(|_| panic!("{}: the link {target} leads nowhere", file.display()));
            assert!(
                resolved.starts_with(&root),
                "{}: {target} is outside the repository",
                file.display()
            );
            links += 1;
        }
    }
    assert!(links > 10, "{links} links checked");
}
