//! The `k8s` profile: pods of Kubernetes deployments that come and go, as Prometheus scrapes them
//! through the kubelet (cAdvisor) and kube-state-metrics.
//!
//! Shape, for a [`FleetSpec`] and a [`K8sSpec`]:
//! - `hosts` nodes (`node-N`, kubelet `node-N:10250`) and `slots = hosts * pods_per_host` pod
//!   slots. A slot always holds exactly one running pod, so every round has exactly
//!   `slots * SERIES_PER_POD` series with a real sample: the *active series*, constant.
//! - Churn: at every round `R = k * churn_rounds` below `rounds` (k = 1, 2, ...), `replaced =
//!   round(slots * churn_fraction)` slots, drawn without replacement from the seed, get a new pod
//!   (new pod name, so new series). The old pod's last sample is at round `R - 1`; the new pod's
//!   first at round `R`. With `stale_markers`, every series of the old pod also gets the
//!   Prometheus stale NaN ([`STALE_NAN_BITS`]) at its round-`R` scrape time, as Prometheus writes
//!   when a target disappears; those markers are samples, but not active series.
//! - Pod ids: the pods of round 0 are `0..slots` (pod `i` in slot `i`, on node `i % hosts`); the
//!   pods created by churn `k` are `slots + (k - 1) * replaced + i`, the `i`-th in ascending slot
//!   order, each on a node drawn from the seed. Pod names are unique: `<deployment>-<replicaset
//!   hash>-<suffix>`, the suffix a one-to-one function of the id in the Kubernetes name
//!   alphabet.
//! - A pod stays in its slot, and the slot decides its deployment (`slot % DEPLOYMENTS.len()`)
//!   and its tenant, so a series is always sent by the same sender, in timestamp order.
//! - Everything about a pod (labels, values, timestamps at its node's scrape offset) is a pure
//!   function of the spec, its id and its birth round; the schedule ([`lives`]) is a pure
//!   function of the spec, so `verify` recomputes every series ever written.

use std::collections::BTreeSet;

use strata_net::remote_write::proto::{Label, Sample};

use super::catalogue::{self, PodTarget};
use super::{FleetSpec, Generator, K8sSpec, Rng, Series, mix};

/// Series of every pod (see [`catalogue::kubernetes_pod`]).
pub const SERIES_PER_POD: usize = 10;

/// Bits of the Prometheus staleness marker, a NaN no arithmetic produces.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// `(namespace, deployment)` of the pods; slot `s` belongs to deployment `s % len`.
pub const DEPLOYMENTS: [(&str, &str); 8] = [
    ("default", "web"),
    ("default", "api"),
    ("payments", "checkout"),
    ("payments", "ledger"),
    ("search", "indexer"),
    ("search", "query"),
    ("monitoring", "exporter"),
    ("kube-system", "coredns"),
];

/// Salts that keep the k8s generators independent of the node profile's.
const POD_SALT: u64 = 0x706f_6473;
const NODE_SALT: u64 = 0x6e6f_6465;
const CHURN_SALT: u64 = 0x0063_6875_726e;
const REPLICASET_SALT: u64 = 0x7273;

/// The characters Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
const NAME_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

/// `n` in the name alphabet, most significant first, at least `width` characters: distinct
/// numbers give distinct strings.
fn k8s_name(mut n: u64, width: usize) -> String {
    let mut digits = Vec::with_capacity(width.max(14));
    while n > 0 || digits.len() < width {
        digits.push(NAME_ALPHABET[(n % 27) as usize]);
        n /= 27;
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

/// The random-looking, unique suffix of pod `id`: ids below 27^5 map one to one onto the
/// five-character names (an affine map modulo 27^5 with a multiplier prime to 3), larger ids
/// to longer names.
fn pod_suffix(seed: u64, id: u64) -> String {
    const FIVE: u64 = 27 * 27 * 27 * 27 * 27;
    if id < FIVE {
        let offset = mix(seed ^ POD_SALT, u64::MAX) % FIVE;
        k8s_name((id * 7_919 + offset) % FIVE, 5)
    } else {
        k8s_name(id, 5)
    }
}

/// `a.b.c.d` from the low 24 bits of `n` under the first octet `first`.
fn ip(first: u8, n: u64) -> String {
    format!("{first}.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
}

/// The life of one pod: the slot it occupies, the round it first appears in and, if it is
/// replaced, the first round it is gone (the round of its stale markers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodLife {
    pub id: u64,
    pub slot: u32,
    pub born: u32,
    pub died: Option<u32>,
}

/// Slots replaced by churn `event` (1-based), ascending: `replaced` distinct slots drawn with
/// Floyd's algorithm from a generator seeded by the event.
pub fn churn_slots(spec: &FleetSpec, k8s: &K8sSpec, event: u32) -> Vec<u32> {
    let slots = k8s.slots(spec);
    let replaced = k8s.replaced(spec);
    let mut rng = Rng::new(mix(spec.seed ^ CHURN_SALT, u64::from(event)));
    let mut chosen = BTreeSet::new();
    for j in slots - replaced..slots {
        let t = (rng.next_u64() % (u64::from(j) + 1)) as u32;
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    chosen.into_iter().collect()
}

/// Every pod ever created, by id (index = id).
pub fn lives(spec: &FleetSpec, k8s: &K8sSpec) -> Vec<PodLife> {
    let slots = k8s.slots(spec);
    let mut lives: Vec<PodLife> = (0..slots)
        .map(|s| PodLife {
            id: u64::from(s),
            slot: s,
            born: 0,
            died: None,
        })
        .collect();
    let mut current: Vec<usize> = (0..slots as usize).collect();
    for event in 1..=k8s.churns(spec) {
        let round = event * k8s.churn_rounds;
        for slot in churn_slots(spec, k8s, event) {
            lives[current[slot as usize]].died = Some(round);
            current[slot as usize] = lives.len();
            lives.push(PodLife {
                id: lives.len() as u64,
                slot,
                born: round,
                died: None,
            });
        }
    }
    lives
}

/// One pod and where it is in time. Created at its birth round; [`Pod::advance`] once per round.
#[derive(Clone, Debug)]
pub struct Pod {
    id: u64,
    node: u32,
    namespace: &'static str,
    name: String,
    round: u32,
    /// Timestamp its node's scrape would have at round 0.
    ts0: i64,
    interval_ms: i64,
    series: Vec<Series>,
}

impl Pod {
    /// Pod `id` in `slot`, born at round `born` and positioned there.
    pub fn new(spec: &FleetSpec, id: u64, slot: u32, born: u32) -> Self {
        let node = if born == 0 {
            slot % spec.hosts
        } else {
            (mix(spec.seed ^ NODE_SALT, id) % u64::from(spec.hosts)) as u32
        };
        let d = slot as usize % DEPLOYMENTS.len();
        let (namespace, deployment) = DEPLOYMENTS[d];
        let hash = mix(spec.seed ^ REPLICASET_SALT, d as u64) % 27u64.pow(9);
        let replicaset = format!("{deployment}-{}", k8s_name(hash, 9));
        let name = format!("{replicaset}-{}", pod_suffix(spec.seed, id));
        let node_name = format!("node-{node}");
        let kubelet = format!("{node_name}:10250");
        let host_ip = ip(10, u64::from(node));
        let pod_ip = ip(100, id);
        let target = PodTarget {
            namespace,
            pod: &name,
            replicaset: &replicaset,
            node: &node_name,
            kubelet: &kubelet,
            host_ip: &host_ip,
            pod_ip: &pod_ip,
        };
        let pod_seed = mix(spec.seed ^ POD_SALT, id);
        let mut rng = Rng::new(pod_seed);
        let defs = catalogue::kubernetes_pod(&target, born > 0, &mut rng);
        debug_assert_eq!(defs.len(), SERIES_PER_POD);
        let series = defs
            .into_iter()
            .enumerate()
            .map(|(i, def)| Series::new(def, &[], Rng::new(mix(pod_seed, i as u64 + 1))))
            .collect();
        Self {
            id,
            node,
            namespace,
            name,
            round: born,
            ts0: spec.start_ms + spec.offset_ms(node),
            interval_ms: spec.interval_ms,
            series,
        }
    }

    /// Pod id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Node number (`node-N`).
    pub fn node(&self) -> u32 {
        self.node
    }

    /// The `namespace` label.
    pub fn namespace(&self) -> &'static str {
        self.namespace
    }

    /// The `pod` label, unique over the run.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Timestamp of the current round.
    pub fn timestamp(&self) -> i64 {
        self.ts0 + i64::from(self.round) * self.interval_ms
    }

    /// The pod's series, in catalogue order.
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

    /// Every sample of every series of the pod of `life`, stale markers included when `k8s`
    /// writes them: what a reader must get back.
    pub fn expected(
        spec: &FleetSpec,
        k8s: &K8sSpec,
        life: &PodLife,
    ) -> Vec<(Vec<Label>, Vec<Sample>)> {
        let mut pod = Self::new(spec, life.id, life.slot, life.born);
        let end = life.died.unwrap_or(spec.rounds);
        let mut out: Vec<(Vec<Label>, Vec<Sample>)> = pod
            .series
            .iter()
            .map(|s| {
                (
                    s.labels.clone(),
                    Vec::with_capacity((end - life.born) as usize + 1),
                )
            })
            .collect();
        for round in life.born..end {
            if round > life.born {
                pod.advance();
            }
            let ts = pod.timestamp();
            for (s, (_, samples)) in pod.series.iter().zip(&mut out) {
                samples.push(Sample {
                    value: s.value(ts),
                    timestamp: ts,
                });
            }
        }
        if life.died.is_some() && k8s.stale_markers {
            pod.advance();
            let ts = pod.timestamp();
            for (_, samples) in &mut out {
                samples.push(Sample {
                    value: f64::from_bits(STALE_NAN_BITS),
                    timestamp: ts,
                });
            }
        }
        out
    }
}

/// The pod slots of a `k8s` workload, round by round, for the writer.
#[derive(Clone, Debug)]
pub struct PodFleet {
    spec: FleetSpec,
    k8s: K8sSpec,
    round: u32,
    next_id: u64,
    /// The running pod of each slot.
    pods: Vec<Pod>,
    /// With stale markers: the pod each slot lost this round.
    retired: Vec<Option<Pod>>,
    /// Slots with a retired pod, to clear next round.
    retired_slots: Vec<u32>,
}

impl PodFleet {
    /// The pods of round 0.
    pub fn new(spec: &FleetSpec, k8s: &K8sSpec) -> Self {
        let slots = k8s.slots(spec);
        Self {
            spec: *spec,
            k8s: *k8s,
            round: 0,
            next_id: u64::from(slots),
            pods: (0..slots)
                .map(|s| Pod::new(spec, u64::from(s), s, 0))
                .collect(),
            retired: vec![None; slots as usize],
            retired_slots: Vec::new(),
        }
    }

    /// The running pod of `slot`.
    pub fn pod(&self, slot: u32) -> &Pod {
        &self.pods[slot as usize]
    }

    /// The pod `slot` lost this round, when stale markers are written.
    pub fn retired(&self, slot: u32) -> Option<&Pod> {
        self.retired[slot as usize].as_ref()
    }
}

impl Generator for PodFleet {
    fn advance(&mut self) {
        for slot in self.retired_slots.drain(..) {
            self.retired[slot as usize] = None;
        }
        self.pods.iter_mut().for_each(Pod::advance);
        self.round += 1;
        if !self.round.is_multiple_of(self.k8s.churn_rounds) {
            return;
        }
        let event = self.round / self.k8s.churn_rounds;
        for slot in churn_slots(&self.spec, &self.k8s, event) {
            let new = Pod::new(&self.spec, self.next_id, slot, self.round);
            self.next_id += 1;
            let old = std::mem::replace(&mut self.pods[slot as usize], new);
            if self.k8s.stale_markers {
                self.retired[slot as usize] = Some(old);
                self.retired_slots.push(slot);
            }
        }
    }

    fn samples(&self, unit: u32) -> impl Iterator<Item = (&[Label], i64, f64)> {
        let stale = self.retired[unit as usize].iter().flat_map(|old| {
            let ts = old.timestamp();
            old.series()
                .iter()
                .map(move |s| (s.labels.as_slice(), ts, f64::from_bits(STALE_NAN_BITS)))
        });
        let pod = &self.pods[unit as usize];
        let ts = pod.timestamp();
        let live = pod
            .series()
            .iter()
            .map(move |s| (s.labels.as_slice(), ts, s.value(ts)));
        stale.chain(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_kubernetes_like() {
        assert_eq!(k8s_name(0, 5), "bbbbb");
        assert_eq!(k8s_name(1, 5), "bbbbc");
        assert_eq!(k8s_name(27u64.pow(5), 5), "cbbbbb");
        let names: BTreeSet<String> = (0..5_000).map(|n| k8s_name(n * 7919, 5)).collect();
        assert_eq!(names.len(), 5_000);
        let five = 27u64.pow(5);
        let suffixes: BTreeSet<String> = (five - 3_000..five + 3_000)
            .chain(0..3_000)
            .map(|id| pod_suffix(9, id))
            .collect();
        assert_eq!(suffixes.len(), 9_000);
    }

    #[test]
    fn churn_draws_distinct_sorted_slots() {
        let spec = FleetSpec {
            hosts: 4,
            tenants: 1,
            rounds: 100,
            interval_ms: 15_000,
            start_ms: 1_700_000_000_000,
            seed: 3,
        };
        let k8s = K8sSpec {
            pods_per_host: 5,
            churn_rounds: 10,
            churn_fraction: 0.25,
            stale_markers: false,
        };
        for event in 1..=9 {
            let s = churn_slots(&spec, &k8s, event);
            assert_eq!(s.len(), 5);
            assert!(s.windows(2).all(|w| w[0] < w[1]));
            assert!(s.iter().all(|&x| x < 20));
        }
        assert_ne!(churn_slots(&spec, &k8s, 1), churn_slots(&spec, &k8s, 2));
    }
}
