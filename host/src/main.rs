//! The `sluice` binary: parses the command line and calls the library.

use clap::{Parser, Subcommand};

/// mimalloc keeps freed memory for reuse: batches allocate and free megabytes each interval, and
/// the system allocator returned them to the OS only to fault them in again (a fifth of the
/// time of a word count went to page faults).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Micro-batch stream processing with sandboxed WebAssembly UDFs"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the example UDFs over generated lines of the seed's three formats and prints the
    /// results per batch.
    Demo {
        /// Batches to run.
        #[arg(long, default_value_t = 3)]
        batches: usize,
        /// Lines per batch.
        #[arg(long, default_value_t = 10_000)]
        records: usize,
    },
    /// Measures the engine on generated data (throughput, batch time p50/p99), wasm UDFs
    /// against native built-ins, one worker against all cores. Build with --release.
    Bench {
        /// Fewer batches per case: quicker, noisier.
        #[arg(long)]
        quick: bool,
    },
    /// Serves the platform: the REST API over the SQLite registry in the data directory.
    Serve {
        /// Address to listen on (port 0: any free port).
        #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Where the registry and compiled modules live.
        #[arg(long, env = "SLUICE_DATA_DIR", default_value = "./sluice-data")]
        data_dir: std::path::PathBuf,
        /// Jobs a tenant may have.
        #[arg(long, default_value_t = 20)]
        quota_jobs: usize,
        /// Bytes of UDF modules a tenant may store.
        #[arg(long, default_value_t = 100 << 20)]
        quota_module_bytes: i64,
        /// Memory of one UDF call, in bytes.
        #[arg(long, default_value_t = 64 << 20)]
        quota_call_memory_bytes: usize,
        /// Time of one UDF call, in ms.
        #[arg(long, default_value_t = 1000)]
        quota_call_cpu_time_ms: u64,
        /// Records per second one job may take over HTTP.
        #[arg(long, default_value_t = 1_000_000)]
        quota_ingest_records_per_s: u64,
        /// Time to validate and compile one upload, in ms.
        #[arg(long, default_value_t = 10_000)]
        compile_time_ms_max: u64,
        /// On first start, also create a `demo` tenant with the example UDFs and a running job.
        #[arg(long)]
        demo: bool,
    },
    /// Manages UDF modules on a server.
    Udf {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: UdfCommand,
    },
    /// Manages jobs on a server.
    Job {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: JobCommand,
    },
    /// Runs a job from its spec file on this machine, without the server; output on stdout.
    Run {
        /// The job spec (JSON), see docs/job-spec.md.
        job: std::path::PathBuf,
        /// Stop after this many batches (default: all batches of a `batches` source; live
        /// sources run until Ctrl-C).
        #[arg(long)]
        batches: Option<u64>,
        /// A UDF module for the job: NAME=PATH to its .wasm (repeatable; overrides the spec's
        /// `modules`).
        #[arg(long = "module", value_name = "NAME=PATH")]
        modules: Vec<String>,
    },
}

/// Which server, with which token.
#[derive(clap::Args)]
struct Remote {
    /// The server's address.
    #[arg(long, env = "SLUICE_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    server: String,
    /// An API token (the tenant's, or the admin's).
    #[arg(long, env = "SLUICE_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
enum UdfCommand {
    /// Uploads a .wasm module as the next version of NAME.
    Upload { name: String, file: std::path::PathBuf },
    /// Lists the modules and their versions.
    List,
}

#[derive(Subcommand)]
enum JobCommand {
    /// Creates a job from a spec file (JSON).
    Create { spec: std::path::PathBuf },
    /// Lists the jobs.
    List,
    /// Shows a job and its last batches.
    Status { id: i64 },
    /// Starts a job.
    Start { id: i64 },
    /// Stops a job after its batch in flight.
    Stop { id: i64 },
    /// Makes a running job's stage call another UDF version (NAME@VERSION) from the next batch.
    Swap { id: i64, stage: usize, udf: String },
    /// Shows a job's recent output records.
    Output { id: i64 },
}

fn remote_command(
    remote: Remote,
    run: impl FnOnce(&sluice::client::Client) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let Some(token) = remote.token else {
        anyhow::bail!("give an API token with --token or SLUICE_TOKEN (the admin's is in DATA_DIR/admin-token)");
    };
    let client = sluice::client::Client {
        server: remote.server,
        token,
    };
    println!("{}", run(&client)?);
    Ok(())
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    // No command: the whole platform with the demo (server, registry, example UDFs, a job).
    let command = match cli.command {
        Some(c) => c,
        None => Cli::parse_from(["sluice", "serve", "--demo"])
            .command
            .expect("serve parses"),
    };
    let result = match command {
        Command::Demo { batches, records } => sluice::demo::run(batches, records),
        Command::Bench { quick } => sluice::bench::run(sluice::bench::BenchOptions { quick }),
        Command::Serve {
            listen,
            data_dir,
            quota_jobs,
            quota_module_bytes,
            quota_call_memory_bytes,
            quota_call_cpu_time_ms,
            quota_ingest_records_per_s,
            compile_time_ms_max,
            demo,
        } => sluice::server::serve(sluice::server::ServeOptions {
            listen,
            data_dir,
            quotas: sluice::server::quotas::Quotas {
                jobs_max: quota_jobs,
                module_bytes_max: quota_module_bytes,
                call_memory_bytes_max: quota_call_memory_bytes,
                call_cpu_time_ms_max: quota_call_cpu_time_ms,
                ingest_records_per_s_max: quota_ingest_records_per_s,
                compile_time_ms_max,
            },
            demo,
        }),
        Command::Udf { remote, command } => remote_command(remote, |c| match command {
            UdfCommand::Upload { name, file } => sluice::client::udf_upload(c, &name, &file),
            UdfCommand::List => sluice::client::udf_list(c),
        }),
        Command::Job { remote, command } => remote_command(remote, |c| match command {
            JobCommand::Create { spec } => sluice::client::job_create(c, &spec),
            JobCommand::List => sluice::client::job_list(c),
            JobCommand::Status { id } => sluice::client::job_status(c, id),
            JobCommand::Start { id } => sluice::client::job_action(c, id, "start"),
            JobCommand::Stop { id } => sluice::client::job_action(c, id, "stop"),
            JobCommand::Swap { id, stage, udf } => sluice::client::job_swap(c, id, stage, &udf),
            JobCommand::Output { id } => sluice::client::job_output(c, id),
        }),
        Command::Run { job, batches, modules } => sluice::cli::run_job(&job, batches, &modules),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
