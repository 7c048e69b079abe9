//! The client commands' arguments (`sluice udf|job|tenant ...`) and how they find the server and
//! the token: `--server` (a scheme is optional), `--token`, `--token-file`, their environment
//! variables, or, next to a server's data directory, its admin token (said on stderr).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Subcommand;

use super::Client;

/// Which server, with which token.
#[derive(clap::Args, Debug)]
pub struct Remote {
    /// The server's address (`127.0.0.1:8080` or `http://127.0.0.1:8080`).
    #[arg(long, env = "SLUICE_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// An API token (a tenant's, or the admin's).
    #[arg(long, env = "SLUICE_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the API token (e.g. DATA_DIR/admin-token).
    #[arg(long, env = "SLUICE_TOKEN_FILE", global = true, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
}

/// The admin token file of the server's data directory next to here (`$SLUICE_DATA_DIR`, else
/// `./sluice-data`), if there is one.
fn admin_token_near() -> Option<PathBuf> {
    let dir = std::env::var_os("SLUICE_DATA_DIR").map_or_else(|| PathBuf::from("sluice-data"), PathBuf::from);
    let file = dir.join("admin-token");
    file.exists().then_some(file)
}

impl Remote {
    /// The client these arguments describe.
    pub fn client(&self) -> Result<Client> {
        let server = if self.server.contains("://") {
            self.server.clone()
        } else {
            format!("http://{}", self.server)
        };
        let read = |file: &Path| -> Result<String> {
            let t = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("cannot read the token file {}: {e}", file.display()))?;
            Ok(t.trim().to_owned())
        };
        let (token, source) = match (&self.token, &self.token_file) {
            (Some(t), _) => (t.trim().to_owned(), "--token / SLUICE_TOKEN".to_owned()),
            (None, Some(file)) => (read(file)?, format!("the file {}", file.display())),
            (None, None) => match admin_token_near() {
                Some(file) => {
                    eprintln!(
                        "using the admin token of the server's data directory ({})",
                        file.display()
                    );
                    (read(&file)?, format!("the file {}", file.display()))
                }
                None => bail!(
                    "give an API token: --token, --token-file or SLUICE_TOKEN / SLUICE_TOKEN_FILE. The admin's is in \
                     DATA_DIR/admin-token (./sluice-data by default); a tenant's is in the answer that created it \
                     (`sluice tenant create NAME`)"
                ),
            },
        };
        Ok(Client {
            server,
            token,
            token_source: source,
        })
    }
}

/// `sluice udf ...`.
#[derive(Subcommand, Debug)]
pub enum UdfCommand {
    /// Creates a UDF crate to start from (its own workspace): one example function, a native
    /// unit test, a sample input, and the release profile wasm modules want.
    New {
        /// The crate's name (also the example function's, with '-' as '_').
        name: String,
        /// The example function's kind.
        #[arg(long, value_enum, default_value = "map")]
        kind: crate::authoring::Kind,
        /// Where to create it [default: ./NAME].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The guest SDK to depend on (the `guest-sdk` folder of a Sluice checkout) [default:
        /// the one this sluice was built from].
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Builds a UDF crate to wasm (wasm32-unknown-unknown, release) and checks the module as
    /// the server checks uploads; prints its path, size and UDFs.
    Build {
        /// The crate's folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Runs one UDF of a module over sample records on this machine (no server): its outputs,
    /// refused records with their errors, its log lines, time and memory.
    Test {
        /// The .wasm module.
        module: PathBuf,
        /// The UDF to run.
        #[arg(long)]
        function: String,
        /// Sample records, one a line: JSON `{"key", "value", "timestamp"}` or plain text.
        #[arg(long)]
        input: PathBuf,
    },
    /// Uploads a .wasm module as the next version of NAME (the same bytes again: that version).
    Upload {
        /// The module's name in this tenant.
        name: String,
        /// The .wasm file.
        file: PathBuf,
    },
    /// Lists the modules and their versions.
    List,
    /// Prints a job's UDF log lines and errors, and its refused records (as `job logs`).
    Logs {
        /// The job's id.
        job: i64,
    },
}

/// `sluice job ...`.
#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// Creates a job from a spec file (JSON, or YAML for .yaml/.yml).
    Create {
        /// The spec file (see docs/job-spec.md; server-ready ones in examples/jobs/server/).
        spec: PathBuf,
    },
    /// Lists the jobs.
    List,
    /// Shows a job and its last batches.
    Status {
        /// The job's id.
        id: i64,
    },
    /// Starts a job.
    Start {
        /// The job's id.
        id: i64,
    },
    /// Stops a job after its batch in flight.
    Stop {
        /// The job's id.
        id: i64,
    },
    /// Makes a stage run another UDF version: a running job's map, flat_map or filter stage
    /// from its next batch; any UDF stage of a stopped job from its next start.
    Swap {
        /// The job's id.
        id: i64,
        /// The stage: its 0-based index in the spec's `stages`, or the name of the function it
        /// calls.
        stage: String,
        /// The version to run: NAME@VERSION (or NAME@latest).
        udf: String,
    },
    /// Shows a job's recent output records, newest last.
    Output {
        /// The job's id.
        id: i64,
        /// Records shown at most (the newest).
        #[arg(long, default_value_t = 20)]
        last: usize,
        /// Then keeps printing new records as they come (Ctrl-C ends).
        #[arg(long)]
        follow: bool,
    },
    /// Shows a job's recent refused records (dead letters).
    DeadLetters {
        /// The job's id.
        id: i64,
    },
    /// Prints a job's UDF log lines and errors, and its refused records.
    Logs {
        /// The job's id.
        id: i64,
    },
    /// Lists a job's checkpoints (batch, time, bytes written, write time).
    Checkpoints {
        /// The job's id.
        id: i64,
    },
}

/// `sluice tenant ...` (admin).
#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Creates a tenant and prints its first API token (shown this once).
    Create {
        /// 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter.
        name: String,
    },
    /// Lists the tenants.
    List,
    /// Issues another token of a tenant (shown this once).
    Token {
        /// The tenant's id.
        id: i64,
    },
}

/// Runs a `sluice udf` command.
pub fn udf(remote: &Remote, command: UdfCommand) -> Result<String> {
    match command {
        UdfCommand::New { name, kind, dir, sdk } => crate::authoring::new(&name, kind, dir.as_deref(), sdk.as_deref()),
        UdfCommand::Build { dir } => crate::authoring::build(&dir),
        UdfCommand::Test {
            module,
            function,
            input,
        } => crate::authoring::test(&module, &function, &input),
        UdfCommand::Upload { name, file } => super::udf_upload(&remote.client()?, &name, &file),
        UdfCommand::List => super::udf_list(&remote.client()?),
        UdfCommand::Logs { job } => super::job_logs(&remote.client()?, job),
    }
}

/// Runs a `sluice job` command.
pub fn job(remote: &Remote, command: JobCommand) -> Result<String> {
    let c = remote.client()?;
    match command {
        JobCommand::Create { spec } => super::job_create(&c, &spec),
        JobCommand::List => super::job_list(&c),
        JobCommand::Status { id } => super::job_status(&c, id),
        JobCommand::Start { id } => super::job_action(&c, id, "start"),
        JobCommand::Stop { id } => super::job_action(&c, id, "stop"),
        JobCommand::Swap { id, stage, udf } => super::job_swap(&c, id, &stage, &udf),
        JobCommand::Output { id, last, follow } => super::job_output(&c, id, last, follow),
        JobCommand::DeadLetters { id } => super::job_dead_letters(&c, id),
        JobCommand::Logs { id } => super::job_logs(&c, id),
        JobCommand::Checkpoints { id } => super::job_checkpoints(&c, id),
    }
}

/// Runs a `sluice tenant` command.
pub fn tenant(remote: &Remote, command: TenantCommand) -> Result<String> {
    let c = remote.client()?;
    match command {
        TenantCommand::Create { name } => super::tenant_create(&c, &name),
        TenantCommand::List => super::tenant_list(&c),
        TenantCommand::Token { id } => super::tenant_token(&c, id),
    }
}
