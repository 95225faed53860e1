#!/usr/bin/env bash
# Interleaved A/B of two shardlog binaries on one workload: A, B, A, B, … each round on a fresh
# broker (2 shards, free ports, a temporary log dir on /var/tmp), so drift on a shared machine
# hits both alike. Prints every run and the medians, and appends each run's JSON to
# $OUT/ab.jsonl (OUT defaults to a temporary directory).
#
#   perf-reports/ab.sh BIN_A BIN_B [shardlog-bench run args…]
#   perf-reports/ab.sh --summarize AB_JSONL BIN_A BIN_B   # the tables again from a run's JSON
#   e.g. ROUNDS=4 perf-reports/ab.sh /tmp/shardlog-old target/release/shardlog \
#          --producer-rate-msgs-per-s 110000 --producer-config linger.ms=0.3
#
# Knobs (environment): ROUNDS (3), WORKLOAD (bench/workloads/1-topic-16-partitions-1kb.toml),
# DURATION_S (5), SHARDS (2), OUT, PAGE_CACHE (full | new: perf-reports/page-cache.sh, which
# runs before every round), BENCH_A / BENCH_B (the shardlog-bench binary of each side; both
# default to the one built here — give the same shardlog binary twice and two bench binaries to
# A/B a change of the load generator). A benchmark, not a test: it asserts nothing about timing.
set -euo pipefail
cd "$(dirname "$0")/.."

summarize() { # AB_JSONL BIN_A BIN_B
  python3 - "$@" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"A = {sys.argv[2]}\nB = {sys.argv[3]}")
cols = ["produce msg/s", "consume msg/s", "broker CPU s/GB", "e2e p50 ms", "e2e p99 ms", "e2e p99.9 ms"]
def row(p):
    e = p.get("e2e_latency_us") or {}
    gb = (p["produced"]["bytes"] or p["consumed"]["bytes"]) / 1e9
    ms = lambda k: e[k] / 1000 if k in e else float("nan")
    return [p["produced"]["msgs_per_s"], p["consumed"]["msgs_per_s"],
            p["broker"]["cpu_s"] / gb if gb else float("nan"), ms("p50_us"), ms("p99_us"), ms("p999_us")]
fmt = lambda x: "–" if x != x else f"{x:,.2f}"
table = {}
print("\n| run | phase | " + " | ".join(cols) + " |\n|---|---|" + "---:|" * len(cols))
for r in runs:
    for p in r["phases"]:
        v = row(p)
        table.setdefault((r["label"].split("/")[0], p["name"]), []).append(v)
        print(f"| {r['label']} | {p['name']} | " + " | ".join(fmt(x) for x in v) + " |")
print("\nMedians, and B ÷ A:\n\n| phase | " + " | ".join(cols) + " |\n|---|" + "---:|" * len(cols))
for phase in dict.fromkeys(k[1] for k in table):
    med = {side: [statistics.median(c) for c in zip(*table[(side, phase)])] for side in "AB" if (side, phase) in table}
    if len(med) < 2:
        continue
    for side in "AB":
        print(f"| {phase} {side} | " + " | ".join(fmt(x) for x in med[side]) + " |")
    print(f"| {phase} B÷A | " + " | ".join(f"{b / a:.3f}" if a and a == a and b == b else "–" for a, b in zip(med["A"], med["B"])) + " |")
EOF
}

if [ "${1:-}" = --summarize ]; then
  [ $# -eq 4 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
  summarize "$2" "$3" "$4"
  exit 0
fi
[ $# -ge 2 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
BIN_A=$(realpath "$1"); BIN_B=$(realpath "$2"); shift 2
ROUNDS=${ROUNDS:-3}
WORKLOAD=${WORKLOAD:-bench/workloads/1-topic-16-partitions-1kb.toml}
DURATION_S=${DURATION_S:-5}
SHARDS=${SHARDS:-2}
OUT=${OUT:-$(mktemp -d /var/tmp/shardlog-ab.XXXXXX)}
BROKER_START_TIMEOUT_S=30
mkdir -p "$OUT"

cargo build --release --quiet -p shardlog-bench
BENCH_A=$(realpath "${BENCH_A:-target/release/shardlog-bench}")
BENCH_B=$(realpath "${BENCH_B:-target/release/shardlog-bench}")

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

BROKER_PID=""; DATA=""
PAGE_CACHE_BALLAST=$(mktemp /var/tmp/shardlog-ab-ballast.XXXXXX)
. perf-reports/page-cache.sh
cleanup() {
  page_cache_ballast_remove
  if [ -n "$BROKER_PID" ]; then kill -KILL "$BROKER_PID" 2>/dev/null || true; fi
  if [ -n "$DATA" ]; then rm -rf "$DATA"; fi
}
trap cleanup EXIT

run_one() { # LABEL BIN BENCH [bench args…]
  local label=$1 bin=$2 bench=$3 ports=() p
  shift 3
  for _ in $(seq "$SHARDS"); do ports+=("$(free_port)"); done
  DATA=$(mktemp -d /var/tmp/shardlog-ab-data.XXXXXX)
  fill_page_cache
  "$bin" start --override "log.dirs=$DATA" --override "listeners=PLAINTEXT://127.0.0.1:${ports[0]}" \
    --override "num.shards=$SHARDS" --override "shard.ports=$(IFS=,; echo "${ports[*]}")" \
    >"$DATA/broker.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq $((BROKER_START_TIMEOUT_S * 10))); do
    grep -q "shardlog started" "$DATA/broker.log" && break
    sleep 0.1
  done
  grep -q "shardlog started" "$DATA/broker.log" || { cat "$DATA/broker.log" >&2; exit 1; }
  "$bench" run --workload "$WORKLOAD" --bootstrap "127.0.0.1:${ports[0]}" --label "$label" \
    --test-duration-s "$DURATION_S" --quiet --broker-pid "$BROKER_PID" --json "$OUT/ab.jsonl" "$@" \
    >/dev/null 2>"$DATA/bench.err" || { cat "$DATA/bench.err" >&2; exit 1; }
  kill -KILL "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""
  rm -rf "$DATA"; DATA=""
}

: >"$OUT/ab.jsonl"
for round in $(seq "$ROUNDS"); do
  run_one "A/$round" "$BIN_A" "$BENCH_A" "$@"
  run_one "B/$round" "$BIN_B" "$BENCH_B" "$@"
done

summarize "$OUT/ab.jsonl" "$BIN_A" "$BIN_B"
echo "runs: $OUT/ab.jsonl" >&2
