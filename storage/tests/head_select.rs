//! The head's read side: `select` with every matcher type (including those that match the empty
//! string, and so series without the label) against a brute-force reference over random label
//! sets, time-range filtering, ordering by labels, and label names / values.

use proptest::prelude::*;
use strata_storage::head::{Head, HeadOptions, SeriesRef};
use strata_storage::labels::{LabelHasher, Labels};
use strata_storage::matcher::{MatchType, Matcher};

fn create(head: &mut Head, labels: &Labels) -> SeriesRef {
    let mut h = LabelHasher::new();
    for l in labels {
        h.add(l.name.as_bytes(), l.value.as_bytes());
    }
    head.create(
        h.finish(),
        labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
    )
}

fn m(t: MatchType, n: &str, v: &str) -> Matcher {
    Matcher::new(t, n, v).expect("valid matcher")
}

/// Names of the selected series, in the order returned.
fn selected(head: &Head, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
    head.select(matchers, mint, maxt)
        .into_iter()
        .map(|s| head.labels(s).to_string())
        .collect()
}

fn fleet() -> (Head, Vec<Labels>) {
    let mut head = Head::new(HeadOptions::default());
    let sets = vec![
        Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "a")]),
        Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "b")]),
        Labels::from_pairs([
            ("__name__", "up"),
            ("job", "api"),
            ("instance", "c"),
            ("env", "prod"),
        ]),
        Labels::from_pairs([
            ("__name__", "cpu"),
            ("job", "node"),
            ("instance", "a"),
            ("mode", "idle"),
        ]),
        Labels::from_pairs([
            ("__name__", "cpu"),
            ("job", "node"),
            ("instance", "a"),
            ("mode", "user"),
        ]),
        Labels::from_pairs([("__name__", "build_info"), ("version", "1.0\nbeta")]),
    ];
    for (i, l) in sets.iter().enumerate() {
        let s = create(&mut head, l);
        head.append(s, 1000 + i as i64, 1.0).expect("append");
    }
    (head, sets)
}

#[test]
fn select_each_matcher_type() {
    let (h, _) = fleet();
    let all = (i64::MIN, i64::MAX);
    let sel = |ms: &[Matcher]| selected(&h, ms, all.0, all.1);
    // Sorted by label pairs: `env` sorts before `instance`.
    assert_eq!(
        sel(&[m(MatchType::Equal, "__name__", "up")]),
        [
            r#"up{env="prod", instance="c", job="api"}"#,
            r#"up{instance="a", job="node"}"#,
            r#"up{instance="b", job="node"}"#,
        ]
    );
    assert_eq!(
        sel(&[
            m(MatchType::Equal, "job", "node"),
            m(MatchType::NotEqual, "instance", "a")
        ])
        .len(),
        1
    );
    assert_eq!(sel(&[m(MatchType::Regexp, "instance", "a|c")]).len(), 4);
    assert_eq!(
        sel(&[
            m(MatchType::Regexp, "__name__", "up"),
            m(MatchType::NotRegexp, "instance", "a|b")
        ])
        .len(),
        1
    );
    // Empty-matching matchers select series without the label.
    assert_eq!(sel(&[m(MatchType::Equal, "env", "")]).len(), 5);
    assert_eq!(sel(&[m(MatchType::NotEqual, "env", "prod")]).len(), 5);
    assert_eq!(sel(&[m(MatchType::Regexp, "env", "|dev")]).len(), 5);
    assert_eq!(sel(&[m(MatchType::NotRegexp, "mode", ".+")]).len(), 4);
    assert_eq!(sel(&[m(MatchType::Regexp, "mode", ".*")]).len(), 6);
    assert_eq!(sel(&[m(MatchType::Regexp, "nosuchlabel", ".*")]).len(), 6);
    assert_eq!(sel(&[m(MatchType::Equal, "nosuchlabel", "x")]).len(), 0);
    assert_eq!(sel(&[m(MatchType::NotEqual, "nosuchlabel", "x")]).len(), 6);
    assert_eq!(
        sel(&[m(MatchType::Regexp, "version", "1.*beta")]).len(),
        1,
        "dot matches newline"
    );
    assert_eq!(sel(&[]).len(), 6);
}

#[test]
fn select_sorts_by_label_pairs_like_prometheus() {
    let mut h = Head::new(HeadOptions::default());
    let sets = [
        Labels::from_pairs([("__name__", "b")]),
        Labels::from_pairs([("__name__", "a"), ("z", "1")]),
        Labels::from_pairs([("__name__", "a")]),
        Labels::from_pairs([("__name__", "a"), ("y", "2")]),
        Labels::from_pairs([("a", "x")]),
    ];
    for l in &sets {
        let s = create(&mut h, l);
        h.append(s, 0, 0.0).expect("append");
    }
    let got: Vec<Labels> = h
        .select(&[], i64::MIN, i64::MAX)
        .into_iter()
        .map(|s| h.labels(s))
        .collect();
    let mut want = sets.to_vec();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn select_filters_by_time_exactly() {
    let mut h = Head::new(HeadOptions {
        chunk_range_ms: 1_000_000,
        max_samples_per_chunk: 4,
    });
    let early = create(&mut h, &Labels::from_pairs([("s", "early")]));
    let late = create(&mut h, &Labels::from_pairs([("s", "late")]));
    let sparse = create(&mut h, &Labels::from_pairs([("s", "sparse")]));
    let empty = create(&mut h, &Labels::from_pairs([("s", "empty")]));
    for t in 0..10 {
        h.append(early, t * 10, 1.0).expect("append");
        h.append(late, 1000 + t * 10, 1.0).expect("append");
    }
    // Samples at 0 and 500 only: one chunk spans [0, 500] with nothing in between.
    h.append(sparse, 0, 1.0).expect("append");
    h.append(sparse, 500, 1.0).expect("append");
    let names = |mint, maxt| -> Vec<String> {
        h.select(&[], mint, maxt)
            .into_iter()
            .map(|s| h.labels(s).get("s").unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(names(i64::MIN, i64::MAX), ["early", "late", "sparse"]);
    assert_eq!(names(0, 0), ["early", "sparse"]);
    assert_eq!(
        names(91, 499),
        Vec::<String>::new(),
        "the range falls between samples"
    );
    assert_eq!(names(91, 500), ["sparse"]);
    assert_eq!(
        names(45, 46),
        Vec::<String>::new(),
        "between two samples inside one chunk"
    );
    assert_eq!(names(45, 50), ["early"]);
    assert_eq!(names(1090, 5000), ["late"]);
    assert_eq!(names(1091, 5000), Vec::<String>::new());
    assert_eq!(names(10, 0), Vec::<String>::new());
    let _ = empty;
    assert_eq!(
        h.label_values("s", &[], i64::MIN, i64::MAX),
        ["early", "late", "sparse"]
    );
}

#[test]
fn label_names_and_values() {
    let (h, _) = fleet();
    let all = (i64::MIN, i64::MAX);
    assert_eq!(
        h.label_names(&[], all.0, all.1),
        ["__name__", "env", "instance", "job", "mode", "version"]
    );
    assert_eq!(
        h.label_values("instance", &[], all.0, all.1),
        ["a", "b", "c"]
    );
    assert_eq!(
        h.label_values("nosuch", &[], all.0, all.1),
        Vec::<String>::new()
    );
    let up = [m(MatchType::Equal, "__name__", "up")];
    assert_eq!(
        h.label_names(&up, all.0, all.1),
        ["__name__", "env", "instance", "job"]
    );
    assert_eq!(
        h.label_values("mode", &up, all.0, all.1),
        Vec::<String>::new()
    );
    assert_eq!(
        h.label_values(
            "__name__",
            &[m(MatchType::Equal, "instance", "a")],
            all.0,
            all.1
        ),
        ["cpu", "up"]
    );
    // Time ranges: series i has its one sample at 1000 + i.
    assert_eq!(h.label_values("__name__", &[], 1000, 1002), ["up"]);
    assert_eq!(h.label_names(&[], 1005, 1005), ["__name__", "version"]);
    assert_eq!(h.label_values("instance", &[], 1003, 1004), ["a"]);
}

/// A small alphabet so matchers hit, miss and collide often.
fn label_set() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(
        (
            prop::sample::select(vec!["a", "b", "c", "d"]),
            prop::sample::select(vec!["x", "y", "xy", "yx", "z", "x\ny"]),
        ),
        0..4,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    })
}

fn matcher() -> impl Strategy<Value = Matcher> {
    let t = prop::sample::select(vec![
        MatchType::Equal,
        MatchType::NotEqual,
        MatchType::Regexp,
        MatchType::NotRegexp,
    ]);
    let n = prop::sample::select(vec!["a", "b", "c", "d", "e"]);
    let plain = prop::sample::select(vec!["", "x", "y", "xy", "z", "w"]);
    let re = prop::sample::select(vec![
        "", "x", "x|y", "x|", ".*", ".+", "x.*", ".*y", ".*x.*", "x.+", "(x|yx)", "[xy]+", "x?y?",
        "(?i)X", "x.y", "z|.*y",
    ]);
    (t, n, plain, re).prop_map(|(t, n, plain, re)| {
        let v = if matches!(t, MatchType::Equal | MatchType::NotEqual) {
            plain
        } else {
            re
        };
        Matcher::new(t, n, v).expect("valid")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn select_agrees_with_brute_force(
        sets in proptest::collection::vec(label_set(), 0..40),
        matchers in proptest::collection::vec(matcher(), 0..4),
        times in proptest::collection::vec(proptest::collection::vec(0i64..100, 0..4), 40),
        range in (0i64..100, 0i64..100),
    ) {
        let (mint, maxt) = (range.0, range.0 + range.1 / 2);
        let mut head = Head::new(HeadOptions { chunk_range_ms: 50, max_samples_per_chunk: 2 });
        let mut seen = std::collections::BTreeSet::new();
        let mut series: Vec<(Labels, Vec<i64>)> = Vec::new();
        for (set, ts) in sets.into_iter().zip(times) {
            let labels = Labels::from_pairs(set.iter().map(|(n, v)| (n.clone(), v.clone()))
                .collect::<std::collections::BTreeMap<_, _>>());
            if !seen.insert(labels.clone()) {
                continue;
            }
            let s = create(&mut head, &labels);
            let mut ts = ts;
            ts.sort_unstable();
            ts.dedup();
            for &t in &ts {
                head.append(s, t, 0.0).expect("append");
            }
            series.push((labels, ts));
        }
        let mut want: Vec<Labels> = series
            .iter()
            .filter(|(l, ts)| {
                matchers.iter().all(|m| m.matches(l.get(m.name()).unwrap_or("")))
                    && ts.iter().any(|&t| t >= mint && t <= maxt)
            })
            .map(|(l, _)| l.clone())
            .collect();
        want.sort();
        let got: Vec<Labels> = head.select(&matchers, mint, maxt).into_iter().map(|s| head.labels(s)).collect();
        prop_assert_eq!(&got, &want);

        let mut want_names: Vec<String> = want.iter().flat_map(|l| l.iter().map(|l| l.name.clone())).collect();
        want_names.sort();
        want_names.dedup();
        prop_assert_eq!(head.label_names(&matchers, mint, maxt), want_names);
        let mut want_values: Vec<String> = want.iter().filter_map(|l| l.get("a").map(str::to_owned)).collect();
        want_values.sort();
        want_values.dedup();
        prop_assert_eq!(head.label_values("a", &matchers, mint, maxt), want_values);

        // Over all time with no matchers (the postings fast path when every series has samples).
        let mut all_names: Vec<String> = series
            .iter()
            .filter(|(_, ts)| !ts.is_empty())
            .flat_map(|(l, _)| l.iter().map(|l| l.name.clone()).collect::<Vec<_>>())
            .collect();
        all_names.sort();
        all_names.dedup();
        prop_assert_eq!(head.label_names(&[], i64::MIN, i64::MAX), all_names);
    }
}
