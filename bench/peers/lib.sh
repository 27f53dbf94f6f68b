#!/usr/bin/env bash
# Functions shared by the peer benchmarks (ingest.sh, query.sh, run.sh). Sourced, not run, right
# after the caller sets ROOT; it defines nothing but the queries below and functions. The caller
# defines has_system (which systems take part) and INSTALL (1: apt-get what is missing) before
# calling install_peers. The server functions (start_server and the ones after it) run several
# systems at once; they use the caller's WORK, SYSTEMS, READY_TIMEOUT, COMPACT_TIMEOUT,
# PROMETHEUS_PORT, VM_PORT, STRATA_PORT, STRATA_CONFIG, *_BIN, and the associative arrays PID PORT
# BASE_URL PUSH_URL VERSION, which the caller declares (`declare -A PID PORT BASE_URL PUSH_URL
# VERSION`), and PROMETHEUS_EXTRA_ARGS (an array, may be unset). A data directory put in place
# before start_server (`$WORK/<system>/data`) is kept.

# The query benchmarks' queries (query.sh, run.sh), and their names in run.sh's report.
# shellcheck disable=SC2034 # used by the scripts that source this file
QUERY_NAMES=(sum_rate sum_by_instance histogram_quantile topk)
# shellcheck disable=SC2034
QUERIES=(
    'sum(rate(node_cpu_seconds_total[5m]))'
    'sum by (instance)(rate(node_cpu_seconds_total[5m]))'
    'histogram_quantile(0.9, sum by (le)(rate(http_request_duration_seconds_bucket[5m])))'
    'topk(5, rate(node_network_receive_bytes_total[5m]))'
)

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
# The script's header comment, from its second line to `set -euo`, as its --help.
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

package_bin() { # package name...
    local pkg=$1 name
    shift
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    if command -v dpkg >/dev/null 2>&1; then
        for name in "$@"; do
            dpkg -L "$pkg" 2>/dev/null | grep -E "/bin/$name\$" | head -n 1 && return 0
        done
    fi
    return 1
}

install_peers() {
    local missing=()
    has_system prometheus && [ -z "${PROMETHEUS_BIN:-}" ] &&
        ! package_bin prometheus prometheus >/dev/null && missing+=(prometheus)
    has_system victoria-metrics && [ -z "${VM_BIN:-}" ] &&
        ! package_bin victoria-metrics victoria-metrics victoria-metrics-prod >/dev/null &&
        missing+=(victoria-metrics)
    # The scripts' own tools.
    command -v jq >/dev/null 2>&1 || missing+=(jq)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$INSTALL" = 1 ] || die "not installed: ${missing[*]} (and --no-install given)"
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "installing ${missing[*]} needs root or sudo"
        sudo=(sudo)
    fi
    log "installing ${missing[*]}"
    "${sudo[@]}" apt-get update
    # Packages that start services try systemd; policy-rc.d or its absence is fine, we start
    # the binaries ourselves.
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "${missing[@]}"
}

http_status() { # port path
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
        printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
        IFS=' ' read -r -t 5 _ code _ <&3 && printf '%s' "${code%$'\r'}"
    ) 2>/dev/null || true
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop_server() { # system
    local pid=${PID[$1]:-}
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -CONT "$pid" 2>/dev/null || true
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    PID[$1]=""
}





start_server() { # system
    local system=$1 dir="$WORK/$1" ready pid
    mkdir -p "$dir"
    case "$system" in
    prometheus)
        PORT[$system]=$PROMETHEUS_PORT ready=/-/ready
        PUSH_URL[$system]="http://127.0.0.1:$PROMETHEUS_PORT/api/v1/write"
        VERSION[$system]=$("$PROMETHEUS_BIN" --version 2>&1 | head -n 1)
        printf 'global:\n  scrape_interval: 1m\n' >"$dir/prometheus.yml"
        ;;
    victoria-metrics)
        PORT[$system]=$VM_PORT ready=/health
        PUSH_URL[$system]="http://127.0.0.1:$VM_PORT/api/v1/write"
        VERSION[$system]=$("$VM_BIN" -version 2>&1 | head -n 1)
        [ -n "${VERSION[$system]}" ] || VERSION[$system]="victoria-metrics $(dpkg-query -W \
            -f='${Version}' victoria-metrics 2>/dev/null || echo unknown)"
        ;;
    strata)
        PORT[$system]=$STRATA_PORT ready=/ready
        PUSH_URL[$system]="http://127.0.0.1:$STRATA_PORT/api/v1/push"
        VERSION[$system]=$("$STRATA_BIN" --version 2>&1 | head -n 1)
        ;;
    esac
    BASE_URL[$system]="http://127.0.0.1:${PORT[$system]}"
    port_busy "${PORT[$system]}" && die "port ${PORT[$system]} is already in use; $system needs it"
    case "$system" in
    prometheus)
        # Prometheus's default query limits (2m timeout, 50M samples) match strata's.
        "$PROMETHEUS_BIN" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
            --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --web.enable-remote-write-receiver \
            ${PROMETHEUS_EXTRA_ARGS[@]+"${PROMETHEUS_EXTRA_ARGS[@]}"} >"$dir/server.log" 2>&1 &
        ;;
    victoria-metrics)
        "$VM_BIN" -storageDataPath="$dir/data" -httpListenAddr="127.0.0.1:$VM_PORT" \
            -search.disableCache -retentionPeriod=100y >"$dir/server.log" 2>&1 &
        ;;
    strata)
        (cd "$dir" && exec "$STRATA_BIN" --config.file "$STRATA_CONFIG") >"$dir/server.log" 2>&1 &
        ;;
    esac
    pid=$!
    PID[$system]=$pid
    local deadline=$((SECONDS + READY_TIMEOUT))
    while [ "$(http_status "${PORT[$system]}" "$ready")" != 200 ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$system exited during startup; last lines of its log:"
            tail -n 20 "$dir/server.log" >&2
            PID[$system]=""
            return 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            log "$system not ready after ${READY_TIMEOUT}s; last log lines:"
            tail -n 20 "$dir/server.log" >&2
            stop_server "$system"
            return 1
        fi
        sleep 0.2
    done
    log "$system (${VERSION[$system]}) ready on :${PORT[$system]}, pid $pid"
}

# Pauses every system but $1 (SIGSTOP), so that one runs alone; `resume_all` undoes it.
only() { # system
    local s
    for s in $SYSTEMS; do
        if [ "$s" = "$1" ]; then kill -CONT "${PID[$s]}"; else kill -STOP "${PID[$s]}"; fi
    done
}
resume_all() {
    local s
    for s in $SYSTEMS; do kill -CONT "${PID[$s]}" 2>/dev/null || true; done
}

# A number from Prometheus's own /metrics.
prom_metric() { # name
    local text
    text=$(curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/metrics" 2>/dev/null) || return 0
    printf '%s\n' "$text" | awk -v n="$1" '$1 == n && !seen { printf "%.0f\n", $2; seen = 1 }'
}

# Waits until Prometheus's head no longer spans enough to compact (more than 3h, 1.5 block
# ranges) and no compaction finished in the last 10s, so compaction does not overlap the timings.
wait_prometheus_compacted() {
    local deadline=$((SECONDS + COMPACT_TIMEOUT)) mint maxt done_before
    while :; do
        mint=$(prom_metric prometheus_tsdb_head_min_time)
        maxt=$(prom_metric prometheus_tsdb_head_max_time)
        done_before=$(prom_metric prometheus_tsdb_compaction_duration_seconds_count)
        if [ -n "$mint" ] && [ -n "$maxt" ] && [ $((maxt - mint)) -le 10800000 ]; then
            sleep 10
            [ "$(prom_metric prometheus_tsdb_compaction_duration_seconds_count)" = "$done_before" ] &&
                return 0
            continue
        fi
        [ $SECONDS -lt $deadline ] || die "prometheus still compacting after ${COMPACT_TIMEOUT}s"
        sleep 5
    done
}
