//! Test hooks for faults that no input can cause, so that the tests of what the server does
//! about them run through the real binary: with `SLUICE_FAILPOINT=panic:NAME` the job named NAME
//! panics in its second batch (a host bug in a job); with `SLUICE_FAILPOINT=abort:NAME` the
//! process aborts in the job's first batch (a job that takes the whole server down); with
//! `SLUICE_FAILPOINT=enospc:FILE` storage writes fail as on a full disk while FILE exists. Unset
//! (as always outside tests), they cost one branch per batch or write.

use std::sync::OnceLock;

fn point() -> Option<&'static (String, String)> {
    static POINT: OnceLock<Option<(String, String)>> = OnceLock::new();
    POINT
        .get_or_init(|| {
            let v = std::env::var("SLUICE_FAILPOINT").ok()?;
            let (what, name) = v.split_once(':')?;
            Some((what.to_owned(), name.to_owned()))
        })
        .as_ref()
}

/// Called in every batch of every job, after its stages ran.
pub fn in_batch(job: &str, batch_id: u64) {
    let Some((what, name)) = point() else { return };
    if name != job {
        return;
    }
    match (what.as_str(), batch_id) {
        ("panic", 2) => panic!("failpoint: a host panic in job {job:?}"),
        ("abort", 1) => {
            eprintln!("failpoint: aborting the process in job {job:?}");
            std::process::abort()
        }
        _ => {}
    }
}

/// Called before every write to the server's storage that must survive a crash (the ingest
/// log, checkpoints, the sqlite sink): with `SLUICE_FAILPOINT=enospc:FILE` each fails as on a
/// full disk while FILE exists, so a test can fill the disk and free it again.
pub fn storage(what: &str) -> std::io::Result<()> {
    let Some((kind, flag)) = point() else { return Ok(()) };
    if kind == "enospc" && std::path::Path::new(flag).exists() {
        tracing::debug!(what, "failpoint: the disk is full");
        return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Ok(())
}
