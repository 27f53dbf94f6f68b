//! The skip file: one skipped eval per line, `<file>:<line> <reason>`; `#` starts a comment.
//! The runner skips exactly the evals listed there.

use std::collections::HashMap;

/// Evals to skip, by file name and line, with their reasons.
#[derive(Debug, Default)]
pub struct Skips {
    entries: HashMap<(String, usize), String>,
}

impl Skips {
    pub fn parse(text: &str) -> Result<Skips, String> {
        let mut entries = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let err = || {
                format!(
                    "skip file line {}: expected `<file>:<line> <reason>`",
                    i + 1
                )
            };
            let (loc, reason) = l.split_once(char::is_whitespace).ok_or_else(err)?;
            let (file, line) = loc.rsplit_once(':').ok_or_else(err)?;
            let line: usize = line.parse().map_err(|_| err())?;
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(err());
            }
            if entries
                .insert((file.to_owned(), line), reason.to_owned())
                .is_some()
            {
                return Err(format!("skip file line {}: {loc} listed twice", i + 1));
            }
        }
        Ok(Skips { entries })
    }

    /// The reason `file:line` is skipped, if it is.
    pub fn reason(&self, file: &str, line: usize) -> Option<&str> {
        self.entries
            .get(&(file.to_owned(), line))
            .map(String::as_str)
    }

    /// Every entry: `(file, line, reason)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, usize, &str)> {
        self.entries
            .iter()
            .map(|((f, l), r)| (f.as_str(), *l, r.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Skips;

    #[test]
    fn parses_entries() {
        let s = Skips::parse("# c\n\nfunctions.test:12 needs native-histogram samples\n").unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(
            s.reason("functions.test", 12),
            Some("needs native-histogram samples")
        );
        assert_eq!(s.reason("functions.test", 13), None);
        assert!(Skips::parse("functions.test:12").is_err());
        assert!(Skips::parse("functions.test 12 x").is_err());
        assert!(Skips::parse("a.test:1 x\na.test:1 y").is_err());
    }
}
