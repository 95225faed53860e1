//! ListOffsets against the real broker: earliest, latest, by timestamp and max timestamp, with
//! records written by librdkafka bootstrapped through the *second* shard's port.
mod common;

use std::time::Duration;

use common::raw::RawClient;
use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

#[test]
fn earliest_latest_by_time_and_max_timestamp() {
    let broker = Broker::start(2, &[]);
    // Bootstrapping through shard 1 works like through shard 0.
    let bootstrap = format!("127.0.0.1:{}", broker.ports[1]);
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).set("linger.ms", "0").create().unwrap();
    // One batch each (flushed one by one), timestamps out of order: the max is in the middle.
    for (i, timestamp) in [1_000i64, 3_000, 2_000].into_iter().enumerate() {
        let value = format!("v{i}");
        producer
            .send(BaseRecord::<(), _>::to("timed").payload(&value).partition(0).timestamp(timestamp))
            .map_err(|(e, _)| e)
            .unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
    }

    // Ask the partition's leader, whichever shard it is.
    let leader_port = {
        let mut any = RawClient::connect(broker.ports[1]);
        let md = any.metadata(Some(&["timed"]), false);
        let leader = md.topics[0].partitions[0].leader_id.0;
        md.brokers.iter().find(|b| b.node_id.0 == leader).unwrap().port as u16
    };
    let mut client = RawClient::connect(leader_port);
    assert_eq!(client.list_offset("timed", 0, -2), (0, 0), "earliest");
    assert_eq!(client.list_offset("timed", 0, -1), (0, 3), "latest");
    assert_eq!(client.list_offset("timed", 0, 1_500), (0, 1), "first offset at or after 1500");
    assert_eq!(client.list_offset("timed", 0, 2_500), (0, 1), "first offset at or after 2500");
    assert_eq!(client.list_offset("timed", 0, 3_500), (0, -1), "nothing that late");
    assert_eq!(client.list_offset("timed", 0, -3), (0, 1), "max timestamp is at offset 1");
}
