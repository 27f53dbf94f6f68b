//! Series selectors from the outside: `match[]` parsed with promql-parser, and remote-read
//! label matchers, both turned into storage matchers.

use promql_parser::label::{MatchOp, Matcher as PromMatcher};
use promql_parser::parser::{Expr, parse};
use strata_storage::labels::METRIC_NAME;
use strata_storage::matcher::{MatchType, Matcher};

use super::error::ApiError;

/// Parses one `match[]` selector into matcher sets (one per `or` branch).
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let bad = |msg: &str| ApiError::bad_data(format!("invalid parameter \"match[]\": {msg}"));
    let expr = parse(s).map_err(|e| bad(&e))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(bad(&format!("{s:?} is not a series selector")));
    };
    let branches: Vec<&Vec<PromMatcher>> = if vs.matchers.or_matchers.is_empty() {
        vec![&vs.matchers.matchers]
    } else {
        vs.matchers.or_matchers.iter().collect()
    };
    let mut sets = Vec::with_capacity(branches.len());
    for branch in branches {
        let mut set = Vec::with_capacity(branch.len() + 1);
        if let Some(name) = &vs.name
            && !branch.iter().any(|m| m.name == METRIC_NAME)
        {
            set.push(
                Matcher::new(MatchType::Equal, METRIC_NAME, name.as_str())
                    .map_err(|e| bad(&e.to_string()))?,
            );
        }
        for m in branch {
            let t = match &m.op {
                MatchOp::Equal => MatchType::Equal,
                MatchOp::NotEqual => MatchType::NotEqual,
                MatchOp::Re(_) => MatchType::Regexp,
                MatchOp::NotRe(_) => MatchType::NotRegexp,
            };
            set.push(
                Matcher::new(t, m.name.as_str(), m.value.as_str())
                    .map_err(|e| bad(&e.to_string()))?,
            );
        }
        if set.iter().all(|m| m.matches("")) {
            return Err(bad("match[] must contain at least one non-empty matcher"));
        }
        sets.push(set);
    }
    Ok(sets)
}

/// Parses every `match[]` of a request; the union of their matcher sets.
pub fn parse_selectors(selectors: &[&str]) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let mut out = Vec::new();
    for s in selectors {
        out.extend(parse_selector(s)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let s = parse_selector(r#"up{job=~"a|b"}"#).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].len(), 2);
        assert!(parse_selector(r#"{job=""}"#).is_err());
        assert!(parse_selector("sum(up)").is_err());
        assert!(parse_selector("up{").is_err());
        let or = parse_selector(r#"{a="1" or b="2"}"#).unwrap();
        assert_eq!(or.len(), 2);
    }
}
