//! `shardlog topics`: Kafka 3.7's `kafka-topics.sh` (TopicCommand) against a running broker —
//! create, list, describe, alter (grow partitions) and delete, with its flags and output.
//!
//! Output is Kafka's byte for byte; a failure is one line
//! `Error while executing topic command : <message>` on stderr and a non-zero exit.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use base64::Engine;
use clap::{ArgGroup, Args};
use shardlog_net::kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use shardlog_net::kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use shardlog_net::kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use shardlog_net::kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    MetadataResponse,
};
use shardlog_net::kafka_protocol::protocol::StrBytes;

use crate::admin::{self, error_message, ToolError};
use crate::client::{timeout_from_command_config, Client};

const CREATE_TOPICS_V: i16 = 7;
const DELETE_TOPICS_V: i16 = 5;
const CREATE_PARTITIONS_V: i16 = 3;
const DESCRIBE_CONFIGS_V: i16 = 4;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// `ConfigSource.DEFAULT_CONFIG`: configs from this source are not printed by `--describe`.
const SOURCE_DEFAULT: i8 = 5;
/// DescribeConfigs resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;

/// Create, list, describe, alter or delete topics (Kafka's kafka-topics.sh).
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("action").required(true).args(["create", "list", "describe", "alter", "delete"])),
    after_help = "Examples:\n  \
        shardlog topics --bootstrap-server localhost:9092 --create --topic orders --partitions 3 --replication-factor 1\n  \
        shardlog topics --bootstrap-server localhost:9092 --create --topic orders --config retention.ms=60000 --if-not-exists\n  \
        shardlog topics --bootstrap-server localhost:9092 --list\n  \
        shardlog topics --bootstrap-server localhost:9092 --describe --topic orders\n  \
        shardlog topics --bootstrap-server localhost:9092 --alter --topic orders --partitions 6\n  \
        shardlog topics --bootstrap-server localhost:9092 --delete --topic orders --if-exists"
)]
pub struct TopicsArgs {
    /// The broker to connect to: HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, value_name = "HOST:PORT", required = true)]
    pub bootstrap_server: String,
    /// Create a new topic.
    #[arg(long)]
    pub create: bool,
    /// List all topics.
    #[arg(long)]
    pub list: bool,
    /// Describe one topic (with --topic) or all.
    #[arg(long)]
    pub describe: bool,
    /// Increase the number of partitions of a topic.
    #[arg(long)]
    pub alter: bool,
    /// Delete a topic.
    #[arg(long)]
    pub delete: bool,
    /// The topic to create, alter, describe or delete.
    #[arg(long)]
    pub topic: Option<String>,
    /// Number of partitions (create: the broker's num.partitions if omitted; alter: the new count).
    #[arg(long)]
    pub partitions: Option<i32>,
    /// Replication factor of a new topic (the broker's default if omitted).
    #[arg(long)]
    pub replication_factor: Option<i16>,
    /// A topic config override for --create, KEY=VALUE (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub configs: Vec<String>,
    /// With --create: do nothing if the topic already exists.
    #[arg(long)]
    pub if_not_exists: bool,
    /// With --alter, --describe or --delete: do nothing if the topic does not exist.
    #[arg(long)]
    pub if_exists: bool,
    /// Client properties file; request.timeout.ms is honoured, other keys are ignored.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
}

/// Runs the command, writing its output to `out`. The error is the whole stderr line.
pub fn run(args: &TopicsArgs, out: &mut dyn Write) -> Result<(), ToolError> {
    run_inner(args, out).map_err(|e| ToolError(format!("Error while executing topic command : {e}")))
}

fn run_inner(args: &TopicsArgs, out: &mut dyn Write) -> Result<(), ToolError> {
    let timeout = timeout_from_command_config(args.command_config.as_deref()).map_err(ToolError)?;
    let needs_topic = args.create || args.alter || args.delete;
    if needs_topic && args.topic.is_none() {
        return Err(ToolError("Missing required argument \"[topic]\"".into()));
    }
    if args.alter && !args.configs.is_empty() {
        return Err(ToolError(
            "Option \"[config]\" can't be used with option \"[alter]\"; use shardlog configs --alter".into(),
        ));
    }
    let mut client = admin::connect_bootstrap(&args.bootstrap_server, timeout)?;
    if args.create {
        create(args, &mut client, out)
    } else if args.list {
        list(args, &mut client, out)
    } else if args.describe {
        describe(args, &mut client, out)
    } else if args.alter {
        alter(args, &mut client)
    } else {
        delete(args, &mut client)
    }
}

fn create(args: &TopicsArgs, client: &mut Client, out: &mut dyn Write) -> Result<(), ToolError> {
    let name = args.topic.as_deref().unwrap_or_default();
    // TopicCommand's own checks, before any request.
    if args.replication_factor.is_some_and(|rf| rf < 1) {
        return Err(ToolError("The replication factor must be between 1 and 32767 inclusive".into()));
    }
    if args.partitions.is_some_and(|p| p < 1) {
        return Err(ToolError("The partitions must be greater than 0".into()));
    }
    let mut configs = Vec::new();
    for kv in &args.configs {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(ToolError(format!(
                "Invalid topic config: all configs to be added must be in the format \"key=val\" ({kv})."
            )));
        };
        configs.push(
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.trim().to_string()))
                .with_value(Some(StrBytes::from_string(v.trim().to_string()))),
        );
    }
    if name.contains('.') || name.contains('_') {
        writeln!(
            out,
            "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could collide. To avoid issues it is best to use either, but not both."
        )?;
    }
    let topic = CreatableTopic::default()
        .with_name(admin::topic_name(name))
        .with_num_partitions(args.partitions.unwrap_or(-1))
        .with_replication_factor(args.replication_factor.unwrap_or(-1))
        .with_configs(configs);
    let req = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(30_000);
    let resp: CreateTopicsResponse = client.call(CREATE_TOPICS_V, &req)?;
    let result = resp.topics.first().ok_or_else(|| ToolError("the broker answered no topic".into()))?;
    match result.error_code {
        0 => {
            writeln!(out, "Created topic {name}.")?;
            Ok(())
        }
        TOPIC_ALREADY_EXISTS if args.if_not_exists => Ok(()),
        code => Err(ToolError(error_message(code, result.error_message.as_ref()))),
    }
}

/// Topic names from Metadata, sorted; `name` keeps only that topic.
fn topic_names(md: &MetadataResponse) -> Vec<String> {
    let mut names: Vec<String> = md
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    names.sort();
    names
}

fn selected(args: &TopicsArgs, client: &mut Client) -> Result<(MetadataResponse, Vec<String>), ToolError> {
    let md = admin::metadata(client, None)?;
    let mut names = topic_names(&md);
    if let Some(topic) = &args.topic {
        names.retain(|n| n == topic);
        if names.is_empty() && !args.if_exists {
            return Err(ToolError(format!("Topic '{topic}' does not exist as expected")));
        }
    }
    Ok((md, names))
}

fn list(args: &TopicsArgs, client: &mut Client, out: &mut dyn Write) -> Result<(), ToolError> {
    let md = admin::metadata(client, None)?;
    let mut names = topic_names(&md);
    names.retain(|name| args.topic.as_ref().is_none_or(|t| t == name));
    // Kafka prints the names joined by newlines, then a newline: an empty line for none.
    writeln!(out, "{}", names.join("\n"))?;
    Ok(())
}

fn describe(args: &TopicsArgs, client: &mut Client, out: &mut dyn Write) -> Result<(), ToolError> {
    let (md, names) = selected(args, client)?;
    if names.is_empty() {
        return Ok(());
    }
    let resources = names
        .iter()
        .map(|n| {
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(n.clone()))
                .with_configuration_keys(None)
        })
        .collect();
    let req = DescribeConfigsRequest::default().with_resources(resources);
    let resp: DescribeConfigsResponse = client.call(DESCRIBE_CONFIGS_V, &req)?;
    let mut configs: BTreeMap<String, String> = BTreeMap::new();
    for result in &resp.results {
        if result.error_code != 0 {
            return Err(ToolError(error_message(result.error_code, result.error_message.as_ref())));
        }
        let text = result
            .configs
            .iter()
            .filter(|c| c.config_source != SOURCE_DEFAULT)
            .map(|c| {
                let value = if c.is_sensitive {
                    "null".to_string()
                } else {
                    c.value.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "null".into())
                };
                format!("{}={value}", c.name.as_str())
            })
            .collect::<Vec<_>>()
            .join(",");
        configs.insert(result.resource_name.to_string(), text);
    }
    for name in &names {
        let Some(topic) = md.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name))
        else {
            continue;
        };
        let mut partitions: Vec<_> = topic.partitions.iter().collect();
        partitions.sort_by_key(|p| p.partition_index);
        let rf = partitions.first().map(|p| p.replica_nodes.len()).unwrap_or(0);
        write!(out, "Topic: {name}")?;
        if !topic.topic_id.is_nil() {
            let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(topic.topic_id.as_bytes());
            write!(out, "\tTopicId: {id}")?;
        }
        write!(out, "\tPartitionCount: {}", partitions.len())?;
        write!(out, "\tReplicationFactor: {rf}")?;
        writeln!(out, "\tConfigs: {}", configs.get(name).map(String::as_str).unwrap_or(""))?;
        for p in partitions {
            let ids = |nodes: &[shardlog_net::kafka_protocol::messages::BrokerId]| {
                nodes.iter().map(|n| n.0.to_string()).collect::<Vec<_>>().join(",")
            };
            let leader = if p.leader_id.0 >= 0 { p.leader_id.0.to_string() } else { "none".into() };
            writeln!(
                out,
                "\tTopic: {name}\tPartition: {}\tLeader: {leader}\tReplicas: {}\tIsr: {}",
                p.partition_index,
                ids(&p.replica_nodes),
                ids(&p.isr_nodes)
            )?;
        }
    }
    Ok(())
}

fn alter(args: &TopicsArgs, client: &mut Client) -> Result<(), ToolError> {
    let (_, names) = selected(args, client)?;
    let Some(count) = args.partitions else { return Ok(()) };
    for name in names {
        let req = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(admin::topic_name(&name))
                .with_count(count)
                .with_assignments(None)])
            .with_timeout_ms(30_000);
        let resp: CreatePartitionsResponse = client.call(CREATE_PARTITIONS_V, &req)?;
        if let Some(r) = resp.results.iter().find(|r| r.error_code != 0) {
            return Err(ToolError(error_message(r.error_code, r.error_message.as_ref())));
        }
    }
    Ok(())
}

fn delete(args: &TopicsArgs, client: &mut Client) -> Result<(), ToolError> {
    let (_, names) = selected(args, client)?;
    if names.is_empty() {
        return Ok(());
    }
    let req = DeleteTopicsRequest::default()
        .with_topic_names(names.iter().map(|n| admin::topic_name(n)).collect())
        .with_timeout_ms(30_000);
    let resp: DeleteTopicsResponse = client.call(DELETE_TOPICS_V, &req)?;
    for r in &resp.responses {
        match r.error_code {
            0 => {}
            UNKNOWN_TOPIC_OR_PARTITION if args.if_exists => {}
            code => return Err(ToolError(error_message(code, r.error_message.as_ref()))),
        }
    }
    Ok(())
}
