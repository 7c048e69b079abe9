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
    about = "Micro-batch stream processing with sandboxed WebAssembly UDFs",
    long_about = "Micro-batch stream processing with sandboxed WebAssembly UDFs.\n\n\
        With no command, sluice runs `sluice serve --demo`: the server with its web console, a demo \
        tenant, the example UDFs and a running demo job.",
    after_help = "With no command: `sluice serve --demo` (the platform with a demo job; the console's URL is printed)."
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
        /// Measure isolation on a real server instead: a neighbour's batch times alone and
        /// with another tenant's CPU-bound UDFs, and the RSS of 100 idle jobs.
        #[arg(long)]
        isolation: bool,
        /// Measure checkpoints instead: write time and bytes of window state of 1e4..1e6 keys,
        /// full and incremental, recovery time, and word count's throughput with and without.
        #[arg(long)]
        checkpoints: bool,
        /// Measure durable HTTP ingest on a real server instead: records/s acknowledged.
        #[arg(long)]
        ingest: bool,
        /// Only the density figures: 1,000 light jobs of 100 tenants on a real server (RSS and
        /// threads a job, scheduling delay p99). The full `sluice bench` prints them last.
        #[arg(long)]
        density: bool,
        /// Only the Nexmark figures: q0, q1, q2, q5 and q7 end to end, events/s per core. The
        /// full `sluice bench` prints them after word count.
        #[arg(long)]
        nexmark: bool,
    },
    /// Serves the platform: the REST API over the SQLite registry in the data directory, with
    /// the jobs that were running when it last stopped.
    Serve(ServeArgs),
    /// (Internal) compiles one module read on stdin for the server, in a child process the
    /// server kills when the compile passes its time limit.
    #[command(hide = true)]
    CompileModule {
        /// Address space the compile may use, in bytes.
        #[arg(long)]
        memory_bytes_max: u64,
        /// Compile for an engine with fuel metering.
        #[arg(long)]
        fuel_metering: bool,
    },
    /// Writes, builds and tries UDFs on this machine (new, build, test), and manages UDF
    /// modules on a server (upload, list, logs).
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
    /// Manages tenants and their tokens on a server (admin token).
    Tenant {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: TenantCommand,
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
        /// A checkpoint file (SQLite, made if missing): the job resumes from its last checkpoint
        /// there (state, source position, batch ids) and writes new ones (like Spark's
        /// `ssc.checkpoint(dir)`).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<std::path::PathBuf>,
        /// Worker threads for the job's stages (like Spark's `local[N]`) [default: the
        /// machine's cores].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
        workers: Option<u16>,
    },
}

/// `sluice serve`'s options. A `--config` file sets any of them (and every quota); the
/// command line wins over it.
#[derive(clap::Args)]
struct ServeArgs {
    /// A TOML config file: `listen`, `data_dir`, `allow_socket`, `[server]` limits and
    /// `[quotas]` (see docs/operations.md).
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Address to listen on (port 0: any free port) [default: 127.0.0.1:8080].
    #[arg(long, env = "SLUICE_LISTEN")]
    listen: Option<String>,
    /// Where the registry and compiled modules live [default: ./sluice-data].
    #[arg(long, env = "SLUICE_DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// A HOST:PORT that server jobs may read with a `socket` source (repeatable; none by
    /// default).
    #[arg(long = "allow-socket", value_name = "HOST:PORT")]
    allow_socket: Vec<String>,
    /// A Kafka broker HOST:PORT that server jobs may name in a `kafka` source's
    /// bootstrap_servers (repeatable; none by default).
    #[arg(long = "allow-kafka", value_name = "HOST:PORT")]
    allow_kafka: Vec<String>,
    /// Quota jobs_max: jobs a tenant may have.
    #[arg(long)]
    quota_jobs: Option<usize>,
    /// Quota module_bytes_max: bytes of UDF modules a tenant may store.
    #[arg(long)]
    quota_module_bytes: Option<i64>,
    /// Quota call_memory_bytes_max: memory of one UDF call, in bytes.
    #[arg(long)]
    quota_call_memory_bytes: Option<usize>,
    /// Quota call_cpu_time_ms_max: CPU time of one UDF call, in ms.
    #[arg(long)]
    quota_call_cpu_time_ms: Option<u64>,
    /// Quota ingest_records_per_s_max: records per second one job may take over HTTP.
    #[arg(long)]
    quota_ingest_records_per_s: Option<u64>,
    /// Quota compile_time_ms_max: time to compile one upload, in ms.
    #[arg(long)]
    compile_time_ms_max: Option<u64>,
    /// On first start, also create a `demo` tenant with the example UDFs and a running job.
    #[arg(long)]
    demo: bool,
}

impl ServeArgs {
    fn options(self) -> anyhow::Result<sluice::server::ServeOptions> {
        let file = match &self.config {
            Some(path) => sluice::server::config::ConfigFile::read(path)?,
            None => Default::default(),
        };
        let mut quotas = file.quotas;
        let set = |q: &mut sluice::server::quotas::Quotas| {
            if let Some(v) = self.quota_jobs {
                q.jobs_max = v;
            }
            if let Some(v) = self.quota_module_bytes {
                q.module_bytes_max = v;
            }
            if let Some(v) = self.quota_call_memory_bytes {
                q.call_memory_bytes_max = v;
            }
            if let Some(v) = self.quota_call_cpu_time_ms {
                q.call_cpu_time_ms_max = v;
            }
            if let Some(v) = self.quota_ingest_records_per_s {
                q.ingest_records_per_s_max = v;
            }
            if let Some(v) = self.compile_time_ms_max {
                q.compile_time_ms_max = v;
            }
        };
        set(&mut quotas);
        quotas.check().map_err(|e| anyhow::anyhow!("quota {e}"))?;
        let mut sockets = file.allow_socket;
        sockets.extend(self.allow_socket);
        let mut kafka = file.allow_kafka;
        kafka.extend(self.allow_kafka);
        Ok(sluice::server::ServeOptions {
            listen: self.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".into()),
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| "./sluice-data".into()),
            quotas,
            settings: file.server,
            sockets: sluice::server::config::allowed_sockets(&sockets, &kafka)?,
            demo: self.demo,
        })
    }
}

use sluice::client::commands::{JobCommand, Remote, TenantCommand, UdfCommand};

fn remote_command(run: impl FnOnce() -> anyhow::Result<String>) -> anyhow::Result<()> {
    let text = run()?;
    if !text.is_empty() {
        use std::io::Write;
        // A closed stdout (`| head`) is not an error of the command.
        let _ = writeln!(std::io::stdout(), "{text}");
    }
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
        Command::Bench {
            quick,
            isolation,
            checkpoints,
            ingest,
            density,
            nexmark,
        } => sluice::bench::run(sluice::bench::BenchOptions {
            quick,
            isolation,
            checkpoints,
            ingest,
            density,
            nexmark,
        }),
        Command::Serve(args) => args.options().and_then(sluice::server::serve),
        Command::CompileModule {
            memory_bytes_max,
            fuel_metering,
        } => sluice::runtime::compiler_child_main(fuel_metering, memory_bytes_max).map_err(Into::into),
        Command::Udf { remote, command } => remote_command(|| sluice::client::commands::udf(&remote, command)),
        Command::Job { remote, command } => remote_command(|| sluice::client::commands::job(&remote, command)),
        Command::Tenant { remote, command } => remote_command(|| sluice::client::commands::tenant(&remote, command)),
        Command::Run {
            job,
            batches,
            modules,
            checkpoint,
            workers,
        } => sluice::cli::run_job(&job, batches, &modules, checkpoint.as_deref(), workers.map(usize::from)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
