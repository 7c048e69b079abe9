//! `LoadedModule`: a validated, compiled module with its manifest, ready to instantiate. It is
//! shared (`Arc`) by every instance and every job that uses the module version.

use std::fmt;

use wasmtime::{Engine, InstancePre, Module};

use super::instance::HostState;
use super::manifest::Manifest;

/// A module that passed validation, compiled once and ready to instantiate.
pub struct LoadedModule {
    label: String,
    sha256: [u8; 32],
    module: Module,
    pre: InstancePre<HostState>,
    manifest: Manifest,
}

impl fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedModule")
            .field("label", &self.label)
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

impl LoadedModule {
    pub(super) fn new(
        label: String,
        sha256: [u8; 32],
        module: Module,
        pre: InstancePre<HostState>,
        manifest: Manifest,
    ) -> LoadedModule {
        LoadedModule {
            label,
            sha256,
            module,
            pre,
            manifest,
        }
    }

    /// The name errors and logs use (`name@version`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// SHA-256 of the module's bytes.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// SHA-256 of the module's bytes, in hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// The module's UDFs.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub(super) fn engine(&self) -> &Engine {
        self.module.engine()
    }

    pub(super) fn pre(&self) -> &InstancePre<HostState> {
        &self.pre
    }
}
