#!/usr/bin/env bash
# The peer benchmark in one command: strata, Prometheus and VictoriaMetrics side by side on this
# machine, on the same data, with the same client; writes bench/results/<date>/report.md with
# tables and PNG charts beside it, and the raw JSON (raw.json and every step's own output).
#
# Steps:
# 1. Ingest (bench/peers/ingest.sh, each system alone on loopback with a fresh data directory):
#    the `node` and `k8s` profiles of strata-loadgen write, REPS times each: samples/s, CPU
#    seconds per 1M samples, peak RSS per active series.
# 2. History: `strata-loadgen backfill --blocks-dir` writes DAYS of the fleet (HOSTS hosts of 100
#    series plus a 10-bucket classic histogram per host, one sample per INTERVAL) as Prometheus
#    blocks of BLOCK_RANGE with strata's block writer. strata gets them through its block upload
#    API (`strata-loadgen upload`), Prometheus in its data directory, VictoriaMetrics through
#    `vmctl prometheus`.
# 3. Storage: bytes per sample of each system's data once the history is in it.
# 4. Queries over the history, per range in RANGES (each with its own step): strata's answer is
#    first checked equal to Prometheus's (`strata-loadgen query --reference-url`); then each
#    system is timed alone (the others paused), WARMUP unmeasured runs then RUNS runs, REPS times.
#    VictoriaMetrics's answers are not checked (its rate() differs from Prometheus's by design).
#    Then the query mix over the range (`strata-loadgen query-mix`): the four queries as range
#    queries in equal shares, open loop at one rate for all systems, MIX_LOAD times the rate the
#    slowest system served them one at a time in the timings just taken (MIX_LOAD / the largest,
#    over systems, of the mean of its four p50s, at most MIX_MAX_RATE queries/s); each system
#    alone, MIX_WARMUP seconds of unmeasured queries (at least one) then MIX_DURATION seconds
#    measured, MIX_CONCURRENCY workers; p50/p90/p99/max from each query's scheduled send time.
# 5. The report: strata-bench-report (tables with ratios, losses marked, charts).
#
# strata runs with its defaults (group-commit WAL) plus the bench settings of
# bench/peers/strata-bench.yaml (loopback port, no limits in the way of the load).
#
# usage: bench/peers/run.sh [--quick] [--no-build] [--no-install] [--keep]
# --quick: 1,000 series over 1 day, ranges 1h and 24h, one repetition, mixes of 8s (under 10
# minutes on 2 cores, build excluded). Default: 10,000 series over 30 days at 60s, ranges 1h 24h 7d
# 30d, 3 repetitions, mixes of 40s (about 9 minutes of the run).
# Settings as environment variables: HOSTS DAYS INTERVAL BLOCK_RANGE RANGES REPS RUNS WARMUP
# INGEST_HOSTS INGEST_ROUNDS PROFILES BUILD=0 INSTALL=0 KEEP=1 READY_TIMEOUT RESULTS_DIR; the mix:
# MIX_LOAD (0.5) MIX_MAX_RATE (50) MIX_DURATION and MIX_WARMUP (whole seconds: 40 and 3, quick 8
# and 2) MIX_CONCURRENCY (8); binaries: LOADGEN_BIN STRATA_BIN REPORT_BIN PROMETHEUS_BIN VM_BIN
# VMCTL_BIN; ports: PROMETHEUS_PORT VM_PORT.
# Exits non-zero if a system fails to start or any step fails (the report is still written when
# the data for it is there).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/peers/lib.sh
. "$ROOT/bench/peers/lib.sh"
STRATA_CONFIG=${STRATA_CONFIG:-$ROOT/bench/peers/strata-bench.yaml}
COMMAND="bench/peers/run.sh $*"

QUICK=0
HOSTS=${HOSTS:-100}
DAYS=${DAYS:-30}
INTERVAL=${INTERVAL:-60s}
BLOCK_RANGE=${BLOCK_RANGE:-24h}
RANGES=${RANGES:-1h 24h 7d 30d}
REPS=${REPS:-3}
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-2}
INGEST_HOSTS=${INGEST_HOSTS:-1000}
INGEST_ROUNDS=${INGEST_ROUNDS:-20}
PROFILES=${PROFILES:-node k8s}
MIX_LOAD=${MIX_LOAD:-0.5}
MIX_MAX_RATE=${MIX_MAX_RATE:-50}
MIX_DURATION=${MIX_DURATION:-40}
MIX_WARMUP=${MIX_WARMUP:-3}
MIX_CONCURRENCY=${MIX_CONCURRENCY:-8}
BUILD=${BUILD:-1}
INSTALL=${INSTALL:-1}
KEEP=${KEEP:-0}
READY_TIMEOUT=${READY_TIMEOUT:-120}
COMPACT_TIMEOUT=${COMPACT_TIMEOUT:-600}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-19090}
VM_PORT=${VM_PORT:-18428}
SYSTEMS="strata prometheus victoria-metrics"

while [ $# -gt 0 ]; do
    case "$1" in
    --quick)
        QUICK=1 HOSTS=10 DAYS=1 RANGES="1h 24h" REPS=1 RUNS=5 WARMUP=1
        INGEST_HOSTS=10 INGEST_ROUNDS=200 MIX_DURATION=8 MIX_WARMUP=2
        ;;
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

# A step per range: multiples of the 60s scrape interval (so the grid keeps the query end's phase,
# off every sample; see backfill's query_end_ms), 60-720 points (Prometheus allows 11,000).
step_for() { # range
    case "$1" in
    1h) echo 60s ;;
    6h) echo 60s ;;
    24h | 1d) echo 2m ;;
    7d) echo 15m ;;
    30d) echo 1h ;;
    *) echo 5m ;;
    esac
}

# The query mix's rate over a range, queries/s: MIX_LOAD / the largest, over systems, of the mean
# of the system's per-query p50s (each the median of its repetitions) in seconds, from the timing
# files of the range; at most MIX_MAX_RATE, at least 0.01. Fails when there is no timing.
mix_rate() { # range
    local files=() s rep
    for s in $SYSTEMS; do
        for rep in $(seq 1 "$REPS"); do
            [ -f "$RAW/time-$s-$1-$rep.json" ] && files+=("$RAW/time-$s-$1-$rep.json")
        done
    done
    [ ${#files[@]} -gt 0 ] || return 1
    jq -s -e --argjson load "$MIX_LOAD" --argjson most "$MIX_MAX_RATE" '
        def median: sort | if length % 2 == 1 then .[length / 2 | floor]
            else (.[length / 2 - 1] + .[length / 2]) / 2 end;
        group_by(.system)
        | map([.[].results[]] | group_by(.query) | map(map(.p50_ms) | median) | add / length)
        | max | select(. != null and . > 0)
        | [[$load / (. / 1000), $most] | min, 0.01] | max | . * 1000 | round / 1000' "${files[@]}"
}

# --- tools ------------------------------------------------------------------------------------

has_system() { return 0; }

install_peers
PROMETHEUS_BIN=${PROMETHEUS_BIN:-$(package_bin prometheus prometheus)} || die "no prometheus binary"
VM_BIN=${VM_BIN:-$(package_bin victoria-metrics victoria-metrics victoria-metrics-prod)} ||
    die "no victoria-metrics binary"
VMCTL_BIN=${VMCTL_BIN:-$(package_bin victoria-metrics vmctl vmctl-prod)} || die "no vmctl binary"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "$BUILD" = 1 ]; then
    log "building strata, strata-loadgen and strata-bench-report (release)"
    (cd "$ROOT" && cargo build --release -p strata -p strata-loadgen -p strata-bench-report)
fi
LOADGEN_BIN=${LOADGEN_BIN:-$TARGET_DIR/release/strata-loadgen}
STRATA_BIN=${STRATA_BIN:-$TARGET_DIR/release/strata}
REPORT_BIN=${REPORT_BIN:-$TARGET_DIR/release/strata-bench-report}
for b in "$LOADGEN_BIN" "$STRATA_BIN" "$REPORT_BIN"; do [ -x "$b" ] || die "no binary at $b"; done
STRATA_PORT=$(sed -n 's/^ *http_listen_port: *\([0-9][0-9]*\).*/\1/p' "$STRATA_CONFIG" | head -n 1)
[ -n "$STRATA_PORT" ] || die "no server.http_listen_port in $STRATA_CONFIG"

STAMP=$(date -u +%Y-%m-%dT%H%MZ)
OUT=${RESULTS_DIR:-$ROOT/bench/results}/$STAMP
RAW="$OUT/raw"
mkdir -p "$RAW"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-run.XXXXXX")
declare -A PID PORT BASE_URL PUSH_URL VERSION
FAILED=()

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

log "results go to $OUT"

# --- 1. ingest --------------------------------------------------------------------------------

for profile in $PROFILES; do
    for rep in $(seq 1 "$REPS"); do
        log "ingest: profile $profile, repetition $rep of $REPS"
        if ! RESULTS_DIR="$RAW/ingest-$profile-$rep" PROFILE=$profile HOSTS=$INGEST_HOSTS \
            ROUNDS=$INGEST_ROUNDS BUILD=0 INSTALL=0 LOADGEN_BIN=$LOADGEN_BIN \
            STRATA_BIN=$STRATA_BIN PROMETHEUS_BIN=$PROMETHEUS_BIN VM_BIN=$VM_BIN \
            STRATA_CONFIG=$STRATA_CONFIG PROMETHEUS_PORT=$PROMETHEUS_PORT VM_PORT=$VM_PORT \
            "$ROOT/bench/peers/ingest.sh" >"$RAW/ingest-$profile-$rep.md"; then
            FAILED+=("ingest of profile $profile (repetition $rep)")
        fi
    done
done

# --- 2. history -------------------------------------------------------------------------------

log "history: $HOSTS hosts over $DAYS days at $INTERVAL, blocks of $BLOCK_RANGE"
"$LOADGEN_BIN" backfill --blocks-dir "$WORK/blocks" --hosts "$HOSTS" --days "$DAYS" \
    --interval "$INTERVAL" --block-range "$BLOCK_RANGE" --with-histogram \
    --summary "$RAW/backfill.json" >&2 || die "backfill into blocks failed"
END_MS=$(jq -r .query_end_ms "$RAW/backfill.json")
SAMPLES=$(jq -r .samples "$RAW/backfill.json")
SERIES=$(jq -r .series "$RAW/backfill.json")
log "history: $SERIES series, $SAMPLES samples; queries end at $END_MS ms"

# Prometheus reads the blocks from its data directory (kept: no retention within 100 years).
mkdir -p "$WORK/prometheus/data"
cp -r "$WORK/blocks/." "$WORK/prometheus/data/"
PROMETHEUS_EXTRA_ARGS=(--storage.tsdb.retention.time=100y)
for system in $SYSTEMS; do
    start_server "$system" || die "$system did not start"
done

log "strata: uploading the blocks"
"$LOADGEN_BIN" upload --url "${BASE_URL[strata]}" --tenant anonymous "$WORK"/blocks/*/ >&2 ||
    die "block upload to strata failed"
log "victoria-metrics: importing the blocks with vmctl"
# vmctl insists on a terminal for its progress bar: `script` gives it one.
vmctl_cmd=$(printf '%q ' "$VMCTL_BIN" prometheus --prom-snapshot="$WORK/blocks" \
    --vm-addr="${BASE_URL[victoria-metrics]}" -s --vm-disable-progress-bar)
script -qec "$vmctl_cmd" /dev/null </dev/null >"$RAW/vmctl.log" 2>&1 ||
    die "vmctl prometheus failed (see $RAW/vmctl.log)"
curl -fsS "${BASE_URL[victoria-metrics]}/internal/force_flush" >/dev/null ||
    die "victoria-metrics: force_flush failed"
# strata's bucket catalog finds uploaded blocks within its sync interval; wait until a query at
# the history's end sees every series.
deadline=$((SECONDS + 180))
while :; do
    got=$(curl -fsS "${BASE_URL[strata]}/api/v1/query" \
        --data-urlencode 'query=count({__name__=~".+"})' \
        --data-urlencode "time=$((END_MS / 1000))" | jq -r '.data.result[0].value[1] // 0')
    [ "$got" -ge "$SERIES" ] 2>/dev/null && break
    [ $SECONDS -lt $deadline ] || die "strata sees $got of $SERIES series after 180s"
    sleep 2
done

# --- 3. storage -------------------------------------------------------------------------------

# Prometheus and VictoriaMetrics: their data directories once everything is merged.
curl -fsS "${BASE_URL[victoria-metrics]}/internal/force_merge" >/dev/null || true
sleep 5
wait_prometheus_compacted
bytes_of() { du -sb "$1" | cut -f1; }
STORAGE_STRATA=$(bytes_of "$WORK/strata/data/bucket")
STORAGE_PROMETHEUS=$(($(bytes_of "$WORK/prometheus/data") - $(bytes_of "$WORK/prometheus/data/wal")))
STORAGE_VM=$(bytes_of "$WORK/victoria-metrics/data")
log "storage bytes: strata $STORAGE_STRATA, prometheus $STORAGE_PROMETHEUS, vm $STORAGE_VM"

# --- 4. queries -------------------------------------------------------------------------------

queries=()
for q in "${QUERIES[@]}"; do queries+=(--query "$q"); done
declare -A CHECKED
for r in $RANGES; do
    step=$(step_for "$r")
    common=(--end "$END_MS" --step "$step" --range "$r" "${queries[@]}")
    log "queries over $r (step $step): checking strata against prometheus"
    only strata
    kill -CONT "${PID[prometheus]}"
    if "$LOADGEN_BIN" query --url "${BASE_URL[strata]}" --reference-url "${BASE_URL[prometheus]}" \
        --system strata "${common[@]}" --summary "$RAW/check-$r.json" >&2; then
        CHECKED[$r]=true
    else
        CHECKED[$r]=false
        FAILED+=("strata's answers over $r differ from prometheus's")
    fi
    for rep in $(seq 1 "$REPS"); do
        for system in $SYSTEMS; do
            log "queries over $r: timing $system (repetition $rep of $REPS, others paused)"
            only "$system"
            if ! "$LOADGEN_BIN" query --url "${BASE_URL[$system]}" --system "$system" \
                "${common[@]}" --warmup "$WARMUP" --runs "$RUNS" \
                --summary "$RAW/time-$system-$r-$rep.json" >/dev/null; then
                FAILED+=("$system: a query over $r failed")
            fi
        done
    done

    if ! rate=$(mix_rate "$r"); then
        FAILED+=("the query mix over $r: no timings to set its rate from")
        continue
    fi
    mix=()
    for i in "${!QUERIES[@]}"; do
        mix+=(--mix "name=${QUERY_NAMES[$i]},type=range,range=$r,step=$step,query=${QUERIES[$i]}")
    done
    warmup=$(jq -n --argjson rate "$rate" --argjson s "$MIX_WARMUP" '[$rate * $s | ceil, 1] | max')
    for system in $SYSTEMS; do
        log "query mix over $r: $system alone, $rate queries/s for ${MIX_DURATION}s" \
            "after $warmup warm-up queries (others paused)"
        only "$system"
        if ! "$LOADGEN_BIN" query-mix --url "${BASE_URL[$system]}" "${mix[@]}" --end "$END_MS" \
            --rate "$rate" --concurrency "$MIX_CONCURRENCY" --duration "${MIX_DURATION}s" \
            --warmup "$warmup" --json-out "$RAW/mix-$system-$r.json" >&2; then
            FAILED+=("$system: the query mix over $r failed")
        fi
    done
done
resume_all

# --- 5. raw.json and the report ---------------------------------------------------------------

versions=$(jq -n --arg s "${VERSION[strata]}" --arg p "${VERSION[prometheus]}" \
    --arg v "${VERSION[victoria-metrics]}" \
    '{strata: $s, prometheus: $p, "victoria-metrics": $v}')

# Ingest rows: one per profile and system, one run per repetition.
ingest=$(for f in "$RAW"/ingest-*/ingest-*.json; do
    [ -f "$f" ] && jq -c '.load as $l | .systems[] | select(.ok) |
        {profile: $l.profile, system: .system,
         active_series: (.loadgen.active_series // $l.series),
         run: {samples_per_s: .samples_per_s,
               cpu_s_per_1m_samples: .cpu_seconds_per_million_samples,
               peak_rss_bytes: ([.loadgen | .. | .peak_rss_bytes? | numbers][0])}}' "$f"
done | jq -s 'group_by([.profile, .system]) | map({profile: .[0].profile,
    system: .[0].system, active_series: .[0].active_series, runs: map(.run)})')

storage=$(jq -n --argjson n "$SAMPLES" --argjson s "$STORAGE_STRATA" \
    --argjson p "$STORAGE_PROMETHEUS" --argjson v "$STORAGE_VM" \
    '[{system: "strata", samples: $n, bytes: $s}, {system: "prometheus", samples: $n, bytes: $p},
      {system: "victoria-metrics", samples: $n, bytes: $v}]')

names=$(printf '%s\n' "${QUERY_NAMES[@]}" | jq -R . | jq -s .)
exprs=$(printf '%s\n' "${QUERIES[@]}" | jq -R . | jq -s .)
checked=$(for r in $RANGES; do printf '%s\t%s\n' "$r" "${CHECKED[$r]:-false}"; done |
    jq -R 'split("\t") | {(.[0]): (.[1] == "true")}' | jq -s add)
queries_json=$(for f in "$RAW"/time-*.json; do
    [ -f "$f" ] && jq -c --argjson names "$names" --argjson exprs "$exprs" \
        --argjson checked "$checked" '.system as $sys | .step_s as $step | .results[] |
        . as $t | ($exprs | index($t.query)) as $i |
        {name: $names[$i], query: .query, range: .range, step: "\($step)s", system: $sys,
         checked: (if $sys == "strata" then $checked[.range]
                   else $sys == "prometheus" end),
         run: {p50_ms: .p50_ms, p99_ms: .p99_ms}}' "$f"
done | jq -s 'group_by([.name, .range, .system]) | map(.[0] + {runs: map(.run)} | del(.run))')

# Mix rows: one per range and system that has a measured success.
mix_json=$(for r in $RANGES; do
    for system in $SYSTEMS; do
        f="$RAW/mix-$system-$r.json"
        [ -f "$f" ] && jq -c --arg range "$r" --arg system "$system" \
            --argjson duration "$MIX_DURATION" 'select(.latency_us.count > 0) |
            {range: $range, step: "\(.entries[0].step_s)s", rate_qps: .rate,
             duration_s: $duration, system: $system, queries: .queries, errors: .errors,
             p50_ms: (.latency_us.p50 / 1000), p90_ms: (.latency_us.p90 / 1000),
             p99_ms: (.latency_us.p99 / 1000), max_ms: (.latency_us.max / 1000)}' "$f"
    done
done | jq -s .)

jq -n --arg started "$STARTED" --arg command "$COMMAND" --argjson quick "$QUICK" \
    --argjson cpus "$(nproc)" \
    --arg cpu_model "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
    --argjson mem "$(awk '/MemTotal/ { printf "%d\n", $2 / 1048576 + 0.5 }' /proc/meminfo)" \
    --arg kernel "$(uname -sr)" --argjson versions "$versions" --argjson ingest "$ingest" \
    --argjson storage "$storage" --argjson queries "$queries_json" --argjson mix "$mix_json" \
    '{started: $started, command: $command, quick: ($quick == 1),
      machine: {cpus: $cpus, cpu_model: $cpu_model, mem_gib: $mem, kernel: $kernel},
      versions: $versions, ingest: $ingest, storage: $storage, queries: $queries, mix: $mix,
      notes: []}' >"$OUT/raw.json"
# Notes on losses, written by hand after looking at profiles, go into notes.json beside the
# report and are merged in when present.
if [ -f "$OUT/notes.json" ]; then
    jq --slurpfile n "$OUT/notes.json" '.notes = $n[0]' "$OUT/raw.json" >"$OUT/raw.json.tmp" &&
        mv "$OUT/raw.json.tmp" "$OUT/raw.json"
fi
"$REPORT_BIN" "$OUT/raw.json" "$OUT" || FAILED+=("the report could not be written")
log "report: $OUT/report.md"

if [ ${#FAILED[@]} -gt 0 ]; then
    for f in "${FAILED[@]}"; do log "FAILED: $f"; done
    exit 1
fi
