//! Request parsing: header (v0/v1/v2 by API and version), then the body into
//! `kafka-protocol`'s [`RequestKind`].
//!
//! Decoding works on the frame's [`Bytes`], so produce records come out as slices of the
//! frame (no copy). Any byte sequence is safe to feed in: lengths are checked by the crate,
//! and array counts — which the crate would trust — are checked first by [`crate::shape`].
//!
//! What the caller does with each failure mirrors Kafka 3.7 (see [`RequestError::disposition`]):
//! an ApiVersions request at a version we do not speak gets the v0 fallback response; every
//! other failure closes the connection (Kafka closes on unknown API keys, unsupported
//! versions and unparseable requests, because it cannot build a response the client would
//! understand).

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use crate::api_versions::supported_versions;
use crate::legacy::{self, LegacyRequest};
use crate::shape::{self, ShapeError};

/// api key (2) + api version (2) + correlation id (4): what every header version starts with.
const FIXED_HEADER_BYTES: usize = 8;

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The API, already checked to be one the broker advertises.
    pub api_key: ApiKey,
    /// The decoded header (version, correlation id, client id, tagged fields).
    pub header: RequestHeader,
    /// The decoded body. For the legacy versions (see [`crate::legacy`]) it is the same request
    /// translated into the crate's structs; serve those from [`Request::legacy`].
    pub body: RequestKind,
    /// Produce v0-2, Fetch v0-3, ListOffsets v0, DescribeConfigs v0, OffsetCommit v0-1 and
    /// OffsetFetch v0, which the crate does not decode: decoded by [`crate::legacy`]; their
    /// responses are encoded there too. `None` for other versions.
    pub legacy: Option<LegacyRequest>,
}

impl Request {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// Why a frame is not a request we serve.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// Shorter than the fixed header part, or a header that does not decode.
    #[error("malformed request header: {reason}")]
    MalformedHeader { correlation_id: Option<i32>, reason: String },
    /// An API key we do not advertise (including keys Kafka knows but we do not serve).
    #[error("unknown api key {api_key}")]
    UnknownApiKey { api_key: i16, api_version: i16, correlation_id: i32 },
    /// A known API at a version outside the advertised range.
    #[error("unsupported version {api_version} of {api_key:?}")]
    UnsupportedVersion { api_key: ApiKey, api_version: i16, correlation_id: i32 },
    /// A body that fails the structural check or the crate's decoder.
    #[error("malformed {api_key:?} v{api_version} body: {reason}")]
    MalformedBody { api_key: ApiKey, api_version: i16, correlation_id: i32, reason: String },
}

/// What the connection should do about a [`RequestError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Send [`crate::api_versions::api_versions_fallback_frame`]`(correlation_id)`, then go on
    /// reading requests.
    ApiVersionsFallback { correlation_id: i32 },
    /// Close the connection (after logging).
    Close,
}

impl RequestError {
    /// What Kafka 3.7 does for this failure; see the module docs.
    pub fn disposition(&self) -> Disposition {
        match self {
            RequestError::UnsupportedVersion { api_key: ApiKey::ApiVersions, correlation_id, .. } => {
                Disposition::ApiVersionsFallback { correlation_id: *correlation_id }
            }
            _ => Disposition::Close,
        }
    }

    /// The correlation id, if the frame got that far.
    pub fn correlation_id(&self) -> Option<i32> {
        match self {
            RequestError::MalformedHeader { correlation_id, .. } => *correlation_id,
            RequestError::UnknownApiKey { correlation_id, .. }
            | RequestError::UnsupportedVersion { correlation_id, .. }
            | RequestError::MalformedBody { correlation_id, .. } => Some(*correlation_id),
        }
    }
}

/// Parses one frame (the bytes after the size prefix) into a [`Request`].
pub fn parse_request(frame: Bytes) -> Result<Request, RequestError> {
    if frame.len() < FIXED_HEADER_BYTES {
        return Err(RequestError::MalformedHeader {
            correlation_id: None,
            reason: format!("{} bytes, need at least {FIXED_HEADER_BYTES}", frame.len()),
        });
    }
    let mut fixed = &frame[..FIXED_HEADER_BYTES];
    let raw_api_key = fixed.get_i16();
    let api_version = fixed.get_i16();
    let correlation_id = fixed.get_i32();

    // Keys the crate knows but we do not advertise are "unknown" to us, as Kafka treats APIs
    // not enabled on a listener.
    let known = ApiKey::try_from(raw_api_key).ok();
    let Some((api_key, range)) = known.and_then(|k| supported_versions(k).map(|r| (k, r))) else {
        return Err(RequestError::UnknownApiKey { api_key: raw_api_key, api_version, correlation_id });
    };
    if api_version < range.min || api_version > range.max {
        return Err(RequestError::UnsupportedVersion { api_key, api_version, correlation_id });
    }

    // The header has no arrays, so the crate's decoder is safe on it as is.
    let mut buf = frame;
    let header =
        RequestHeader::decode(&mut buf, api_key.request_header_version(api_version)).map_err(|e| {
            RequestError::MalformedHeader { correlation_id: Some(correlation_id), reason: e.to_string() }
        })?;

    let malformed =
        |reason: String| RequestError::MalformedBody { api_key, api_version, correlation_id, reason };
    shape::check(api_key, api_version, &buf).map_err(|e: ShapeError| malformed(e.to_string()))?;
    if legacy::is_legacy(api_key, api_version) {
        let (legacy, body) =
            legacy::decode(api_key, api_version, buf).map_err(|e| malformed(e.to_string()))?;
        return Ok(Request { api_key, header, body, legacy: Some(legacy) });
    }
    let body = RequestKind::decode(api_key, &mut buf, api_version).map_err(|e| malformed(e.to_string()))?;
    Ok(Request { api_key, header, body, legacy: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_versions::SUPPORTED_APIS;
    use crate::shape::tests::generate;
    use bytes::BytesMut;
    use kafka_protocol::messages::MetadataRequest;
    use kafka_protocol::protocol::{encode_request_header_into_buffer, Encodable, StrBytes};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    fn frame_with(api_key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("test-client")));
        let mut buf = BytesMut::new();
        encode_request_header_into_buffer(&mut buf, &header).expect("header");
        buf.extend_from_slice(body);
        buf.freeze()
    }

    #[test]
    fn parses_metadata_v1_and_v12() {
        for version in [1, 12] {
            let mut body = BytesMut::new();
            MetadataRequest::default().with_topics(None).encode(&mut body, version).expect("encode");
            let req = parse_request(frame_with(ApiKey::Metadata, version, 42, &body)).expect("parse");
            assert_eq!(req.api_key, ApiKey::Metadata);
            assert_eq!(req.correlation_id(), 42);
            assert_eq!(req.version(), version);
            assert_eq!(req.header.client_id.as_deref(), Some("test-client"));
            assert!(matches!(req.body, RequestKind::Metadata(_)));
        }
    }

    #[test]
    fn produce_records_are_slices_of_the_frame() {
        // Produce v3, one topic "t", one partition, 5 record bytes.
        let mut body = Vec::new();
        body.extend_from_slice(&(-1i16).to_be_bytes());
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&1000i32.to_be_bytes());
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&[0, 1, b't']);
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&5i32.to_be_bytes());
        body.extend_from_slice(b"hello");
        let frame = frame_with(ApiKey::Produce, 3, 1, &body);
        let frame_range = frame.as_ptr_range();
        let req = parse_request(frame.clone()).expect("parse");
        let RequestKind::Produce(produce) = req.body else { panic!("not produce") };
        let records = produce.topic_data[0].partition_data[0].records.clone().expect("records");
        assert_eq!(&records[..], b"hello");
        assert!(frame_range.contains(&records.as_ptr()), "records were copied");
    }

    #[test]
    fn dispositions_follow_kafka() {
        let short = parse_request(Bytes::from_static(&[0, 3, 0])).unwrap_err();
        assert_eq!(short.disposition(), Disposition::Close);

        let unknown = parse_request(frame_with(ApiKey::Metadata, 1, 5, &[]).slice(0..0)).unwrap_err();
        assert_eq!(unknown.disposition(), Disposition::Close);
        let mut raw = vec![0x7f, 0x00, 0, 1, 0, 0, 0, 5];
        raw.extend_from_slice(&[0, 0]);
        let unknown = parse_request(Bytes::from(raw)).unwrap_err();
        assert!(matches!(unknown, RequestError::UnknownApiKey { api_key: 0x7f00, .. }));
        assert_eq!(unknown.disposition(), Disposition::Close);

        // Known to the crate, not served by us (ACLs are not advertised).
        let not_served = parse_request(frame_with(ApiKey::DescribeAcls, 1, 6, &[])).unwrap_err();
        assert!(matches!(not_served, RequestError::UnknownApiKey { .. }));

        // Produce v11 is past what Kafka 3.7 serves (and what we advertise).
        let new_produce = parse_request(frame_with(ApiKey::Produce, 11, 7, &[])).unwrap_err();
        assert!(matches!(new_produce, RequestError::UnsupportedVersion { .. }));
        assert_eq!(new_produce.disposition(), Disposition::Close);
        // Produce v2 is served (by the legacy decoder); an empty body is malformed.
        let old_produce = parse_request(frame_with(ApiKey::Produce, 2, 7, &[])).unwrap_err();
        assert!(matches!(old_produce, RequestError::MalformedBody { correlation_id: 7, .. }));
        assert_eq!(old_produce.disposition(), Disposition::Close);

        // ApiVersions v9 from a future client: header v2 layout, body we cannot know.
        let mut raw = vec![0, 18, 0, 9, 0, 0, 0, 8, 0, 1, b'c', 0];
        raw.extend_from_slice(&[3, b'x', b'y', 9, 9]);
        let future = parse_request(Bytes::from(raw)).unwrap_err();
        assert_eq!(future.disposition(), Disposition::ApiVersionsFallback { correlation_id: 8 });

        let bad_body = parse_request(frame_with(ApiKey::Metadata, 1, 9, &[0, 0, 0, 2, 0])).unwrap_err();
        assert!(matches!(bad_body, RequestError::MalformedBody { correlation_id: 9, .. }));
        assert_eq!(bad_body.disposition(), Disposition::Close);
    }

    /// Valid requests of every advertised API and version, generated from the guard tables.
    fn valid_frames(runner: &mut TestRunner, per_version: usize) -> Vec<Bytes> {
        let mut frames = Vec::new();
        for a in SUPPORTED_APIS {
            for version in a.min_version..=a.max_version {
                for i in 0..per_version {
                    let body = generate(a.api_key, version, runner.rng());
                    frames.push(frame_with(a.api_key, version, i as i32, &body));
                }
            }
        }
        frames
    }

    #[test]
    fn every_advertised_version_parses() {
        let mut runner = TestRunner::new(Config::default());
        for frame in valid_frames(&mut runner, 8) {
            let req = parse_request(frame.clone());
            assert!(req.is_ok(), "{req:?} for {frame:?}");
            let req = req.unwrap();
            assert_eq!(req.legacy.is_some(), legacy::is_legacy(req.api_key, req.version()), "{req:?}");
        }
    }

    #[test]
    fn legacy_versions_parse_into_legacy_requests() {
        // Produce v0, as sarama 1.22 sends it by default: topic "t", partition 0, 5 bytes.
        let mut body = Vec::new();
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&1000i32.to_be_bytes());
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&[0, 1, b't']);
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&5i32.to_be_bytes());
        body.extend_from_slice(b"hello");
        for version in 0..=2 {
            let frame = frame_with(ApiKey::Produce, version, 3, &body);
            let frame_range = frame.as_ptr_range();
            let req = parse_request(frame.clone()).expect("parse");
            assert_eq!((req.api_key, req.version(), req.correlation_id()), (ApiKey::Produce, version, 3));
            let Some(LegacyRequest::Produce(legacy)) = &req.legacy else { panic!("not legacy: {req:?}") };
            let records = legacy.topics[0].partitions[0].records.clone().expect("records");
            assert_eq!(&records[..], b"hello");
            assert!(frame_range.contains(&records.as_ptr()), "records were copied");
            // `body` holds the same request in the crate's structs.
            let RequestKind::Produce(produce) = &req.body else { panic!("not produce") };
            assert_eq!((produce.acks, &*produce.topic_data[0].name.0), (1, "t"));
        }
        // Fetch v0-3 and ListOffsets v0 too; v4 and v1 are the crate's again.
        let fetch_v2 = [vec![0xff; 4], vec![0, 0, 0, 100], vec![0, 0, 0, 1], vec![0, 0, 0, 0]].concat();
        let req = parse_request(frame_with(ApiKey::Fetch, 2, 4, &fetch_v2)).expect("fetch v2");
        assert!(matches!(req.legacy, Some(LegacyRequest::Fetch(_))));
        let list_v0 = [vec![0xff; 4], vec![0, 0, 0, 0]].concat();
        let req = parse_request(frame_with(ApiKey::ListOffsets, 0, 5, &list_v0)).expect("list offsets v0");
        assert!(matches!(req.legacy, Some(LegacyRequest::ListOffsets(_))));
        let req = parse_request(frame_with(ApiKey::ListOffsets, 1, 6, &list_v0)).expect("list offsets v1");
        assert!(req.legacy.is_none());
    }

    proptest! {
        #![proptest_config(Config { cases: 2000, ..Config::default() })]

        /// Random bytes: any outcome but a panic (or an abort from a huge allocation).
        #[test]
        fn random_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_request(Bytes::from(bytes));
        }

        /// Random bytes behind a valid fixed header, so the body decoders are exercised.
        #[test]
        fn random_bodies_never_panic(
            api in 0..SUPPORTED_APIS.len(),
            version_pick in any::<u16>(),
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let a = SUPPORTED_APIS[api];
            let span = (a.max_version - a.min_version + 1) as u16;
            let version = a.min_version + (version_pick % span) as i16;
            let _ = parse_request(frame_with(a.api_key, version, 1, &body));
        }

        /// Valid frames with a few bytes overwritten (lengths and counts become garbage).
        #[test]
        fn mutated_frames_never_panic(
            seed in any::<u64>(),
            api in 0..SUPPORTED_APIS.len(),
            version_pick in any::<u16>(),
            edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
            truncate in any::<u16>(),
        ) {
            let a = SUPPORTED_APIS[api];
            let span = (a.max_version - a.min_version + 1) as u16;
            let version = a.min_version + (version_pick % span) as i16;
            let mut runner = TestRunner::new_with_rng(
                Config::default(),
                proptest::test_runner::TestRng::from_seed(
                    proptest::test_runner::RngAlgorithm::ChaCha, &seed_bytes(seed)),
            );
            let body = generate(a.api_key, version, runner.rng());
            let mut bytes = frame_with(a.api_key, version, 1, &body).to_vec();
            for (pos, value) in edits {
                let len = bytes.len();
                bytes[pos as usize % len] = value;
            }
            let _ = parse_request(Bytes::from(bytes.clone()));
            let cut = truncate as usize % (bytes.len() + 1);
            let _ = parse_request(Bytes::from(bytes[..cut].to_vec()));
        }
    }

    fn seed_bytes(seed: u64) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, chunk) in out.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&(seed.wrapping_add(i as u64)).to_le_bytes());
        }
        out
    }

    /// The attack the guard exists for: a tiny Metadata request claiming 2^31-1 topics. Without
    /// the guard the crate asks for ~150 GiB up front and the process aborts.
    #[test]
    fn huge_array_count_is_an_error_not_an_abort() {
        let err = parse_request(frame_with(ApiKey::Metadata, 0, 3, &i32::MAX.to_be_bytes())).unwrap_err();
        assert!(matches!(err, RequestError::MalformedBody { correlation_id: 3, .. }), "{err}");
    }
}
