//! Which charts the report has, and what each one shows.
//!
//! - `ingest_<metric>.png` for samples/s, CPU-s per 1M samples and peak RSS per active series:
//!   one group per profile;
//! - `storage_bytes_per_sample.png`: one bar per system;
//! - `query_p50_<range>.png` per query range, in the order ranges first appear: one group per
//!   query;
//! - `query_mix.png` when there is a query mix: one group per range and percentile (`24h p50`,
//!   `24h p99`, ...) in the order ranges first appear.
//!
//! File names depend only on the input, so a re-render overwrites the same files.

use crate::bars::{BarChart, BarSeries};
use crate::compare::{Comparison, Figures, P50};
use crate::schema::{Section, System};

/// A chart and where the report links it.
#[derive(Debug, Clone)]
pub struct Chart {
    pub section: Section,
    /// A file name inside the output directory.
    pub file: String,
    /// The image's alt text in report.md.
    pub alt: String,
    pub spec: BarChart,
}

pub fn plan(cmp: &Comparison) -> Vec<Chart> {
    let mut charts = Vec::new();
    if !cmp.ingest.is_empty() {
        let groups: Vec<String> = cmp.ingest.iter().map(|p| p.profile.clone()).collect();
        for m in 0..3 {
            let per_group: Vec<&Figures> = cmp.ingest.iter().map(|p| &p.figures[m]).collect();
            let metric = per_group[0].metric;
            let better = match metric.better {
                crate::stats::Better::Higher => "higher is better",
                crate::stats::Better::Lower => "lower is better",
            };
            charts.push(Chart {
                section: Section::Ingest,
                file: format!("ingest_{}.png", metric.key),
                alt: format!("ingest: {} per profile", metric.label),
                spec: BarChart {
                    title: format!("Ingest: {} ({better})", metric.label),
                    y_label: metric.label.to_owned(),
                    groups: groups.clone(),
                    series: series(&per_group),
                    format: metric.format,
                },
            });
        }
    }
    if let Some(storage) = &cmp.storage {
        let metric = storage.bytes_per_sample.metric;
        charts.push(Chart {
            section: Section::Storage,
            file: format!("storage_{}.png", metric.key),
            alt: "storage bytes per sample".to_owned(),
            spec: BarChart {
                title: "Storage: bytes per sample (lower is better)".to_owned(),
                y_label: metric.label.to_owned(),
                groups: vec!["on disk after ingest".to_owned()],
                series: series(&[&storage.bytes_per_sample]),
                format: metric.format,
            },
        });
    }
    let mut ranges: Vec<&str> = Vec::new();
    for q in &cmp.queries {
        if !ranges.contains(&q.range.as_str()) {
            ranges.push(&q.range);
        }
    }
    let mut files: Vec<String> = Vec::new();
    for range in ranges {
        let cases: Vec<_> = cmp.queries.iter().filter(|q| q.range == range).collect();
        let per_group: Vec<&Figures> = cases.iter().map(|q| &q.p50).collect();
        let mut file = format!("query_p50_{}.png", file_safe(range));
        if files.contains(&file) {
            file = format!("query_p50_{}_{}.png", file_safe(range), files.len());
        }
        files.push(file.clone());
        charts.push(Chart {
            section: Section::Queries,
            file,
            alt: format!("query p50 latency over {range}"),
            spec: BarChart {
                title: format!("Queries: p50 latency over {range} (lower is better)"),
                y_label: P50.label.to_owned(),
                groups: cases.iter().map(|q| q.name.clone()).collect(),
                series: series(&per_group),
                format: P50.format,
            },
        });
    }
    if !cmp.mix.is_empty() {
        let per_group: Vec<&Figures> = cmp.mix.iter().flat_map(|m| [&m.p50, &m.p99]).collect();
        let groups = per_group
            .iter()
            .zip(cmp.mix.iter().flat_map(|m| [&m.range, &m.range]))
            .map(|(f, range)| format!("{range} {}", f.metric.key))
            .collect();
        charts.push(Chart {
            section: Section::Mix,
            file: "query_mix.png".to_owned(),
            alt: "query mix p50 and p99 latency per range".to_owned(),
            spec: BarChart {
                title: "Query mix: p50 and p99 latency per range (lower is better)".to_owned(),
                y_label: "latency, ms".to_owned(),
                groups,
                series: series(&per_group),
                format: P50.format,
            },
        });
    }
    charts
}

/// One series per system present in any group, each with a value per group.
fn series(per_group: &[&Figures]) -> Vec<BarSeries> {
    System::ALL
        .into_iter()
        .filter(|&s| per_group.iter().any(|f| f.get(s).is_some()))
        .map(|system| BarSeries {
            system,
            values: per_group.iter().map(|f| f.get(system)).collect(),
        })
        .collect()
}

/// `s` with every character outside `[A-Za-z0-9_-]` replaced by `_`.
fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_safe("24h"), "24h");
        assert_eq!(file_safe("1d 2h/x"), "1d_2h_x");
    }
}
