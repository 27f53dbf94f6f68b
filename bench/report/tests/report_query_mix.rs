//! The query mix: the committed fixture (written before the harness ran a mix, so it has no `mix`)
//! still renders and says there was none; with a `mix` added, the report has a table per range
//! with oriented ratios, a chart, and mix losses listed with their notes (matched in the `mix`
//! section only) or the lack of one; a `mix` that breaks the schema names the field.

use serde_json::{Value, json};

fn fixture() -> Value {
    serde_json::from_str(include_str!("data/raw.json")).unwrap()
}

/// The mix added to the fixture, one row per line. victoria-metrics beats strata on the 24h p99
/// (no note) and on the 7d p50 (a note under the most specific key).
const MIX: &str = "
    range step rate_qps system           queries errors p50 p90 p99  max
    24h   120s 4        strata           160     0      10  14  20   25
    24h   120s 4        prometheus       160     0      40  60  90   120
    24h   120s 4        victoria-metrics 160     2      12  14  16   30
    7d    900s 0.5      strata           20      0      100 130 150  150
    7d    900s 0.5      prometheus       20      0      800 900 1000 1000
    7d    900s 0.5      victoria-metrics 20      0      80  100 200  210
";

fn with_mix() -> Value {
    let mut doc = fixture();
    let number = |s: &str| s.parse::<f64>().unwrap();
    let rows: Vec<Value> = MIX
        .trim()
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            json!({"range": f[0], "step": f[1], "rate_qps": number(f[2]), "duration_s": 40,
                   "system": f[3], "queries": number(f[4]), "errors": number(f[5]),
                   "p50_ms": number(f[6]), "p90_ms": number(f[7]), "p99_ms": number(f[8]),
                   "max_ms": number(f[9])})
        })
        .collect();
    doc["mix"] = Value::Array(rows);
    let notes = doc["notes"].as_array_mut().unwrap();
    notes.extend([
        json!({"section": "mix", "key": "7d p50 victoria-metrics",
               "text": "VictoriaMetrics answers repeated ranges from its rollup cache."}),
        json!({"section": "mix", "key": "30d", "text": "No mix over 30d in quick mode."}),
        // A note of another section does not explain a mix loss.
        json!({"section": "queries", "key": "24h p99", "text": "Not about the mix."}),
    ]);
    doc
}

fn render(doc: &Value) -> strata_bench_report::Report {
    strata_bench_report::render(&doc.to_string(), "raw.json").unwrap()
}

fn section<'a>(md: &'a str, from: &str, to: &str) -> &'a str {
    let tail = md
        .split(from)
        .nth(1)
        .unwrap_or_else(|| panic!("no {from:?}:\n{md}"));
    tail.split(to).next().unwrap()
}

fn assert_has(md: &str, needle: &str) {
    assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
}

#[test]
fn without_mix_the_section_says_so_and_nothing_else_changes() {
    let report = render(&fixture());
    assert_has(
        &report.markdown,
        "## Query mix\n\nNo query mix in this run.\n\n",
    );
    assert_has(&report.markdown, "**strata loses 8 of 23 comparisons**");
    assert!(
        report
            .charts
            .iter()
            .all(|(file, _)| file != "query_mix.png")
    );

    // An empty array reads the same as none.
    let mut doc = fixture();
    doc["mix"] = json!([]);
    assert_eq!(render(&doc).markdown, report.markdown);
}

#[test]
fn mix_tables_hold_latencies_and_oriented_ratios() {
    let md = render(&with_mix()).markdown;
    let mix = section(&md, "## Query mix", "## Where strata loses");
    assert_has(
        mix,
        "### Mix over `24h` (step `120s`, 40 s of queries per system)\n\n\
         | system | rate, queries/s | queries | p50 | p90 | p99 | max | p50 ratio | p99 ratio |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n\
         | strata | 4 | 160 | 10.0 | 14.0 | 20.0 | 25.0 | — | — |\n\
         | prometheus | 4 | 160 | 40.0 | 60.0 | 90.0 | 120 | 4.00x | 4.50x |\n\
         | victoria-metrics | 4 | 160 (**2 failed**) | 12.0 | 14.0 | 16.0 | 30.0 | 1.20x \
         | **0.80x** |\n",
    );
    assert_has(
        mix,
        "| victoria-metrics | 0.5 | 20 | 80.0 | 100 | 200 | 210 | **0.80x** | 1.33x |",
    );
    assert_has(
        mix,
        "![query mix p50 and p99 latency per range](query_mix.png)",
    );
    // Two losses and eight comparisons more than the fixture alone.
    assert_has(&md, "**strata loses 10 of 31 comparisons**");
}

#[test]
fn mix_losses_are_listed_with_their_note_or_the_lack_of_one() {
    let md = render(&with_mix()).markdown;
    let losses = section(&md, "## Where strata loses", "## Other notes");
    assert_has(
        losses,
        "| mix | mix over 7d | p50 latency, ms (lower is better) | 100 | 80.0 (victoria-metrics) \
         | **0.80x** | VictoriaMetrics answers repeated ranges from its rollup cache. |",
    );
    assert_has(
        losses,
        "| mix | mix over 24h | p99 latency, ms (lower is better) | 20.0 | 16.0 (victoria-metrics) \
         | **0.80x** | _no note given_ |",
    );
    let other = md.split("## Other notes").nth(1).unwrap();
    assert_has(other, "| mix | `30d` | No mix over 30d in quick mode. |");
    assert_has(other, "| queries | `24h p99` | Not about the mix. |");
}

#[test]
fn mix_chart_decodes_with_a_group_per_range_and_percentile() {
    let report = render(&with_mix());
    let (_, bytes) = report
        .charts
        .iter()
        .find(|(file, _)| file == "query_mix.png")
        .expect("no query_mix.png");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes.as_slice()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.width, frame.height), (900, 500));
    assert!(pixels.chunks(3).any(|p| p != [255, 255, 255]), "blank");
}

#[test]
fn a_mix_that_breaks_the_schema_names_the_field() {
    let cases = [
        (
            "/mix/1/rate_qps",
            json!(5.0),
            "mix[1].rate_qps: 5 differs from 4 in mix[0], a row of the same range",
        ),
        (
            "/mix/2/step",
            json!("60s"),
            "mix[2].step: \"60s\" differs from \"120s\" in mix[0]",
        ),
        (
            "/mix/4/system",
            json!("strata"),
            "mix[4]: second row for range \"7d\" and system strata (first at mix[3])",
        ),
        (
            "/mix/0/p90_ms",
            json!(5.0),
            "mix[0].p90_ms: 5 is below p50_ms 10",
        ),
        (
            "/mix/0/errors",
            json!(160),
            "mix[0].errors: 160 of 160 queries failed: no latency was measured",
        ),
        (
            "/mix/0/errors",
            json!(-1),
            "mix[0].errors: must be a whole number >= 0, found -1",
        ),
        (
            "/notes/5/section",
            json!("mixes"),
            "(expected ingest, storage, queries or mix)",
        ),
    ];
    for (pointer, value, expected) in cases {
        let mut doc = with_mix();
        *doc.pointer_mut(pointer).unwrap() = value;
        let message = match strata_bench_report::render(&doc.to_string(), "raw.json") {
            Ok(_) => panic!("{pointer}: rendered invalid input"),
            Err(e) => e.to_string(),
        };
        assert!(
            message.contains(expected),
            "{pointer}: {message:?} lacks {expected:?}"
        );
    }

    let mut doc = with_mix();
    doc["mix"][0].as_object_mut().unwrap().remove("p99_ms");
    let e = strata_bench_report::render(&doc.to_string(), "raw.json").unwrap_err();
    assert!(e.to_string().ends_with("mix[0].p99_ms: missing"), "{e}");
}
