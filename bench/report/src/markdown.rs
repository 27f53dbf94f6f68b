//! Writes `report.md`: header, one section per part of the benchmark with its tables and charts,
//! then every loss with its note, then the notes that explain no loss.
//!
//! Every text that comes from the input passes through [`Table`] or [`code`] before it reaches
//! the page, so a `|` in a PromQL matcher or a note cannot break a table.

use std::fmt::Write as _;

use crate::charts::Chart;
use crate::compare::{Comparison, Figures, Storage, code};
use crate::format::{self, spread, thousands};
use crate::schema::{Raw, Section, System};
use crate::stats::Better;

const LOSSES_ANCHOR: &str = "#where-strata-loses";

pub fn render(raw: &Raw, raw_name: &str, cmp: &Comparison, charts: &[Chart]) -> String {
    let mut out = String::new();
    header(&mut out, raw, raw_name, cmp);
    ingest(&mut out, cmp);
    images(&mut out, charts, Section::Ingest);
    storage(&mut out, cmp);
    images(&mut out, charts, Section::Storage);
    queries(&mut out, cmp);
    images(&mut out, charts, Section::Queries);
    unchecked(&mut out, cmp);
    mix(&mut out, cmp);
    images(&mut out, charts, Section::Mix);
    losses(&mut out, cmp);
    other_notes(&mut out, cmp);
    out
}

fn header(out: &mut String, raw: &Raw, raw_name: &str, cmp: &Comparison) {
    let m = &raw.machine;
    let mode = if raw.quick {
        "quick: fewer and shorter runs, indicative only"
    } else {
        "full"
    };
    let mut t = Table::new(&["", ""], &[false, false]);
    t.row(vec!["started".into(), raw.started.clone()]);
    t.row(vec!["command".into(), code(&raw.command)]);
    t.row(vec!["mode".into(), mode.into()]);
    t.row(vec![
        "machine".into(),
        format!(
            "{} CPU{} ({}), {} GiB memory, kernel {}",
            m.cpus,
            if m.cpus == 1 { "" } else { "s" },
            m.cpu_model,
            format::trim_zeros(&format::sig(m.mem_gib)),
            m.kernel
        ),
    ]);
    for (system, version) in &raw.versions {
        t.row(vec![format!("{system} version"), code(version)]);
    }
    t.row(vec!["raw figures".into(), code(raw_name)]);

    out.push_str("# strata peer benchmark\n\n");
    t.write(out);
    let _ = write!(
        out,
        "\nEach figure is the median of its runs, followed by the min–max spread in parentheses \
         when there was more than one run. Each ratio compares a peer with strata and is oriented \
         so that **> 1 means strata is better** and < 1 means strata loses; a loss is shown in \
         bold (**0.84x**) and listed under [Where strata loses]({LOSSES_ANCHOR}) with its note.\n\n"
    );
    let n = cmp.losses.len();
    let _ = if cmp.compared == 0 {
        writeln!(
            out,
            "No figure of strata and a peer can be compared in this run.\n"
        )
    } else if n == 0 {
        writeln!(
            out,
            "strata is at least as good as the peer in all {} comparisons.\n",
            cmp.compared
        )
    } else {
        writeln!(
            out,
            "**strata loses {n} of {} comparisons** (see [Where strata loses]({LOSSES_ANCHOR})).\n",
            cmp.compared
        )
    };
}

fn ingest(out: &mut String, cmp: &Comparison) {
    out.push_str("## Ingest\n\n");
    if cmp.ingest.is_empty() {
        out.push_str("No ingest figures in this run.\n\n");
        return;
    }
    out.push_str(
        "Ratio columns compare the row's system with strata, oriented so that > 1 means strata \
         is better: strata ÷ peer for samples/s, peer ÷ strata for CPU and memory. **Bold** \
         marks a loss for strata. Peak RSS is divided by the profile's active series.\n\n",
    );
    let systems = present(cmp.ingest.iter().flat_map(|p| p.figures.iter()));
    for p in &cmp.ingest {
        let series: Vec<u64> = p.active_series.iter().map(|(_, n)| *n).collect();
        let series = if series.windows(2).all(|w| w[0] == w[1]) {
            format!("{} active series", thousands(series[0] as i64))
        } else {
            let each: Vec<String> = p
                .active_series
                .iter()
                .map(|(s, n)| format!("{s} {}", thousands(*n as i64)))
                .collect();
            format!("active series: {}", each.join(", "))
        };
        let _ = writeln!(out, "### Profile {}: {series}\n", code(&p.profile));

        let [tput, cpu, rss] = &p.figures;
        let mut t = Table::new(
            &[
                "system",
                "runs",
                "samples/s",
                "CPU-s per 1M samples",
                "peak RSS bytes per active series",
                "samples/s ratio",
                "CPU ratio",
                "RSS ratio",
            ],
            &[false, true, true, true, true, true, true, true],
        );
        for &system in &systems {
            let runs = tput
                .get(system)
                .map_or_else(|| "not run".into(), |s| s.runs.to_string());
            let mut row = vec![system.to_string(), runs];
            row.extend(p.figures.iter().map(|f| value(f, system)));
            row.extend([tput, cpu, rss].map(|f| ratio_cell(f, system)));
            t.row(row);
        }
        t.write(out);
        out.push('\n');
    }
}

fn storage(out: &mut String, cmp: &Comparison) {
    out.push_str("## Storage\n\n");
    let Some(Storage {
        rows,
        bytes_per_sample,
    }) = &cmp.storage
    else {
        out.push_str("No storage figures in this run.\n\n");
        return;
    };
    out.push_str(
        "Bytes on disk divided by the samples stored. The ratio is peer ÷ strata, so > 1 means \
         strata stores the samples in less space; **bold** marks a loss.\n\n",
    );
    let mut t = Table::new(
        &["system", "samples", "bytes", "bytes per sample", "ratio"],
        &[false, true, true, true, true],
    );
    for &(system, samples, bytes) in rows {
        t.row(vec![
            system.to_string(),
            thousands(samples as i64),
            thousands(bytes as i64),
            value(bytes_per_sample, system),
            ratio_cell(bytes_per_sample, system),
        ]);
    }
    t.write(out);
    out.push('\n');
}

fn queries(out: &mut String, cmp: &Comparison) {
    out.push_str("## Queries\n\n");
    if cmp.queries.is_empty() {
        out.push_str("No query figures in this run.\n\n");
        return;
    }
    let mut legend = Table::new(&["query", "PromQL"], &[false, false]);
    let mut seen: Vec<&str> = Vec::new();
    for q in &cmp.queries {
        if !seen.contains(&q.name.as_str()) {
            seen.push(&q.name);
            legend.row(vec![code(&q.name), code(&q.query)]);
        }
    }
    legend.write(out);
    out.push('\n');

    let systems = present(cmp.queries.iter().flat_map(|q| [&q.p50, &q.p99]));
    let peers: Vec<System> = systems
        .iter()
        .copied()
        .filter(|&s| s != System::Strata)
        .collect();
    out.push_str(
        "Latencies in milliseconds. Ratio columns are peer ÷ strata for p50 · p99, so > 1 means \
         strata answers faster; **bold** marks a loss. \"checked\" tells whether each system's \
         answer was checked equal to Prometheus's.\n\n",
    );
    let mut head: Vec<String> = vec!["query".into(), "range".into(), "step".into()];
    let mut right = vec![false, false, false];
    for s in &systems {
        head.extend([format!("{s} p50"), format!("{s} p99")]);
        right.extend([true, true]);
    }
    for s in &peers {
        head.push(format!("{s} ÷ strata (p50 · p99)"));
        right.push(true);
    }
    head.push("checked".into());
    right.push(false);
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    let mut t = Table::new(&head, &right);
    for q in &cmp.queries {
        let mut row = vec![code(&q.name), q.range.clone(), q.step.clone()];
        for &s in &systems {
            row.extend([value(&q.p50, s), value(&q.p99, s)]);
        }
        for &s in &peers {
            row.push(format!(
                "{} · {}",
                ratio_cell(&q.p50, s),
                ratio_cell(&q.p99, s)
            ));
        }
        let checked: Vec<(System, bool)> = q
            .checked
            .iter()
            .copied()
            .filter(|(s, _)| *s != System::Prometheus)
            .collect();
        let word = |ok: bool| if ok { "yes" } else { "**no**" };
        row.push(match checked.as_slice() {
            [] => "—".into(),
            [(System::Strata, ok)] => word(*ok).into(),
            many => many
                .iter()
                .map(|(s, ok)| format!("{s} {}", word(*ok)))
                .collect::<Vec<_>>()
                .join(", "),
        });
        t.row(row);
    }
    t.write(out);
    out.push('\n');
}

fn unchecked(out: &mut String, cmp: &Comparison) {
    if cmp.unchecked.is_empty() {
        return;
    }
    out.push_str("### Answers not checked equal to Prometheus's\n\n");
    let mut t = Table::new(&["query", "system", "note"], &[false, false, false]);
    for u in &cmp.unchecked {
        t.row(vec![
            u.place.clone(),
            u.system.to_string(),
            note_cell(u.note.as_deref()),
        ]);
    }
    t.write(out);
    out.push('\n');
}

fn mix(out: &mut String, cmp: &Comparison) {
    out.push_str("## Query mix\n\n");
    if cmp.mix.is_empty() {
        out.push_str("No query mix in this run.\n\n");
        return;
    }
    out.push_str(
        "Each system alone serves the benchmark's queries as range queries over the range, in \
         equal shares, sent open loop at a fixed rate (`strata-loadgen query-mix`) after \
         unmeasured warm-up queries. The rate is the same for every system over a range. \
         Latency counts from each query's scheduled send time, so a system that falls behind \
         shows it as latency rather than as a lower rate. Latencies in milliseconds, of the \
         queries that succeeded; the ratio columns are peer ÷ strata, so > 1 means strata \
         answers faster; **bold** marks a loss.\n\n",
    );
    for m in &cmp.mix {
        let length = m.duration_s.map_or_else(String::new, |d| {
            format!(
                ", {} s of queries per system",
                format::trim_zeros(&format::sig(d))
            )
        });
        let _ = writeln!(
            out,
            "### Mix over {} (step {}{length})\n",
            code(&m.range),
            code(&m.step)
        );
        let mut t = Table::new(
            &[
                "system",
                "rate, queries/s",
                "queries",
                "p50",
                "p90",
                "p99",
                "max",
                "p50 ratio",
                "p99 ratio",
            ],
            &[false, true, true, true, true, true, true, true, true],
        );
        for row in &m.rows {
            let mut queries = thousands(row.queries as i64);
            if row.errors > 0 {
                let _ = write!(queries, " (**{} failed**)", thousands(row.errors as i64));
            }
            t.row(vec![
                row.system.to_string(),
                format::trim_zeros(&format::sig(row.rate_qps)),
                queries,
                format::sig(row.p50_ms),
                format::sig(row.p90_ms),
                format::sig(row.p99_ms),
                format::sig(row.max_ms),
                ratio_cell(&m.p50, row.system),
                ratio_cell(&m.p99, row.system),
            ]);
        }
        t.write(out);
        out.push('\n');
    }
}

fn losses(out: &mut String, cmp: &Comparison) {
    out.push_str("## Where strata loses\n\n");
    if cmp.compared == 0 {
        out.push_str("No figure of strata and a peer can be compared in this run.\n\n");
        return;
    }
    if cmp.losses.is_empty() {
        out.push_str(
            "Nowhere: strata is at least as good as every peer on every figure above.\n\n",
        );
        return;
    }
    out.push_str(
        "Every figure on which a peer beats strata, with the note the benchmark gave for it.\n\n",
    );
    let mut t = Table::new(
        &[
            "section", "where", "figure", "strata", "peer", "ratio", "note",
        ],
        &[false, false, false, true, true, true, false],
    );
    for l in &cmp.losses {
        let f = l.metric.format;
        let direction = match l.metric.better {
            Better::Higher => "higher is better",
            Better::Lower => "lower is better",
        };
        t.row(vec![
            l.section.name().into(),
            l.place.clone(),
            format!("{} ({direction})", l.metric.label),
            f(l.strata),
            format!("{} ({})", f(l.peer_value), l.peer),
            loss(l.advantage),
            note_cell(l.note.as_deref()),
        ]);
    }
    t.write(out);
    out.push('\n');
}

fn other_notes(out: &mut String, cmp: &Comparison) {
    if cmp.other_notes.is_empty() {
        return;
    }
    out.push_str("## Other notes\n\nNotes that explain no loss above.\n\n");
    let mut t = Table::new(&["section", "key", "note"], &[false, false, false]);
    for n in &cmp.other_notes {
        t.row(vec![n.section.name().into(), code(&n.key), n.text.clone()]);
    }
    t.write(out);
    out.push('\n');
}

fn images(out: &mut String, charts: &[Chart], section: Section) {
    for c in charts.iter().filter(|c| c.section == section) {
        let _ = writeln!(out, "![{}]({})\n", c.alt.replace(['[', ']'], ""), c.file);
    }
}

/// The systems with a figure in any of `figures`, in [`System::ALL`] order.
fn present<'a>(figures: impl IntoIterator<Item = &'a Figures>) -> Vec<System> {
    let figures: Vec<&Figures> = figures.into_iter().collect();
    System::ALL
        .into_iter()
        .filter(|&s| figures.iter().any(|f| f.get(s).is_some()))
        .collect()
}

fn value(figures: &Figures, system: System) -> String {
    figures
        .get(system)
        .map_or_else(|| "—".into(), |s| spread(&s, figures.metric.format))
}

/// The ratio of `system` against strata, bold when strata loses; `—` for strata itself or when
/// either side is missing.
fn ratio_cell(figures: &Figures, system: System) -> String {
    figures.advantage(system).map_or_else(
        || "—".into(),
        |r| {
            if r < 1.0 { loss(r) } else { format::ratio(r) }
        },
    )
}

fn loss(r: f64) -> String {
    format!("**{}**", format::ratio(r))
}

fn note_cell(note: Option<&str>) -> String {
    note.map_or_else(|| "_no note given_".into(), str::to_owned)
}

/// A GitHub-flavoured markdown table.
struct Table {
    head: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// `right[i]` right-aligns column `i` (numbers).
    fn new(head: &[&str], right: &[bool]) -> Table {
        Table {
            head: head.iter().map(|h| (*h).to_owned()).collect(),
            right: right.to_vec(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn write(&self, out: &mut String) {
        let line = |out: &mut String, cells: &[String]| {
            out.push('|');
            for c in cells {
                let _ = write!(out, " {} |", escape(c));
            }
            out.push('\n');
        };
        line(out, &self.head);
        out.push('|');
        for &r in &self.right {
            out.push_str(if r { " ---: |" } else { " --- |" });
        }
        out.push('\n');
        for row in &self.rows {
            line(out, row);
        }
    }
}

/// A table cell: `|` escaped (GitHub unescapes it even inside code spans), one line.
fn escape(cell: &str) -> String {
    cell.replace('|', "\\|").replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table() {
        let mut t = Table::new(&["a"], &[false]);
        t.row(vec![code(r#"rate(x{mode=~"user|system"}[5m])"#)]);
        t.row(vec!["two\nlines".into()]);
        let mut out = String::new();
        t.write(&mut out);
        assert_eq!(
            out,
            "| a |\n| --- |\n| `rate(x{mode=~\"user\\|system\"}[5m])` |\n| two lines |\n"
        );
    }
}
