//! ULIDs, the names of blocks: 128 bits, a 48-bit Unix timestamp in milliseconds followed by 80
//! random bits, written as 26 characters of Crockford's base32 (`0-9A-HJKMNP-TV-Z`, 5 bits each,
//! most significant first; the first character carries only 3 bits, so it is at most `7`).
//!
//! Invariants: the value order equals the order of the timestamps, then of the random bits, and
//! equals the lexicographic order of the text form. Parsing accepts lower case (as the spec
//! allows) and rejects every other character, including Crockford's aliases `I`, `L`, `O`.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// The characters of Crockford's base32, by value.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters in the text form.
const LEN: usize = 26;

/// Bits of random data after the timestamp.
const RANDOM_BITS: u32 = 80;

/// A ULID; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ulid(u128);

/// Why a string is not a ULID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UlidError {
    #[error("ulid {0:?} is not 26 characters long")]
    Length(String),
    #[error("ulid {0:?} has a character outside Crockford's base32")]
    Character(String),
    #[error("ulid {0:?} overflows 128 bits (its first character is above 7)")]
    Overflow(String),
}

impl Ulid {
    /// The ULID of `timestamp_ms` (its low 48 bits) and the low 80 bits of `random`.
    pub fn new(timestamp_ms: u64, random: u128) -> Self {
        let ts = u128::from(timestamp_ms & ((1 << 48) - 1));
        Ulid(ts << RANDOM_BITS | (random & ((1 << RANDOM_BITS) - 1)))
    }

    /// A fresh ULID for now, with random bits from the thread-local generator.
    pub fn generate() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self::new(ms, rand::random::<u128>())
    }

    /// The 128-bit value.
    pub fn from_u128(v: u128) -> Self {
        Ulid(v)
    }

    pub fn to_u128(self) -> u128 {
        self.0
    }

    /// The 16 bytes, big-endian (the binary form of the spec).
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    pub fn from_bytes(b: [u8; 16]) -> Self {
        Ulid(u128::from_be_bytes(b))
    }

    /// Milliseconds since the Unix epoch.
    pub fn timestamp_ms(self) -> u64 {
        (self.0 >> RANDOM_BITS) as u64
    }

    /// The text form without allocating.
    pub fn encode(self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        for (i, c) in out.iter_mut().enumerate() {
            let shift = 5 * (LEN - 1 - i);
            *c = ALPHABET[((self.0 >> shift) & 0x1f) as usize];
        }
        out
    }
}

/// The value of a base32 character, or `None`.
fn decode_char(c: u8) -> Option<u8> {
    let c = c.to_ascii_uppercase();
    ALPHABET.iter().position(|&a| a == c).map(|v| v as u8)
}

impl FromStr for Ulid {
    type Err = UlidError;

    fn from_str(s: &str) -> Result<Self, UlidError> {
        let b = s.as_bytes();
        if b.len() != LEN {
            return Err(UlidError::Length(s.to_owned()));
        }
        let mut v = 0u128;
        for &c in b {
            let d = decode_char(c).ok_or_else(|| UlidError::Character(s.to_owned()))?;
            v = v << 5 | u128::from(d);
        }
        if decode_char(b[0]).is_some_and(|d| d > 7) {
            return Err(UlidError::Overflow(s.to_owned()));
        }
        Ok(Ulid(v))
    }
}

impl fmt::Display for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.encode();
        // The alphabet is ASCII.
        f.write_str(std::str::from_utf8(&b).unwrap_or_default())
    }
}

impl serde::Serialize for Ulid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.encode();
        s.serialize_str(std::str::from_utf8(&b).unwrap_or_default())
    }
}

impl<'de> serde::Deserialize<'de> for Ulid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_matches_the_spec() {
        assert_eq!(Ulid::from_u128(0).to_string(), "00000000000000000000000000");
        assert_eq!(
            Ulid::from_u128(u128::MAX).to_string(),
            "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"
        );
        // The spec's example timestamp: 1469918176385 ms is "01ARYZ6S41".
        let u = Ulid::new(1_469_918_176_385, 0);
        assert!(u.to_string().starts_with("01ARYZ6S41"));
        assert_eq!(u.timestamp_ms(), 1_469_918_176_385);
        // A ULID written by promtool.
        let s = "01M80ZDY2G4NPEQRK981ER2GZR";
        let u: Ulid = s.parse().expect("valid ulid");
        assert_eq!(u.to_string(), s);
        assert_eq!(s.to_lowercase().parse::<Ulid>(), Ok(u));
        assert_eq!(Ulid::from_bytes(u.to_bytes()), u);
    }

    #[test]
    fn invalid_text_is_rejected() {
        assert!(matches!("".parse::<Ulid>(), Err(UlidError::Length(_))));
        assert!(matches!(
            "01ARYZ6S41TSV4RRFFQ69G5FAVX".parse::<Ulid>(),
            Err(UlidError::Length(_))
        ));
        assert!(matches!(
            "01ARYZ6S41TSV4RRFFQ69G5FAI".parse::<Ulid>(),
            Err(UlidError::Character(_))
        ));
        assert!("01ARYZ6S41TSV4RRFFQ69G5FAé".parse::<Ulid>().is_err());
        assert!(matches!(
            "80000000000000000000000000".parse::<Ulid>(),
            Err(UlidError::Overflow(_))
        ));
    }

    #[test]
    fn order_is_time_then_random_and_matches_text() {
        let a = Ulid::new(1000, u128::MAX);
        let b = Ulid::new(1001, 0);
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
        let g1 = Ulid::generate();
        let g2 = Ulid::generate();
        assert_ne!(g1, g2);
    }

    #[test]
    fn serde_uses_the_text_form() {
        let u = Ulid::new(1_700_000_000_000, 42);
        let j = serde_json::to_string(&u).expect("serialize");
        assert_eq!(j, format!("\"{u}\""));
        assert_eq!(serde_json::from_str::<Ulid>(&j).expect("deserialize"), u);
        assert!(serde_json::from_str::<Ulid>("\"nope\"").is_err());
    }
}
