//! The web console's files, embedded in the binary at build time from `web-ui/index.html` and
//! `web-ui/assets/` (see `build.rs`): the release binary alone serves the console, and no
//! front-end tool runs at build or run time.

/// One file of the console.
#[derive(Debug)]
pub struct File {
    /// Its URL path: `/` for `index.html`, `/assets/...` for the rest.
    pub path: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its `ETag` (quoted), a hash of its bytes.
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/files.rs"));
include!("types.rs");

/// The file at a URL path, if the console has one.
pub fn file(path: &str) -> Option<&'static File> {
    FILES.iter().find(|f| f.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_assets_are_embedded_with_their_types() {
        let index = file("/").expect("index.html is embedded");
        assert!(index.content_type.starts_with("text/html"));
        assert!(std::str::from_utf8(index.bytes).expect("utf-8").contains("/assets/"));
        assert!(FILES.iter().all(|f| f.path == "/" || f.path.starts_with("/assets/")));
        assert!(FILES.iter().any(|f| f.content_type.starts_with("text/javascript")));
        assert!(file("/README.md").is_none(), "only index.html and assets/ are served");
    }

    /// The console's own JavaScript unit tests (the problem locator), run by Node's test runner
    /// so that `cargo test` runs them too.
    #[test]
    fn the_javascript_unit_tests_pass() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new("node")
            .arg("--test")
            .arg(dir.join("test"))
            .output()
            .expect("node runs (the console's JavaScript tests need Node.js; Debian's `nodejs` has it)");
        assert!(
            out.status.success(),
            "node --test web-ui/test failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
