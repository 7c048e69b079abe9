//! Export and import names, UDF kinds and log levels: the vocabulary a module and the host share.

use std::fmt;

/// Export `() -> i32`: the ABI version the module was built for.
pub const EXPORT_ABI_VERSION: &str = "sluice_abi_version";
/// Export `(len: i32) -> i32`: a pointer to a guest buffer of at least `len` bytes into which
/// the host writes the next batch. The buffer stays the guest's; it may be reused.
pub const EXPORT_INPUT: &str = "sluice_input";
/// The only module a UDF may import from.
pub const IMPORT_MODULE: &str = "sluice";
/// Import `(level: i32, ptr: i32, len: i32)`: a UTF-8 log line from the UDF.
pub const IMPORT_LOG: &str = "log";
/// Import `(ptr: i32, len: i32)`: the UTF-8 message of a panic, sent just before the module traps.
pub const IMPORT_PANIC: &str = "panic";

/// The kind of a UDF, part of its export name (`sluice:KIND:NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UdfKind {
    /// One record in, one record out.
    Map,
    /// One record in, zero or more records out.
    FlatMap,
    /// One record in, keep or drop.
    Filter,
    /// Folds groups of values: `(value, value) -> value`, associative.
    Reduce,
    /// The inverse of the reduce of the same name: `inverse(reduce(a, b), b) == a`.
    Inverse,
}

impl UdfKind {
    /// All kinds, in the order the docs list them.
    pub const ALL: [UdfKind; 5] = [
        UdfKind::Map,
        UdfKind::FlatMap,
        UdfKind::Filter,
        UdfKind::Reduce,
        UdfKind::Inverse,
    ];

    /// The kind's word in export names and job specs.
    pub fn as_str(self) -> &'static str {
        match self {
            UdfKind::Map => "map",
            UdfKind::FlatMap => "flat_map",
            UdfKind::Filter => "filter",
            UdfKind::Reduce => "reduce",
            UdfKind::Inverse => "inverse",
        }
    }

    /// Parses the kind's word.
    pub fn parse(s: &str) -> Option<UdfKind> {
        UdfKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for UdfKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed UDF export name `sluice:KIND:NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdfName<'a> {
    /// The UDF's kind.
    pub kind: UdfKind,
    /// The UDF's name: an identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub name: &'a str,
}

impl<'a> UdfName<'a> {
    /// Parses an export name. `None` if it does not start with `sluice:`; `Some(Err)` with the
    /// reason if it does but is not a well-formed UDF export name.
    pub fn parse(export: &'a str) -> Option<Result<UdfName<'a>, String>> {
        let rest = export.strip_prefix("sluice:")?;
        let Some((kind, name)) = rest.split_once(':') else {
            return Some(Err(format!(
                "export `{export}` starts with `sluice:` but is not `sluice:KIND:NAME`"
            )));
        };
        let Some(kind) = UdfKind::parse(kind) else {
            return Some(Err(format!(
                "export `{export}` names the unknown UDF kind `{kind}` (known: map, flat_map, filter, reduce, inverse)"
            )));
        };
        let ident = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident {
            return Some(Err(format!(
                "export `{export}`: the UDF name `{name}` is not an identifier ([A-Za-z_][A-Za-z0-9_]*)"
            )));
        }
        Some(Ok(UdfName { kind, name }))
    }
}

/// The export name of a UDF: `sluice:KIND:NAME`.
pub fn udf_export_name(kind: UdfKind, name: &str) -> String {
    format!("sluice:{}:{name}", kind.as_str())
}

/// Levels of the `log` import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
pub enum LogLevel {
    /// Very detailed.
    Trace = 0,
    /// For the UDF author while debugging.
    Debug = 1,
    /// Normal operation.
    Info = 2,
    /// Something looks wrong.
    Warn = 3,
    /// Something failed.
    Error = 4,
}

impl LogLevel {
    /// The level of an `i32` from the `log` import; out-of-range values clamp.
    pub fn from_i32(v: i32) -> LogLevel {
        match v {
            i32::MIN..=0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            _ => LogLevel::Error,
        }
    }

    /// Its name in lower case (`info`), as the host shows it.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_names_parse() {
        assert_eq!(UdfName::parse("memory"), None);
        assert_eq!(
            UdfName::parse("sluice:flat_map:split_words"),
            Some(Ok(UdfName {
                kind: UdfKind::FlatMap,
                name: "split_words"
            }))
        );
        assert!(UdfName::parse("sluice:mapp:x").unwrap().is_err());
        assert!(UdfName::parse("sluice:map:").unwrap().is_err());
        assert!(UdfName::parse("sluice:map:1x").unwrap().is_err());
        assert!(UdfName::parse("sluice:map").unwrap().is_err());
        for k in UdfKind::ALL {
            let name = udf_export_name(k, "f_1");
            assert_eq!(UdfName::parse(&name), Some(Ok(UdfName { kind: k, name: "f_1" })));
        }
    }
}
