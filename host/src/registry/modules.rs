//! A tenant's UDF module versions (1, 2, ... per name), with their bytes, manifest and the size
//! of their compiled artifact. A version a job pins cannot be deleted.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use super::{Registry, RegistryError, check_name, now_ms};

/// One version of a tenant's UDF module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleVersion {
    /// The module's name (per tenant).
    pub name: String,
    /// 1, 2, ... per name.
    pub version: i64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// Size of the `.wasm`.
    pub size_bytes: i64,
    /// The manifest as JSON (`[{"name", "kind", "has_inverse"}]`).
    pub manifest_json: String,
    /// When it was uploaded (ms since the epoch).
    pub created_ms: i64,
    /// Size of its compiled artifact (what the compile cache holds for it).
    pub artifact_bytes: i64,
    /// From `add_module_version`: the bytes were already this version, and nothing was stored.
    pub already_stored: bool,
}

/// Which version of a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionRef {
    /// This one.
    Exact(i64),
    /// The newest.
    Latest,
}

/// The quotas an upload is checked against, in the insert's transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModuleQuota {
    /// Bytes of `.wasm` (all versions) the tenant may store.
    pub module_bytes_max: i64,
    /// Bytes of compiled artifacts of its versions the compile cache may hold.
    pub compiled_bytes_max: i64,
}

const COLUMNS: &str = "name, version, sha256, size_bytes, manifest, created_ms, artifact_bytes";

/// A module version from `SELECT {COLUMNS}`.
fn module_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ModuleVersion> {
    Ok(ModuleVersion {
        name: r.get(0)?,
        version: r.get(1)?,
        sha256: r.get(2)?,
        size_bytes: r.get(3)?,
        manifest_json: r.get(4)?,
        created_ms: r.get(5)?,
        artifact_bytes: r.get(6)?,
        already_stored: false,
    })
}

impl Registry {
    /// Stores a new version of a tenant's module (the next number for that name) and returns
    /// it, unless the tenant's stored bytes would pass `quota` (checked in the same transaction,
    /// so concurrent uploads cannot pass it together). Bytes a version of that name already has
    /// give that version back (`already_stored`), also when two uploads of them race.
    pub fn add_module_version(
        &self,
        tenant_id: i64,
        name: &str,
        wasm: &[u8],
        manifest_json: &str,
        artifact_bytes: i64,
        quota: ModuleQuota,
    ) -> Result<ModuleVersion, RegistryError> {
        check_name("module", name)?;
        let sha256 = hex::encode(Sha256::digest(wasm));
        let created_ms = now_ms();
        let size = wasm.len() as i64;
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let same = tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM udf_modules WHERE tenant_id = ?1 AND name = ?2 AND sha256 = ?3"),
                params![tenant_id, name, sha256],
                module_row,
            )
            .optional()?;
        if let Some(same) = same {
            return Ok(ModuleVersion {
                already_stored: true,
                ..same
            });
        }
        let (used, compiled): (i64, i64) = tx.query_row(
            "SELECT COALESCE(SUM(size_bytes), 0), COALESCE(SUM(artifact_bytes), 0) FROM udf_modules WHERE tenant_id = ?1",
            params![tenant_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if used + size > quota.module_bytes_max {
            return Err(RegistryError::Quota {
                quota: "module_bytes_max",
                detail: format!(
                    "the tenant stores {used} bytes of modules, this one has {size}, the quota is {} (delete old versions)",
                    quota.module_bytes_max
                ),
            });
        }
        if compiled + artifact_bytes > quota.compiled_bytes_max {
            return Err(RegistryError::Quota {
                quota: "compiled_bytes_max",
                detail: format!(
                    "the tenant's modules compile to {compiled} bytes, this one to {artifact_bytes}, the quota is {} (delete old versions)",
                    quota.compiled_bytes_max
                ),
            });
        }
        let version: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM udf_modules WHERE tenant_id = ?1 AND name = ?2",
            params![tenant_id, name],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO udf_modules (tenant_id, name, version, sha256, size_bytes, manifest, wasm, created_ms, artifact_bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![tenant_id, name, version, sha256, size, manifest_json, wasm, created_ms, artifact_bytes],
        )?;
        tx.commit()?;
        Ok(ModuleVersion {
            name: name.to_owned(),
            version,
            sha256,
            size_bytes: size,
            manifest_json: manifest_json.to_owned(),
            created_ms,
            artifact_bytes,
            already_stored: false,
        })
    }

    /// A version of a tenant's module with its bytes, if it exists (for this tenant).
    pub fn module(
        &self,
        tenant_id: i64,
        name: &str,
        version: VersionRef,
    ) -> Result<Option<(ModuleVersion, Vec<u8>)>, RegistryError> {
        let conn = self.reader();
        let row = |r: &rusqlite::Row<'_>| Ok((module_row(r)?, r.get::<_, Vec<u8>>(7)?));
        Ok(match version {
            VersionRef::Exact(v) => conn
                .query_row(
                    &format!("SELECT {COLUMNS}, wasm FROM udf_modules WHERE tenant_id = ?1 AND name = ?2 AND version = ?3"),
                    params![tenant_id, name, v],
                    row,
                )
                .optional()?,
            VersionRef::Latest => conn
                .query_row(
                    &format!("SELECT {COLUMNS}, wasm FROM udf_modules WHERE tenant_id = ?1 AND name = ?2 ORDER BY version DESC LIMIT 1"),
                    params![tenant_id, name],
                    row,
                )
                .optional()?,
        })
    }

    /// A tenant's module versions (without their bytes), by name and version.
    pub fn list_modules(&self, tenant_id: i64) -> Result<Vec<ModuleVersion>, RegistryError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM udf_modules WHERE tenant_id = ?1 ORDER BY name, version"
        ))?;
        let rows = stmt.query_map(params![tenant_id], module_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// What versions of module `name` a tenant has, for messages: "`x` has versions 1, 2", or
    /// which modules it has instead.
    pub fn versions_of(&self, tenant_id: i64, name: &str) -> Result<String, RegistryError> {
        let all = self.list_modules(tenant_id)?;
        let versions: Vec<String> = all
            .iter()
            .filter(|m| m.name == name)
            .map(|m| m.version.to_string())
            .collect();
        if !versions.is_empty() {
            return Ok(format!(
                "`{name}` has versions {} (or say `{name}@latest`)",
                versions.join(", ")
            ));
        }
        let mut names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
        names.dedup();
        Ok(if names.is_empty() {
            format!("this tenant has no modules yet; upload one with POST /api/v1/udfs/{name}")
        } else {
            format!("this tenant has no module `{name}`; its modules: {}", names.join(", "))
        })
    }

    /// The version of module `name` whose bytes have this SHA-256 (hex), if one has.
    pub fn version_with_sha256(
        &self,
        tenant_id: i64,
        name: &str,
        sha256: &str,
    ) -> Result<Option<ModuleVersion>, RegistryError> {
        Ok(self
            .list_modules(tenant_id)?
            .into_iter()
            .find(|m| m.name == name && m.sha256 == sha256))
    }

    /// Deletes a version of a tenant's module and returns its SHA-256 (hex); `None` if it did
    /// not exist (for this tenant). Refused while a job pins it.
    pub fn delete_module_version(
        &self,
        tenant_id: i64,
        name: &str,
        version: i64,
    ) -> Result<Option<String>, RegistryError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let user: Option<(i64, String)> = tx
            .query_row(
                "SELECT j.id, j.name FROM jobs j JOIN job_udfs u ON u.job_id = j.id
                 WHERE j.tenant_id = ?1 AND u.module = ?2 AND u.version = ?3 ORDER BY j.id LIMIT 1",
                params![tenant_id, name, version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((job_id, job_name)) = user {
            return Err(RegistryError::InUse {
                module: name.to_owned(),
                version,
                job_id,
                job_name,
            });
        }
        let sha: Option<String> = tx
            .query_row(
                "DELETE FROM udf_modules WHERE tenant_id = ?1 AND name = ?2 AND version = ?3 RETURNING sha256",
                params![tenant_id, name, version],
                |r| r.get(0),
            )
            .optional()?;
        tx.commit()?;
        Ok(sha)
    }

    /// Whether any tenant still stores a module with this content (for the compile cache, which
    /// drops an artifact nobody stores; not a tenant-facing query).
    pub fn module_hash_stored(&self, sha256_hex: &str) -> Result<bool, RegistryError> {
        Ok(self.reader().query_row(
            "SELECT EXISTS (SELECT 1 FROM udf_modules WHERE sha256 = ?1)",
            params![sha256_hex],
            |r| r.get(0),
        )?)
    }

    /// Bytes of module versions a tenant stores (for its quota).
    pub fn module_bytes(&self, tenant_id: i64) -> Result<i64, RegistryError> {
        Ok(self.reader().query_row(
            "SELECT COALESCE(SUM(size_bytes), 0) FROM udf_modules WHERE tenant_id = ?1",
            params![tenant_id],
            |r| r.get(0),
        )?)
    }
}
