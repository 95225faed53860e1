#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine with a Rust toolchain.
# It installs what the tests need first: kcat (a real Kafka client for the broker tests),
# cmake and libcurl headers (to build librdkafka for the `rdkafka` crate), Debian's own old
# Kafka clients for core/tests/compat.rs (kafka-python, and sarama and kafka-go with the Go
# toolchain that builds them offline from /usr/share/gocode), cargo-nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
# A Debian package is there when dpkg says it is installed.
have_package() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'; }
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || missing+=(libcurl4-openssl-dev)
# The old clients of core/tests/compat.rs; a release of Debian without one skips its test.
compat=()
for package in python3-kafka python3-snappy python3-lz4 python3-xxhash golang-go gcc golang-github-shopify-sarama-dev golang-github-segmentio-kafka-go-dev; do
  have_package "$package" || compat+=("$package")
done
if [ ${#missing[@]} -gt 0 ] || [ ${#compat[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  for package in ${compat[@]+"${compat[@]}"}; do
    # Read the whole answer before matching: `grep -q` quits at the first match, and under
    # pipefail the SIGPIPE that apt-cache then gets would count as "no package".
    policy=$(apt-cache policy "$package" 2>/dev/null || true)
    if grep -q 'Candidate: [^(]' <<<"$policy"; then
      missing+=("$package")
    else
      echo "Debian has no package $package: its compat test will be skipped"
    fi
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing test dependencies: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked

cargo nextest run --workspace --no-fail-fast "$@"
