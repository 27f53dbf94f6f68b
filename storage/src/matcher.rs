//! Label matchers (`name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`) with Prometheus's
//! semantics.
//!
//! Invariants:
//! - a missing label is matched as the empty string;
//! - a regex is fully anchored and `.` matches a newline, as Prometheus compiles `^(?s:re)$`; it
//!   is parsed and compiled once, in [`Matcher::new`], never per match;
//! - simple regexes never reach the regex engine: a recogniser in this module turns patterns made
//!   only of literal text, `.*`, `.+` and top-level `|` (optionally inside one group) into a set
//!   lookup plus a few glob checks; other patterns keep their literal prefix as a cheap
//!   pre-check before the compiled regex runs. The recogniser accepts a pattern only if every
//!   character is understood, so the fast form always agrees with the regex engine.
//!
//! Known difference from Prometheus (which uses Go's RE2): Perl classes such as `\d`, `\w`, `\s`
//! and `\b` are Unicode-aware in Rust's `regex` and ASCII-only in Go.

use std::fmt;

use hashbrown::HashSet;
use regex::Regex;

/// The four matcher kinds of `PromQL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regexp,
    NotRegexp,
}

impl MatchType {
    /// The `PromQL` operator.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regexp => "=~",
            MatchType::NotRegexp => "!~",
        }
    }
}

/// A matcher that cannot be built.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MatcherError {
    #[error("invalid regular expression {pattern:?} for label {name:?}: {source}")]
    InvalidRegex {
        name: String,
        pattern: String,
        source: regex::Error,
    },
}

/// One label matcher.
#[derive(Clone, Debug)]
pub struct Matcher {
    name: String,
    value: String,
    t: MatchType,
    /// How a regex matcher tests a value; `None` for `=` and `!=`.
    re: Option<Box<RegexMatch>>,
    /// Whether the matcher accepts the empty string (and so series without the label).
    matches_empty: bool,
}

impl Matcher {
    pub fn new(
        t: MatchType,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let re = match t {
            MatchType::Equal | MatchType::NotEqual => None,
            MatchType::Regexp | MatchType::NotRegexp => match RegexMatch::new(&value) {
                Ok(re) => Some(Box::new(re)),
                Err(source) => {
                    return Err(MatcherError::InvalidRegex {
                        name,
                        pattern: value,
                        source,
                    });
                }
            },
        };
        let mut m = Matcher {
            name,
            value,
            t,
            re,
            matches_empty: false,
        };
        m.matches_empty = m.matches("");
        Ok(m)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    pub fn match_type(&self) -> MatchType {
        self.t
    }

    /// Whether the label value `v` (the empty string for a missing label) matches.
    #[inline]
    pub fn matches(&self, v: &str) -> bool {
        match (self.t, &self.re) {
            (MatchType::Equal, _) => v == self.value,
            (MatchType::NotEqual, _) => v != self.value,
            (MatchType::Regexp, Some(re)) => re.is_match(v),
            (MatchType::NotRegexp, Some(re)) => !re.is_match(v),
            // `new` always builds `re` for the regex types.
            (MatchType::Regexp | MatchType::NotRegexp, None) => false,
        }
    }

    /// Whether the matcher accepts the empty string, i.e. also selects series that lack the
    /// label.
    #[inline]
    pub fn matches_empty(&self) -> bool {
        self.matches_empty
    }

    /// For `=~` and `!~` matchers whose pattern is a plain set of literals (`a|b|c`, or a single
    /// literal), those literals. The head looks them up directly instead of testing every value
    /// of the label.
    pub fn set_values(&self) -> Option<impl Iterator<Item = &str>> {
        let re = self.re.as_deref()?;
        match &re.kind {
            RegexKind::Fast(f) if f.globs.is_empty() => Some(f.literals.iter()),
            _ => None,
        }
    }
}

impl fmt::Display for Matcher {
    /// `PromQL` notation: `name=~"value"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.t.as_str(), self.value)
    }
}

/// A compiled, fully anchored regex test.
#[derive(Clone, Debug)]
struct RegexMatch {
    kind: RegexKind,
}

#[derive(Clone, Debug)]
enum RegexKind {
    /// Recognised simple pattern; the regex engine is not needed (nor built).
    Fast(FastRegex),
    /// Everything else: the literal prefix every match starts with, then the regex.
    General { prefix: String, re: Regex },
}

impl RegexMatch {
    fn new(pattern: &str) -> Result<Self, regex::Error> {
        if let Some(f) = FastRegex::parse(pattern) {
            return Ok(RegexMatch {
                kind: RegexKind::Fast(f),
            });
        }
        let re = Regex::new(&format!("^(?s:{pattern})$"))?;
        Ok(RegexMatch {
            kind: RegexKind::General {
                prefix: literal_prefix(pattern),
                re,
            },
        })
    }

    #[inline]
    fn is_match(&self, v: &str) -> bool {
        match &self.kind {
            RegexKind::Fast(f) => f.is_match(v),
            RegexKind::General { prefix, re } => v.starts_with(prefix.as_str()) && re.is_match(v),
        }
    }
}

/// A set of literal strings. Small sets are scanned, larger ones hashed.
#[derive(Clone, Debug)]
enum LiteralSet {
    Small(Vec<String>),
    Hashed(HashSet<String>),
}

/// Up to this many literals are compared one by one rather than hashed.
const SMALL_SET: usize = 8;

impl LiteralSet {
    fn new(mut lits: Vec<String>) -> Self {
        lits.sort_unstable();
        lits.dedup();
        if lits.len() <= SMALL_SET {
            LiteralSet::Small(lits)
        } else {
            LiteralSet::Hashed(lits.into_iter().collect())
        }
    }

    #[inline]
    fn contains(&self, v: &str) -> bool {
        match self {
            LiteralSet::Small(l) => l.iter().any(|x| x == v),
            LiteralSet::Hashed(h) => h.contains(v),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            LiteralSet::Small(l) => Box::new(l.iter().map(String::as_str)),
            LiteralSet::Hashed(h) => Box::new(h.iter().map(String::as_str)),
        }
    }
}

/// An alternation of literals and globs: matches if the value is one of the literals or matches
/// one of the globs.
#[derive(Clone, Debug)]
struct FastRegex {
    literals: LiteralSet,
    globs: Vec<Glob>,
}

/// One parsed piece of a simple alternative.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Lit(String),
    /// `.*` / `.+` runs: any text of at least `min` characters.
    Any {
        min: usize,
    },
}

/// `[prefix] (gap lit)* gap [suffix]`: literals in order, separated by runs of any characters of
/// a minimum length. Literals are found greedily leftmost, which is exact because gaps have only
/// lower bounds.
#[derive(Clone, Debug)]
struct Glob {
    /// Anchored at the start.
    prefix: String,
    /// Literals after the prefix, each preceded by a gap of at least `.0` characters.
    inner: Vec<(usize, String)>,
    /// Characters at least between the last literal (or prefix) and the suffix.
    tail_min: usize,
    /// Anchored at the end.
    suffix: String,
}

impl Glob {
    /// Builds a glob from pieces that contain at least one gap.
    fn from_pieces(pieces: Vec<Piece>) -> Self {
        let ends_with_literal = matches!(pieces.last(), Some(Piece::Lit(_)));
        let mut g = Glob {
            prefix: String::new(),
            inner: Vec::new(),
            tail_min: 0,
            suffix: String::new(),
        };
        let mut pieces = pieces.into_iter().peekable();
        if let Some(Piece::Lit(p)) = pieces.next_if(|p| matches!(p, Piece::Lit(_))) {
            g.prefix = p;
        }
        let mut gap = 0;
        let mut rest: Vec<(usize, String)> = Vec::new();
        for p in pieces {
            match p {
                Piece::Any { min } => gap += min,
                Piece::Lit(l) => rest.push((std::mem::take(&mut gap), l)),
            }
        }
        if ends_with_literal && let Some((last_gap, suffix)) = rest.pop() {
            // The pattern ends with a literal: it is anchored at the end.
            g.suffix = suffix;
            g.tail_min = last_gap;
        } else {
            g.tail_min = gap;
        }
        g.inner = rest;
        g
    }

    #[inline]
    fn is_match(&self, v: &str) -> bool {
        let Some(rest) = v.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        let Some(mut rest) = rest.strip_suffix(self.suffix.as_str()) else {
            return false;
        };
        for (gap, lit) in &self.inner {
            let Some(after_gap) = skip_chars(rest, *gap) else {
                return false;
            };
            let Some(i) = after_gap.find(lit.as_str()) else {
                return false;
            };
            rest = &after_gap[i + lit.len()..];
        }
        at_least_chars(rest, self.tail_min)
    }
}

/// `s` without its first `n` characters, or `None` if it is shorter.
#[inline]
fn skip_chars(s: &str, n: usize) -> Option<&str> {
    if n == 0 {
        return Some(s);
    }
    let mut it = s.char_indices();
    match it.nth(n - 1) {
        Some((i, c)) => Some(&s[i + c.len_utf8()..]),
        None => None,
    }
}

/// Whether `s` has at least `n` characters.
#[inline]
fn at_least_chars(s: &str, n: usize) -> bool {
    // A UTF-8 character takes one to four bytes.
    if s.len() < n {
        false
    } else if s.len() >= n.saturating_mul(4) {
        true
    } else {
        s.chars().nth(n - 1).is_some()
    }
}

/// Characters with a meaning in a regex outside a character class.
fn is_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
    )
}

/// Characters that `\c` turns into a literal `c` in both Go's and Rust's syntax.
fn is_escaped_literal(c: char) -> bool {
    c.is_ascii_punctuation() && c != '<' && c != '>'
}

impl FastRegex {
    /// Recognises `alt(|alt)*`, optionally wrapped in one `( )` or `(?: )`, where each
    /// alternative is literal text (with escaped punctuation), `.*` and `.+`. Returns `None` for
    /// anything else.
    fn parse(pattern: &str) -> Option<Self> {
        let body = pattern
            .strip_prefix("(?:")
            .or_else(|| pattern.strip_prefix('('))
            .and_then(|p| p.strip_suffix(')'))
            .unwrap_or(pattern);
        let mut literals = Vec::new();
        let mut globs = Vec::new();
        for alt in split_alternatives(body)? {
            let pieces = parse_alternative(alt)?;
            match pieces.as_slice() {
                [] => literals.push(String::new()),
                [Piece::Lit(l)] => literals.push(l.clone()),
                _ => globs.push(Glob::from_pieces(pieces)),
            }
        }
        Some(FastRegex {
            literals: LiteralSet::new(literals),
            globs,
        })
    }

    #[inline]
    fn is_match(&self, v: &str) -> bool {
        self.literals.contains(v) || self.globs.iter().any(|g| g.is_match(v))
    }
}

/// Splits on unescaped `|`; `None` if an unescaped parenthesis remains (nested groups are left
/// to the regex engine).
fn split_alternatives(body: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '(' | ')' => return None,
            '|' => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&body[start..]);
    Some(out)
}

/// Parses one alternative into literal and gap pieces; `None` if it uses anything else.
fn parse_alternative(alt: &str) -> Option<Vec<Piece>> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut chars = alt.chars().peekable();
    while let Some(c) = chars.next() {
        let lit = match c {
            '\\' => {
                let e = chars.next()?;
                if !is_escaped_literal(e) {
                    return None;
                }
                e
            }
            '.' => {
                let min = match chars.next()? {
                    '*' => 0,
                    '+' => 1,
                    _ => return None,
                };
                // `.*?`, `.+?` (lazy) and `.**` are left to the regex engine.
                if chars
                    .peek()
                    .is_some_and(|&n| is_meta(n) && n != '\\' && n != '.')
                {
                    return None;
                }
                if let Some(Piece::Any { min: m }) = pieces.last_mut() {
                    *m += min;
                } else {
                    pieces.push(Piece::Any { min });
                }
                continue;
            }
            c if is_meta(c) => return None,
            c => c,
        };
        // A literal followed by a quantifier is not literal text.
        if chars
            .peek()
            .is_some_and(|&n| matches!(n, '*' | '+' | '?' | '{'))
        {
            return None;
        }
        if let Some(Piece::Lit(s)) = pieces.last_mut() {
            s.push(lit);
        } else {
            pieces.push(Piece::Lit(lit.to_string()));
        }
    }
    Some(pieces)
}

/// The literal text every match of `pattern` starts with (possibly empty). Conservative: stops at
/// the first character with any regex meaning, drops a literal that a quantifier applies to, and
/// gives up if the pattern has a top-level alternation.
fn literal_prefix(pattern: &str) -> String {
    if has_top_level_alternation(pattern) {
        return String::new();
    }
    let mut prefix = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let lit = match c {
            '\\' => match chars.next() {
                Some(e) if is_escaped_literal(e) => e,
                _ => break,
            },
            c if is_meta(c) => break,
            c => c,
        };
        if chars
            .peek()
            .is_some_and(|&n| matches!(n, '*' | '+' | '?' | '{'))
        {
            break;
        }
        prefix.push(lit);
    }
    prefix
}

/// Whether `pattern` has a `|` outside every group and character class.
fn has_top_level_alternation(pattern: &str) -> bool {
    let mut depth = 0usize;
    let mut class = 0usize;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' => {
                class += 1;
                // `[]...]` and `[^]...]`: a leading `]` is literal.
                if chars.peek() == Some(&'^') {
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                }
            }
            ']' if class > 0 => class -= 1,
            '(' if class == 0 => depth += 1,
            ')' if class == 0 => depth = depth.saturating_sub(1),
            '|' if class == 0 && depth == 0 => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Matcher {
        Matcher::new(MatchType::Regexp, "l", p).expect("valid regex")
    }

    fn is_fast(m: &Matcher) -> bool {
        matches!(m.re.as_deref().map(|r| &r.kind), Some(RegexKind::Fast(_)))
    }

    #[test]
    fn equality() {
        let m = Matcher::new(MatchType::Equal, "a", "b").expect("matcher");
        assert!(m.matches("b") && !m.matches("") && !m.matches("bb"));
        assert!(!m.matches_empty());
        let m = Matcher::new(MatchType::NotEqual, "a", "b").expect("matcher");
        assert!(!m.matches("b") && m.matches("") && m.matches("c"));
        assert!(m.matches_empty());
        assert!(
            Matcher::new(MatchType::Equal, "a", "")
                .expect("matcher")
                .matches_empty()
        );
    }

    #[test]
    fn regex_is_anchored_and_dot_matches_newline() {
        let m = re("a.c");
        assert!(!is_fast(&m));
        assert!(m.matches("abc") && m.matches("a\nc") && !m.matches("xabc") && !m.matches("abcx"));
        let m = re("b");
        assert!(!m.matches("abc"));
        assert!(re(".*").matches("a\nb"));
        assert!(re("foo|bar").matches("bar") && !re("foo|bar").matches("foobar"));
    }

    #[test]
    fn simple_patterns_take_the_fast_path() {
        for p in [
            "", "abc", "a|b|c", "(a|b)", "(?:a|b)", ".*", ".+", "foo.*", ".*foo", ".*foo.*",
            "foo.*bar", "a\\.b", "x|.*y", "a.+b.*c", "|a",
        ] {
            assert!(is_fast(&re(p)), "{p} should be fast");
        }
        for p in [
            "a*", "[ab]", "a?", "(a|b)c", ".", ".*?", "(?i)a", "\\d", "a{2}", "a\\",
        ] {
            if let Ok(m) = Matcher::new(MatchType::Regexp, "l", p) {
                assert!(!is_fast(&m), "{p} should not be fast");
            }
        }
    }

    #[test]
    fn fast_path_semantics() {
        let m = re("foo.*bar");
        assert!(m.matches("foobar") && m.matches("foo-bar") && !m.matches("fooba"));
        let m = re("ab.*ba");
        assert!(!m.matches("aba") && m.matches("abba"));
        let m = re(".+.+");
        assert!(!m.matches("é") && m.matches("éé") && !m.matches(""));
        let m = re(".*a.+a.*");
        assert!(!m.matches("aa") && m.matches("aba") && m.matches("xxaxxaxx"));
        assert!(re("").matches("") && !re("").matches("a"));
        assert!(re("a|").matches("") && re("a|").matches("a"));
        let set = re("a|b|c|d|e|f|g|h|i|j|k");
        assert!(set.matches("k") && !set.matches("l") && !set.matches(""));
        let mut vals: Vec<&str> = set.set_values().expect("set").collect();
        vals.sort_unstable();
        assert_eq!(vals.len(), 11);
    }

    #[test]
    fn literal_prefixes() {
        assert_eq!(literal_prefix("foo[0-9]+"), "foo");
        assert_eq!(literal_prefix("foob*"), "foo");
        assert_eq!(literal_prefix("foo|bar[a]"), "");
        assert_eq!(literal_prefix("(foo|bar)x"), "");
        assert_eq!(literal_prefix("a\\.b(c|d)"), "a.b");
        assert_eq!(literal_prefix("[|]x"), "");
        assert_eq!(literal_prefix("x[|]"), "x");
        let m = re("foo[0-9]+");
        assert!(m.matches("foo12") && !m.matches("fo12") && !m.matches("foo"));
    }

    #[test]
    fn invalid_regex_is_an_error() {
        let e = Matcher::new(MatchType::Regexp, "job", "a(").expect_err("invalid");
        assert!(e.to_string().contains("job"));
        assert!(Matcher::new(MatchType::NotRegexp, "job", "(a|b").is_err());
        assert!(Matcher::new(MatchType::Regexp, "job", "a\\").is_err());
    }

    #[test]
    fn display_is_promql() {
        let m = Matcher::new(MatchType::NotRegexp, "job", "a\"b").expect("matcher");
        assert_eq!(m.to_string(), r#"job!~"a\"b""#);
    }
}
