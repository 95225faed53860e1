#!/usr/bin/env bash
# Instruction counts of the hot-path micro-benchmarks under callgrind (valgrind): batch
# validation (CRC-32C), a leader's append before its write (validation, offsets),
# offset-index lookup, Produce request decode and Fetch-response framing. Their wall time is
# noisy on a shared 2-core machine; instruction counts are not. The append's write is not here:
# under valgrind 3.19 glommio's first I/O never completes (its executor waits in io_uring_enter
# for good; see bench/README.md), so the whole append has its criterion bench only.
# Each case is a criterion bench binary started as `--callgrind CASE ITERATIONS`
# (bench/callgrind/case.rs), under `--collect-atstart=no --toggle-collect='*callgrind_measured*'`,
# so only the measured step is counted, never the set-up. These are benchmarks, not tests:
# nothing here checks a count.
#
# Usage: perf-reports/callgrind.sh [OUT.jsonl]   one JSON object per case (default: stdout).
# Knobs (environment): CALLGRIND_PROFILE=bench (optimised, what `cargo bench` builds; default)
# or test (debug: quicker to build, for checking the script; counts not comparable),
# CALLGRIND_TIMEOUT_S (600 per case).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-/dev/stdout}
PROFILE=${CALLGRIND_PROFILE:-bench}
TIMEOUT_S=${CALLGRIND_TIMEOUT_S:-600}
log() { echo "== $*" >&2; }

if ! command -v valgrind >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "installing valgrind"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq valgrind >/dev/null
fi
VALGRIND_VERSION=$(valgrind --version)

WORK=$(mktemp -d /var/tmp/shardlog-callgrind.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

log "building the bench binaries ($PROFILE profile)"
case "$PROFILE" in
  bench) cargo bench --no-run --quiet --message-format=json -p shardlog-storage -p shardlog-net >"$WORK/build.json" ;;
  test) cargo test --benches --no-run --quiet --message-format=json -p shardlog-storage -p shardlog-net >"$WORK/build.json" ;;
  *) echo "CALLGRIND_PROFILE must be bench or test" >&2; exit 2 ;;
esac
# The executable of bench target NAME, from cargo's build messages.
bench_exe() {
  python3 - "$WORK/build.json" "$1" <<'PY'
import json, sys
path, name = sys.argv[1], sys.argv[2]
for line in open(path):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and t.get("name") == name and "bench" in t.get("kind", []) and m.get("executable"):
        print(m["executable"])
        break
PY
}

# crate bench case iterations what
CASES=(
  "shardlog-storage|validate|validate_16KiB_batch|2000|RecordBatch::validate of one 16 KiB batch (header shape + CRC-32C)"
  "shardlog-storage|append|leader_append_16KiB_batch|2000|place_as_leader, what a leader's append computes before its write, one ~16 KiB batch: validation (CRC-32C, record framing), offsets assigned in a copy of the header"
  "shardlog-storage|index_lookup|offset_index_lookup|100000|offset_index::lookup_in (OffsetIndex::lookup's search) over 16,384 entries, scattered offsets"
  "shardlog-net|codec|produce_decode_16_partitions|2000|parse_request of a Produce v9 frame, 16 partitions × 64 KiB batch"
  "shardlog-net|codec|fetch_framing_16_partitions|20000|encode_fetch_response v12 around 16 file regions"
)

json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

: >"$WORK/out.jsonl"
for spec in "${CASES[@]}"; do
  IFS='|' read -r crate bench case iterations what <<<"$spec"
  exe=$(bench_exe "$bench")
  [ -n "$exe" ] || { echo "no executable for bench $bench" >&2; exit 1; }
  log "callgrind: $case × $iterations"
  error=""
  if ! timeout "$TIMEOUT_S" valgrind --tool=callgrind --callgrind-out-file="$WORK/$case.out" \
      --collect-atstart=no '--toggle-collect=*callgrind_measured*' \
      "$exe" --callgrind "$case" "$iterations" >"$WORK/$case.log" 2>&1; then
    error="exit $? (see the valgrind log: $(grep -v '^==' "$WORK/$case.log" | tail -n1))"
  fi
  instructions=$(sed -n 's/^totals: *\([0-9][0-9]*\).*/\1/p' "$WORK/$case.out" 2>/dev/null | head -n1)
  if [ -z "$error" ] && [ -z "$instructions" ]; then error="no totals line in the callgrind output"; fi
  if [ -n "$error" ]; then
    log "$case failed: $error"
    printf '{"schema":"shardlog-bench.callgrind/1","crate":"%s","bench":"%s","case":"%s","what":%s,"iterations":%s,"instructions":null,"instructions_per_iteration":null,"profile":"%s","valgrind":"%s","error":%s}\n' \
      "$crate" "$bench" "$case" "$(json_str "$what")" "$iterations" "$PROFILE" "$VALGRIND_VERSION" "$(json_str "$error")" >>"$WORK/out.jsonl"
    continue
  fi
  per=$(python3 -c "print(round($instructions / $iterations, 1))")
  printf '{"schema":"shardlog-bench.callgrind/1","crate":"%s","bench":"%s","case":"%s","what":%s,"iterations":%s,"instructions":%s,"instructions_per_iteration":%s,"profile":"%s","valgrind":"%s","error":null}\n' \
    "$crate" "$bench" "$case" "$(json_str "$what")" "$iterations" "$instructions" "$per" "$PROFILE" "$VALGRIND_VERSION" >>"$WORK/out.jsonl"
done
cat "$WORK/out.jsonl" >"$OUT"
