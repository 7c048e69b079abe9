//! Embeds the console: `index.html` and every file under `assets/`, each with its content type
//! and an ETag (a hash of its bytes), as a table the server looks paths up in. No tool runs
//! here: the files are served as they are written.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// FNV-1a, 64 bits: enough to tell versions of a file apart for caching.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

include!("src/types.rs");

fn content_type(path: &Path) -> &'static str {
    content_type_of(path.extension().and_then(|e| e.to_str()).unwrap_or(""))
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("index.html")];
    walk(&root.join("assets"), &mut files);
    println!("cargo:rerun-if-changed={}", root.join("index.html").display());
    println!("cargo:rerun-if-changed={}", root.join("assets").display());
    let mut code = String::from(
        "/// Every file of the console: (URL path, bytes, content type, ETag).\npub static FILES: &[File] = &[\n",
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        let rel = f
            .strip_prefix(&root)
            .expect("under the crate")
            .to_string_lossy()
            .replace('\\', "/");
        let url = if rel == "index.html" {
            "/".to_owned()
        } else {
            format!("/{rel}")
        };
        writeln!(
            code,
            "    File {{ path: {url:?}, bytes: include_bytes!({:?}), content_type: {:?}, etag: \"\\\"{:016x}\\\"\" }},",
            f.display().to_string(),
            content_type(f),
            fnv(&bytes)
        )
        .expect("writing to a string");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("files.rs");
    std::fs::write(&out, code).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
