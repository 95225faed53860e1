//! The zero-copy FetchResponse: framed by hand around file regions.
//!
//! `kafka-protocol`'s encoder would need the records in memory. Instead the caller describes
//! each partition's records as regions of segment files, and [`encode_fetch_response`] writes
//! only the bytes around them — size prefix, response header, body fields, and each
//! partition's records length — as [`OutPart::Bytes`] between [`OutPart::File`] regions.
//! Concatenated, the parts are exactly a FetchResponse of the requested version; the tests
//! decode them with the crate's `FetchResponse` decoder for every version to prove it.
//!
//! Not produced yet (none are needed for read_uncommitted fetches from a leader): aborted
//! transactions (always null, as Kafka sends them for read_uncommitted), and the v12+ tagged
//! fields (diverging epoch, current leader, snapshot id, node endpoints).

use std::os::fd::RawFd;

use bytes::{BufMut, Bytes};
use kafka_protocol::protocol::StrBytes;

use crate::response::put_response_header;
use crate::sendfile::OutPart;

/// Oldest FetchResponse version written (the crate's minimum; Kafka 4.0 dropped v0-3 too).
pub const MIN_FETCH_VERSION: i16 = 4;
/// Newest FetchResponse version written (the crate's maximum; the broker advertises up to 16).
pub const MAX_FETCH_VERSION: i16 = 18;
/// Versions from here on use compact lengths and tagged fields.
const FIRST_FLEXIBLE_VERSION: i16 = 12;
/// Versions from here on name topics by id instead of by name.
const FIRST_TOPIC_ID_VERSION: i16 = 13;

/// Bytes `[position, position + len_bytes)` of an open file. The descriptor is borrowed: the
/// caller keeps the file open until the response has been sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRegion {
    pub fd: RawFd,
    pub position: u64,
    pub len_bytes: u32,
}

/// One partition of the response. Its records are the concatenation of `records`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartition {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    /// Written for v5+.
    pub log_start_offset: i64,
    /// Written for v11+; -1 for none.
    pub preferred_read_replica: i32,
    pub records: Vec<FileRegion>,
}

/// One topic of the response: `name` is written for v4-12, `topic_id` for v13+.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTopic {
    pub name: StrBytes,
    pub topic_id: [u8; 16],
    pub partitions: Vec<FetchPartition>,
}

/// The whole response, minus what is not supported yet (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponseParts {
    pub throttle_time_ms: i32,
    /// Top-level error, written for v7+.
    pub error_code: i16,
    /// Fetch session id, written for v7+ (0: no session).
    pub session_id: i32,
    pub topics: Vec<FetchTopic>,
}

/// Why a FetchResponse could not be framed (caller bugs or absurd sizes, never client input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchEncodeError {
    #[error("fetch response version {0} not in {MIN_FETCH_VERSION}..={MAX_FETCH_VERSION}")]
    UnsupportedVersion(i16),
    #[error("topic name of {0} bytes does not fit a Kafka string")]
    NameTooLong(usize),
    #[error("{what} of {size_bytes} bytes does not fit an i32")]
    TooLarge { what: &'static str, size_bytes: u64 },
}

/// Frames `resp` as the response to a Fetch request of `version` with `correlation_id`.
/// Returns the parts in send order; `OutPart::Bytes` slices share one buffer.
pub fn encode_fetch_response(
    version: i16,
    correlation_id: i32,
    resp: &FetchResponseParts,
) -> Result<Vec<OutPart>, FetchEncodeError> {
    if !(MIN_FETCH_VERSION..=MAX_FETCH_VERSION).contains(&version) {
        return Err(FetchEncodeError::UnsupportedVersion(version));
    }
    let flexible = version >= FIRST_FLEXIBLE_VERSION;
    let mut w = Writer { buf: Vec::with_capacity(256), flexible, regions: Vec::new(), region_bytes: 0 };

    w.buf.put_i32(0); // size, patched below
    put_response_header(&mut w.buf, if flexible { 1 } else { 0 }, correlation_id);
    w.buf.put_i32(resp.throttle_time_ms);
    if version >= 7 {
        w.buf.put_i16(resp.error_code);
        w.buf.put_i32(resp.session_id);
    }
    w.array_len(resp.topics.len())?;
    for topic in &resp.topics {
        if version < FIRST_TOPIC_ID_VERSION {
            w.string(&topic.name)?;
        } else {
            w.buf.put_slice(&topic.topic_id);
        }
        w.array_len(topic.partitions.len())?;
        for p in &topic.partitions {
            w.buf.put_i32(p.partition_index);
            w.buf.put_i16(p.error_code);
            w.buf.put_i64(p.high_watermark);
            w.buf.put_i64(p.last_stable_offset);
            if version >= 5 {
                w.buf.put_i64(p.log_start_offset);
            }
            w.null_array(); // aborted_transactions
            if version >= 11 {
                w.buf.put_i32(p.preferred_read_replica);
            }
            w.records(&p.records)?;
            w.tagged_fields();
        }
        w.tagged_fields();
    }
    w.tagged_fields();
    w.finish()
}

struct Writer {
    buf: Vec<u8>,
    flexible: bool,
    /// (offset in `buf` after which the region goes, region)
    regions: Vec<(usize, FileRegion)>,
    region_bytes: u64,
}

impl Writer {
    fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    fn len_i32(what: &'static str, len: u64) -> Result<i32, FetchEncodeError> {
        i32::try_from(len).map_err(|_| FetchEncodeError::TooLarge { what, size_bytes: len })
    }

    fn array_len(&mut self, len: usize) -> Result<(), FetchEncodeError> {
        let len = Self::len_i32("array", len as u64)?;
        if self.flexible {
            self.uvarint(len as u32 + 1);
        } else {
            self.buf.put_i32(len);
        }
        Ok(())
    }

    fn null_array(&mut self) {
        if self.flexible {
            self.uvarint(0);
        } else {
            self.buf.put_i32(-1);
        }
    }

    fn string(&mut self, s: &str) -> Result<(), FetchEncodeError> {
        let len = i16::try_from(s.len()).map_err(|_| FetchEncodeError::NameTooLong(s.len()))?;
        if self.flexible {
            self.uvarint(len as u32 + 1);
        } else {
            self.buf.put_i16(len);
        }
        self.buf.put_slice(s.as_bytes());
        Ok(())
    }

    fn records(&mut self, regions: &[FileRegion]) -> Result<(), FetchEncodeError> {
        let total: u64 = regions.iter().map(|r| u64::from(r.len_bytes)).sum();
        let len = Self::len_i32("partition records", total)?;
        if self.flexible {
            self.uvarint(len as u32 + 1);
        } else {
            self.buf.put_i32(len);
        }
        for region in regions.iter().filter(|r| r.len_bytes > 0) {
            self.regions.push((self.buf.len(), *region));
        }
        self.region_bytes += total;
        Ok(())
    }

    fn tagged_fields(&mut self) {
        if self.flexible {
            self.uvarint(0);
        }
    }

    fn finish(mut self) -> Result<Vec<OutPart>, FetchEncodeError> {
        let frame_bytes = (self.buf.len() - 4) as u64 + self.region_bytes;
        let size = Self::len_i32("fetch response", frame_bytes)?;
        self.buf[..4].copy_from_slice(&size.to_be_bytes());

        let prefix = Bytes::from(self.buf);
        let mut parts = Vec::with_capacity(2 * self.regions.len() + 1);
        let mut start = 0;
        for (at, region) in self.regions {
            if at > start {
                parts.push(OutPart::Bytes(prefix.slice(start..at)));
            }
            parts.push(OutPart::File(region));
            start = at;
        }
        if start < prefix.len() {
            parts.push(OutPart::Bytes(prefix.slice(start..)));
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::FetchResponse;
    use kafka_protocol::protocol::Decodable;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;

    /// Concatenates the parts, reading file regions with pread: the bytes a client receives.
    fn assemble(parts: &[OutPart], file: &std::fs::File) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts {
            match part {
                OutPart::Bytes(b) => out.extend_from_slice(b),
                OutPart::File(r) => {
                    assert_eq!(r.fd, file.as_raw_fd());
                    let mut chunk = vec![0; r.len_bytes as usize];
                    file.read_exact_at(&mut chunk, r.position).expect("pread");
                    out.extend_from_slice(&chunk);
                }
            }
        }
        out
    }

    fn sample(fd: RawFd) -> FetchResponseParts {
        let region = |position, len_bytes| FileRegion { fd, position, len_bytes };
        FetchResponseParts {
            throttle_time_ms: 5,
            error_code: 0,
            session_id: 1234,
            topics: vec![
                FetchTopic {
                    name: StrBytes::from_static_str("orders"),
                    topic_id: [9; 16],
                    partitions: vec![
                        FetchPartition {
                            partition_index: 0,
                            error_code: 0,
                            high_watermark: 100,
                            last_stable_offset: 99,
                            log_start_offset: 3,
                            preferred_read_replica: -1,
                            records: vec![region(0, 10), region(200, 0), region(10, 300)],
                        },
                        FetchPartition {
                            partition_index: 2,
                            error_code: 6,
                            high_watermark: -1,
                            last_stable_offset: -1,
                            log_start_offset: -1,
                            preferred_read_replica: 7,
                            records: vec![],
                        },
                    ],
                },
                FetchTopic {
                    name: StrBytes::from_static_str("t2"),
                    topic_id: [1; 16],
                    partitions: vec![FetchPartition {
                        partition_index: 5,
                        error_code: 0,
                        high_watermark: 1,
                        last_stable_offset: 1,
                        log_start_offset: 0,
                        preferred_read_replica: -1,
                        records: vec![region(400, 1000)],
                    }],
                },
            ],
        }
    }

    #[test]
    fn decodes_as_fetch_response_at_every_version() {
        let mut file = tempfile::tempfile().expect("tempfile");
        let content: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
        file.write_all(&content).expect("write");
        let resp = sample(file.as_raw_fd());

        for version in MIN_FETCH_VERSION..=MAX_FETCH_VERSION {
            let parts = encode_fetch_response(version, 77, &resp).expect("encode");
            let bytes = assemble(&parts, &file);
            let mut buf = Bytes::from(bytes);
            assert_eq!(buf.get_i32() as usize, buf.len(), "v{version}: size prefix");
            assert_eq!(buf.get_i32(), 77, "v{version}: correlation id");
            if version >= 12 {
                assert_eq!(buf.get_u8(), 0, "v{version}: header tagged fields");
            }
            let decoded = FetchResponse::decode(&mut buf, version).expect("decode");
            assert!(buf.is_empty(), "v{version}: trailing bytes");

            assert_eq!(decoded.throttle_time_ms, 5);
            if version >= 7 {
                assert_eq!(decoded.error_code, 0);
                assert_eq!(decoded.session_id, 1234);
            }
            assert_eq!(decoded.responses.len(), resp.topics.len());
            for (got, want) in decoded.responses.iter().zip(&resp.topics) {
                if version < 13 {
                    assert_eq!(got.topic.0, want.name, "v{version}");
                } else {
                    assert_eq!(got.topic_id.as_bytes(), &want.topic_id, "v{version}");
                }
                assert_eq!(got.partitions.len(), want.partitions.len());
                for (gp, wp) in got.partitions.iter().zip(&want.partitions) {
                    assert_eq!(gp.partition_index, wp.partition_index);
                    assert_eq!(gp.error_code, wp.error_code);
                    assert_eq!(gp.high_watermark, wp.high_watermark);
                    assert_eq!(gp.last_stable_offset, wp.last_stable_offset);
                    if version >= 5 {
                        assert_eq!(gp.log_start_offset, wp.log_start_offset);
                    }
                    assert_eq!(gp.aborted_transactions, None);
                    if version >= 11 {
                        assert_eq!(gp.preferred_read_replica.0, wp.preferred_read_replica);
                    }
                    let want_records: Vec<u8> = wp
                        .records
                        .iter()
                        .flat_map(|r| content[r.position as usize..][..r.len_bytes as usize].to_vec())
                        .collect();
                    assert_eq!(gp.records.as_deref(), Some(&want_records[..]), "v{version} records");
                }
            }
        }
    }

    #[test]
    fn parts_alternate_bytes_and_regions() {
        let kinds = |version| -> String {
            let parts = encode_fetch_response(version, 1, &sample(3)).expect("encode");
            parts.iter().map(|p| if matches!(p, OutPart::File(_)) { 'F' } else { 'B' }).collect()
        };
        // Zero-length regions are dropped; two adjacent regions need no bytes between them;
        // only flexible versions have bytes (tagged fields) after the last region.
        assert_eq!(kinds(11), "BFFBF");
        assert_eq!(kinds(12), "BFFBFB");
    }

    #[test]
    fn rejects_unsupported_versions_and_oversize_partitions() {
        let resp = sample(3);
        assert_eq!(encode_fetch_response(3, 1, &resp), Err(FetchEncodeError::UnsupportedVersion(3)));
        assert_eq!(encode_fetch_response(19, 1, &resp), Err(FetchEncodeError::UnsupportedVersion(19)));
        let mut huge = sample(3);
        huge.topics[0].partitions[0].records = vec![FileRegion { fd: 3, position: 0, len_bytes: u32::MAX }];
        assert!(matches!(encode_fetch_response(11, 1, &huge), Err(FetchEncodeError::TooLarge { .. })));
    }
}
