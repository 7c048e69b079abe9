//! The commands behind `main`: each parses nothing (clap did) and returns an error for `main`
//! to print.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::engine::SystemClock;
use crate::job;
use crate::run::{LocalModules, RunIo, RunOptions, dead_letter_writer, rebase_inputs, start};
use crate::runtime::{Runtime, RuntimeConfig};

/// `sluice run JOB_FILE`: runs a job locally, output on stdout.
pub fn run_job(
    path: &Path,
    batches: Option<u64>,
    modules: &[String],
    checkpoint: Option<&Path>,
    workers: Option<usize>,
) -> Result<()> {
    let began = std::time::Instant::now();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the job file {}", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let runtime = Arc::new(Runtime::new(RuntimeConfig {
        cache_dir: local_cache_dir(),
        ..RuntimeConfig::default()
    })?);
    // Modules named on the command line win over the spec's; the spec's are read at check time.
    let mut overrides = BTreeMap::new();
    for m in modules {
        let Some((name, file)) = m.split_once('=') else {
            bail!("--module takes NAME=PATH, not {m:?}");
        };
        overrides.insert(
            name.to_owned(),
            std::env::current_dir()?.join(file).display().to_string(),
        );
    }
    let spec_modules = std::cell::RefCell::new(BTreeMap::new());
    let prepare = |spec: &mut job::JobSpec| {
        rebase_inputs(&mut spec.source, &base);
        *spec_modules.borrow_mut() = spec.modules.clone();
    };
    let resolver = LazyModules {
        runtime: runtime.clone(),
        base: base.clone(),
        overrides,
        spec: &spec_modules,
        loaded: Default::default(),
    };
    let plan =
        job::read_and_check(path, &text, &resolver, prepare).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let source = crate::source::open(&plan.spec.source, plan.batch_ms)?;
    if source.ingest().is_some() {
        bail!(
            "{}: source: the http source takes records sent to `sluice serve` (POST /api/v1/jobs/ID/ingest); with `sluice run` use socket, directory, batches or generator",
            path.display()
        );
    }
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stdout = Box::new(Stdout { closed: closed.clone() });
    let sink = crate::sink::open(&plan.spec.sink, plan.output_type, stdout, &plan.spec.name)
        .with_context(|| "cannot open the sink")?;
    let dead = dead_letter_writer(plan.spec.dead_letter.as_ref()).context("cannot open the dead-letter output")?;
    let checkpointing = match checkpoint {
        Some(file) => Some(crate::supervisor::Checkpointing {
            store: Arc::new(
                crate::checkpoint::CheckpointStore::open(file)
                    .with_context(|| format!("cannot open the checkpoint file {}", file.display()))?,
            ),
            job: 0,
            every_batches: plan.checkpoint_every_batches(),
            keep: 3,
        }),
        None => None,
    };
    let options = RunOptions {
        batches,
        workers,
        limits: None,
        checkpointing,
    };
    let name = plan.spec.name.clone();
    let io = RunIo {
        source,
        sink,
        dead_letters: dead,
        clock: Arc::new(SystemClock),
    };
    let mut first = true;
    let running = start(&plan, runtime, io, options, move |r| {
        if std::mem::take(&mut first) {
            tracing::debug!(
                "first batch ({}) done {:.1} ms after the command began",
                r.batch_id,
                began.elapsed().as_secs_f64() * 1e3
            );
        }
    });
    // Ctrl-C stops the job after its batch in flight; the supervisor itself never listens for
    // signals (in the server, the server does).
    let mut state = running.watch();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let reader_gone = async {
            while !closed.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => running.stop(),
            _ = reader_gone => running.stop(),
            _ = state.wait_for(|s| s.is_over()) => {}
        }
    });
    let done = running.wait();
    // Whoever read the output stopped reading (`sluice run ... | head`): that ends the run, and
    // is no error.
    if closed.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let done = done.map_err(|e| anyhow::anyhow!("job {name:?} failed: {e}"))?;
    match peak_rss_mb() {
        Some(mb) => tracing::info!(
            "job {name:?} ran {done} batches in {:.2} s, peak RSS {mb:.1} MB",
            began.elapsed().as_secs_f64()
        ),
        None => tracing::info!("job {name:?} ran {done} batches"),
    }
    Ok(())
}

/// This process's peak resident memory so far (`VmHWM`), in MB, where /proc tells it.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Where local runs keep compiled modules between runs (a second run of the same module starts
/// without compiling it): `SLUICE_CACHE_DIR` (empty: no disk cache), else
/// `$XDG_CACHE_HOME/sluice/modules`, else `~/.cache/sluice/modules`.
pub fn local_cache_dir() -> Option<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("SLUICE_CACHE_DIR") {
        return (!dir.is_empty()).then(|| dir.into());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))?;
    Some(base.join("sluice/modules"))
}

/// Standard output for a local run's sink: once the reader has gone (a broken pipe), writes are
/// dropped and `closed` says so, so the run stops quietly instead of failing.
struct Stdout {
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(buf.len());
        }
        match std::io::stdout().write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match std::io::stdout().flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            other => other,
        }
    }
}

/// The modules of a local run: the command line's `--module`s, else the spec's `modules`
/// (known only once the spec is read, hence the cell).
struct LazyModules<'a> {
    runtime: Arc<Runtime>,
    base: std::path::PathBuf,
    overrides: BTreeMap<String, String>,
    spec: &'a std::cell::RefCell<BTreeMap<String, String>>,
    loaded: std::sync::Mutex<Option<LocalModules>>,
}

impl job::ModuleResolver for LazyModules<'_> {
    fn resolve(&self, reference: &str) -> Result<Arc<crate::runtime::LoadedModule>, String> {
        let mut loaded = self.loaded.lock().expect("modules lock");
        let modules = loaded.get_or_insert_with(|| {
            let mut paths = self.spec.borrow().clone();
            paths.extend(self.overrides.clone());
            LocalModules::new(self.runtime.clone(), paths, self.base.clone())
        });
        modules.resolve(reference)
    }
}
