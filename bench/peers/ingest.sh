#!/usr/bin/env bash
# Ingest cost of strata, Prometheus and VictoriaMetrics under the same remote-write load.
#
# Each system runs alone on loopback with a fresh data directory; strata-loadgen pushes the same
# node_exporter-like fleet to each (pre-encoded before the clock starts) and reads the server's
# CPU time and peak RSS from /proc. Prints a Markdown table and writes the raw numbers to
# bench/results/ingest-<date>.json. Exits non-zero if a system fails to start or a load has errors.
#
# 16 senders by default, so that samples/s is each system's throughput rather than its latency:
# the load is closed-loop (a sender waits for each answer), and with 4 senders strata served 15-18%
# less than with 16 even acknowledging before its fsync (bench/peers/wal-cost.sh). A Prometheus
# sender behaves the same way, adding shards (up to `max_shards`) until it keeps up.
#
# usage: bench/peers/ingest.sh [--quick] [--profile node|k8s|tenants] [--hosts N] [--rounds N]
#                              [--concurrency N] [--batch N]
#                              [--systems "strata prometheus victoria-metrics"] [--verify]
#                              [--no-build] [--no-install] [--keep]
# --profile: the loadgen's data profile (`strata-loadgen write --profile`, default node).
# The same settings as environment variables: PROFILE HOSTS ROUNDS CONCURRENCY BATCH SYSTEMS SETTLE
# READY_TIMEOUT VERIFY=1 BUILD=0 INSTALL=0 KEEP=1 RESULTS_DIR; binaries: LOADGEN_BIN STRATA_BIN PROMETHEUS_BIN
# VM_BIN; ports: PROMETHEUS_PORT VM_PORT (strata's comes from its config: STRATA_CONFIG, default
# bench/peers/strata-bench.yaml).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/peers/lib.sh
. "$ROOT/bench/peers/lib.sh"
STRATA_CONFIG=${STRATA_CONFIG:-$ROOT/bench/peers/strata-bench.yaml}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}

PROFILE=${PROFILE:-node}
HOSTS=${HOSTS:-1000}
ROUNDS=${ROUNDS:-20}
CONCURRENCY=${CONCURRENCY:-16}
BATCH=${BATCH:-2000}
SYSTEMS=${SYSTEMS:-strata prometheus victoria-metrics}
SETTLE=${SETTLE:-2s}
READY_TIMEOUT=${READY_TIMEOUT:-60}
VERIFY=${VERIFY:-0}
BUILD=${BUILD:-1}
INSTALL=${INSTALL:-1}
KEEP=${KEEP:-0}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-19090}
VM_PORT=${VM_PORT:-18428}

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) HOSTS=100 ROUNDS=5 ;;
    --profile) PROFILE=$2 && shift ;;
    --hosts) HOSTS=$2 && shift ;;
    --rounds) ROUNDS=$2 && shift ;;
    --concurrency) CONCURRENCY=$2 && shift ;;
    --batch) BATCH=$2 && shift ;;
    --systems) SYSTEMS=$2 && shift ;;
    --verify) VERIFY=1 ;;
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

for s in $SYSTEMS; do
    case "$s" in
    strata | prometheus | victoria-metrics) ;;
    *) die "unknown system $s (strata, prometheus, victoria-metrics)" ;;
    esac
done
has_system() { case " $SYSTEMS " in *" $1 "*) return 0 ;; *) return 1 ;; esac }

# --- binaries ---------------------------------------------------------------------------------

# The path of a package's binary: on PATH, else from the package's file list.

install_peers
if has_system prometheus; then
    PROMETHEUS_BIN=${PROMETHEUS_BIN:-$(package_bin prometheus prometheus)} ||
        die "no prometheus binary"
fi
if has_system victoria-metrics; then
    VM_BIN=${VM_BIN:-$(package_bin victoria-metrics victoria-metrics victoria-metrics-prod)} ||
        die "no victoria-metrics binary"
fi

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "$BUILD" = 1 ]; then
    packages=(-p strata-loadgen)
    has_system strata && packages+=(-p strata)
    log "building ${packages[*]} (release)"
    (cd "$ROOT" && cargo build --release "${packages[@]}")
fi
LOADGEN_BIN=${LOADGEN_BIN:-$TARGET_DIR/release/strata-loadgen}
STRATA_BIN=${STRATA_BIN:-$TARGET_DIR/release/strata}
[ -x "$LOADGEN_BIN" ] || die "no loadgen binary at $LOADGEN_BIN"
if has_system strata; then
    [ -x "$STRATA_BIN" ] || die "no strata binary at $STRATA_BIN"
    STRATA_PORT=$(sed -n 's/^ *http_listen_port: *\([0-9][0-9]*\).*/\1/p' "$STRATA_CONFIG" | head -n 1)
    [ -n "$STRATA_PORT" ] || die "no server.http_listen_port in $STRATA_CONFIG"
fi

# --- servers ----------------------------------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-ingest.XXXXXX")
SERVER_PID=""

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        local i
        for i in $(seq 1 150); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

cleanup() {
    stop_server
    if [ "$KEEP" = 1 ]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Status code of GET http://127.0.0.1:PORT/PATH, or nothing (bash's /dev/tcp; no curl needed).


# Starts system $1 in $2; sets SERVER_PID, PUSH_URL, READ_URL, READY_PATH, PORT, VERSION.
start_server() { # system dir
    local system=$1 dir=$2
    case "$system" in
    prometheus)
        PORT=$PROMETHEUS_PORT READY_PATH=/-/ready
        PUSH_URL="http://127.0.0.1:$PORT/api/v1/write" READ_URL="http://127.0.0.1:$PORT/api/v1/read"
        VERSION=$("$PROMETHEUS_BIN" --version 2>&1 | head -n 1)
        printf 'global:\n  scrape_interval: 1m\n' >"$dir/prometheus.yml"
        ;;
    victoria-metrics)
        PORT=$VM_PORT READY_PATH=/health
        PUSH_URL="http://127.0.0.1:$PORT/api/v1/write" READ_URL=""
        VERSION=$("$VM_BIN" -version 2>&1 | head -n 1)
        # Debian's build reports an empty version; fall back to the package's.
        [ -n "$VERSION" ] || VERSION="victoria-metrics $(dpkg-query -W -f='${Version}' \
            victoria-metrics 2>/dev/null || echo unknown)"
        ;;
    strata)
        PORT=$STRATA_PORT READY_PATH=/ready
        PUSH_URL="http://127.0.0.1:$PORT/api/v1/push" READ_URL="http://127.0.0.1:$PORT/api/v1/read"
        VERSION=$("$STRATA_BIN" --version 2>&1 | head -n 1)
        ;;
    esac
    port_busy "$PORT" && die "port $PORT is already in use; $system needs it"
    case "$system" in
    prometheus)
        "$PROMETHEUS_BIN" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
            --web.listen-address="127.0.0.1:$PORT" --web.enable-remote-write-receiver \
            >"$dir/server.log" 2>&1 &
        ;;
    victoria-metrics)
        "$VM_BIN" -storageDataPath="$dir/data" -httpListenAddr="127.0.0.1:$PORT" \
            >"$dir/server.log" 2>&1 &
        ;;
    strata)
        (cd "$dir" && exec "$STRATA_BIN" --config.file "$STRATA_CONFIG") >"$dir/server.log" 2>&1 &
        ;;
    esac
    SERVER_PID=$!
    local deadline=$((SECONDS + READY_TIMEOUT))
    while [ "$(http_status "$PORT" "$READY_PATH")" != 200 ]; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "$system exited during startup; last lines of its log:"
            tail -n 20 "$dir/server.log" >&2
            SERVER_PID=""
            return 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            log "$system not ready on :$PORT$READY_PATH after ${READY_TIMEOUT}s; last log lines:"
            tail -n 20 "$dir/server.log" >&2
            stop_server
            return 1
        fi
        sleep 0.2
    done
}

# --- runs -------------------------------------------------------------------------------------

# A number field of a loadgen summary (pretty JSON, one key per line); empty when absent.
json_num() { # file key
    [ -f "$1" ] || return 0
    sed -n "s/^ *\"$2\": *\(-\{0,1\}[0-9][0-9.eE+-]*\),\{0,1\} *\$/\1/p" "$1" | head -n 1
}

json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\n\r')"; }

FAILED=()
declare -A RESULT_SPS RESULT_CPU RESULT_RSS RESULT_OK RESULT_VERSION RESULT_SUMMARY

for system in $SYSTEMS; do
    dir="$WORK/$system"
    mkdir -p "$dir"
    summary="$dir/loadgen.json"
    RESULT_OK[$system]=false
    RESULT_SUMMARY[$system]=$summary
    log "$system: starting"
    if ! start_server "$system" "$dir"; then
        FAILED+=("$system: did not start")
        continue
    fi
    RESULT_VERSION[$system]=$VERSION
    log "$system ($VERSION) ready on :$PORT, pid $SERVER_PID; pushing $HOSTS hosts x $ROUNDS rounds"
    status=0
    "$LOADGEN_BIN" write --url "$PUSH_URL" --no-tenant --quiet --profile "$PROFILE" \
        --hosts "$HOSTS" --rounds "$ROUNDS" --concurrency "$CONCURRENCY" --batch "$BATCH" \
        --server-pid "$SERVER_PID" --settle "$SETTLE" --summary "$summary" >&2 || status=$?
    if [ "$status" != 0 ]; then
        FAILED+=("$system: loadgen write failed (exit $status)")
    elif [ "$VERIFY" = 1 ] && [ -n "$READ_URL" ]; then
        log "$system: verifying over remote read"
        if "$LOADGEN_BIN" verify --read-url "$READ_URL" --no-tenant --quiet \
            --from-summary "$summary" >&2; then
            RESULT_OK[$system]=true
        else
            FAILED+=("$system: verify found missing or different data")
        fi
    else
        RESULT_OK[$system]=true
    fi
    RESULT_SPS[$system]=$(json_num "$summary" samples_per_s)
    RESULT_CPU[$system]=$(json_num "$summary" cpu_seconds_per_million_samples)
    RESULT_RSS[$system]=$(json_num "$summary" peak_rss_per_series_bytes)
    stop_server
    log "$system: stopped"
done

# --- report -----------------------------------------------------------------------------------

REF=strata
[ "${RESULT_OK[strata]:-false}" = true ] || REF=""

# value / reference value, as "1.23x"; "-" when either is missing.
ratio() { # value ref
    awk -v v="$1" -v r="$2" 'BEGIN { if (v == "" || r == "" || r + 0 == 0) print "-";
        else printf "%.2fx\n", v / r }'
}
num() { # value format
    awk -v v="$1" -v f="$2" 'BEGIN { if (v == "") print "-"; else printf f "\n", v }'
}

echo
echo "Ingest: $HOSTS hosts x 100 series = $((HOSTS * 100)) active series, $ROUNDS rounds" \
    "($((HOSTS * 100 * ROUNDS)) samples), $CONCURRENCY senders x $BATCH series/request," \
    "$(nproc) CPUs; ratios are system / strata."
echo
echo "| system | samples/s | CPU s per 1M samples | peak RSS per series (bytes) |" \
    "samples/s vs strata | CPU vs strata | RSS vs strata |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for system in $SYSTEMS; do
    sps=${RESULT_SPS[$system]:-} cpu=${RESULT_CPU[$system]:-} rss=${RESULT_RSS[$system]:-}
    name=$system
    [ "${RESULT_OK[$system]}" = true ] || name="$system (failed)"
    if [ -n "$REF" ]; then
        r_sps=$(ratio "$sps" "${RESULT_SPS[$REF]}")
        r_cpu=$(ratio "$cpu" "${RESULT_CPU[$REF]}")
        r_rss=$(ratio "$rss" "${RESULT_RSS[$REF]}")
    else
        r_sps=- r_cpu=- r_rss=-
    fi
    echo "| $name | $(num "$sps" %.0f) | $(num "$cpu" %.3f) | $(num "$rss" %.0f) |" \
        "$r_sps | $r_cpu | $r_rss |"
done

mkdir -p "$RESULTS_DIR"
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
out="$RESULTS_DIR/ingest-$stamp.json"
{
    printf '{\n  "date": %s,\n' "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
    printf '  "machine": {"cpus": %s, "kernel": %s, "cpu_model": %s},\n' "$(nproc)" \
        "$(json_str "$(uname -sr)")" \
        "$(json_str "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)")"
    printf '  "load": {"profile": %s, "hosts": %s, "rounds": %s, "concurrency": %s, "batch": %s, ' \
        "$(json_str "$PROFILE")" "$HOSTS" "$ROUNDS" "$CONCURRENCY" "$BATCH"
    printf '"series": %s, "samples": %s, "settle": %s},\n' "$((HOSTS * 100))" \
        "$((HOSTS * 100 * ROUNDS))" "$(json_str "$SETTLE")"
    printf '  "systems": ['
    sep=""
    for system in $SYSTEMS; do
        printf '%s\n    {"system": %s, "version": %s, "ok": %s,\n' "$sep" "$(json_str "$system")" \
            "$(json_str "${RESULT_VERSION[$system]:-}")" "${RESULT_OK[$system]}"
        printf '     "samples_per_s": %s, "cpu_seconds_per_million_samples": %s, ' \
            "${RESULT_SPS[$system]:-null}" "${RESULT_CPU[$system]:-null}"
        printf '"peak_rss_per_series_bytes": %s,\n     "loadgen": ' "${RESULT_RSS[$system]:-null}"
        if [ -s "${RESULT_SUMMARY[$system]}" ]; then
            sed '2,$s/^/     /' "${RESULT_SUMMARY[$system]}"
        else
            printf 'null'
        fi
        printf '}'
        sep=","
    done
    printf '\n  ]\n}\n'
} >"$out"
echo
log "raw numbers: $out"

if [ ${#FAILED[@]} -gt 0 ]; then
    for f in "${FAILED[@]}"; do log "FAILED: $f"; done
    exit 1
fi
