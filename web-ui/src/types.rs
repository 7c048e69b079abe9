/// The `Content-Type` of a console file by its extension (shared by `build.rs` and the server's
/// development mode, which reads the files from disk).
pub fn content_type_of(extension: &str) -> &'static str {
    match extension {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "wasm" => "application/wasm",
        "yaml" | "yml" => "application/yaml",
        _ => "text/plain; charset=utf-8",
    }
}
