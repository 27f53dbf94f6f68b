//! Tenant IDs: validated exactly as Cortex does, because an ID becomes a directory name and a
//! bucket prefix. A valid ID is 1 to 150 characters of `[A-Za-z0-9!-_.*'()]`, is not `.` or `..`,
//! and never contains `|` (reserved for federated queries over several tenants).

use std::fmt;
use std::sync::Arc;

/// Cortex's limit on a tenant ID's length.
pub const MAX_TENANT_ID_LEN: usize = 150;

/// The tenant used when `auth_enabled: false`.
pub const ANONYMOUS: &str = "anonymous";

/// A validated tenant ID; cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

/// Why a tenant ID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantIdError {
    #[error("no org id")]
    Missing,
    #[error("tenant ID is too long: max {MAX_TENANT_ID_LEN} characters")]
    TooLong,
    #[error("tenant ID is '.' or '..'")]
    Unsafe,
    #[error("tenant ID '{id}' contains unsupported character '{ch}'")]
    UnsupportedChar { id: String, ch: char },
    #[error("multiple org IDs present: federated queries ('|') are not supported here")]
    Federated,
}

impl TenantId {
    /// Validates `id` as Cortex's `ValidTenantID`.
    pub fn parse(id: &str) -> Result<Self, TenantIdError> {
        if id.is_empty() {
            return Err(TenantIdError::Missing);
        }
        if id.contains('|') {
            return Err(TenantIdError::Federated);
        }
        if let Some(ch) = id.chars().find(|&c| !is_supported_char(c)) {
            return Err(TenantIdError::UnsupportedChar {
                id: truncate(id, 64),
                ch,
            });
        }
        if id.len() > MAX_TENANT_ID_LEN {
            return Err(TenantIdError::TooLong);
        }
        if id == "." || id == ".." {
            return Err(TenantIdError::Unsafe);
        }
        Ok(TenantId(Arc::from(id)))
    }

    pub fn anonymous() -> Self {
        TenantId(Arc::from(ANONYMOUS))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_supported_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '!' | '-' | '_' | '.' | '*' | '\'' | '(' | ')')
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_cortex_charset() {
        for id in ["a", "tenant-1", "A_b.c*d'e(f)!", &"x".repeat(150)] {
            assert!(TenantId::parse(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_unsafe_ids() {
        assert_eq!(TenantId::parse(""), Err(TenantIdError::Missing));
        assert_eq!(TenantId::parse("."), Err(TenantIdError::Unsafe));
        assert_eq!(TenantId::parse(".."), Err(TenantIdError::Unsafe));
        assert_eq!(
            TenantId::parse(&"x".repeat(151)),
            Err(TenantIdError::TooLong)
        );
        assert_eq!(TenantId::parse("a|b"), Err(TenantIdError::Federated));
        for bad in ["../etc", "a/b", "a b", "é", "a\\b", "a\0"] {
            assert!(
                matches!(
                    TenantId::parse(bad),
                    Err(TenantIdError::UnsupportedChar { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
