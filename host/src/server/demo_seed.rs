//! `sluice serve --demo` (the binary's default): on first start, a `demo` tenant with the example
//! UDFs and a running job (the seed's scenario 1 on generated visits), so a new user sees the
//! platform work before writing anything.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::AppState;
use crate::registry::StageUdf;

/// The demo job: the seed's scenario 1 on generated visits.
const DEMO_JOB: &str = r#"{
  "name": "demo: visits per user, last 60 s",
  "batch_interval": "1s",
  "source": { "generator": { "format": "visits", "rate_per_s": 2000 } },
  "stages": [
    { "map": { "udf": "examples@latest", "function": "parse_visit", "value": "i64" } },
    { "reduce_by_key_and_window": { "length": "60s", "slide": "1s", "reduce": { "builtin": "sum", "inverse": true }, "filter": "nonzero" } }
  ],
  "sink": { "print": { "records": 10 } }
}"#;

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(bytes)
}

/// Creates the demo tenant (token in `DATA_DIR/demo-token`), uploads the example UDFs and
/// creates the demo job marked running, unless the tenant exists; the boot then resumes the job
/// like any running job.
pub fn seed_once(state: &Arc<AppState>, data_dir: &Path) -> Result<()> {
    if state.registry.tenant_exists("demo")? {
        return Ok(());
    }
    let tenant = state.registry.create_tenant("demo", false)?;
    let token = state.registry.issue_token(tenant.id)?;
    write_private(&data_dir.join("demo-token"), token.as_bytes())?;
    let checked = state.runtime.check("examples@1", sluice_udf_artifacts::EXAMPLES)?;
    let quotas = state.quotas_for(&tenant);
    super::udfs::store_checked(
        state,
        tenant.id,
        "examples",
        sluice_udf_artifacts::EXAMPLES,
        checked,
        &quotas,
    )
    .map_err(|e| anyhow::anyhow!("storing the example UDFs failed: {e:?}"))?;
    let (plan, pins) = super::jobs::check_blocking(state, tenant.id, DEMO_JOB, None, &quotas)
        .map_err(|e| anyhow::anyhow!("the demo job does not check: {e:?}"))?;
    let stage_udfs: Vec<StageUdf> = super::jobs::stage_udfs(&plan);
    let job = state.registry.create_job(
        tenant.id,
        &plan.spec.name,
        DEMO_JOB,
        &pins,
        &stage_udfs,
        quotas.jobs_max,
    )?;
    state.registry.set_job_status(tenant.id, job.id, "running", None)?;
    Ok(())
}

/// The line that tells how to read the demo job's output.
pub fn how_to_read(state: &Arc<AppState>, data_dir: &Path, addr: std::net::SocketAddr) -> Result<Option<String>> {
    let token_file = data_dir.join("demo-token");
    let token = std::fs::read_to_string(&token_file)?;
    let tenant = state
        .registry
        .authenticate(token.trim())?
        .context("the demo token is not valid")?;
    Ok(state.registry.list_jobs(tenant.id)?.first().map(|job| {
        format!(
            "demo job {}: curl -H \"Authorization: Bearer $(cat {})\" http://{addr}/api/v1/jobs/{}/output",
            job.id,
            token_file.display(),
            job.id
        )
    }))
}
