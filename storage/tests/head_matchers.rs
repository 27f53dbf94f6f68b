//! Label matchers agree with the plain, fully anchored regex (`^(?s:re)$`, as Prometheus compiles
//! it) on random patterns and values, whichever internal form (literal set, glob, prefix-guarded
//! regex) the matcher picked.

use proptest::prelude::*;
use regex::Regex;
use strata_storage::matcher::{MatchType, Matcher};

/// Pattern fragments: literals (with escapes and non-ASCII text), wildcards, classes and
/// quantifiers, combined below with `|` and groups.
fn fragment() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a",
        "b",
        "ab",
        "ba",
        "é",
        "\\.",
        ".",
        "\\|",
        "-",
        "_",
        ":",
        " ",
        "\n",
        ".*",
        ".+",
        ".*",
        ".+",
        "a*",
        "b+",
        "a?",
        "[ab]",
        "[^a]",
        "\\d",
        "(a|b)",
        "(?:ab|.*)",
        "(?i)A",
        "a{2}",
        "\\\\",
        "x",
        "7",
    ])
    .prop_map(str::to_owned)
}

fn pattern() -> impl Strategy<Value = String> {
    let alternative = proptest::collection::vec(fragment(), 0..5).prop_map(|f| f.concat());
    (proptest::collection::vec(alternative, 1..4), 0u8..3).prop_map(|(alts, wrap)| {
        let body = alts.join("|");
        match wrap {
            0 => body,
            1 => format!("({body})"),
            _ => format!("(?:{body})"),
        }
    })
}

fn value() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop::sample::select(vec![
            "a", "b", "ab", "é", ".", "|", "-", "\n", " ", "x", "7", "\\", "A",
        ]),
        0..8,
    )
    .prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn regex_matchers_agree_with_the_anchored_regex(
        p in pattern(),
        values in proptest::collection::vec(value(), 1..20),
    ) {
        let reference = Regex::new(&format!("^(?s:{p})$"));
        let m = Matcher::new(MatchType::Regexp, "l", p.clone());
        let n = Matcher::new(MatchType::NotRegexp, "l", p.clone());
        match reference {
            Err(_) => {
                prop_assert!(m.is_err(), "{p:?} should be rejected");
                prop_assert!(n.is_err());
            }
            Ok(re) => {
                let m = m.expect("valid pattern");
                let n = n.expect("valid pattern");
                prop_assert_eq!(m.matches_empty(), re.is_match(""));
                for v in values.iter().map(String::as_str).chain([""]) {
                    prop_assert_eq!(m.matches(v), re.is_match(v), "{:?} on {:?}", p, v);
                    prop_assert_eq!(n.matches(v), !re.is_match(v), "!{:?} on {:?}", p, v);
                }
            }
        }
    }

    /// Patterns built to hit the glob path: literals separated by `.*` / `.+`.
    #[test]
    fn globs_agree_with_the_anchored_regex(
        parts in proptest::collection::vec(prop::sample::select(vec!["a", "ab", "ba", "é", ".*", ".+", "b"]), 0..7),
        values in proptest::collection::vec(value(), 1..30),
    ) {
        let p = parts.concat();
        let re = Regex::new(&format!("^(?s:{p})$")).expect("valid");
        let m = Matcher::new(MatchType::Regexp, "l", p.clone()).expect("valid");
        for v in values.iter().map(String::as_str).chain(["", "abab", "aéb", "ababab"]) {
            prop_assert_eq!(m.matches(v), re.is_match(v), "{:?} on {:?}", p, v);
        }
    }

    #[test]
    fn equality_matchers(v in value(), w in value()) {
        let eq = Matcher::new(MatchType::Equal, "l", v.clone()).expect("valid");
        let ne = Matcher::new(MatchType::NotEqual, "l", v.clone()).expect("valid");
        prop_assert_eq!(eq.matches(&w), v == w);
        prop_assert_eq!(ne.matches(&w), v != w);
        prop_assert_eq!(eq.matches_empty(), v.is_empty());
    }
}

#[test]
fn accessors() {
    let m = Matcher::new(MatchType::Regexp, "job", "a|b").expect("valid");
    assert_eq!(
        (m.name(), m.value(), m.match_type()),
        ("job", "a|b", MatchType::Regexp)
    );
    assert_eq!(m.to_string(), r#"job=~"a|b""#);
}
