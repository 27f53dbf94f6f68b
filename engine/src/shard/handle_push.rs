//! Appending a shard's part of a push: find or create each series, check and append its samples.
//!
//! Hot path: a known series costs one hash lookup, one comparison of its label bytes with the
//! stored label set, and one XOR append per sample. Only a new series is validated, interned and
//! indexed. Errors are counted; only the first one's message is built (Cortex answers with one).

use std::sync::Arc;

use strata_storage::batch::WriteBatch;
use strata_storage::head::AppendError;
use strata_storage::labels::LabelHasher;

use super::Shard;
use crate::limits::TenantShared;
use crate::validation::{TimeWindow, format_series, validate_series};

/// Why samples were not appended; used for the discarded-samples metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiscardReason {
    Invalid,
    SeriesLimit,
    TooOld,
    TooNew,
    OutOfOrder,
    Duplicate,
    OutOfBounds,
}

impl DiscardReason {
    /// The `reason` label Cortex uses for `discarded_samples_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscardReason::Invalid => "invalid_series",
            DiscardReason::SeriesLimit => "per_user_series_limit",
            DiscardReason::TooOld => "greater_than_max_sample_age",
            DiscardReason::TooNew => "too_far_in_future",
            DiscardReason::OutOfOrder => "sample-out-of-order",
            DiscardReason::Duplicate => "new-value-for-timestamp",
            DiscardReason::OutOfBounds => "sample-out-of-bounds",
        }
    }
}

/// The outcome of appending a part.
#[derive(Debug, Default)]
pub struct PushResult {
    pub appended: u64,
    pub new_series: u64,
    /// Samples not appended, by reason.
    pub discarded: Vec<(DiscardReason, u64)>,
    /// The first error's message (without the tenant prefix).
    pub first_error: Option<String>,
    /// The WAL sequence number the push's records end at (`None`: nothing logged).
    pub wal_seq: Option<u64>,
    /// Set when the WAL could not make the push durable: the push failed (500, retried).
    pub wal_error: Option<String>,
}

impl PushResult {
    fn discard(&mut self, reason: DiscardReason, n: u64, msg: impl FnOnce() -> String) {
        match self.discarded.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, c)) => *c += n,
            None => self.discarded.push((reason, n)),
        }
        if self.first_error.is_none() {
            self.first_error = Some(msg());
        }
    }

    /// Folds another part's result into this one.
    pub fn merge(&mut self, other: PushResult) {
        self.appended += other.appended;
        self.new_series += other.new_series;
        for (r, n) in other.discarded {
            match self.discarded.iter_mut().find(|(x, _)| *x == r) {
                Some((_, c)) => *c += n,
                None => self.discarded.push((r, n)),
            }
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        if self.wal_error.is_none() {
            self.wal_error = other.wal_error;
        }
    }
}

impl Shard {
    /// Appends the series `indexes` of `batch` for `tenant`.
    pub fn handle_push(
        &mut self,
        tenant: &Arc<TenantShared>,
        batch: &WriteBatch,
        indexes: &[u32],
        window: TimeWindow,
    ) -> PushResult {
        let scheme = self.scheme;
        let mut scratch = std::mem::take(&mut self.scratch);
        if let Some(msg) = self.wal_failure() {
            return PushResult {
                wal_error: Some(msg.to_owned()),
                ..PushResult::default()
            };
        }
        // What the WAL logs: new series and appended samples (buffers reused across pushes).
        let logging = self.wal.is_some();
        let (mut wal_series, mut wal_samples) = self
            .wal
            .as_mut()
            .map(|w| {
                (
                    std::mem::take(&mut w.new_series),
                    std::mem::take(&mut w.samples),
                )
            })
            .unwrap_or_default();
        let th = self.tenant_head(tenant);
        let wal_id = th.wal_id;
        let min_valid_t = th.min_valid_t.max(th.collected_before);
        let head = &mut th.head;
        let limits = &th.shared.limits;
        let mut res = PushResult::default();
        for &i in indexes {
            let i = i as usize;
            let entry = &batch.series[i];
            let samples = batch.samples_of(i);
            if samples.is_empty() {
                continue;
            }
            let labels = batch.labels_of(i).filter(|(_, v)| !v.is_empty());
            let sref = if let Some(s) = head.lookup(entry.hash, labels.clone()) {
                s
            } else {
                {
                    if let Err(msg) = validate_series(batch.labels_of(i), limits, scheme) {
                        res.discard(DiscardReason::Invalid, samples.len() as u64, || msg);
                        continue;
                    }
                    if !th.shared.reserve_series() {
                        let limit = limits.max_global_series_per_user;
                        res.discard(DiscardReason::SeriesLimit, samples.len() as u64, || {
                            format!(
                                "per-user series limit of {limit} exceeded, please contact administrator to raise it (global limit: {limit}) series: '{}'",
                                format_series(batch.labels_of(i))
                            )
                        });
                        continue;
                    }
                    scratch.clear();
                    let mut hasher = LabelHasher::new();
                    for (n, v) in labels.clone() {
                        hasher.add(n, v);
                        // Validated above: both are UTF-8.
                        scratch.push((
                            String::from_utf8_lossy(n).into(),
                            String::from_utf8_lossy(v).into(),
                        ));
                    }
                    debug_assert_eq!(hasher.finish(), entry.hash);
                    res.new_series += 1;
                    let r = head.create(entry.hash, scratch.iter().map(|(n, v)| (&**n, &**v)));
                    if logging {
                        wal_series.push(r);
                    }
                    r
                }
            };
            for s in samples {
                if s.t < window.min_t || s.t > window.max_t {
                    let reason = if s.t < window.min_t {
                        DiscardReason::TooOld
                    } else {
                        DiscardReason::TooNew
                    };
                    res.discard(reason, 1, || {
                        window.check(s.t, batch.labels_of(i)).unwrap_or_default()
                    });
                    continue;
                }
                if s.t < min_valid_t {
                    // Before the head: that range is in a block already (Prometheus's error).
                    res.discard(DiscardReason::OutOfBounds, 1, || {
                        format!(
                            "err: out of bounds. timestamp={}, series={}",
                            format_rfc3339_ms(s.t),
                            format_series(batch.labels_of(i))
                        )
                    });
                    continue;
                }
                match head.append(sref, s.t, s.v) {
                    Ok(()) => {
                        res.appended += 1;
                        if logging {
                            wal_samples.push((sref, s.t, s.v));
                        }
                    }
                    Err(e) => {
                        let reason = match e {
                            AppendError::OutOfOrder { .. } => DiscardReason::OutOfOrder,
                            _ => DiscardReason::Duplicate,
                        };
                        res.discard(reason, 1, || {
                            format!(
                                "err: {e}. timestamp={}, series={}",
                                format_rfc3339_ms(s.t),
                                format_series(batch.labels_of(i))
                            )
                        });
                    }
                }
            }
        }
        self.scratch = scratch;
        if res.appended > 0
            && let Some(th) = self.tenants.get_mut(&tenant.id)
        {
            th.last_append = std::time::Instant::now();
            // A page of closed chunks filled: the spill task writes it out and maps it.
            if let Some(spill) = &self.spill
                && th.head.has_full_pages()
            {
                spill.wake();
            }
        }
        if let Some(w) = self.wal.as_mut() {
            w.new_series = wal_series;
            w.samples = wal_samples;
            res.wal_seq = self.log_push(wal_id, &tenant.id);
        }
        res
    }
}

/// A millisecond timestamp as RFC 3339 in UTC, e.g. `2024-01-02T03:04:05.678Z`.
pub fn format_rfc3339_ms(t_ms: i64) -> String {
    let secs = t_ms.div_euclid(1000);
    let millis = t_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let doe = shifted.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::format_rfc3339_ms;

    #[test]
    fn rfc3339() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            format_rfc3339_ms(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }
}
