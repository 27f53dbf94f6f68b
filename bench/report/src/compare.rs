//! The comparison drawn from the raw figures: medians per system, ratios against strata, and
//! every place where strata loses, each with its note.
//!
//! A ratio ("advantage") is oriented so that > 1 means strata is better: strata / peer for
//! throughput, peer / strata for costs and latencies. A loss is an advantage < 1.
//!
//! Notes are matched by section and key, most specific key first. For a loss in
//! - ingest: `"<profile> <metric> <peer>"`, `"<profile> <metric>"`, `"<profile>"`;
//! - storage: `"bytes_per_sample <peer>"`, `"bytes_per_sample"`;
//! - queries: `"<name> <range> <p50|p99> <peer>"`, `"<name> <range> <p50|p99>"`,
//!   `"<name> <range>"`; an answer not checked equal to Prometheus's:
//!   `"<name> <range> checked <system>"`, `"<name> <range> checked"`, `"<name> <range>"`;
//! - mix: `"<range> <p50|p99> <peer>"`, `"<range> <p50|p99>"`, `"<range>"` (the section, `mix`,
//!   already says it is the mix, so the key starts with the range).
//!
//! where `<metric>` is a [`Metric::key`]. Notes that match no loss are kept as other notes, so
//! nothing the harness wrote is dropped.

use crate::format;
use crate::schema::{MixRow, Note, Raw, Section, System};
use crate::stats::{Better, Spread};

/// A measured quantity: how it is named, written and compared.
#[derive(Debug)]
pub struct Metric {
    /// The name used in note keys and chart file names.
    pub key: &'static str,
    pub label: &'static str,
    pub better: Better,
    pub format: fn(f64) -> String,
}

pub const SAMPLES_PER_S: Metric = Metric {
    key: "samples_per_s",
    label: "samples/s",
    better: Better::Higher,
    format: format::si,
};
pub const CPU_PER_1M_SAMPLES: Metric = Metric {
    key: "cpu_s_per_1m_samples",
    label: "CPU-s per 1M samples",
    better: Better::Lower,
    format: format::sig,
};
pub const RSS_PER_SERIES: Metric = Metric {
    key: "peak_rss_per_series",
    label: "peak RSS bytes per active series",
    better: Better::Lower,
    format: format::sig,
};
pub const BYTES_PER_SAMPLE: Metric = Metric {
    key: "bytes_per_sample",
    label: "bytes per sample",
    better: Better::Lower,
    format: format::sig,
};
pub const P50: Metric = Metric {
    key: "p50",
    label: "p50 latency, ms",
    better: Better::Lower,
    format: format::sig,
};
pub const P99: Metric = Metric {
    key: "p99",
    label: "p99 latency, ms",
    better: Better::Lower,
    format: format::sig,
};

/// One metric measured on several systems, in [`System::ALL`] order.
#[derive(Debug, Clone)]
pub struct Figures {
    pub metric: &'static Metric,
    pub values: Vec<(System, Spread)>,
}

impl Figures {
    fn new(metric: &'static Metric) -> Figures {
        Figures {
            metric,
            values: Vec::new(),
        }
    }

    fn insert(&mut self, system: System, spread: Spread) {
        self.values.push((system, spread));
        self.values.sort_by_key(|(s, _)| *s);
    }

    pub fn get(&self, system: System) -> Option<Spread> {
        self.values
            .iter()
            .find(|(s, _)| *s == system)
            .map(|(_, v)| *v)
    }

    /// How many times better strata's median is than `peer`'s; `None` if either is absent or
    /// `peer` is strata itself.
    pub fn advantage(&self, peer: System) -> Option<f64> {
        if peer == System::Strata {
            return None;
        }
        let strata = self.get(System::Strata)?;
        let other = self.get(peer)?;
        Some(self.metric.better.advantage(strata.median, other.median))
    }
}

/// One ingest load profile across systems.
#[derive(Debug, Clone)]
pub struct IngestProfile {
    pub profile: String,
    /// In [`System::ALL`] order.
    pub active_series: Vec<(System, u64)>,
    /// Samples/s, CPU, RSS per series.
    pub figures: [Figures; 3],
}

#[derive(Debug, Clone)]
pub struct Storage {
    /// `(system, samples, bytes)` in [`System::ALL`] order.
    pub rows: Vec<(System, u64, u64)>,
    pub bytes_per_sample: Figures,
}

/// One query over one range across systems.
#[derive(Debug, Clone)]
pub struct QueryCase {
    pub name: String,
    pub query: String,
    pub range: String,
    pub step: String,
    pub p50: Figures,
    pub p99: Figures,
    /// Whether each system's answer was checked equal to Prometheus's.
    pub checked: Vec<(System, bool)>,
}

impl QueryCase {
    /// The key of this case in notes: `"<name> <range>"`.
    pub fn key(&self) -> String {
        format!("{} {}", self.name, self.range)
    }
}

/// The query mix over one range across systems.
#[derive(Debug, Clone)]
pub struct MixRange {
    pub range: String,
    pub step: String,
    /// The target rate, the same for every system.
    pub rate_qps: f64,
    pub duration_s: Option<f64>,
    /// One per system, in [`System::ALL`] order.
    pub rows: Vec<MixRow>,
    pub p50: Figures,
    pub p99: Figures,
}

/// A figure on which a peer beats strata.
#[derive(Debug, Clone)]
pub struct Loss {
    pub section: Section,
    /// Which row, as markdown: ``profile `node` ``, `` `sum_rate` over 24h ``.
    pub place: String,
    pub metric: &'static Metric,
    pub peer: System,
    pub strata: f64,
    pub peer_value: f64,
    pub advantage: f64,
    pub note: Option<String>,
}

/// A query whose answer on `system` was not checked equal to Prometheus's.
#[derive(Debug, Clone)]
pub struct Unchecked {
    pub place: String,
    pub system: System,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub ingest: Vec<IngestProfile>,
    pub storage: Option<Storage>,
    pub queries: Vec<QueryCase>,
    /// In the order ranges first appear in the input.
    pub mix: Vec<MixRange>,
    /// In table order.
    pub losses: Vec<Loss>,
    /// How many (figure, peer) pairs had both sides measured.
    pub compared: usize,
    pub unchecked: Vec<Unchecked>,
    /// Notes that explain no loss and no unchecked answer.
    pub other_notes: Vec<Note>,
}

impl Comparison {
    pub fn build(raw: &Raw) -> Comparison {
        let ingest = ingest_profiles(raw);
        let storage = storage(raw);
        let queries = query_cases(raw);
        let mix = mix_ranges(raw);
        let mut judge = Judge {
            notes: raw.notes.iter().map(|n| (n.clone(), false)).collect(),
            losses: Vec::new(),
            compared: 0,
        };
        for p in &ingest {
            let place = format!("profile {}", code(&p.profile));
            for figures in &p.figures {
                let keys = [
                    format!("{} {}", p.profile, figures.metric.key),
                    p.profile.clone(),
                ];
                judge.losses(Section::Ingest, &place, figures, &keys);
            }
        }
        if let Some(s) = &storage {
            let keys = [BYTES_PER_SAMPLE.key.to_owned()];
            judge.losses(Section::Storage, "all samples", &s.bytes_per_sample, &keys);
        }
        let mut unchecked = Vec::new();
        for q in &queries {
            let place = format!("{} over {}", code(&q.name), q.range);
            for figures in [&q.p50, &q.p99] {
                let keys = [format!("{} {}", q.key(), figures.metric.key), q.key()];
                judge.losses(Section::Queries, &place, figures, &keys);
            }
            for &(system, ok) in &q.checked {
                if !ok {
                    let checked = format!("{} checked", q.key());
                    let keys = [format!("{checked} {system}"), checked, q.key()];
                    let note = judge.note(Section::Queries, &keys);
                    unchecked.push(Unchecked {
                        place: place.clone(),
                        system,
                        note,
                    });
                }
            }
        }
        for m in &mix {
            let place = format!("mix over {}", m.range);
            for figures in [&m.p50, &m.p99] {
                let keys = [
                    format!("{} {}", m.range, figures.metric.key),
                    m.range.clone(),
                ];
                judge.losses(Section::Mix, &place, figures, &keys);
            }
        }
        Comparison {
            ingest,
            storage,
            queries,
            mix,
            losses: judge.losses,
            compared: judge.compared,
            unchecked,
            other_notes: judge
                .notes
                .into_iter()
                .filter(|(_, used)| !used)
                .map(|(n, _)| n)
                .collect(),
        }
    }
}

/// Compares figures with strata's and attaches notes, marking each note it uses.
struct Judge {
    notes: Vec<(Note, bool)>,
    losses: Vec<Loss>,
    compared: usize,
}

impl Judge {
    /// Records a loss for each peer that beats strata on `figures`. `keys` are the row's note
    /// keys, most specific first; the first is also tried with the peer's name appended.
    fn losses(&mut self, section: Section, place: &str, figures: &Figures, keys: &[String]) {
        for peer in System::ALL {
            let Some(advantage) = figures.advantage(peer) else {
                continue;
            };
            self.compared += 1;
            if advantage >= 1.0 {
                continue;
            }
            let mut candidates = vec![format!("{} {peer}", keys[0])];
            candidates.extend(keys.iter().cloned());
            let note = self.note(section, &candidates);
            self.losses.push(Loss {
                section,
                place: place.to_owned(),
                metric: figures.metric,
                peer,
                strata: figures.get(System::Strata).map_or(f64::NAN, |s| s.median),
                peer_value: figures.get(peer).map_or(f64::NAN, |s| s.median),
                advantage,
                note,
            });
        }
    }

    /// The text of the notes of `section` under the first of `keys` that has any, joined.
    fn note(&mut self, section: Section, keys: &[String]) -> Option<String> {
        for key in keys {
            let mut texts = Vec::new();
            for (note, used) in &mut self.notes {
                if note.section == section && note.key.trim() == key {
                    *used = true;
                    texts.push(note.text.trim().to_owned());
                }
            }
            if !texts.is_empty() {
                return Some(texts.join(" "));
            }
        }
        None
    }
}

fn ingest_profiles(raw: &Raw) -> Vec<IngestProfile> {
    let mut profiles: Vec<IngestProfile> = Vec::new();
    for row in &raw.ingest {
        let found = profiles.iter().position(|p| p.profile == row.profile);
        let i = found.unwrap_or_else(|| {
            profiles.push(IngestProfile {
                profile: row.profile.clone(),
                active_series: Vec::new(),
                figures: [
                    Figures::new(&SAMPLES_PER_S),
                    Figures::new(&CPU_PER_1M_SAMPLES),
                    Figures::new(&RSS_PER_SERIES),
                ],
            });
            profiles.len() - 1
        });
        let p = &mut profiles[i];
        p.active_series.push((row.system, row.active_series));
        p.active_series.sort_by_key(|(s, _)| *s);
        let series = row.active_series as f64;
        let [tput, cpu, rss] = &mut p.figures;
        // Runs are non-empty (schema invariant), so every spread exists.
        if let Some(s) = Spread::of(row.runs.iter().map(|r| r.samples_per_s)) {
            tput.insert(row.system, s);
        }
        if let Some(s) = Spread::of(row.runs.iter().map(|r| r.cpu_s_per_1m_samples)) {
            cpu.insert(row.system, s);
        }
        if let Some(s) = Spread::of(row.runs.iter().map(|r| r.peak_rss_bytes as f64 / series)) {
            rss.insert(row.system, s);
        }
    }
    profiles
}

fn storage(raw: &Raw) -> Option<Storage> {
    if raw.storage.is_empty() {
        return None;
    }
    let mut rows: Vec<(System, u64, u64)> = raw
        .storage
        .iter()
        .map(|r| (r.system, r.samples, r.bytes))
        .collect();
    rows.sort_by_key(|(s, _, _)| *s);
    let mut bytes_per_sample = Figures::new(&BYTES_PER_SAMPLE);
    for &(system, samples, bytes) in &rows {
        bytes_per_sample.insert(system, Spread::single(bytes as f64 / samples as f64));
    }
    Some(Storage {
        rows,
        bytes_per_sample,
    })
}

fn query_cases(raw: &Raw) -> Vec<QueryCase> {
    let mut cases: Vec<QueryCase> = Vec::new();
    for row in &raw.queries {
        let found = cases
            .iter()
            .position(|c| c.name == row.name && c.range == row.range);
        let i = found.unwrap_or_else(|| {
            cases.push(QueryCase {
                name: row.name.clone(),
                query: row.query.clone(),
                range: row.range.clone(),
                step: row.step.clone(),
                p50: Figures::new(&P50),
                p99: Figures::new(&P99),
                checked: Vec::new(),
            });
            cases.len() - 1
        });
        let c = &mut cases[i];
        if let Some(s) = Spread::of(row.runs.iter().map(|r| r.p50_ms)) {
            c.p50.insert(row.system, s);
        }
        if let Some(s) = Spread::of(row.runs.iter().map(|r| r.p99_ms)) {
            c.p99.insert(row.system, s);
        }
        c.checked.push((row.system, row.checked));
        c.checked.sort_by_key(|(s, _)| *s);
    }
    cases
}

fn mix_ranges(raw: &Raw) -> Vec<MixRange> {
    let mut ranges: Vec<MixRange> = Vec::new();
    for row in &raw.mix {
        let found = ranges.iter().position(|m| m.range == row.range);
        let i = found.unwrap_or_else(|| {
            ranges.push(MixRange {
                range: row.range.clone(),
                step: row.step.clone(),
                rate_qps: row.rate_qps,
                duration_s: row.duration_s,
                rows: Vec::new(),
                p50: Figures::new(&P50),
                p99: Figures::new(&P99),
            });
            ranges.len() - 1
        });
        let m = &mut ranges[i];
        m.p50.insert(row.system, Spread::single(row.p50_ms));
        m.p99.insert(row.system, Spread::single(row.p99_ms));
        m.rows.push(row.clone());
        m.rows.sort_by_key(|r| r.system);
    }
    ranges
}

/// `s` as a markdown code span, whatever backticks it holds.
pub fn code(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code("rate(x[5m])"), "`rate(x[5m])`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a"), "`` `a ``");
    }
}
