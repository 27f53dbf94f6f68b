//! The test script language: `load`, `load_with_nhcb`, `clear` and `eval` commands with their
//! `expect` lines and expected results (see `tests/data/promqltest/DSL.md`).
//!
//! As in Prometheus's scripts, a blank line or a comment line ends a command's block.

use regex::Regex;
use strata_storage::labels::Labels;

use crate::duration::parse_ms;
use crate::series::{Point, SeriesLine, parse_number, parse_quoted, parse_series_line};

/// One command of a script, with its 1-based line number.
#[derive(Debug)]
pub enum Command {
    Load(Load),
    Clear { line: usize },
    Eval(Box<Eval>),
}

/// `load <step>` (or `load_with_nhcb <step>`) and its series.
#[derive(Debug)]
pub struct Load {
    pub line: usize,
    pub step_ms: i64,
    pub with_nhcb: bool,
    pub series: Vec<SeriesLine>,
}

/// When an eval runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalKind {
    Instant {
        t_ms: i64,
    },
    Range {
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    },
}

/// How an expected message is matched.
#[derive(Clone, Debug)]
pub enum MessageMatch {
    Any,
    Exact(String),
    Regex(Regex),
}

impl MessageMatch {
    pub fn matches(&self, msg: &str) -> bool {
        match self {
            MessageMatch::Any => true,
            MessageMatch::Exact(s) => s == msg,
            MessageMatch::Regex(r) => r.is_match(msg),
        }
    }
}

impl std::fmt::Display for MessageMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageMatch::Any => f.write_str("any message"),
            MessageMatch::Exact(s) => write!(f, "msg {s:?}"),
            MessageMatch::Regex(r) => write!(f, "regex {:?}", r.as_str()),
        }
    }
}

/// The expected value of an eval.
#[derive(Clone, Debug)]
pub enum Expected {
    /// Series with their points and 1-based position (for `ordered`).
    Series(Vec<(Labels, Vec<Point>)>),
    Scalar(f64),
    String(String),
}

/// The expectations on one kind of annotation (warnings or infos).
#[derive(Clone, Debug, Default)]
pub struct Annotations {
    /// `expect warn|info [msg|regex: ...]`: each must match an annotation, and when any is
    /// given every annotation must match one.
    pub expected: Vec<MessageMatch>,
    /// `expect no_warn|no_info`.
    pub none: bool,
}

/// One `eval` command.
#[derive(Debug)]
pub struct Eval {
    pub line: usize,
    /// The command line as written.
    pub text: String,
    pub expr: String,
    pub kind: EvalKind,
    /// `Some` when the eval must fail.
    pub fail: Vec<MessageMatch>,
    pub expect_fail: bool,
    pub warn: Annotations,
    pub info: Annotations,
    pub ordered: bool,
    /// `expect range vector from .. to .. step ..` of an instant eval.
    pub range_vector: Option<(i64, i64, i64)>,
    pub expected: Expected,
}

/// Parses a whole script.
pub fn parse_script(input: &str) -> Result<Vec<Command>, String> {
    let lines: Vec<&str> = input
        .lines()
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') { "" } else { l }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let lineno = i + 1;
        i += 1;
        if l.is_empty() {
            continue;
        }
        let end = lines[i..]
            .iter()
            .position(|l| l.is_empty())
            .map_or(lines.len(), |p| i + p);
        let block = &lines[i..end];
        let first = l.split_whitespace().next().unwrap_or_default();
        let err = |e: String| format!("line {lineno}: {e}");
        match first {
            "clear" => cmds.push(Command::Clear { line: lineno }),
            "load" | "load_with_nhcb" => {
                let step = l[first.len()..].trim();
                let step_ms = parse_ms(step).map_err(err)?;
                let mut series = Vec::new();
                for (j, s) in block.iter().enumerate() {
                    series.push(
                        parse_series_line(s).map_err(|e| format!("line {}: {e}", i + j + 1))?,
                    );
                }
                cmds.push(Command::Load(Load {
                    line: lineno,
                    step_ms,
                    with_nhcb: first == "load_with_nhcb",
                    series,
                }));
                i = end;
            }
            _ if first.starts_with("eval") => {
                let eval = parse_eval(l, lineno, block, i + 1).map_err(err)?;
                cmds.push(Command::Eval(Box::new(eval)));
                i = end;
            }
            _ => return Err(err(format!("unknown command {l:?}"))),
        }
    }
    Ok(cmds)
}

/// Splits off the first whitespace-separated word.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let n = s.find(char::is_whitespace).unwrap_or(s.len());
    (&s[..n], s[n..].trim_start())
}

fn parse_eval(l: &str, lineno: usize, block: &[&str], first_line: usize) -> Result<Eval, String> {
    let (cmd, rest) = word(l);
    let mut eval = Eval {
        line: lineno,
        text: l.to_owned(),
        expr: String::new(),
        kind: EvalKind::Instant { t_ms: 0 },
        fail: Vec::new(),
        expect_fail: false,
        warn: Annotations::default(),
        info: Annotations::default(),
        ordered: false,
        range_vector: None,
        expected: Expected::Series(Vec::new()),
    };
    match cmd {
        "eval" => {}
        "eval_fail" => eval.expect_fail = true,
        "eval_warn" => eval.warn.expected.push(MessageMatch::Any),
        "eval_info" => eval.info.expected.push(MessageMatch::Any),
        "eval_ordered" => eval.ordered = true,
        _ => return Err(format!("unknown command {cmd:?}")),
    }
    let (kind, rest) = word(rest);
    match kind {
        "instant" => {
            let (at, rest) = word(rest);
            if at != "at" {
                return Err("expected 'at' after 'eval instant'".into());
            }
            let (t, rest) = word(rest);
            eval.kind = EvalKind::Instant { t_ms: parse_ms(t)? };
            rest.clone_into(&mut eval.expr);
        }
        "range" => {
            let mut rest = rest;
            let mut vals = [0i64; 3];
            for (k, kw) in ["from", "to", "step"].iter().enumerate() {
                let (w, r) = word(rest);
                if w != *kw {
                    return Err(format!("expected {kw:?} in range eval"));
                }
                let (v, r) = word(r);
                vals[k] = parse_ms(v)?;
                rest = r;
            }
            eval.kind = EvalKind::Range {
                start_ms: vals[0],
                end_ms: vals[1],
                step_ms: vals[2],
            };
            rest.clone_into(&mut eval.expr);
        }
        _ => return Err(format!("expected 'instant' or 'range', got {kind:?}")),
    }
    if eval.expr.is_empty() {
        return Err("missing expression".into());
    }
    let mut series = Vec::new();
    let mut scalar = None;
    let mut string = None;
    for (j, &def) in block.iter().enumerate() {
        let at = |e: String| format!("line {}: {e}", first_line + j);
        if let Some(rest) = def.strip_prefix("expect ") {
            parse_expect(rest.trim(), &mut eval, &mut string).map_err(at)?;
            continue;
        }
        if let Some(m) = def.strip_prefix("expected_fail_message ") {
            eval.expect_fail = true;
            eval.fail.push(MessageMatch::Exact(m.trim().to_owned()));
            continue;
        }
        if let Some(m) = def.strip_prefix("expected_fail_regexp ") {
            eval.expect_fail = true;
            eval.fail.push(MessageMatch::Regex(
                Regex::new(m.trim()).map_err(|e| at(e.to_string()))?,
            ));
            continue;
        }
        if let Some(v) = parse_number(def) {
            scalar = Some(v);
            continue;
        }
        let s = parse_series_line(def).map_err(at)?;
        if series
            .iter()
            .any(|(l, _): &(Labels, Vec<Point>)| *l == s.labels)
        {
            return Err(at(format!("duplicate expected series {}", s.labels)));
        }
        series.push((s.labels, s.points));
    }
    eval.expected = match (scalar, string) {
        (Some(v), _) => Expected::Scalar(v),
        (None, Some(s)) => Expected::String(s),
        (None, None) => Expected::Series(series),
    };
    Ok(eval)
}

fn parse_expect(rest: &str, eval: &mut Eval, string: &mut Option<String>) -> Result<(), String> {
    let (kind, tail) = word(rest);
    match kind {
        "ordered" => eval.ordered = true,
        "no_warn" => eval.warn.none = true,
        "no_info" => eval.info.none = true,
        "string" => {
            let (s, r) = parse_quoted(tail)?;
            if !r.trim().is_empty() {
                return Err(format!("trailing text after expected string: {r:?}"));
            }
            *string = Some(s);
        }
        "range" => {
            let mut t = tail;
            let (w, r) = word(t);
            if w != "vector" {
                return Err(format!("unknown expectation {rest:?}"));
            }
            t = r;
            let mut vals = [0i64; 3];
            for (k, kw) in ["from", "to", "step"].iter().enumerate() {
                let (w, r) = word(t);
                if w != *kw {
                    return Err(format!("expected {kw:?} in {rest:?}"));
                }
                let (v, r) = word(r);
                vals[k] = parse_ms(v)?;
                t = r;
            }
            eval.range_vector = Some((vals[0], vals[1], vals[2]));
        }
        "fail" | "warn" | "info" => {
            let m = parse_message_match(tail)?;
            match kind {
                "fail" => {
                    eval.expect_fail = true;
                    eval.fail.push(m);
                }
                "warn" => eval.warn.expected.push(m),
                _ => eval.info.expected.push(m),
            }
        }
        _ => return Err(format!("unknown expectation {rest:?}")),
    }
    Ok(())
}

/// Parses `[msg|regex]: <text>` (or nothing).
fn parse_message_match(tail: &str) -> Result<MessageMatch, String> {
    let tail = tail.trim();
    if tail.is_empty() {
        return Ok(MessageMatch::Any);
    }
    let Some((kind, text)) = tail.split_once(':') else {
        return Err(format!("expected 'msg:' or 'regex:' in {tail:?}"));
    };
    let text = unquote(text.trim());
    match kind.trim() {
        "msg" => Ok(MessageMatch::Exact(text)),
        "regex" => Regex::new(&text)
            .map(MessageMatch::Regex)
            .map_err(|e| e.to_string()),
        k => Err(format!("unknown match type {k:?}")),
    }
}

/// Removes one pair of surrounding double quotes, as the DSL's examples write some messages.
fn unquote(s: &str) -> String {
    if s.len() >= 2
        && s.starts_with('"')
        && s.ends_with('"')
        && let Ok((v, rest)) = parse_quoted(s)
        && rest.is_empty()
    {
        return v;
    }
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = r#"
# a comment
load 5m
    http_requests{job="api"} 0+10x10
    other 1 _ stale

eval instant at 50m sum(http_requests)
    expect no_warn
    expect info regex: PromQL info: .* \(1:5\)
    {} 100

eval range from 0 to 10m step 5m http_requests
  http_requests{job="api"} 0 10 20

eval_fail instant at 0 -{job="api"}

eval instant at 1m vector(1)
  expect fail msg: "boom"
  expect ordered

eval instant at 1m 1
  1

eval instant at 50m ("Foo")
	expect string `Foo`

eval instant at 1m some_metric[1m]
  expect range vector from 10s to 1m step 10s
  some_metric{env="a"} 2 3 4 5 6

clear
"#;

    #[test]
    fn parses_every_command_kind() {
        let cmds = parse_script(SCRIPT).unwrap();
        assert_eq!(cmds.len(), 9);
        let Command::Load(l) = &cmds[0] else { panic!() };
        assert_eq!((l.line, l.step_ms, l.series.len()), (3, 300_000, 2));
        let Command::Eval(e) = &cmds[1] else { panic!() };
        assert_eq!(e.line, 7);
        assert_eq!(e.kind, EvalKind::Instant { t_ms: 3_000_000 });
        assert_eq!(e.expr, "sum(http_requests)");
        assert!(e.warn.none && !e.info.none && e.info.expected.len() == 1);
        assert!(e.info.expected[0].matches("PromQL info: x (1:5)"));
        let Expected::Series(s) = &e.expected else {
            panic!()
        };
        assert_eq!(s.len(), 1);
        let Command::Eval(e) = &cmds[2] else { panic!() };
        assert_eq!(
            e.kind,
            EvalKind::Range {
                start_ms: 0,
                end_ms: 600_000,
                step_ms: 300_000
            }
        );
        let Command::Eval(e) = &cmds[3] else { panic!() };
        assert!(e.expect_fail && e.fail.is_empty());
        assert_eq!(e.expr, r#"-{job="api"}"#);
        let Command::Eval(e) = &cmds[4] else { panic!() };
        assert!(e.expect_fail && e.ordered);
        assert!(e.fail[0].matches("boom"));
        let Command::Eval(e) = &cmds[5] else { panic!() };
        assert!(matches!(e.expected, Expected::Scalar(v) if v == 1.0));
        let Command::Eval(e) = &cmds[6] else { panic!() };
        assert!(matches!(&e.expected, Expected::String(s) if s == "Foo"));
        let Command::Eval(e) = &cmds[7] else { panic!() };
        assert_eq!(e.range_vector, Some((10_000, 60_000, 10_000)));
        assert!(
            matches!(cmds[8], Command::Clear { line: 31 }),
            "{:?}",
            cmds[8]
        );
    }

    #[test]
    fn rejects_malformed_commands() {
        assert!(parse_script("bogus 1").is_err());
        assert!(parse_script("eval instant 5m x").is_err());
        assert!(parse_script("eval range from 0 to 1m x").is_err());
        assert!(parse_script("load 1m\n  x 1 zz").is_err());
        assert!(parse_script("eval instant at 1m x\n  expect sometimes").is_err());
    }
}
