//! `shardlog broker-api-versions`: Kafka 3.7's `kafka-broker-api-versions.sh` — for each node
//! in Metadata (every shard is a node), the API version ranges it advertises, in Kafka's
//! `NodeApiVersions.toString(true)` layout.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use shardlog_net::kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use shardlog_net::kafka_protocol::protocol::StrBytes;

use crate::admin::{self, error_text, ToolError};
use crate::client::{timeout_from_command_config, Client};

const API_VERSIONS_V: i16 = 3;
/// Kafka 3.7's last API key (ListClientMetricsResources): the APIs its client knows.
const LAST_KAFKA_37_KEY: i16 = 74;

/// Print the API versions each node supports (Kafka's kafka-broker-api-versions.sh).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    shardlog broker-api-versions --bootstrap-server localhost:9092")]
pub struct BrokerApiVersionsArgs {
    /// The broker to connect to: HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, value_name = "HOST:PORT", required = true)]
    pub bootstrap_server: String,
    /// Client properties file; request.timeout.ms is honoured, other keys are ignored.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
}

pub fn run(args: &BrokerApiVersionsArgs, out: &mut dyn Write) -> Result<(), ToolError> {
    let timeout = timeout_from_command_config(args.command_config.as_deref()).map_err(ToolError)?;
    let mut bootstrap = admin::connect_bootstrap(&args.bootstrap_server, timeout)?;
    let md = admin::metadata(&mut bootstrap, Some(&[]))?;
    let mut brokers: Vec<_> = md.brokers.iter().collect();
    brokers.sort_by_key(|b| b.node_id.0);
    for b in brokers {
        let addr = format!("{}:{}", b.host.as_str(), b.port);
        let rack = b.rack.as_ref().map(|r| r.to_string()).unwrap_or_else(|| "null".into());
        let mut client = Client::connect(&addr, timeout)?;
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("shardlog-cli"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let resp: ApiVersionsResponse = client.call(API_VERSIONS_V, &req)?;
        if resp.error_code != 0 {
            return Err(ToolError(format!("{addr}: {}", error_text(resp.error_code))));
        }
        writeln!(out, "{addr} (id: {} rack: {rack}) -> {}", b.node_id.0, node_text(&resp))?;
    }
    Ok(())
}

/// `NodeApiVersions.toString(true)`: every API the client knows (or the node advertises), in
/// key order, one per line.
fn node_text(resp: &ApiVersionsResponse) -> String {
    let mut lines = std::collections::BTreeMap::new();
    for k in ApiKey::iter().filter(|k| (*k as i16) <= LAST_KAFKA_37_KEY) {
        lines.insert(k as i16, format!("{k:?}({}): UNSUPPORTED", k as i16));
    }
    for v in &resp.api_keys {
        let mut text = String::new();
        let known = ApiKey::try_from(v.api_key).ok();
        match known {
            Some(k) => text.push_str(&format!("{k:?}({}): ", v.api_key)),
            None => text.push_str(&format!("UNKNOWN({}): ", v.api_key)),
        }
        if v.min_version == v.max_version {
            text.push_str(&v.min_version.to_string());
        } else {
            text.push_str(&format!("{} to {}", v.min_version, v.max_version));
        }
        if let Some(k) = known {
            let ours = k.valid_versions();
            if ours.max < v.min_version {
                text.push_str(" [unusable: node too new]");
            } else if v.max_version < ours.min {
                text.push_str(" [unusable: node too old]");
            } else {
                text.push_str(&format!(" [usable: {}]", ours.max.min(v.max_version)));
            }
        }
        lines.insert(v.api_key, text);
    }
    let mut s = String::from("(");
    let mut first = true;
    for line in lines.values() {
        if !first {
            s.push(',');
        }
        first = false;
        s.push_str("\n\t");
        s.push_str(line);
    }
    s.push_str("\n)");
    s
}
