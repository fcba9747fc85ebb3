#!/usr/bin/env bash
# The project's main job: the trust quorum rack scenario on an emulated
# service processor (Cortex-M7 under QEMU), with the core's defmt log decoded
# on the host. Installs what a fresh machine lacks, then runs.
set -euo pipefail
cd "$(dirname "$0")"

rustup target add thumbv7em-none-eabihf >/dev/null
if ! command -v qemu-system-arm >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq qemu-system-arm >/dev/null
fi
if ! command -v defmt-print >/dev/null; then
  cargo install defmt-print --version 1.2.0 --locked --quiet
fi

cargo build --release --bin rack
frames="$(mktemp)"
trap 'rm -f "$frames"' EXIT
# QEMU's exit code is the scenario's; keep it after decoding the log.
status=0
cargo run --release --bin rack >"$frames" || status=$?
# Where cargo put the binary: CARGO_TARGET_DIR, if set, moves it.
defmt-print -e "${CARGO_TARGET_DIR:-target}/thumbv7em-none-eabihf/release/rack" <"$frames"
exit "$status"
