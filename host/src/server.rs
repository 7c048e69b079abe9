//! `sluice serve`: the platform's HTTP server. The REST API (tenants, UDF modules, jobs and
//! their runs, ingest, output, metrics, the OpenAPI document) over the SQLite registry, with a
//! supervisor per running job (`supervisors.rs`).
//!
//! `router(state)` builds the whole API with its limits as layers (request time, concurrency,
//! header size, body sizes per route), so tests can drive it in-process; `serve` runs it on a
//! TCP listener with connection limits (`http.rs`) and a bounded shutdown.
//!
//! Architecture Invariant: no handler does blocking work on the async workers: registry calls,
//! spec checks, compiles and job starts go through `spawn_blocking` (`AppState::db` and
//! `blocking`); batches run on their supervisors' threads and their tenant's lane.

mod admission;
mod auth;
pub mod config;
mod console;
mod demo_seed;
pub mod error;
mod http;
mod ingest;
mod jobs;
mod kept;
mod layers;
pub mod metrics;
pub mod openapi;
pub mod quotas;
mod runs;
mod supervisors;
mod swap;
mod tenants;
mod udfs;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;

pub use admission::AllowedSockets;
pub use error::ApiError;

use crate::registry::{Registry, RegistryError, Tenant};
use crate::runtime::{CompilerMode, Runtime, RuntimeConfig};

/// Prints a line on stdout, ignoring a closed stdout: the server must not die because whoever
/// started it stopped reading.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($t)*);
        let _ = out.flush();
    }};
}

/// What the handlers share.
pub struct AppState {
    /// Tenants, tokens, modules, jobs.
    pub registry: Arc<Registry>,
    /// The wasm runtime (validates and compiles uploads, runs jobs).
    pub runtime: Arc<Runtime>,
    /// The job supervisors of this process.
    pub jobs: supervisors::JobTable,
    /// The quotas of tenants that have no overrides.
    pub quotas: quotas::Quotas,
    /// Server-wide limits.
    pub settings: config::ServerSettings,
    /// Where server jobs may connect.
    pub sockets: AllowedSockets,
    /// Ingest rates per job.
    pub ingest_rates: quotas::IngestRates,
    /// The server's own figures.
    pub metrics: Arc<metrics::ServerMetrics>,
    /// Upload compiles of all tenants.
    pub compiles: Arc<tokio::sync::Semaphore>,
    /// Upload compiles per tenant.
    pub tenant_compiles: Mutex<HashMap<i64, Arc<tokio::sync::Semaphore>>>,
    /// Becomes `true` when the server shuts down (live streams end).
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// The jobs' checkpoints.
    pub checkpoints: Arc<crate::checkpoint::CheckpointStore>,
    /// The data directory.
    pub data_dir: PathBuf,
}

impl AppState {
    /// The state of a server over `registry` and `runtime`.
    pub fn new(
        data_dir: PathBuf,
        registry: Registry,
        checkpoints: crate::checkpoint::CheckpointStore,
        runtime: Arc<Runtime>,
        quotas: quotas::Quotas,
        settings: config::ServerSettings,
        sockets: AllowedSockets,
    ) -> AppState {
        AppState {
            registry: Arc::new(registry),
            runtime,
            jobs: Default::default(),
            quotas,
            compiles: Arc::new(tokio::sync::Semaphore::new(settings.compiles_concurrent_max.max(1))),
            settings,
            sockets,
            ingest_rates: Default::default(),
            metrics: Default::default(),
            tenant_compiles: Default::default(),
            shutdown: tokio::sync::watch::channel(false).0,
            checkpoints: Arc::new(checkpoints),
            data_dir,
        }
    }

    /// A tenant's output database (its jobs' `sqlite` sinks).
    pub fn tenant_db(&self, tenant_id: i64) -> PathBuf {
        self.data_dir.join("tenants").join(format!("{tenant_id}.db"))
    }

    /// A job's ingest log (what its `http` source acknowledged), a directory of segments.
    pub fn ingest_log_dir(&self, job_id: i64) -> PathBuf {
        self.data_dir.join("ingest").join(job_id.to_string())
    }

    /// A tenant's quotas: the server's, with the tenant's overrides.
    pub fn quotas_for(&self, tenant: &Tenant) -> quotas::Quotas {
        let Some(json) = &tenant.quotas_json else {
            return self.quotas.clone();
        };
        serde_json::from_str(json)
            .map_err(|e| e.to_string())
            .and_then(|v| self.quotas.with_overrides(&v))
            .unwrap_or_else(|e| {
                tracing::error!(
                    "tenant {}: its stored quotas do not apply ({e}); using the defaults",
                    tenant.id
                );
                self.quotas.clone()
            })
    }

    /// Runs a registry call off the async workers.
    pub async fn db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Registry) -> Result<T, RegistryError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let registry = self.registry.clone();
        blocking(move || f(&registry).map_err(ApiError::from)).await
    }
}

/// Runs blocking work off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("a blocking task", e))?
}

/// The API, with its limits as layers.
pub fn router(state: Arc<AppState>) -> Router {
    let module_bytes_max = state.runtime.config().module_bytes_max;
    let settings = state.settings.clone();
    let routes = Router::new()
        .route("/api/v1/health", axum::routing::get(openapi::health))
        .route("/metrics", axum::routing::get(metrics::metrics))
        .route("/api/v1/openapi.json", axum::routing::get(openapi::serve))
        .merge(tenants::routes())
        .merge(udfs::routes(module_bytes_max))
        .merge(jobs::routes())
        .merge(runs::routes())
        .merge(ingest::routes())
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(layers::method_not_allowed)
        .with_state(state)
        .merge(console::routes());
    layers::limits(
        routes,
        &settings,
        module_bytes_max.max(ingest::INGEST_BYTES_MAX) + (1 << 20),
    )
}

/// Where and how to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free one).
    pub listen: String,
    /// Where the registry and the compile cache live.
    pub data_dir: PathBuf,
    /// What each tenant may use unless an admin sets otherwise.
    pub quotas: quotas::Quotas,
    /// Server-wide limits.
    pub settings: config::ServerSettings,
    /// Where server jobs may connect.
    pub sockets: AllowedSockets,
    /// On first start, also create a `demo` tenant with the example UDFs and a running job.
    pub demo: bool,
}

/// Raises the soft limit of open files to the hard one (connections are capped below it).
fn raise_open_files() -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read or write one rlimit struct through a valid pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        lim.rlim_cur = lim.rlim_max.min(1 << 20);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// Opens the data directory (creating the admin tenant and its token on first start) and serves
/// until Ctrl-C or SIGTERM.
pub fn serve(options: ServeOptions) -> Result<()> {
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("cannot create the data directory {}", options.data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&options.data_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", options.data_dir.display()))?;
    }
    let registry = Registry::open(&options.data_dir.join("registry.db"))?;
    let checkpoints = crate::checkpoint::CheckpointStore::open(&options.data_dir.join("checkpoints.db"))?;
    let token_file = options.data_dir.join("admin-token");
    if !registry.has_admin()? {
        let admin = registry.create_tenant("admin", true)?;
        let token = registry.issue_token(admin.id)?;
        demo_seed::write_private(&token_file, token.as_bytes())?;
        say!(
            "first start: the admin token is in {} (keep it secret)",
            token_file.display()
        );
    }
    let mut settings = options.settings.clone();
    let files = raise_open_files();
    // Keep room for the registry, the cache, sockets of jobs and the compiler's pipes.
    let fd_room = usize::try_from(files.saturating_sub(64).max(16)).unwrap_or(usize::MAX);
    settings.connections_max = settings.connections_max.min(fd_room);
    let runtime = Arc::new(Runtime::new(RuntimeConfig {
        cache_dir: Some(options.data_dir.join("cache")),
        compiler: CompilerMode::ChildProcess {
            exe: std::env::current_exe().context("the server needs its own path to start compiler processes")?,
            time_ms_max: options.quotas.compile_time_ms_max,
            memory_bytes_max: settings.compile_memory_bytes_max,
        },
        instances_max: settings.instances_max.max(1),
        ..RuntimeConfig::default()
    })?);
    std::fs::create_dir_all(options.data_dir.join("tenants"))?;
    let state = Arc::new(AppState::new(
        options.data_dir.clone(),
        registry,
        checkpoints,
        runtime,
        options.quotas.clone(),
        settings.clone(),
        options.sockets.clone(),
    ));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let addr = listener.local_addr()?;
        if options.demo {
            let st = state.clone();
            let dir = options.data_dir.clone();
            tokio::task::spawn_blocking(move || demo_seed::seed_once(&st, &dir)).await??;
        }
        // Jobs that were running when the server last stopped start again.
        {
            let st = state.clone();
            tokio::task::spawn_blocking(move || st.jobs.resume(&st)).await??;
        }
        say!(
            "sluice is listening on http://{addr} (API at http://{addr}/api/v1; admin token: {})",
            token_file.display()
        );
        say!(
            "console: http://{addr}/ (sign in with a tenant's token{})",
            if options.demo {
                format!(
                    "; the demo tenant's is in {}",
                    options.data_dir.join("demo-token").display()
                )
            } else {
                String::new()
            }
        );
        if options.demo {
            let st = state.clone();
            let dir = options.data_dir.clone();
            if let Some(line) = tokio::task::spawn_blocking(move || demo_seed::how_to_read(&st, &dir, addr)).await?? {
                say!("{line}");
            }
        }
        let limits = http::ConnectionLimits {
            connections_max: settings.connections_max,
            connections_per_client_max: settings.connections_per_client_max,
            header_read_timeout: Duration::from_millis(settings.header_read_timeout_ms),
            shutdown_grace: Duration::from_millis(settings.shutdown_grace_ms),
        };
        let drain_state = state.clone();
        let grace = Duration::from_millis(settings.shutdown_grace_ms);
        // One grace period from the signal, for the connections and the batches in flight.
        let drained: Arc<Mutex<Option<(std::time::Instant, Vec<_>)>>> = Arc::default();
        let drained_in = drained.clone();
        http::serve(listener, router(state.clone()), limits, shutdown_signal(), move || {
            // Stop every job after its batch in flight and end the live streams, so open
            // connections finish and the grace period is not spent waiting for them.
            drain_state.shutdown.send_replace(true);
            let waits = drain_state.jobs.shutdown();
            *drained_in.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((std::time::Instant::now(), waits));
        })
        .await;
        let (since, waits) = drained
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| (std::time::Instant::now(), Vec::new()));
        let all = async {
            for mut w in waits {
                let _ = w.wait_for(|s| s.is_over()).await;
            }
        };
        if tokio::time::timeout(grace.saturating_sub(since.elapsed()), all)
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown: some jobs were still in a batch after the grace period; they resume at the next start"
            );
        }
        Ok::<(), anyhow::Error>(())
    })?;
    // Batches still running past the grace period are not waited for (their threads end with
    // the process); their jobs stay `running` and resume at the next start.
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

async fn shutdown_signal() {
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
