//! Offset-index lookup (`offset_index::lookup_in`, the search behind `OffsetIndex::lookup`):
//! the binary search a fetch runs to turn its offset into a file position, over 16,384 entries
//! (a 64 MiB segment at the default `index.interval.bytes` of 4 KiB), at offsets scattered over
//! the whole index so the search is not one warm path. The entries are built in memory: the
//! search is the same, and no io_uring executor is needed (callgrind cannot run glommio here).
//!
//! Run: `cargo bench -p shardlog-storage --bench index_lookup`. Instructions per lookup under
//! callgrind: `perf-reports/callgrind.sh` (case `offset_index_lookup`).

use criterion::{black_box, criterion_group, Criterion};
use shardlog_storage::index_entry::OffsetIndexEntry;
use shardlog_storage::offset_index::lookup_in;

const ENTRIES: u32 = 16_384;
/// Lookup targets cycled through (a power of two, so the cycle is a mask).
const TARGETS: usize = 4_096;
const BASE_OFFSET: i64 = 1_000_000;
/// Records per indexed batch and bytes between entries, as 1 KiB records at the default
/// `index.interval.bytes` give.
const RECORDS_PER_ENTRY: u32 = 4;
const BYTES_PER_ENTRY: u32 = 4_200;

fn entries() -> Vec<OffsetIndexEntry> {
    (1..=ENTRIES)
        .map(|i| OffsetIndexEntry { relative_offset: i * RECORDS_PER_ENTRY, position: i * BYTES_PER_ENTRY })
        .collect()
}

/// Offsets spread over the index, in a scrambled order (multiplicative hash).
fn targets() -> Vec<i64> {
    let span = (ENTRIES * RECORDS_PER_ENTRY) as u64;
    (0..TARGETS as u64)
        .map(|i| BASE_OFFSET + ((i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20) % span) as i64)
        .collect()
}

fn lookup(c: &mut Criterion) {
    let entries = entries();
    let targets = targets();
    let mut i = 0;
    c.bench_function("offset_index/lookup_16384_entries", |b| {
        b.iter(|| {
            i = (i + 1) & (TARGETS - 1);
            lookup_in(black_box(&entries), BASE_OFFSET, black_box(targets[i]))
        })
    });
}

criterion_group!(benches, lookup);

#[path = "../../bench/callgrind/case.rs"]
mod callgrind;

fn main() {
    if let Some(r) = callgrind::requested() {
        if r.case != "offset_index_lookup" {
            callgrind::unknown(&r.case, &["offset_index_lookup"]);
        }
        let entries = entries();
        let targets = targets();
        let mut i = 0;
        callgrind::callgrind_measured(r.iterations, &mut || {
            i = (i + 1) & (TARGETS - 1);
            black_box(lookup_in(black_box(&entries), BASE_OFFSET, black_box(targets[i])));
        });
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
