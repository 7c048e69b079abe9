//! The `kafka` source, in direct mode as Spark's `createDirectStream`: the job itself assigns
//! every partition of its topics (no consumer group), each batch reads at most
//! `max_records_per_partition` records per partition from where the last one ended, and the
//! offsets live in Sluice's checkpoints, not only in the broker:
//!
//! - `position()` is the next offset of each partition; `seek` goes back to it after a restore;
//! - `cut()` is the range each batch took (`[first, end)` per partition), which the supervisor
//!   logs before the batch's output is committed, and `replay` reads exactly those ranges again
//!   for the batches after the checkpoint.
//!
//! With `group_id` the source is in consumer-group mode (`kafka_group.rs`): the group decides
//! which partitions this process reads, and everything else is as above.
//!
//! A broker that cannot be reached, or a topic that does not exist, gives empty batches and an
//! error in the source's status, and the metadata is asked again with back-off (1 s doubling to
//! 30 s): the job neither fails nor spins. Records come with their key, value and timestamp.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{Value, json};

use super::kafka_group::Membership;
use super::{Source, SourceError, bad_position};
use crate::batch::RecordBatch;
use crate::engine::Tick;
use crate::job::spec::{KafkaSpec, KafkaStart};

/// Records read per partition per batch when the spec does not say.
pub const MAX_RECORDS_PER_PARTITION_DEFAULT: u64 = 100_000;
/// How long metadata and seeks may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Without new records for this long, a batch is cut with what it has.
const QUIET: Duration = Duration::from_millis(50);

use super::kafka_group::Partition;

fn key(p: &Partition) -> String {
    format!("{}/{}", p.0, p.1)
}

fn parse_key(k: &str) -> Option<Partition> {
    let (topic, partition) = k.rsplit_once('/')?;
    Some((topic.to_owned(), partition.parse().ok()?))
}

/// What the source reports of itself with each batch.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct KafkaStatus {
    /// Why the last batch read nothing, when the broker or a topic failed.
    pub error: Option<String>,
    /// Per partition: the offset the next batch reads from, the broker's end, and the lag.
    pub partitions: Vec<PartitionLag>,
}

/// Where one partition stands.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset this job reads.
    pub next: i64,
    /// The broker's end of the partition (its high watermark), as last asked.
    pub end: i64,
    /// `end - next`: records written and not yet read.
    pub lag: i64,
}

/// The `kafka` source.
pub struct KafkaSource {
    consumer: BaseConsumer,
    topics: Vec<String>,
    start: KafkaStart,
    cap: u64,
    /// Records a batch holds at most, over all partitions (the tenant's batch_records_max).
    records_max: usize,
    /// The next offset of each known partition (`None`: from `start`, nothing read yet).
    next: BTreeMap<Partition, Option<i64>>,
    /// Partitions whose fetched records past the cap were dropped: seek before reading again.
    stale: BTreeSet<Partition>,
    /// Batches to cut again as they were, after a restore.
    replays: BTreeMap<u64, BTreeMap<Partition, (i64, i64)>>,
    last_cut: Option<Value>,
    /// How long a batch waits for records at most.
    budget: Duration,
    status: KafkaStatus,
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Consumer-group mode: the membership that says which partitions are this process's.
    group: Option<Membership>,
    /// Consumer-group mode: the next offsets this process knows of (its checkpoint, its
    /// logged batches), for partitions it may own again.
    known: BTreeMap<Partition, i64>,
    /// Whether the last batch was cut again after a restore.
    replayed: bool,
}

/// One partition while `read` takes a batch.
struct Reading {
    partition: Partition,
    next: Option<i64>,
    /// In a replay: where this partition's range ends (`None`: it takes nothing).
    end: Option<Option<i64>>,
    taken: Option<(i64, i64)>,
    held: bool,
}

impl Reading {
    /// In a replay, whether it has not reached its end yet.
    fn short(&self) -> bool {
        matches!(self.end, Some(Some(e)) if self.next.is_none_or(|n| n < e))
    }
}

impl KafkaSource {
    /// A source over `spec`, for batches of `batch_ms`.
    pub fn open(spec: &KafkaSpec, batch_ms: i64, records_max: usize) -> Result<KafkaSource, SourceError> {
        let mut config = ClientConfig::new();
        // A batch reads for a moment only: the broker should answer at once, and with much.
        // The spec's properties win over these.
        config
            .set("fetch.wait.max.ms", "10")
            .set("max.partition.fetch.bytes", "16777216")
            .set("queued.max.messages.kbytes", "262144");
        for (k, v) in &spec.properties {
            config.set(k, v);
        }
        config
            .set("bootstrap.servers", &spec.bootstrap_servers)
            // Assign-only: the group id only names the client; offsets are Sluice's.
            .set("group.id", format!("sluice-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest");
        let group = match &spec.group_id {
            Some(g) => {
                let mut member = ClientConfig::new();
                for (k, v) in &spec.properties {
                    member.set(k, v);
                }
                member.set("bootstrap.servers", &spec.bootstrap_servers);
                Some(
                    Membership::new(member, g, &spec.topics)
                        .map_err(|e| SourceError::Position(format!("kafka: {e}")))?,
                )
            }
            None => None,
        };
        let consumer: BaseConsumer = config
            .create()
            .map_err(|e| SourceError::Position(format!("kafka: {e}")))?;
        Ok(KafkaSource {
            group,
            known: BTreeMap::new(),
            replayed: false,
            consumer,
            topics: spec.topics.clone(),
            start: spec.start,
            cap: spec
                .max_records_per_partition
                .unwrap_or(MAX_RECORDS_PER_PARTITION_DEFAULT)
                .max(1),
            records_max: records_max.max(1),
            next: BTreeMap::new(),
            stale: BTreeSet::new(),
            replays: BTreeMap::new(),
            last_cut: None,
            budget: Duration::from_millis((batch_ms / 2).clamp(20, 1000) as u64),
            status: KafkaStatus::default(),
            retry_at: None,
            backoff: Duration::from_secs(1),
        })
    }

    /// Consumer-group mode: takes the group's decisions (a gained partition starts at the later
    /// of the group's offset and what this process knows; a lost one is dropped) and assigns
    /// this process's partitions.
    fn follow_group(&mut self) -> bool {
        let Some(group) = self.group.as_mut() else {
            return false;
        };
        let change = match group.poll() {
            Ok(c) => c,
            Err(e) => return self.failed(e),
        };
        let before = self.next.len();
        // Partitions of the checkpoint that the group gave someone else are not read here.
        self.next.retain(|p, _| group.owns(p));
        if before != self.next.len() || !change.gained.is_empty() {
            for (p, committed) in change.gained {
                let start = match (committed, self.known.get(&p).copied()) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                self.next.insert(p, start);
            }
            tracing::info!(
                "kafka source: this process now reads {}",
                self.next.keys().map(key).collect::<Vec<_>>().join(", ")
            );
            if let Err(e) = self.assign() {
                return self.failed(format!("cannot assign the partitions: {e}"));
            }
        }
        self.recovered()
    }

    /// Learns the topics' partitions (new ones start from `start`) and assigns them all; an
    /// error is kept in the status and the next try waits (back-off).
    fn discover(&mut self) -> bool {
        if self.group.is_some() {
            return self.follow_group();
        }
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let mut found = Vec::new();
        for topic in &self.topics {
            match self.consumer.fetch_metadata(Some(topic), CALL_TIMEOUT) {
                Ok(md) => {
                    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
                        continue;
                    };
                    if let Some(e) = t.error() {
                        let why = match e {
                            rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART => {
                                format!("topic {topic} does not exist")
                            }
                            other => format!("topic {topic}: {other:?}"),
                        };
                        return self.failed(why);
                    }
                    if t.partitions().is_empty() {
                        return self.failed(format!("topic {topic} does not exist (or has no partitions)"));
                    }
                    found.extend(t.partitions().iter().map(|p| (topic.clone(), p.id())));
                }
                Err(e) => return self.failed(format!("cannot reach the brokers: {e}")),
            }
        }
        let new: Vec<Partition> = found.into_iter().filter(|p| !self.next.contains_key(p)).collect();
        if !new.is_empty() || self.consumer.assignment().map(|a| a.count()).unwrap_or(0) != self.next.len() {
            for p in new {
                self.next.insert(p, None);
            }
            if let Err(e) = self.assign() {
                return self.failed(format!("cannot assign the partitions: {e}"));
            }
        }
        self.recovered()
    }

    /// The brokers answered: no error, and the back-off starts over.
    fn recovered(&mut self) -> bool {
        self.status.error = None;
        self.backoff = Duration::from_secs(1);
        self.retry_at = None;
        true
    }

    fn failed(&mut self, error: String) -> bool {
        if self.status.error.as_deref() != Some(error.as_str()) {
            tracing::warn!("kafka source: {error}; retrying in {:?}", self.backoff);
        }
        self.status.error = Some(error);
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_secs(30));
        false
    }

    fn offset_of(&self, next: Option<i64>) -> Offset {
        match (next, self.start) {
            (Some(n), _) => Offset::Offset(n),
            (None, KafkaStart::Earliest) => Offset::Beginning,
            (None, KafkaStart::Latest) => Offset::End,
        }
    }

    /// Assigns every known partition at its next offset.
    fn assign(&mut self) -> rdkafka::error::KafkaResult<()> {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in &self.next {
            tpl.add_partition_offset(topic, *partition, self.offset_of(*next))?;
        }
        self.stale.clear();
        self.consumer.assign(&tpl)?;
        // A partition held in an earlier assignment stays paused in librdkafka: let it go.
        self.consumer.resume(&tpl)
    }

    /// Moves the partitions whose records past the cap were dropped back to their next offset,
    /// and lets them be read again.
    fn reposition(&mut self) {
        for p in std::mem::take(&mut self.stale) {
            let offset = self.offset_of(self.next.get(&p).copied().flatten());
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&p.0, p.1);
            let resumed = self.consumer.resume(&tpl);
            if let Err(e) = resumed.and_then(|()| self.consumer.seek(&p.0, p.1, offset, CALL_TIMEOUT)) {
                tracing::warn!("kafka source: seek of {}: {e}", key(&p));
                self.stale.insert(p);
            }
        }
    }

    /// Stops reading partition `p` in this batch (its records past the cap are dropped; it is
    /// moved back before the next).
    fn hold(&mut self, p: &Partition) {
        if self.stale.insert(p.clone()) {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&p.0, p.1);
            let _ = self.consumer.pause(&tpl);
        }
    }

    /// Reads records into `out`: in a replay, until each partition reached `ends` (offsets);
    /// otherwise at most `cap` records a partition, until no record came for a moment. Stops at
    /// `deadline` in any case. The ranges taken.
    ///
    /// Partitions are looked up per record by (topic index, partition) in a table made once per
    /// batch, so a record costs no allocation; `self.next` is updated once at the end.
    fn read(
        &mut self,
        out: &mut RecordBatch,
        deadline: Instant,
        ends: Option<&BTreeMap<Partition, i64>>,
    ) -> BTreeMap<Partition, (i64, i64)> {
        let mut parts: HashMap<(usize, i32), Reading> = self
            .next
            .iter()
            .filter_map(|(p, next)| {
                let topic = self.topics.iter().position(|t| *t == p.0)?;
                let reading = Reading {
                    partition: p.clone(),
                    next: *next,
                    end: ends.map(|e| e.get(p).copied()),
                    taken: None,
                    held: self.stale.contains(p),
                };
                Some(((topic, p.1), reading))
            })
            .collect();
        // In a replay: the partitions still short of their end.
        let mut short = parts.values().filter(|r| r.short()).count();
        // Partitions that took their cap: once all have, the batch is full.
        let mut held = parts.values().filter(|r| r.held).count();
        let mut last_record = Instant::now();
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match ends {
                Some(_) if short == 0 => break,
                Some(_) => {}
                None if now.duration_since(last_record) > QUIET
                    || out.len() >= self.records_max
                    || (held > 0 && held == parts.len()) =>
                {
                    break;
                }
                None => {}
            }
            let Some(msg) = self.consumer.poll((deadline - now).min(Duration::from_millis(10))) else {
                continue;
            };
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!("kafka source: {e}");
                    continue;
                }
            };
            let Some(topic) = self.topics.iter().position(|t| t == msg.topic()) else {
                continue;
            };
            let Some(r) = parts.get_mut(&(topic, msg.partition())) else {
                continue;
            };
            let offset = msg.offset();
            if r.held || r.next.is_some_and(|n| offset < n) {
                continue; // held, or fetched before a seek
            }
            let full = match r.end {
                Some(end) => end.is_none_or(|e| offset >= e),
                None => r.taken.is_some_and(|(first, end)| (end - first) as u64 >= self.cap),
            };
            if full {
                r.held = true;
                held += 1;
                let held = r.partition.clone();
                self.hold(&held);
                continue;
            }
            last_record = now;
            out.push(
                msg.key(),
                msg.payload().unwrap_or_default(),
                msg.timestamp().to_millis().unwrap_or(0),
            );
            let was_short = r.short();
            r.taken = Some((r.taken.map_or(offset, |(first, _)| first), offset + 1));
            r.next = Some(offset + 1);
            if was_short && !r.short() {
                short -= 1;
            }
        }
        let mut taken = BTreeMap::new();
        for r in parts.into_values() {
            if let Some(range) = r.taken {
                self.next.insert(r.partition.clone(), r.next);
                taken.insert(r.partition, range);
            }
        }
        taken
    }

    /// Each partition's lag from the high watermarks the client learnt from its fetches (no
    /// request to the broker: a batch never waits for it).
    fn lags(&mut self) {
        let mut partitions = Vec::new();
        for ((topic, partition), next) in &self.next {
            let Ok(name) = std::ffi::CString::new(topic.as_str()) else {
                continue;
            };
            let (mut low, mut high) = (-1i64, -1i64);
            // SAFETY: the client handle lives as long as `self.consumer`; the topic name is a
            // valid C string for the call; `low` and `high` are valid for writes.
            let err = unsafe {
                rdkafka::bindings::rd_kafka_get_watermark_offsets(
                    self.consumer.client().native_ptr(),
                    name.as_ptr(),
                    *partition,
                    &mut low,
                    &mut high,
                )
            };
            if err != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || high < 0 {
                continue; // nothing fetched from it yet
            }
            let next = next.unwrap_or(match self.start {
                KafkaStart::Earliest => low.max(0),
                KafkaStart::Latest => high,
            });
            partitions.push(PartitionLag {
                topic: topic.clone(),
                partition: *partition,
                next,
                end: high,
                lag: (high - next).max(0),
            });
        }
        self.status.partitions = partitions;
    }
}

impl Source for KafkaSource {
    fn next_batch(&mut self, tick: Tick) -> Result<RecordBatch, SourceError> {
        let mut out = RecordBatch::new();
        self.last_cut = None;
        self.replayed = false;
        if let Some(ranges) = self.replays.remove(&tick.batch_id) {
            self.replayed = true;
            // Cut again exactly as before the restore: each partition from its first offset
            // to its end; the others not at all.
            for (p, (first, _)) in &ranges {
                self.next.insert(p.clone(), Some(*first));
            }
            self.assign()
                .map_err(|e| SourceError::Position(format!("kafka: {e}")))?;
            let ends: BTreeMap<Partition, i64> = ranges.iter().map(|(p, r)| (p.clone(), r.1)).collect();
            let deadline = Instant::now() + Duration::from_secs(30);
            let taken = self.read(&mut out, deadline, Some(&ends));
            for (p, (first, end)) in &ranges {
                if taken.get(p) != Some(&(*first, *end)) {
                    return Err(SourceError::Position(format!(
                        "kafka: batch {} took {first}..{end} of {} before the restore, and the broker did not give it again (retention?)",
                        tick.batch_id,
                        key(p)
                    )));
                }
            }
            self.last_cut = Some(cut_json(&taken));
            // Every partition goes on from where it stands now.
            self.assign()
                .map_err(|e| SourceError::Position(format!("kafka: {e}")))?;
            return Ok(out);
        }
        // Every batch's cut is logged, an empty one too: after a restore, a batch that took
        // nothing must take nothing again (the records it did not see went to a later batch).
        self.last_cut = Some(Value::Object(Default::default()));
        if self.group.is_some() && !self.replays.is_empty() {
            // The batches logged before a restore come first; the group is joined after.
            return Ok(out);
        }
        if !self.discover() {
            return Ok(out);
        }
        self.reposition();
        let deadline = Instant::now() + self.budget;
        let taken = self.read(&mut out, deadline, None);
        self.last_cut = Some(cut_json(&taken));
        self.lags();
        Ok(out)
    }

    fn is_live(&self) -> bool {
        true
    }

    fn position(&self) -> Option<Value> {
        Some(Value::Object(
            self.next
                .iter()
                .filter_map(|(p, n)| n.map(|n| (key(p), json!(n))))
                .collect(),
        ))
    }

    fn seek(&mut self, position: &Value) -> Result<(), SourceError> {
        let map = position.as_object().ok_or_else(|| bad_position("kafka", position))?;
        for (k, v) in map {
            let (Some(p), Some(n)) = (parse_key(k), v.as_i64()) else {
                return Err(bad_position("kafka", position));
            };
            self.next.insert(p.clone(), Some(n));
            self.known.insert(p, n);
        }
        Ok(())
    }

    fn cut_durable(&mut self) {
        // What this process read is its own now (known again after a restore).
        for (p, n) in &self.next {
            if let Some(n) = n {
                self.known.insert(p.clone(), *n);
            }
        }
        let Some(group) = &self.group else { return };
        if self.replayed {
            return; // its offsets went to the group before the restore
        }
        let ends: BTreeMap<Partition, i64> = self
            .next
            .iter()
            .filter(|(p, _)| group.owns(p))
            .filter_map(|(p, n)| Some((p.clone(), (*n)?)))
            .collect();
        if let Err(e) = group.commit(&ends) {
            tracing::warn!("kafka source: {e}");
            self.status.error = Some(e);
        }
    }

    fn cut(&self) -> Option<Value> {
        self.last_cut.clone()
    }

    fn replay(&mut self, cuts: Vec<(u64, Value)>) {
        for (batch, cut) in cuts {
            let Some(map) = cut.as_object() else { continue };
            let ranges = map
                .iter()
                .filter_map(|(k, v)| Some((parse_key(k)?, (v[0].as_i64()?, v[1].as_i64()?))))
                .collect();
            self.replays.insert(batch, ranges);
        }
    }

    fn kafka_status(&self) -> Option<KafkaStatus> {
        Some(self.status.clone())
    }
}

fn cut_json(taken: &BTreeMap<Partition, (i64, i64)>) -> Value {
    Value::Object(taken.iter().map(|(p, (a, b))| (key(p), json!([a, b]))).collect())
}
