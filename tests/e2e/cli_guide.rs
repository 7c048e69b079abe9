//! The CLI guides: every argument has help, no command means `serve --demo`, errors name the
//! server, the token and where tokens come from, the admin token is found next to the data
//! directory, output can be followed, a closed stdout ends quietly, and a socket that cannot be
//! reached is said once, then at back-off.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use sluice_tests::{repo_root, sluice_bin};

use super::authoring::sluice_in;
use super::harness::{create_and_start, new_tenant_id, start};

fn help(args: &[&str]) -> String {
    let out = Command::new(sluice_bin()).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{args:?} --help");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommands listed in a help text's `Commands:` section.
fn subcommands(help: &str) -> Vec<String> {
    help.split("Commands:")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .skip(1)
                .take_while(|l| l.starts_with("  "))
                .filter_map(|l| l.split_whitespace().next())
                .filter(|c| *c != "help")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_command_and_argument_has_help_and_no_command_means_serve_demo() {
    let top = help(&[]);
    assert!(top.contains("With no command") && top.contains("serve --demo"), "{top}");
    let mut checked = 0;
    for cmd in subcommands(&top) {
        let h = help(&[&cmd]);
        let mut paths = vec![vec![cmd.clone()]];
        paths.extend(subcommands(&h).into_iter().map(|sub| vec![cmd.clone(), sub]));
        for path in paths {
            let args: Vec<&str> = path.iter().map(String::as_str).collect();
            let text = help(&args);
            // Each positional argument has a description: after its name, or (long help) on
            // the next, further indented line.
            if let Some(section) = text.split("Arguments:").nth(1) {
                let lines: Vec<&str> = section
                    .lines()
                    .skip(1)
                    .take_while(|l| l.is_empty() || l.starts_with("  "))
                    .collect();
                for (i, line) in lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.trim_start().starts_with('<') || l.trim_start().starts_with('['))
                {
                    let inline = line.split_whitespace().count() > 1;
                    let below = lines
                        .get(i + 1)
                        .is_some_and(|n| n.starts_with("          ") && !n.trim().is_empty());
                    assert!(
                        inline || below,
                        "`sluice {}`: argument without help: {line:?}",
                        path.join(" ")
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "{checked} commands checked");
    let swap = help(&["job", "swap"]);
    assert!(
        swap.contains("0-based index") && swap.contains("name of the function"),
        "{swap}"
    );
}

#[test]
fn client_errors_name_the_server_the_token_and_where_tokens_come_from() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there (no scheme given: it is taken as http).
    let port = sluice_tests::free_port();
    let addr = format!("127.0.0.1:{port}");
    let down = sluice_in(dir.path(), &["job", "list", "--server", &addr, "--token", "sl_x"], &[]);
    assert!(!down.success);
    assert!(
        down.stderr
            .contains(&format!("cannot reach the server at http://{addr}"))
            && down.stderr.contains("sluice serve"),
        "{}",
        down.stderr
    );
    // No token anywhere: say where tokens come from.
    let none = sluice_in(
        dir.path(),
        &["job", "list", "--server", &addr],
        &[("SLUICE_DATA_DIR", "/nonexistent")],
    );
    assert!(
        !none.success && none.stderr.contains("--token-file") && none.stderr.contains("admin-token"),
        "{}",
        none.stderr
    );

    let s = start();
    let bad = sluice_in(
        dir.path(),
        &["job", "list", "--server", &s.base, "--token", "sl_bogus_token"],
        &[],
    );
    assert!(!bad.success);
    assert!(
        bad.stderr.contains("refused the token sl_bog")
            && bad.stderr.contains("--token")
            && bad.stderr.contains("admin-token"),
        "{}",
        bad.stderr
    );
    // Next to the server's data directory, the admin token is found, and the CLI says so.
    let data_dir = s.dir().to_str().unwrap().to_owned();
    let made = sluice_in(
        dir.path(),
        &["tenant", "create", "zed", "--server", &s.base],
        &[("SLUICE_DATA_DIR", data_dir.as_str())],
    );
    assert!(made.success, "{}", made.stderr);
    assert!(made.stderr.contains("using the admin token"), "{}", made.stderr);
    assert!(made.stdout.contains("created tenant zed"), "{}", made.stdout);
}

#[test]
fn output_can_be_followed_and_a_closed_stdout_ends_quietly() {
    let s = start();
    let (_, token) = new_tenant_id(&s, "fol");
    let id = create_and_start(
        &s,
        &token,
        &json!({
            "name": "words",
            "batch_interval": "100ms",
            "source": { "generator": { "format": "words", "rate_per_s": 2000 } },
            "stages": [ { "key_by": { "field": 0 } }, { "set_value": 1 }, { "reduce_by_key": { "builtin": "sum" } } ],
            "sink": { "print": {} }
        }),
    );
    super::harness::eventually(Duration::from_secs(20), || {
        let (_, out) = super::harness::call("GET", &s.url(&format!("/api/v1/jobs/{id}/output")), Some(&token), None);
        (out.as_array()?.len() > 2).then_some(())
    })
    .expect("some output");
    let cmd = format!(
        "set -o pipefail; {} job output {id} --follow --last 2 --server {} --token {token} | head -n 12",
        sluice_bin().display(),
        s.base
    );
    let out = Command::new("bash")
        .args(["-c", &cmd])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stdout}\n{stderr}", out.status);
    assert_eq!(stdout.lines().count(), 12, "{stdout}");
    assert!(
        stdout.contains("older records kept by the server are skipped"),
        "{stdout}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // `sluice run ... | head`: ends with status 0, no panic, no error.
    let cmd = format!(
        "set -o pipefail; {} run {} | head -n 3",
        sluice_bin().display(),
        repo_root().join("examples/jobs/visits.json").display()
    );
    let out = Command::new("bash")
        .args(["-c", &cmd])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked") && !stderr.contains("error"), "{stderr}");
}

#[test]
fn a_socket_that_cannot_be_reached_is_said_once_then_at_back_off() {
    let dir = tempfile::tempdir().unwrap();
    let port = sluice_tests::free_port();
    let spec = json!({
        "name": "nobody listens",
        "batch_interval": "1s",
        "source": { "socket": { "host": "127.0.0.1", "port": port } },
        "sink": { "print": {} }
    });
    std::fs::write(dir.path().join("job.json"), spec.to_string()).unwrap();
    let mut child = sluice_tests::spawn_run(dir.path(), "job.json");
    // About 20 connects in 10 s (back-off from 100 ms to 2 s).
    std::thread::sleep(Duration::from_secs(10));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warns: Vec<&str> = stderr.lines().filter(|l| l.contains("cannot connect")).collect();
    assert!(!warns.is_empty(), "said at warn level: {stderr}");
    assert!(
        warns[0].contains(&format!("127.0.0.1:{port}")) && warns[0].contains("WARN"),
        "{}",
        warns[0]
    );
    assert!(
        warns.len() <= 4,
        "once, then at back-off (1st, 2nd, 4th, 8th try): {warns:#?}"
    );
}

#[test]
fn local_runs_keep_compiled_modules_between_runs() {
    let cache = tempfile::tempdir().unwrap();
    let job = repo_root().join("examples/jobs/visits.json");
    let job = job.to_str().unwrap();
    let dir = cache.path().to_str().unwrap();
    let first = sluice_in(
        cache.path(),
        &["run", job, "--batches", "1"],
        &[("SLUICE_CACHE_DIR", dir)],
    );
    assert!(first.success, "{}", first.stderr);
    let artifacts = || -> Vec<String> {
        std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cwasm"))
            .collect()
    };
    assert_eq!(artifacts().len(), 1, "the example module's compiled artifact is kept");
    // The second run loads it (and reports its first batch as the first did).
    let second = sluice_in(
        cache.path(),
        &["run", job, "--batches", "1"],
        &[("SLUICE_CACHE_DIR", dir), ("RUST_LOG", "sluice=debug")],
    );
    assert!(
        second.success && second.stderr.contains("first batch (1) done"),
        "{}",
        second.stderr
    );
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(artifacts().len(), 1);
    // An empty SLUICE_CACHE_DIR keeps nothing on disk.
    let off = tempfile::tempdir().unwrap();
    let third = sluice_in(off.path(), &["run", job, "--batches", "1"], &[("SLUICE_CACHE_DIR", "")]);
    assert!(third.success);
    assert_eq!(std::fs::read_dir(off.path()).unwrap().count(), 0);
}

/// A toolchain without the wasm target, and no rustup to add it: the build of the example UDFs
/// stops with one line that says what to do, and no backtrace.
#[test]
fn a_toolchain_without_the_wasm_target_stops_the_build_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let sysroot = Command::new("rustc")
        .current_dir(repo_root())
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    let real = format!("{}/bin/rustc", String::from_utf8_lossy(&sysroot.stdout).trim());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    // A rustc whose wasm target has no standard library.
    let fake = dir.path().join("rustc");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = target-libdir ] && {{ echo {}; exit 0; }}; done\nexec {real} \"$@\"\n",
            empty.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .args(["build", "-p", "sluice-udf-artifacts"])
        .env("PATH", "/usr/bin:/bin") // no rustup
        .env("RUSTC", &fake)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error:")).collect();
    assert!(
        errors
            .iter()
            .any(|l| l.contains("has no wasm32-unknown-unknown target") && l.contains("rustup target add")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}
