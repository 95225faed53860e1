#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine with a Rust toolchain.
# It installs what the tests need first: kcat (a real Kafka client for the broker tests),
# cmake and libcurl headers (to build librdkafka for the `rdkafka` crate), cargo-nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || missing+=(libcurl4-openssl-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing test dependencies: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked

cargo nextest run --workspace --no-fail-fast "$@"
