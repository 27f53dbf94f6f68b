#!/usr/bin/env bash
# Functions shared by the peer benchmarks (ingest.sh, query.sh). Sourced, not run. The caller
# defines log, die, has_system (which systems take part) and INSTALL (1: apt-get what is missing).

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
