//! What a load cost the server: CPU time (utime + stime from `/proc/PID/stat`, in `CLK_TCK`
//! ticks) over the measured window, and peak resident memory (`VmHWM` from `/proc/PID/status`).
//! Linux only; the server must run on this machine (`write --server-pid`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Error;

/// One reading of a process' counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcSample {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Peak resident set size so far.
    pub peak_rss_bytes: u64,
    /// Current resident set size.
    pub rss_bytes: u64,
}

/// Reads `pid`'s counters.
pub fn sample(pid: u32) -> Result<ProcSample, Error> {
    let read = |file: &str| {
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::read_to_string(&path).map_err(|source| Error::File { path, source })
    };
    let cpu_ticks = parse_stat(&read("stat")?)
        .ok_or_else(|| Error::Invalid(format!("/proc/{pid}/stat: unexpected format")))?;
    let status = read("status")?;
    let kib = |key: &str| {
        parse_status_kib(&status, key)
            .ok_or_else(|| Error::Invalid(format!("/proc/{pid}/status: no {key}")))
    };
    Ok(ProcSample {
        cpu_ticks,
        peak_rss_bytes: kib("VmHWM")? * 1024,
        rss_bytes: kib("VmRSS")? * 1024,
    })
}

/// utime + stime from the text of `/proc/PID/stat`. The command name (field 2) may hold spaces
/// and parentheses, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 (state) is the first after `)`
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The value in KiB of `key` in the text of `/proc/PID/status`.
fn parse_status_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Clock ticks per second of the `/proc` CPU times.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a constant of the C library; no pointers are involved.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// The server's cost over a write run, as recorded in the summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerUsage {
    pub pid: u32,
    /// CPU seconds (user + system) from the start of the load to its end plus `settle_s`.
    pub cpu_seconds: f64,
    pub cpu_seconds_per_million_samples: f64,
    /// Peak RSS of the process' whole life (`VmHWM`), read at the end.
    pub peak_rss_bytes: u64,
    pub peak_rss_per_series_bytes: f64,
    /// RSS just before the load started.
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    /// Seconds waited after the last response before the final reading, so work the server
    /// defers (flushes, merges) is counted.
    pub settle_s: f64,
}

impl ServerUsage {
    pub fn new(
        pid: u32,
        before: ProcSample,
        after: ProcSample,
        samples: u64,
        series: u64,
        settle_s: f64,
    ) -> Self {
        let ticks = after.cpu_ticks.saturating_sub(before.cpu_ticks);
        let cpu_seconds = ticks as f64 / clock_ticks_per_second() as f64;
        Self {
            pid,
            cpu_seconds,
            cpu_seconds_per_million_samples: cpu_seconds / (samples.max(1) as f64 / 1e6),
            peak_rss_bytes: after.peak_rss_bytes,
            peak_rss_per_series_bytes: after.peak_rss_bytes as f64 / series.max(1) as f64,
            rss_before_bytes: before.rss_bytes,
            rss_after_bytes: after.rss_bytes,
            settle_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "9973 (my (odd) srv) S 1 9916 6324 0 -1 4194560 29259 0 2 0 305 29 0 0 20 0 8 0";
        assert_eq!(parse_stat(line), Some(305 + 29));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn parses_status() {
        let text = "Name:\tprometheus\nVmPeak:\t 1 kB\nVmHWM:\t  121808 kB\nVmRSS:\t  1000 kB\n";
        assert_eq!(parse_status_kib(text, "VmHWM"), Some(121_808));
        assert_eq!(parse_status_kib(text, "VmRSS"), Some(1000));
        assert_eq!(parse_status_kib(text, "VmSwap"), None);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.peak_rss_bytes >= s.rss_bytes && s.rss_bytes > 0);
        assert!(clock_ticks_per_second() > 0);
        let u = ServerUsage::new(1, s, s, 2_000_000, 1000, 0.0);
        assert_eq!(u.cpu_seconds, 0.0);
        assert_eq!(
            u.peak_rss_per_series_bytes,
            s.peak_rss_bytes as f64 / 1000.0
        );
    }
}
