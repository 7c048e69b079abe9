//! `sluice serve`: the platform's HTTP server. Today it serves the REST API's first resources
//! (health, tenants, UDF modules) over the SQLite registry; jobs, hot-swap, ingest, metrics and
//! the console are the rest of the control-plane issue.
//!
//! `router(state)` builds the whole API, so tests can drive it in-process, and the binary serves
//! it on a TCP listener with graceful shutdown.

mod auth;
mod error;
mod jobs;
pub mod metrics;
pub mod quotas;
mod runs;
mod tenants;
mod udfs;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::get;

pub use error::ApiError;

use crate::registry::Registry;
use crate::runtime::{Runtime, RuntimeConfig};

/// The OpenAPI document of the API (`host/api/openapi.json`), served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../api/openapi.json");

/// What the handlers share.
pub struct AppState {
    /// Tenants, tokens, modules.
    pub registry: Registry,
    /// The wasm runtime (validates and compiles uploads, runs jobs).
    pub runtime: Arc<Runtime>,
    /// Jobs running in this process.
    pub running: runs::RunningJobs,
    /// What each tenant may use.
    pub quotas: quotas::Quotas,
    /// Ingest rates per job.
    pub ingest_rates: quotas::IngestRates,
    /// The server's own figures.
    pub metrics: metrics::ServerMetrics,
}

/// The API.
pub fn router(state: Arc<AppState>) -> Router {
    let module_bytes_max = state.runtime.config().module_bytes_max;
    Router::new()
        .route(
            "/api/v1/health",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route("/metrics", get(metrics::metrics))
        .route(
            "/api/v1/openapi.json",
            get(|| async { ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .merge(tenants::routes())
        .merge(udfs::routes(module_bytes_max))
        .merge(jobs::routes())
        .merge(runs::routes())
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(state)
}

/// Where and how to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free one).
    pub listen: String,
    /// Where the registry and the compile cache live.
    pub data_dir: PathBuf,
    /// What each tenant may use.
    pub quotas: quotas::Quotas,
}

/// Opens the data directory (creating the admin tenant and its token on first start) and serves
/// until Ctrl-C or SIGTERM.
pub fn serve(options: ServeOptions) -> Result<()> {
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("cannot create the data directory {}", options.data_dir.display()))?;
    let registry = Registry::open(&options.data_dir.join("registry.db"))?;
    let token_file = options.data_dir.join("admin-token");
    if !registry.has_admin()? {
        let admin = registry.create_tenant("admin", true)?;
        let token = registry.issue_token(admin.id)?;
        write_private(&token_file, token.as_bytes())?;
        println!(
            "first start: the admin token is in {} (keep it secret)",
            token_file.display()
        );
    }
    let runtime = Arc::new(Runtime::new(RuntimeConfig {
        cache_dir: Some(options.data_dir.join("cache")),
        ..RuntimeConfig::default()
    })?);
    let state = Arc::new(AppState {
        registry,
        runtime,
        running: Default::default(),
        quotas: options.quotas.clone(),
        ingest_rates: Default::default(),
        metrics: Default::default(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let addr = listener.local_addr()?;
        println!(
            "sluice is listening on http://{addr} (API at http://{addr}/api/v1; admin token: {})",
            token_file.display()
        );
        use std::io::Write;
        std::io::stdout().flush()?;
        // Jobs that were running when the server last stopped start again.
        for (tenant_id, id) in state.registry.jobs_with_status("running")? {
            if let Err(e) = runs::start_job(&state, tenant_id, id).await {
                tracing::error!("job {id} could not start again: {e:?}");
                state.registry.set_job_status(
                    tenant_id,
                    id,
                    "failed",
                    Some("could not start again after a restart; see the server log"),
                )?;
            }
        }
        axum::serve(listener, router(state.clone()))
            .with_graceful_shutdown(shutdown())
            .await?;
        // Running jobs finish their batch and stop; they resume on the next start.
        state.running.stop_all().await;
        Ok(())
    })
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(bytes)
}
