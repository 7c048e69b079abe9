//! The `sluice` binary: parses the command line and calls the library.

use clap::{Parser, Subcommand};

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
    /// results per batch (the default when no command is given).
    Demo {
        /// Batches to run.
        #[arg(long, default_value_t = 3)]
        batches: usize,
        /// Lines per batch.
        #[arg(long, default_value_t = 10_000)]
        records: usize,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Demo {
        batches: 3,
        records: 10_000,
    }) {
        Command::Demo { batches, records } => sluice::demo::run(batches, records),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
