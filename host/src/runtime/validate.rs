//! Checks a module against the ABI before and after compiling it: size, magic, imports (only the
//! host's own `sluice` module), one memory, the required exports and their types, and the UDF
//! exports that make up its manifest.

use std::collections::BTreeMap;

use sluice_abi::{EXPORT_ABI_VERSION, EXPORT_INPUT, IMPORT_LOG, IMPORT_MODULE, IMPORT_PANIC, UdfKind, UdfName};
use wasmparser::{Parser, Payload, TypeRef};
use wasmtime::{ExternType, FuncType, Module, ValType};

use super::error::LoadError;
use super::manifest::{Manifest, UdfInfo};

/// Checks done on the bytes, before compiling: cheap, and they refuse WASI modules and
/// non-modules without spending a compile on them.
pub fn precheck(bytes: &[u8], module_bytes_max: usize) -> Result<(), LoadError> {
    if bytes.len() > module_bytes_max {
        return Err(LoadError::TooLarge {
            size: bytes.len(),
            limit: module_bytes_max,
        });
    }
    if Parser::is_component(bytes) {
        return Err(LoadError::Component);
    }
    if !Parser::is_core_wasm(bytes) {
        return Err(LoadError::NotWasm);
    }
    let mut memories = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| LoadError::Invalid(e.to_string()))?;
        match payload {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| LoadError::Invalid(e.to_string()))?;
                    let allowed = import.module == IMPORT_MODULE
                        && matches!(import.name, IMPORT_LOG | IMPORT_PANIC)
                        && matches!(import.ty, TypeRef::Func(_) | TypeRef::FuncExact(_));
                    if !allowed {
                        return Err(LoadError::ForbiddenImport {
                            module: import.module.to_owned(),
                            name: import.name.to_owned(),
                        });
                    }
                }
            }
            Payload::MemorySection(reader) => memories += reader.count() as usize,
            Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    if memories > 1 {
        return Err(LoadError::MemoryCount(memories));
    }
    Ok(())
}

fn sig(params: &[ValType], results: &[ValType]) -> String {
    let p: Vec<_> = params.iter().map(ToString::to_string).collect();
    let r: Vec<_> = results.iter().map(ToString::to_string).collect();
    format!("({}) -> ({})", p.join(", "), r.join(", "))
}

fn sig_of(f: &FuncType) -> String {
    let p: Vec<_> = f.params().collect();
    let r: Vec<_> = f.results().collect();
    sig(&p, &r)
}

fn has_sig(f: &FuncType, params: &[ValType], results: &[ValType]) -> bool {
    sig_of(f) == sig(params, results)
}

/// Checks done on the compiled module (its types): imports' types, the required exports, and the
/// UDF exports. Returns the manifest.
pub fn check_compiled(module: &Module) -> Result<Manifest, LoadError> {
    use ValType::{I32, I64};
    for import in module.imports() {
        let (params, results): (&[ValType], &[ValType]) = match import.name() {
            IMPORT_LOG => (&[I32, I32, I32], &[]),
            _ => (&[I32, I32], &[]),
        };
        let ok = matches!(import.ty(), ExternType::Func(f) if has_sig(&f, params, results));
        if !ok {
            let found = match import.ty() {
                ExternType::Func(f) => sig_of(&f),
                other => format!("{other:?}"),
            };
            return Err(LoadError::ImportType {
                name: import.name().to_owned(),
                found,
                expected: sig(params, results),
            });
        }
    }

    let mut memory = false;
    let mut abi_version = false;
    let mut input = false;
    let mut udfs: BTreeMap<String, (Option<UdfKind>, bool)> = BTreeMap::new();
    for export in module.exports() {
        let name = export.name();
        let ty = export.ty();
        if name == "memory" {
            memory = matches!(ty, ExternType::Memory(ref m) if !m.is_64() && !m.is_shared());
            if !memory {
                return Err(LoadError::BadExport(
                    "the export `memory` must be a 32-bit, unshared linear memory".into(),
                ));
            }
        } else if name == EXPORT_ABI_VERSION {
            abi_version = matches!(ty, ExternType::Func(ref f) if has_sig(f, &[], &[I32]));
            if !abi_version {
                return Err(LoadError::BadExport(format!(
                    "the export `{EXPORT_ABI_VERSION}` must have type () -> (i32)"
                )));
            }
        } else if name == EXPORT_INPUT {
            input = matches!(ty, ExternType::Func(ref f) if has_sig(f, &[I32], &[I32]));
            if !input {
                return Err(LoadError::BadExport(format!(
                    "the export `{EXPORT_INPUT}` must have type (i32) -> (i32)"
                )));
            }
        } else if let Some(parsed) = UdfName::parse(name) {
            let udf = parsed.map_err(LoadError::BadExport)?;
            let ok = matches!(ty, ExternType::Func(ref f) if has_sig(f, &[I32, I32], &[I64]));
            if !ok {
                return Err(LoadError::BadExport(format!(
                    "the UDF export `{name}` must be a function of type (i32, i32) -> (i64)"
                )));
            }
            let entry = udfs.entry(udf.name.to_owned()).or_default();
            if udf.kind == UdfKind::Inverse {
                entry.1 = true;
            } else if let Some(prev) = entry.0.replace(udf.kind) {
                return Err(LoadError::BadExport(format!(
                    "the module exports two UDFs named `{}` ({prev} and {}); UDF names must be unique in a module",
                    udf.name, udf.kind
                )));
            }
        }
    }
    if !memory {
        return Err(LoadError::MissingExport {
            name: "memory".into(),
            what: "the module's linear memory".into(),
        });
    }
    if !abi_version {
        return Err(LoadError::MissingExport {
            name: EXPORT_ABI_VERSION.into(),
            what: "() -> i32, the ABI version".into(),
        });
    }
    if !input {
        return Err(LoadError::MissingExport {
            name: EXPORT_INPUT.into(),
            what: "(len: i32) -> i32, the input buffer".into(),
        });
    }
    let mut manifest = Manifest::default();
    for (name, (kind, has_inverse)) in udfs {
        match kind {
            Some(kind) => {
                if has_inverse && kind != UdfKind::Reduce {
                    return Err(LoadError::BadExport(format!(
                        "`sluice:inverse:{name}` is the inverse of a {kind}; only a reduce has an inverse"
                    )));
                }
                manifest.udfs.push(UdfInfo {
                    name,
                    kind,
                    has_inverse,
                });
            }
            None => {
                return Err(LoadError::BadExport(format!(
                    "`sluice:inverse:{name}` has no reduce `sluice:reduce:{name}` to be the inverse of"
                )));
            }
        }
    }
    if manifest.udfs.is_empty() {
        return Err(LoadError::NoUdfs);
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prechecks_name_the_problem() {
        assert_eq!(precheck(b"hello", 100), Err(LoadError::NotWasm));
        assert_eq!(
            precheck(&[0; 200], 100),
            Err(LoadError::TooLarge { size: 200, limit: 100 })
        );
        let wasi = wat::parse_str(
            r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))"#,
        )
        .unwrap();
        assert_eq!(
            precheck(&wasi, 1 << 20),
            Err(LoadError::ForbiddenImport {
                module: "wasi_snapshot_preview1".into(),
                name: "fd_write".into()
            })
        );
        let mem = wat::parse_str(r#"(module (import "sluice" "memory" (memory 1)))"#).unwrap();
        assert!(matches!(
            precheck(&mem, 1 << 20),
            Err(LoadError::ForbiddenImport { .. })
        ));
        let truncated = &wasi[..wasi.len() - 3];
        assert!(matches!(precheck(truncated, 1 << 20), Err(LoadError::Invalid(_))));
    }
}
