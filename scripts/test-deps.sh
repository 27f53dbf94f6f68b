#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, on Debian, only when it is missing:
#   - promtool (Debian's prometheus package), to check the blocks strata writes;
#   - moto's S3 server, pinned, in a virtualenv at target/test-deps/venv (engine/tests/bucket_s3.rs
#     finds it there; STRATA_MOTO_SERVER overrides);
#   - Azurite, Microsoft's Azure Storage emulator, pinned, from the npm registry into
#     target/test-deps/azurite (engine/tests/bucket_azure.rs; STRATA_AZURITE_BLOB overrides).
# Idempotent and quiet when everything is present; prints what it installed.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
VENV=target/test-deps/venv
AZURITE_VERSION=3.35.0
AZURITE=target/test-deps/azurite

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  SUDO=(sudo)
fi
apt_updated=false
apt_install() {
  if ! $apt_updated; then
    "${SUDO[@]}" apt-get update -qq
    apt_updated=true
  fi
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v promtool >/dev/null 2>&1; then
  apt_install prometheus
  echo "test-deps: installed promtool ($(promtool --version 2>&1 | head -n1))"
fi

moto_installed() {
  [ -x "$VENV/bin/moto_server" ] &&
    compgen -G "$VENV/lib/python3*/site-packages/moto-${MOTO_VERSION}.dist-info" >/dev/null
}
if ! moto_installed; then
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==${MOTO_VERSION}"
  echo "test-deps: installed moto ${MOTO_VERSION} in $VENV"
fi

azurite_installed() {
  [ -x "$AZURITE/node_modules/.bin/azurite-blob" ] &&
    grep -q "\"version\": \"${AZURITE_VERSION}\"" "$AZURITE/node_modules/azurite/package.json" 2>/dev/null
}
if ! azurite_installed; then
  if ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
  rm -rf "$AZURITE"
  mkdir -p "$AZURITE"
  npm install --prefix "$AZURITE" --no-audit --no-fund --silent "azurite@${AZURITE_VERSION}" >/dev/null
  echo "test-deps: installed azurite ${AZURITE_VERSION} in $AZURITE"
fi
