//! Input that breaks the schema fails with a message naming the field at fault, from the library
//! and from the command line.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

fn fixture() -> Value {
    serde_json::from_str(include_str!("data/raw.json")).unwrap()
}

fn error_of(doc: &Value) -> String {
    match strata_bench_report::render(&doc.to_string(), "raw.json") {
        Ok(_) => panic!("rendered invalid input"),
        Err(e) => e.to_string(),
    }
}

fn remove(doc: &mut Value, key: &str) {
    doc.as_object_mut().unwrap().remove(key);
}

#[test]
fn missing_fields_are_named_by_path() {
    let mut doc = fixture();
    remove(&mut doc, "machine");
    assert_eq!(
        error_of(&doc),
        "raw.json does not follow the schema: machine: missing"
    );

    let mut doc = fixture();
    remove(&mut doc["ingest"][2]["runs"][1], "peak_rss_bytes");
    assert_eq!(
        error_of(&doc),
        "raw.json does not follow the schema: ingest[2].runs[1].peak_rss_bytes: missing"
    );

    let mut doc = fixture();
    remove(&mut doc["queries"][4], "checked");
    assert!(error_of(&doc).ends_with("queries[4].checked: missing"));
}

#[test]
fn invalid_values_are_named_by_path() {
    let cases = [
        (
            "/quick",
            json!("yes"),
            "quick: expected true or false, found a string",
        ),
        (
            "/ingest/0/runs/2/samples_per_s",
            json!(-1.0),
            "ingest[0].runs[2].samples_per_s: must be a number > 0, found -1",
        ),
        (
            "/queries/0/system",
            json!("mimir"),
            "queries[0].system: unknown system \"mimir\"",
        ),
        (
            "/queries/1/runs/0/p99_ms",
            json!(1.0),
            "queries[1].runs[0].p99_ms: 1 is below p50_ms 24",
        ),
        (
            "/queries/4/step",
            json!("60s"),
            "queries[4].step: \"60s\" differs from \"300s\" in queries[3]",
        ),
        (
            "/storage/1/system",
            json!("strata"),
            "storage[1]: second row for system strata (first at storage[0])",
        ),
        (
            "/notes/0/section",
            json!("memory"),
            "notes[0].section: unknown section \"memory\"",
        ),
        (
            "/ingest/3/runs",
            json!([]),
            "ingest[3].runs: must hold at least one run",
        ),
    ];
    for (pointer, value, expected) in cases {
        let mut doc = fixture();
        *doc.pointer_mut(pointer).unwrap() = value;
        let message = error_of(&doc);
        assert!(
            message.contains(expected),
            "{pointer}: {message:?} lacks {expected:?}"
        );
    }
}

#[test]
fn a_system_without_a_version_is_rejected() {
    let mut doc = fixture();
    remove(&mut doc["versions"], "victoria-metrics");
    assert!(
        error_of(&doc).ends_with(
            "versions.victoria-metrics: missing, but victoria-metrics has rows in ingest"
        ),
    );
}

#[test]
fn text_that_is_not_json_names_the_file() {
    let e = strata_bench_report::render("{\"started\": ", "raw.json").unwrap_err();
    assert!(e.to_string().starts_with("raw.json is not JSON: "), "{e}");
}

#[test]
fn the_command_fails_with_the_field_and_writes_nothing() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_invalid_input");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let mut doc = fixture();
    remove(&mut doc["storage"][0], "bytes");
    let raw = dir.join("raw.json");
    fs::write(&raw, doc.to_string()).unwrap();
    let out = dir.join("out");

    let result = Command::new(env!("CARGO_BIN_EXE_strata-bench-report"))
        .arg(&raw)
        .arg(&out)
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("raw.json does not follow the schema: storage[0].bytes: missing"),
        "{stderr}"
    );
    assert!(!out.exists());
}
