//! `sluice serve` settings in two stages: what the operator wrote (a TOML file given with
//! `--config`, every field optional, unknown fields refused) and the command line over it, then
//! checked into `ServeOptions` with every default filled in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::admission::AllowedSockets;
use super::quotas::Quotas;

/// Server-wide limits (not per tenant).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Upload compiles running at once, all tenants together (more wait; past the wait, 503).
    pub compiles_concurrent_max: usize,
    /// Address space of one compile's child process, in bytes.
    pub compile_memory_bytes_max: u64,
    /// TCP connections open at once.
    pub connections_max: usize,
    /// TCP connections open at once from one client address.
    pub connections_per_client_max: usize,
    /// Time to receive a request's headers; also the idle limit of a kept-alive connection.
    pub header_read_timeout_ms: u64,
    /// Time to answer a request (streams: time to start answering).
    pub request_timeout_ms: u64,
    /// Requests handled at once; more get 503 at once.
    pub requests_concurrent_max: usize,
    /// How long shutdown waits for open connections and running batches.
    pub shutdown_grace_ms: u64,
    /// UDF instances that may exist at once, all tenants together (the instance pool).
    pub instances_max: u32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            compiles_concurrent_max: 2,
            compile_memory_bytes_max: 2 << 30,
            connections_max: 512,
            connections_per_client_max: 128,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 60_000,
            requests_concurrent_max: 512,
            shutdown_grace_ms: 3_000,
            instances_max: 1_000,
        }
    }
}

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    /// Address to listen on.
    pub listen: Option<String>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// `HOST:PORT` pairs server jobs may read with a `socket` source.
    pub allow_socket: Vec<String>,
    /// `HOST:PORT` of the Kafka brokers server jobs may name in a `kafka` source.
    pub allow_kafka: Vec<String>,
    /// Server-wide limits.
    pub server: ServerSettings,
    /// The quotas every tenant gets unless an admin sets others.
    pub quotas: Quotas,
}

impl ConfigFile {
    /// Reads a TOML config file.
    pub fn read(path: &Path) -> Result<ConfigFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        file.quotas
            .check()
            .map_err(|e| anyhow::anyhow!("{}: quotas.{e}", path.display()))?;
        Ok(file)
    }
}

/// Parses `HOST:PORT` pairs for `--allow-socket` and `--allow-kafka`.
pub fn allowed_sockets(list: &[String], kafka: &[String]) -> Result<AllowedSockets> {
    Ok(AllowedSockets {
        sockets: host_ports(list)?,
        kafka: host_ports(kafka)?,
    })
}

fn host_ports(list: &[String]) -> Result<Vec<(String, u16)>> {
    let mut out = Vec::new();
    for s in list {
        let Some((host, port)) = s.rsplit_once(':') else {
            bail!("--allow-socket takes HOST:PORT, not {s:?}");
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .with_context(|| format!("--allow-socket {s:?}: {port:?} is not a port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            bail!("--allow-socket {s:?}: no host");
        }
        out.push((host.to_owned(), port));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_sets_quotas_and_refuses_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(
            &path,
            "allow_socket = [\"127.0.0.1:9999\"]\nallow_kafka = [\"127.0.0.1:9092\"]\n[server]\nconnections_max = 7\n[quotas]\njobs_max = 3\n",
        )
        .unwrap();
        let c = ConfigFile::read(&path).unwrap();
        assert_eq!((c.server.connections_max, c.quotas.jobs_max), (7, 3));
        assert_eq!(c.quotas.stages_max, Quotas::default().stages_max);
        let allowed = allowed_sockets(&c.allow_socket, &c.allow_kafka).unwrap();
        assert_eq!(allowed.sockets, [("127.0.0.1".to_owned(), 9999)]);
        assert_eq!(allowed.kafka, [("127.0.0.1".to_owned(), 9092)]);
        std::fs::write(&path, "[quotas]\njobs = 3\n").unwrap();
        let e = ConfigFile::read(&path).unwrap_err().to_string();
        assert!(e.contains("unknown field `jobs`"), "{e}");
        assert!(allowed_sockets(&["nope".into()], &[]).is_err());
        assert!(allowed_sockets(&[], &["nope".into()]).is_err());
    }
}
