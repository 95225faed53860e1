//! `shardlog configs`: Kafka 3.7's `kafka-configs.sh` (ConfigCommand) for topics and brokers —
//! `--describe [--all]` over DescribeConfigs (with synonyms) and `--alter --add-config /
//! --delete-config` over IncrementalAlterConfigs, with its flags and output lines.
//!
//! A failure is one stderr line and a non-zero exit.

use std::io::Write;
use std::path::PathBuf;

use clap::{ArgGroup, Args, ValueEnum};
use shardlog_net::kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use shardlog_net::kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use shardlog_net::kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use shardlog_net::kafka_protocol::messages::{
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use shardlog_net::kafka_protocol::protocol::StrBytes;

use crate::admin::{self, error_message, ToolError};
use crate::client::{timeout_from_command_config, Client};

const DESCRIBE_CONFIGS_V: i16 = 4;
const INCREMENTAL_ALTER_CONFIGS_V: i16 = 1;
/// `ConfigResource.Type` ids.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// `DescribeConfigsResponse.ConfigSource` ids.
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EntityType {
    Topics,
    Brokers,
}

impl EntityType {
    /// The singular Kafka prints (`entityType.dropRight(1)`).
    fn singular(self) -> &'static str {
        match self {
            EntityType::Topics => "topic",
            EntityType::Brokers => "broker",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            EntityType::Topics => "topics",
            EntityType::Brokers => "brokers",
        }
    }

    fn resource_type(self) -> i8 {
        match self {
            EntityType::Topics => RESOURCE_TOPIC,
            EntityType::Brokers => RESOURCE_BROKER,
        }
    }

    /// The source of the configs `--describe` prints without `--all`.
    fn dynamic_source(self) -> i8 {
        match self {
            EntityType::Topics => SOURCE_DYNAMIC_TOPIC,
            EntityType::Brokers => SOURCE_DYNAMIC_BROKER,
        }
    }
}

/// Describe or change topic and broker configs (Kafka's kafka-configs.sh).
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("action").required(true).args(["describe", "alter"])),
    after_help = "Examples:\n  \
        shardlog configs --bootstrap-server localhost:9092 --entity-type topics --entity-name orders --describe\n  \
        shardlog configs --bootstrap-server localhost:9092 --entity-type topics --entity-name orders --describe --all\n  \
        shardlog configs --bootstrap-server localhost:9092 --entity-type topics --entity-name orders --alter --add-config retention.ms=86400000,cleanup.policy=compact\n  \
        shardlog configs --bootstrap-server localhost:9092 --entity-type topics --entity-name orders --alter --delete-config retention.ms\n  \
        shardlog configs --bootstrap-server localhost:9092 --entity-type brokers --entity-name 1 --describe --all"
)]
pub struct ConfigsArgs {
    /// The broker to connect to: HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, value_name = "HOST:PORT", required = true)]
    pub bootstrap_server: String,
    /// The kind of entity: topics or brokers.
    #[arg(long, value_enum, required = true)]
    pub entity_type: EntityType,
    /// The topic name or broker id (describe: every entity of the type if omitted).
    #[arg(long)]
    pub entity_name: Option<String>,
    /// The cluster-wide default of brokers (instead of --entity-name).
    #[arg(long, conflicts_with = "entity_name")]
    pub entity_default: bool,
    /// List the configs of the entity (dynamic ones; every one with --all).
    #[arg(long)]
    pub describe: bool,
    /// With --describe: list every config, not only the dynamic ones.
    #[arg(long, requires = "describe")]
    pub all: bool,
    /// Change configs of the entity (with --add-config and/or --delete-config).
    #[arg(long)]
    pub alter: bool,
    /// Configs to set: k1=v1,k2=[v1,v2,v2],k3=v3.
    #[arg(long, value_name = "K=V,...", requires = "alter")]
    pub add_config: Option<String>,
    /// Configs to remove: k1,k2.
    #[arg(long, value_name = "K,...", requires = "alter")]
    pub delete_config: Option<String>,
    /// Client properties file; request.timeout.ms is honoured, other keys are ignored.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
}

pub fn run(args: &ConfigsArgs, out: &mut dyn Write) -> Result<(), ToolError> {
    let timeout = timeout_from_command_config(args.command_config.as_deref()).map_err(ToolError)?;
    if args.entity_default && args.entity_type == EntityType::Topics {
        return Err(ToolError("--entity-default is only valid with --entity-type brokers".into()));
    }
    if args.alter {
        if args.add_config.is_none() && args.delete_config.is_none() {
            return Err(ToolError(
                "At least one of --add-config or --delete-config must be specified with --alter".into(),
            ));
        }
        if args.entity_name.is_none() && !args.entity_default {
            return Err(ToolError(format!(
                "an entity name must be specified with --alter of {}",
                args.entity_type.plural()
            )));
        }
    }
    // Parse before connecting: a bad flag sends no request.
    let to_add = match &args.add_config {
        Some(text) => parse_add_config(text)?,
        None => Vec::new(),
    };
    let to_delete: Vec<String> = match &args.delete_config {
        Some(text) => text.split(',').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect(),
        None => Vec::new(),
    };
    let mut client = admin::connect_bootstrap(&args.bootstrap_server, timeout)?;
    if args.alter {
        let name =
            if args.entity_default { String::new() } else { args.entity_name.clone().unwrap_or_default() };
        alter(args.entity_type, &name, &to_add, &to_delete, &mut client, out)
    } else {
        describe(args, &mut client, out)
    }
}

/// `k1=v1,k2=[a,b],k3=v3`: commas inside brackets belong to the value (Kafka's list syntax;
/// the brackets are dropped).
fn parse_add_config(text: &str) -> Result<Vec<(String, String)>, ToolError> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    let mut configs = Vec::new();
    for part in parts.into_iter().filter(|p| !p.trim().is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(ToolError(
                "requirement failed: Invalid entity config: all configs to be added must be in the format \"key=val\"."
                    .into(),
            ));
        };
        let v = v.trim();
        let v = v.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(v);
        configs.push((k.trim().to_string(), v.to_string()));
    }
    Ok(configs)
}

fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "DYNAMIC_CLIENT_METRICS_CONFIG",
        _ => "UNKNOWN",
    }
}

/// The configs of one resource, filtered as ConfigCommand filters them and sorted by name.
fn resource_configs(
    client: &mut Client,
    entity_type: EntityType,
    name: &str,
    all: bool,
) -> Result<Vec<DescribeConfigsResourceResult>, ToolError> {
    let req = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(entity_type.resource_type())
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(None)])
        .with_include_synonyms(true);
    let resp: DescribeConfigsResponse = client.call(DESCRIBE_CONFIGS_V, &req)?;
    let result =
        resp.results.into_iter().next().ok_or_else(|| ToolError("the broker answered no resource".into()))?;
    if result.error_code != 0 {
        return Err(ToolError(error_message(result.error_code, result.error_message.as_ref())));
    }
    let mut configs: Vec<_> = result
        .configs
        .into_iter()
        .filter(|c| all || c.config_source == entity_type.dynamic_source())
        .collect();
    configs.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    Ok(configs)
}

fn describe(args: &ConfigsArgs, client: &mut Client, out: &mut dyn Write) -> Result<(), ToolError> {
    let entity_type = args.entity_type;
    // (resource name, heading)
    let entities: Vec<String> = if args.entity_default {
        vec![String::new()]
    } else if let Some(name) = &args.entity_name {
        vec![name.clone()]
    } else {
        let md = admin::metadata(client, None)?;
        match entity_type {
            EntityType::Topics => {
                let mut names: Vec<String> = md
                    .topics
                    .iter()
                    .filter(|t| t.error_code == 0)
                    .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                    .collect();
                names.sort();
                names
            }
            EntityType::Brokers => {
                let mut ids: Vec<String> = md.brokers.iter().map(|b| b.node_id.0.to_string()).collect();
                ids.push(String::new());
                ids
            }
        }
    };
    let source = if args.all { "All" } else { "Dynamic" };
    for entity in entities {
        if entity.is_empty() {
            writeln!(out, "Default configs for {} in the cluster are:", entity_type.plural())?;
        } else {
            writeln!(out, "{source} configs for {} {entity} are:", entity_type.singular())?;
        }
        for c in resource_configs(client, entity_type, &entity, args.all)? {
            let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "null".into());
            let synonyms = c
                .synonyms
                .iter()
                .map(|s| {
                    let v = s.value.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "null".into());
                    format!("{}:{}={v}", source_name(s.source), s.name.as_str())
                })
                .collect::<Vec<_>>()
                .join(", ");
            writeln!(
                out,
                "  {}={value} sensitive={} synonyms={{{synonyms}}}",
                c.name.as_str(),
                c.is_sensitive
            )?;
        }
    }
    Ok(())
}

fn alter(
    entity_type: EntityType,
    name: &str,
    to_add: &[(String, String)],
    to_delete: &[String],
    client: &mut Client,
    out: &mut dyn Write,
) -> Result<(), ToolError> {
    // ConfigCommand refuses to delete a config that is not set dynamically.
    if !to_delete.is_empty() {
        let current = resource_configs(client, entity_type, name, false)?;
        let invalid: Vec<&str> = to_delete
            .iter()
            .filter(|k| !current.iter().any(|c| c.name.as_str() == k.as_str()))
            .map(String::as_str)
            .collect();
        if !invalid.is_empty() {
            return Err(ToolError(format!("Invalid config(s): {}", invalid.join(","))));
        }
    }
    let mut configs: Vec<AlterableConfig> = to_add
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_config_operation(OP_SET)
                .with_value(Some(StrBytes::from_string(v.clone())))
        })
        .collect();
    configs.extend(to_delete.iter().map(|k| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(k.clone()))
            .with_config_operation(OP_DELETE)
            .with_value(None)
    }));
    let req = IncrementalAlterConfigsRequest::default()
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(entity_type.resource_type())
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(configs)])
        .with_validate_only(false);
    let resp: IncrementalAlterConfigsResponse = client.call(INCREMENTAL_ALTER_CONFIGS_V, &req)?;
    if let Some(r) = resp.responses.iter().find(|r| r.error_code != 0) {
        return Err(ToolError(error_message(r.error_code, r.error_message.as_ref())));
    }
    if name.is_empty() {
        writeln!(out, "Completed updating default config for {} in the cluster.", entity_type.plural())?;
    } else {
        writeln!(out, "Completed updating config for {} {name}.", entity_type.singular())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_config_lists_keep_their_commas() {
        let got = parse_add_config("a=1,b=[x,y],c=3").unwrap();
        assert_eq!(got, vec![("a".into(), "1".into()), ("b".into(), "x,y".into()), ("c".into(), "3".into())]);
        assert!(parse_add_config("novalue").is_err());
    }
}
