//! Structural check of a request body before `kafka-protocol` decodes it.
//!
//! Why this exists: `kafka-protocol` 0.18 sizes every array with `Vec::with_capacity(count)`
//! where `count` comes straight off the wire (an `i32`, or a varint up to `u32::MAX`), before it
//! decodes a single element. A 10-byte request that claims two billion topics makes the
//! allocator fail, and Rust aborts the whole process on allocation failure — a panic handler
//! cannot catch it. (Upstream knows; the fixes are unmerged pull requests.) So, before decoding,
//! we walk the body once with the schema below, without allocating, and accept it only if every
//! array's elements are really present in the frame. Afterwards the decoder's allocations are
//! bounded by what the frame holds.
//!
//! The schema tables mirror the crate's generated decoders (field order, version ranges, the
//! version where an API turns flexible, and the tagged fields it decodes inline); the tests
//! generate random bodies from these tables and require the crate to decode each one exactly,
//! for every version, so a table that drifts from the crate fails the build's tests.
//!
//! Nullability is not modelled: a null string, bytes or array is walked as empty. The crate
//! rejects nulls where the schema forbids them, so being lenient here never lets a body through
//! that the crate would then decode differently.

use kafka_protocol::messages::ApiKey;

/// Upper bound on array elements (all arrays together) in one request: far above what a real
/// client sends (a Metadata request for 100k topics is 100k elements), low enough that the
/// decoded structs stay within tens of MiB.
pub const MAX_ELEMENTS_PER_REQUEST: usize = 1 << 20;

/// Why a body failed the structural check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("body ends {missing_bytes} bytes short at offset {offset}")]
    Truncated { offset: usize, missing_bytes: usize },
    #[error("array at offset {offset} claims {count} elements but only {remaining_bytes} bytes remain")]
    ImpossibleCount { offset: usize, count: u64, remaining_bytes: usize },
    #[error("request holds more than {MAX_ELEMENTS_PER_REQUEST} array elements")]
    TooManyElements,
    #[error("negative length {length} at offset {offset}")]
    NegativeLength { offset: usize, length: i32 },
    #[error("tagged field {tag} at offset {offset} is malformed for this version")]
    BadTaggedField { offset: usize, tag: u32 },
    #[error("no schema for api key {0:?}")]
    NoSchema(ApiKey),
}

/// The wire type of one field.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// int8..int64, uuid, bool, float64: that many bytes.
    Fixed(usize),
    /// string: `i16` length, or `uvarint` length+1 when flexible.
    Str,
    /// bytes / records: `i32` length, or `uvarint` length+1 when flexible.
    Bytes,
    /// an inline struct (only as a tagged field here).
    Struct(&'static Struct),
    /// array of structs.
    Array(&'static Struct),
    /// array of fixed-size values (e.g. `[]int32`).
    ArrayFixed(usize),
    /// array of strings.
    ArrayStr,
}

/// A field present in versions `min..=max`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub ty: Ty,
    pub min: i16,
    pub max: i16,
}

/// A tagged field that the crate decodes inline (it ignores the declared size for these).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tag {
    pub tag: u32,
    pub ty: Ty,
    pub min: i16,
}

/// A struct: its fields in wire order, then (when flexible) its tagged-field section.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Struct {
    pub fields: &'static [Field],
    pub tags: &'static [Tag],
}

/// One request schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema {
    pub flexible_from: i16,
    pub root: &'static Struct,
}

const ANY: i16 = i16::MAX;
const I8: Ty = Ty::Fixed(1);
const BOOL: Ty = Ty::Fixed(1);
const I16: Ty = Ty::Fixed(2);
const I32: Ty = Ty::Fixed(4);
const I64: Ty = Ty::Fixed(8);
const UUID: Ty = Ty::Fixed(16);

const fn all(ty: Ty) -> Field {
    Field { ty, min: 0, max: ANY }
}
const fn from(min: i16, ty: Ty) -> Field {
    Field { ty, min, max: ANY }
}
const fn span(min: i16, max: i16, ty: Ty) -> Field {
    Field { ty, min, max }
}
const fn st(fields: &'static [Field]) -> Struct {
    Struct { fields, tags: &[] }
}

// ---- schemas, mirrored from kafka-protocol 0.18's generated request decoders ----

static API_VERSIONS: Struct = st(&[from(3, Ty::Str), from(3, Ty::Str)]);

static METADATA_TOPIC: Struct = st(&[from(10, UUID), all(Ty::Str)]);
static METADATA: Struct =
    st(&[all(Ty::Array(&METADATA_TOPIC)), from(4, BOOL), span(8, 10, BOOL), from(8, BOOL)]);

static PRODUCE_PARTITION: Struct = st(&[all(I32), all(Ty::Bytes)]);
static PRODUCE_TOPIC: Struct =
    st(&[span(0, 12, Ty::Str), from(13, UUID), all(Ty::Array(&PRODUCE_PARTITION))]);
// Versions below the crate's (Produce v0-2, Fetch v0-3, ListOffsets v0, DescribeConfigs v0,
// OffsetCommit v0-1, OffsetFetch v0) are decoded by `crate::legacy`; the tables cover them
// too, so the guard and the test generator see them.
static PRODUCE: Struct = st(&[from(3, Ty::Str), all(I16), all(I32), all(Ty::Array(&PRODUCE_TOPIC))]);

static FETCH_PARTITION: Struct = Struct {
    fields: &[all(I32), from(9, I32), all(I64), from(12, I32), from(5, I64), all(I32)],
    tags: &[Tag { tag: 0, ty: UUID, min: 17 }, Tag { tag: 1, ty: I64, min: 18 }],
};
static FETCH_TOPIC: Struct = st(&[span(0, 12, Ty::Str), from(13, UUID), all(Ty::Array(&FETCH_PARTITION))]);
static FETCH_FORGOTTEN: Struct = st(&[span(7, 12, Ty::Str), from(13, UUID), from(7, Ty::ArrayFixed(4))]);
static FETCH_REPLICA_STATE: Struct = st(&[from(15, I32), from(15, I64)]);
static FETCH: Struct = Struct {
    fields: &[
        span(0, 14, I32),
        all(I32),
        all(I32),
        from(3, I32),
        from(4, I8),
        from(7, I32),
        from(7, I32),
        all(Ty::Array(&FETCH_TOPIC)),
        from(7, Ty::Array(&FETCH_FORGOTTEN)),
        from(11, Ty::Str),
    ],
    tags: &[
        Tag { tag: 0, ty: Ty::Str, min: 12 },
        Tag { tag: 1, ty: Ty::Struct(&FETCH_REPLICA_STATE), min: 15 },
    ],
};

static LIST_OFFSETS_PARTITION: Struct = st(&[all(I32), from(4, I32), all(I64), span(0, 0, I32)]);
static LIST_OFFSETS_TOPIC: Struct = st(&[all(Ty::Str), all(Ty::Array(&LIST_OFFSETS_PARTITION))]);
static LIST_OFFSETS: Struct =
    st(&[all(I32), from(2, I8), all(Ty::Array(&LIST_OFFSETS_TOPIC)), from(10, I32)]);

static CREATE_TOPICS_ASSIGNMENT: Struct = st(&[all(I32), all(Ty::ArrayFixed(4))]);
static CREATE_TOPICS_CONFIG: Struct = st(&[all(Ty::Str), all(Ty::Str)]);
static CREATE_TOPICS_TOPIC: Struct = st(&[
    all(Ty::Str),
    all(I32),
    all(I16),
    all(Ty::Array(&CREATE_TOPICS_ASSIGNMENT)),
    all(Ty::Array(&CREATE_TOPICS_CONFIG)),
]);
static CREATE_TOPICS: Struct = st(&[all(Ty::Array(&CREATE_TOPICS_TOPIC)), all(I32), all(BOOL)]);

static DELETE_TOPICS_STATE: Struct = st(&[from(6, Ty::Str), from(6, UUID)]);
static DELETE_TOPICS: Struct =
    st(&[from(6, Ty::Array(&DELETE_TOPICS_STATE)), span(0, 5, Ty::ArrayStr), all(I32)]);

static CREATE_PARTITIONS_ASSIGNMENT: Struct = st(&[all(Ty::ArrayFixed(4))]);
static CREATE_PARTITIONS_TOPIC: Struct =
    st(&[all(Ty::Str), all(I32), all(Ty::Array(&CREATE_PARTITIONS_ASSIGNMENT))]);
static CREATE_PARTITIONS: Struct = st(&[all(Ty::Array(&CREATE_PARTITIONS_TOPIC)), all(I32), all(BOOL)]);

static DESCRIBE_CONFIGS_RESOURCE: Struct = st(&[all(I8), all(Ty::Str), all(Ty::ArrayStr)]);
static DESCRIBE_CONFIGS: Struct =
    st(&[all(Ty::Array(&DESCRIBE_CONFIGS_RESOURCE)), from(1, BOOL), from(3, BOOL)]);

static ALTER_CONFIGS_ENTRY: Struct = st(&[all(Ty::Str), all(Ty::Str)]);
static ALTER_CONFIGS_RESOURCE: Struct = st(&[all(I8), all(Ty::Str), all(Ty::Array(&ALTER_CONFIGS_ENTRY))]);
static ALTER_CONFIGS: Struct = st(&[all(Ty::Array(&ALTER_CONFIGS_RESOURCE)), all(BOOL)]);

static INCREMENTAL_ALTER_ENTRY: Struct = st(&[all(Ty::Str), all(I8), all(Ty::Str)]);
static INCREMENTAL_ALTER_RESOURCE: Struct =
    st(&[all(I8), all(Ty::Str), all(Ty::Array(&INCREMENTAL_ALTER_ENTRY))]);
static INCREMENTAL_ALTER_CONFIGS: Struct = st(&[all(Ty::Array(&INCREMENTAL_ALTER_RESOURCE)), all(BOOL)]);

static DELETE_RECORDS_PARTITION: Struct = st(&[all(I32), all(I64)]);
static DELETE_RECORDS_TOPIC: Struct = st(&[all(Ty::Str), all(Ty::Array(&DELETE_RECORDS_PARTITION))]);
static DELETE_RECORDS: Struct = st(&[all(Ty::Array(&DELETE_RECORDS_TOPIC)), all(I32)]);

static DESCRIBE_CLUSTER: Struct = st(&[all(BOOL), from(1, I8), from(2, BOOL)]);

static DESCRIBE_LOG_DIRS_TOPIC: Struct = st(&[all(Ty::Str), all(Ty::ArrayFixed(4))]);
static DESCRIBE_LOG_DIRS: Struct = st(&[all(Ty::Array(&DESCRIBE_LOG_DIRS_TOPIC))]);

static INIT_PRODUCER_ID: Struct = st(&[all(Ty::Str), all(I32), from(3, I64), from(3, I16)]);

// Group coordinator APIs.
static FIND_COORDINATOR: Struct = st(&[span(0, 3, Ty::Str), from(1, I8), from(4, Ty::ArrayStr)]);

static JOIN_GROUP_PROTOCOL: Struct = st(&[all(Ty::Str), all(Ty::Bytes)]);
static JOIN_GROUP: Struct = st(&[
    all(Ty::Str),
    all(I32),
    from(1, I32),
    all(Ty::Str),
    from(5, Ty::Str),
    all(Ty::Str),
    all(Ty::Array(&JOIN_GROUP_PROTOCOL)),
    from(8, Ty::Str),
]);

static SYNC_GROUP_ASSIGNMENT: Struct = st(&[all(Ty::Str), all(Ty::Bytes)]);
static SYNC_GROUP: Struct = st(&[
    all(Ty::Str),
    all(I32),
    all(Ty::Str),
    from(3, Ty::Str),
    from(5, Ty::Str),
    from(5, Ty::Str),
    all(Ty::Array(&SYNC_GROUP_ASSIGNMENT)),
]);

static HEARTBEAT: Struct = st(&[all(Ty::Str), all(I32), all(Ty::Str), from(3, Ty::Str)]);

static LEAVE_GROUP_MEMBER: Struct = st(&[from(3, Ty::Str), from(3, Ty::Str), from(5, Ty::Str)]);
static LEAVE_GROUP: Struct =
    st(&[all(Ty::Str), span(0, 2, Ty::Str), from(3, Ty::Array(&LEAVE_GROUP_MEMBER))]);

static OFFSET_COMMIT_PARTITION: Struct =
    st(&[all(I32), all(I64), from(6, I32), span(1, 1, I64), all(Ty::Str)]);
static OFFSET_COMMIT_TOPIC: Struct = st(&[all(Ty::Str), all(Ty::Array(&OFFSET_COMMIT_PARTITION))]);
static OFFSET_COMMIT: Struct = st(&[
    all(Ty::Str),
    from(1, I32),
    from(1, Ty::Str),
    from(7, Ty::Str),
    span(2, 4, I64),
    all(Ty::Array(&OFFSET_COMMIT_TOPIC)),
]);

static OFFSET_FETCH_TOPIC: Struct = st(&[span(0, 7, Ty::Str), span(0, 7, Ty::ArrayFixed(4))]);
static OFFSET_FETCH_GROUP_TOPIC: Struct = st(&[from(8, Ty::Str), from(8, Ty::ArrayFixed(4))]);
static OFFSET_FETCH_GROUP: Struct =
    st(&[from(8, Ty::Str), from(9, Ty::Str), from(9, I32), from(8, Ty::Array(&OFFSET_FETCH_GROUP_TOPIC))]);
static OFFSET_FETCH: Struct = st(&[
    span(0, 7, Ty::Str),
    span(0, 7, Ty::Array(&OFFSET_FETCH_TOPIC)),
    from(8, Ty::Array(&OFFSET_FETCH_GROUP)),
    from(7, BOOL),
]);

static LIST_GROUPS: Struct = st(&[from(4, Ty::ArrayStr), from(5, Ty::ArrayStr)]);
static DESCRIBE_GROUPS: Struct = st(&[all(Ty::ArrayStr), from(3, BOOL)]);
static DELETE_GROUPS: Struct = st(&[all(Ty::ArrayStr)]);

static OFFSET_DELETE_PARTITION: Struct = st(&[all(I32)]);
static OFFSET_DELETE_TOPIC: Struct = st(&[all(Ty::Str), all(Ty::Array(&OFFSET_DELETE_PARTITION))]);
static OFFSET_DELETE: Struct = st(&[all(Ty::Str), all(Ty::Array(&OFFSET_DELETE_TOPIC))]);

// KIP-848 consumer groups: flexible from v0.
static CONSUMER_GROUP_HEARTBEAT_TOPIC: Struct = st(&[all(UUID), all(Ty::ArrayFixed(4))]);
static CONSUMER_GROUP_HEARTBEAT: Struct = st(&[
    all(Ty::Str),
    all(Ty::Str),
    all(I32),
    all(Ty::Str),
    all(Ty::Str),
    all(I32),
    all(Ty::ArrayStr),
    from(1, Ty::Str),
    all(Ty::Str),
    all(Ty::Array(&CONSUMER_GROUP_HEARTBEAT_TOPIC)),
]);
static CONSUMER_GROUP_DESCRIBE: Struct = st(&[all(Ty::ArrayStr), all(BOOL)]);

/// The schema the guard uses for `api_key`, if it has one. Every API that
/// [`crate::api_versions::SUPPORTED_APIS`] advertises must have one (a test checks).
pub(crate) fn schema(api_key: ApiKey) -> Option<Schema> {
    let (flexible_from, root): (i16, &'static Struct) = match api_key {
        ApiKey::ApiVersions => (3, &API_VERSIONS),
        ApiKey::Metadata => (9, &METADATA),
        ApiKey::Produce => (9, &PRODUCE),
        ApiKey::Fetch => (12, &FETCH),
        ApiKey::ListOffsets => (6, &LIST_OFFSETS),
        ApiKey::CreateTopics => (5, &CREATE_TOPICS),
        ApiKey::DeleteTopics => (4, &DELETE_TOPICS),
        ApiKey::CreatePartitions => (2, &CREATE_PARTITIONS),
        ApiKey::DescribeConfigs => (4, &DESCRIBE_CONFIGS),
        ApiKey::AlterConfigs => (2, &ALTER_CONFIGS),
        ApiKey::IncrementalAlterConfigs => (1, &INCREMENTAL_ALTER_CONFIGS),
        ApiKey::DeleteRecords => (2, &DELETE_RECORDS),
        ApiKey::DescribeCluster => (0, &DESCRIBE_CLUSTER),
        ApiKey::DescribeLogDirs => (2, &DESCRIBE_LOG_DIRS),
        ApiKey::InitProducerId => (2, &INIT_PRODUCER_ID),
        ApiKey::FindCoordinator => (3, &FIND_COORDINATOR),
        ApiKey::JoinGroup => (6, &JOIN_GROUP),
        ApiKey::SyncGroup => (4, &SYNC_GROUP),
        ApiKey::Heartbeat => (4, &HEARTBEAT),
        ApiKey::LeaveGroup => (4, &LEAVE_GROUP),
        ApiKey::OffsetCommit => (8, &OFFSET_COMMIT),
        ApiKey::OffsetFetch => (6, &OFFSET_FETCH),
        ApiKey::ListGroups => (3, &LIST_GROUPS),
        ApiKey::DescribeGroups => (5, &DESCRIBE_GROUPS),
        ApiKey::DeleteGroups => (2, &DELETE_GROUPS),
        ApiKey::OffsetDelete => (ANY, &OFFSET_DELETE),
        ApiKey::ConsumerGroupHeartbeat => (0, &CONSUMER_GROUP_HEARTBEAT),
        ApiKey::ConsumerGroupDescribe => (0, &CONSUMER_GROUP_DESCRIBE),
        _ => return None,
    };
    Some(Schema { flexible_from, root })
}

/// Walks `body` (the bytes after the request header) as `api_key` at `version`. `Ok` means
/// every length and count in it is backed by real bytes, so decoding it allocates at most in
/// proportion to the frame. Trailing bytes after the body are allowed, as Kafka allows them.
pub fn check(api_key: ApiKey, version: i16, body: &[u8]) -> Result<(), ShapeError> {
    let schema = schema(api_key).ok_or(ShapeError::NoSchema(api_key))?;
    let mut walker =
        Walker { buf: body, pos: 0, version, flexible: version >= schema.flexible_from, elements: 0 };
    walker.walk_struct(schema.root)
}

struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    version: i16,
    flexible: bool,
    elements: usize,
}

impl Walker<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], ShapeError> {
        if n > self.remaining() {
            return Err(ShapeError::Truncated { offset: self.pos, missing_bytes: n - self.remaining() });
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..self.pos])
    }

    fn i16(&mut self) -> Result<i16, ShapeError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, ShapeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Same semantics as the crate's `UnsignedVarInt`: at most five bytes, no overflow error.
    fn uvarint(&mut self) -> Result<u32, ShapeError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = u32::from(self.take(1)?[0]);
            value |= (b & 0x7f).wrapping_shl(i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    /// A length-prefixed blob (string or bytes); `short` = the non-flexible prefix is `i16`.
    fn blob(&mut self, short: bool) -> Result<(), ShapeError> {
        let offset = self.pos;
        let len: i64 = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else if short {
            i64::from(self.i16()?)
        } else {
            i64::from(self.i32()?)
        };
        match len {
            -1 => Ok(()),
            n if n < -1 => Err(ShapeError::NegativeLength { offset, length: n as i32 }),
            n => self.take(n as usize).map(|_| ()),
        }
    }

    /// An array's element count, checked against the bytes left before anything walks it.
    fn count(&mut self) -> Result<usize, ShapeError> {
        let offset = self.pos;
        let count: i64 = if self.flexible { i64::from(self.uvarint()?) - 1 } else { i64::from(self.i32()?) };
        let count = match count {
            -1 => 0,
            n if n < -1 => return Err(ShapeError::NegativeLength { offset, length: n as i32 }),
            n => n as u64,
        };
        // Every element takes at least one byte on the wire.
        if count > self.remaining() as u64 {
            return Err(ShapeError::ImpossibleCount { offset, count, remaining_bytes: self.remaining() });
        }
        let count = count as usize;
        self.elements += count;
        if self.elements > MAX_ELEMENTS_PER_REQUEST {
            return Err(ShapeError::TooManyElements);
        }
        Ok(count)
    }

    fn walk_ty(&mut self, ty: Ty) -> Result<(), ShapeError> {
        match ty {
            Ty::Fixed(n) => self.take(n).map(|_| ()),
            Ty::Str => self.blob(true),
            Ty::Bytes => self.blob(false),
            Ty::Struct(s) => self.walk_struct(s),
            Ty::Array(s) => {
                for _ in 0..self.count()? {
                    self.walk_struct(s)?;
                }
                Ok(())
            }
            Ty::ArrayFixed(width) => {
                let n = self.count()?;
                self.take(n.saturating_mul(width)).map(|_| ())
            }
            Ty::ArrayStr => {
                for _ in 0..self.count()? {
                    self.blob(true)?;
                }
                Ok(())
            }
        }
    }

    fn walk_struct(&mut self, s: &Struct) -> Result<(), ShapeError> {
        for field in s.fields {
            if field.min <= self.version && self.version <= field.max {
                self.walk_ty(field.ty)?;
            }
        }
        if self.flexible {
            self.walk_tagged(s.tags)?;
        }
        Ok(())
    }

    fn walk_tagged(&mut self, known: &[Tag]) -> Result<(), ShapeError> {
        let count = self.uvarint()?;
        // Each tagged field is at least two bytes (tag, size).
        if count as usize > self.remaining() {
            return Err(ShapeError::ImpossibleCount {
                offset: self.pos,
                count: u64::from(count),
                remaining_bytes: self.remaining(),
            });
        }
        for _ in 0..count {
            let offset = self.pos;
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            match known.iter().find(|t| t.tag == tag) {
                // The crate decodes known tags inline and ignores `size`; require that they
                // agree so that our walk and its decode stay at the same offsets.
                Some(t) => {
                    let start = self.pos;
                    if self.version < t.min {
                        return Err(ShapeError::BadTaggedField { offset, tag });
                    }
                    self.walk_ty(t.ty)?;
                    if self.pos - start != size {
                        return Err(ShapeError::BadTaggedField { offset, tag });
                    }
                }
                None => {
                    self.take(size)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::RequestKind;
    use proptest::prelude::Rng;
    use proptest::test_runner::{Config, TestRunner};

    /// Encodes a random valid body for `schema` at `version` (small counts, random strings and
    /// scalars, sometimes unknown tagged fields), the way a client would.
    pub(crate) struct Gen<'r> {
        pub rng: &'r mut proptest::test_runner::TestRng,
        pub version: i16,
        pub flexible: bool,
        pub out: Vec<u8>,
    }

    impl Gen<'_> {
        /// Uniform-enough value in `0..n` (bias is irrelevant here).
        fn below(&mut self, n: u32) -> u32 {
            self.rng.next_u32() % n
        }
        fn chance(&mut self, in_ten: u32) -> bool {
            self.below(10) < in_ten
        }
        fn uvarint(&mut self, mut v: u32) {
            while v >= 0x80 {
                self.out.push((v as u8) | 0x80);
                v >>= 7;
            }
            self.out.push(v as u8);
        }
        fn len_prefix(&mut self, len: usize, short: bool) {
            if self.flexible {
                self.uvarint(len as u32 + 1);
            } else if short {
                self.out.extend_from_slice(&(len as i16).to_be_bytes());
            } else {
                self.out.extend_from_slice(&(len as i32).to_be_bytes());
            }
        }
        fn ascii(&mut self) {
            let len = self.below(6) as usize;
            self.len_prefix(len, true);
            for _ in 0..len {
                let c = b'a' + self.below(26) as u8;
                self.out.push(c);
            }
        }
        fn ty(&mut self, ty: Ty) {
            match ty {
                Ty::Fixed(n) => {
                    for _ in 0..n {
                        // Booleans must be 0/1 to round-trip; 0/1 bytes are valid for every type.
                        let b = self.below(2) as u8;
                        self.out.push(b);
                    }
                }
                Ty::Str => self.ascii(),
                Ty::Bytes => {
                    let len = self.below(8) as usize;
                    self.len_prefix(len, false);
                    for _ in 0..len {
                        let b = self.below(256) as u8;
                        self.out.push(b);
                    }
                }
                Ty::Struct(s) => self.structure(s),
                Ty::Array(s) => {
                    let n = self.below(3) as usize;
                    self.len_prefix(n, false);
                    for _ in 0..n {
                        self.structure(s);
                    }
                }
                Ty::ArrayFixed(width) => {
                    let n = self.below(3) as usize;
                    self.len_prefix(n, false);
                    for _ in 0..n * width {
                        let b = self.below(256) as u8;
                        self.out.push(b);
                    }
                }
                Ty::ArrayStr => {
                    let n = self.below(3) as usize;
                    self.len_prefix(n, false);
                    for _ in 0..n {
                        self.ascii();
                    }
                }
            }
        }
        pub(crate) fn structure(&mut self, s: &Struct) {
            for f in s.fields {
                if f.min <= self.version && self.version <= f.max {
                    self.ty(f.ty);
                }
            }
            if self.flexible {
                // Known tags valid at this version, plus maybe one unknown tag.
                let known: Vec<Tag> = s.tags.iter().copied().filter(|t| t.min <= self.version).collect();
                let with_unknown = self.chance(3);
                let use_known = self.chance(5);
                let n = usize::from(use_known) * known.len() + usize::from(with_unknown);
                self.uvarint(n as u32);
                if use_known {
                    for t in known {
                        let mut inner = Gen {
                            rng: &mut *self.rng,
                            version: self.version,
                            flexible: true,
                            out: Vec::new(),
                        };
                        inner.ty(t.ty);
                        let bytes = inner.out;
                        self.uvarint(t.tag);
                        self.uvarint(bytes.len() as u32);
                        self.out.extend_from_slice(&bytes);
                    }
                }
                if with_unknown {
                    self.uvarint(1000);
                    self.uvarint(2);
                    self.out.extend_from_slice(&[7, 7]);
                }
            }
        }
    }

    pub(crate) fn generate(api: ApiKey, version: i16, rng: &mut proptest::test_runner::TestRng) -> Vec<u8> {
        let schema = schema(api).expect("schema");
        let mut g = Gen { rng, version, flexible: version >= schema.flexible_from, out: Vec::new() };
        g.structure(schema.root);
        g.out
    }

    /// The APIs with a schema, with the versions the crate decodes.
    pub(crate) fn schema_apis() -> Vec<(ApiKey, i16, i16)> {
        ApiKey::iter()
            .filter(|k| schema(*k).is_some())
            .map(|k| {
                let crate_range = crate::api_versions::crate_request_versions(k);
                (k, crate_range.min, crate_range.max)
            })
            .collect()
    }

    /// The tables agree with the crate: for every schema'd API and every version the crate
    /// decodes, random bodies generated from our table pass the check and decode with the
    /// crate, consuming exactly the generated bytes.
    #[test]
    fn tables_match_the_crate_decoders() {
        let mut runner = TestRunner::new(Config::default());
        for (api, min, max) in schema_apis() {
            for version in min..=max {
                for _ in 0..64 {
                    let body = generate(api, version, runner.rng());
                    check(api, version, &body)
                        .unwrap_or_else(|e| panic!("{api:?} v{version}: guard rejected: {e}"));
                    let mut buf = Bytes::from(body.clone());
                    let decoded = RequestKind::decode(api, &mut buf, version);
                    assert!(decoded.is_ok(), "{api:?} v{version}: crate rejected {body:?}: {decoded:?}");
                    assert_eq!(buf.len(), 0, "{api:?} v{version}: crate left bytes of {body:?}");
                }
            }
        }
    }

    #[test]
    fn huge_counts_are_rejected_before_decoding() {
        // Metadata v0: topics count i32::MAX with a 4-byte body.
        let body = i32::MAX.to_be_bytes();
        assert!(matches!(
            check(ApiKey::Metadata, 0, &body),
            Err(ShapeError::ImpossibleCount { count: 2147483647, .. })
        ));
        // Produce v9 (flexible): transactional id null, acks, timeout, topics varint u32::MAX.
        let mut body = vec![0u8, 0, 1, 0, 0, 0, 100];
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(check(ApiKey::Produce, 9, &body), Err(ShapeError::ImpossibleCount { .. })));
        // A count that fits the bytes but whose elements are not all there.
        let mut body = 3i32.to_be_bytes().to_vec();
        body.extend_from_slice(&[0, 1, b'a', 0, 1]);
        assert!(matches!(check(ApiKey::Metadata, 0, &body), Err(ShapeError::Truncated { .. })));
    }

    #[test]
    fn known_tag_with_lying_size_is_rejected() {
        // Fetch v12 body with a top-level tag 0 (cluster_id) whose declared size disagrees.
        let mut body = Vec::new();
        body.extend_from_slice(&(-1i32).to_be_bytes()); // replica_id
        body.extend_from_slice(&[0; 12]); // max_wait, min_bytes, max_bytes
        body.push(0); // isolation
        body.extend_from_slice(&[0; 8]); // session id, epoch
        body.push(1); // topics: empty
        body.push(1); // forgotten: empty
        body.push(1); // rack_id: ""
        body.extend_from_slice(&[1, 0, 5, 2, b'x']); // 1 tag: tag 0, size 5, string "x"
        assert!(matches!(check(ApiKey::Fetch, 12, &body), Err(ShapeError::BadTaggedField { .. })));
    }
}
