//! The committed fixture renders a report whose tables hold the expected medians, ratios and loss
//! markers, with every loss listed beside its note, and charts that decode as 900x500 PNGs.

use std::fs;
use std::path::PathBuf;

const FIXTURE: &str = include_str!("data/raw.json");

fn out_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    // Left over from an earlier run of this test only.
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/raw.json")
}

fn markdown() -> String {
    strata_bench_report::render(FIXTURE, "raw.json")
        .unwrap()
        .markdown
}

fn assert_has(md: &str, needle: &str) {
    assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
}

#[test]
fn header_names_the_run() {
    let md = markdown();
    assert_has(&md, "| started | 2026-11-22T10:00:00Z |");
    assert_has(&md, "| command | `bench/peers/run.sh --quick` |");
    assert_has(
        &md,
        "| mode | quick: fewer and shorter runs, indicative only |",
    );
    assert_has(
        &md,
        "| machine | 2 CPUs (Intel(R) Xeon(R) Processor), 24 GiB memory, kernel Linux 6.1.0 |",
    );
    assert_has(&md, "| prometheus version | `2.42.0` |");
    assert_has(&md, "**strata loses 8 of 23 comparisons**");
}

#[test]
fn ingest_table_holds_medians_spreads_and_oriented_ratios() {
    let md = markdown();
    assert_has(&md, "### Profile `node`: 10,000 active series");
    // samples/s: strata / peer; CPU and RSS: peer / strata.
    assert_has(
        &md,
        "| prometheus | 3 | 950k (900k–1.00M) | 1.22 (1.20–1.30) | 8,400 (8,000–9,000) \
         | 2.00x | 2.00x | **0.80x** |",
    );
    assert_has(
        &md,
        "| victoria-metrics | 3 | 2.38M (2.20M–2.50M) | 0.305 (0.300–0.320) | 5,250 (5,000–5,500) \
         | **0.80x** | **0.50x** | **0.50x** |",
    );
    assert_has(
        &md,
        "| prometheus | 1 | 750k | 1.40 | 60,000 | 2.00x | 2.00x | 1.20x |",
    );
    assert_has(
        &md,
        "| victoria-metrics | not run | — | — | — | — | — | — |",
    );
}

#[test]
fn storage_and_query_tables_mark_losses() {
    let md = markdown();
    assert_has(
        &md,
        "| victoria-metrics | 4,800,000 | 4,800,000 | 1.00 | **0.67x** |",
    );
    assert_has(&md, "| prometheus | 4,800,000 | 9,600,000 | 2.00 | 1.33x |");
    assert_has(
        &md,
        "| `sum_rate` | 24h | 60s | 12.0 (10.0–14.0) | 20.0 (18.0–25.0) | 24.0 (22.0–26.0) \
         | 30.0 (29.0–33.0) | 6.00 (5.50–7.00) | 40.0 (38.0–45.0) | 2.00x · 1.50x \
         | **0.50x** · 2.00x | strata yes, victoria-metrics yes |",
    );
    // A tie is not a loss; a `|` in PromQL is escaped; an unchecked answer is flagged.
    assert_has(
        &md,
        "| **0.50x** · 2.00x | 1.000x · 1.33x | strata **no**, victoria-metrics yes |",
    );
    assert_has(
        &md,
        r#"`topk(5, rate(node_network_receive_bytes_total{device=~"eth0\|lo"}[5m]))`"#,
    );
    assert_has(
        &md,
        "| `topk` over 24h | strata | strata orders ties differently; the check compares sorted output. |",
    );
}

#[test]
fn every_loss_is_listed_with_its_note_or_the_lack_of_one() {
    let md = markdown();
    let losses = md.split("## Where strata loses").nth(1).unwrap();
    let losses = losses.split("## Other notes").next().unwrap();
    let rows: Vec<&str> = losses.lines().filter(|l| l.contains("**0.")).collect();
    assert_eq!(rows.len(), 8, "{losses}");
    assert_eq!(
        rows.iter()
            .filter(|r| r.ends_with("| _no note given_ |"))
            .count(),
        4
    );
    assert_has(
        losses,
        "| ingest | profile `node` | peak RSS bytes per active series (lower is better) | 10,500 \
         | 8,400 (prometheus) | **0.80x** | strata keeps two hours of head chunks in memory; the \
         peers flush earlier. |",
    );
    assert_has(
        losses,
        "| storage | all samples | bytes per sample (lower is better) | 1.50 | 1.00 (victoria-metrics) \
         | **0.67x** | VictoriaMetrics compresses parts with zstd after merging. |",
    );
    assert_has(
        losses,
        "| queries | `topk` over 24h | p50 latency, ms (lower is better) | 2.00 | 1.00 (prometheus) \
         | **0.50x** | _no note given_ |",
    );
    // The note that explains no loss is still shown.
    let other = md.split("## Other notes").nth(1).unwrap();
    assert_has(
        other,
        "| ingest | `k8s` | VictoriaMetrics was not run on the k8s profile in quick mode. |",
    );
}

#[test]
fn run_writes_the_report_and_decodable_charts_only() {
    let dir = out_dir("report_render");
    let written = strata_bench_report::run(&fixture_path(), &dir).unwrap();
    let md = fs::read_to_string(dir.join("report.md")).unwrap();

    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let expected = [
        "ingest_cpu_s_per_1m_samples.png",
        "ingest_peak_rss_per_series.png",
        "ingest_samples_per_s.png",
        "query_p50_24h.png",
        "query_p50_7d.png",
        "report.md",
        "storage_bytes_per_sample.png",
    ];
    assert_eq!(names, expected);
    assert_eq!(written.len(), expected.len());

    for png in expected.iter().filter(|n| **n != "report.md") {
        assert_has(&md, &format!("]({png})"));
        let bytes = fs::read(dir.join(png)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png}");
        assert!(
            (5_000..500_000).contains(&bytes.len()),
            "{png}: {} bytes",
            bytes.len()
        );
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((frame.width, frame.height), (900, 500), "{png}");
        // Not blank: bars and text put more than one colour on the canvas.
        assert!(
            pixels.chunks(3).any(|p| p != [255, 255, 255]),
            "{png} is blank"
        );
    }
}

#[test]
fn rendering_is_deterministic() {
    let a = strata_bench_report::render(FIXTURE, "raw.json").unwrap();
    let b = strata_bench_report::render(FIXTURE, "raw.json").unwrap();
    assert_eq!(a.markdown, b.markdown);
    assert_eq!(a.charts, b.charts);
}
