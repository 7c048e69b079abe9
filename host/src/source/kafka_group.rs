//! Consumer-group mode of the `kafka` source: which partitions this process reads is decided
//! by the broker's consumer-group protocol, among every process running the job with the same
//! `group_id` (the coordination is Kafka's, not ours).
//!
//! A `Membership` is a consumer that only takes part in the group: it is assigned partitions,
//! pauses them at once and never reads a record. The source reads its partitions with its own
//! assign-mode consumer, as in direct mode, so a batch logged before a crash is read again
//! exactly, whoever owns its partitions now. Offsets go to the group:
//!
//! - when a batch's cut is logged (or, without checkpoints, once its output is written): the
//!   ends of its partitions, synchronously, so a new owner starts after them;
//! - when partitions are revoked (a rebalance, or this process leaving): their last ends again.
//!
//! A partition this process gains starts at the later of the group's offset and what this
//! process knows of it (its checkpoint, its replayed batches).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

/// A topic and partition.
pub type Partition = (String, i32);

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the rebalance callbacks share with the source.
#[derive(Default)]
struct Shared {
    /// The ends of the last logged batch, per partition this process owns.
    ends: BTreeMap<Partition, i64>,
    /// A commit the callbacks could not make.
    error: Option<String>,
}

struct GroupContext {
    shared: Arc<Mutex<Shared>>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else { return };
        // Before the partitions go: their ends, so their next owner starts after them.
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let mut tpl = TopicPartitionList::new();
        for e in revoked.elements() {
            let p = (e.topic().to_owned(), e.partition());
            if let Some(end) = shared.ends.remove(&p) {
                let _ = tpl.add_partition_offset(&p.0, p.1, Offset::Offset(end));
            }
        }
        if tpl.count() > 0
            && let Err(e) = consumer.commit(&tpl, CommitMode::Sync)
        {
            tracing::warn!("kafka source: committing the revoked partitions' offsets failed: {e}");
            shared.error = Some(format!("committing the revoked partitions' offsets failed: {e}"));
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(assigned) = rebalance {
            // This consumer never reads: the source reads with its own.
            let _ = consumer.pause(assigned);
        }
    }
}

/// This process's membership of the job's consumer group.
pub struct Membership {
    consumer: BaseConsumer<GroupContext>,
    shared: Arc<Mutex<Shared>>,
    topics: Vec<String>,
    joined: bool,
    owned: BTreeSet<Partition>,
}

/// What this process gained of the partitions (what it lost, the caller sees in `owns`).
#[derive(Debug, Default)]
pub struct Change {
    /// Partitions gained, each with the group's committed offset (if any).
    pub gained: Vec<(Partition, Option<i64>)>,
}

impl Membership {
    /// A member of `group` for `topics` (not joined until `poll`); `config` holds the spec's
    /// client properties and brokers.
    pub fn new(mut config: ClientConfig, group: &str, topics: &[String]) -> rdkafka::error::KafkaResult<Membership> {
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // It reads nothing: keep its fetch queue tiny.
            .set("queued.max.messages.kbytes", "64")
            .set("queued.min.messages", "1");
        if config.get("session.timeout.ms").is_none() {
            config.set("session.timeout.ms", "10000");
        }
        let shared = Arc::new(Mutex::new(Shared::default()));
        let consumer = config.create_with_context(GroupContext { shared: shared.clone() })?;
        Ok(Membership {
            consumer,
            shared,
            topics: topics.to_vec(),
            joined: false,
            owned: BTreeSet::new(),
        })
    }

    /// Joins the group (the first time), serves its events (a rebalance runs here, between
    /// batches) and says what changed. Errors go to the caller's status.
    pub fn poll(&mut self) -> Result<Change, String> {
        if !self.joined {
            let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
            self.consumer
                .subscribe(&topics)
                .map_err(|e| format!("cannot join the consumer group: {e}"))?;
            self.joined = true;
        }
        let mut error = None;
        // A record fetched before the pause took hold is dropped: the source reads it.
        for _ in 0..10_000 {
            match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => error = Some(format!("consumer group: {e}")),
            }
        }
        if let Some(e) = self.shared.lock().unwrap_or_else(|p| p.into_inner()).error.take() {
            error = Some(e);
        }
        let assignment = self.consumer.assignment().map_err(|e| format!("consumer group: {e}"))?;
        let now: BTreeSet<Partition> = assignment
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let gained: Vec<Partition> = now.difference(&self.owned).cloned().collect();
        let mut change = Change::default();
        if !gained.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for p in &gained {
                tpl.add_partition(&p.0, p.1);
            }
            let committed = self
                .consumer
                .committed_offsets(tpl, CALL_TIMEOUT)
                .map_err(|e| format!("cannot read the group's offsets: {e}"))?;
            change.gained = gained
                .into_iter()
                .map(|p| {
                    let offset = match committed.find_partition(&p.0, p.1).map(|e| e.offset()) {
                        Some(Offset::Offset(n)) => Some(n),
                        _ => None,
                    };
                    (p, offset)
                })
                .collect();
        }
        // The ends of partitions gone are no longer this process's to commit.
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ends
            .retain(|p, _| now.contains(p));
        self.owned = now;
        match error {
            Some(e) if self.owned.is_empty() => Err(e),
            _ => Ok(change),
        }
    }

    /// Commits `ends` (a logged batch's next offsets) of the partitions this process owns.
    pub fn commit(&self, ends: &BTreeMap<Partition, i64>) -> Result<(), String> {
        let mut tpl = TopicPartitionList::new();
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        for (p, end) in ends.iter().filter(|(p, _)| self.owned.contains(*p)) {
            shared.ends.insert(p.clone(), *end);
            let _ = tpl.add_partition_offset(&p.0, p.1, Offset::Offset(*end));
        }
        drop(shared);
        if tpl.count() == 0 {
            return Ok(());
        }
        self.consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| format!("committing offsets to the group failed: {e}"))
    }

    /// Whether `p` is this process's now.
    pub fn owns(&self, p: &Partition) -> bool {
        self.owned.contains(p)
    }
}

impl Drop for Membership {
    /// Leaves the group now (its partitions' ends committed by the revoke), so the others
    /// take them over at once rather than after the session times out.
    fn drop(&mut self) {
        if !self.joined {
            return;
        }
        self.consumer.unsubscribe();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            let _ = self.consumer.poll(Duration::from_millis(50));
            if self.consumer.assignment().map(|a| a.count() == 0).unwrap_or(true) {
                break;
            }
        }
    }
}
