//! Logging from a UDF. In a wasm module each line goes to the host, which logs it with the UDF's
//! name and version (and, later, shows it in the console); in native tests it goes to stderr.
//!
//! ```
//! sluice_guest::info!("parsed {} fields", 3);
//! sluice_guest::log::warn("odd record");
//! ```

use sluice_abi::LogLevel;

/// Logs `msg` at `level`.
pub fn log(level: LogLevel, msg: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::rt::wasm_log(level as i32, msg);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[udf {level:?}] {msg}");
}

/// Logs at trace level.
pub fn trace(msg: &str) {
    log(LogLevel::Trace, msg);
}
/// Logs at debug level.
pub fn debug(msg: &str) {
    log(LogLevel::Debug, msg);
}
/// Logs at info level.
pub fn info(msg: &str) {
    log(LogLevel::Info, msg);
}
/// Logs at warn level.
pub fn warn(msg: &str) {
    log(LogLevel::Warn, msg);
}
/// Logs at error level.
pub fn error(msg: &str) {
    log(LogLevel::Error, msg);
}

/// Logs a formatted line at trace level.
#[macro_export]
macro_rules! trace { ($($t:tt)*) => { $crate::log::trace(&::std::format!($($t)*)) }; }
/// Logs a formatted line at debug level.
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::debug(&::std::format!($($t)*)) }; }
/// Logs a formatted line at info level.
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::info(&::std::format!($($t)*)) }; }
/// Logs a formatted line at warn level.
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::warn(&::std::format!($($t)*)) }; }
/// Logs a formatted line at error level.
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::error(&::std::format!($($t)*)) }; }

pub use sluice_abi::LogLevel as Level;
