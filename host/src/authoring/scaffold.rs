//! `sluice udf new NAME`: a UDF crate to start from. It is its own workspace (an empty
//! `[workspace]` table), so it builds the same wherever it is put, inside another project's
//! tree too; it depends on the guest SDK by path, has the release profile wasm modules want
//! (small, `panic = "abort"`), pins the toolchain with the wasm target, and comes with one
//! example function, a native unit test and a sample input.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The kind of the example function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// One record in, one out.
    Map,
    /// Keeps or drops each record.
    Filter,
    /// One record in, any number out.
    FlatMap,
    /// Folds two values of a key into one.
    Reduce,
}

const TOOLCHAIN: &str = include_str!("../../../rust-toolchain.toml");

fn cargo_toml(name: &str, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the .wasm module; rlib: the native unit tests.
crate-type = ["cdylib", "rlib"]

[dependencies]
sluice-guest = {{ path = {sdk:?} }}

# Its own workspace: this crate builds the same inside any other project's tree.
[workspace]

# What a UDF module wants: small and fast, and a panic aborts (the SDK reports its message to
# the host first). `sluice udf build` builds with this profile for wasm32-unknown-unknown.
[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
debug = false
strip = "debuginfo"
"#,
        sdk = sdk.display().to_string()
    )
}

fn lib_rs(function: &str, kind: Kind) -> String {
    let (code, test) = match kind {
        Kind::Map => (
            format!(
                r#"/// `user_id,timestamp,page` -> key `user_id`, value 1 (a count, ready for a sum by key).
#[map]
pub fn {function}(record: Record) -> Result<Record, UdfError> {{
    let line = record.value_text()?;
    let Some((user, _rest)) = line.split_once(',') else {{
        sluice_guest::warn!("no comma in {{line:?}}");
        return Err(UdfError::malformed(line, "expected user_id,timestamp,page"));
    }};
    Ok(Record::keyed(user, 1i64).with_timestamp(record.timestamp_ms))
}}"#
            ),
            format!(
                r#"    #[test]
    fn a_visit_becomes_a_count_for_its_user() {{
        let out = {function}(Record::new("u1,1700000000,/home")).unwrap();
        assert_eq!(out.key_str().unwrap(), Some("u1"));
        assert!({function}(Record::new("no comma here")).is_err());
    }}"#
            ),
        ),
        Kind::Filter => (
            format!(
                r#"/// Keeps `timestamp|level|message` lines whose level is `ERROR`.
#[filter]
pub fn {function}(record: &Record) -> Result<bool, UdfError> {{
    let line = record.value_text()?;
    let mut fields = line.split('|');
    match (fields.next(), fields.next()) {{
        (Some(_), Some(level)) => Ok(level == "ERROR"),
        _ => Err(UdfError::malformed(line, "expected timestamp|level|message")),
    }}
}}"#
            ),
            format!(
                r#"    #[test]
    fn only_error_lines_pass() {{
        assert!({function}(&Record::new("1700000000|ERROR|disk full")).unwrap());
        assert!(!{function}(&Record::new("1700000000|INFO|ok")).unwrap());
        assert!({function}(&Record::new("no fields")).is_err());
    }}"#
            ),
        ),
        Kind::FlatMap => (
            format!(
                r#"/// Splits a line into words, each as `(word, 1)`: ready for a sum by key (word count).
#[flat_map]
pub fn {function}(record: Record) -> Result<Vec<Record>, UdfError> {{
    let ts = record.timestamp_ms;
    let line = record.value_text()?;
    Ok(line.split_whitespace().map(|w| Record::keyed(w, 1i64).with_timestamp(ts)).collect())
}}"#
            ),
            format!(
                r#"    #[test]
    fn a_line_becomes_its_words() {{
        let out = {function}(Record::new("to be or not to be")).unwrap();
        assert_eq!(out.len(), 6);
        assert_eq!(out[0].key_str().unwrap(), Some("to"));
    }}"#
            ),
        ),
        Kind::Reduce => (
            format!(
                r#"/// Adds two counts of a key (use it as `reduce_by_key`'s or a window's reducer).
#[reduce]
pub fn {function}(a: i64, b: i64) -> i64 {{
    a.saturating_add(b)
}}"#
            ),
            format!(
                r#"    #[test]
    fn counts_add_up() {{
        assert_eq!({function}(2, 3), 5);
        assert_eq!({function}(i64::MAX, 1), i64::MAX);
    }}"#
            ),
        ),
    };
    let imports = match kind {
        Kind::Map => "use sluice_guest::{Record, UdfError, map};",
        Kind::Filter => "use sluice_guest::{Record, UdfError, filter};",
        Kind::FlatMap => "use sluice_guest::{Record, UdfError, flat_map};",
        Kind::Reduce => "use sluice_guest::reduce;",
    };
    let test_imports = if kind == Kind::Reduce {
        ""
    } else {
        "    use sluice_guest::Record;\n\n"
    };
    format!(
        "//! A Sluice UDF. Build it with `sluice udf build`, try it with `sluice udf test`, upload the\n\
         //! module with `sluice udf upload` (see the UDF guide).\n\n{imports}\n\n{code}\n\n\
         #[cfg(test)]\nmod tests {{\n    use super::*;\n{test_imports}{test}\n}}\n"
    )
}

fn sample(kind: Kind) -> &'static str {
    match kind {
        Kind::Map => concat!(
            r#"{"value": "u1,1700000000,/home"}"#,
            "\n",
            r#"{"value": "u2,1700000001,/cart"}"#,
            "\n",
            r#"{"value": "not a visit"}"#,
            "\n",
        ),
        Kind::Filter => concat!(
            r#"{"value": "1700000000|ERROR|disk full"}"#,
            "\n",
            r#"{"value": "1700000030|INFO|ok"}"#,
            "\n",
            r#"{"value": "no fields"}"#,
            "\n",
        ),
        Kind::FlatMap => concat!(
            r#"{"value": "to be or not to be"}"#,
            "\n",
            r#"{"value": "that is the question"}"#,
            "\n"
        ),
        Kind::Reduce => concat!(
            r#"{"key": "u1", "value": 1}"#,
            "\n",
            r#"{"key": "u1", "value": 2}"#,
            "\n",
            r#"{"key": "u2", "value": 5}"#,
            "\n",
        ),
    }
}

/// Writes the crate for UDF `name` into `dir` (default `./NAME`); what it made and what to do
/// next.
pub fn new(name: &str, kind: Kind, dir: Option<&Path>, sdk: Option<&Path>) -> Result<String> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        bail!("{name:?} is not a UDF crate name: use 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter");
    }
    let dir: PathBuf = dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!(
            "{} exists and is not empty; choose another name or --dir",
            dir.display()
        );
    }
    let sdk = match sdk {
        Some(s) => s.canonicalize().with_context(|| format!("the guest SDK {} is not there", s.display()))?,
        None => super::sdk_of_this_build().context(
            "this sluice was built from a checkout that is gone, so it cannot point the new crate at the guest SDK; give --sdk PATH (the guest-sdk folder of a Sluice checkout)",
        )?,
    };
    if !sdk.join("Cargo.toml").exists() {
        bail!(
            "{} has no Cargo.toml: --sdk takes the guest-sdk folder of a Sluice checkout",
            sdk.display()
        );
    }
    let function = name.replace('-', "_");
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = [
        ("Cargo.toml", cargo_toml(name, &sdk)),
        ("rust-toolchain.toml", TOOLCHAIN.to_owned()),
        ("src/lib.rs", lib_rs(&function, kind)),
        ("sample.jsonl", sample(kind).to_owned()),
        (".gitignore", "/target\n".to_owned()),
    ];
    for (file, text) in &files {
        std::fs::write(dir.join(file), text).with_context(|| format!("cannot write {}", dir.join(file).display()))?;
    }
    let kind_name = match kind {
        Kind::Map => "map",
        Kind::Filter => "filter",
        Kind::FlatMap => "flat_map",
        Kind::Reduce => "reduce",
    };
    let d = dir.display();
    let test_step = format!(
        "  sluice udf test {d}/target/wasm32-unknown-unknown/release/{function}.wasm --function {function} --input {d}/sample.jsonl"
    );
    Ok(format!(
        "created {d}: a {kind_name} UDF `{function}` (src/lib.rs), its unit test, sample.jsonl\n\
         (its own workspace; the guest SDK from {sdk})\n\nnext:\n  cd {d} && cargo test            # the unit test, natively\n  \
         sluice udf build {d}             # the .wasm, checked as the server checks it\n{test_step}\n  \
         sluice udf upload {name} {d}/target/wasm32-unknown-unknown/release/{function}.wasm",
        sdk = sdk.display()
    ))
}
