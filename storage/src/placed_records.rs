//! `PlacedRecords`: a record set as the log writes it — the producer's bytes, untouched, and
//! beside them a copy of each batch's header with the leader's rewrites (`baseOffset`,
//! `partitionLeaderEpoch`, and `maxTimestamp` + CRC for `LogAppendTime`).
//!
//! Why not rewrite in place: the producer's bytes are a slice of the request frame, shared and
//! immutable, and copying them out of it to get a buffer of our own was the largest cost of the
//! broker's own code on the produce path (7–10 % of its CPU). A header is 61 bytes; the rest of
//! a batch (all of its records) is written from the frame as it arrived, by a vectored write.
//!
//! Invariants, asserted on construction: the batches cover the source exactly, one after the
//! other from byte 0; each header copy is a whole batch header whose `batchLength` is that
//! batch's.

use bytes::Bytes;

use crate::log_segment::PlacedBatch;
use crate::record_batch::{BatchHeader, BATCH_HEADER_BYTES};

#[derive(Debug)]
pub struct PlacedRecords {
    /// The record set as received.
    source: Bytes,
    /// Each batch's first [`BATCH_HEADER_BYTES`] as they are to be written, batch after batch.
    headers: Vec<u8>,
    /// Where each batch starts in `source`, and its header as written.
    batches: Vec<PlacedBatch>,
}

impl PlacedRecords {
    /// `headers` holds the rewritten header of every batch of `batches`, in order.
    pub fn new(source: Bytes, headers: Vec<u8>, batches: Vec<PlacedBatch>) -> Self {
        assert!(!batches.is_empty(), "a record set has a batch");
        assert_eq!(headers.len(), batches.len() * BATCH_HEADER_BYTES, "one header per batch");
        let mut expected_at = 0;
        for (index, (at, header)) in batches.iter().enumerate() {
            assert_eq!(*at, expected_at, "batches follow each other from the start");
            let copy = &headers[index * BATCH_HEADER_BYTES..(index + 1) * BATCH_HEADER_BYTES];
            assert_eq!(BatchHeader::parse(copy).ok().map(|h| h.size_bytes), Some(header.size_bytes));
            expected_at += header.size_bytes;
        }
        assert_eq!(expected_at, source.len(), "batches cover the record set");
        PlacedRecords { source, headers, batches }
    }

    /// A record set written as it is (a follower's copy of its leader's batches).
    pub fn unchanged(source: Bytes, batches: Vec<PlacedBatch>) -> Self {
        let mut headers = Vec::with_capacity(batches.len() * BATCH_HEADER_BYTES);
        for (at, _) in &batches {
            headers.extend_from_slice(&source[*at..*at + BATCH_HEADER_BYTES]);
        }
        PlacedRecords::new(source, headers, batches)
    }

    pub fn len_bytes(&self) -> usize {
        self.source.len()
    }

    pub fn batches(&self) -> &[PlacedBatch] {
        &self.batches
    }

    /// The bytes to write, in order: each batch's header, then the rest of that batch from
    /// the source. Two parts per batch at most (a batch of no records has only its header).
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> {
        self.batches.iter().enumerate().flat_map(|(index, (at, header))| {
            let header_copy = &self.headers[index * BATCH_HEADER_BYTES..(index + 1) * BATCH_HEADER_BYTES];
            let body = &self.source[at + BATCH_HEADER_BYTES..at + header.size_bytes];
            std::iter::once(header_copy).chain((!body.is_empty()).then_some(body))
        })
    }

    /// The record set as written, in one buffer (for tests and tools; the log never needs it).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.len_bytes());
        self.parts().for_each(|part| bytes.extend_from_slice(part));
        bytes
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record_batch::rewrite;
    use crate::record_batch::tests::build_batch;

    /// Where each batch of a well-formed record set starts, and its header.
    pub(crate) fn placed(source: &[u8]) -> Vec<PlacedBatch> {
        let mut batches = Vec::new();
        let mut at = 0;
        while at < source.len() {
            let header = BatchHeader::parse(&source[at..]).unwrap();
            batches.push((at, header));
            at += header.size_bytes;
        }
        batches
    }

    #[test]
    fn the_parts_are_the_rewritten_headers_and_the_untouched_bodies() {
        let source = [build_batch(0, 3, 10), build_batch(0, 1, 0), build_batch(0, 2, 50)].concat();
        let batches = placed(&source);
        let mut headers = Vec::new();
        let mut expected = source.clone();
        for (index, (at, header)) in batches.iter().enumerate() {
            let mut copy = source[*at..*at + BATCH_HEADER_BYTES].to_vec();
            rewrite::set_base_offset(&mut copy, 100 + index as i64);
            rewrite::set_base_offset(&mut expected[*at..*at + header.size_bytes], 100 + index as i64);
            headers.extend_from_slice(&copy);
        }
        let records = PlacedRecords::new(Bytes::from(source.clone()), headers, batches);
        assert_eq!(records.to_vec(), expected);
        assert_eq!(records.len_bytes(), source.len());
        assert_eq!(PlacedRecords::unchanged(Bytes::from(source.clone()), placed(&source)).to_vec(), source);
    }

    #[test]
    #[should_panic(expected = "batches cover the record set")]
    fn batches_must_cover_the_whole_source() {
        let source = [build_batch(0, 1, 0), vec![0; 7]].concat();
        let batches = placed(&source[..source.len() - 7]);
        PlacedRecords::unchanged(Bytes::from(source), batches);
    }
}
