//! Tenants and their API tokens (stored hashed), and each tenant's quota overrides.

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{Registry, RegistryError, check_name, now_ms};

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Whether it may manage tenants.
    pub is_admin: bool,
    /// Its quota overrides as a JSON object (absent: the server's defaults).
    pub quotas_json: Option<String>,
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A tenant from `SELECT id, name, is_admin, quotas`.
fn tenant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: r.get(0)?,
        name: r.get(1)?,
        is_admin: r.get(2)?,
        quotas_json: r.get(3)?,
    })
}

impl Registry {
    /// Creates a tenant.
    pub fn create_tenant(&self, name: &str, is_admin: bool) -> Result<Tenant, RegistryError> {
        check_name("tenant", name)?;
        let conn = self.writer();
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
            quotas_json: None,
        })
    }

    /// Whether a tenant of this name exists.
    pub fn tenant_exists(&self, name: &str) -> Result<bool, RegistryError> {
        Ok(self.reader().query_row(
            "SELECT EXISTS (SELECT 1 FROM tenants WHERE name = ?1)",
            params![name],
            |r| r.get(0),
        )?)
    }

    /// Whether an admin tenant exists (the server creates one on first start).
    pub fn has_admin(&self) -> Result<bool, RegistryError> {
        Ok(self
            .reader()
            .query_row("SELECT EXISTS (SELECT 1 FROM tenants WHERE is_admin = 1)", [], |r| {
                r.get(0)
            })?)
    }

    /// Issues a new API token for a tenant and returns it; only its hash is kept.
    pub fn issue_token(&self, tenant_id: i64) -> Result<String, RegistryError> {
        let token = format!("sl_{}", hex::encode(rand::random::<[u8; 24]>()));
        self.writer().execute(
            "INSERT INTO tokens (tenant_id, sha256, created_ms) VALUES (?1, ?2, ?3)",
            params![tenant_id, token_hash(&token), now_ms()],
        )?;
        Ok(token)
    }

    /// The tenant a token belongs to, if any.
    pub fn authenticate(&self, token: &str) -> Result<Option<Tenant>, RegistryError> {
        Ok(self
            .reader()
            .query_row(
                "SELECT t.id, t.name, t.is_admin, t.quotas FROM tokens k JOIN tenants t ON t.id = k.tenant_id WHERE k.sha256 = ?1",
                params![token_hash(token)],
                tenant_row,
            )
            .optional()?)
    }

    /// A tenant by id (admins only: it reads any tenant).
    pub fn tenant(&self, id: i64) -> Result<Option<Tenant>, RegistryError> {
        Ok(self
            .reader()
            .query_row(
                "SELECT id, name, is_admin, quotas FROM tenants WHERE id = ?1",
                params![id],
                tenant_row,
            )
            .optional()?)
    }

    /// Every tenant, by id (admins only).
    pub fn list_tenants(&self) -> Result<Vec<Tenant>, RegistryError> {
        let conn = self.reader();
        let mut stmt = conn.prepare("SELECT id, name, is_admin, quotas FROM tenants ORDER BY id")?;
        let rows = stmt.query_map([], tenant_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces a tenant's quota overrides (a JSON object); `false` if there is no such tenant.
    pub fn set_tenant_quotas(&self, id: i64, quotas_json: &str) -> Result<bool, RegistryError> {
        Ok(self
            .writer()
            .execute("UPDATE tenants SET quotas = ?2 WHERE id = ?1", params![id, quotas_json])?
            > 0)
    }
}
