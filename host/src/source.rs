//! Sources: where a job's records come from. The scheduler asks a source for each batch's
//! records when it cuts the batch; live sources (socket, directory) gather in the background
//! between cuts, deterministic ones (batches file, unpaced generator) produce on demand.

mod batches;
mod directory;
pub mod generator;
pub mod http;
mod socket;

use crate::batch::RecordBatch;
use crate::engine::Tick;
use crate::job::spec::SourceSpec;

pub use batches::BatchesSource;
pub use directory::DirectorySource;
pub use generator::GeneratorSource;
pub use socket::SocketSource;

/// A source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file could not be read or parsed.
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

/// Where records come from.
pub trait Source: Send {
    /// The records of batch `tick`: for a live source, what arrived since the last cut.
    fn next_batch(&mut self, tick: Tick) -> Result<RecordBatch, SourceError>;

    /// How many batches a deterministic source holds (`None`: unbounded or live).
    fn batches_hint(&self) -> Option<u64> {
        None
    }

    /// Whether records arrive on their own time (the scheduler then waits for each interval);
    /// otherwise batches are made as fast as the job runs.
    fn is_live(&self) -> bool;

    /// For a source fed over HTTP: the buffer the server's ingest handler fills.
    fn ingest(&self) -> Option<std::sync::Arc<http::IngestBuffer>> {
        None
    }
}

/// Opens the source a spec describes. Live sources start gathering now.
pub fn open(spec: &SourceSpec, batch_ms: i64) -> Result<Box<dyn Source>, SourceError> {
    Ok(match spec {
        SourceSpec::Batches { path } => Box::new(BatchesSource::open(path)?),
        SourceSpec::Socket { host, port } => Box::new(SocketSource::start(host.clone(), *port)),
        SourceSpec::Directory { path } => Box::new(DirectorySource::new(path.into())),
        SourceSpec::Generator {
            format,
            rate_per_s,
            lines_per_batch,
            seed,
        } => Box::new(GeneratorSource::new(
            *format,
            *rate_per_s,
            lines_per_batch.unwrap_or(10_000),
            *seed,
            batch_ms,
        )),
        SourceSpec::Http { buffer_records } => Box::new(http::HttpSource::new(
            buffer_records.unwrap_or(http::BUFFER_RECORDS_DEFAULT),
        )),
        SourceSpec::Union(parts) => Box::new(Union(
            parts.iter().map(|p| open(p, batch_ms)).collect::<Result<_, _>>()?,
        )),
    })
}

/// Several sources as one.
struct Union(Vec<Box<dyn Source>>);

impl Source for Union {
    fn next_batch(&mut self, tick: Tick) -> Result<RecordBatch, SourceError> {
        let mut out = RecordBatch::new();
        for s in &mut self.0 {
            for r in s.next_batch(tick)?.iter() {
                out.push_ref(r);
            }
        }
        Ok(out)
    }

    fn batches_hint(&self) -> Option<u64> {
        self.0
            .iter()
            .map(|s| s.batches_hint())
            .try_fold(0, |a, h| h.map(|h| a.max(h)))
    }

    fn is_live(&self) -> bool {
        self.0.iter().any(|s| s.is_live())
    }

    fn ingest(&self) -> Option<std::sync::Arc<http::IngestBuffer>> {
        self.0.iter().find_map(|s| s.ingest())
    }
}
