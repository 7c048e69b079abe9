//! Admission: a job spec checked against its tenant's quotas and the operator's settings before
//! it is stored or started. Every size a spec can ask for is bounded here (records per batch
//! from any source, batch interval, stages, window span) and every socket it would dial must be
//! allow-listed; each problem names the spec field's path and the quota, like any other spec
//! problem.

use crate::job::SpecError;
use crate::job::spec::{JobSpec, Millis, SourceSpec, StageSpec};
use crate::source::generator::LINES_PER_BATCH_DEFAULT;
use crate::source::http::BUFFER_RECORDS_DEFAULT;

use super::quotas::Quotas;

/// Where server jobs may connect: the `host:port` pairs of `socket` sources
/// (`--allow-socket`), and the Kafka brokers of `kafka` sources (`--allow-kafka`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedSockets {
    /// For `socket` sources.
    pub sockets: Vec<(String, u16)>,
    /// For `kafka` sources: each bootstrap server must be one of these.
    pub kafka: Vec<(String, u16)>,
}

fn allows(list: &[(String, u16)], host: &str, port: u16) -> bool {
    list.iter().any(|(h, p)| h.eq_ignore_ascii_case(host) && *p == port)
}

fn describe(list: &[(String, u16)]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Kafka client properties a tenant may not set: they name local files, programs or plugins of
/// the server's host (or flood its log).
fn forbidden_kafka_property(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".location")
        || n.ends_with(".file")
        || n.ends_with(".path")
        || n.ends_with(".paths")
        || n.ends_with(".cmd")
        || n.contains("keytab")
        || n.starts_with("plugin")
        || n.contains("engine")
        || n == "debug"
        || n == "bootstrap.servers"
        || n == "metadata.broker.list"
        || n == "group.id"
        || n == "transactional.id"
}

/// Every problem of `spec` against quotas `q` and the operator's `sockets`.
pub fn problems(spec: &JobSpec, q: &Quotas, sockets: &AllowedSockets) -> Vec<SpecError> {
    let mut out = Vec::new();
    let mut err = |path: String, message: String| out.push(SpecError { path, message });
    let batch_ms = spec.batch_interval.0;
    if batch_ms > 0 && batch_ms < q.batch_interval_ms_min {
        err(
            "batch_interval".into(),
            format!(
                "{} is shorter than the quota batch_interval_ms_min ({} ms)",
                spec.batch_interval, q.batch_interval_ms_min
            ),
        );
    }
    if batch_ms > q.batch_interval_ms_max {
        err(
            "batch_interval".into(),
            format!(
                "{} is longer than the quota batch_interval_ms_max ({} ms)",
                spec.batch_interval, q.batch_interval_ms_max
            ),
        );
    }
    if spec.stages.len() > q.stages_max {
        err(
            "stages".into(),
            format!(
                "{} stages are more than the quota stages_max ({})",
                spec.stages.len(),
                q.stages_max
            ),
        );
    }
    if let crate::job::spec::SinkSpec::Kafka(k) = &spec.sink {
        kafka_client(
            &k.bootstrap_servers,
            k.properties.keys(),
            "sink.kafka",
            &mut err,
            sockets,
        );
        if k.transactional_id.is_some() {
            err(
                "sink.kafka.transactional_id".into(),
                "the server gives each job its own transactional id (sluice-tTENANT-jJOB): drop `transactional_id`"
                    .into(),
            );
        }
    }
    if batch_ms > 0 {
        let mut parts = Vec::new();
        source_records(&spec.source, "source", batch_ms, &mut parts, &mut err, sockets);
        let total: u128 = parts.iter().map(|(_, n, _)| *n).sum();
        if total > q.batch_records_max as u128 {
            let (path, n, how) = parts
                .iter()
                .max_by_key(|(_, n, _)| *n)
                .cloned()
                .expect("a total over the quota has a part");
            let whole = if parts.len() > 1 {
                format!(" (all sources together: {total})")
            } else {
                String::new()
            };
            err(
                path,
                format!(
                    "{n} records per batch ({how}){whole} is over the quota batch_records_max ({}): ask for fewer records per batch or a shorter batch interval",
                    q.batch_records_max
                ),
            );
        }
        for (i, stage) in spec.stages.iter().enumerate() {
            let Some(length) = window_length(stage) else { continue };
            let span = length.0 / batch_ms;
            if span > q.window_batches_max {
                err(
                    format!("stages[{i}].{}.length", stage.op_name()),
                    format!(
                        "a window of {length} spans {span} batches of {}, over the quota window_batches_max ({}): use a shorter window or a longer batch interval",
                        spec.batch_interval, q.window_batches_max
                    ),
                );
            }
        }
    }
    out
}

/// A Kafka client's brokers must be allow-listed, and its properties name nothing of the host.
fn kafka_client<'a>(
    servers: &str,
    properties: impl Iterator<Item = &'a String>,
    path: &str,
    err: &mut impl FnMut(String, String),
    sockets: &AllowedSockets,
) {
    for server in servers.split(',').map(str::trim) {
        let ok = server
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_start_matches('[').trim_end_matches(']'), p.parse().ok()?)))
            .is_some_and(|(h, p)| allows(&sockets.kafka, h, p));
        if !ok {
            err(
                format!("{path}.bootstrap_servers"),
                format!(
                    "the server may not connect to the broker {server:?}: the operator allows Kafka brokers {} (sluice serve --allow-kafka HOST:PORT)",
                    describe(&sockets.kafka)
                ),
            );
        }
    }
    for name in properties.filter(|n| forbidden_kafka_property(n)) {
        err(
            format!("{path}.properties.{name}"),
            "this client property is not for tenants: it names files, programs or plugins of the server's host, or what Sluice sets itself".into(),
        );
    }
}

fn window_length(stage: &StageSpec) -> Option<Millis> {
    match stage {
        StageSpec::Window(w) | StageSpec::CountByWindow(w) | StageSpec::CountByValueAndWindow(w) => Some(w.length),
        StageSpec::ReduceByWindow(w) | StageSpec::ReduceByKeyAndWindow(w) => Some(w.length),
        _ => None,
    }
}

/// The records per batch each part of a source can give, `(path, records, how)`.
fn source_records(
    source: &SourceSpec,
    path: &str,
    batch_ms: i64,
    parts: &mut Vec<(String, u128, String)>,
    err: &mut impl FnMut(String, String),
    sockets: &AllowedSockets,
) {
    match source {
        SourceSpec::Generator {
            rate_per_s: Some(rate), ..
        } => parts.push((
            format!("{path}.generator.rate_per_s"),
            *rate as u128 * batch_ms as u128 / 1000,
            format!("{rate} lines/s x {}", Millis(batch_ms)),
        )),
        SourceSpec::Generator { lines_per_batch, .. } => {
            let n = lines_per_batch.unwrap_or(LINES_PER_BATCH_DEFAULT);
            parts.push((
                format!("{path}.generator.lines_per_batch"),
                n as u128,
                "lines_per_batch".into(),
            ));
        }
        SourceSpec::Nexmark(n) => {
            parts.push((
                format!("{path}.nexmark.events_per_s"),
                n.events_per_batch(batch_ms) as u128,
                format!("{} events/s x {}", n.rate(), Millis(batch_ms)),
            ));
        }
        SourceSpec::Http { buffer_records } => {
            let n = buffer_records.unwrap_or(BUFFER_RECORDS_DEFAULT);
            parts.push((
                format!("{path}.http.buffer_records"),
                n as u128,
                "buffer_records".into(),
            ));
        }
        SourceSpec::Socket { host, port } => {
            if !allows(&sockets.sockets, host, *port) {
                err(
                    format!("{path}.socket"),
                    format!(
                        "the server may not connect to {host}:{port}: the operator allows sockets to {} (sluice serve --allow-socket HOST:PORT)",
                        describe(&sockets.sockets)
                    ),
                );
            }
        }
        SourceSpec::Kafka(k) => {
            kafka_client(
                &k.bootstrap_servers,
                k.properties.keys(),
                &format!("{path}.kafka"),
                err,
                sockets,
            );
            let per_partition = k
                .max_records_per_partition
                .unwrap_or(crate::source::kafka::MAX_RECORDS_PER_PARTITION_DEFAULT);
            parts.push((
                format!("{path}.kafka.max_records_per_partition"),
                per_partition as u128,
                "max_records_per_partition (per partition; a topic's partitions add up)".into(),
            ));
        }
        SourceSpec::Union(sources) => {
            for (i, s) in sources.iter().enumerate() {
                source_records(s, &format!("{path}.union[{i}]"), batch_ms, parts, err, sockets);
            }
        }
        SourceSpec::Batches { .. } | SourceSpec::Directory { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> JobSpec {
        crate::job::parse(&v.to_string()).unwrap()
    }

    fn paths(p: &[SpecError]) -> Vec<&str> {
        p.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn kafka_sinks_need_allowed_brokers_and_get_their_transactional_id_from_the_server() {
        let allowed = AllowedSockets {
            sockets: Vec::new(),
            kafka: vec![("127.0.0.1".into(), 9092)],
        };
        let job = |sink: serde_json::Value| {
            spec(serde_json::json!({
                "name": "k", "batch_interval": "1s",
                "source": { "generator": { "format": "words" } },
                "sink": { "kafka": sink }
            }))
        };
        let ok =
            job(serde_json::json!({ "bootstrap_servers": "127.0.0.1:9092", "topic": "out", "exactly_once": true }));
        assert!(problems(&ok, &Quotas::default(), &allowed).is_empty());
        let bad = job(serde_json::json!({
            "bootstrap_servers": "10.0.0.1:9092", "topic": "out", "exactly_once": true,
            "transactional_id": "sluice-t1-j1",
            "properties": { "ssl.key.location": "/etc/shadow", "transactional.id": "x" }
        }));
        let p = problems(&bad, &Quotas::default(), &allowed);
        assert_eq!(
            paths(&p),
            [
                "sink.kafka.bootstrap_servers",
                "sink.kafka.properties.ssl.key.location",
                "sink.kafka.properties.transactional.id",
                "sink.kafka.transactional_id"
            ],
            "{p:?}"
        );
    }

    #[test]
    fn kafka_sources_need_allowed_brokers_and_name_no_local_files() {
        let allowed = AllowedSockets {
            sockets: Vec::new(),
            kafka: vec![("127.0.0.1".into(), 9092)],
        };
        let job = |servers: &str, properties: serde_json::Value| {
            spec(serde_json::json!({
                "name": "k", "batch_interval": "1s",
                "source": { "kafka": { "bootstrap_servers": servers, "topics": ["t"], "properties": properties } },
                "sink": { "print": {} }
            }))
        };
        let ok = job(
            "127.0.0.1:9092",
            serde_json::json!({ "security.protocol": "sasl_plaintext", "sasl.username": "u" }),
        );
        assert_eq!(paths(&problems(&ok, &Quotas::default(), &allowed)), Vec::<&str>::new());
        let p = problems(
            &job(
                "127.0.0.1:9092,10.0.0.1:9092",
                serde_json::json!({ "ssl.ca.location": "/etc/passwd", "sasl.kerberos.kinit.cmd": "rm -rf /", "plugin.library.paths": "x" }),
            ),
            &Quotas::default(),
            &allowed,
        );
        assert_eq!(
            paths(&p),
            [
                "source.kafka.bootstrap_servers",
                "source.kafka.properties.plugin.library.paths",
                "source.kafka.properties.sasl.kerberos.kinit.cmd",
                "source.kafka.properties.ssl.ca.location"
            ],
            "{p:?}"
        );
        assert!(
            p[0].message.contains("10.0.0.1:9092") && p[0].message.contains("--allow-kafka"),
            "{}",
            p[0].message
        );
        // Over the quota: records a batch may take per partition.
        let q = Quotas {
            batch_records_max: 10,
            ..Quotas::default()
        };
        let p = problems(&job("127.0.0.1:9092", serde_json::json!({})), &q, &allowed);
        assert_eq!(paths(&p), ["source.kafka.max_records_per_partition"], "{p:?}");
    }

    #[test]
    fn every_size_a_spec_asks_for_is_bounded_by_a_named_quota() {
        let q = Quotas::default();
        let huge = spec(serde_json::json!({
            "name": "x", "batch_interval": "1ms",
            "source": { "generator": { "format": "words", "rate_per_s": 10_000_000_000_000u64 } },
            "stages": [ { "window": { "length": "30d" } } ],
            "sink": { "print": {} }
        }));
        let p = problems(&huge, &q, &AllowedSockets::default());
        assert_eq!(
            paths(&p),
            [
                "batch_interval",
                "source.generator.rate_per_s",
                "stages[0].window.length"
            ],
            "{p:?}"
        );
        assert!(p[1].message.contains("batch_records_max"), "{}", p[1].message);
        assert!(p[2].message.contains("window_batches_max"), "{}", p[2].message);

        let many = spec(serde_json::json!({
            "name": "x", "batch_interval": "1s", "source": { "http": { "buffer_records": 2_000_000 } },
            "stages": (0..65).map(|_| serde_json::json!({ "parse_int": {} })).collect::<Vec<_>>(),
            "sink": { "print": {} }
        }));
        assert_eq!(
            paths(&problems(&many, &q, &AllowedSockets::default())),
            ["stages", "source.http.buffer_records"]
        );
    }

    #[test]
    fn sockets_must_be_allow_listed() {
        let s = spec(serde_json::json!({
            "name": "x", "batch_interval": "1s",
            "source": { "union": [ { "socket": { "host": "10.0.0.1", "port": 22 } }, { "socket": { "host": "127.0.0.1", "port": 9999 } } ] },
            "sink": { "print": {} }
        }));
        let allowed = AllowedSockets {
            sockets: vec![("127.0.0.1".into(), 9999)],
            kafka: Vec::new(),
        };
        let p = problems(&s, &Quotas::default(), &allowed);
        assert_eq!(paths(&p), ["source.union[0].socket"]);
        assert!(p[0].message.contains("127.0.0.1:9999"), "{}", p[0].message);
    }
}
