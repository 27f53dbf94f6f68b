#!/usr/bin/env bash
# Throughput cost of the group-commit WAL: strata alone under bench/peers/ingest.sh's load, with
# `wal_fsync: group` (STRATA_CONFIG, default bench/peers/strata-bench.yaml) against `relaxed`
# (RELAXED_CONFIG, default bench/peers/strata-bench-relaxed.yaml), in alternating runs (the order
# flips every pair, so a drift of the machine's speed hits both), for each sender count.
#
# A closed-loop load with few senders measures latency as much as throughput: each sender waits
# for its answer, and a group commit adds the wait for the fsync to every answer. The server's
# throughput is what it reaches with enough senders to keep it busy; the default sender counts
# (4, and ingest.sh's default of 16) show both.
#
# Prints a Markdown table (per sender count: each run's samples/s, the medians, the cost
# 1 - group/relaxed of the medians, and the median CPU per 1M samples) and writes it, with
# ingest.sh's output, log and raw JSON of every run, under RESULTS_DIR/wal-cost-<date>/runs/
# (not `raw/`, which .gitignore keeps out for run.sh's large dumps: these are small).
#
# usage: bench/peers/wal-cost.sh [--pairs N] [--concurrency "4 16"] [--rounds N] [--hosts N]
#                                [--no-build]
# The same settings as environment variables: PAIRS CONCURRENCIES ROUNDS HOSTS BUILD=0
# RESULTS_DIR STRATA_CONFIG RELAXED_CONFIG; binaries: STRATA_BIN LOADGEN_BIN (as ingest.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/peers/lib.sh
. "$ROOT/bench/peers/lib.sh"

PAIRS=${PAIRS:-5}
CONCURRENCIES=${CONCURRENCIES:-4 16}
ROUNDS=${ROUNDS:-100}
HOSTS=${HOSTS:-1000}
BUILD=${BUILD:-1}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
STRATA_CONFIG=${STRATA_CONFIG:-$ROOT/bench/peers/strata-bench.yaml}
RELAXED_CONFIG=${RELAXED_CONFIG:-$ROOT/bench/peers/strata-bench-relaxed.yaml}

while [ $# -gt 0 ]; do
    case "$1" in
    --pairs) PAIRS=$2 && shift ;;
    --concurrency) CONCURRENCIES=$2 && shift ;;
    --rounds) ROUNDS=$2 && shift ;;
    --hosts) HOSTS=$2 && shift ;;
    --no-build) BUILD=0 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
[ "$PAIRS" -ge 1 ] 2>/dev/null || die "--pairs must be a positive number"
grep -q 'wal_fsync: relaxed' "$RELAXED_CONFIG" || die "$RELAXED_CONFIG does not set wal_fsync: relaxed"
if grep -q 'wal_fsync:' "$STRATA_CONFIG" && ! grep -q 'wal_fsync: group' "$STRATA_CONFIG"; then
    die "$STRATA_CONFIG sets a wal_fsync other than group"
fi

if [ "$BUILD" = 1 ]; then
    log "building strata and strata-loadgen (release)"
    (cd "$ROOT" && cargo build --release -p strata -p strata-loadgen) >&2
fi

OUT="$RESULTS_DIR/wal-cost-$(date -u +%Y-%m-%dT%H%M%SZ)"
mkdir -p "$OUT/runs"

# One ingest.sh run of strata alone, its raw JSON under $OUT/runs/<name>/; prints
# "samples/s cpu-s-per-1M".
run_once() { # mode concurrency name
    local mode=$1 c=$2 dir="$OUT/runs/$3" config=$STRATA_CONFIG
    mkdir -p "$dir"
    [ "$mode" = relaxed ] && config=$RELAXED_CONFIG
    STRATA_CONFIG=$config SYSTEMS=strata BUILD=0 INSTALL=0 ROUNDS=$ROUNDS HOSTS=$HOSTS \
        CONCURRENCY=$c RESULTS_DIR="$dir" "$ROOT/bench/peers/ingest.sh" >"$dir.md" 2>"$dir.log" ||
        die "ingest.sh failed ($mode, $c senders): see $dir.log"
    jq -r '.systems[0] | "\(.samples_per_s) \(.cpu_seconds_per_million_samples)"' "$dir"/ingest-*.json
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
    else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

{
    echo "Group commit against relaxed: strata alone, $((HOSTS * 100)) series x $ROUNDS rounds," \
        "2,000 series per request, $PAIRS alternating pairs per sender count, $(nproc) CPUs," \
        "$(date -u +%Y-%m-%dT%H:%MZ), $("${STRATA_BIN:-$ROOT/target/release/strata}" --version 2>&1 | head -n 1)."
    echo
    echo "| senders | group samples/s | relaxed samples/s | median group | median relaxed |" \
        "cost | CPU s/1M group | CPU s/1M relaxed |"
    echo "|---:|---|---|---:|---:|---:|---:|---:|"
} >"$OUT/table.md"
for c in $CONCURRENCIES; do
    g_sps=() r_sps=() g_cpu=() r_cpu=()
    for i in $(seq "$PAIRS"); do
        order="group relaxed"
        [ $((i % 2)) = 0 ] && order="relaxed group"
        for mode in $order; do
            res=$(run_once "$mode" "$c" "c$c-$i-$mode")
            read -r sps cpu <<<"$res"
            log "$c senders, pair $i, $mode: $sps samples/s, $cpu CPU s per 1M samples"
            if [ "$mode" = group ]; then
                g_sps+=("$sps") g_cpu+=("$cpu")
            else
                r_sps+=("$sps") r_cpu+=("$cpu")
            fi
        done
    done
    mg=$(printf '%s\n' "${g_sps[@]}" | median)
    mr=$(printf '%s\n' "${r_sps[@]}" | median)
    cg=$(printf '%s\n' "${g_cpu[@]}" | median)
    cr=$(printf '%s\n' "${r_cpu[@]}" | median)
    list() { printf '%s\n' "$@" | awk '{ printf "%s%.2fM", (NR > 1 ? " / " : ""), $1 / 1e6 }'; }
    awk -v c="$c" -v g="$(list "${g_sps[@]}")" -v r="$(list "${r_sps[@]}")" -v mg="$mg" \
        -v mr="$mr" -v cg="$cg" -v cr="$cr" 'BEGIN {
        printf "| %s | %s | %s | %.2fM | %.2fM | %.1f%% | %.3f | %.3f |\n",
            c, g, r, mg / 1e6, mr / 1e6, (1 - mg / mr) * 100, cg, cr }' >>"$OUT/table.md"
done
cat "$OUT/table.md"
log "table and raw numbers: $OUT"
