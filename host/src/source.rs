//! Sources: where a job's records come from. The scheduler asks a source for each batch's
//! records when it cuts the batch; live sources (socket, directory) gather in the background
//! between cuts, deterministic ones (batches file, unpaced generator) produce on demand.

pub mod batches;
mod directory;
pub mod generator;
pub mod http;
pub mod ingest_log;
pub mod kafka;
mod kafka_group;
pub mod nexmark;
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
    /// A checkpointed position does not fit the source.
    #[error("{0}")]
    Position(String),
    /// The ingest log could not be read or written.
    #[error(transparent)]
    Log(#[from] ingest_log::LogError),
}

impl SourceError {
    /// The I/O error's kind, where storage failed (`StorageFull`: the disk is full).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            SourceError::Log(e) => e.io_kind(),
            _ => None,
        }
    }
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

    /// Where the source is: what `seek` needs to give the next batches again after a restore.
    /// `None`: it cannot go back (a socket: at most once).
    fn position(&self) -> Option<serde_json::Value> {
        None
    }

    /// Goes back to `position` (from `position`), so the batches after it come again.
    fn seek(&mut self, _position: &serde_json::Value) -> Result<(), SourceError> {
        Ok(())
    }

    /// A checkpoint holding `position` is committed: what is before it is never read again.
    fn committed(&mut self, _position: &serde_json::Value) {}

    /// For a source whose batches cannot be cut again from a position alone (a directory:
    /// which files went into which batch): what the last batch took, which the supervisor logs
    /// with the checkpoints before the batch's output is committed. `None`: nothing to log (the
    /// batch took nothing, or the source needs no log).
    fn cut(&self) -> Option<serde_json::Value> {
        None
    }

    /// The last batch's cut is logged (or, without checkpoints, its output is written): what
    /// it took is this run's for good (a consumer-group member commits its offsets now).
    fn cut_durable(&mut self) {}

    /// After a restore: the logged cuts of the batches after the checkpoint (by batch id), so
    /// those batches are cut again as they were.
    fn replay(&mut self, _cuts: Vec<(u64, serde_json::Value)>) {}

    /// For a Kafka source: where its partitions stand (lag) and whether the brokers answer.
    fn kafka_status(&self) -> Option<kafka::KafkaStatus> {
        None
    }
}

fn bad_position(what: &str, position: &serde_json::Value) -> SourceError {
    SourceError::Position(format!(
        "{what}: the checkpoint's position {position} does not fit this source"
    ))
}

/// What a source may hold between batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceLimits {
    /// Records waiting for the next batch (the `http` buffer's default capacity is lower).
    pub buffer_records_max: usize,
    /// Bytes waiting for the next batch.
    pub buffer_bytes_max: usize,
    /// Bytes of one socket line; longer lines are dropped (and counted).
    pub line_bytes_max: usize,
    /// How long a socket connect may take.
    pub connect_timeout_ms: u64,
    /// Bytes of an `http` source's ingest log that no checkpoint covers yet.
    pub ingest_log_bytes_max: u64,
}

impl Default for SourceLimits {
    /// Generous limits for `sluice run` (the server passes the tenant's quotas).
    fn default() -> Self {
        SourceLimits {
            buffer_records_max: 10_000_000,
            buffer_bytes_max: 1 << 30,
            line_bytes_max: 16 << 20,
            connect_timeout_ms: 2_000,
            ingest_log_bytes_max: 1 << 30,
        }
    }
}

/// Opens the source a spec describes with the default limits. Live sources start gathering now.
pub fn open(spec: &SourceSpec, batch_ms: i64) -> Result<Box<dyn Source>, SourceError> {
    open_with(spec, batch_ms, SourceLimits::default(), None)
}

/// Opens the source a spec describes, holding at most `limits` between batches; an `http`
/// source logs what it takes in `ingest_log` (a directory), if given.
pub fn open_with(
    spec: &SourceSpec,
    batch_ms: i64,
    limits: SourceLimits,
    ingest_log: Option<&std::path::Path>,
) -> Result<Box<dyn Source>, SourceError> {
    Ok(match spec {
        SourceSpec::Batches { path } => Box::new(BatchesSource::open(path)?),
        SourceSpec::Socket { host, port } => Box::new(SocketSource::start(host.clone(), *port, limits)),
        SourceSpec::Directory { path } => Box::new(DirectorySource::new(path.into())),
        SourceSpec::Generator {
            format,
            rate_per_s,
            lines_per_batch,
            seed,
            batches,
        } => Box::new(
            GeneratorSource::new(
                *format,
                *rate_per_s,
                lines_per_batch.unwrap_or(generator::LINES_PER_BATCH_DEFAULT),
                *seed,
                batch_ms,
            )
            .with_batches(*batches),
        ),
        SourceSpec::Nexmark(n) => Box::new(nexmark::NexmarkSource::new(
            n.seed,
            n.rate(),
            n.events,
            n.paced,
            batch_ms,
        )),
        SourceSpec::Http { buffer_records } => {
            let records = buffer_records
                .unwrap_or(http::BUFFER_RECORDS_DEFAULT)
                .min(limits.buffer_records_max);
            match ingest_log {
                Some(dir) => Box::new(http::HttpSource::durable(
                    records,
                    limits.buffer_bytes_max,
                    dir,
                    limits.ingest_log_bytes_max,
                )?),
                None => Box::new(http::HttpSource::new(records, limits.buffer_bytes_max)),
            }
        }
        SourceSpec::Kafka(k) => Box::new(kafka::KafkaSource::open(k, batch_ms, limits.buffer_records_max)?),
        SourceSpec::Union(parts) => Box::new(Union(
            parts
                .iter()
                .map(|p| open_with(p, batch_ms, limits, ingest_log))
                .collect::<Result<_, _>>()?,
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

    fn position(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::Array(
            self.0
                .iter()
                .map(|s| s.position().unwrap_or(serde_json::Value::Null))
                .collect(),
        ))
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<(), SourceError> {
        let parts = position
            .as_array()
            .filter(|p| p.len() == self.0.len())
            .ok_or_else(|| bad_position("union", position))?;
        for (s, p) in self.0.iter_mut().zip(parts) {
            if !p.is_null() {
                s.seek(p)?;
            }
        }
        Ok(())
    }

    fn committed(&mut self, position: &serde_json::Value) {
        if let Some(parts) = position.as_array() {
            for (s, p) in self.0.iter_mut().zip(parts) {
                s.committed(p);
            }
        }
    }

    fn cut(&self) -> Option<serde_json::Value> {
        let parts: Vec<serde_json::Value> = self
            .0
            .iter()
            .map(|s| s.cut().unwrap_or(serde_json::Value::Null))
            .collect();
        parts
            .iter()
            .any(|p| !p.is_null())
            .then_some(serde_json::Value::Array(parts))
    }

    fn cut_durable(&mut self) {
        for s in &mut self.0 {
            s.cut_durable();
        }
    }

    fn replay(&mut self, cuts: Vec<(u64, serde_json::Value)>) {
        for (i, s) in self.0.iter_mut().enumerate() {
            let mine = cuts
                .iter()
                .filter(|(_, c)| !c[i].is_null())
                .map(|(b, c)| (*b, c[i].clone()))
                .collect();
            s.replay(mine);
        }
    }
}
