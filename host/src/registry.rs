//! The registry: tenants, their API tokens and their UDF module versions, in one SQLite file
//! (WAL mode), with the schema created and migrated by the binary (numbered migrations in
//! `registry/migrations.rs`, tracked in `PRAGMA user_version`).
//!
//! Architecture Invariant: every query on a tenant's objects takes the tenant's id and filters
//! by it; there is no method that reads another tenant's rows. A token is stored only as its
//! SHA-256; the token itself is returned once, at creation.
//!
//! The REST API (`server/`) is its only user.

mod jobs;
mod migrations;

pub use jobs::JobRow;

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

/// A registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// SQLite failed (disk, corruption, lock timeout).
    #[error("registry database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A name does not fit the rules.
    #[error("{what} name {name:?} is invalid: use 1 to 64 characters a-z, 0-9, '-' and '_', starting with a letter")]
    InvalidName { what: &'static str, name: String },
    /// A tenant of this name exists.
    #[error("a tenant named {0:?} exists already")]
    TenantExists(String),
    /// A module version is pinned by jobs.
    #[error(
        "module {module} version {version} is used by job {job_id} ({job_name:?}); delete or update that job first"
    )]
    InUse {
        module: String,
        version: i64,
        job_id: i64,
        job_name: String,
    },
    /// The database was written by a newer binary.
    #[error("the registry has schema version {found}, newer than this binary's {known}; run a newer sluice")]
    TooNew { found: i64, known: i64 },
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Whether it may manage tenants.
    pub is_admin: bool,
}

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
}

/// Which version of a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionRef {
    /// This one.
    Exact(i64),
    /// The newest.
    Latest,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Checks a tenant or module name.
pub fn check_name(what: &'static str, name: &str) -> Result<(), RegistryError> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A module version from `SELECT name, version, sha256, size_bytes, manifest, created_ms`.
fn module_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ModuleVersion> {
    Ok(ModuleVersion {
        name: r.get(0)?,
        version: r.get(1)?,
        sha256: r.get(2)?,
        size_bytes: r.get(3)?,
        manifest_json: r.get(4)?,
        created_ms: r.get(5)?,
    })
}

/// The registry.
pub struct Registry {
    conn: Mutex<Connection>,
}

impl Registry {
    /// Opens (or creates) the registry file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Registry, RegistryError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&mut conn)?;
        Ok(Registry { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .expect("no query panics while holding the registry lock")
    }

    /// Creates a tenant.
    pub fn create_tenant(&self, name: &str, is_admin: bool) -> Result<Tenant, RegistryError> {
        check_name("tenant", name)?;
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT INTO tenants (name, is_admin, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
            params![name, is_admin, now_ms()],
        )?;
        if inserted == 0 {
            return Err(RegistryError::TenantExists(name.to_owned()));
        }
        Ok(Tenant {
            id: conn.last_insert_rowid(),
            name: name.to_owned(),
            is_admin,
        })
    }

    /// Whether a tenant of this name exists.
    pub fn tenant_exists(&self, name: &str) -> Result<bool, RegistryError> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM tenants WHERE name = ?1)",
            params![name],
            |r| r.get(0),
        )?)
    }

    /// Whether an admin tenant exists (the server creates one on first start).
    pub fn has_admin(&self) -> Result<bool, RegistryError> {
        Ok(self
            .conn()
            .query_row("SELECT EXISTS (SELECT 1 FROM tenants WHERE is_admin = 1)", [], |r| {
                r.get(0)
            })?)
    }

    /// Issues a new API token for a tenant and returns it; only its hash is kept.
    pub fn issue_token(&self, tenant_id: i64) -> Result<String, RegistryError> {
        let token = format!("sl_{}", hex::encode(rand::random::<[u8; 24]>()));
        self.conn().execute(
            "INSERT INTO tokens (tenant_id, sha256, created_ms) VALUES (?1, ?2, ?3)",
            params![tenant_id, token_hash(&token), now_ms()],
        )?;
        Ok(token)
    }

    /// The tenant a token belongs to, if any.
    pub fn authenticate(&self, token: &str) -> Result<Option<Tenant>, RegistryError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT t.id, t.name, t.is_admin FROM tokens k JOIN tenants t ON t.id = k.tenant_id WHERE k.sha256 = ?1",
                params![token_hash(token)],
                |r| Ok(Tenant { id: r.get(0)?, name: r.get(1)?, is_admin: r.get(2)? }),
            )
            .optional()?)
    }

    /// Stores a new version of a tenant's module (the next number for that name) and returns it.
    pub fn add_module_version(
        &self,
        tenant_id: i64,
        name: &str,
        wasm: &[u8],
        manifest_json: &str,
    ) -> Result<ModuleVersion, RegistryError> {
        check_name("module", name)?;
        let sha256 = hex::encode(Sha256::digest(wasm));
        let created_ms = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let version: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM udf_modules WHERE tenant_id = ?1 AND name = ?2",
            params![tenant_id, name],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO udf_modules (tenant_id, name, version, sha256, size_bytes, manifest, wasm, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                tenant_id,
                name,
                version,
                sha256,
                wasm.len() as i64,
                manifest_json,
                wasm,
                created_ms
            ],
        )?;
        tx.commit()?;
        Ok(ModuleVersion {
            name: name.to_owned(),
            version,
            sha256,
            size_bytes: wasm.len() as i64,
            manifest_json: manifest_json.to_owned(),
            created_ms,
        })
    }

    /// A version of a tenant's module with its bytes, if it exists (for this tenant).
    pub fn module(
        &self,
        tenant_id: i64,
        name: &str,
        version: VersionRef,
    ) -> Result<Option<(ModuleVersion, Vec<u8>)>, RegistryError> {
        let conn = self.conn();
        let row = |r: &rusqlite::Row<'_>| Ok((module_row(r)?, r.get::<_, Vec<u8>>(6)?));
        let columns = "name, version, sha256, size_bytes, manifest, created_ms, wasm";
        Ok(match version {
            VersionRef::Exact(v) => conn
                .query_row(
                    &format!("SELECT {columns} FROM udf_modules WHERE tenant_id = ?1 AND name = ?2 AND version = ?3"),
                    params![tenant_id, name, v],
                    row,
                )
                .optional()?,
            VersionRef::Latest => conn
                .query_row(
                    &format!("SELECT {columns} FROM udf_modules WHERE tenant_id = ?1 AND name = ?2 ORDER BY version DESC LIMIT 1"),
                    params![tenant_id, name],
                    row,
                )
                .optional()?,
        })
    }

    /// A tenant's module versions (without their bytes), by name and version.
    pub fn list_modules(&self, tenant_id: i64) -> Result<Vec<ModuleVersion>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT name, version, sha256, size_bytes, manifest, created_ms FROM udf_modules WHERE tenant_id = ?1 ORDER BY name, version",
        )?;
        let rows = stmt.query_map(params![tenant_id], module_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes a version of a tenant's module; `false` if it did not exist (for this tenant).
    /// Refused while a job pins it.
    pub fn delete_module_version(&self, tenant_id: i64, name: &str, version: i64) -> Result<bool, RegistryError> {
        if let Some((job_id, job_name)) = self.jobs_using(tenant_id, name, version)?.into_iter().next() {
            return Err(RegistryError::InUse {
                module: name.to_owned(),
                version,
                job_id,
                job_name,
            });
        }
        Ok(self.conn().execute(
            "DELETE FROM udf_modules WHERE tenant_id = ?1 AND name = ?2 AND version = ?3",
            params![tenant_id, name, version],
        )? > 0)
    }

    /// Bytes of module versions a tenant stores (for its quota).
    pub fn module_bytes(&self, tenant_id: i64) -> Result<i64, RegistryError> {
        Ok(self.conn().query_row(
            "SELECT COALESCE(SUM(size_bytes), 0) FROM udf_modules WHERE tenant_id = ?1",
            params![tenant_id],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir) -> Registry {
        Registry::open(&dir.path().join("registry.db")).unwrap()
    }

    #[test]
    fn versions_count_per_tenant_and_name_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b);
        {
            let r = open(&dir);
            a = r.create_tenant("acme", false).unwrap();
            b = r.create_tenant("globex", false).unwrap();
            assert_eq!(r.add_module_version(a.id, "words", b"one", "[]").unwrap().version, 1);
            assert_eq!(r.add_module_version(a.id, "words", b"two", "[]").unwrap().version, 2);
            assert_eq!(r.add_module_version(b.id, "words", b"other", "[]").unwrap().version, 1);
            assert_eq!(r.add_module_version(a.id, "parse", b"p", "[]").unwrap().version, 1);
        }
        let r = open(&dir);
        let (latest, bytes) = r.module(a.id, "words", VersionRef::Latest).unwrap().unwrap();
        assert_eq!((latest.version, bytes), (2, b"two".to_vec()));
        assert_eq!(latest.sha256, hex::encode(Sha256::digest(b"two")));
        assert_eq!(
            r.module(a.id, "words", VersionRef::Exact(1)).unwrap().unwrap().1,
            b"one"
        );
        let names: Vec<_> = r
            .list_modules(a.id)
            .unwrap()
            .into_iter()
            .map(|m| (m.name, m.version))
            .collect();
        assert_eq!(
            names,
            [
                ("parse".to_owned(), 1),
                ("words".to_owned(), 1),
                ("words".to_owned(), 2)
            ]
        );
        assert_eq!(r.module_bytes(a.id).unwrap(), 7);
    }

    #[test]
    fn a_tenant_never_sees_another_tenants_modules() {
        let dir = tempfile::tempdir().unwrap();
        let r = open(&dir);
        let a = r.create_tenant("acme", false).unwrap();
        let b = r.create_tenant("globex", false).unwrap();
        r.add_module_version(a.id, "secret", b"wasm", "[]").unwrap();
        assert_eq!(r.module(b.id, "secret", VersionRef::Latest).unwrap(), None);
        assert_eq!(r.module(b.id, "secret", VersionRef::Exact(1)).unwrap(), None);
        assert!(r.list_modules(b.id).unwrap().is_empty());
        assert!(
            !r.delete_module_version(b.id, "secret", 1).unwrap(),
            "B cannot delete A's module"
        );
        assert!(r.module(a.id, "secret", VersionRef::Exact(1)).unwrap().is_some());
        assert!(r.delete_module_version(a.id, "secret", 1).unwrap());
    }

    #[test]
    fn tokens_are_stored_hashed_and_identify_their_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let r = open(&dir);
        let admin = r.create_tenant("admin", true).unwrap();
        let t = r.create_tenant("acme", false).unwrap();
        let token = r.issue_token(t.id).unwrap();
        let admin_token = r.issue_token(admin.id).unwrap();
        assert_eq!(r.authenticate(&token).unwrap(), Some(t));
        assert!(r.authenticate(&admin_token).unwrap().unwrap().is_admin);
        assert_eq!(r.authenticate("sl_wrong").unwrap(), None);
        drop(r);
        let raw = std::fs::read(dir.path().join("registry.db")).unwrap();
        let wal = std::fs::read(dir.path().join("registry.db-wal")).unwrap_or_default();
        let needle = token.as_bytes();
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle) && !wal.windows(needle.len()).any(|w| w == needle),
            "the raw token is not stored"
        );
    }

    #[test]
    fn names_are_checked_and_tenants_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let r = open(&dir);
        assert!(matches!(
            r.create_tenant("Bad Name", false),
            Err(RegistryError::InvalidName { .. })
        ));
        r.create_tenant("acme", false).unwrap();
        assert!(matches!(
            r.create_tenant("acme", false),
            Err(RegistryError::TenantExists(_))
        ));
        let t = r.create_tenant("globex", false).unwrap();
        let e = r.add_module_version(t.id, "../etc/passwd", b"x", "[]").unwrap_err();
        assert!(e.to_string().contains("invalid"), "{e}");
    }

    #[test]
    fn the_file_is_in_wal_mode_at_the_current_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(&dir));
        let conn = Connection::open(dir.path().join("registry.db")).unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, migrations::MIGRATIONS.len() as i64);
        conn.pragma_update(None, "user_version", 999).unwrap();
        drop(conn);
        let e = Registry::open(&dir.path().join("registry.db")).err().unwrap();
        assert!(matches!(e, RegistryError::TooNew { found: 999, .. }), "{e}");
    }
}
