# Sourced by run.sh and ab.sh: keeps the machine's memory full of page cache between runs, as
# it is on a broker that has been running for a while.
#
# Why: this VM's balloon driver hands free memory back to the host within seconds
# (/sys/module/page_reporting), and the next write into such a page waits for the host to back
# it again — dd into the page cache runs at 0.35-0.5 GB/s into reclaimed memory against
# 2.2-3.9 GB/s into memory the kernel reclaims from other clean page cache. A fresh VM, and a
# bench that deletes its topics after every run, would measure the first rate only; a broker
# that has run for a while (memory full of older log pages, as Kafka's docs expect) and bare
# metal see the second. `PAGE_CACHE=new` keeps the old behaviour (free memory left free).
#
# How: a sparse file on the log dir's file system (no disk blocks) is read into the page cache
# until free memory is down to PAGE_CACHE_FREE_MIB. Its pages are clean, so the kernel reclaims
# them for the broker's writes as it would older log segments. Call `fill_page_cache` before
# every measured run (a run's deleted topics free memory again) and `page_cache_ballast_remove`
# at the end.
#
# Needs: PAGE_CACHE_BALLAST (a path on the log dir's file system). Knobs: PAGE_CACHE (full |
# new, default full), PAGE_CACHE_FREE_MIB (512).

PAGE_CACHE=${PAGE_CACHE:-full}
PAGE_CACHE_FREE_MIB=${PAGE_CACHE_FREE_MIB:-512}
# Bound on the ballast, so a miscomputed free figure cannot grow it without end.
PAGE_CACHE_BALLAST_MIB_MAX=$((1024 * 1024))
page_cache_ballast_mib=0

fill_page_cache() {
  [ "$PAGE_CACHE" = full ] || return 0
  # On tmpfs a sparse file's holes read as the shared zero page: nothing would be filled.
  if [ "$(stat -f -c %T "$(dirname "$PAGE_CACHE_BALLAST")")" = tmpfs ]; then
    echo "page-cache.sh: $(dirname "$PAGE_CACHE_BALLAST") is a tmpfs; memory left as it is" >&2
    PAGE_CACHE=new
    return 0
  fi
  local free_mib extra
  free_mib=$(awk '/^MemFree:/ { print int($2 / 1024) }' /proc/meminfo)
  extra=$((free_mib - PAGE_CACHE_FREE_MIB))
  [ "$extra" -gt 0 ] || return 0
  [ $((page_cache_ballast_mib + extra)) -le "$PAGE_CACHE_BALLAST_MIB_MAX" ] || return 0
  truncate -s "$((page_cache_ballast_mib + extra))M" "$PAGE_CACHE_BALLAST"
  dd if="$PAGE_CACHE_BALLAST" of=/dev/null bs=1M skip="$page_cache_ballast_mib" count="$extra" status=none
  page_cache_ballast_mib=$((page_cache_ballast_mib + extra))
}

page_cache_ballast_remove() {
  rm -f "$PAGE_CACHE_BALLAST"
  page_cache_ballast_mib=0
}
