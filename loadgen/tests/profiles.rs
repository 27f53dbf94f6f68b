//! Write profiles: the data is deterministic and has the promised shape (constant active series
//! under churn, pods appearing and disappearing on schedule, the tenant split), and `write` then
//! `verify` against an in-test remote-write/remote-read store round-trips every profile.

#[path = "support/server.rs"]
mod server;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use strata_loadgen::fleet::k8s::{self, PodFleet, SERIES_PER_POD, STALE_NAN_BITS};
use strata_loadgen::fleet::{
    FleetSpec, Generator, HostFleet, K8sSpec, Profile, SERIES_PER_HOST, Workload,
};
use strata_loadgen::verify::{self, VerifyOptions};
use strata_loadgen::write::{self, WriteOptions};
use strata_net::remote_write::proto::{
    Label, QueryResult, ReadRequest, ReadResponse, Sample, TimeSeries, WriteRequest, label_matcher,
};

fn fleet(hosts: u32, tenants: u32, rounds: u32) -> FleetSpec {
    FleetSpec {
        hosts,
        tenants,
        rounds,
        interval_ms: 15_000,
        start_ms: 1_700_000_000_000,
        seed: 7,
    }
}

fn k8s_spec(stale_markers: bool) -> K8sSpec {
    K8sSpec {
        pods_per_host: 4,
        churn_rounds: 5,
        churn_fraction: 0.25,
        stale_markers,
    }
}

/// One sample as the writer would send it: unit, labels, timestamp, value bits.
type Row = (u32, Vec<Label>, i64, u64);

fn collect(mut data: impl Generator, w: &Workload) -> Vec<Vec<Row>> {
    (0..w.fleet.rounds)
        .map(|round| {
            if round > 0 {
                data.advance();
            }
            (0..w.units())
                .flat_map(|u| {
                    data.samples(u)
                        .map(|(l, t, v)| (u, l.to_vec(), t, v.to_bits()))
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .collect()
}

/// Every sample of `w`, round by round.
fn rounds(w: &Workload) -> Vec<Vec<Row>> {
    match &w.profile {
        Profile::K8s(k) => collect(PodFleet::new(&w.fleet, k), w),
        Profile::Node | Profile::Tenants => collect(HostFleet::new(&w.fleet), w),
    }
}

fn label<'a>(labels: &'a [Label], name: &str) -> &'a str {
    labels
        .iter()
        .find(|l| l.name == name)
        .map_or("", |l| l.value.as_str())
}

#[test]
fn every_profile_is_deterministic_and_seeded() {
    for profile in [
        Profile::Node,
        Profile::Tenants,
        Profile::K8s(k8s_spec(true)),
    ] {
        let w = Workload {
            fleet: fleet(4, 2, 12),
            profile,
        };
        let a = rounds(&w);
        assert_eq!(a, rounds(&w), "{profile:?}");
        let other = Workload {
            fleet: FleetSpec { seed: 8, ..w.fleet },
            profile,
        };
        assert_ne!(a, rounds(&other), "{profile:?}: the seed changes nothing");
        let samples: usize = a.iter().map(Vec::len).sum();
        assert_eq!(samples as u64, w.samples(), "{profile:?}");
    }
}

#[test]
fn node_and_tenants_profiles_send_the_same_data() {
    let node = rounds(&Workload::node(fleet(6, 3, 4)));
    let tenants = rounds(&Workload {
        fleet: fleet(6, 3, 4),
        profile: Profile::Tenants,
    });
    assert_eq!(node, tenants);
}

#[test]
fn k8s_keeps_active_series_constant_and_churns_on_schedule() {
    let k = k8s_spec(true);
    let w = Workload {
        fleet: fleet(3, 2, 23),
        profile: Profile::K8s(k),
    };
    let slots = 12;
    let replaced = 3; // round(12 * 0.25)
    assert_eq!((k.slots(&w.fleet), k.replaced(&w.fleet)), (slots, replaced));
    assert_eq!(k.churns(&w.fleet), 4); // rounds 5, 10, 15, 20
    let stale = f64::from_bits(STALE_NAN_BITS).to_bits();
    let mut pods_before: BTreeSet<String> = BTreeSet::new();
    let mut all_series = BTreeSet::new();
    for (round, rows) in rounds(&w).iter().enumerate() {
        let live: Vec<&Row> = rows.iter().filter(|r| r.3 != stale).collect();
        let dead: Vec<&Row> = rows.iter().filter(|r| r.3 == stale).collect();
        assert_eq!(live.len(), slots as usize * SERIES_PER_POD, "round {round}");
        assert_eq!(w.active_series(), live.len() as u64);
        let pods: BTreeSet<String> = live.iter().map(|r| label(&r.1, "pod").to_owned()).collect();
        assert_eq!(pods.len(), slots as usize);
        let gone: BTreeSet<String> = pods_before.difference(&pods).cloned().collect();
        let new: BTreeSet<String> = pods.difference(&pods_before).cloned().collect();
        let stale_pods: BTreeSet<String> =
            dead.iter().map(|r| label(&r.1, "pod").to_owned()).collect();
        if round == 0 {
            assert_eq!(new.len(), slots as usize);
        } else if round % 5 == 0 {
            assert_eq!(gone.len(), replaced as usize, "round {round}");
            assert_eq!(new.len(), replaced as usize, "round {round}");
            // The disappearing pods get one stale marker per series, at this round's scrape.
            assert_eq!(stale_pods, gone, "round {round}");
            assert_eq!(dead.len(), replaced as usize * SERIES_PER_POD);
        } else {
            assert!(gone.is_empty() && new.is_empty(), "round {round} churned");
            assert!(dead.is_empty());
        }
        // Every pod of a slot stays in it, one pod per slot.
        let per_slot: BTreeMap<u32, BTreeSet<&str>> =
            live.iter().fold(BTreeMap::new(), |mut m, r| {
                m.entry(r.0).or_default().insert(label(&r.1, "pod"));
                m
            });
        assert!(per_slot.values().all(|p| p.len() == 1));
        all_series.extend(rows.iter().map(|r| r.1.clone()));
        pods_before = pods;
    }
    assert_eq!(all_series.len() as u64, w.series_created());
    assert_eq!(w.series_created(), (12 + 4 * 3) * SERIES_PER_POD as u64);
}

#[test]
fn k8s_without_stale_markers_just_stops_series() {
    let w = Workload {
        fleet: fleet(3, 1, 11),
        profile: Profile::K8s(k8s_spec(false)),
    };
    let all = rounds(&w);
    assert!(all.iter().flatten().all(|r| !f64::from_bits(r.3).is_nan()));
    assert_eq!(
        all.iter().map(Vec::len).sum::<usize>() as u64,
        w.active_series() * 11
    );
}

#[test]
fn k8s_lives_match_what_is_written() {
    let k = k8s_spec(true);
    let w = Workload {
        fleet: fleet(3, 2, 23),
        profile: Profile::K8s(k),
    };
    let lives = k8s::lives(&w.fleet, &k);
    assert_eq!(lives.len() as u64, k.pods_created(&w.fleet));
    let mut written: BTreeMap<Vec<Label>, Vec<(i64, u64)>> = BTreeMap::new();
    for rows in rounds(&w) {
        for (_, labels, t, v) in rows {
            written.entry(labels).or_default().push((t, v));
        }
    }
    let died = lives.iter().filter(|l| l.died.is_some()).count() as u32;
    assert_eq!(died, k.churns(&w.fleet) * k.replaced(&w.fleet));
    let mut expected = BTreeMap::new();
    for life in &lives {
        assert_eq!(life.born % 5, 0);
        assert!(life.died.is_none_or(|d| d > life.born && d % 5 == 0));
        for (labels, samples) in k8s::Pod::expected(&w.fleet, &k, life) {
            let bits = samples
                .iter()
                .map(|s| (s.timestamp, s.value.to_bits()))
                .collect::<Vec<_>>();
            assert!(expected.insert(labels, bits).is_none());
        }
    }
    assert_eq!(written, expected);
}

#[test]
fn tenants_profile_gives_half_to_tenant_one() {
    let w = Workload {
        fleet: fleet(100, 10, 1),
        profile: Profile::Tenants,
    };
    w.validate().expect("valid");
    let sizes: Vec<usize> = (1..=10).map(|t| w.units_of(t).len()).collect();
    // 50 hosts for tenant-1; 50 over 9 small tenants: 5 each, the first 5 of them one more.
    assert_eq!(sizes, [50, 6, 6, 6, 6, 6, 5, 5, 5, 5]);
    assert_eq!(w.units_of(1), (0..50).collect::<Vec<_>>());
    assert_eq!(w.units_of(2)[..3], [50, 59, 68]);
    // Odd host counts round tenant-1 up; too many tenants for the hosts are refused.
    let odd = Workload {
        fleet: fleet(7, 4, 1),
        profile: Profile::Tenants,
    };
    let sizes: Vec<usize> = (1..=4).map(|t| odd.units_of(t).len()).collect();
    assert_eq!(sizes, [4, 1, 1, 1]);
    let crowded = Workload {
        fleet: fleet(7, 5, 1),
        profile: Profile::Tenants,
    };
    assert!(crowded.validate().is_err());
    assert_eq!(
        Workload::node(fleet(10, 1, 1)).active_series(),
        10 * SERIES_PER_HOST as u64
    );
}

/// A remote-write receiver and remote-read server keeping everything in memory, by tenant.
#[derive(Default)]
struct Store {
    series: HashMap<String, BTreeMap<Vec<Label>, Vec<Sample>>>,
    out_of_order: u64,
}

fn store_server() -> (String, Arc<Mutex<Store>>) {
    // Test scaffolding: a lock around the in-memory store is fine here.
    #[allow(clippy::disallowed_methods)]
    let store = Arc::new(Mutex::new(Store::default()));
    let shared = Arc::clone(&store);
    let addr = server::serve(move |req| {
        let tenant = req
            .header("x-scope-orgid")
            .unwrap_or("anonymous")
            .to_owned();
        let Ok(raw) = snap::raw::Decoder::new().decompress_vec(&req.body) else {
            return server::Response {
                status: 400,
                body: b"not snappy".to_vec(),
            };
        };
        let mut store = shared.lock().expect("store");
        match req.path.as_str() {
            "/api/v1/push" => {
                let write = WriteRequest::decode(raw.as_slice()).expect("write request");
                let mut out_of_order = 0;
                let series = store.series.entry(tenant).or_default();
                for ts in write.timeseries {
                    let samples = series.entry(ts.labels).or_default();
                    for s in ts.samples {
                        if samples.last().is_some_and(|l| l.timestamp >= s.timestamp) {
                            out_of_order += 1;
                        }
                        samples.push(s);
                    }
                }
                store.out_of_order += out_of_order;
                server::Response::ok(Vec::new())
            }
            "/api/v1/read" => {
                let read = ReadRequest::decode(raw.as_slice()).expect("read request");
                let empty = BTreeMap::new();
                let series = store.series.get(&tenant).unwrap_or(&empty);
                let results = read
                    .queries
                    .iter()
                    .map(|q| QueryResult {
                        timeseries: series
                            .iter()
                            .filter(|(labels, _)| {
                                q.matchers.iter().all(|m| {
                                    let v = label(labels, &m.name);
                                    if m.r#type == label_matcher::Type::Eq as i32 {
                                        v == m.value
                                    } else {
                                        assert_eq!(m.value, ".+", "only .+ regexes");
                                        !v.is_empty()
                                    }
                                })
                            })
                            .map(|(labels, samples)| TimeSeries {
                                labels: labels.clone(),
                                samples: samples
                                    .iter()
                                    .filter(|s| {
                                        (q.start_timestamp_ms..=q.end_timestamp_ms)
                                            .contains(&s.timestamp)
                                    })
                                    .cloned()
                                    .collect(),
                                exemplars: vec![],
                                histograms: vec![],
                            })
                            .collect(),
                    })
                    .collect();
                let body = ReadResponse { results }.encode_to_vec();
                server::Response::ok(
                    snap::raw::Encoder::new()
                        .compress_vec(&body)
                        .expect("snappy"),
                )
            }
            other => server::Response {
                status: 404,
                body: other.as_bytes().to_vec(),
            },
        }
    });
    (format!("http://{addr}"), store)
}

fn write_opts(url: &str) -> WriteOptions {
    WriteOptions {
        url: format!("{url}/api/v1/push"),
        concurrency: 3,
        batch: 70,
        rate: None,
        tenant_header: Some("X-Scope-OrgID".into()),
        timeout: Duration::from_secs(10),
        queue: 1024,
        progress: false,
        server_pid: None,
        settle: Duration::ZERO,
    }
}

fn verify_opts(url: &str) -> VerifyOptions {
    VerifyOptions {
        read_url: format!("{url}/api/v1/read"),
        concurrency: 3,
        tenant_header: Some("X-Scope-OrgID".into()),
        timeout: Duration::from_secs(10),
        max_diffs: 10,
        progress: false,
    }
}

#[test]
fn write_then_verify_round_trips_every_profile() {
    let workloads = [
        Workload::node(fleet(4, 2, 6)),
        Workload {
            fleet: fleet(9, 4, 6),
            profile: Profile::Tenants,
        },
        Workload {
            fleet: fleet(3, 2, 23),
            profile: Profile::K8s(k8s_spec(true)),
        },
        Workload {
            fleet: fleet(3, 1, 12),
            profile: Profile::K8s(k8s_spec(false)),
        },
    ];
    for w in workloads {
        let (url, store) = store_server();
        let summary = write::run(&w, &write_opts(&url)).expect("write");
        assert_eq!(summary.requests_failed, 0, "{:?}", summary.first_error);
        assert_eq!(summary.samples_ok, w.samples());
        assert_eq!(summary.series, w.series_created());
        assert_eq!(summary.active_series, w.active_series());
        assert_eq!(summary.stale_markers, w.stale_samples());
        assert_eq!(summary.params.workload, w);
        let by_tenant: u64 = summary.active_series_by_tenant.values().sum();
        assert_eq!(by_tenant, w.active_series());
        {
            let store = store.lock().expect("store");
            assert_eq!(store.out_of_order, 0);
            let tenants: BTreeSet<&String> = store.series.keys().collect();
            assert_eq!(tenants.len(), w.fleet.tenants as usize);
            for (tenant, series) in &store.series {
                let active = summary.active_series_by_tenant[tenant];
                assert!(series.len() as u64 >= active, "{tenant}");
            }
        }

        let checked = verify::run(&w, &verify_opts(&url)).expect("verify");
        assert!(checked.ok, "{:?}: {:?}", w.profile, checked.differences);
        assert_eq!(checked.counts.samples_matched, w.samples());
        assert_eq!(checked.counts.series_expected, w.series_created());

        // Lose one sample of one series: verify must notice.
        {
            let mut store = store.lock().expect("store");
            let series = store.series.values_mut().next().expect("a tenant");
            let samples = series.values_mut().next().expect("a series");
            samples.pop();
        }
        let checked = verify::run(&w, &verify_opts(&url)).expect("verify");
        assert!(!checked.ok);
        assert_eq!(checked.counts.samples_missing, 1);
    }
}
