//! `shardlog-storage`: Kafka's on-disk format and the partition log engine built on it.
//!
//! It owns the record-batch view and its validation, the partition log (segments, offset and
//! time indexes, roll, recovery, truncation, retention, flush policy), and the small files of
//! a log directory (offset checkpoints, `partition.metadata`). It opens no sockets and knows
//! no Kafka request. Invariants: files are byte-for-byte Kafka's layout (`kafka-dump-log.sh`
//! reads them); record bytes are written as produced, only `baseOffset`,
//! `partitionLeaderEpoch` (and for `LogAppendTime`, `maxTimestamp` + CRC) are rewritten; every
//! byte read from the network or the disk is validated before it is trusted, and damage is a
//! typed error or a recovery cut, never a panic; a partition log belongs to one shard.

pub mod batch_builder;
pub mod checkpoint;
pub mod checksum;
pub mod codec;
pub mod index_entry;
mod index_file;
pub mod legacy_format;
pub mod log_cleaner;
pub mod log_config;
pub mod log_error;
pub mod log_segment;
pub mod offset_index;
pub mod partition_log;
pub mod partition_metadata;
pub mod placed_records;
pub mod producer_state;
mod recent_batches;
pub mod record_batch;
pub mod records;
pub mod throttler;
pub mod time_index;
pub mod varint;
mod write_ring;
