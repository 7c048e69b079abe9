//! The commands behind `main`: each parses nothing (clap did) and returns an error for `main`
//! to print.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::engine::SystemClock;
use crate::job;
use crate::run::{LocalModules, RunIo, RunOptions, dead_letter_writer, rebase_inputs, run};
use crate::runtime::{Runtime, RuntimeConfig};

/// `sluice run JOB_FILE`: runs a job locally, output on stdout.
pub fn run_job(path: &Path, batches: Option<u64>, modules: &[String]) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the job file {}", path.display()))?;
    let mut spec =
        job::parse_file(path, &text).map_err(|e| anyhow::anyhow!("{}{e}", path.display().to_string() + ": "))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut paths: BTreeMap<String, String> = spec.modules.clone();
    for m in modules {
        let Some((name, file)) = m.split_once('=') else {
            bail!("--module takes NAME=PATH, not {m:?}");
        };
        let abs = std::env::current_dir()?.join(file);
        paths.insert(name.to_owned(), abs.display().to_string());
    }
    rebase_inputs(&mut spec.source, &base);
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
    let resolver = LocalModules::new(runtime.clone(), paths, base);
    let plan = job::check(spec, &resolver).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let source = crate::source::open(&plan.spec.source, plan.batch_ms)?;
    let sink = crate::sink::open(&plan.spec.sink, plan.output_type, Box::new(std::io::stdout()))
        .with_context(|| "cannot open the sink")?;
    let dead = dead_letter_writer(plan.spec.dead_letter.as_ref()).context("cannot open the dead-letter output")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let options = RunOptions { batches, workers: None };
    let name = plan.spec.name.clone();
    let io = RunIo {
        source,
        sink,
        dead_letters: dead,
        clock: Arc::new(SystemClock),
    };
    let done = rt.block_on(run(&plan, runtime, io, &options, |_| {}))?;
    tracing::info!("job {name:?} ran {done} batches");
    Ok(())
}
