//! A minimal raw Kafka client for tests: requests framed with `kafka-protocol`'s encoders
//! over a blocking `std::net::TcpStream`, responses decoded with its decoders. Unlike a real
//! client it sends exactly what the test asks — including garbage, stale epochs and frames
//! no client would send — and it can tell a closed connection from an answer.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use shardlog_net::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use shardlog_net::kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use shardlog_net::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use shardlog_net::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use shardlog_net::kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, InitProducerIdRequest, InitProducerIdResponse, ListOffsetsRequest,
    ListOffsetsResponse, MetadataRequest, MetadataResponse, ProduceRequest, RequestHeader, ResponseHeader,
    TopicName,
};
use shardlog_net::kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, HeaderVersion, Request, StrBytes,
};
use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::record_batch::{BatchIter, Compression};
use shardlog_storage::records::Records;

/// How long a test waits for any one response before it fails (never an indefinite hang).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(15);

/// Versions the helpers speak: current ones, as librdkafka 2.x sends them.
pub const PRODUCE_V: i16 = 9;
pub const FETCH_V: i16 = 12;
pub const LIST_OFFSETS_V: i16 = 7;
pub const METADATA_V: i16 = 12;
pub const INIT_PRODUCER_ID_V: i16 = 4;

pub struct RawClient {
    pub stream: TcpStream,
    next_correlation_id: i32,
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the broker");
        stream.set_read_timeout(Some(RESPONSE_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(RESPONSE_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        RawClient { stream, next_correlation_id: 1 }
    }

    /// Writes bytes as they are (no size prefix added).
    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Writes `payload` behind its big-endian `i32` size.
    pub fn send_frame(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(4 + payload.len());
        out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        out.extend_from_slice(payload);
        self.stream.write_all(&out)
    }

    /// Encodes header + body of `body` at `version`; returns the frame payload and its
    /// correlation id.
    pub fn encode<R: Request>(&mut self, version: i16, body: &R) -> (Vec<u8>, i32) {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("shardlog-raw-test")));
        let mut buf = BytesMut::new();
        encode_request_header_into_buffer(&mut buf, &header).expect("encode header");
        body.encode(&mut buf, version).expect("encode body");
        (buf.to_vec(), correlation_id)
    }

    /// Sends one request; returns its correlation id.
    pub fn send<R: Request>(&mut self, version: i16, body: &R) -> i32 {
        let (payload, correlation_id) = self.encode(version, body);
        self.send_frame(&payload).expect("send request");
        correlation_id
    }

    /// Reads one response frame and decodes it as the answer to request `R` at `version`.
    pub fn receive<R: Request>(&mut self, version: i16, correlation_id: i32) -> R::Response {
        let frame = self
            .read_frame()
            .unwrap_or_else(|e| panic!("reading the response to api {} v{version}: {e}", R::KEY))
            .unwrap_or_else(|| panic!("connection closed instead of answering api {} v{version}", R::KEY));
        let mut buf = frame;
        let header =
            ResponseHeader::decode(&mut buf, <R::Response as HeaderVersion>::header_version(version))
                .expect("response header");
        assert_eq!(header.correlation_id, correlation_id, "response to another request");
        let body = <R::Response as Decodable>::decode(&mut buf, version).expect("response body");
        assert!(buf.is_empty(), "{} bytes left after the response body", buf.len());
        body
    }

    pub fn call<R: Request>(&mut self, version: i16, body: &R) -> R::Response {
        let correlation_id = self.send(version, body);
        self.receive::<R>(version, correlation_id)
    }

    /// One response frame (without its size prefix); `None` on a clean close between frames.
    pub fn read_frame(&mut self) -> std::io::Result<Option<Bytes>> {
        let mut size = [0u8; 4];
        let mut filled = 0;
        while filled < 4 {
            match self.stream.read(&mut size[filled..])? {
                0 if filled == 0 => return Ok(None),
                0 => return Err(ErrorKind::UnexpectedEof.into()),
                n => filled += n,
            }
        }
        let size = i32::from_be_bytes(size);
        assert!((0..256 << 20).contains(&size), "absurd response size {size}");
        let mut buf = vec![0u8; size as usize];
        self.stream.read_exact(&mut buf)?;
        Ok(Some(Bytes::from(buf)))
    }

    /// Whether the broker closed the connection without sending anything: waits up to
    /// `within` for EOF or a reset; panics if a byte arrives.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut byte = [0u8; 1];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream.set_read_timeout(Some(left.min(Duration::from_millis(200)))).unwrap();
            let result = self.stream.read(&mut byte);
            self.stream.set_read_timeout(Some(RESPONSE_TIMEOUT)).unwrap();
            match result {
                Ok(0) => return true,
                Ok(_) => panic!("the broker answered (first byte {:#04x}) instead of closing", byte[0]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // A reset (the broker closed with our unread bytes in its buffer) is a close too.
                Err(_) => return true,
            }
        }
    }

    /// Asserts the connection is closed by the broker within a few seconds, with no response.
    pub fn assert_closed(&mut self) {
        assert!(self.closed_within(Duration::from_secs(5)), "the broker did not close the connection");
    }

    // ---- Typed helpers -------------------------------------------------------------------

    pub fn metadata(&mut self, topics: Option<&[&str]>, allow_auto_create: bool) -> MetadataResponse {
        let topics = topics.map(|names| {
            names.iter().map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n)))).collect()
        });
        let req =
            MetadataRequest::default().with_topics(topics).with_allow_auto_topic_creation(allow_auto_create);
        self.call(METADATA_V, &req)
    }

    /// Produce of one record set to one partition; returns `(error code, base offset)`.
    pub fn produce(&mut self, topic: &str, partition: i32, acks: i16, records: Vec<u8>) -> (i16, i64) {
        let resp = self.call(PRODUCE_V, &produce_request(topic, partition, acks, records));
        let p = &resp.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    }

    /// Fetch of one partition; returns `(error code, high watermark, records)`.
    pub fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
        min_bytes: i32,
    ) -> (i16, i64, Vec<FetchedRecord>) {
        let resp: FetchResponse =
            self.call(FETCH_V, &fetch_request(topic, partition, offset, max_wait_ms, min_bytes));
        assert_eq!(resp.error_code, 0, "fetch: top-level error");
        let p = &resp.responses[0].partitions[0];
        (p.error_code, p.high_watermark, p.records.as_deref().map(decode_records).unwrap_or_default())
    }

    /// ListOffsets of one partition at `timestamp` (-1 latest, -2 earliest); `(error, offset)`.
    pub fn list_offset(&mut self, topic: &str, partition: i32, timestamp: i64) -> (i16, i64) {
        let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
            ListOffsetsTopic::default().with_name(topic_name(topic)).with_partitions(vec![
                ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp)
                    .with_current_leader_epoch(-1),
            ]),
        ]);
        let resp: ListOffsetsResponse = self.call(LIST_OFFSETS_V, &req);
        let p = &resp.topics[0].partitions[0];
        (p.error_code, p.offset)
    }

    pub fn init_producer_id(&mut self) -> InitProducerIdResponse {
        let req = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
        self.call(INIT_PRODUCER_ID_V, &req)
    }
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub fn produce_request(topic: &str, partition: i32, acks: i16, records: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default().with_name(topic_name(topic)).with_partition_data(vec![
            PartitionProduceData::default().with_index(partition).with_records(Some(Bytes::from(records))),
        ]),
    ])
}

pub fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(50 << 20)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(topic_name(topic)).with_partitions(vec![
            FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_current_leader_epoch(-1)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(50 << 20),
        ])])
}

/// One record read back: offset and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    pub offset: i64,
    pub value: Vec<u8>,
}

/// The records of a fetched record set (a partial batch at the end is ignored, as clients do).
pub fn decode_records(bytes: &[u8]) -> Vec<FetchedRecord> {
    let mut out = Vec::new();
    for (_, batch) in BatchIter::new(bytes, usize::MAX).map_while(Result::ok) {
        let records = Records::decode(batch, 64 << 20).expect("decode a fetched batch");
        for record in records.iter() {
            let record = record.expect("a record of a fetched batch");
            out.push(FetchedRecord {
                offset: record.offset,
                value: record.value.unwrap_or_default().to_vec(),
            });
        }
    }
    out
}

/// An uncompressed batch of `values` (placeholder base offset 0, as producers send).
pub fn batch(values: &[&[u8]]) -> Vec<u8> {
    build(RecordBatchBuilder::new(0, Compression::None), values)
}

/// An idempotent batch: producer id, epoch and the sequence of its first record.
pub fn idempotent_batch(producer_id: i64, epoch: i16, base_sequence: i32, values: &[&[u8]]) -> Vec<u8> {
    build(RecordBatchBuilder::new(0, Compression::None).producer(producer_id, epoch, base_sequence), values)
}

fn build(mut builder: RecordBatchBuilder, values: &[&[u8]]) -> Vec<u8> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    for value in values {
        builder.push(now, None, Some(value), &[]).expect("push a record");
    }
    builder.build().expect("build a batch")
}

/// Port of the shard that leads `topic`/`partition`, and the port of some other shard (the
/// broker must have at least two), from Metadata.
pub fn leader_and_other_port(client: &mut RawClient, topic: &str, partition: i32) -> (u16, u16) {
    let md = client.metadata(Some(&[topic]), false);
    let t = &md.topics[0];
    assert_eq!(t.error_code, 0, "metadata of {topic}");
    let leader = t.partitions.iter().find(|p| p.partition_index == partition).expect("partition").leader_id;
    let port_of = |id: BrokerId| md.brokers.iter().find(|b| b.node_id == id).map(|b| b.port as u16);
    let leader_port = port_of(leader).expect("leader is a listed broker");
    let other = md.brokers.iter().find(|b| b.node_id != leader).expect("a second shard").port as u16;
    (leader_port, other)
}

/// Polls `condition` every 20 ms until it holds or `within` passes; returns whether it held.
pub fn wait_until(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Auto-creates `topic` through Metadata on `port` and waits until every partition is served
/// by its leader shard (other shards learn of a new topic a moment later); returns the
/// leader port of each partition, by partition index.
pub fn ensure_topic(port: u16, topic: &str) -> Vec<u16> {
    let mut client = RawClient::connect(port);
    let mut leaders = Vec::new();
    let ready = wait_until(Duration::from_secs(10), || {
        let md = client.metadata(Some(&[topic]), true);
        let t = &md.topics[0];
        if t.error_code != 0 || t.partitions.is_empty() {
            return false;
        }
        let mut parts: Vec<_> = t.partitions.iter().map(|p| (p.partition_index, p.leader_id)).collect();
        parts.sort();
        leaders = parts
            .iter()
            .map(|(_, id)| md.brokers.iter().find(|b| b.node_id == *id).expect("leader listed").port as u16)
            .collect();
        leaders.iter().enumerate().all(|(partition, &leader_port)| {
            RawClient::connect(leader_port).list_offset(topic, partition as i32, -1).0 == 0
        })
    });
    assert!(ready, "topic {topic} was not served by its leaders in time");
    leaders
}
