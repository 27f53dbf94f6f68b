//! The raw figures written by `bench/peers/run.sh`, parsed and validated.
//!
//! The input is walked as a `serde_json::Value` rather than derived with serde so that every
//! error names the exact field that is missing or wrong, as a path such as
//! `queries[3].runs[1].p99_ms`. Fields the report does not use are ignored, so the harness may
//! record more than this module reads.
//!
//! Invariants of a [`Raw`] returned by [`Raw::parse`]:
//! - every system is one of [`System::ALL`] and has an entry in `versions` (which may also name
//!   other tools);
//! - every `runs` array is non-empty and every measured figure is finite and > 0;
//! - in a query run, `p99_ms >= p50_ms`;
//! - rows are unique: `(profile, system)` in `ingest`, `system` in `storage`,
//!   `(name, range, system)` in `queries`, `(range, system)` in `mix`; rows of one `(name, range)`
//!   share `query` and `step`; rows of one range in `mix` share `step`, `rate_qps` and
//!   `duration_s`;
//! - in a mix row, `p50_ms <= p90_ms <= p99_ms <= max_ms` and `errors < queries` (the latencies are
//!   those of the queries that succeeded, so at least one did).

use std::fmt;

use serde_json::{Map, Value};

/// A system under comparison. The order of [`System::ALL`] is the order of table columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    /// The reference every ratio is taken against.
    Strata,
    Prometheus,
    VictoriaMetrics,
}

impl System {
    pub const ALL: [System; 3] = [System::Strata, System::Prometheus, System::VictoriaMetrics];

    /// The name used in the input and in the report.
    pub fn name(self) -> &'static str {
        match self {
            System::Strata => "strata",
            System::Prometheus => "prometheus",
            System::VictoriaMetrics => "victoria-metrics",
        }
    }

    fn parse(name: &str) -> Option<System> {
        System::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The report section a note belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Ingest,
    Storage,
    Queries,
    /// The query mix: the queries sent together, open loop, at one rate per range.
    Mix,
}

impl Section {
    pub const ALL: [Section; 4] = [
        Section::Ingest,
        Section::Storage,
        Section::Queries,
        Section::Mix,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Ingest => "ingest",
            Section::Storage => "storage",
            Section::Queries => "queries",
            Section::Mix => "mix",
        }
    }
}

/// The whole input file.
#[derive(Debug, Clone)]
pub struct Raw {
    pub started: String,
    pub command: String,
    pub quick: bool,
    pub machine: Machine,
    /// `(system or tool, version)`: systems in [`System::ALL`] order, then other tools by name.
    pub versions: Vec<(String, String)>,
    pub ingest: Vec<IngestRow>,
    pub storage: Vec<StorageRow>,
    pub queries: Vec<QueryRow>,
    /// Empty when the input has no `mix` (files written before the harness ran one).
    pub mix: Vec<MixRow>,
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub cpus: u64,
    pub cpu_model: String,
    pub mem_gib: f64,
    pub kernel: String,
}

/// One system ingesting one load profile, repeated `runs.len()` times.
#[derive(Debug, Clone)]
pub struct IngestRow {
    pub profile: String,
    pub system: System,
    pub active_series: u64,
    pub runs: Vec<IngestRun>,
}

#[derive(Debug, Clone, Copy)]
pub struct IngestRun {
    pub samples_per_s: f64,
    pub cpu_s_per_1m_samples: f64,
    pub peak_rss_bytes: u64,
}

/// What one system keeps on disk for the same samples.
#[derive(Debug, Clone)]
pub struct StorageRow {
    pub system: System,
    pub samples: u64,
    pub bytes: u64,
}

/// One query over one range on one system, repeated `runs.len()` times.
#[derive(Debug, Clone)]
pub struct QueryRow {
    pub name: String,
    pub query: String,
    pub range: String,
    pub step: String,
    pub system: System,
    /// The answer was checked equal to Prometheus's.
    pub checked: bool,
    pub runs: Vec<QueryRun>,
}

#[derive(Debug, Clone, Copy)]
pub struct QueryRun {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One system serving the query mix over one range, alone: the benchmark's queries as range
/// queries in equal shares, sent open loop at `rate_qps`. Latencies are those of the queries that
/// succeeded, counted from each query's scheduled send time.
#[derive(Debug, Clone)]
pub struct MixRow {
    pub range: String,
    pub step: String,
    /// The target rate, queries per second; the same for every system over one range.
    pub rate_qps: f64,
    /// How long queries were sent for (warm-up excluded), when the harness recorded it.
    pub duration_s: Option<f64>,
    pub system: System,
    /// Measured queries sent, failed ones included.
    pub queries: u64,
    /// Measured queries that failed.
    pub errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// An explanation attached to the rows of a section whose key it matches (see `compare`).
#[derive(Debug, Clone)]
pub struct Note {
    pub section: Section,
    pub key: String,
    pub text: String,
}

/// The input broke the schema: `field` is a path such as `ingest[0].runs[2].samples_per_s`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SchemaError {
    pub field: String,
    pub problem: String,
}

impl Raw {
    /// Parses and validates a decoded JSON document.
    pub fn parse(doc: &Value) -> Result<Raw, SchemaError> {
        let root = Node::root(doc);
        root.object()?;
        let machine = root.field("machine")?;
        let raw = Raw {
            started: root.field("started")?.string()?,
            command: root.field("command")?.string()?,
            quick: root.field("quick")?.boolean()?,
            machine: Machine {
                cpus: machine.field("cpus")?.count()?,
                cpu_model: machine.field("cpu_model")?.string()?,
                mem_gib: machine.field("mem_gib")?.positive()?,
                kernel: machine.field("kernel")?.string()?,
            },
            versions: parse_versions(&root.field("versions")?)?,
            ingest: root
                .field("ingest")?
                .items()?
                .iter()
                .map(parse_ingest)
                .collect::<Result<_, _>>()?,
            storage: root
                .field("storage")?
                .items()?
                .iter()
                .map(parse_storage)
                .collect::<Result<_, _>>()?,
            queries: root
                .field("queries")?
                .items()?
                .iter()
                .map(parse_query)
                .collect::<Result<_, _>>()?,
            mix: match root.optional("mix")? {
                Some(mix) => mix
                    .items()?
                    .iter()
                    .map(parse_mix)
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            },
            notes: match root.optional("notes")? {
                Some(notes) => notes
                    .items()?
                    .iter()
                    .map(parse_note)
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            },
        };
        raw.check_unique()?;
        raw.check_unique_mix()?;
        raw.check_versions()?;
        Ok(raw)
    }

    fn check_unique(&self) -> Result<(), SchemaError> {
        for (j, row) in self.ingest.iter().enumerate() {
            if let Some(i) = self.ingest[..j]
                .iter()
                .position(|r| r.profile == row.profile && r.system == row.system)
            {
                return Err(SchemaError::new(
                    format!("ingest[{j}]"),
                    format!(
                        "second row for profile {:?} and system {} (first at ingest[{i}])",
                        row.profile, row.system
                    ),
                ));
            }
        }
        for (j, row) in self.storage.iter().enumerate() {
            if let Some(i) = self.storage[..j]
                .iter()
                .position(|r| r.system == row.system)
            {
                return Err(SchemaError::new(
                    format!("storage[{j}]"),
                    format!(
                        "second row for system {} (first at storage[{i}])",
                        row.system
                    ),
                ));
            }
        }
        for (j, row) in self.queries.iter().enumerate() {
            let same_case = |r: &&QueryRow| r.name == row.name && r.range == row.range;
            if let Some(i) = self.queries[..j]
                .iter()
                .position(|r| same_case(&r) && r.system == row.system)
            {
                return Err(SchemaError::new(
                    format!("queries[{j}]"),
                    format!(
                        "second row for query {:?}, range {:?} and system {} (first at queries[{i}])",
                        row.name, row.range, row.system
                    ),
                ));
            }
            if let Some((i, first)) = self.queries[..j]
                .iter()
                .enumerate()
                .find(|(_, r)| same_case(r))
            {
                for (field, a, b) in [
                    ("query", &first.query, &row.query),
                    ("step", &first.step, &row.step),
                ] {
                    if a != b {
                        return Err(SchemaError::new(
                            format!("queries[{j}].{field}"),
                            format!(
                                "{b:?} differs from {a:?} in queries[{i}], a row of the same name and range"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// One row per `(range, system)`; the rows of one range share what makes them comparable.
    fn check_unique_mix(&self) -> Result<(), SchemaError> {
        for (j, row) in self.mix.iter().enumerate() {
            if let Some(i) = self.mix[..j]
                .iter()
                .position(|r| r.range == row.range && r.system == row.system)
            {
                return Err(SchemaError::new(
                    format!("mix[{j}]"),
                    format!(
                        "second row for range {:?} and system {} (first at mix[{i}])",
                        row.range, row.system
                    ),
                ));
            }
            let Some((i, first)) = self.mix[..j]
                .iter()
                .enumerate()
                .find(|(_, r)| r.range == row.range)
            else {
                continue;
            };
            let differs = |field: &str, a: String, b: String| {
                SchemaError::new(
                    format!("mix[{j}].{field}"),
                    format!("{b} differs from {a} in mix[{i}], a row of the same range"),
                )
            };
            if first.step != row.step {
                return Err(differs(
                    "step",
                    format!("{:?}", first.step),
                    format!("{:?}", row.step),
                ));
            }
            if first.rate_qps != row.rate_qps {
                let (a, b) = (first.rate_qps, row.rate_qps);
                return Err(differs("rate_qps", a.to_string(), b.to_string()));
            }
            if first.duration_s != row.duration_s {
                let show = |d: Option<f64>| d.map_or_else(|| "none".to_owned(), |d| d.to_string());
                let (a, b) = (show(first.duration_s), show(row.duration_s));
                return Err(differs("duration_s", a, b));
            }
        }
        Ok(())
    }

    fn check_versions(&self) -> Result<(), SchemaError> {
        let used = self
            .ingest
            .iter()
            .map(|r| (r.system, "ingest"))
            .chain(self.storage.iter().map(|r| (r.system, "storage")))
            .chain(self.queries.iter().map(|r| (r.system, "queries")))
            .chain(self.mix.iter().map(|r| (r.system, "mix")));
        for (system, section) in used {
            if self.version(system).is_none() {
                return Err(SchemaError::new(
                    format!("versions.{system}"),
                    format!("missing, but {system} has rows in {section}"),
                ));
            }
        }
        Ok(())
    }

    /// The version string recorded for `system`.
    pub fn version(&self, system: System) -> Option<&str> {
        self.versions
            .iter()
            .find(|(s, _)| s == system.name())
            .map(|(_, v)| v.as_str())
    }
}

/// Known systems first in [`System::ALL`] order, then other tools (a load generator, say) by name.
fn parse_versions(node: &Node<'_>) -> Result<Vec<(String, String)>, SchemaError> {
    let mut versions = Vec::new();
    for key in node.object()?.keys() {
        versions.push((key.clone(), node.field(key)?.string()?));
    }
    let rank = |name: &str| System::parse(name).map_or(System::ALL.len(), |s| s as usize);
    versions.sort_by(|(a, _), (b, _)| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    Ok(versions)
}

fn parse_ingest(node: &Node<'_>) -> Result<IngestRow, SchemaError> {
    Ok(IngestRow {
        profile: node.field("profile")?.string()?,
        system: node.field("system")?.system()?,
        active_series: node.field("active_series")?.count()?,
        runs: node
            .field("runs")?
            .runs()?
            .iter()
            .map(|run| {
                Ok(IngestRun {
                    samples_per_s: run.field("samples_per_s")?.positive()?,
                    cpu_s_per_1m_samples: run.field("cpu_s_per_1m_samples")?.positive()?,
                    peak_rss_bytes: run.field("peak_rss_bytes")?.count()?,
                })
            })
            .collect::<Result<_, SchemaError>>()?,
    })
}

fn parse_storage(node: &Node<'_>) -> Result<StorageRow, SchemaError> {
    Ok(StorageRow {
        system: node.field("system")?.system()?,
        samples: node.field("samples")?.count()?,
        bytes: node.field("bytes")?.count()?,
    })
}

fn parse_query(node: &Node<'_>) -> Result<QueryRow, SchemaError> {
    Ok(QueryRow {
        name: node.field("name")?.string()?,
        query: node.field("query")?.string()?,
        range: node.field("range")?.string()?,
        step: node.field("step")?.string()?,
        system: node.field("system")?.system()?,
        checked: node.field("checked")?.boolean()?,
        runs: node
            .field("runs")?
            .runs()?
            .iter()
            .map(|run| {
                let p50_ms = run.field("p50_ms")?.positive()?;
                let p99 = run.field("p99_ms")?;
                let p99_ms = p99.positive()?;
                if p99_ms < p50_ms {
                    return Err(SchemaError::new(
                        p99.path.clone(),
                        format!("{p99_ms} is below p50_ms {p50_ms}"),
                    ));
                }
                Ok(QueryRun { p50_ms, p99_ms })
            })
            .collect::<Result<_, SchemaError>>()?,
    })
}

fn parse_mix(node: &Node<'_>) -> Result<MixRow, SchemaError> {
    let queries = node.field("queries")?.count()?;
    let errors_node = node.field("errors")?;
    let errors = errors_node.whole()?;
    if errors >= queries {
        return Err(errors_node.error(format!(
            "{errors} of {queries} queries failed: no latency was measured"
        )));
    }
    // p50 <= p90 <= p99 <= max.
    let mut latencies = [0.0; 4];
    let keys = ["p50_ms", "p90_ms", "p99_ms", "max_ms"];
    for (k, key) in keys.iter().enumerate() {
        let field = node.field(key)?;
        let ms = field.positive()?;
        if k > 0 && ms < latencies[k - 1] {
            return Err(SchemaError::new(
                field.path.clone(),
                format!("{ms} is below {} {}", keys[k - 1], latencies[k - 1]),
            ));
        }
        latencies[k] = ms;
    }
    let [p50_ms, p90_ms, p99_ms, max_ms] = latencies;
    Ok(MixRow {
        range: node.field("range")?.string()?,
        step: node.field("step")?.string()?,
        rate_qps: node.field("rate_qps")?.positive()?,
        duration_s: node
            .optional("duration_s")?
            .map(|d| d.positive())
            .transpose()?,
        system: node.field("system")?.system()?,
        queries,
        errors,
        p50_ms,
        p90_ms,
        p99_ms,
        max_ms,
    })
}

fn parse_note(node: &Node<'_>) -> Result<Note, SchemaError> {
    let section = node.field("section")?;
    let name = section.string()?;
    Ok(Note {
        section: Section::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                SchemaError::new(
                    section.path.clone(),
                    format!("unknown section {name:?} (expected ingest, storage, queries or mix)"),
                )
            })?,
        key: node.field("key")?.string()?,
        text: node.field("text")?.string()?,
    })
}

fn known_systems() -> String {
    System::ALL.map(System::name).join(", ")
}

impl SchemaError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> SchemaError {
        SchemaError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// A value and the path that reached it, so that errors can name the field.
struct Node<'a> {
    path: String,
    value: &'a Value,
}

impl<'a> Node<'a> {
    fn root(value: &'a Value) -> Node<'a> {
        Node {
            path: String::new(),
            value,
        }
    }

    fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn error(&self, problem: impl Into<String>) -> SchemaError {
        let field = if self.path.is_empty() {
            "(top level)"
        } else {
            &self.path
        };
        SchemaError::new(field, problem)
    }

    fn expected(&self, what: &str) -> SchemaError {
        self.error(format!("expected {what}, found {}", kind(self.value)))
    }

    fn object(&self) -> Result<&'a Map<String, Value>, SchemaError> {
        self.value
            .as_object()
            .ok_or_else(|| self.expected("an object"))
    }

    /// A field that must be present and not null.
    fn field(&self, key: &str) -> Result<Node<'a>, SchemaError> {
        self.optional(key)?
            .ok_or_else(|| SchemaError::new(self.child(key), "missing"))
    }

    /// A field that may be absent or null.
    fn optional(&self, key: &str) -> Result<Option<Node<'a>>, SchemaError> {
        Ok(self
            .object()?
            .get(key)
            .filter(|v| !v.is_null())
            .map(|value| Node {
                path: self.child(key),
                value,
            }))
    }

    fn items(&self) -> Result<Vec<Node<'a>>, SchemaError> {
        let items = self
            .value
            .as_array()
            .ok_or_else(|| self.expected("an array"))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, value)| Node {
                path: format!("{}[{i}]", self.path),
                value,
            })
            .collect())
    }

    /// A non-empty array of repetitions.
    fn runs(&self) -> Result<Vec<Node<'a>>, SchemaError> {
        let runs = self.items()?;
        if runs.is_empty() {
            return Err(self.error("must hold at least one run"));
        }
        Ok(runs)
    }

    fn string(&self) -> Result<String, SchemaError> {
        let s = self
            .value
            .as_str()
            .ok_or_else(|| self.expected("a string"))?;
        if s.trim().is_empty() {
            return Err(self.error("must not be empty"));
        }
        Ok(s.to_owned())
    }

    fn boolean(&self) -> Result<bool, SchemaError> {
        self.value
            .as_bool()
            .ok_or_else(|| self.expected("true or false"))
    }

    fn system(&self) -> Result<System, SchemaError> {
        let name = self.string()?;
        System::parse(&name).ok_or_else(|| {
            self.error(format!(
                "unknown system {name:?} (expected {})",
                known_systems()
            ))
        })
    }

    /// A finite number > 0.
    fn positive(&self) -> Result<f64, SchemaError> {
        let x = self
            .value
            .as_f64()
            .ok_or_else(|| self.expected("a number"))?;
        if !(x.is_finite() && x > 0.0) {
            return Err(self.error(format!("must be a number > 0, found {x}")));
        }
        Ok(x)
    }

    /// A whole number > 0; written as an integer or as a float such as `4.8e6`.
    fn count(&self) -> Result<u64, SchemaError> {
        if let Some(n) = self.value.as_u64() {
            if n == 0 {
                return Err(self.error("must be > 0, found 0"));
            }
            return Ok(n);
        }
        let x = self.positive()?;
        if x.fract() != 0.0 || x > 2f64.powi(53) {
            return Err(self.error(format!("must be a whole number, found {x}")));
        }
        Ok(x as u64)
    }

    /// A whole number >= 0; written as an integer or as a float with no fraction.
    fn whole(&self) -> Result<u64, SchemaError> {
        if let Some(n) = self.value.as_u64() {
            return Ok(n);
        }
        let x = self
            .value
            .as_f64()
            .ok_or_else(|| self.expected("a number"))?;
        if !(x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= 2f64.powi(53)) {
            return Err(self.error(format!("must be a whole number >= 0, found {x}")));
        }
        Ok(x as u64)
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn minimal() -> Value {
        json!({
            "started": "2026-11-22T10:00:00Z", "command": "run.sh", "quick": true,
            "machine": {"cpus": 2, "cpu_model": "x", "mem_gib": 24, "kernel": "k"},
            "versions": {"strata": "abc", "loadgen": "0.1.0"},
            "ingest": [{"profile": "node", "system": "strata", "active_series": 4.8e6,
                        "runs": [{"samples_per_s": 1.0, "cpu_s_per_1m_samples": 1.0,
                                  "peak_rss_bytes": 1000}]}],
            "storage": [], "queries": []
        })
    }

    fn error_of(doc: &Value) -> String {
        Raw::parse(doc).unwrap_err().to_string()
    }

    #[test]
    fn minimal_document_parses_and_mix_and_notes_are_optional() {
        let raw = Raw::parse(&minimal()).unwrap();
        assert_eq!(raw.ingest[0].active_series, 4_800_000);
        assert!(raw.mix.is_empty());
        assert!(raw.notes.is_empty());
        assert_eq!(raw.version(System::Strata), Some("abc"));
        assert_eq!(raw.versions[1], ("loadgen".to_owned(), "0.1.0".to_owned()));
    }

    #[test]
    fn errors_name_the_field() {
        let mut doc = minimal();
        doc["ingest"][0]["runs"][0]
            .as_object_mut()
            .unwrap()
            .remove("cpu_s_per_1m_samples");
        assert_eq!(
            error_of(&doc),
            "ingest[0].runs[0].cpu_s_per_1m_samples: missing"
        );

        let mut doc = minimal();
        doc["machine"]["cpus"] = json!(1.5);
        assert_eq!(
            error_of(&doc),
            "machine.cpus: must be a whole number, found 1.5"
        );

        let mut doc = minimal();
        doc["ingest"][0]["system"] = json!("thanos");
        assert!(error_of(&doc).starts_with("ingest[0].system: unknown system \"thanos\""));

        let mut doc = minimal();
        doc["ingest"][0]["runs"] = json!([]);
        assert_eq!(error_of(&doc), "ingest[0].runs: must hold at least one run");

        assert_eq!(
            error_of(&json!([])),
            "(top level): expected an object, found an array"
        );
    }

    #[test]
    fn every_system_needs_a_version() {
        let mut doc = minimal();
        doc["storage"] = json!([{"system": "prometheus", "samples": 10, "bytes": 20}]);
        assert_eq!(
            error_of(&doc),
            "versions.prometheus: missing, but prometheus has rows in storage"
        );
    }
}
