//! The synthetic fleet: `hosts` machines running `node_exporter`, scraped every `interval` for
//! `rounds` rounds, their series split round-robin across `tenants`.
//!
//! Invariants the writer and the verifier rely on:
//! - Everything is a pure function of the [`FleetSpec`]: the same spec always yields the same
//!   label sets, timestamps and value bits, so `verify` recomputes what `write` sent.
//! - Each host has exactly [`SERIES_PER_HOST`] series (see [`catalogue`]), every label set sorted
//!   by label name and unique within the fleet (`instance` differs per host).
//! - A host's timestamps are `start + round * interval + offset`, with a fixed per-host offset in
//!   `[0, interval)` (Prometheus spreads scrapes over the interval), so they strictly increase and
//!   stay below `start + rounds * interval`.
//! - Counters never decrease; gauges random-walk inside fixed bounds.
//!
//! That is the `node` profile. [`profile`] adds the others (`k8s`: pods that come and go, see
//! [`k8s`]; `tenants`: one large tenant and many small ones) and the [`Workload`] that names one;
//! [`Generator`] is what the writer reads, one round at a time, whatever the profile.

pub mod catalogue;
pub mod k8s;
pub mod profile;

pub use profile::{K8sSpec, Profile, ProfileArgs, ProfileKind, Workload};

use serde::{Deserialize, Serialize};
use strata_net::remote_write::proto::{Label, Sample};

use crate::Error;
use catalogue::{Def, Model};

/// Series every host exposes.
pub const SERIES_PER_HOST: usize = 100;

/// Timestamps stay before the year 10000 (RFC 3339 cannot print later ones).
const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_000;

/// The parameters that determine every generated sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetSpec {
    /// Number of hosts (`instance="host-N:9100"`, N from 0).
    pub hosts: u32,
    /// Number of tenants (`tenant-1` .. `tenant-N`); host N belongs to tenant `N % tenants + 1`.
    pub tenants: u32,
    /// Samples per series.
    pub rounds: u32,
    /// Scrape interval in milliseconds.
    pub interval_ms: i64,
    /// Start of round 0, milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl FleetSpec {
    /// Checks the bounds the generator relies on.
    pub fn validate(&self) -> Result<(), Error> {
        if self.hosts == 0 {
            return Err(Error::Invalid("--hosts must be at least 1".into()));
        }
        if self.tenants == 0 || self.tenants > self.hosts {
            return Err(Error::Invalid(format!(
                "--tenants must be between 1 and --hosts ({}), got {}",
                self.hosts, self.tenants
            )));
        }
        if self.rounds == 0 {
            return Err(Error::Invalid("--rounds must be at least 1".into()));
        }
        if self.interval_ms <= 0 {
            return Err(Error::Invalid("--interval must be at least 1ms".into()));
        }
        let span = i64::from(self.rounds).checked_mul(self.interval_ms);
        let end = span.and_then(|s| s.checked_add(self.start_ms));
        if self.start_ms < 0 || end.is_none_or(|end| end > MAX_TIMESTAMP_MS) {
            return Err(Error::Invalid(
                "--start + --rounds * --interval must lie between 1970 and 9999".into(),
            ));
        }
        Ok(())
    }

    /// The default start: `rounds` intervals before `now_ms`, aligned down to the interval, so the
    /// last round is just behind the wall clock.
    pub fn recent_start(now_ms: i64, rounds: u32, interval_ms: i64) -> i64 {
        let interval_ms = interval_ms.max(1);
        let start = now_ms.saturating_sub(i64::from(rounds).saturating_mul(interval_ms));
        start.div_euclid(interval_ms) * interval_ms
    }

    /// Tenant number (1-based) of `host`.
    pub fn tenant_of(&self, host: u32) -> u32 {
        host % self.tenants + 1
    }

    /// Hosts of tenant `tenant` (1-based), ascending.
    pub fn hosts_of(&self, tenant: u32) -> impl Iterator<Item = u32> {
        (tenant.saturating_sub(1)..self.hosts).step_by(self.tenants as usize)
    }

    /// Exclusive upper bound of every timestamp.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + i64::from(self.rounds) * self.interval_ms
    }

    /// Total series of the fleet.
    pub fn series(&self) -> u64 {
        u64::from(self.hosts) * SERIES_PER_HOST as u64
    }

    /// Total samples of the fleet.
    pub fn samples(&self) -> u64 {
        self.series() * u64::from(self.rounds)
    }

    /// Scrape offset of `host` inside the interval.
    pub(crate) fn offset_ms(&self, host: u32) -> i64 {
        (mix(self.seed ^ 0x6f66_6673_6574, u64::from(host)) % self.interval_ms as u64) as i64
    }
}

/// Tenant id sent in the tenant header for tenant number `n`.
pub fn tenant_id(n: u32) -> String {
    format!("tenant-{n}")
}

/// The `instance` label of `host`.
pub fn instance(host: u32) -> String {
    format!("host-{host}:9100")
}

/// `SplitMix64`: a tiny, fast generator whose output depends only on its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniformly one of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// Hashes two words into one (seeding per-host and per-series generators).
pub fn mix(a: u64, b: u64) -> u64 {
    Rng::new(a ^ b.wrapping_mul(0xd6e8_feb8_6659_fd93)).next_u64()
}

/// One series of a host and its generator state.
#[derive(Clone, Debug)]
pub struct Series {
    /// Sorted by name; includes `__name__`, `instance` and `job`.
    pub labels: Vec<Label>,
    model: Model,
    /// Current value in the series' integer unit (see [`catalogue::Scale`]).
    units: i64,
    mul: f64,
    div: f64,
    rng: Rng,
}

impl Series {
    /// A series of `def`, with `__name__` and the target's labels `extra` added.
    fn new(def: Def, extra: &[(&str, &str)], rng: Rng) -> Self {
        let mut labels: Vec<Label> = def
            .labels
            .into_iter()
            .map(|(name, value)| Label {
                name: name.to_owned(),
                value,
            })
            .collect();
        labels.push(label("__name__", def.name));
        labels.extend(extra.iter().map(|(name, value)| label(name, value)));
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            labels,
            model: def.model,
            units: def.initial,
            mul: def.scale.mul,
            div: def.scale.div,
            rng,
        }
    }

    /// The metric name.
    pub fn name(&self) -> &str {
        self.labels
            .iter()
            .find(|l| l.name == "__name__")
            .map_or("", |l| l.value.as_str())
    }

    /// Whether this series is a counter (never decreases).
    pub fn is_counter(&self) -> bool {
        matches!(self.model, Model::Counter { .. })
    }

    /// The value at the current round, whose timestamp is `ts_ms`.
    pub fn value(&self, ts_ms: i64) -> f64 {
        match self.model {
            Model::Clock => ts_ms as f64 / 1000.0,
            _ => self.units as f64 * self.mul / self.div,
        }
    }

    /// Moves to the next round, `interval_s` later.
    fn step(&mut self, interval_s: f64) {
        match self.model {
            Model::Counter { rate, jitter } => {
                let mean = rate * interval_s * (1.0 + jitter * (2.0 * self.rng.unit() - 1.0));
                // Stochastic rounding keeps slow counters (errors, drops) mostly flat but moving.
                let inc = (mean.max(0.0) + self.rng.unit()).floor() as i64;
                self.units = self.units.saturating_add(inc);
            }
            Model::Gauge { lo, hi, step } => {
                let delta = ((2.0 * self.rng.unit() - 1.0) * step as f64).round() as i64;
                self.units = (self.units + delta).clamp(lo, hi);
            }
            Model::Constant | Model::Clock => {}
        }
    }
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

/// One host: its series and where it is in time. Start at round 0 with [`Host::new`], then
/// [`Host::advance`] once per round.
#[derive(Clone, Debug)]
pub struct Host {
    index: u32,
    round: u32,
    first_ts: i64,
    interval_ms: i64,
    series: Vec<Series>,
}

impl Host {
    /// Host `index` of `spec`, positioned at round 0.
    pub fn new(spec: &FleetSpec, index: u32) -> Self {
        let host_seed = mix(spec.seed, u64::from(index));
        let mut rng = Rng::new(host_seed);
        let defs = catalogue::node_exporter(index, spec, &mut rng);
        debug_assert_eq!(defs.len(), SERIES_PER_HOST);
        let target = instance(index);
        let extra = [("instance", target.as_str()), ("job", "node")];
        let series = defs
            .into_iter()
            .enumerate()
            .map(|(i, def)| Series::new(def, &extra, Rng::new(mix(host_seed, i as u64 + 1))))
            .collect();
        Self {
            index,
            round: 0,
            first_ts: spec.start_ms + spec.offset_ms(index),
            interval_ms: spec.interval_ms,
            series,
        }
    }

    /// Host number.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Current round.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// Timestamp of the current round.
    pub fn timestamp(&self) -> i64 {
        self.first_ts + i64::from(self.round) * self.interval_ms
    }

    /// The host's series, in catalogue order.
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// Moves every series to the next round.
    pub fn advance(&mut self) {
        let interval_s = self.interval_ms as f64 / 1000.0;
        for s in &mut self.series {
            s.step(interval_s);
        }
        self.round += 1;
    }

    /// Every sample of every series of host `index` over all rounds of `spec`: what a reader must
    /// get back (the same for the `node` and `tenants` profiles).
    pub fn expected(spec: &FleetSpec, index: u32) -> Vec<(Vec<Label>, Vec<Sample>)> {
        let mut host = Self::new(spec, index);
        let mut out: Vec<(Vec<Label>, Vec<Sample>)> = host
            .series
            .iter()
            .map(|s| (s.labels.clone(), Vec::with_capacity(spec.rounds as usize)))
            .collect();
        for round in 0..spec.rounds {
            if round > 0 {
                host.advance();
            }
            let ts = host.timestamp();
            for (s, (_, samples)) in host.series.iter().zip(&mut out) {
                samples.push(Sample {
                    value: s.value(ts),
                    timestamp: ts,
                });
            }
        }
        out
    }
}

/// A profile's data one round at a time, as the writer sends it. Starts at round 0; the writer
/// calls [`Generator::advance`] before every later round.
pub trait Generator {
    /// Moves every unit to the next round.
    fn advance(&mut self);

    /// The samples of `unit` (a host, or a pod slot for `k8s`) in the current round, in send
    /// order: label set (sorted by name), timestamp, value. Nothing is allocated per sample.
    fn samples(&self, unit: u32) -> impl Iterator<Item = (&[Label], i64, f64)>;
}

/// The hosts of the `node` and `tenants` profiles (the same data; only tenants differ).
#[derive(Clone, Debug)]
pub struct HostFleet {
    hosts: Vec<Host>,
}

impl HostFleet {
    /// Every host of `spec` at round 0.
    pub fn new(spec: &FleetSpec) -> Self {
        Self {
            hosts: (0..spec.hosts).map(|h| Host::new(spec, h)).collect(),
        }
    }
}

impl Generator for HostFleet {
    fn advance(&mut self) {
        self.hosts.iter_mut().for_each(Host::advance);
    }

    fn samples(&self, unit: u32) -> impl Iterator<Item = (&[Label], i64, f64)> {
        let host = &self.hosts[unit as usize];
        let ts = host.timestamp();
        host.series()
            .iter()
            .map(move |s| (s.labels.as_slice(), ts, s.value(ts)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn spec() -> FleetSpec {
        FleetSpec {
            hosts: 7,
            tenants: 3,
            rounds: 50,
            interval_ms: 15_000,
            start_ms: 1_700_000_000_000,
            seed: 42,
        }
    }

    #[test]
    fn same_spec_same_samples() {
        let s = spec();
        for host in 0..s.hosts {
            let a = Host::expected(&s, host);
            let b = Host::expected(&s, host);
            let bits = |v: &[(Vec<Label>, Vec<Sample>)]| {
                v.iter()
                    .flat_map(|(_, samples)| {
                        samples.iter().map(|x| (x.timestamp, x.value.to_bits()))
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&a), bits(&b));
            assert_eq!(
                a.iter().map(|x| &x.0).collect::<Vec<_>>(),
                b.iter().map(|x| &x.0).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn seed_changes_values() {
        let a = Host::expected(&spec(), 0);
        let b = Host::expected(&FleetSpec { seed: 43, ..spec() }, 0);
        let differ = a.iter().zip(&b).filter(|(x, y)| x.1 != y.1).count();
        assert!(differ > SERIES_PER_HOST / 2, "only {differ} series differ");
    }

    #[test]
    fn about_a_hundred_sorted_unique_series_per_host() {
        let s = spec();
        let mut all = HashSet::new();
        for h in 0..s.hosts {
            let host = Host::new(&s, h);
            assert_eq!(host.series().len(), SERIES_PER_HOST);
            for series in host.series() {
                let names: Vec<&str> = series.labels.iter().map(|l| l.name.as_str()).collect();
                assert!(names.windows(2).all(|w| w[0] < w[1]), "unsorted {names:?}");
                assert_eq!(names[0], "__name__");
                assert!(series.labels.iter().all(|l| !l.value.is_empty()));
                assert!(
                    series
                        .labels
                        .iter()
                        .any(|l| l.name == "instance" && l.value == instance(h))
                );
                assert!(
                    series
                        .labels
                        .iter()
                        .any(|l| l.name == "job" && l.value == "node")
                );
                assert!(
                    all.insert(series.labels.clone()),
                    "duplicate {:?}",
                    series.labels
                );
            }
        }
    }

    #[test]
    fn counters_never_decrease_and_timestamps_increase() {
        let s = spec();
        for h in 0..s.hosts {
            let host = Host::new(&s, h);
            let expected = Host::expected(&s, h);
            let mut moved = 0;
            for (series, (_, samples)) in host.series().iter().zip(&expected) {
                assert_eq!(samples.len(), s.rounds as usize);
                assert!(samples.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
                assert!(samples[0].timestamp >= s.start_ms);
                assert!(samples[samples.len() - 1].timestamp < s.end_ms());
                assert!(
                    samples
                        .iter()
                        .all(|x| x.value.is_finite() && x.value >= 0.0)
                );
                if series.is_counter() {
                    assert!(series.name().ends_with("_total"), "{}", series.name());
                    assert!(
                        samples.windows(2).all(|w| w[0].value <= w[1].value),
                        "{:?} decreases",
                        series.labels
                    );
                }
                if samples[0].value != samples[samples.len() - 1].value {
                    moved += 1;
                }
            }
            assert!(
                moved > SERIES_PER_HOST / 2,
                "host {h}: only {moved} series move"
            );
        }
    }

    #[test]
    fn cpu_counters_add_up_to_the_interval() {
        let s = spec();
        let expected = Host::expected(&s, 0);
        let cpu: f64 = expected
            .iter()
            .filter(|(l, _)| l[0].value == "node_cpu_seconds_total")
            .map(|(_, v)| v[v.len() - 1].value - v[0].value)
            .sum();
        let wall = f64::from(s.rounds - 1) * 15.0 * 4.0;
        assert!((cpu / wall - 1.0).abs() < 0.2, "cpu {cpu} vs wall {wall}");
    }

    #[test]
    fn tenants_partition_hosts() {
        let s = spec();
        let mut seen: Vec<u32> = (1..=s.tenants).flat_map(|t| s.hosts_of(t)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..s.hosts).collect::<Vec<_>>());
        for t in 1..=s.tenants {
            assert!(s.hosts_of(t).all(|h| s.tenant_of(h) == t));
        }
    }

    #[test]
    fn recent_start_is_aligned_and_behind_now() {
        let now = 1_700_000_012_345;
        let start = FleetSpec::recent_start(now, 10, 15_000);
        assert_eq!(start % 15_000, 0);
        assert!(start + 10 * 15_000 <= now);
        assert!(start + 11 * 15_000 > now);
    }

    #[test]
    fn validate_rejects_bad_specs() {
        assert!(spec().validate().is_ok());
        assert!(FleetSpec { hosts: 0, ..spec() }.validate().is_err());
        assert!(
            FleetSpec {
                tenants: 8,
                ..spec()
            }
            .validate()
            .is_err()
        );
        assert!(
            FleetSpec {
                rounds: 0,
                ..spec()
            }
            .validate()
            .is_err()
        );
        assert!(
            FleetSpec {
                interval_ms: 0,
                ..spec()
            }
            .validate()
            .is_err()
        );
        assert!(
            FleetSpec {
                start_ms: i64::MAX - 10,
                ..spec()
            }
            .validate()
            .is_err()
        );
    }
}
