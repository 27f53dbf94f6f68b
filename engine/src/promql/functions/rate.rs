//! Counter and gauge change functions over a window: `rate`, `increase`, `delta` (with
//! Prometheus's extrapolation to the window's edges), `irate`, `idelta`, `deriv`,
//! `predict_linear`, `resets`, `changes`.

use super::WindowFn;
use crate::promql::aggregate::kahan_add;
use crate::promql::eval::Steps;

pub(crate) fn lookup(name: &str) -> Option<WindowFn> {
    Some(match name {
        "rate" => |w, te, _, r, _| extrapolated(w, te, r, true, true),
        "increase" => |w, te, _, r, _| extrapolated(w, te, r, true, false),
        "delta" => |w, te, _, r, _| extrapolated(w, te, r, false, false),
        "irate" => |w, _, _, _, _| instant_delta(w, true),
        "idelta" => |w, _, _, _, _| instant_delta(w, false),
        "deriv" => |w, _, _, _, _| {
            if w.len() < 2 {
                return None;
            }
            Some(linear_regression(w, w[0].0).0)
        },
        "predict_linear" => |w, _, t, _, p| {
            if w.len() < 2 {
                return None;
            }
            let (slope, intercept) = linear_regression(w, t);
            Some(slope * p.first().copied().unwrap_or(0.0) + intercept)
        },
        "resets" => |w, _, _, _, _| Some(w.windows(2).filter(|p| p[1].1 < p[0].1).count() as f64),
        "changes" => |w, _, _, _, _| {
            Some(
                w.windows(2)
                    .filter(|p| p[1].1 != p[0].1 && !(p[1].1.is_nan() && p[0].1.is_nan()))
                    .count() as f64,
            )
        },
        _ => return None,
    })
}

/// `rate` (`per_second`) or `increase` of one series at every step of `st`, written into
/// `points` (one per step). Returns the widest window's sample count and whether any step has a
/// value. The same arithmetic as [`extrapolate`] in one loop without closures, since this is the
/// hottest loop of most dashboards' queries.
///
/// When `dense` (windows overlap or touch: the step is not longer than the range), both window
/// edges walk forward sample by sample, each carrying the sum of the counter-reset corrections
/// up to it (the value before every drop), so a window's correction is the difference of the
/// two: O(1) per step, and bit for bit the sum a prefix array would give. Otherwise the windows
/// leave most samples out: each window's bounds are found by galloping search from the last ones
/// and it scans its own samples for resets, so samples between windows are barely touched.
#[allow(clippy::too_many_arguments)]
pub(crate) fn counter_points(
    samples: &[(i64, f64)],
    dense: bool,
    st: &Steps,
    at: Option<i64>,
    offset: i64,
    range: i64,
    per_second: bool,
    points: &mut [Option<f64>],
) -> (usize, bool) {
    let (mut lo, mut hi, mut widest, mut any) = (0usize, 0usize, 0usize, false);
    // Dense: `first` is samples[lo] and `last` samples[hi - 1] (a value no sample is below
    // while hi is 0); `c_lo` and `c_hi` the corrections among samples[..=lo] and samples[..hi].
    let mut first = samples.first().copied().unwrap_or_default();
    let mut last = (0, f64::NEG_INFINITY);
    let (mut c_lo, mut c_hi) = (0.0, 0.0);
    // What the extrapolated change is divided by: the range in seconds for a rate.
    let per = if per_second {
        range as f64 / 1000.0
    } else {
        1.0
    };
    let mut times = WindowTimes::default();
    for (i, p) in points.iter_mut().enumerate() {
        let te = at
            .unwrap_or(st.start + i as i64 * st.step)
            .saturating_sub(offset);
        let from = te.saturating_sub(range);
        if dense {
            while let Some(&s) = samples.get(hi)
                && s.0 <= te
            {
                if s.1 < last.1 {
                    c_hi += last.1;
                }
                last = s;
                hi += 1;
            }
            while lo < hi && first.0 <= from {
                lo += 1;
                if let Some(&s) = samples.get(lo) {
                    if s.1 < first.1 {
                        c_lo += first.1;
                    }
                    first = s;
                }
            }
        } else {
            hi = gallop_past(samples, hi, te);
            lo = gallop_past(&samples[..hi], lo, from);
        }
        let len = hi - lo;
        widest = widest.max(len);
        if len < 2 {
            continue;
        }
        let correction = if dense {
            c_hi - c_lo
        } else {
            (first, last) = (samples[lo], samples[hi - 1]);
            let mut c = 0.0;
            let mut prev = first.1;
            for &(_, v) in &samples[lo + 1..hi] {
                if v < prev {
                    c += prev;
                }
                prev = v;
            }
            c
        };
        let result = last.1 - first.1 + correction;
        // The window's times decide the extrapolation but for the counter's zero; regular
        // scrapes give every step the same, so they are worked out again only when they change.
        let key = (len, first.0 - from, te - last.0);
        if key != times.key {
            times = WindowTimes::new(key, (last.0 - first.0) as f64 / 1000.0, per);
        }
        let t = &times;
        // Extrapolating to the start stops where the counter would reach zero: at `to_zero`
        // (span * first / result) when that is nearer than `to_start`. Dividing only when the
        // two may be within a few rounding errors of each other (or beyond) keeps the common
        // case free of divisions and takes every branch as the exact arithmetic does.
        let surely_farther = (first.1 * t.span).partial_cmp(&(t.to_start * result * (1.0 + 1e-9)))
            == Some(std::cmp::Ordering::Greater);
        let value = if result > 0.0 && first.1 >= 0.0 && !surely_farther {
            let to_zero = t.span * (first.1 / result);
            if to_zero < t.to_start {
                // Prometheus divides by the span, then by the range; dividing once by their
                // product can differ in the last bit only.
                result * ((t.span + to_zero + t.to_end) / (t.span * per))
            } else {
                result * t.factor
            }
        } else {
            result * t.factor
        };
        *p = Some(value);
        any = true;
    }
    (widest, any)
}

/// The index of the first sample at or after `from` whose time is past `t` (the samples sorted
/// by time): a galloping search, which costs about twice the logarithm of the distance rather
/// than of the whole series, because the next window is usually a few dozen samples ahead.
fn gallop_past(samples: &[(i64, f64)], from: usize, t: i64) -> usize {
    let tail = &samples[from..];
    let mut bound = 1;
    while bound <= tail.len() && tail[bound - 1].0 <= t {
        bound *= 2;
    }
    // tail[bound / 2 - 1] is not past `t` (when bound > 1); tail[bound - 1] is, or is beyond.
    let lo = bound / 2;
    from + lo + tail[lo..bound.min(tail.len())].partition_point(|s| s.0 <= t)
}

/// The extrapolation of a counter window that depends on its times only.
#[derive(Default)]
struct WindowTimes {
    /// Samples in the window, ms from its start to the first, ms from the last to its end.
    key: (usize, i64, i64),
    /// Seconds from the first sample to the last.
    span: f64,
    /// Seconds to extrapolate at each end, before the counter's zero is considered.
    to_start: f64,
    to_end: f64,
    /// What the change is multiplied by when the zero is not nearer than `to_start`.
    factor: f64,
}

impl WindowTimes {
    /// As [`extrapolate`] (`per` is the range in seconds for a rate, 1 for an increase).
    fn new(key: (usize, i64, i64), span: f64, per: f64) -> WindowTimes {
        let (len, to_start, to_end) = key;
        let mut to_start = to_start as f64 / 1000.0;
        let mut to_end = to_end as f64 / 1000.0;
        // (A signed conversion is one instruction; no window holds 2^63 samples.)
        let avg = span / (len - 1) as i64 as f64;
        let threshold = avg * 1.1;
        if to_start >= threshold {
            to_start = avg / 2.0;
        }
        if to_end >= threshold {
            to_end = avg / 2.0;
        }
        WindowTimes {
            key,
            span,
            to_start,
            to_end,
            factor: (span + to_start + to_end) / (span * per),
        }
    }
}

/// `rate`/`increase`/`delta` over one window, finding the counter resets in it.
fn extrapolated(
    w: &[(i64, f64)],
    te: i64,
    range: i64,
    counter: bool,
    per_second: bool,
) -> Option<f64> {
    let mut correction = 0.0;
    if counter && w.len() >= 2 {
        let mut prev = w[0].1;
        for &(_, v) in &w[1..] {
            if v < prev {
                correction += prev;
            }
            prev = v;
        }
    }
    extrapolate(w, te, range, counter, per_second, correction)
}

/// The change over the window (plus `correction` for counter resets), extrapolated towards
/// the window's edges by at most half the average sample interval (and, for counters, not
/// below zero).
#[inline]
fn extrapolate(
    w: &[(i64, f64)],
    te: i64,
    range: i64,
    counter: bool,
    per_second: bool,
    correction: f64,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let result = last.1 - first.1 + correction;
    let range_start = te.saturating_sub(range);
    let mut to_start = (first.0 - range_start) as f64 / 1000.0;
    let mut to_end = (te - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg = sampled / (w.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if per_second {
        factor /= range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate`/`idelta`: from the last two samples.
fn instant_delta(w: &[(i64, f64)], rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (prev, last) = (w[w.len() - 2], w[w.len() - 1]);
    if !rate {
        return Some(last.1 - prev.1);
    }
    let dt = (last.0 - prev.0) as f64 / 1000.0;
    if dt == 0.0 {
        return None;
    }
    let d = if last.1 < prev.1 {
        last.1
    } else {
        last.1 - prev.1
    };
    Some(d / dt)
}

/// Least-squares fit of the window, with times in seconds relative to `intercept_t`: returns
/// (slope, intercept).
pub(crate) fn linear_regression(w: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = w[0].1;
    let mut const_y = true;
    for (i, &(t, y)) in w.iter().enumerate() {
        if i > 0 && y != w[i - 1].1 {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1000.0;
        (sx, cx) = kahan_add(x, sx, cx);
        (sy, cy) = kahan_add(y, sy, cy);
        (sxy, cxy) = kahan_add(x * y, sxy, cxy);
        (sx2, cx2) = kahan_add(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    let intercept = sy / n - slope * sx / n;
    (slope, intercept)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: [(i64, f64); 4] = [
        (60_000, 60.0),
        (120_000, 120.0),
        (180_000, 180.0),
        (240_000, 240.0),
    ];

    #[test]
    fn rate_extrapolates_to_the_window_edges() {
        // Samples every 60s from 60s to 240s in the window (0, 300s]: the 60s gaps to the
        // edges are within 1.1 intervals, so the increase of 180 over 180s is extrapolated over
        // the whole 300s.
        let inc = extrapolated(&W, 300_000, 300_000, true, false).unwrap();
        assert!((inc - 300.0).abs() < 1e-9, "{inc}");
        let rate = extrapolated(&W, 300_000, 300_000, true, true).unwrap();
        assert!((rate - 1.0).abs() < 1e-9, "{rate}");
        // A wider gap at the end extrapolates by half an interval only.
        let inc = extrapolated(&W, 340_000, 340_000, true, false).unwrap();
        assert!((inc - 270.0).abs() < 1e-9, "{inc}");
    }

    #[test]
    fn counter_resets_and_zero_clamp() {
        // A reset from 10 to 2 adds 10: the increase is 8, extrapolated by 30s at each end.
        let w = [(100_000, 4.0), (160_000, 10.0), (220_000, 2.0)];
        let inc = extrapolated(&w, 300_000, 300_000, true, false).unwrap();
        assert!((inc - 12.0).abs() < 1e-9, "{inc}");
        // Extrapolation to the start stops where the counter would reach zero (10s earlier).
        let w = [(100_000, 1.0), (160_000, 7.0), (220_000, 13.0)];
        let inc = extrapolated(&w, 300_000, 300_000, true, false).unwrap();
        assert!(
            (inc - 12.0 * (120.0 + 10.0 + 30.0) / 120.0).abs() < 1e-9,
            "{inc}"
        );
        assert_eq!(extrapolated(&w[..1], 300_000, 300_000, true, false), None);
    }

    #[test]
    fn gallop_past_finds_what_a_binary_search_finds() {
        let samples: Vec<(i64, f64)> = (0..300).map(|i| (i * 10 + i % 7, 0.0)).collect();
        for from in [0, 1, 5, 64, 299, 300] {
            for t in [-1, 0, 9, 10, 555, 2990, 2991, 5000] {
                let want = from + samples[from..].partition_point(|s| s.0 <= t);
                assert_eq!(gallop_past(&samples, from, t), want, "from {from} t {t}");
            }
        }
        assert_eq!(gallop_past(&[], 0, 5), 0);
    }

    #[test]
    fn irate_idelta_deriv() {
        let w = [(0, 1.0), (10_000, 5.0), (20_000, 3.0)];
        assert_eq!(instant_delta(&w, true), Some(0.3));
        assert_eq!(instant_delta(&w, false), Some(-2.0));
        let (slope, intercept) = linear_regression(&[(0, 1.0), (10_000, 3.0), (20_000, 5.0)], 0);
        assert!((slope - 0.2).abs() < 1e-12 && (intercept - 1.0).abs() < 1e-12);
    }

    proptest::proptest! {
        /// Both ways of finding windows and resets (prefix sums, and per-window scans for
        /// sparse windows) give, at every step, exactly what the one-window reference gives.
        #[test]
        fn counter_points_match_the_window_reference(
            deltas in proptest::collection::vec((1i64..90_000, -50.0f64..100.0), 0..300),
            start in 0i64..200_000,
            step in 1i64..400_000,
            range in 1i64..400_000,
            n in 1usize..60,
            offset in -100_000i64..100_000,
            per_second: bool,
        ) {
            let mut samples = Vec::new();
            let (mut t, mut v) = (0i64, 0.0f64);
            for (dt, dv) in deltas {
                t += dt;
                // A negative step is a counter reset to a small value.
                v = if dv < 0.0 { -dv } else { v + dv };
                samples.push((t, v));
            }
            let st = Steps { start, step, n };
            for dense in [true, false] {
                let mut points = vec![None; n];
                counter_points(&samples, dense, &st, None, offset, range, per_second, &mut points);
                for (i, got) in points.iter().enumerate() {
                    let te = st.t(i) - offset;
                    let lo = samples.partition_point(|s| s.0 <= te - range);
                    let hi = samples.partition_point(|s| s.0 <= te);
                    let want = extrapolated(&samples[lo..hi], te, range, true, per_second);
                    match (got, want) {
                        (None, None) => {}
                        (Some(g), Some(w)) => proptest::prop_assert!(
                            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                            "step {i}: {g} != {w} (dense {dense})"
                        ),
                        _ => proptest::prop_assert!(false, "step {i}: {got:?} != {want:?}"),
                    }
                }
            }
        }
    }
}
