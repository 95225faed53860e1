//! `RecentBatches`: where the active segment's last batches start, kept in memory from its
//! appends, so that a consumer reading at the tail finds its first batch without reading the
//! file.
//!
//! Finding a fetch's first batch otherwise means an offset-index lookup and a walk of batch
//! headers from that entry, a `preadv2` of a header window per fetched partition: 5 % of the
//! broker's CPU with a tailing consumer on 100 partitions, 0.4 % with this
//! (perf-reports/2026-12-05-tail-lookup). Tailing consumers ask for offsets among the last few
//! batches, which this remembers.
//!
//! Invariant, asserted on every push: the batches remembered are consecutive in the segment
//! (each starts where the one before it ends) and their offsets increase, so they are a suffix
//! of the segment's batches. Whatever rewrites the segment's batches (truncation, recovery)
//! clears them; a segment opened from disk starts with none and walks as before.

use std::collections::VecDeque;

use crate::record_batch::BatchHeader;

/// Batches remembered per segment: with batches of 1 MiB, 64 MiB of the tail; with one small
/// batch per millisecond, the last 64 ms. About 3 KiB per active segment.
pub(crate) const RECENT_BATCHES_MAX: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct RecentBatches {
    /// (position in the segment, header), oldest first.
    batches: VecDeque<(u64, BatchHeader)>,
}

impl RecentBatches {
    /// Remembers the batch appended at `position`, forgetting the oldest beyond the limit.
    pub(crate) fn push(&mut self, position: u64, header: BatchHeader) {
        if let Some((last_position, last)) = self.batches.back() {
            assert_eq!(last_position + last.size_bytes as u64, position, "recent batches are consecutive");
            assert!(header.base_offset >= last.next_offset(), "offsets increase");
        }
        if self.batches.len() == RECENT_BATCHES_MAX {
            self.batches.pop_front();
        }
        self.batches.push_back((position, header));
    }

    pub(crate) fn clear(&mut self) {
        self.batches.clear();
    }

    /// Position and header of the first batch whose last offset is >= `offset`, when the
    /// batches remembered decide it: `offset` is not before the oldest of them (every earlier
    /// batch ends before it) and not past the newest. `None` means: read the file.
    pub(crate) fn find(&self, offset: i64) -> Option<(u64, BatchHeader)> {
        let (_, oldest) = self.batches.front()?;
        if offset < oldest.base_offset {
            return None;
        }
        let first_at_or_after = self.batches.partition_point(|(_, header)| header.last_offset() < offset);
        self.batches.get(first_at_or_after).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(base_offset: i64, records: i32, size_bytes: usize) -> BatchHeader {
        BatchHeader { base_offset, size_bytes, last_offset_delta: records - 1, max_timestamp: 0 }
    }

    #[test]
    fn finds_the_batch_holding_an_offset_or_the_next_one_after_a_gap() {
        let mut recent = RecentBatches::default();
        assert_eq!(recent.find(0), None);
        recent.push(1000, header(10, 5, 100)); // 10..=14
        recent.push(1100, header(20, 2, 50)); // 20..=21, after a gap (compaction, a follower)
        recent.push(1150, header(22, 1, 70)); // 22
        assert_eq!(recent.find(9), None, "before the oldest remembered: read the file");
        assert_eq!(recent.find(10), Some((1000, header(10, 5, 100))));
        assert_eq!(recent.find(14), Some((1000, header(10, 5, 100))));
        assert_eq!(recent.find(15), Some((1100, header(20, 2, 50))), "in the gap: the next batch");
        assert_eq!(recent.find(21), Some((1100, header(20, 2, 50))));
        assert_eq!(recent.find(22), Some((1150, header(22, 1, 70))));
        assert_eq!(recent.find(23), None, "past the newest");
        recent.clear();
        assert_eq!(recent.find(22), None);
    }

    #[test]
    fn keeps_only_the_newest_batches() {
        let mut recent = RecentBatches::default();
        for i in 0..RECENT_BATCHES_MAX as i64 + 10 {
            recent.push(i as u64 * 100, header(i, 1, 100));
        }
        assert_eq!(recent.batches.len(), RECENT_BATCHES_MAX);
        assert_eq!(recent.find(9), None);
        assert_eq!(recent.find(10), Some((1000, header(10, 1, 100))));
    }

    #[test]
    #[should_panic(expected = "consecutive")]
    fn a_batch_that_does_not_follow_the_last_is_a_bug() {
        let mut recent = RecentBatches::default();
        recent.push(0, header(0, 1, 100));
        recent.push(150, header(1, 1, 100));
    }
}
