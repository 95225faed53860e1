//! The real binary driven by librdkafka (the `rdkafka` crate): every codec, keys spread over
//! partitions on both shards, acks=all, consumed back through the zero-copy fetch path.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;
const PER_CODEC: usize = 250;

fn producer(bootstrap: &str, codec: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("compression.type", codec)
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips_across_shards() {
    let broker = Broker::start(2, &[&format!("num.partitions={PARTITIONS}")]);
    let bootstrap = broker.bootstrap();
    let mut expected: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let producer = producer(&bootstrap, codec);
        let mut sends = Vec::new();
        for i in 0..PER_CODEC {
            let key = format!("{codec}-key-{}", i % 17);
            let value = format!("{codec}-value-{i}-{}", "x".repeat(i % 50));
            let partition = (i as i32) % PARTITIONS;
            expected.entry(partition).or_default().push((key.clone(), value.clone()));
            let record = FutureRecord::to("codecs").key(&key).payload(&value).partition(partition);
            sends.push(producer.send_result(record).expect("queue"));
        }
        for send in sends {
            let delivery = send.await.expect("delivery").expect("acked");
            assert!(delivery.offset >= 0 && (0..PARTITIONS).contains(&delivery.partition));
        }
    }

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "unused-no-commits")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment.add_partition_offset("codecs", p, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut got: BTreeMap<i32, Vec<(String, String, i64)>> = BTreeMap::new();
    let total = 5 * PER_CODEC;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while got.values().map(Vec::len).sum::<usize>() < total && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let m = message.expect("fetch");
            let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
            let value = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
            got.entry(m.partition()).or_default().push((key, value, m.offset()));
        }
    }
    for p in 0..PARTITIONS {
        let got = got.remove(&p).unwrap_or_default();
        let want = &expected[&p];
        assert_eq!(got.len(), want.len(), "partition {p}");
        for (i, ((k, v, offset), (wk, wv))) in got.iter().zip(want).enumerate() {
            assert_eq!((k, v), (wk, wv), "partition {p} record {i}");
            assert_eq!(*offset, i as i64, "offsets are contiguous from 0");
        }
    }
    // Both shards lead partitions, so both served produce and fetch.
    let metadata = consumer.fetch_metadata(Some("codecs"), Duration::from_secs(5)).unwrap();
    let leaders: std::collections::BTreeSet<i32> =
        metadata.topics()[0].partitions().iter().map(|p| p.leader()).collect();
    assert_eq!(leaders, [1, 1001].into_iter().collect());
}
