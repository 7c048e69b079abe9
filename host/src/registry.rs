//! The registry: tenants, their API tokens, their UDF module versions and their jobs, in one
//! SQLite file (WAL mode), with the schema created and migrated by the binary (numbered
//! migrations in `registry/migrations.rs`, tracked in `PRAGMA user_version`).
//!
//! One connection writes (behind a mutex; every write is one transaction, and a quota is checked
//! in the same transaction as the insert it guards); a small pool of read connections serves
//! reads, so token checks and listings never wait behind a write's `fsync`. Every method blocks:
//! the server calls them off its async workers.
//!
//! Architecture Invariant: every query on a tenant's objects takes the tenant's id and filters
//! by it; there is no method that reads another tenant's rows (the few that serve the server's
//! own boot and admins say so). A token is stored only as its SHA-256; the token itself is
//! returned once, at creation.

mod jobs;
mod migrations;
mod modules;
mod tenants;

pub use jobs::{JobRow, JobToResume, StageUdf, Swap};
pub use modules::{ModuleQuota, ModuleVersion, VersionRef};
pub use tenants::Tenant;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

/// Read connections kept open (WAL lets them read while the writer writes).
const READERS: usize = 4;

/// A registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// SQLite failed (disk, corruption, lock timeout).
    #[error("registry database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The registry file could not be made private.
    #[error("registry file: {0}")]
    Io(#[from] std::io::Error),
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
    /// An insert would take the tenant over a quota (checked in the insert's transaction).
    #[error("over the quota {quota}: {detail}")]
    Quota { quota: &'static str, detail: String },
    /// The database does not hold together (a migration broke a reference).
    #[error("registry integrity: {0}")]
    Integrity(String),
    /// The file is not a registry (another program's SQLite file, or not SQLite at all), or it
    /// is damaged; nothing in it was changed.
    #[error(
        "{path} is not a sluice registry ({why}); nothing was changed in it: move it away or start with another --data-dir"
    )]
    Foreign { path: String, why: String },
    /// The database was written by a newer binary.
    #[error("the registry has schema version {found}, newer than this binary's {known}; run a newer sluice")]
    TooNew { found: i64, known: i64 },
}

pub(crate) fn now_ms() -> i64 {
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

/// The registry.
pub struct Registry {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl Registry {
    /// Opens (or creates) the registry file, readable by its owner only, and brings its schema
    /// up to date.
    pub fn open(path: &Path) -> Result<Registry, RegistryError> {
        check_existing(path)?;
        make_private(path)?;
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrations::migrate(&mut conn)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        for suffix in ["-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            if Path::new(&p).exists() {
                set_private(Path::new(&p))?;
            }
        }
        let readers = (0..READERS)
            .map(|_| {
                let r = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                r.pragma_update(None, "query_only", "ON")?;
                Ok(Mutex::new(r))
            })
            .collect::<Result<_, RegistryError>>()?;
        Ok(Registry {
            writer: Mutex::new(conn),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// The writing connection.
    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer
            .lock()
            .expect("no query panics while holding the registry lock")
    }

    /// A reading connection: a free one if there is, else the next in turn.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        for r in &self.readers {
            if let Ok(guard) = r.try_lock() {
                return guard;
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        self.readers[i]
            .lock()
            .expect("no query panics while holding a reader lock")
    }
}

/// The application id in the file's header: a sluice registry, not some other SQLite file.
const APPLICATION_ID: i32 = 0x536c_5247; // "SlRG"

/// Refuses, before anything is written, an existing file that is not a registry: not SQLite,
/// damaged, or another program's database. A registry of an older binary (no application id
/// yet, but its schema version and its `tenants` table) is one.
fn check_existing(path: &Path) -> Result<(), RegistryError> {
    if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 {
        return Ok(());
    }
    let foreign = |why: String| RegistryError::Foreign {
        path: path.display().to_string(),
        why,
    };
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| foreign(e.to_string()))?;
    let read = |sql: &str| -> Result<i64, RegistryError> {
        conn.query_row(sql, [], |r| r.get(0))
            .map_err(|e| foreign(e.to_string()))
    };
    let ok: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| foreign(e.to_string()))?;
    if ok != "ok" {
        return Err(foreign(format!("it fails its integrity check: {ok}")));
    }
    let id = read("PRAGMA application_id")?;
    let version = read("PRAGMA user_version")?;
    let tables = read("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'")?;
    let ours = read("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'tenants'")? == 1;
    match id {
        id if id == i64::from(APPLICATION_ID) => Ok(()),
        0 if tables == 0 || (version > 0 && ours) => Ok(()),
        0 => Err(foreign(format!("it holds {tables} tables of another program"))),
        id => Err(foreign(format!("its application id is {id:#x}"))),
    }
}

/// Creates the file (mode 0600) if it does not exist, and makes an existing one 0600.
fn make_private(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?;
    set_private(path)
}

fn set_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn open(dir: &tempfile::TempDir) -> Registry {
        Registry::open(&dir.path().join("registry.db")).unwrap()
    }

    const ROOMY: ModuleQuota = ModuleQuota {
        module_bytes_max: 1 << 30,
        compiled_bytes_max: 1 << 30,
    };

    fn add(r: &Registry, tenant: i64, name: &str, wasm: &[u8]) -> ModuleVersion {
        r.add_module_version(tenant, name, wasm, "[]", 0, ROOMY).unwrap()
    }

    #[test]
    fn versions_count_per_tenant_and_name_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b);
        {
            let r = open(&dir);
            a = r.create_tenant("acme", false).unwrap();
            b = r.create_tenant("globex", false).unwrap();
            assert_eq!(add(&r, a.id, "words", b"one").version, 1);
            assert_eq!(add(&r, a.id, "words", b"two").version, 2);
            assert_eq!(add(&r, b.id, "words", b"other").version, 1);
            assert_eq!(add(&r, a.id, "parse", b"p").version, 1);
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
        add(&r, a.id, "secret", b"wasm");
        assert_eq!(r.module(b.id, "secret", VersionRef::Latest).unwrap(), None);
        assert_eq!(r.module(b.id, "secret", VersionRef::Exact(1)).unwrap(), None);
        assert!(r.list_modules(b.id).unwrap().is_empty());
        assert!(
            r.delete_module_version(b.id, "secret", 1).unwrap().is_none(),
            "B cannot delete A's module"
        );
        assert!(r.module(a.id, "secret", VersionRef::Exact(1)).unwrap().is_some());
        assert!(r.delete_module_version(a.id, "secret", 1).unwrap().is_some());
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
        let e = r
            .add_module_version(t.id, "../etc/passwd", b"x", "[]", 0, ROOMY)
            .unwrap_err();
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

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn a_foreign_or_damaged_file_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
            .unwrap();
        drop(other);
        let before = std::fs::read(&path).unwrap();
        let e = Registry::open(&path).err().unwrap();
        assert!(matches!(e, RegistryError::Foreign { .. }), "{e}");
        assert!(e.to_string().contains("nothing was changed"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "not a byte changed");
        std::fs::write(&path, b"this is not a database, it is a shopping list\n".repeat(100)).unwrap();
        let before = std::fs::read(&path).unwrap();
        let e = Registry::open(&path).err().unwrap();
        assert!(matches!(e, RegistryError::Foreign { .. }), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // A registry of this binary opens again, and so does an older one without the id.
        let path = dir.path().join("ours.db");
        drop(Registry::open(&path).unwrap());
        drop(Registry::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "application_id", 0).unwrap();
        drop(conn);
        drop(Registry::open(&path).unwrap());
    }

    #[test]
    fn the_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = Registry::open(&path).unwrap();
        r.create_tenant("acme", false).unwrap();
        for name in ["registry.db", "registry.db-wal", "registry.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name} is {mode:o}");
        }
    }

    #[test]
    fn a_quota_is_checked_in_the_inserts_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(&dir.path().join("registry.db")).unwrap();
        let t = r.create_tenant("acme", false).unwrap();
        let quota = ModuleQuota {
            module_bytes_max: 10,
            compiled_bytes_max: 100,
        };
        r.add_module_version(t.id, "m", b"123456", "[]", 50, quota).unwrap();
        let e = r.add_module_version(t.id, "m", b"654321", "[]", 0, quota).unwrap_err();
        assert!(
            matches!(
                e,
                RegistryError::Quota {
                    quota: "module_bytes_max",
                    ..
                }
            ),
            "{e}"
        );
        let e = r.add_module_version(t.id, "m", b"1", "[]", 51, quota).unwrap_err();
        assert!(
            matches!(
                e,
                RegistryError::Quota {
                    quota: "compiled_bytes_max",
                    ..
                }
            ),
            "{e}"
        );
        r.create_job(t.id, "a", "{}", &[], &[], 1).unwrap();
        let e = r.create_job(t.id, "b", "{}", &[], &[], 1).unwrap_err();
        assert!(matches!(e, RegistryError::Quota { quota: "jobs_max", .. }), "{e}");
    }

    /// A database of schema version 3 (before job ids were AUTOINCREMENT) keeps its rows.
    #[test]
    fn migration_4_keeps_the_jobs_and_their_pins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            for (i, sql) in migrations::MIGRATIONS[..3].iter().enumerate() {
                let tx = conn.transaction().unwrap();
                tx.execute_batch(sql).unwrap();
                tx.pragma_update(None, "user_version", i as i64 + 1).unwrap();
                tx.commit().unwrap();
            }
            conn.execute_batch(
                "INSERT INTO tenants (id, name, is_admin, created_ms) VALUES (1, 'acme', 0, 0);
                 INSERT INTO jobs (id, tenant_id, name, spec, status, created_ms) VALUES (7, 1, 'j', '{}', 'running', 5);
                 INSERT INTO job_udfs (job_id, module, version) VALUES (7, 'm', 2);",
            )
            .unwrap();
        }
        let r = Registry::open(&path).unwrap();
        let job = r.job(1, 7).unwrap().unwrap();
        assert_eq!(
            (job.status.as_str(), job.udfs.clone()),
            ("running", vec![("m".to_owned(), 2)])
        );
        assert!(r.delete_job(1, 7).unwrap());
        let next = r.create_job(1, "k", "{}", &[], &[], 10).unwrap();
        assert!(next.id > 7, "id {} reuses a deleted one", next.id);
    }
}
