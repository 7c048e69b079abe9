//! What the server keeps of a job for its API: the last output records (as JSON text), the last
//! batch reports, the last refused records (dead letters), the UDFs' log lines and errors, the
//! run's events (started, restored, swapped, paused, failed...), the job's metrics, and the live
//! output channel. Each list is bounded in records and in bytes (the tenant's quotas); the
//! oldest entries go first, and dropped dead letters and log lines are counted. A new run of
//! the job in the same process takes over the reports, logs and events of the one before, so
//! the console's charts go on across a restart, with its marker.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde::Serialize;

use super::metrics::JobMetrics;
use super::quotas::Quotas;
use crate::batch::RecordBatch;
use crate::engine::{DeadLetter, Tick, UdfLogLine};
use crate::job::spec::ValueType;
use crate::sink::Sink;
use crate::source::http::IngestBuffer;
use crate::supervisor::{BatchReport, DeadLetterSink};

/// Bytes kept of one output record's value, or one dead letter's record; longer ones are cut.
pub const RECORD_TEXT_MAX: usize = 16 << 10;
/// Records a slow live reader may fall behind by before it is told it lagged.
const LIVE_CHANNEL_RECORDS: usize = 256;
/// The largest record (as JSON text) the live channel carries: with the channel's slots, what a
/// stalled reader holds stays under 16 MiB per job.
const LIVE_RECORD_BYTES_MAX: usize = 64 << 10;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A list bounded in entries and bytes; the oldest go first.
#[derive(Debug)]
pub struct Ring<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    items_max: usize,
    bytes_max: usize,
    dropped: u64,
}

impl<T: Clone> Ring<T> {
    /// An empty list of at most `items_max` entries and `bytes_max` bytes.
    pub fn new(items_max: usize, bytes_max: usize) -> Ring<T> {
        Ring {
            items: VecDeque::new(),
            bytes: 0,
            items_max: items_max.max(1),
            bytes_max,
            dropped: 0,
        }
    }

    /// Adds an entry of `bytes` bytes, dropping the oldest to make room (an entry larger than
    /// the whole budget is not kept, and counts as dropped).
    pub fn push(&mut self, item: T, bytes: usize) {
        if bytes > self.bytes_max {
            self.dropped += 1;
            return;
        }
        while self.items.len() >= self.items_max || self.bytes + bytes > self.bytes_max {
            let Some((_, b)) = self.items.pop_front() else { break };
            self.bytes -= b;
            self.dropped += 1;
        }
        self.bytes += bytes;
        self.items.push_back((item, bytes));
    }

    /// The entries, oldest first.
    pub fn to_vec(&self) -> Vec<T> {
        self.items.iter().map(|(t, _)| t.clone()).collect()
    }

    /// Entries dropped to stay within the bounds.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes held.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl KeptDeadLetter {
    /// A refused record as the API shows it (key and value cut at 16 KiB).
    pub fn of(d: &DeadLetter) -> KeptDeadLetter {
        let (value, value_cut) = cut(&d.value, RECORD_TEXT_MAX);
        let key = d.key.as_deref().map(|k| cut(k, RECORD_TEXT_MAX));
        let key_cut = key.as_ref().is_some_and(|(_, c)| *c);
        KeptDeadLetter {
            stage: d.stage.clone(),
            batch_id: d.batch_id,
            index: d.index,
            key: key.map(|(k, _)| k),
            value,
            cut: value_cut || key_cut,
            error: d.error.clone(),
        }
    }

    /// Bytes it takes, about.
    pub fn size(&self) -> usize {
        self.value.len() + self.key.as_ref().map_or(0, String::len) + self.error.len() + self.stage.len() + 64
    }
}

/// A refused record as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct KeptDeadLetter {
    /// The stage that refused it.
    pub stage: String,
    /// The batch it was in.
    pub batch_id: u64,
    /// Its index in the stage's input of that batch.
    pub index: u32,
    /// Its key, as text (cut at 16 KiB).
    pub key: Option<String>,
    /// Its value, as text (cut at 16 KiB).
    pub value: String,
    /// Whether key or value was cut.
    pub cut: bool,
    /// Why it was refused.
    pub error: String,
}

fn cut(s: &str, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s.to_owned(), false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (s[..end].to_owned(), true)
}

/// Events kept per job (a few per start, stop and swap).
const EVENTS_MAX: usize = 500;

/// A UDF's log line, or an error of the job, as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct KeptLogLine {
    /// When it was kept, ms since the epoch.
    pub time_ms: i64,
    /// The batch (0: before the first).
    pub batch: u64,
    /// The stage (empty for an error of the whole job).
    pub stage: String,
    /// The UDF's `module@version` (empty when no UDF wrote it).
    pub udf: String,
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// `log`: the UDF wrote it; `error`: a call failed or records were refused.
    pub kind: String,
    /// Its text.
    pub message: String,
}

impl KeptLogLine {
    fn size(&self) -> usize {
        self.stage.len() + self.udf.len() + self.message.len() + 64
    }
}

/// What happened to a job, for the console's chart markers.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct JobEvent {
    /// When, ms since the epoch.
    pub time_ms: i64,
    /// The batch it concerns: the first one a swap runs, the one a run resumed from, the last
    /// one before a stop or failure (none before the first batch).
    pub batch: Option<u64>,
    /// `started`, `restored`, `swapped`, `paused`, `resumed`, `failed` or `stopped`.
    pub kind: String,
    /// What happened, for people.
    pub message: String,
}

/// The log lines kept of a job.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct KeptLogs {
    /// Lines kept or dropped since the job's first run in this process.
    pub total: u64,
    /// Lines dropped (the oldest first, to stay within `udf_log_bytes_max`; also lines over the
    /// per-batch bound of 1,000).
    pub dropped: u64,
    /// The lines kept, oldest first.
    pub lines: Vec<KeptLogLine>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Everything kept of one run of a job.
pub struct Kept {
    output: Mutex<Ring<Arc<str>>>,
    reports: Mutex<Ring<BatchReport>>,
    dead: Mutex<Ring<KeptDeadLetter>>,
    dead_total: AtomicU64,
    logs: Mutex<Ring<KeptLogLine>>,
    /// Log lines counted: kept, or dropped before they were kept.
    logs_total: AtomicU64,
    logs_dropped_early: AtomicU64,
    events: Mutex<Ring<JobEvent>>,
    last_batch: AtomicU64,
    /// Its metrics since it started.
    pub metrics: Mutex<JobMetrics>,
    live: Mutex<Option<tokio::sync::broadcast::Sender<Arc<str>>>>,
    /// The ingest buffer of its `http` source, once the source is open.
    pub ingest: OnceLock<Arc<IngestBuffer>>,
    /// The checkpoint the run was restored from (its batch), if it was.
    pub restored_from: Mutex<Option<u64>>,
    /// The run's last checkpoint.
    pub last_checkpoint: Mutex<Option<crate::checkpoint::CheckpointInfo>>,
}

impl Kept {
    /// Empty, bounded by the tenant's quotas.
    pub fn new(q: &Quotas) -> Arc<Kept> {
        Arc::new(Kept {
            output: Mutex::new(Ring::new(q.output_records_max, q.output_bytes_max)),
            reports: Mutex::new(Ring::new(usize::MAX, q.reports_bytes_max)),
            dead: Mutex::new(Ring::new(usize::MAX, q.dead_letter_bytes_max)),
            dead_total: AtomicU64::new(0),
            logs: Mutex::new(Ring::new(usize::MAX, q.udf_log_bytes_max)),
            logs_total: AtomicU64::new(0),
            logs_dropped_early: AtomicU64::new(0),
            events: Mutex::new(Ring::new(EVENTS_MAX, usize::MAX)),
            last_batch: AtomicU64::new(0),
            metrics: Mutex::default(),
            live: Mutex::new(Some(tokio::sync::broadcast::channel(LIVE_CHANNEL_RECORDS).0)),
            ingest: OnceLock::new(),
            restored_from: Mutex::new(None),
            last_checkpoint: Mutex::new(None),
        })
    }

    /// Takes over the reports, log lines and events of the job's run before (in this process),
    /// within this run's bounds.
    pub fn carry_over(&self, before: &Kept) {
        for r in before.reports() {
            lock(&self.reports).push(r.clone(), r.size_bytes());
        }
        for l in lock(&before.logs).to_vec() {
            let n = l.size();
            lock(&self.logs).push(l, n);
        }
        self.logs_total
            .store(before.logs_total.load(Ordering::Relaxed), Ordering::Relaxed);
        self.logs_dropped_early.store(
            before.logs_dropped_early.load(Ordering::Relaxed) + lock(&before.logs).dropped(),
            Ordering::Relaxed,
        );
        for e in lock(&before.events).to_vec() {
            lock(&self.events).push(e, 0);
        }
        self.last_batch
            .store(before.last_batch.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Adds an event, at the last batch if `batch` is `None` and one ran.
    pub fn event(&self, kind: &str, batch: Option<u64>, message: impl Into<String>) {
        let batch = batch.or(Some(self.last_batch.load(Ordering::Relaxed)).filter(|b| *b > 0));
        lock(&self.events).push(
            JobEvent {
                time_ms: now_ms(),
                batch,
                kind: kind.to_owned(),
                message: message.into(),
            },
            0,
        );
    }

    /// The events kept, oldest first.
    pub fn events(&self) -> Vec<JobEvent> {
        lock(&self.events).to_vec()
    }

    /// Adds an error of the job (a failure, refused records) to its log.
    /// `batch` 0 means the last batch that ran.
    pub fn error(&self, batch: u64, stage: &str, message: impl Into<String>) {
        let batch = if batch == 0 {
            self.last_batch.load(Ordering::Relaxed)
        } else {
            batch
        };
        self.keep_log(KeptLogLine {
            time_ms: now_ms(),
            batch,
            stage: stage.to_owned(),
            udf: String::new(),
            level: "error".into(),
            kind: "error".into(),
            message: message.into(),
        });
    }

    fn keep_log(&self, line: KeptLogLine) {
        self.logs_total.fetch_add(1, Ordering::Relaxed);
        let n = line.size();
        lock(&self.logs).push(line, n);
    }

    /// The log lines kept.
    pub fn log_lines(&self) -> KeptLogs {
        let logs = lock(&self.logs);
        KeptLogs {
            total: self.logs_total.load(Ordering::Relaxed),
            dropped: logs.dropped() + self.logs_dropped_early.load(Ordering::Relaxed),
            lines: logs.to_vec(),
        }
    }

    /// The output records kept, oldest first, as one JSON array.
    pub fn output_json(&self) -> String {
        let out = lock(&self.output).to_vec();
        let mut s = String::with_capacity(out.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
        s.push('[');
        for (i, r) in out.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(r);
        }
        s.push(']');
        s
    }

    /// The reports kept, oldest first.
    pub fn reports(&self) -> Vec<BatchReport> {
        lock(&self.reports).to_vec()
    }

    /// The last `limit` reports kept after the newest one of batch `after` (all of them when
    /// no report of that batch is kept: it was dropped, or a run began again from batch 1), for
    /// readers that poll for what is new.
    pub fn reports_after(&self, after: Option<u64>, limit: usize) -> Vec<BatchReport> {
        let all = lock(&self.reports).to_vec();
        let from = after
            .and_then(|a| all.iter().rposition(|r| r.batch_id == a))
            .map_or(0, |i| i + 1);
        let rest = &all[from..];
        rest[rest.len().saturating_sub(limit)..].to_vec()
    }

    /// Adds a batch's report (and to the metrics).
    pub fn push_report(&self, r: &BatchReport) {
        self.last_batch.store(r.batch_id, Ordering::Relaxed);
        lock(&self.metrics).observe(r);
        lock(&self.reports).push(r.clone(), r.size_bytes());
    }

    /// The dead letters kept, oldest first; refused in all; dropped to stay within the bound.
    pub fn dead_letters(&self) -> (Vec<KeptDeadLetter>, u64, u64) {
        let dead = lock(&self.dead);
        (dead.to_vec(), self.dead_total.load(Ordering::Relaxed), dead.dropped())
    }

    /// A receiver of the live output, if the run is on.
    pub fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<Arc<str>>> {
        lock(&self.live).as_ref().map(|tx| tx.subscribe())
    }

    /// Ends the live output (the run is over, or the server shuts down): streams end.
    pub fn close_live(&self) {
        lock(&self.live).take();
    }
}

/// The server's sink: keeps a job's last output records and sends them to live readers.
pub struct KeptSink {
    /// Where.
    pub kept: Arc<Kept>,
    /// The type of the job's output values.
    pub ty: ValueType,
    /// Records kept at most (only the last of a large batch are made into JSON).
    pub records_max: usize,
}

impl Sink for KeptSink {
    fn write(&mut self, tick: Tick, batch: &RecordBatch) -> std::io::Result<()> {
        let skip = batch.len().saturating_sub(self.records_max);
        let live = lock(&self.kept.live).clone().filter(|tx| tx.receiver_count() > 0);
        let mut made = Vec::with_capacity(batch.len() - skip);
        for r in batch.iter().skip(skip) {
            let mut v = crate::sink::record_json(tick, &r, self.ty);
            if let Some(text) = v["value"].as_str().filter(|t| t.len() > RECORD_TEXT_MAX) {
                let (short, _) = cut(text, RECORD_TEXT_MAX);
                let total = text.len();
                v["value"] = short.into();
                v["value_cut_from_bytes"] = total.into();
            }
            if let Some(key) = v["key"].as_str().filter(|k| k.len() > RECORD_TEXT_MAX) {
                let (short, _) = cut(key, RECORD_TEXT_MAX);
                let total = key.len();
                v["key"] = short.into();
                v["key_cut_from_bytes"] = total.into();
            }
            let text: Arc<str> = v.to_string().into();
            // JSON escapes can make a cut record a few times larger: the live channel (whose
            // slots a slow reader keeps) takes only records within the bound.
            if let Some(tx) = live.as_ref().filter(|_| text.len() <= LIVE_RECORD_BYTES_MAX) {
                let _ = tx.send(text.clone());
            }
            made.push(text);
        }
        let mut out = lock(&self.kept.output);
        for text in made {
            let n = text.len() + 16;
            out.push(text, n);
        }
        Ok(())
    }
}

impl DeadLetterSink for Arc<Kept> {
    fn write(&mut self, letters: &[DeadLetter]) -> std::io::Result<()> {
        self.dead_total.fetch_add(letters.len() as u64, Ordering::Relaxed);
        {
            let mut dead = lock(&self.dead);
            for d in letters {
                let kept = KeptDeadLetter::of(d);
                let n = kept.size();
                dead.push(kept, n);
            }
        }
        // One error line per stage and batch: how many it refused, and the first error.
        let mut i = 0;
        while i < letters.len() {
            let first = &letters[i];
            let n = letters[i..]
                .iter()
                .take_while(|d| d.stage == first.stage && d.batch_id == first.batch_id)
                .count();
            let (error, _) = cut(&first.error, RECORD_TEXT_MAX);
            self.error(
                first.batch_id,
                &first.stage,
                format!("{n} record(s) refused; the first (index {}): {error}", first.index),
            );
            i += n;
        }
        Ok(())
    }

    fn logs(&mut self, lines: &[UdfLogLine], dropped: u64) {
        let time_ms = now_ms();
        for l in lines {
            let (message, _) = cut(&l.message, RECORD_TEXT_MAX);
            self.keep_log(KeptLogLine {
                time_ms,
                batch: l.batch_id,
                stage: l.stage.clone(),
                udf: l.udf.clone(),
                level: l.level.to_owned(),
                kind: "log".into(),
                message,
            });
        }
        if dropped > 0 {
            self.logs_total.fetch_add(dropped, Ordering::Relaxed);
            self.logs_dropped_early.fetch_add(dropped, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_keeps_within_its_entries_and_bytes() {
        let mut r = Ring::new(3, 100);
        for i in 0..5 {
            r.push(i, 10);
        }
        assert_eq!((r.to_vec(), r.dropped()), (vec![2, 3, 4], 2));
        r.push(9, 85);
        assert_eq!((r.to_vec(), r.dropped()), (vec![4, 9], 4), "bytes make room too");
        r.push(7, 101);
        assert_eq!(
            (r.to_vec(), r.dropped()),
            (vec![4, 9], 5),
            "too big alone: not kept, counted"
        );
        assert_eq!(r.bytes(), 95);
    }

    fn report(batch_id: u64) -> BatchReport {
        BatchReport {
            batch_id,
            time_ms: batch_id as i64 * 1000,
            records_in: 1,
            records_out: None,
            stages: Vec::new(),
            processing_ms: 1.0,
            scheduling_delay_ms: 0.0,
            total_delay_ms: 1.0,
            dead_letters: 0,
            warm_instances: 0,
            kafka: None,
        }
    }

    fn ids(v: &[BatchReport]) -> Vec<u64> {
        v.iter().map(|r| r.batch_id).collect()
    }

    #[test]
    fn a_poller_gets_the_reports_after_its_last_also_across_a_run_from_scratch() {
        let q = Quotas::default();
        let first = Kept::new(&q);
        (1..=5).for_each(|b| first.push_report(&report(b)));
        assert_eq!(ids(&first.reports_after(Some(3), usize::MAX)), vec![4, 5]);
        assert_eq!(ids(&first.reports_after(None, 2)), vec![4, 5]);
        assert_eq!(ids(&first.reports_after(Some(5), 10)), Vec::<u64>::new());
        // The next run starts from batch 1 again, with the last run's reports carried over.
        first.event("stopped", None, "the run stopped");
        let second = Kept::new(&q);
        second.carry_over(&first);
        (1..=2).for_each(|b| second.push_report(&report(b)));
        assert_eq!(ids(&second.reports_after(Some(5), 10)), vec![1, 2]);
        assert_eq!(ids(&second.reports_after(Some(2), 10)), Vec::<u64>::new());
        assert_eq!(
            ids(&second.reports_after(Some(99), 3)),
            vec![5, 1, 2],
            "unknown: the newest"
        );
        let events = second.events();
        assert_eq!(
            (events.len(), events[0].kind.as_str(), events[0].batch),
            (1, "stopped", Some(5))
        );
    }

    #[test]
    fn udf_log_lines_are_bounded_in_bytes_and_counted() {
        let q = Quotas {
            udf_log_bytes_max: 10_000,
            ..Quotas::default()
        };
        let mut kept = Kept::new(&q);
        let line = |i: u64| UdfLogLine {
            stage: "stages[0].map".into(),
            batch_id: i,
            udf: "examples@1".into(),
            level: "info",
            message: "x".repeat(1000),
        };
        let lines: Vec<_> = (1..=50).map(line).collect();
        kept.logs(&lines, 7);
        let logs = kept.log_lines();
        assert_eq!((logs.total, logs.total - logs.dropped), (57, logs.lines.len() as u64));
        assert!(
            logs.lines.len() < 10 && logs.lines.last().unwrap().batch == 50,
            "the newest are kept"
        );
        // Refused records make one error line per stage and batch.
        let letter = |batch_id, index| DeadLetter {
            stage: "stages[0].map".into(),
            batch_id,
            index,
            key: None,
            value: "<b>bad</b>".into(),
            error: "no comma".into(),
        };
        kept.write(&[letter(51, 0), letter(51, 3), letter(52, 1)]).unwrap();
        let logs = kept.log_lines();
        let errors: Vec<_> = logs.lines.iter().filter(|l| l.kind == "error").collect();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].message.starts_with("2 record(s) refused") && errors[0].batch == 51);
    }
}
