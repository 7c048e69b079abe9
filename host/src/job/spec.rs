//! The job spec as written (JSON): serde types with unknown fields refused. `validate.rs` turns
//! it into a checked `JobPlan`. Reference: `docs/job-spec.md`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

use crate::engine::context::BadRecordPolicy;

/// A duration: `"1s"`, `"500ms"`, `"5m"` (humantime syntax) or a number of milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis(pub i64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 1000 == 0 {
            write!(f, "{}s", self.0 / 1000)
        } else {
            write!(f, "{}ms", self.0)
        }
    }
}

impl utoipa::PartialSchema for Millis {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Int64,
                    )))
                    .description(Some("milliseconds")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("a duration such as \"1s\", \"500ms\" or \"5m\"")),
            )
            .description(Some("A duration: milliseconds, or text such as \"1s\""))
            .into()
    }
}

impl utoipa::ToSchema for Millis {
    fn name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Ms(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Ms(ms) => Ok(Millis(ms)),
            Raw::Text(t) => {
                let d = humantime::parse_duration(&t).map_err(|e| {
                    serde::de::Error::custom(format!(
                        "{t:?} is not a duration ({e}); write e.g. \"1s\", \"500ms\" or \"5m\""
                    ))
                })?;
                i64::try_from(d.as_millis())
                    .map(Millis)
                    .map_err(|_| serde::de::Error::custom(format!("{t:?} is too long a duration")))
            }
        }
    }
}

/// The type of the values a stage produces, for checks and for how sinks print them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    /// UTF-8 text.
    Text,
    /// A number: 8 bytes, little-endian.
    I64,
    /// A floating-point number: 8 bytes, little-endian (what `avg` gives).
    F64,
    /// Anything else.
    Bytes,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Text => "text",
            ValueType::I64 => "i64",
            ValueType::F64 => "f64",
            ValueType::Bytes => "bytes",
        })
    }
}

/// A whole job.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// A name for people.
    pub name: String,
    /// How often a batch is cut.
    pub batch_interval: Millis,
    /// Where records come from.
    pub source: SourceSpec,
    /// What is done to them, in order.
    #[serde(default)]
    pub stages: Vec<StageSpec>,
    /// Where the results go.
    pub sink: SinkSpec,
    /// What happens to a record a stage refuses.
    #[serde(default)]
    pub on_bad_record: BadRecordPolicy,
    /// Where refused records go under `skip` (default: stderr as JSON Lines).
    #[serde(default)]
    pub dead_letter: Option<SinkSpec>,
    /// Under `skip`: how many refused records fail the job after all (default: no limit).
    #[serde(default)]
    pub max_refused: Option<RefusedLimits>,
    /// How often a checkpoint is written (a multiple of the batch interval; default: the job's
    /// output slide times `ceil(10 s / slide)`, as Spark's). Checkpoints are written only where
    /// the job has somewhere to write them (`sluice serve`, `sluice run --checkpoint FILE`).
    #[serde(default)]
    pub checkpoint_interval: Option<Millis>,
    /// For `sluice run`: UDF modules by name, as a path to a `.wasm` file or `builtin:examples`.
    #[serde(default)]
    pub modules: BTreeMap<String, String>,
}

/// How many refused records a job under `on_bad_record: skip` takes before it fails: a poison
/// record now and then goes to the dead letters, a stream of them stops the job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefusedLimits {
    /// More refused records than this in one batch (all stages) fail the job.
    #[serde(default)]
    pub per_batch: Option<u64>,
    /// More than this refused one after another by a stage (across batches, in the order of
    /// the stage's input, with no record taken in between) fail the job.
    #[serde(default)]
    pub in_a_row: Option<u64>,
}

/// Where records come from.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceSpec {
    /// A JSON Lines file: line `k` is a JSON array with batch `k`'s records (Spark's `queueStream`).
    Batches {
        /// The file.
        path: String,
    },
    /// Text lines from a TCP server (Spark's `socketTextStream`); reconnects when it drops.
    Socket {
        /// Host to connect to.
        host: String,
        /// Port.
        port: u16,
    },
    /// New files in a directory; each line is a record (Spark's `textFileStream`).
    Directory {
        /// The directory.
        path: String,
    },
    /// Generated lines of one of the seed's formats.
    Generator {
        /// `visits` (`user_id,timestamp,page`), `logs` (`timestamp|level|message`),
        /// `behavior` (`user_id,timestamp,action,item_id`) or `words` (8 words a line).
        format: GeneratorFormat,
        /// Lines per second (absent: as fast as the job goes, `lines_per_batch` a batch).
        #[serde(default)]
        rate_per_s: Option<u64>,
        /// Lines per batch when `rate_per_s` is absent.
        #[serde(default)]
        lines_per_batch: Option<u64>,
        /// Seed of the pseudo-random generator.
        #[serde(default)]
        seed: u64,
        /// How many batches it makes when unpaced (absent: endless); the job then ends.
        #[serde(default)]
        batches: Option<u64>,
    },
    /// The events of the Nexmark benchmark (persons, auctions, bids), deterministic by seed:
    /// each batch holds `events_per_s x interval` events stamped over its interval (event time).
    Nexmark(NexmarkSpec),
    /// Records sent to the job over HTTP (`POST /api/v1/jobs/ID/ingest`; `sluice serve` only).
    Http {
        /// How many records may wait for the next batch; past that, senders get 429.
        #[serde(default)]
        buffer_records: Option<usize>,
    },
    /// Records of Kafka topics, in direct mode (Spark's `createDirectStream`: the job reads
    /// every partition itself, a bounded range of offsets per batch, and keeps the offsets in
    /// its checkpoints) or, with `group_id`, in consumer-group mode (the processes running the
    /// job share the partitions). `sluice serve` allows only the bootstrap servers its operator
    /// lists (`--allow-kafka`).
    Kafka(KafkaSpec),
    /// The records of several sources together.
    #[schema(no_recursion)]
    Union(Vec<SourceSpec>),
}

/// A `nexmark` source.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NexmarkSpec {
    /// Events a second of event time (default 10,000); a batch holds this times the batch
    /// interval.
    #[serde(default)]
    pub events_per_s: Option<u64>,
    /// Events in all; unpaced, the job ends after the batch with the last (absent: endless).
    #[serde(default)]
    pub events: Option<u64>,
    /// Seed of the pseudo-random generator.
    #[serde(default)]
    pub seed: u64,
    /// On the clock: a live source making `events_per_s` events each second (default: as fast
    /// as the job goes, deterministic batch times from 0).
    #[serde(default)]
    pub paced: bool,
}

impl NexmarkSpec {
    /// Events a second of event time, the default applied.
    pub fn rate(&self) -> u64 {
        self.events_per_s
            .unwrap_or(crate::source::nexmark::EVENTS_PER_S_DEFAULT)
    }

    /// Events in a batch of `batch_ms`.
    pub fn events_per_batch(&self, batch_ms: i64) -> u64 {
        crate::source::nexmark::per_batch(self.rate(), batch_ms)
    }
}

/// A `kafka` source.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSpec {
    /// `host:port[,host:port...]` of the brokers.
    pub bootstrap_servers: String,
    /// The topics to read (all their partitions).
    pub topics: Vec<String>,
    /// Where a partition with no checkpointed offset starts: `earliest` (default) or `latest`.
    #[serde(default)]
    pub start: KafkaStart,
    /// Records read per partition per batch at most (as Spark's `maxRatePerPartition`; default
    /// 100,000).
    #[serde(default)]
    pub max_records_per_partition: Option<u64>,
    /// Client properties passed to librdkafka (e.g. `security.protocol`, `sasl.mechanism`,
    /// `sasl.username`, `sasl.password`); the server refuses ones that name local files or
    /// commands.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Consumer-group mode: every process running this job with this group shares the topics'
    /// partitions through the broker's group protocol (scale-out over processes and machines).
    /// Offsets are committed to the group as each batch is logged; a partition that moves
    /// resumes where its last owner's logged batches end. Per-batch stages only (no windows or
    /// `update_state_by_key`: their state would not move with the partitions).
    #[serde(default)]
    pub group_id: Option<String>,
}

/// A `kafka` sink.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkSpec {
    /// `host:port[,host:port...]` of the brokers.
    pub bootstrap_servers: String,
    /// The topic to write. A record's key is the message key; its value the message value
    /// (numbers as decimal text); the batch time its timestamp.
    pub topic: String,
    /// Each batch in one Kafka transaction, committed with the batch's id, so a
    /// `read_committed` consumer sees each batch once across crashes and restarts. Otherwise
    /// the idempotent producer: at least once across crashes.
    #[serde(default)]
    pub exactly_once: bool,
    /// The producer's `transactional.id` with `exactly_once` (default: `sluice-` and the job's
    /// name; the server sets its own per job). Two runs with one id fence each other.
    #[serde(default)]
    pub transactional_id: Option<String>,
    /// Client properties passed to librdkafka, as for the source.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// Where a Kafka partition with no checkpointed offset starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KafkaStart {
    /// Its first record still kept by the broker.
    #[default]
    Earliest,
    /// Only records written after the job starts.
    Latest,
}

/// The generator's line formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GeneratorFormat {
    /// `user_id,timestamp,page`
    Visits,
    /// `timestamp|level|message`
    Logs,
    /// `user_id,timestamp,action,item_id`
    Behavior,
    /// 8 words from a 1,000-word vocabulary, Zipf(1)-skewed.
    Words,
}

/// Where results go.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkSpec {
    /// The first records of each batch under a header with the batch time (Spark's `pprint`).
    Print {
        /// How many records of each batch to print.
        #[serde(default = "ten")]
        records: usize,
    },
    /// One JSON object per record with its batch id and time.
    Jsonl {
        /// A file to append to (absent or `-`: stdout).
        #[serde(default)]
        path: Option<String>,
    },
    /// Rows of a table in a SQLite file, each batch with its id in one transaction (exactly
    /// once across crashes).
    Sqlite {
        /// The file (`sluice run`; server jobs write their tenant's database and give none).
        #[serde(default)]
        path: Option<String>,
        /// The table.
        table: String,
    },
    /// One text file per batch, `PREFIX-TIME_IN_MS[.SUFFIX]`, written atomically.
    TextFiles {
        /// Path prefix.
        prefix: String,
        /// File name suffix.
        #[serde(default)]
        suffix: Option<String>,
    },
    /// Messages of a Kafka topic (idempotent producer; with `exactly_once`, a transaction per
    /// batch). `sluice serve` allows only the brokers its operator lists (`--allow-kafka`).
    Kafka(KafkaSinkSpec),
}

fn ten() -> usize {
    10
}

/// A UDF reference: `module@version` (or `module@latest`, or just `module` for a local run) and
/// a function of it.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UdfSpec {
    /// `module@version`, `module@latest` or `module`.
    pub udf: String,
    /// The function's name in the module.
    pub function: String,
    /// The type of the values it produces (default: `text`).
    #[serde(default)]
    pub value: Option<ValueType>,
}

/// The built-in reducers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinReducer {
    /// Sum of numbers; has an inverse.
    Sum,
    /// Minimum of numbers.
    Min,
    /// Maximum of numbers.
    Max,
    /// Average of numbers (an f64); has an inverse.
    Avg,
    /// Number of records (their values may be anything); has an inverse.
    Count,
}

/// How values are folded: a built-in, or a wasm `reduce` UDF.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReduceSpec {
    /// A built-in reducer.
    #[serde(default)]
    pub builtin: Option<BuiltinReducer>,
    /// Or a UDF module (`module@version`).
    #[serde(default)]
    pub udf: Option<String>,
    /// With `udf`: the reduce function.
    #[serde(default)]
    pub function: Option<String>,
    /// In windows: subtract what leaves with the inverse instead of recomputing (Spark's
    /// `invReduceFunc`). Needs `sum` or a UDF whose module exports the inverse.
    #[serde(default)]
    pub inverse: bool,
    /// With `udf`: the type of the values (default `i64`).
    #[serde(default)]
    pub value: Option<ValueType>,
}

/// A window.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Window length: a multiple of the batch interval.
    pub length: Millis,
    /// How often it slides: a multiple of the batch interval (default: the stream's slide).
    #[serde(default)]
    pub slide: Option<Millis>,
}

/// A windowed reduce.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReduceWindowSpec {
    /// Window length.
    pub length: Millis,
    /// Slide (default: the stream's slide).
    #[serde(default)]
    pub slide: Option<Millis>,
    /// How values are folded.
    pub reduce: ReduceSpec,
    /// With an inverse: which keys to keep (`nonzero` drops keys whose value is 0).
    #[serde(default)]
    pub filter: Option<FilterName>,
}

/// Key filters for windows with an inverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilterName {
    /// Drop keys whose value is the number 0.
    Nonzero,
}

/// Split a line.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// Separator (default: a single space, as Python's `line.split(" ")`).
    #[serde(default = "space")]
    pub sep: String,
    /// Emit `(piece, 1)` pairs instead of pieces.
    #[serde(default)]
    pub pairs: bool,
}

fn space() -> String {
    " ".into()
}

/// Split a line at whitespace.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitWhitespaceSpec {
    /// Emit `(piece, 1)` pairs instead of pieces.
    #[serde(default)]
    pub pairs: bool,
}

/// A field of a delimited line.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldRef {
    /// Which field, from 0.
    pub field: usize,
    /// Separator (default `,`).
    #[serde(default = "comma")]
    pub sep: String,
}

fn comma() -> String {
    ",".into()
}

/// Key by a field.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBySpec {
    /// Which field, from 0.
    pub field: usize,
    /// Separator (default `,`).
    #[serde(default = "comma")]
    pub sep: String,
    /// Parse the field as an integer and key by `floor(field / bucket)`.
    #[serde(default)]
    pub bucket: Option<i64>,
}

/// Keep records whose field equals a text.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldEqualsSpec {
    /// Which field, from 0.
    pub field: usize,
    /// Separator (default `,`).
    #[serde(default = "comma")]
    pub sep: String,
    /// The text it must equal.
    pub equals: String,
}

/// An operation without parameters: `{}`.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// One stage.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StageSpec {
    /// Wasm map UDF.
    Map(UdfSpec),
    /// Wasm flat_map UDF.
    FlatMap(UdfSpec),
    /// Wasm filter UDF.
    Filter(UdfSpec),
    /// Built-in: split lines into pieces (or `(piece, 1)` pairs).
    Split(SplitSpec),
    /// Built-in: split lines at whitespace.
    SplitWhitespace(SplitWhitespaceSpec),
    /// Built-in: key by a field of the line.
    KeyBy(KeyBySpec),
    /// Built-in: the value becomes a field of it.
    Pick(FieldRef),
    /// Built-in: the value, decimal text, becomes a number.
    ParseInt(NoArgs),
    /// Built-in: the value becomes this number (map to pairs `(key, n)`).
    SetValue(i64),
    /// Built-in: the key becomes the value.
    KeyByValue(NoArgs),
    /// Built-in: keep records whose field equals a text.
    FieldEquals(FieldEqualsSpec),
    /// Per batch: one value per key.
    ReduceByKey(ReduceSpec),
    /// Per batch: each distinct value with its count.
    CountByValue(NoArgs),
    /// Every slide, the records of the window.
    Window(WindowSpec),
    /// Every slide, the fold of the window's values.
    ReduceByWindow(ReduceWindowSpec),
    /// Every slide, the fold of the window's values per key.
    ReduceByKeyAndWindow(ReduceWindowSpec),
    /// Every slide, how many records the window holds.
    CountByWindow(WindowSpec),
    /// Every slide, each distinct value with its count in the window.
    CountByValueAndWindow(WindowSpec),
    /// Per key, a state folded over all batches so far; every key every batch.
    UpdateStateByKey(ReduceSpec),
    /// A stage that did not parse (never read from a spec): stands in for it while the rest of
    /// the spec is checked, so every problem is reported at once.
    #[serde(skip)]
    Unparsed,
}

impl StageSpec {
    /// The stage's word in the spec.
    pub fn op_name(&self) -> &'static str {
        match self {
            StageSpec::Map(_) => "map",
            StageSpec::FlatMap(_) => "flat_map",
            StageSpec::Filter(_) => "filter",
            StageSpec::Split(_) => "split",
            StageSpec::SplitWhitespace(_) => "split_whitespace",
            StageSpec::KeyBy(_) => "key_by",
            StageSpec::Pick(_) => "pick",
            StageSpec::ParseInt(_) => "parse_int",
            StageSpec::SetValue(_) => "set_value",
            StageSpec::KeyByValue(_) => "key_by_value",
            StageSpec::FieldEquals(_) => "field_equals",
            StageSpec::ReduceByKey(_) => "reduce_by_key",
            StageSpec::CountByValue(_) => "count_by_value",
            StageSpec::Window(_) => "window",
            StageSpec::ReduceByWindow(_) => "reduce_by_window",
            StageSpec::ReduceByKeyAndWindow(_) => "reduce_by_key_and_window",
            StageSpec::CountByWindow(_) => "count_by_window",
            StageSpec::CountByValueAndWindow(_) => "count_by_value_and_window",
            StageSpec::UpdateStateByKey(_) => "update_state_by_key",
            StageSpec::Unparsed => "unparsed",
        }
    }

    /// Whether the stage keeps state from batch to batch (windows, `update_state_by_key`).
    pub fn keeps_state(&self) -> bool {
        matches!(
            self,
            StageSpec::Window(_)
                | StageSpec::ReduceByWindow(_)
                | StageSpec::ReduceByKeyAndWindow(_)
                | StageSpec::CountByWindow(_)
                | StageSpec::CountByValueAndWindow(_)
                | StageSpec::UpdateStateByKey(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Millis;

    #[test]
    fn durations_parse_and_huge_ones_are_refused_not_wrapped() {
        let ms = |t: &str| serde_json::from_str::<Millis>(t);
        assert_eq!(ms(r#""1s""#).unwrap(), Millis(1000));
        assert_eq!(ms("250").unwrap(), Millis(250));
        let e = ms(r#""18446744073709552s""#).unwrap_err().to_string();
        assert!(e.contains("too long"), "{e}");
    }
}
