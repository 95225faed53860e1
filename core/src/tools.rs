//! `shardlog storage`: Kafka 3.7's `kafka-storage.sh` — `random-uuid` prints a new cluster id,
//! `format -t ID -c server.properties` writes `meta.properties` into the config's `log.dirs`.
//! Lives in core (not `shardlog-cli`) because it reuses the broker's own config loader and
//! `meta.properties` writer, so a formatted directory is exactly what `shardlog start` reads.

use std::io::Write;
use std::path::PathBuf;

use base64::Engine;
use clap::{Args, Subcommand};

use crate::config::BrokerConfig;
use crate::meta_properties::{self, MetaProperties};

/// The metadata.version Kafka 3.7's storage tool formats with.
pub const METADATA_VERSION: &str = "3.7-IV4";

/// Format log directories or print a new cluster id (Kafka's kafka-storage.sh).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    shardlog storage random-uuid\n  \
    shardlog storage format -t $(shardlog storage random-uuid) -c server.properties\n  \
    shardlog storage format -t MkU3OEVBNTcwNTJENDM2Qk -c server.properties --ignore-formatted")]
pub struct StorageArgs {
    #[command(subcommand)]
    pub command: StorageCommand,
}

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Print a random UUID to use as a cluster id (22 characters, URL-safe base64).
    RandomUuid,
    /// Write meta.properties (cluster id, node id) into the log directory of a config file.
    Format(FormatArgs),
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// The cluster id (e.g. from `shardlog storage random-uuid`).
    #[arg(long = "cluster-id", short = 't', value_name = "ID")]
    pub cluster_id: String,
    /// The server.properties file whose log.dirs to format.
    #[arg(long = "config", short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// Do not fail when the directory is already formatted with this cluster id.
    #[arg(long, short = 'g')]
    pub ignore_formatted: bool,
    /// Accepted for compatibility; only 3.7-IV4 is supported.
    #[arg(long, short = 'r', value_name = "VERSION")]
    pub release_version: Option<String>,
}

/// Runs the command; the error is the whole stderr line.
pub fn run(args: &StorageArgs, out: &mut dyn Write) -> Result<(), String> {
    match &args.command {
        StorageCommand::RandomUuid => {
            writeln!(out, "{}", meta_properties::random_uuid()).map_err(|e| e.to_string())
        }
        StorageCommand::Format(f) => format(f, out),
    }
}

fn format(args: &FormatArgs, out: &mut dyn Write) -> Result<(), String> {
    let id = &args.cluster_id;
    let valid = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .map(|bytes| bytes.len() == 16)
        .unwrap_or(false);
    if !valid {
        return Err(format!(
            "Cluster ID string {id} does not appear to be a valid UUID: expected 22 characters of URL-safe base64"
        ));
    }
    if let Some(v) = &args.release_version {
        if !METADATA_VERSION.starts_with(v.as_str()) {
            return Err(format!("Unsupported release version {v}: only {METADATA_VERSION} is supported"));
        }
    }
    let config = BrokerConfig::load(Some(&args.config), &[]).map_err(|e| e.to_string())?;
    let dir = &config.log_dir;
    match MetaProperties::read(dir).map_err(|e| format!("{e:#}"))? {
        Some(meta) if meta.cluster_id != *id => Err(format!(
            "Log directory {} is already formatted for cluster {}, not {id}",
            dir.display(),
            meta.cluster_id
        )),
        Some(meta) if meta.node_id != config.node_id => Err(format!(
            "Log directory {} is already formatted for node.id {}, not {}",
            dir.display(),
            meta.node_id,
            config.node_id
        )),
        Some(_) if args.ignore_formatted => {
            writeln!(out, "All of the log directories are already formatted.").map_err(|e| e.to_string())
        }
        Some(_) => Err(format!(
            "Log directory {} is already formatted. Use --ignore-formatted to ignore this directory and format the others.",
            dir.display()
        )),
        None => {
            let meta = MetaProperties {
                cluster_id: id.clone(),
                node_id: config.node_id,
                directory_id: meta_properties::random_uuid(),
            };
            meta.write(dir).map_err(|e| format!("{e:#}"))?;
            writeln!(out, "Formatting {} with metadata.version {METADATA_VERSION}.", dir.display())
                .map_err(|e| e.to_string())
        }
    }
}
