#!/usr/bin/env bash
# Regenerates the Prometheus XOR chunk fixture in storage/tests/data/xor/:
#   input.om    an OpenMetrics file: counters and gauges, regular and irregular (jittered, gappy)
#               timestamps, repeated values, NaN and infinities, full-precision floats
#   000001      the chunk segment file Prometheus's promtool writes for it
# storage/tests/chunkenc_prometheus.rs checks that strata decodes every chunk of 000001 to the input
# and re-encodes it to identical bytes.
#
# Needs promtool (Prometheus 2.42 on Debian: `apt-get install -y prometheus`) and awk (mawk or gawk;
# integers are printed with %.0f because mawk's %d stops at 2^31). The data is deterministic (a
# fixed-seed Lehmer generator in integer-exact arithmetic), and all samples fall in one 2h block
# range, so promtool writes a single block.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$repo/storage/tests/data/xor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

command -v promtool >/dev/null || { echo "promtool not found: apt-get install -y prometheus" >&2; exit 1; }

awk '
function rnd() { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
function ts(ms) { return sprintf("%.0f.%03d", int(ms / 1000), ms % 1000) }
BEGIN {
    seed = 42
    start = 1699999200 * 1000 + 60000   # 1 min into a 2h-aligned block range (ms)
    limit = start + 7000000             # 80s before that range ends

    print "# HELP node_cpu_seconds Seconds the CPUs spent in each mode."
    print "# TYPE node_cpu_seconds counter"
    # Scraped every 15s with a few ms of jitter; values with centiseconds.
    split("idle user", modes, " ")
    for (m = 1; m <= 2; m++) {
        v = 1000 * m * m; t = start
        for (i = 0; i < 300; i++) {
            t0 = t + int(rnd() * 40) - 20
            printf "node_cpu_seconds_total{cpu=\"0\",mode=\"%s\"} %.2f %s\n", modes[m], v, ts(t0)
            v += (m == 1 ? 14.5 : 0.3 * m) + int(rnd() * 100) / 100
            t += 15000
        }
    }

    print "# HELP node_network_receive_bytes Bytes received."
    print "# TYPE node_network_receive_bytes counter"
    # Exact 15s interval, integer bytes, a counter reset half way.
    v = 123456789; t = start
    for (i = 0; i < 300; i++) {
        if (i == 150) v = 0
        printf "node_network_receive_bytes_total{device=\"eth0\"} %.0f %s\n", v, ts(t)
        v += int(rnd() * 5000000); t += 15000
    }

    print "# HELP node_memory_MemFree_bytes Free memory."
    print "# TYPE node_memory_MemFree_bytes gauge"
    # 10s interval, values that often repeat.
    v = 8589934592; t = start + 3
    for (i = 0; i < 400; i++) {
        printf "node_memory_MemFree_bytes %.0f %s\n", v, ts(t)
        if (rnd() < 0.3) v += (int(rnd() * 2000) - 1000) * 4096
        t += 10000
    }

    print "# HELP node_load1 One-minute load average."
    print "# TYPE node_load1 gauge"
    # Irregular: 1ms to 20s apart, with gaps of 20s to 2min and 5 to 13min that take the wide dod
    # buckets.
    v = 0.52; t = start
    while (t < limit) {
        printf "node_load1 %.2f %s\n", v, ts(t)
        v = v + (rnd() - 0.5) * 0.4; if (v < 0) v = 0
        r = rnd()
        if (r < 0.02) t += 300000 + int(rnd() * 500000)
        else if (r < 0.1) t += 20000 + int(rnd() * 100000)
        else t += 1 + int(rnd() * 20000)
    }

    print "# HELP probe_value Odd float values."
    print "# TYPE probe_value gauge"
    # Full-precision floats, tiny and huge magnitudes, signed zero, NaN and infinities; 1s interval.
    t = start
    for (i = 0; i < 400; i++) {
        r = rnd()
        if (r < 0.02) s = "NaN"
        else if (r < 0.03) s = "+Inf"
        else if (r < 0.04) s = "-Inf"
        else if (r < 0.06) s = "-0.0"
        else if (r < 0.3) s = prev
        else if (r < 0.5) s = sprintf("%.17g", (rnd() - 0.5) * 1e-300)
        else if (r < 0.6) s = sprintf("%.17g", rnd() * 1e300)
        else s = sprintf("%.17g", sin(i / 10) * 100)
        if (s == "") s = "1"
        printf "probe_value{target=\"a\"} %s %s\n", s, ts(t)
        prev = s; t += 1000
    }

    print "# HELP up Whether the target is up."
    print "# TYPE up gauge"
    for (j = 1; j <= 2; j++) {
        t = start + j
        for (i = 0; i < 200; i++) {
            printf "up{instance=\"host-%d:9100\"} %d %s\n", j, (rnd() < 0.05 ? 0 : 1), ts(t)
            t += 30000
        }
    }
    print "# EOF"
}' > "$work/input.om"

promtool tsdb create-blocks-from openmetrics "$work/input.om" "$work/blocks" >&2

blocks=("$work"/blocks/*/)
if [ "${#blocks[@]}" -ne 1 ]; then
    echo "expected exactly one block, got ${#blocks[@]}" >&2
    exit 1
fi
mkdir -p "$out"
cp "$work/input.om" "$out/input.om"
cp "${blocks[0]}chunks/000001" "$out/000001"
echo "wrote $out/input.om ($(wc -l < "$out/input.om") lines) and $out/000001 ($(wc -c < "$out/000001") bytes)" >&2
