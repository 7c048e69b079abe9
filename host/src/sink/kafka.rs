//! The `kafka` sink: each output record becomes a message of one topic (its key the message
//! key, its value the message value, numbers as decimal text, the batch time its timestamp, the
//! batch id in a `sluice-batch` header).
//!
//! - At least once (default): the idempotent producer, and each batch waits until the brokers
//!   have every message (a failed delivery fails the batch; the job pauses and runs it again).
//! - Exactly once (`exactly_once: true`): each batch is one Kafka transaction, and the same
//!   transaction commits the batch's id as the offset of a consumer group named after the
//!   transactional id (the offset of the topic's partition 0 is the next batch id). At start,
//!   `init_transactions` fences an older producer with the same id and aborts its open
//!   transaction; the committed id is then read back, and a batch run again after a restore
//!   whose id is already committed writes nothing, as the `sqlite` and `text_files` sinks do.
//!   A `read_committed` consumer therefore sees each batch once across crashes.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use super::{Sink, value_json};
use crate::batch::RecordBatch;
use crate::engine::Tick;
use crate::job::spec::{KafkaSinkSpec, ValueType};

/// How long a batch may take to reach the brokers, and a transaction call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Remembers the first failed delivery of a batch.
#[derive(Default)]
struct Deliveries {
    failed: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            failed.get_or_insert_with(|| e.to_string());
        }
    }
}

/// The `kafka` sink.
pub struct KafkaSink {
    config: ClientConfig,
    topic: String,
    ty: ValueType,
    /// With `exactly_once`: the transactional id.
    transactional_id: Option<String>,
    producer: Option<BaseProducer<Deliveries>>,
    /// With `exactly_once`: the group whose offset records the last committed batch.
    group: Option<ConsumerGroupMetadata>,
    /// With `exactly_once`: the last batch id a transaction committed.
    committed: Option<u64>,
}

fn io(what: &str, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("kafka sink: {what}: {e}"))
}

impl KafkaSink {
    /// A sink for `spec`; `transactional_id` is the id used with `exactly_once` (the spec's, or
    /// one the caller chose). Connects on the first batch.
    pub fn new(spec: &KafkaSinkSpec, ty: ValueType, transactional_id: String) -> KafkaSink {
        let mut config = ClientConfig::new();
        config.set("linger.ms", "5").set("compression.type", "none");
        for (k, v) in &spec.properties {
            config.set(k, v);
        }
        config
            .set("bootstrap.servers", &spec.bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000");
        let transactional_id = spec.exactly_once.then_some(transactional_id);
        if let Some(id) = &transactional_id {
            config.set("transactional.id", id);
        }
        KafkaSink {
            config,
            topic: spec.topic.clone(),
            ty,
            transactional_id,
            producer: None,
            group: None,
            committed: None,
        }
    }

    /// The producer, made (and, transactional, fenced in and read back) if there is none.
    fn producer(&mut self) -> std::io::Result<&BaseProducer<Deliveries>> {
        if self.producer.is_none() {
            let producer: BaseProducer<Deliveries> = self
                .config
                .create_with_context(Deliveries::default())
                .map_err(|e| io("cannot make the producer", e))?;
            if let Some(id) = &self.transactional_id {
                producer
                    .init_transactions(CALL_TIMEOUT)
                    .map_err(|e| io(&format!("cannot start transactions as {id:?}"), e))?;
                let (group, committed) = self.read_committed_batch(id)?;
                self.group = Some(group);
                self.committed = committed;
            }
            self.producer = Some(producer);
        }
        Ok(self.producer.as_ref().expect("made above"))
    }

    /// The group metadata of the sink's group and the last batch id committed in it.
    fn read_committed_batch(&self, id: &str) -> std::io::Result<(ConsumerGroupMetadata, Option<u64>)> {
        let mut config = self.config.clone();
        config
            .remove("transactional.id")
            .remove("enable.idempotence")
            .remove("message.timeout.ms")
            .remove("linger.ms")
            .remove("compression.type")
            .set("group.id", id)
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed");
        let consumer: BaseConsumer = config.create().map_err(|e| io("cannot read its last batch", e))?;
        let group = consumer
            .group_metadata()
            .ok_or_else(|| io("cannot read its last batch", "no group metadata"))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, 0);
        let got = consumer
            .committed_offsets(tpl, CALL_TIMEOUT)
            .map_err(|e| io(&format!("cannot read the last committed batch of {id:?}"), e))?;
        let committed = match got.find_partition(&self.topic, 0).map(|p| p.offset()) {
            Some(Offset::Offset(next)) if next > 0 => Some(next as u64 - 1),
            _ => None,
        };
        Ok((group, committed))
    }

    /// Sends every record of `batch` (the producer's queue full: waits for room).
    fn send_all(&self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        let producer = self.producer.as_ref().expect("made before");
        let batch_id = tick.batch_id.to_string();
        let mut text = String::new();
        for r in batch.iter() {
            let value: &[u8] = match self.ty {
                ValueType::I64 | ValueType::F64 => {
                    use std::fmt::Write;
                    text.clear();
                    match value_json(r.value, self.ty) {
                        serde_json::Value::String(s) => text.push_str(&s),
                        v => write!(text, "{v}").expect("a String takes any text"),
                    }
                    text.as_bytes()
                }
                _ => r.value,
            };
            let headers = OwnedHeaders::new().insert(Header {
                key: "sluice-batch",
                value: Some(batch_id.as_str()),
            });
            let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic)
                .payload(value)
                .timestamp(tick.time_ms)
                .headers(headers);
            if let Some(k) = r.key {
                record = record.key(k);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, back)) if e.rdkafka_error_code() == Some(rdkafka::error::RDKafkaErrorCode::QueueFull) => {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => return Err(io("cannot send", e)),
                }
            }
        }
        Ok(())
    }

    fn take_failure(&self) -> Option<String> {
        let producer = self.producer.as_ref()?;
        producer
            .context()
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Writes `batch` in one transaction with its id.
    fn write_transaction(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        self.producer()?;
        if self.committed.is_some_and(|c| tick.batch_id <= c) {
            return Ok(()); // committed before a restore
        }
        let result = (|| {
            let producer = self.producer.as_ref().expect("made above");
            producer.begin_transaction().map_err(|e| io("cannot begin", e))?;
            self.send_all(tick, batch)?;
            let mut marker = TopicPartitionList::new();
            marker
                .add_partition_offset(&self.topic, 0, Offset::Offset(tick.batch_id as i64 + 1))
                .map_err(|e| io("batch id", e))?;
            let group = self.group.as_ref().expect("read with the producer");
            producer
                .send_offsets_to_transaction(&marker, group, CALL_TIMEOUT)
                .map_err(|e| io("cannot add the batch id to the transaction", e))?;
            producer
                .commit_transaction(CALL_TIMEOUT)
                .map_err(|e| io(&format!("cannot commit batch {}", tick.batch_id), e))?;
            if let Some(f) = self.take_failure() {
                return Err(io("a message was not delivered", f));
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.committed = Some(tick.batch_id);
                Ok(())
            }
            Err(e) => {
                // Whether it committed is unknown (a timeout): a new producer fences this one,
                // aborts what is open, and reads the committed batch id back.
                if let Some(p) = self.producer.take() {
                    let _ = p.abort_transaction(Duration::from_secs(5));
                }
                Err(e)
            }
        }
    }

    /// Writes `batch` and waits until the brokers have all of it.
    fn write_at_least_once(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        self.producer()?;
        self.send_all(tick, batch)?;
        let producer = self.producer.as_ref().expect("made above");
        producer
            .flush(CALL_TIMEOUT)
            .map_err(|e| io("the brokers did not take the batch", e))?;
        if let Some(f) = self.take_failure() {
            return Err(io("a message was not delivered", f));
        }
        Ok(())
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        self.write_batch(tick, Some(batch), &[])
    }

    fn write_batch(
        &mut self,
        tick: Tick,
        batch: Option<&RecordBatch>,
        _dead_letters: &[crate::engine::DeadLetter],
    ) -> std::io::Result<()> {
        // A batch without output writes nothing (run again, it writes nothing again).
        match batch {
            Some(b) if !b.is_empty() && self.transactional_id.is_some() => self.write_transaction(tick, b),
            Some(b) if !b.is_empty() => self.write_at_least_once(tick, b),
            _ => Ok(()),
        }
    }
}
