#!/usr/bin/env bash
# Range-query latency of strata, Prometheus and VictoriaMetrics over the same data.
#
# All three run on loopback with fresh data directories. `strata-loadgen backfill` pushes the same
# node_exporter-like fleet (100 series per host, plus a 10-bucket classic histogram per host) to
# all three, one day of 15s scrapes ending now, streaming. The query end is chosen after the
# newest sample and off every host's scrape phase, so no sample lands on a window boundary and
# Prometheus 2.42's left-closed range selectors select what strata's left-open ones do.
#
# Then, before timing anything, `strata-loadgen query --reference-url` checks that strata's answer
# to every query and range equals Prometheus's (same label sets, same timestamps, values within
# 1e-6 relative). Then each system is timed alone, the other two paused with SIGSTOP: WARMUP
# unmeasured runs and RUNS measured runs per query and range, p50 and p99 from send to last byte.
# The systems take turns query by query, so each query is timed on all three within seconds.
# VictoriaMetrics runs with -search.disableCache (otherwise repeated runs are answered from its
# result cache) and its answers are not checked (its rate() differs by design).
#
# Prints a Markdown table and writes everything to bench/results/query-<date>.json. Exits non-zero
# if a system fails to start, the backfill or a query fails, or strata's answer differs.
#
# usage: bench/peers/query.sh [--quick] [--hosts N] [--hours H] [--runs N] [--warmup N]
#                             [--no-check] [--no-build] [--no-install] [--keep]
# --quick: 10 hosts (1,100 series) over 6h, ranges 1h and 6h. Default: 100 hosts (11,000 series)
# over 24h, ranges 1h, 6h and 24h. Either way the data start 10 minutes before the longest range,
# so its first windows are full. The same settings as environment variables: HOSTS HOURS RANGES
# RUNS WARMUP CHECK=0 BUILD=0 INSTALL=0 KEEP=1 READY_TIMEOUT COMPACT_TIMEOUT RESULTS_DIR;
# binaries: LOADGEN_BIN STRATA_BIN PROMETHEUS_BIN VM_BIN; ports: PROMETHEUS_PORT VM_PORT.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/peers/lib.sh
. "$ROOT/bench/peers/lib.sh"
STRATA_CONFIG="$ROOT/bench/peers/strata-bench.yaml"
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}

HOSTS=${HOSTS:-100}
HOURS=${HOURS:-24}
RANGES=${RANGES:-1h 6h 24h}
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-2}
CHECK=${CHECK:-1}
BUILD=${BUILD:-1}
INSTALL=${INSTALL:-1}
KEEP=${KEEP:-0}
READY_TIMEOUT=${READY_TIMEOUT:-60}
COMPACT_TIMEOUT=${COMPACT_TIMEOUT:-600}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-19090}
VM_PORT=${VM_PORT:-18428}
SYSTEMS="strata prometheus victoria-metrics"

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) HOSTS=10 HOURS=6 RANGES="1h 6h" ;;
    --hosts) HOSTS=$2 && shift ;;
    --hours) HOURS=$2 && shift ;;
    --runs) RUNS=$2 && shift ;;
    --warmup) WARMUP=$2 && shift ;;
    --no-check) CHECK=0 ;;
    --no-build) BUILD=0 ;;
    --no-install) INSTALL=0 ;;
    --keep) KEEP=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
# 15s scrapes over HOURS, plus 10 minutes so the longest range's first windows are full.
ROUNDS=$((HOURS * 240 + 40))

# --- binaries (as ingest.sh) -----------------------------------------------------------------

# Every system runs in this script.
has_system() { return 0; }

install_peers
PROMETHEUS_BIN=${PROMETHEUS_BIN:-$(package_bin prometheus prometheus)} || die "no prometheus binary"
VM_BIN=${VM_BIN:-$(package_bin victoria-metrics victoria-metrics victoria-metrics-prod)} ||
    die "no victoria-metrics binary"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "$BUILD" = 1 ]; then
    log "building strata and strata-loadgen (release)"
    (cd "$ROOT" && cargo build --release -p strata -p strata-loadgen)
fi
LOADGEN_BIN=${LOADGEN_BIN:-$TARGET_DIR/release/strata-loadgen}
STRATA_BIN=${STRATA_BIN:-$TARGET_DIR/release/strata}
[ -x "$LOADGEN_BIN" ] || die "no loadgen binary at $LOADGEN_BIN"
[ -x "$STRATA_BIN" ] || die "no strata binary at $STRATA_BIN"
STRATA_PORT=$(sed -n 's/^ *http_listen_port: *\([0-9][0-9]*\).*/\1/p' "$STRATA_CONFIG" | head -n 1)
[ -n "$STRATA_PORT" ] || die "no server.http_listen_port in $STRATA_CONFIG"

# --- servers ----------------------------------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-query.XXXXXX")
declare -A PID PORT BASE_URL PUSH_URL VERSION

cleanup() {
    local s
    for s in $SYSTEMS; do stop_server "$s"; done
    if [ "$KEEP" = 1 ]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- load -------------------------------------------------------------------------------------

for system in $SYSTEMS; do
    start_server "$system" || die "$system did not start"
done

urls=()
for system in $SYSTEMS; do urls+=(--url "${PUSH_URL[$system]}"); done
log "backfilling $HOSTS hosts x $ROUNDS rounds (${HOURS}h + 10m at 15s) into all three"
"$LOADGEN_BIN" backfill "${urls[@]}" --hosts "$HOSTS" --rounds "$ROUNDS" --interval 15s \
    --with-histogram --summary "$WORK/backfill.json" || die "backfill failed"
END_MS=$(jq -r .query_end_ms "$WORK/backfill.json")
SERIES=$(jq -r .series "$WORK/backfill.json")
SAMPLES=$(jq -r .samples "$WORK/backfill.json")
log "queries end at $END_MS ms; waiting for prometheus to finish compacting its head"
wait_prometheus_compacted
sleep 5 # VictoriaMetrics makes new parts searchable within a second or so

ranges=()
for r in $RANGES; do ranges+=(--range "$r"); done
queries=()
for q in "${QUERIES[@]}"; do queries+=(--query "$q"); done
common=(--end "$END_MS" --step 15s "${ranges[@]}" "${queries[@]}")

FAILED=()
CHECK_OK=skipped
if [ "$CHECK" = 1 ]; then
    log "checking strata's answers against prometheus's"
    only strata
    kill -CONT "${PID[prometheus]}"
    if "$LOADGEN_BIN" query --url "${BASE_URL[strata]}" --reference-url "${BASE_URL[prometheus]}" \
        --system strata "${common[@]}" --summary "$WORK/check.json"; then
        CHECK_OK=true
    else
        CHECK_OK=false
        FAILED+=("strata's answers differ from prometheus's (or a query failed); see above")
    fi
fi

# One query at a time on each system in turn, so that the three are timed within seconds of each
# other: on a shared machine, whose speed drifts over minutes, that keeps the ratios honest.
declare -A P50 P99
for i in "${!QUERIES[@]}"; do
    q=${QUERIES[$i]}
    for system in $SYSTEMS; do
        log "$system: timing $q ($WARMUP warm-ups, $RUNS runs per range; others paused)"
        only "$system"
        if ! "$LOADGEN_BIN" query --url "${BASE_URL[$system]}" --system "$system" \
            --end "$END_MS" --step 15s "${ranges[@]}" --query "$q" \
            --warmup "$WARMUP" --runs "$RUNS" --summary "$WORK/time-$system-$i.json" \
            >"$WORK/time-$system-$i.tsv"; then
            FAILED+=("$system: $q failed")
        fi
        while IFS=$'\t' read -r tq r p50 p99; do
            P50["$system|$tq|$r"]=$p50
            P99["$system|$tq|$r"]=$p99
        done <"$WORK/time-$system-$i.tsv"
    done
done
resume_all
# Each system's timings as one summary, as `strata-loadgen query` writes for several queries.
for system in $SYSTEMS; do
    files=("$WORK/time-$system-"*.json)
    [ -s "${files[0]}" ] || continue
    jq -s '.[0] + {results: [.[].results[]]}' "${files[@]}" >"$WORK/time-$system.json"
done

# --- report -----------------------------------------------------------------------------------

num() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else printf "%.1f\n", v }'; }
ratio() { # value ref
    awk -v v="$1" -v r="$2" 'BEGIN { if (v == "" || r == "" || r + 0 == 0) print "-";
        else printf "%.2fx\n", v / r }'
}

echo
echo "Range queries at 15s step ending at the newest sample: $SERIES series ($HOSTS hosts)," \
    "$SAMPLES samples over ${HOURS}h+10m; $WARMUP warm-ups then $RUNS runs each, the other two" \
    "systems paused; $(nproc) CPUs. Latency in ms (p50 / p99); ratios are system p50 / strata" \
    "p50. strata = Prometheus check: $CHECK_OK."
echo
echo "| query | range | strata p50 / p99 | Prometheus p50 / p99 | VictoriaMetrics p50 / p99 |" \
    "Prometheus vs strata | VictoriaMetrics vs strata |"
echo "|---|---|---:|---:|---:|---:|---:|"
for q in "${QUERIES[@]}"; do
    for r in $RANGES; do
        row="| \`$q\` | $r"
        for s in $SYSTEMS; do
            row+=" | $(num "${P50["$s|$q|$r"]:-}") / $(num "${P99["$s|$q|$r"]:-}")"
        done
        ref=${P50["strata|$q|$r"]:-}
        row+=" | $(ratio "${P50["prometheus|$q|$r"]:-}" "$ref")"
        row+=" | $(ratio "${P50["victoria-metrics|$q|$r"]:-}" "$ref") |"
        echo "$row"
    done
done

mkdir -p "$RESULTS_DIR"
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
out="$RESULTS_DIR/query-$stamp.json"
orempty() { if [ -s "$1" ]; then cat "$1"; else echo null; fi; }
jq -n \
    --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --argjson cpus "$(nproc)" \
    --arg kernel "$(uname -sr)" \
    --arg cpu_model "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
    --arg strata "${VERSION[strata]}" --arg prometheus "${VERSION[prometheus]}" \
    --arg vm "${VERSION[victoria-metrics]}" \
    --arg check_ok "$CHECK_OK" \
    --argjson data "$(orempty "$WORK/backfill.json")" \
    --argjson check "$(orempty "$WORK/check.json")" \
    --argjson t_strata "$(orempty "$WORK/time-strata.json")" \
    --argjson t_prometheus "$(orempty "$WORK/time-prometheus.json")" \
    --argjson t_vm "$(orempty "$WORK/time-victoria-metrics.json")" \
    '{date: $date, machine: {cpus: $cpus, kernel: $kernel, cpu_model: $cpu_model},
      versions: {strata: $strata, prometheus: $prometheus, "victoria-metrics": $vm},
      data: $data, check_ok: $check_ok, check: $check,
      timings: {strata: $t_strata, prometheus: $t_prometheus, "victoria-metrics": $t_vm}}' >"$out"
echo
log "raw numbers: $out"

if [ ${#FAILED[@]} -gt 0 ]; then
    for f in "${FAILED[@]}"; do log "FAILED: $f"; done
    exit 1
fi
