//! Reading and checking a job spec before anything runs. Every problem is reported at once, each
//! with its path in the spec (`stages[2].window.slide: 1500ms is not a multiple of the batch
//! interval 1s`), unknown fields included.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sluice_abi::UdfKind;

use super::plan::{JobPlan, PlannedReducer, PlannedStage, PlannedUdf};
use super::spec::{BuiltinReducer, JobSpec, Millis, ReduceSpec, SinkSpec, SourceSpec, StageSpec, UdfSpec, ValueType};
use crate::runtime::LoadedModule;

/// Where the job spec is documented, for error messages.
pub const JOB_SPEC_DOC: &str = "docs/job-spec.md";

/// One problem, at a path in the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// Where: `stages[2].window.slide`, or empty for the whole spec.
    pub path: String,
    /// What is wrong, and what to write instead where that helps.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// All the problems of a spec.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the job spec has {} problem(s) (see {JOB_SPEC_DOC}):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

/// Finds UDF modules by reference (`module@version`, `module@latest` or `module`).
pub trait ModuleResolver {
    /// The module, or why it cannot be had.
    fn resolve(&self, reference: &str) -> Result<Arc<LoadedModule>, String>;
}

const TOP_LEVEL: &[&str] = &[
    "name",
    "batch_interval",
    "source",
    "stages",
    "sink",
    "on_bad_record",
    "dead_letter",
    "modules",
    "checkpoint_interval",
    "max_refused",
];

fn join(prefix: &str, inner: &str) -> String {
    match (prefix.is_empty(), inner.is_empty() || inner == ".") {
        (_, true) => prefix.to_owned(),
        (true, false) => inner.to_owned(),
        (false, false) if inner.starts_with('[') => format!("{prefix}{inner}"),
        (false, false) => format!("{prefix}.{inner}"),
    }
}

fn field<T: DeserializeOwned>(v: &Value, path: &str, errors: &mut Vec<SpecError>) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(v) {
        Ok(t) => Some(t),
        Err(e) => {
            let inner = e.path().to_string();
            errors.push(SpecError {
                path: join(path, &inner),
                message: e.into_inner().to_string(),
            });
            None
        }
    }
}

/// A spec that did not parse: its problems, and as much of it as did parse (stages that did
/// not are `StageSpec::Unparsed`), so the checks can still report the rest.
#[derive(Debug)]
pub struct ParseFailure {
    /// The structural problems.
    pub errors: SpecErrors,
    /// The spec without the parts that failed, when its required fields parsed.
    pub partial: Option<Box<JobSpec>>,
}

/// Parses a JSON spec, reporting every structural problem (bad JSON, unknown or missing
/// fields, wrong types) with its path.
pub fn parse(text: &str) -> Result<JobSpec, SpecErrors> {
    parse_lenient(text, false).map_err(|f| f.errors)
}

/// Parses a YAML spec (the same fields as JSON), with the same checks.
pub fn parse_yaml(text: &str) -> Result<JobSpec, SpecErrors> {
    parse_lenient(text, true).map_err(|f| f.errors)
}

fn parse_lenient(text: &str, yaml: bool) -> Result<JobSpec, ParseFailure> {
    let fail = |message: String| ParseFailure {
        errors: SpecErrors(vec![SpecError {
            path: String::new(),
            message,
        }]),
        partial: None,
    };
    let value: Value = if yaml {
        serde_saphyr::from_str(text).map_err(|e| fail(format!("not valid YAML: {e}")))?
    } else {
        serde_json::from_str(text).map_err(|e| fail(format!("not valid JSON: {e}")))?
    };
    parse_value(&value)
}

/// Parses a spec file (YAML for `.yaml` and `.yml`, JSON otherwise), lets `prepare` adjust it
/// (paths), and checks it: every structural and semantic problem at once, with paths.
pub fn read_and_check(
    path: &std::path::Path,
    text: &str,
    resolver: &dyn ModuleResolver,
    prepare: impl Fn(&mut JobSpec),
) -> Result<JobPlan, SpecErrors> {
    let yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    check_text(text, yaml, resolver, prepare)
}

/// Parses spec text (YAML or JSON), lets `prepare` adjust it, and checks it: every structural
/// and semantic problem at once, with paths.
pub fn check_text(
    text: &str,
    yaml: bool,
    resolver: &dyn ModuleResolver,
    prepare: impl Fn(&mut JobSpec),
) -> Result<JobPlan, SpecErrors> {
    match parse_lenient(text, yaml) {
        Ok(mut spec) => {
            prepare(&mut spec);
            check(spec, resolver)
        }
        Err(ParseFailure {
            errors: SpecErrors(mut errors),
            partial,
        }) => {
            if let Some(mut spec) = partial {
                prepare(&mut spec);
                if let Err(SpecErrors(more)) = check(*spec, resolver) {
                    errors.extend(more);
                }
            }
            Err(SpecErrors(errors))
        }
    }
}

fn parse_value(value: &Value) -> Result<JobSpec, ParseFailure> {
    let Value::Object(obj) = value else {
        return Err(ParseFailure {
            errors: SpecErrors(vec![SpecError {
                path: String::new(),
                message: "a job spec is a JSON object".into(),
            }]),
            partial: None,
        });
    };
    let mut errors = Vec::new();
    for key in obj.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            errors.push(SpecError {
                path: key.clone(),
                message: format!("unknown field `{key}`, expected one of {}", TOP_LEVEL.join(", ")),
            });
        }
    }
    for required in ["name", "batch_interval", "source", "sink"] {
        if !obj.contains_key(required) {
            errors.push(SpecError {
                path: required.into(),
                message: format!("missing field `{required}`"),
            });
        }
    }
    let stages = check_fields(obj, &mut errors);
    if errors.is_empty() {
        let mut errors = Vec::new();
        return match field::<JobSpec>(value, "", &mut errors) {
            Some(spec) => Ok(spec),
            None => Err(ParseFailure {
                errors: SpecErrors(errors),
                partial: None,
            }),
        };
    }
    // The spec without what failed: known top-level fields, stages replaced by what parsed.
    let mut rest: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| TOP_LEVEL.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    rest.insert("stages".into(), Value::Array(Vec::new()));
    let partial = serde_json::from_value::<JobSpec>(Value::Object(rest))
        .ok()
        .map(|mut spec| {
            spec.stages = stages.into_iter().map(|s| s.unwrap_or(StageSpec::Unparsed)).collect();
            Box::new(spec)
        });
    Err(ParseFailure {
        errors: SpecErrors(errors),
        partial,
    })
}

/// Checks each known field on its own; returns each stage as parsed (`None` if it did not).
fn check_fields(obj: &Map<String, Value>, errors: &mut Vec<SpecError>) -> Vec<Option<StageSpec>> {
    if let Some(v) = obj.get("name") {
        field::<String>(v, "name", errors);
    }
    if let Some(v) = obj.get("batch_interval") {
        field::<Millis>(v, "batch_interval", errors);
    }
    if let Some(v) = obj.get("source") {
        field::<SourceSpec>(v, "source", errors);
    }
    if let Some(v) = obj.get("sink") {
        field::<SinkSpec>(v, "sink", errors);
    }
    if let Some(v) = obj.get("dead_letter") {
        field::<Option<SinkSpec>>(v, "dead_letter", errors);
    }
    if let Some(v) = obj.get("on_bad_record") {
        field::<crate::engine::context::BadRecordPolicy>(v, "on_bad_record", errors);
    }
    if let Some(v) = obj.get("checkpoint_interval") {
        field::<Option<Millis>>(v, "checkpoint_interval", errors);
    }
    if let Some(v) = obj.get("max_refused") {
        field::<Option<super::spec::RefusedLimits>>(v, "max_refused", errors);
    }
    if let Some(v) = obj.get("modules") {
        field::<std::collections::BTreeMap<String, String>>(v, "modules", errors);
    }
    match obj.get("stages") {
        Some(Value::Array(stages)) => {
            return stages
                .iter()
                .enumerate()
                .map(|(i, s)| field::<StageSpec>(s, &format!("stages[{i}]"), errors))
                .collect();
        }
        Some(_) => errors.push(SpecError {
            path: "stages".into(),
            message: "expected a list of stages".into(),
        }),
        None => {}
    }
    Vec::new()
}

/// What flows between stages, for the checks.
#[derive(Clone)]
struct Stream {
    value: ValueType,
    slide_ms: i64,
    /// Who set the slide (for messages).
    slide_from: Option<String>,
}

struct Checker<'a> {
    errors: Vec<SpecError>,
    /// A stage before did not parse: types and slides from here on are unknown, so those checks
    /// are skipped (they would only report the first problem again).
    unsure: bool,
    resolver: &'a dyn ModuleResolver,
    batch_ms: i64,
}

impl Checker<'_> {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SpecError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn slide_name(&self, stream: &Stream) -> String {
        match &stream.slide_from {
            None => format!("the batch interval {}", Millis(self.batch_ms)),
            Some(from) => format!("the slide {} of the stream {from} makes", Millis(stream.slide_ms)),
        }
    }

    /// Checks a window's length and slide; returns `(length, slide)` in ms.
    fn window(&mut self, path: &str, length: Millis, slide: Option<Millis>, stream: &Stream) -> Option<(i64, i64)> {
        let slide = slide.unwrap_or(Millis(stream.slide_ms));
        let mut ok = true;
        for (name, d) in [("length", length), ("slide", slide)] {
            if d.0 <= 0 {
                self.err(format!("{path}.{name}"), format!("must be positive, not {d}"));
                ok = false;
            } else if d.0 % stream.slide_ms != 0 && !self.unsure {
                let of = self.slide_name(stream);
                self.err(format!("{path}.{name}"), format!("{d} is not a multiple of {of}"));
                ok = false;
            }
        }
        ok.then_some((length.0, slide.0))
    }

    fn needs(&mut self, path: &str, what: &str, want: ValueType, stream: &Stream) {
        if stream.value != want && !self.unsure {
            self.err(
                path,
                format!(
                    "{what} needs {want} values, but the stream has {} values here; {}",
                    stream.value,
                    if want == ValueType::I64 {
                        "make numbers with parse_int or set_value, or declare a UDF's output with \"value\": \"i64\""
                    } else {
                        "this stage reads text"
                    }
                ),
            );
        }
    }

    fn udf(&mut self, path: &str, spec: &UdfSpec, kind: UdfKind) -> Option<PlannedUdf> {
        let module = match self.resolver.resolve(&spec.udf) {
            Ok(m) => m,
            Err(e) => {
                self.err(format!("{path}.udf"), e);
                return None;
            }
        };
        match module.manifest().get(&spec.function) {
            Some(u) if u.kind == kind => Some(PlannedUdf {
                module,
                function: spec.function.clone(),
            }),
            Some(u) => {
                self.err(
                    format!("{path}.function"),
                    format!(
                        "`{}` of {} is a {}, not a {kind}",
                        spec.function,
                        module.label(),
                        u.kind
                    ),
                );
                None
            }
            None => {
                let has = module.manifest().describe();
                self.err(
                    format!("{path}.function"),
                    format!(
                        "{} has no UDF named `{}` (it has: {has})",
                        module.label(),
                        spec.function
                    ),
                );
                None
            }
        }
    }

    fn reducer(
        &mut self,
        path: &str,
        spec: &ReduceSpec,
        stream: &Stream,
        windowed: bool,
    ) -> Option<(PlannedReducer, ValueType)> {
        match (&spec.builtin, &spec.udf, &spec.function) {
            (Some(b), None, None) => {
                if *b != BuiltinReducer::Count {
                    self.needs(
                        path,
                        &format!("the built-in {b:?}").to_lowercase(),
                        ValueType::I64,
                        stream,
                    );
                }
                if spec.value.is_some() {
                    self.err(
                        format!("{path}.value"),
                        "a built-in reducer's values are i64; `value` is only for UDFs",
                    );
                }
                if spec.inverse && !matches!(b, BuiltinReducer::Sum | BuiltinReducer::Avg | BuiltinReducer::Count) {
                    self.err(
                        format!("{path}.inverse"),
                        format!(
                            "{b:?} has no inverse; only sum, count and avg have one (or use a UDF that exports one)"
                        )
                        .to_lowercase(),
                    );
                }
                if spec.inverse && !windowed {
                    self.err(format!("{path}.inverse"), "an inverse is only used by windowed reduces");
                }
                Some((
                    PlannedReducer::Builtin {
                        builtin: *b,
                        inverse: spec.inverse,
                    },
                    if *b == BuiltinReducer::Avg {
                        ValueType::F64
                    } else {
                        ValueType::I64
                    },
                ))
            }
            (None, Some(udf), Some(function)) => {
                let u = self.udf(
                    path,
                    &UdfSpec {
                        udf: udf.clone(),
                        function: function.clone(),
                        value: None,
                    },
                    UdfKind::Reduce,
                )?;
                let has_inverse = u.module.manifest().get(function).is_some_and(|i| i.has_inverse);
                if spec.inverse && !has_inverse {
                    self.err(format!("{path}.inverse"), format!("{} exports no inverse of `{function}` (sluice:inverse:{function}); mark it #[reduce(inverse = ...)] or drop `inverse`", u.module.label()));
                }
                let value = spec.value.unwrap_or(ValueType::I64);
                self.needs(path, &format!("the reduce UDF `{function}`"), value, stream);
                Some((
                    PlannedReducer::Udf {
                        udf: u,
                        inverse: spec.inverse,
                    },
                    value,
                ))
            }
            (None, Some(_), None) => {
                self.err(
                    format!("{path}.function"),
                    "a reduce UDF needs `function`: the reduce function's name in the module",
                );
                None
            }
            _ => {
                self.err(path, "give either `builtin` (sum, min, max) or `udf` and `function`");
                None
            }
        }
    }
}

/// Checks a parsed spec and resolves its UDFs: the plan to run, or every problem found.
pub fn check(spec: JobSpec, resolver: &dyn ModuleResolver) -> Result<JobPlan, SpecErrors> {
    let batch_ms = spec.batch_interval.0;
    let mut c = Checker {
        errors: Vec::new(),
        unsure: false,
        resolver,
        batch_ms,
    };
    if batch_ms <= 0 {
        c.err(
            "batch_interval",
            format!("must be positive, not {}", spec.batch_interval),
        );
        return Err(SpecErrors(c.errors));
    }
    if spec.name.trim().is_empty() {
        c.err("name", "must not be empty");
    }
    if let Some(every) = spec.checkpoint_interval
        && (every.0 <= 0 || every.0 % batch_ms != 0)
    {
        c.err(
            "checkpoint_interval",
            format!(
                "{every} is not a positive multiple of the batch interval {}",
                Millis(batch_ms)
            ),
        );
    }
    if let Some(limits) = &spec.max_refused {
        if spec.on_bad_record != crate::engine::context::BadRecordPolicy::Skip {
            c.err(
                "max_refused",
                "limits refused records under `on_bad_record: skip`; under `fail` the first one stops the job",
            );
        }
        for (name, v) in [("per_batch", limits.per_batch), ("in_a_row", limits.in_a_row)] {
            if v == Some(0) {
                c.err(
                    format!("max_refused.{name}"),
                    "must be at least 1 (to stop at the first refused record, use `on_bad_record: fail`)",
                );
            }
        }
    }
    check_source(&mut c, &spec.source, "source");
    if http_sources(&spec.source) > 1 {
        c.err(
            "source.union",
            "a job takes records over HTTP through one `http` source: keep one",
        );
    }
    for (path, sink) in [("sink", Some(&spec.sink)), ("dead_letter", spec.dead_letter.as_ref())] {
        if let Some(SinkSpec::TextFiles { prefix, .. }) = sink
            && prefix.trim().is_empty()
        {
            c.err(format!("{path}.text_files.prefix"), "must not be empty");
        }
        if let Some(SinkSpec::Sqlite { table, .. }) = sink
            && let Err(e) = crate::sink::sqlite::check_table(table)
        {
            c.err(format!("{path}.sqlite.table"), e);
        }
        if let Some(SinkSpec::Kafka(k)) = sink {
            if k.bootstrap_servers.trim().is_empty() {
                c.err(
                    format!("{path}.kafka.bootstrap_servers"),
                    "name the brokers, as host:port[,host:port]",
                );
            }
            if k.topic.trim().is_empty() {
                c.err(format!("{path}.kafka.topic"), "name the topic to write");
            }
            if k.transactional_id.is_some() && !k.exactly_once {
                c.err(
                    format!("{path}.kafka.transactional_id"),
                    "a transactional id is for `exactly_once: true`: set it, or drop the id",
                );
            }
        }
    }
    if let Some(d) = &spec.dead_letter
        && !matches!(d, SinkSpec::Jsonl { .. })
    {
        c.err(
            "dead_letter",
            "refused records are written as JSON Lines: use {\"jsonl\": {\"path\": \"...\"}}",
        );
    }
    let mut stream = Stream {
        value: ValueType::Text,
        slide_ms: batch_ms,
        slide_from: None,
    };
    let mut stages = Vec::new();
    for (i, stage) in spec.stages.iter().enumerate() {
        let path = format!("stages[{i}].{}", stage.op_name());
        let planned = plan_stage(&mut c, &path, stage, &mut stream);
        if let Some(p) = planned {
            stages.push(p);
        }
    }
    if group_source(&spec.source) {
        for (i, stage) in spec.stages.iter().enumerate() {
            if stage.keeps_state() {
                c.err(
                    format!("stages[{i}].{}", stage.op_name()),
                    "a kafka source in consumer-group mode (`group_id`) splits the partitions between processes, and this stage's state would not move with them: use per-batch stages (map, filter, reduce_by_key, ...), or direct mode (no `group_id`) for windows and update_state_by_key",
                );
            }
        }
    }
    if !c.errors.is_empty() {
        return Err(SpecErrors(c.errors));
    }
    Ok(JobPlan {
        batch_ms,
        output_type: stream.value,
        output_slide_ms: stream.slide_ms,
        stages,
        spec,
    })
}

/// Whether a kafka source in consumer-group mode feeds the job.
fn group_source(source: &SourceSpec) -> bool {
    match source {
        SourceSpec::Kafka(k) => k.group_id.is_some(),
        SourceSpec::Union(parts) => parts.iter().any(group_source),
        _ => false,
    }
}

fn http_sources(source: &SourceSpec) -> usize {
    match source {
        SourceSpec::Http { .. } => 1,
        SourceSpec::Union(parts) => parts.iter().map(http_sources).sum(),
        _ => 0,
    }
}

fn check_source(c: &mut Checker<'_>, source: &SourceSpec, path: &str) {
    match source {
        SourceSpec::Union(parts) => {
            if parts.len() < 2 {
                c.err(format!("{path}.union"), "a union needs at least two sources");
            }
            for (i, p) in parts.iter().enumerate() {
                check_source(c, p, &format!("{path}.union[{i}]"));
            }
        }
        SourceSpec::Socket { port: 0, .. } => c.err(format!("{path}.socket.port"), "must not be 0"),
        SourceSpec::Kafka(k) => {
            if k.bootstrap_servers.trim().is_empty() {
                c.err(
                    format!("{path}.kafka.bootstrap_servers"),
                    "name the brokers, as host:port[,host:port]",
                );
            }
            if k.topics.is_empty() || k.topics.iter().any(|t| t.trim().is_empty()) {
                c.err(format!("{path}.kafka.topics"), "name at least one topic (none empty)");
            }
            if k.max_records_per_partition == Some(0) {
                c.err(format!("{path}.kafka.max_records_per_partition"), "must be positive");
            }
            if k.group_id.as_ref().is_some_and(|g| g.trim().is_empty()) {
                c.err(
                    format!("{path}.kafka.group_id"),
                    "name the consumer group, or drop `group_id` for direct mode",
                );
            }
        }
        SourceSpec::Nexmark(n) if n.events_per_batch(c.batch_ms) == 0 => c.err(
            format!("{path}.nexmark.events_per_s"),
            format!(
                "{} events/s make no event in a batch of {}: ask for at least one event a batch",
                n.rate(),
                Millis(c.batch_ms)
            ),
        ),
        SourceSpec::Generator {
            rate_per_s: Some(0), ..
        } => c.err(format!("{path}.generator.rate_per_s"), "must be positive"),
        SourceSpec::Generator {
            rate_per_s: Some(_),
            lines_per_batch: Some(_),
            ..
        } => c.err(
            format!("{path}.generator"),
            "give `rate_per_s` or `lines_per_batch`, not both",
        ),
        _ => {}
    }
}

fn plan_stage(c: &mut Checker<'_>, path: &str, stage: &StageSpec, stream: &mut Stream) -> Option<PlannedStage> {
    use ValueType::{I64, Text};
    let name = path.to_owned();
    let windowed = |c: &mut Checker<'_>, stream: &mut Stream, length, slide| {
        let w = c.window(path, length, slide, stream);
        if let Some((_, s)) = w {
            stream.slide_ms = s;
            stream.slide_from = Some(path.to_owned());
        }
        w
    };
    Some(match stage {
        StageSpec::Unparsed => {
            c.unsure = true;
            return None;
        }
        StageSpec::Map(u) | StageSpec::FlatMap(u) | StageSpec::Filter(u) => {
            let kind = match stage {
                StageSpec::Map(_) => UdfKind::Map,
                StageSpec::FlatMap(_) => UdfKind::FlatMap,
                _ => UdfKind::Filter,
            };
            if kind == UdfKind::Filter {
                if u.value.is_some() {
                    c.err(
                        format!("{path}.value"),
                        "a filter passes records through unchanged; `value` is for map and flat_map",
                    );
                }
            } else {
                stream.value = u.value.unwrap_or(Text);
            }
            let udf = c.udf(path, u, kind)?;
            PlannedStage::Udf { name, kind, udf }
        }
        StageSpec::Split(s) => {
            c.needs(path, "split", Text, stream);
            if s.sep.is_empty() {
                c.err(
                    format!("{path}.sep"),
                    "must not be empty (use split_whitespace to split at whitespace)",
                );
            }
            stream.value = if s.pairs { I64 } else { Text };
            PlannedStage::Builtin {
                name,
                stage: stage.clone(),
            }
        }
        StageSpec::SplitWhitespace(s) => {
            c.needs(path, "split_whitespace", Text, stream);
            stream.value = if s.pairs { I64 } else { Text };
            PlannedStage::Builtin {
                name,
                stage: stage.clone(),
            }
        }
        StageSpec::KeyBy(k) => {
            c.needs(path, "key_by", Text, stream);
            if k.sep.is_empty() {
                c.err(format!("{path}.sep"), "must not be empty");
            }
            if k.bucket.is_some_and(|b| b <= 0) {
                c.err(format!("{path}.bucket"), "must be positive");
            }
            PlannedStage::Builtin {
                name,
                stage: stage.clone(),
            }
        }
        StageSpec::Pick(f) => {
            c.needs(path, "pick", Text, stream);
            if f.sep.is_empty() {
                c.err(format!("{path}.sep"), "must not be empty");
            }
            PlannedStage::Builtin {
                name,
                stage: stage.clone(),
            }
        }
        StageSpec::FieldEquals(f) => {
            c.needs(path, "field_equals", Text, stream);
            if f.sep.is_empty() {
                c.err(format!("{path}.sep"), "must not be empty");
            }
            PlannedStage::Builtin {
                name,
                stage: stage.clone(),
            }
        }
        StageSpec::ParseInt(_) => {
            c.needs(path, "parse_int", Text, stream);
            stream.value = I64;
            PlannedStage::Builtin {
                name,
                stage: stage.clone(),
            }
        }
        StageSpec::SetValue(_) => {
            stream.value = I64;
            PlannedStage::Builtin {
                name,
                stage: stage.clone(),
            }
        }
        StageSpec::KeyByValue(_) => PlannedStage::Builtin {
            name,
            stage: stage.clone(),
        },
        StageSpec::CountByValue(_) => {
            stream.value = I64;
            PlannedStage::CountByValue { name }
        }
        StageSpec::ReduceByKey(r) | StageSpec::UpdateStateByKey(r) => {
            let (reducer, value) = c.reducer(path, r, stream, false)?;
            stream.value = value;
            match stage {
                StageSpec::ReduceByKey(_) => PlannedStage::ReduceByKey { name, reducer },
                _ => PlannedStage::UpdateStateByKey { name, reducer },
            }
        }
        StageSpec::Window(w) => {
            let (length_ms, slide_ms) = windowed(c, stream, w.length, w.slide)?;
            PlannedStage::Window {
                name,
                length_ms,
                slide_ms,
            }
        }
        StageSpec::CountByWindow(w) | StageSpec::CountByValueAndWindow(w) => {
            let (length_ms, slide_ms) = windowed(c, stream, w.length, w.slide)?;
            let by_value = matches!(stage, StageSpec::CountByValueAndWindow(_));
            stream.value = I64;
            PlannedStage::CountWindow {
                name,
                length_ms,
                slide_ms,
                by_value,
            }
        }
        StageSpec::ReduceByWindow(w) | StageSpec::ReduceByKeyAndWindow(w) => {
            let reduced = c.reducer(&format!("{path}.reduce"), &w.reduce, stream, true);
            if w.filter.is_some() && !w.reduce.inverse {
                c.err(
                    format!("{path}.filter"),
                    "a filter applies to windows with an inverse (set `\"inverse\": true` in `reduce`)",
                );
            }
            let (length_ms, slide_ms) = windowed(c, stream, w.length, w.slide)?;
            let (reducer, value) = reduced?;
            stream.value = value;
            let by_key = matches!(stage, StageSpec::ReduceByKeyAndWindow(_));
            PlannedStage::ReduceWindow {
                name,
                length_ms,
                slide_ms,
                reducer,
                filter: w.filter,
                by_key,
            }
        }
    })
}
