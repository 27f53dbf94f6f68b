//! Workload profiles: what `write` sends, `verify` reads back and `show` prints. A [`Workload`]
//! is a [`FleetSpec`] and a [`Profile`]; both together determine every request.
//!
//! - `node` (the default): the `node_exporter` fleet of [`super`], hosts dealt round-robin over
//!   the tenants (host `h` in `tenant-(h % tenants + 1)`). Exactly the requests `write` sent
//!   before profiles existed, byte for byte.
//! - `k8s`: pods that churn, see [`super::k8s`]; a *unit* is a pod slot instead of a host, and
//!   slot `s` is in `tenant-(s % tenants + 1)`.
//! - `tenants`: the `node` fleet with one large tenant and many small ones. With `N = tenants`
//!   and `H = hosts`: `tenant-1` gets hosts `0 .. ceil(H / 2)`, and host `h >= ceil(H / 2)` goes
//!   to `tenant-(2 + (h - ceil(H / 2)) % (N - 1))`, so tenants 2..N get `floor(H / 2) / (N - 1)`
//!   hosts each, the first `floor(H / 2) % (N - 1)` of them one more. Every tenant must get a host
//!   (`N - 1 <= floor(H / 2)`). `--tenants` defaults to 10 with this profile; with `N = 1` it is
//!   the `node` profile.
//!
//! Invariant the writer relies on: every unit belongs to exactly one tenant, and a series
//! belongs to exactly one unit for the whole run.

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use super::k8s::SERIES_PER_POD;
use super::{FleetSpec, SERIES_PER_HOST};
use crate::Error;

/// Parameters of the `k8s` profile.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct K8sSpec {
    /// Pods per node: the fleet has `hosts * pods_per_host` pod slots.
    pub pods_per_host: u32,
    /// Rounds between two churns (the first at round `churn_rounds`).
    pub churn_rounds: u32,
    /// Fraction of the pods replaced at each churn (rounded to whole pods).
    pub churn_fraction: f64,
    /// Whether replaced pods' series get a stale marker in the round they disappear.
    pub stale_markers: bool,
}

impl K8sSpec {
    /// The defaults of the flags.
    pub const DEFAULT: Self = Self {
        pods_per_host: 10,
        churn_rounds: 10,
        churn_fraction: 0.1,
        stale_markers: false,
    };

    /// Pod slots, i.e. pods running in every round.
    pub fn slots(&self, spec: &FleetSpec) -> u32 {
        spec.hosts.saturating_mul(self.pods_per_host)
    }

    /// Pods replaced at each churn.
    pub fn replaced(&self, spec: &FleetSpec) -> u32 {
        let slots = self.slots(spec);
        ((f64::from(slots) * self.churn_fraction).round() as u32).min(slots)
    }

    /// Churns in the run: rounds `k * churn_rounds` below `rounds`.
    pub fn churns(&self, spec: &FleetSpec) -> u32 {
        (spec.rounds.saturating_sub(1)) / self.churn_rounds.max(1)
    }

    /// Pods ever created.
    pub fn pods_created(&self, spec: &FleetSpec) -> u64 {
        u64::from(self.slots(spec)) + u64::from(self.churns(spec)) * u64::from(self.replaced(spec))
    }

    /// Stale markers written: one per series of each replaced pod, when enabled.
    pub fn stale_samples(&self, spec: &FleetSpec) -> u64 {
        if self.stale_markers {
            u64::from(self.churns(spec)) * u64::from(self.replaced(spec)) * SERIES_PER_POD as u64
        } else {
            0
        }
    }

    fn validate(&self, spec: &FleetSpec) -> Result<(), Error> {
        if self.pods_per_host == 0 {
            return Err(Error::Invalid("--pods-per-host must be at least 1".into()));
        }
        if spec.hosts.checked_mul(self.pods_per_host).is_none() {
            return Err(Error::Invalid(
                "--hosts * --pods-per-host must fit in 32 bits".into(),
            ));
        }
        if self.churn_rounds == 0 {
            return Err(Error::Invalid("--churn-rounds must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&self.churn_fraction) {
            return Err(Error::Invalid(format!(
                "--churn-fraction must be between 0 and 1, got {}",
                self.churn_fraction
            )));
        }
        Ok(())
    }
}

/// Which data to generate; serialized into summaries as `"profile": {"name": "k8s", ...}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Profile {
    /// The `node_exporter` fleet, hosts round-robin over tenants.
    #[default]
    Node,
    /// Kubernetes pods that churn.
    K8s(K8sSpec),
    /// The `node_exporter` fleet, half of it in `tenant-1`.
    Tenants,
}

impl Profile {
    /// The `--profile` value naming this profile.
    pub fn kind(&self) -> ProfileKind {
        match self {
            Self::Node => ProfileKind::Node,
            Self::K8s(_) => ProfileKind::K8s,
            Self::Tenants => ProfileKind::Tenants,
        }
    }
}

/// The `--profile` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProfileKind {
    Node,
    K8s,
    Tenants,
}

impl ProfileKind {
    /// `--tenants` when neither the flag nor a summary gives it.
    pub fn default_tenants(self) -> u32 {
        match self {
            Self::Tenants => 10,
            Self::Node | Self::K8s => 1,
        }
    }
}

/// The profile flags shared by `write`, `verify` and `show`.
#[derive(Args, Debug, Default)]
pub struct ProfileArgs {
    /// Data to generate: `node` (`node_exporter` hosts), `k8s` (pods that churn) or `tenants`
    /// (node hosts, half of them in tenant-1, the rest spread over tenant-2..N) [default: node]
    #[arg(long, value_enum)]
    pub profile: Option<ProfileKind>,
    /// k8s: pods per node (--hosts are the nodes), 10 series each [default: 10]
    #[arg(long)]
    pub pods_per_host: Option<u32>,
    /// k8s: rounds between churns; churn k happens at round k * N [default: 10]
    #[arg(long)]
    pub churn_rounds: Option<u32>,
    /// k8s: fraction of the pods replaced by new ones at each churn [default: 0.1]
    #[arg(long)]
    pub churn_fraction: Option<f64>,
    /// k8s: write a stale marker (NaN 0x7ff0000000000002) for every series of a replaced pod,
    /// in the round it disappears, as Prometheus does
    #[arg(long)]
    pub stale_markers: bool,
}

impl ProfileArgs {
    /// The profile asked for: `--profile` over `base` (a summary's) over `node`.
    pub fn kind(&self, base: Option<&Profile>) -> ProfileKind {
        self.profile
            .or(base.map(Profile::kind))
            .unwrap_or(ProfileKind::Node)
    }

    /// Flags over `base` over defaults.
    pub fn resolve(&self, base: Option<&Profile>) -> Result<Profile, Error> {
        let kind = self.kind(base);
        let k8s_flags = self.pods_per_host.is_some()
            || self.churn_rounds.is_some()
            || self.churn_fraction.is_some()
            || self.stale_markers;
        if kind != ProfileKind::K8s && k8s_flags {
            return Err(Error::Invalid(
                "--pods-per-host, --churn-rounds, --churn-fraction and --stale-markers need \
                 --profile k8s"
                    .into(),
            ));
        }
        Ok(match kind {
            ProfileKind::Node => Profile::Node,
            ProfileKind::Tenants => Profile::Tenants,
            ProfileKind::K8s => {
                let b = match base {
                    Some(Profile::K8s(k)) => *k,
                    _ => K8sSpec::DEFAULT,
                };
                Profile::K8s(K8sSpec {
                    pods_per_host: self.pods_per_host.unwrap_or(b.pods_per_host),
                    churn_rounds: self.churn_rounds.unwrap_or(b.churn_rounds),
                    churn_fraction: self.churn_fraction.unwrap_or(b.churn_fraction),
                    stale_markers: self.stale_markers || b.stale_markers,
                })
            }
        })
    }
}

/// A fleet and its profile: everything that determines the data.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    #[serde(flatten)]
    pub fleet: FleetSpec,
    #[serde(default)]
    pub profile: Profile,
}

impl Workload {
    /// The `node` profile of `fleet`.
    pub fn node(fleet: FleetSpec) -> Self {
        Self {
            fleet,
            profile: Profile::Node,
        }
    }

    /// Checks the bounds the generators rely on.
    pub fn validate(&self) -> Result<(), Error> {
        self.fleet.validate()?;
        match &self.profile {
            Profile::Node => Ok(()),
            Profile::K8s(k) => k.validate(&self.fleet),
            Profile::Tenants => {
                let small = self.fleet.tenants - 1;
                if small > self.fleet.hosts / 2 {
                    return Err(Error::Invalid(format!(
                        "--profile tenants: tenant-2..tenant-{} share the other half of the \
                         {} hosts, one at least each; give --hosts {} or more",
                        self.fleet.tenants,
                        self.fleet.hosts,
                        2 * small
                    )));
                }
                Ok(())
            }
        }
    }

    /// Units of data (hosts, or pod slots for `k8s`), each owned by one tenant.
    pub fn units(&self) -> u32 {
        match &self.profile {
            Profile::K8s(k) => k.slots(&self.fleet),
            Profile::Node | Profile::Tenants => self.fleet.hosts,
        }
    }

    /// What a unit is, for messages.
    pub fn unit_name(&self) -> &'static str {
        match &self.profile {
            Profile::K8s(_) => "pod slot",
            Profile::Node | Profile::Tenants => "host",
        }
    }

    /// Hosts of `tenant-1` under the `tenants` profile.
    fn large_tenant_hosts(&self) -> u32 {
        if self.fleet.tenants <= 1 {
            self.fleet.hosts
        } else {
            self.fleet.hosts.div_ceil(2)
        }
    }

    /// Tenant number (1-based) of `unit`.
    pub fn tenant_of(&self, unit: u32) -> u32 {
        match &self.profile {
            Profile::Node | Profile::K8s(_) => unit % self.fleet.tenants + 1,
            Profile::Tenants => {
                let big = self.large_tenant_hosts();
                if unit < big {
                    1
                } else {
                    2 + (unit - big) % (self.fleet.tenants - 1)
                }
            }
        }
    }

    /// Units of `tenant` (1-based), ascending.
    pub fn units_of(&self, tenant: u32) -> Vec<u32> {
        let t = self.fleet.tenants;
        match &self.profile {
            Profile::Node | Profile::K8s(_) => (tenant.saturating_sub(1)..self.units())
                .step_by(t as usize)
                .collect(),
            Profile::Tenants if tenant <= 1 => (0..self.large_tenant_hosts()).collect(),
            Profile::Tenants => (self.large_tenant_hosts() + tenant - 2..self.units())
                .step_by((t - 1).max(1) as usize)
                .collect(),
        }
    }

    /// Series of one unit.
    pub fn series_per_unit(&self) -> usize {
        match &self.profile {
            Profile::K8s(_) => SERIES_PER_POD,
            Profile::Node | Profile::Tenants => SERIES_PER_HOST,
        }
    }

    /// Series with a real (not stale) sample in every round; constant over the run.
    pub fn active_series(&self) -> u64 {
        u64::from(self.units()) * self.series_per_unit() as u64
    }

    /// Distinct series written over the whole run (grows with churn).
    pub fn series_created(&self) -> u64 {
        match &self.profile {
            Profile::K8s(k) => k.pods_created(&self.fleet) * SERIES_PER_POD as u64,
            Profile::Node | Profile::Tenants => self.active_series(),
        }
    }

    /// Stale markers written.
    pub fn stale_samples(&self) -> u64 {
        match &self.profile {
            Profile::K8s(k) => k.stale_samples(&self.fleet),
            Profile::Node | Profile::Tenants => 0,
        }
    }

    /// Samples written, stale markers included.
    pub fn samples(&self) -> u64 {
        self.active_series() * u64::from(self.fleet.rounds) + self.stale_samples()
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        let f = &self.fleet;
        match &self.profile {
            Profile::Node => format!(
                "node: {} hosts ({} series), {} tenants round-robin",
                f.hosts,
                self.active_series(),
                f.tenants
            ),
            Profile::Tenants => format!(
                "tenants: {} hosts ({} series), tenant-1 has {}, tenant-2..{} share {}",
                f.hosts,
                self.active_series(),
                self.large_tenant_hosts(),
                f.tenants,
                f.hosts - self.large_tenant_hosts()
            ),
            Profile::K8s(k) => format!(
                "k8s: {} nodes x {} pods ({} active series), {} of {} pods replaced every {} \
                 rounds ({} churns, {} pods and {} series created){}, {} tenants round-robin",
                f.hosts,
                k.pods_per_host,
                self.active_series(),
                k.replaced(f),
                k.slots(f),
                k.churn_rounds,
                k.churns(f),
                k.pods_created(f),
                self.series_created(),
                if k.stale_markers {
                    ", stale markers"
                } else {
                    ""
                },
                f.tenants
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(hosts: u32, tenants: u32) -> FleetSpec {
        FleetSpec {
            hosts,
            tenants,
            rounds: 25,
            interval_ms: 15_000,
            start_ms: 1_700_000_000_000,
            seed: 1,
        }
    }

    #[test]
    fn units_of_inverts_tenant_of() {
        for profile in [
            Profile::Node,
            Profile::Tenants,
            Profile::K8s(K8sSpec::DEFAULT),
        ] {
            for (hosts, tenants) in [(1, 1), (7, 3), (10, 6), (11, 6), (100, 10)] {
                let w = Workload {
                    fleet: fleet(hosts, tenants),
                    profile,
                };
                if w.validate().is_err() {
                    continue;
                }
                let mut all = Vec::new();
                for t in 1..=tenants {
                    let units = w.units_of(t);
                    assert!(
                        !units.is_empty(),
                        "{profile:?} {hosts} {tenants}: {t} empty"
                    );
                    assert!(units.iter().all(|&u| w.tenant_of(u) == t));
                    all.extend(units);
                }
                all.sort_unstable();
                assert_eq!(all, (0..w.units()).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn summaries_without_a_profile_are_node() {
        let json = r#"{"hosts":3,"tenants":1,"rounds":4,"interval_ms":15000,
            "start_ms":1700000000000,"seed":9,"url":"http://x"}"#;
        let w: Workload = serde_json::from_str(json).expect("parse");
        assert_eq!(w.profile, Profile::Node);
        let k8s = Workload {
            fleet: fleet(3, 1),
            profile: Profile::K8s(K8sSpec::DEFAULT),
        };
        let text = serde_json::to_string(&k8s).expect("json");
        assert!(
            text.contains(r#""profile":{"name":"k8s","pods_per_host":10"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Workload>(&text).expect("parse"), k8s);
    }

    #[test]
    fn k8s_flags_need_the_k8s_profile() {
        let args = ProfileArgs {
            churn_rounds: Some(3),
            ..ProfileArgs::default()
        };
        assert!(args.resolve(None).is_err());
        let base = Profile::K8s(K8sSpec {
            stale_markers: true,
            ..K8sSpec::DEFAULT
        });
        let Profile::K8s(k) = args.resolve(Some(&base)).expect("k8s") else {
            panic!("not k8s");
        };
        assert_eq!(k.churn_rounds, 3);
        assert!(k.stale_markers);
    }
}
