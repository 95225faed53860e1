//! `shardlog get-offsets`: Kafka 3.7's GetOffsetShell (`kafka-get-offsets.sh`) — the offset of
//! each partition at a time (`-1` latest, `-2` earliest, `-3` max timestamp, or a timestamp
//! in ms), printed `topic:partition:offset`, sorted. Each partition is asked of its leader
//! (shards are separate nodes on separate ports).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use shardlog_net::kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use shardlog_net::kafka_protocol::messages::{BrokerId, ListOffsetsRequest, ListOffsetsResponse};

use crate::admin::{self, error_message, ToolError};
use crate::client::{timeout_from_command_config, Client};

const LIST_OFFSETS_V: i16 = 7;

/// Print the offsets of topic partitions at a time (Kafka's kafka-get-offsets.sh).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    shardlog get-offsets --bootstrap-server localhost:9092 --topic orders\n  \
    shardlog get-offsets --bootstrap-server localhost:9092 --topic orders --partitions 0,1 --time -2\n  \
    shardlog get-offsets --bootstrap-server localhost:9092 --topic orders --time 1700000000000")]
pub struct GetOffsetsArgs {
    /// The broker to connect to: HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, alias = "broker-list", value_name = "HOST:PORT", required = true)]
    pub bootstrap_server: String,
    /// The topic (all topics if omitted).
    #[arg(long)]
    pub topic: Option<String>,
    /// Comma-separated partition ids (all partitions if omitted).
    #[arg(long, value_delimiter = ',')]
    pub partitions: Vec<i32>,
    /// -1 or latest, -2 or earliest, -3 or max-timestamp, or a timestamp in ms.
    #[arg(long, default_value = "-1", allow_hyphen_values = true, value_parser = parse_time)]
    pub time: i64,
    /// Leave out internal topics such as __consumer_offsets when no --topic is given.
    #[arg(long)]
    pub exclude_internal_topics: bool,
    /// Client properties file; request.timeout.ms is honoured, other keys are ignored.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
}

fn parse_time(s: &str) -> Result<i64, String> {
    match s {
        "latest" => Ok(-1),
        "earliest" => Ok(-2),
        "max-timestamp" => Ok(-3),
        _ => s.parse().map_err(|_| format!("--time must be -1, -2, -3 or a timestamp in ms, not '{s}'")),
    }
}

pub fn run(args: &GetOffsetsArgs, out: &mut dyn Write) -> Result<(), ToolError> {
    let timeout = timeout_from_command_config(args.command_config.as_deref()).map_err(ToolError)?;
    let mut bootstrap = admin::connect_bootstrap(&args.bootstrap_server, timeout)?;
    let md = admin::metadata(&mut bootstrap, None)?;
    let nodes = admin::node_addresses(&md);
    // (topic, partition) by leader node.
    let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for t in &md.topics {
        let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else { continue };
        if t.error_code != 0 || args.topic.as_ref().is_some_and(|want| *want != name) {
            continue;
        }
        if args.topic.is_none() && args.exclude_internal_topics && t.is_internal {
            continue;
        }
        for p in &t.partitions {
            if args.partitions.is_empty() || args.partitions.contains(&p.partition_index) {
                by_leader.entry(p.leader_id.0).or_default().push((name.clone(), p.partition_index));
            }
        }
    }
    if by_leader.is_empty() {
        return Err(ToolError(
            "Error occurred: Could not match any topic-partitions with the specified filters".into(),
        ));
    }
    let mut results: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (leader, partitions) in by_leader {
        let addr = nodes.get(&leader).ok_or_else(|| {
            let (t, p) = &partitions[0];
            ToolError(format!("Error occurred: partition {t}-{p} has no leader"))
        })?;
        let mut client = Client::connect(addr, timeout)?;
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in &partitions {
            topics.entry(t.as_str()).or_default().push(*p);
        }
        let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(
            topics
                .iter()
                .map(|(t, ps)| {
                    ListOffsetsTopic::default().with_name(admin::topic_name(t)).with_partitions(
                        ps.iter()
                            .map(|p| {
                                ListOffsetsPartition::default()
                                    .with_partition_index(*p)
                                    .with_timestamp(args.time)
                                    .with_current_leader_epoch(-1)
                            })
                            .collect(),
                    )
                })
                .collect(),
        );
        let resp: ListOffsetsResponse = client.call(LIST_OFFSETS_V, &req)?;
        for t in &resp.topics {
            for p in &t.partitions {
                if p.error_code != 0 {
                    return Err(ToolError(format!(
                        "Error occurred: {}-{}: {}",
                        t.name.0.as_str(),
                        p.partition_index,
                        error_message(p.error_code, None)
                    )));
                }
                // No offset at that time (a timestamp after the last record): Kafka prints nothing.
                if p.offset >= 0 {
                    results.insert((t.name.0.to_string(), p.partition_index), p.offset);
                }
            }
        }
    }
    for ((topic, partition), offset) in results {
        writeln!(out, "{topic}:{partition}:{offset}")?;
    }
    Ok(())
}
