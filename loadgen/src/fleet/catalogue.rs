//! What one `node_exporter` host exposes: exactly [`super::SERIES_PER_HOST`] series with realistic
//! names, label sets and value dynamics (CPU, disks, network, memory, load, filesystems, ...); and
//! what Prometheus scrapes about one Kubernetes pod (cAdvisor through the kubelet, and
//! kube-state-metrics): exactly [`super::k8s::SERIES_PER_POD`] series.
//!
//! Values are held as integers in the unit the kernel counts in (clock ticks, 512-byte sectors,
//! 4 KiB pages, milliseconds) and scaled to the exported float when read, so counters move in the
//! steps real exporters produce and the same integer always maps to the same `f64` bits.

use super::{FleetSpec, Rng};

/// How a series' value moves from one round to the next.
#[derive(Clone, Copy, Debug)]
pub enum Model {
    /// Monotonic counter gaining `rate` units per second on average, ±`jitter` (a fraction).
    Counter { rate: f64, jitter: f64 },
    /// Random walk of at most `step` units per round, clamped to `[lo, hi]`.
    Gauge { lo: i64, hi: i64, step: i64 },
    /// Never changes.
    Constant,
    /// The sample's own timestamp in seconds (`node_time_seconds`).
    Clock,
}

/// Exported value = units * `mul` / `div`.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub mul: f64,
    pub div: f64,
}

const ONE: Scale = Scale { mul: 1.0, div: 1.0 };
/// `USER_HZ` clock ticks, as `/proc/stat` counts CPU time.
const TICKS: Scale = Scale {
    mul: 1.0,
    div: 100.0,
};
const MILLIS: Scale = Scale {
    mul: 1.0,
    div: 1000.0,
};
const MICROS: Scale = Scale {
    mul: 1.0,
    div: 1_000_000.0,
};
const SECTORS: Scale = Scale {
    mul: 512.0,
    div: 1.0,
};
const PAGES: Scale = Scale {
    mul: 4096.0,
    div: 1.0,
};

/// One series before the host-wide labels are added.
#[derive(Clone, Debug)]
pub struct Def {
    pub name: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub model: Model,
    pub scale: Scale,
    pub initial: i64,
}

/// Builds the definitions of one host, drawing host-level traits (size, load, uptime) from `rng`.
struct Builder<'a> {
    rng: &'a mut Rng,
    uptime_s: f64,
    defs: Vec<Def>,
}

impl Builder<'_> {
    fn counter(
        &mut self,
        name: &'static str,
        labels: Vec<(&'static str, String)>,
        rate: f64,
        scale: Scale,
    ) {
        let initial = (rate * self.uptime_s * self.rng.between(0.8, 1.2)) as i64;
        self.defs.push(Def {
            name,
            labels,
            model: Model::Counter { rate, jitter: 0.5 },
            scale,
            initial,
        });
    }

    fn gauge(
        &mut self,
        name: &'static str,
        labels: Vec<(&'static str, String)>,
        (lo, hi): (i64, i64),
        step: i64,
        scale: Scale,
    ) {
        let initial = self.rng.between(lo as f64, hi as f64) as i64;
        self.defs.push(Def {
            name,
            labels,
            model: Model::Gauge { lo, hi, step },
            scale,
            initial: initial.clamp(lo, hi),
        });
    }

    fn constant(
        &mut self,
        name: &'static str,
        labels: Vec<(&'static str, String)>,
        units: i64,
        scale: Scale,
    ) {
        self.defs.push(Def {
            name,
            labels,
            model: Model::Constant,
            scale,
            initial: units,
        });
    }
}

fn l(name: &'static str, value: &str) -> (&'static str, String) {
    (name, value.to_owned())
}

/// `percent` % of `total`, in the same units.
fn pct(total: i64, percent: f64) -> i64 {
    (total as f64 * percent / 100.0) as i64
}

const CPUS: u32 = 4;
/// CPU modes and their share of a moderately busy machine's time; idle takes the rest.
const BUSY_MODES: [(&str, f64); 7] = [
    ("iowait", 0.02),
    ("irq", 0.005),
    ("nice", 0.005),
    ("softirq", 0.01),
    ("steal", 0.002),
    ("system", 0.05),
    ("user", 0.12),
];
const DISKS: [(&str, f64); 2] = [("nvme0n1", 1.0), ("sda", 0.1)];
const NICS: [(&str, f64); 3] = [("eth0", 1.0), ("eth1", 0.2), ("lo", 0.05)];
const GIB_PAGES: i64 = 262_144;
/// Memory gauges: bounds in % of RAM, and the largest move per round as a fraction (1/n) of RAM.
const MEMORY: [(&str, f64, f64, i64); 9] = [
    ("node_memory_MemFree_bytes", 5.0, 40.0, 2_000),
    ("node_memory_MemAvailable_bytes", 20.0, 70.0, 2_000),
    ("node_memory_Buffers_bytes", 0.5, 3.0, 20_000),
    ("node_memory_Cached_bytes", 10.0, 40.0, 2_000),
    ("node_memory_Active_bytes", 10.0, 40.0, 2_000),
    ("node_memory_Inactive_bytes", 5.0, 30.0, 2_000),
    ("node_memory_Dirty_bytes", 0.0, 0.2, 40_000),
    ("node_memory_Shmem_bytes", 0.1, 2.0, 40_000),
    ("node_memory_Slab_bytes", 1.0, 5.0, 40_000),
];

/// The 100 series of `node_exporter` on host `host`.
pub fn node_exporter(host: u32, spec: &FleetSpec, rng: &mut Rng) -> Vec<Def> {
    let uptime_s = rng.between(3_600.0, 90.0 * 86_400.0);
    let busy = rng.between(0.3, 2.5);
    let io = rng.between(0.2, 5.0);
    let mem_pages = rng.pick(&[8, 16, 32, 64]) * GIB_PAGES;
    let mut b = Builder {
        rng,
        uptime_s,
        defs: Vec::with_capacity(super::SERIES_PER_HOST),
    };

    // CPU: 4 CPUs x 8 modes, in clock ticks (100 per CPU-second).
    for cpu in 0..CPUS {
        let cpu = cpu.to_string();
        let busy_share: f64 = BUSY_MODES.iter().map(|(_, s)| s * busy).sum();
        b.counter(
            "node_cpu_seconds_total",
            vec![l("cpu", &cpu), l("mode", "idle")],
            100.0 * (1.0 - busy_share).max(0.0),
            TICKS,
        );
        for (mode, share) in BUSY_MODES {
            b.counter(
                "node_cpu_seconds_total",
                vec![l("cpu", &cpu), l("mode", mode)],
                100.0 * share * busy,
                TICKS,
            );
        }
    }

    // Block devices: 7 counters each.
    for (dev, weight) in DISKS {
        let w = weight * io;
        let d = || vec![l("device", dev)];
        b.counter("node_disk_reads_completed_total", d(), 30.0 * w, ONE);
        b.counter("node_disk_writes_completed_total", d(), 80.0 * w, ONE);
        b.counter("node_disk_read_bytes_total", d(), 960.0 * w, SECTORS);
        b.counter("node_disk_written_bytes_total", d(), 1_280.0 * w, SECTORS);
        b.counter("node_disk_io_time_seconds_total", d(), 50.0 * w, MILLIS);
        b.counter("node_disk_read_time_seconds_total", d(), 20.0 * w, MILLIS);
        b.counter("node_disk_write_time_seconds_total", d(), 60.0 * w, MILLIS);
    }

    // Network interfaces: 8 counters each; errors and drops are rare.
    for (dev, weight) in NICS {
        let w = weight * io;
        let d = || vec![l("device", dev)];
        let faults = if dev == "lo" { 0.0 } else { 0.01 };
        b.counter("node_network_receive_bytes_total", d(), 500_000.0 * w, ONE);
        b.counter("node_network_transmit_bytes_total", d(), 200_000.0 * w, ONE);
        b.counter("node_network_receive_packets_total", d(), 800.0 * w, ONE);
        b.counter("node_network_transmit_packets_total", d(), 500.0 * w, ONE);
        b.counter("node_network_receive_errs_total", d(), faults * 0.1, ONE);
        b.counter("node_network_transmit_errs_total", d(), faults * 0.05, ONE);
        b.counter("node_network_receive_drop_total", d(), faults, ONE);
        b.counter("node_network_transmit_drop_total", d(), faults * 0.2, ONE);
    }

    // Memory, in pages: the two totals and 10 gauges.
    let m = mem_pages;
    let swap = 2 * GIB_PAGES;
    b.constant("node_memory_MemTotal_bytes", vec![], m, PAGES);
    for (name, lo, hi, moves) in MEMORY {
        b.gauge(name, vec![], (pct(m, lo), pct(m, hi)), m / moves, PAGES);
    }
    b.constant("node_memory_SwapTotal_bytes", vec![], swap, PAGES);
    let swap_free = (pct(swap, 80.0), swap);
    b.gauge("node_memory_SwapFree_bytes", vec![], swap_free, 16, PAGES);

    // Load averages, in hundredths.
    let load_hi = (400.0 * busy) as i64;
    b.gauge("node_load1", vec![], (0, load_hi), 40, TICKS);
    b.gauge("node_load5", vec![], (0, load_hi), 12, TICKS);
    b.gauge("node_load15", vec![], (0, load_hi), 4, TICKS);

    // Filesystems, in 4 KiB blocks: 3 gauges each.
    let root_blocks = b.rng.pick(&[50, 100, 250, 500]) * GIB_PAGES;
    let filesystems = [
        ("/dev/nvme0n1p2", "ext4", "/", root_blocks),
        ("/dev/nvme0n1p1", "vfat", "/boot/efi", GIB_PAGES / 2),
    ];
    for (device, fstype, mountpoint, blocks) in filesystems {
        let fs = || {
            vec![
                l("device", device),
                l("fstype", fstype),
                l("mountpoint", mountpoint),
            ]
        };
        let step = (blocks / 100_000).max(1);
        b.constant("node_filesystem_size_bytes", fs(), blocks, PAGES);
        let free = (pct(blocks, 20.0), pct(blocks, 80.0));
        b.gauge("node_filesystem_free_bytes", fs(), free, step, PAGES);
        let avail = (pct(blocks, 15.0), pct(blocks, 75.0));
        b.gauge("node_filesystem_avail_bytes", fs(), avail, step, PAGES);
    }

    // Kernel and process counters.
    b.counter("node_context_switches_total", vec![], 4_000.0 * busy, ONE);
    b.counter("node_intr_total", vec![], 2_500.0 * busy, ONE);
    b.counter("node_forks_total", vec![], 3.0 * busy, ONE);
    b.gauge("node_procs_running", vec![], (1, 12), 2, ONE);
    let boot = spec.start_ms / 1000 - uptime_s as i64;
    b.constant("node_boot_time_seconds", vec![], boot, ONE);
    b.defs.push(Def {
        name: "node_time_seconds",
        labels: vec![],
        model: Model::Clock,
        scale: ONE,
        initial: 0,
    });
    let node = format!("host-{host}");
    let uname = vec![
        l("domainname", "(none)"),
        l("machine", "x86_64"),
        l("nodename", &node),
        l("release", "6.1.0-18-amd64"),
        l("sysname", "Linux"),
        l(
            "version",
            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
        ),
    ];
    b.constant("node_uname_info", uname, 1, ONE);

    // What the scraper adds to every target.
    b.constant("up", vec![], 1, ONE);
    b.gauge(
        "scrape_duration_seconds",
        vec![],
        (5_000, 80_000),
        5_000,
        MICROS,
    );

    b.defs
}

/// Who a pod is: the label values its series carry.
#[derive(Clone, Copy, Debug)]
pub struct PodTarget<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    /// The owning `ReplicaSet` (`created_by_name` of `kube_pod_info`).
    pub replicaset: &'a str,
    /// Node name, e.g. `node-3`.
    pub node: &'a str,
    /// The node's kubelet target, e.g. `node-3:10250`.
    pub kubelet: &'a str,
    pub host_ip: &'a str,
    pub pod_ip: &'a str,
}

/// Containers of every pod: the application and its proxy sidecar.
pub const CONTAINERS: [&str; 2] = ["app", "proxy"];

/// The `instance` of every kube-state-metrics series.
pub const KUBE_STATE_METRICS: &str = "kube-state-metrics:8080";

/// The series of one pod: 3 per container (CPU, working set, restarts), 2 network counters,
/// `kube_pod_info` and `kube_pod_status_ready`. A `fresh` pod (created by churn) starts its
/// counters near zero, as a new container does; the pods of round 0 have been up a while.
pub fn kubernetes_pod(t: &PodTarget<'_>, fresh: bool, rng: &mut Rng) -> Vec<Def> {
    let uptime_s = if fresh {
        0.0
    } else {
        rng.between(600.0, 30.0 * 86_400.0)
    };
    let load = rng.between(0.2, 3.0);
    let mut b = Builder {
        rng,
        uptime_s,
        defs: Vec::with_capacity(super::k8s::SERIES_PER_POD),
    };
    let kubelet = |extra: Vec<(&'static str, String)>| {
        let mut labels = vec![
            l("instance", t.kubelet),
            l("job", "kubelet"),
            l("namespace", t.namespace),
            l("node", t.node),
            l("pod", t.pod),
        ];
        labels.extend(extra);
        labels
    };
    let ksm = |extra: Vec<(&'static str, String)>| {
        let mut labels = vec![
            l("instance", KUBE_STATE_METRICS),
            l("job", "kube-state-metrics"),
            l("namespace", t.namespace),
            l("pod", t.pod),
        ];
        labels.extend(extra);
        labels
    };
    for (container, cores, mib) in [("app", 0.25 * load, 512), ("proxy", 0.02 * load, 64)] {
        let c = || vec![l("container", container)];
        let cpu = "container_cpu_usage_seconds_total";
        b.counter(cpu, kubelet(c()), cores * 1_000_000.0, MICROS);
        // Working set in pages, between a quarter and twice the typical size.
        let pages = mib * 256;
        let ws = "container_memory_working_set_bytes";
        b.gauge(ws, kubelet(c()), (pages / 4, pages * 2), pages / 50, PAGES);
        let restarts = "kube_pod_container_status_restarts_total";
        b.counter(restarts, ksm(c()), 0.000_002, ONE);
    }
    let eth0 = || vec![l("interface", "eth0")];
    let rx = "container_network_receive_bytes_total";
    b.counter(rx, kubelet(eth0()), 50_000.0 * load, ONE);
    let tx = "container_network_transmit_bytes_total";
    b.counter(tx, kubelet(eth0()), 20_000.0 * load, ONE);
    let info = ksm(vec![
        l("created_by_kind", "ReplicaSet"),
        l("created_by_name", t.replicaset),
        l("host_ip", t.host_ip),
        l("node", t.node),
        l("pod_ip", t.pod_ip),
    ]);
    b.constant("kube_pod_info", info, 1, ONE);
    let ready = ksm(vec![l("condition", "true")]);
    b.constant("kube_pod_status_ready", ready, 1, ONE);
    b.defs
}
