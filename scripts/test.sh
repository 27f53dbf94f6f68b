#!/usr/bin/env bash
# The README's test command: installs what the tests need beyond the Rust toolchain (promtool,
# moto's S3 server and Azurite, see scripts/test-deps.sh), then runs every test of the workspace. Extra
# arguments go to `cargo test`. `--no-fail-fast` so that one run reports every failing test binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
exec cargo test --workspace --locked --no-fail-fast "$@"
