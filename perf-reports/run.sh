#!/usr/bin/env bash
# Regenerates a dated performance report in perf-reports/<date>/: builds the release binaries,
# measures the machine's limits (loopback TCP with iperf3, sequential write with dd, thread
# wake-up round trips with `shardlog-bench wakeup`, loopback TCP into the page cache with
# `shardlog-bench ceiling`), starts a
# shardlog broker on free ports with a temporary data dir, runs the standard matrix with
# shardlog-bench (2 shards, then 1 shard; and a peer broker when PEER_BOOTSTRAP is set; each
# with librdkafka, then the core 1 KiB / 16 KiB produce+consume scenarios again with the
# bench's own native client),
# profiles the broker's produce and fetch paths with perf + inferno, and has
# `shardlog-bench report` write report.md, results.json and the SVG plots from the bench
# output. No number in the report is typed by hand.
#
# Knobs (environment): DURATION_S (measured seconds per run, 5), WARMUP_S (1),
# SIZES ("100 1024 4096 16384 65536"), LOADS ("10 25 50 75 90", % of the closed-loop max),
# BACKLOG_BYTES (3 GiB), PROFILE (1), PERF_HZ (1999), PEER_BOOTSTRAP (host:port), PEER_PID (its pid, for CPU and
# RSS), PEER_NAME (peer), REPORT_DIR (perf-reports/<UTC date>), CALLGRIND (1: instruction counts
# of the hot-path micro-benchmarks with perf-reports/callgrind.sh), PAGE_CACHE (full: memory kept
# full of page cache before every run, as on a broker that has run a while; new: left free —
# see perf-reports/page-cache.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION_S=${DURATION_S:-5}
WARMUP_S=${WARMUP_S:-1}
SIZES=${SIZES:-"100 1024 4096 16384 65536"}
LOADS=${LOADS:-"10 25 50 75 90"}
BACKLOG_BYTES=${BACKLOG_BYTES:-3221225472}
PROFILE=${PROFILE:-1}
PERF_HZ=${PERF_HZ:-1999}
PEER_NAME=${PEER_NAME:-peer}
CALLGRIND=${CALLGRIND:-1}
DATE=$(date -u +%Y-%m-%d)
OUT=${REPORT_DIR:-perf-reports/$DATE}
BROKER_START_TIMEOUT_S=30
BROKER_STOP_TIMEOUT_S=30

log() { echo "== $*" >&2; }

# --- tools -----------------------------------------------------------------------------------
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_install() {
  log "installing $*"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
missing=()
command -v iperf3 >/dev/null || missing+=(iperf3)
command -v cmake >/dev/null || missing+=(cmake)
[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || missing+=(libcurl4-openssl-dev)
if [ "$PROFILE" = 1 ] && ! command -v perf >/dev/null; then missing+=(linux-perf); fi
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
if [ "$PROFILE" = 1 ] && ! command -v inferno-flamegraph >/dev/null; then
  log "installing inferno (flamegraph renderer)"
  cargo install inferno --locked --quiet
fi

log "building release binaries"
cargo build --release --quiet -p shardlog-core -p shardlog-bench
SHARDLOG=$PWD/target/release/shardlog
BENCH=$PWD/target/release/shardlog-bench

# --- scratch space and cleanup ---------------------------------------------------------------
# /var/tmp rather than /tmp: the log dir must be on a real disk, not a tmpfs.
WORK=$(mktemp -d /var/tmp/shardlog-perf.XXXXXX)
BROKER_PID=""
cleanup() {
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then kill -KILL "$BROKER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
PAGE_CACHE_BALLAST=$WORK/page-cache-ballast
. perf-reports/page-cache.sh

rm -rf "$OUT"
mkdir -p "$OUT/raw" "$OUT/flame" "$OUT/plots"
: >"$OUT/runs.jsonl"
BENCH_LOG=$OUT/raw/bench.log
: >"$BENCH_LOG"

# --- machine facts and limits ----------------------------------------------------------------
free_port() {
  # Bind port 0 and report what the kernel chose; released right away (as the tests do).
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

IPERF_S=3
DD_MIB=1024
DD_FLAGS="oflag=direct"
# Seconds with memory freed and idle before the first-touch measurement (see below), so the
# host has taken the freed pages back.
PAGE_CACHE_SETTLE_S=10
{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "git=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  # This run's own output (the report directory, the index it rewrites) is not a change.
  echo "git_dirty=$([ -n "$(git status --porcelain 2>/dev/null | grep -v -F -e " ${OUT%/}/" -e " perf-reports/README.md")" ] && echo yes || echo no)"
  echo "cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "cpus=$(nproc)"
  echo "kernel=$(uname -r)"
  echo "iperf3_seconds=$IPERF_S"
  echo "dd_count_mib=$DD_MIB"
  echo "dd_flags=$DD_FLAGS"
  echo "duration_s=$DURATION_S"
  echo "warmup_s=$WARMUP_S"
  # Other work on the machine shows here: the report prints both, so noise is visible.
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/raw/machine.txt"

log "machine limit: loopback TCP (iperf3, ${IPERF_S} s)"
port=$(free_port)
iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
iperf_server=$!
sleep 0.5
iperf3 -c 127.0.0.1 -p "$port" -t "$IPERF_S" -J >"$OUT/raw/iperf3.json" || true
wait "$iperf_server" 2>/dev/null || true

# The latency floor: what waking a sleeping thread costs here, across cores and on one core.
# On a VM it depends on the guest's idle policy (halt-polling), so that is recorded too.
log "machine limit: thread wake-up round trips (shardlog-bench wakeup)"
"$BENCH" wakeup >"$OUT/raw/wakeup.json" || {
  log "the wake-up probe failed (cores 0 and 1 not usable?); the report leaves it out"
  rm -f "$OUT/raw/wakeup.json"
}
if [ -r /sys/module/haltpoll/parameters/guest_halt_poll_ns ]; then
  echo "guest_halt_poll_ns=$(cat /sys/module/haltpoll/parameters/guest_halt_poll_ns)" >>"$OUT/raw/machine.txt"
fi

log "machine limit: sequential write (dd ${DD_MIB} MiB, $DD_FLAGS)"
if ! dd if=/dev/zero of="$WORK/dd.tmp" bs=1M count="$DD_MIB" $DD_FLAGS 2>"$OUT/raw/dd.txt"; then
  # Some file systems refuse O_DIRECT; fdatasync at the end is the next most honest figure.
  DD_FLAGS="conv=fdatasync"
  sed -i "s/^dd_flags=.*/dd_flags=$DD_FLAGS/" "$OUT/raw/machine.txt"
  dd if=/dev/zero of="$WORK/dd.tmp" bs=1M count="$DD_MIB" $DD_FLAGS 2>"$OUT/raw/dd.txt"
fi
rm -f "$WORK/dd.tmp"

# A virtual machine's memory may be backed by the host only while the guest uses it: this
# one's balloon driver reports freed pages to the host within seconds
# (/sys/module/page_reporting), and the next write into such a page waits for the host to back
# it again. A log that grows into free memory needs new pages all the time, so this first-touch
# rate, not the disk, caps produce throughput on a fresh VM (dd: 0.36-0.78 GB/s first touch
# against 2.8-3.8 GB/s into memory freed a moment before). Touching memory once and freeing it
# cannot help: the host takes it back within seconds. Keeping it in use as clean page cache
# does (PAGE_CACHE=full, perf-reports/page-cache.sh): the broker's writes then get pages the
# kernel reclaims, as on a broker that has run a while. All three rates are measured; on bare
# metal they are the same.
log "machine limit: page-cache write of memory the host reclaimed (dd ${DD_MIB} MiB after ${PAGE_CACHE_SETTLE_S} s idle), then of memory just freed"
sleep "$PAGE_CACHE_SETTLE_S"
dd if=/dev/zero of="$WORK/pc.tmp" bs=1M count="$DD_MIB" 2>"$OUT/raw/page-cache-new-dd.txt"
rm -f "$WORK/pc.tmp"
dd if=/dev/zero of="$WORK/pc.tmp" bs=1M count="$DD_MIB" 2>"$OUT/raw/page-cache-dd.txt"
rm -f "$WORK/pc.tmp"
# The rate the runs below see: writes into a page cache that fills memory, whose new pages the
# kernel reclaims from older clean ones (perf-reports/page-cache.sh).
fill_page_cache # may fall back to PAGE_CACHE=new (a tmpfs)
if [ "$PAGE_CACHE" = full ]; then
  log "machine limit: page-cache write with memory full of page cache (dd ${DD_MIB} MiB)"
  dd if=/dev/zero of="$WORK/pc.tmp" bs=1M count="$DD_MIB" 2>"$OUT/raw/page-cache-full-dd.txt"
  rm -f "$WORK/pc.tmp"
fi
echo "page_cache_mode=$PAGE_CACHE" >>"$OUT/raw/machine.txt"
# The least work any broker does per produced byte, in the memory state the runs see: two
# loopback streams (one per shard of the main target) received and dropped, then received into
# new files on the log dir's file system, BACKLOG_BYTES each time (the 16 KiB backlog's size).
log "machine limit: produce ceiling (shardlog-bench ceiling: loopback TCP into the page cache, 2 streams)"
fill_page_cache
"$BENCH" ceiling --dir "$WORK" --streams 2 --bytes "$BACKLOG_BYTES" >"$OUT/raw/ceiling.json" || {
  log "the produce ceiling failed; the report leaves it out"
  rm -f "$OUT/raw/ceiling.json"
}
if [ -r /sys/module/page_reporting/parameters/page_reporting_order ]; then
  echo "page_reporting_order=$(cat /sys/module/page_reporting/parameters/page_reporting_order)" >>"$OUT/raw/machine.txt"
fi

if [ "$CALLGRIND" = 1 ]; then
  # Before any broker starts: callgrind takes a core for a few minutes.
  log "hot-path instruction counts (callgrind)"
  perf-reports/callgrind.sh "$OUT/raw/callgrind.jsonl"
fi

# --- broker lifecycle ------------------------------------------------------------------------
BOOTSTRAP=""
# The running shardlog's metrics endpoint: the bench reads the broker's own request times there.
BROKER_METRICS=""
start_broker() { # shards
  local shards=$1 ports=() p metrics_port
  for _ in $(seq "$shards"); do ports+=("$(free_port)"); done
  metrics_port=$(free_port)
  local data="$WORK/data-$shards"
  rm -rf "$data"; mkdir -p "$data"
  "$SHARDLOG" start \
    --override "log.dirs=$data" \
    --override "listeners=PLAINTEXT://127.0.0.1:${ports[0]}" \
    --override "num.shards=$shards" \
    --override "shard.ports=$(IFS=,; echo "${ports[*]}")" \
    --override "metrics.listener=http://127.0.0.1:$metrics_port" \
    >"$WORK/broker-$shards.log" 2>&1 &
  BROKER_PID=$!
  BOOTSTRAP="127.0.0.1:${ports[0]}"
  BROKER_METRICS="127.0.0.1:$metrics_port"
  for _ in $(seq $((BROKER_START_TIMEOUT_S * 10))); do
    grep -q "shardlog started" "$WORK/broker-$shards.log" && break
    kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/broker-$shards.log" >&2; exit 1; }
    sleep 0.1
  done
  grep -q "shardlog started" "$WORK/broker-$shards.log" || { log "broker did not start"; exit 1; }
  log "shardlog with $shards shard(s): pid $BROKER_PID on $BOOTSTRAP"
}

stop_broker() {
  kill -TERM "$BROKER_PID" 2>/dev/null || true
  for _ in $(seq $((BROKER_STOP_TIMEOUT_S * 10))); do
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
  BROKER_METRICS=""
}

# --- the matrix ------------------------------------------------------------------------------
# The client the next runs use (rdkafka or native); the report pairs runs by their tags.
CLIENT=rdkafka
# bench TARGET BOOTSTRAP PID SERIES POINT WORKLOAD [extra args]
bench() {
  local target=$1 boot=$2 pid=$3 series=$4 point=$5 workload=$6
  shift 6
  local pid_args=()
  [ -z "$pid" ] || pid_args=(--broker-pid "$pid")
  # A peer broker has no such endpoint: only shardlog's runs get the broker's request times.
  [ -z "$BROKER_METRICS" ] || [ "$boot" != "$BOOTSTRAP" ] || pid_args+=(--broker-metrics "$BROKER_METRICS")
  log "$target / $CLIENT / $series / $point"
  fill_page_cache
  "$BENCH" run --client "$CLIENT" --workload "bench/workloads/$workload" --bootstrap "$boot" \
    --label "$target/$CLIENT/$series/$point" --tag "target=$target" --tag "series=$series" --tag "point=$point" \
    --test-duration-s "$DURATION_S" --warmup-s "$WARMUP_S" --json "$OUT/runs.jsonl" \
    "${pid_args[@]}" "$@" 2> >(tee -a "$BENCH_LOG" >&2)
}

# The produce rate (msg/s) of the last run's first phase, from its JSON line.
last_produce_rate() {
  tail -n1 "$OUT/runs.jsonl" | grep -o '"produced":{[^}]*}' | head -n1 \
    | sed 's/.*"msgs_per_s":\([0-9.eE+-]*\).*/\1/' | cut -d. -f1
}

# matrix TARGET BOOTSTRAP PID FULL PROFILE_PREFIX
matrix() {
  local target=$1 boot=$2 pid=$3 full=$4 profile_prefix=$5
  local sizes=$SIZES loads=$LOADS max_rate=0
  [ "$full" = 1 ] || { sizes="1024 16384"; loads="50"; }
  for size in $sizes; do
    bench "$target" "$boot" "$pid" size "$size" 1-topic-16-partitions-1kb.toml --message-size-bytes "$size"
    [ "$size" != 1024 ] || max_rate=$(last_produce_rate)
  done
  if [ "${max_rate:-0}" -gt 0 ]; then
    for pct in $loads; do
      bench "$target" "$boot" "$pid" load "$pct" 1-topic-16-partitions-1kb.toml \
        --producer-rate-msgs-per-s $((max_rate * pct / 100))
    done
  fi
  bench "$target" "$boot" "$pid" omb 100-partitions 1-topic-100-partitions-1kb.toml
  if [ "$full" = 1 ]; then
    # The same 1 KiB closed loop with every in-sync replica acknowledging, and compressed
    # (the bench's payload compresses well; MB/s counts uncompressed bytes).
    bench "$target" "$boot" "$pid" acks all 1-topic-16-partitions-1kb.toml --acks all
    for codec in lz4 zstd; do
      bench "$target" "$boot" "$pid" compression "$codec" 1-topic-16-partitions-1kb.toml --compression "$codec"
    done
  fi
  bench "$target" "$boot" "$pid" backlog 1024 backlog-drain-1kb.toml --consumer-backlog-bytes "$BACKLOG_BYTES"
  bench "$target" "$boot" "$pid" backlog 16384 backlog-drain-16kb.toml
  # The core produce+consume scenarios again with our own client, so no figure rests on
  # librdkafka alone; the load point uses librdkafka's rate, so latencies compare like for like.
  CLIENT=native
  for size in 1024 16384; do
    bench "$target" "$boot" "$pid" size "$size" 1-topic-16-partitions-1kb.toml --message-size-bytes "$size"
  done
  if [ "${max_rate:-0}" -gt 0 ]; then
    bench "$target" "$boot" "$pid" load 50 1-topic-16-partitions-1kb.toml --producer-rate-msgs-per-s $((max_rate * 50 / 100))
  fi
  bench "$target" "$boot" "$pid" backlog 1024 backlog-drain-1kb.toml --consumer-backlog-bytes "$BACKLOG_BYTES"
  bench "$target" "$boot" "$pid" backlog 16384 backlog-drain-16kb.toml
  CLIENT=rdkafka
  if [ -n "$profile_prefix" ]; then
    # A run of its own: perf's sampling costs CPU, so profiled figures are not the figures.
    bench "$target" "$boot" "$pid" profiled 1024 backlog-drain-1kb.toml --consumer-backlog-bytes "$BACKLOG_BYTES" \
      --profile-hz "$PERF_HZ" \
      --profile "backlog=$WORK/$profile_prefix-produce.perf.data" --profile "drain=$WORK/$profile_prefix-fetch.perf.data"
  fi
}

render_flamegraph() { # perf.data name title
  local data=$1 name=$2 title=$3
  [ -f "$data" ] || { log "no profile $data"; return; }
  log "rendering $name flamegraph"
  # --no-inline: perf 6.x resolves inlined frames through addr2line, minutes per profile.
  perf script --no-inline -i "$data" 2>/dev/null | inferno-collapse-perf >"$OUT/flame/$name.folded"
  inferno-flamegraph --title "$title" --width 1600 <"$OUT/flame/$name.folded" >"$OUT/flame/$name.svg"
}

start_broker 2
sleep 1
"$BENCH" probe --pid "$BROKER_PID" >"$OUT/raw/idle-shardlog-2-shards.json"
prefix=""; [ "$PROFILE" != 1 ] || prefix=shardlog-2-shards
matrix shardlog-2-shards "$BOOTSTRAP" "$BROKER_PID" 1 "$prefix"
stop_broker

start_broker 1
sleep 1
"$BENCH" probe --pid "$BROKER_PID" >"$OUT/raw/idle-shardlog-1-shard.json"
matrix shardlog-1-shard "$BOOTSTRAP" "$BROKER_PID" 0 ""
stop_broker

if [ -n "${PEER_BOOTSTRAP:-}" ]; then
  [ -z "${PEER_PID:-}" ] || "$BENCH" probe --pid "$PEER_PID" >"$OUT/raw/idle-$PEER_NAME.json"
  matrix "$PEER_NAME" "$PEER_BOOTSTRAP" "${PEER_PID:-}" 1 ""
fi

if [ "$PROFILE" = 1 ]; then
  render_flamegraph "$WORK/shardlog-2-shards-produce.perf.data" produce "shardlog produce path (backlog phase, 2 shards)"
  render_flamegraph "$WORK/shardlog-2-shards-fetch.perf.data" fetch "shardlog fetch path (drain phase, 2 shards)"
fi

echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/raw/machine.txt"
"$BENCH" report --dir "$OUT"
# The index of reports: newest first.
{
  echo "# Performance reports"
  echo
  echo "Each directory is one run of \`perf-reports/run.sh\` (see its header for the knobs)."
  echo
  # By the time in each report's first line: names of one day ("2026-12-05-x") do not sort by time.
  # A directory of A/B notes without a report of its own sorts by the date in its name.
  for d in perf-reports/*/; do
    d=${d%/}
    if [ -f "$d/report.md" ]; then
      t=$(head -n1 "$d/report.md" | sed -n 's/.* — \([0-9T:Z-]*\)$/\1/p')
      echo "${t:-0} ${d#perf-reports/} report.md"
    elif [ -f "$d/NOTE.md" ]; then
      echo "${d#perf-reports/} ${d#perf-reports/} NOTE.md"
    fi
  done | sort -r | while read -r _ d file; do
    echo "- [$d]($d/$file)"
  done
} >perf-reports/README.md
log "report: $OUT/report.md"
