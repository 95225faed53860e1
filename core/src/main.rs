//! The `shardlog` binary: one clap CLI with a subcommand per job. `start` runs the broker;
//! `dump-log`, `topics`, `get-offsets`, `configs`, `console-producer`, `console-consumer`,
//! `consumer-groups` and `broker-api-versions` run tools in `shardlog-cli`; `storage` runs
//! `tools.rs`.
mod broker;
mod config;
mod control_plane;
mod controller;
mod errors;
mod group;
mod handlers;
mod meta_properties;
mod metadata;
mod metrics;
mod partition;
mod shard;
mod tools;
mod topic_config;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "shardlog",
    version,
    about = "Shardlog: a Kafka-wire-compatible event streaming broker",
    after_help = "Examples:\n  \
        shardlog start\n  \
        shardlog start --config server.properties --override log.dirs=/var/lib/shardlog\n  \
        shardlog dump-log --files /var/lib/shardlog/orders-0/00000000000000000000.log --print-data-log\n  \
        shardlog dump-log --help\n  \
        shardlog topics --bootstrap-server localhost:9092 --create --topic orders --partitions 3\n  \
        shardlog get-offsets --bootstrap-server localhost:9092 --topic orders\n  \
        shardlog console-producer --bootstrap-server localhost:9092 --topic orders --property parse.key=true --property key.separator=:\n  \
        shardlog console-consumer --bootstrap-server localhost:9092 --topic orders --from-beginning\n  \
        shardlog configs --bootstrap-server localhost:9092 --entity-type topics --entity-name orders --describe\n  \
        shardlog consumer-groups --bootstrap-server localhost:9092 --describe --group orders-app\n  \
        shardlog storage random-uuid\n  \
        shardlog broker-api-versions --bootstrap-server localhost:9092"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a broker: with no arguments, one broker on 127.0.0.1:9092 with data in ./shardlog-data.
    Start(StartArgs),
    // About and help text come from `DumpLogArgs` (a doc comment here would replace them).
    DumpLog(shardlog_cli::dump_log::DumpLogArgs),
    Topics(shardlog_cli::topics::TopicsArgs),
    GetOffsets(shardlog_cli::get_offsets::GetOffsetsArgs),
    Configs(shardlog_cli::configs::ConfigsArgs),
    ConsoleProducer(shardlog_cli::console_producer::ConsoleProducerArgs),
    ConsoleConsumer(shardlog_cli::console_consumer::ConsoleConsumerArgs),
    ConsumerGroups(shardlog_cli::consumer_groups::ConsumerGroupsArgs),
    BrokerApiVersions(shardlog_cli::broker_api_versions::BrokerApiVersionsArgs),
    Storage(tools::StorageArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    shardlog start\n  \
    shardlog start --config /etc/shardlog/server.properties\n  \
    shardlog start server.properties --override log.dirs=/var/lib/shardlog --override num.shards=4")]
struct StartArgs {
    /// A server.properties file (Kafka's keys; unknown keys are refused).
    #[arg(long, short = 'c')]
    config: Option<std::path::PathBuf>,
    /// Override one property, as kafka-server-start.sh --override (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// The properties file may also be given without --config, as kafka-server-start.sh takes it.
    #[arg(value_name = "SERVER_PROPERTIES", conflicts_with = "config")]
    config_positional: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Start(args) => start(args),
        Command::DumpLog(args) => dump_log(&args),
        Command::Topics(args) => client_tool(|out| shardlog_cli::topics::run(&args, out).map_err(|e| e.0)),
        Command::GetOffsets(args) => {
            client_tool(|out| shardlog_cli::get_offsets::run(&args, out).map_err(|e| e.0))
        }
        Command::Configs(args) => client_tool(|out| shardlog_cli::configs::run(&args, out).map_err(|e| e.0)),
        Command::ConsoleProducer(args) => console_producer(&args),
        Command::ConsoleConsumer(args) => console_consumer(&args),
        Command::ConsumerGroups(args) => client_tool(|out| {
            shardlog_cli::consumer_groups::run(&args, out, &mut io::stderr()).map_err(|e| e.0)
        }),
        Command::BrokerApiVersions(args) => {
            client_tool(|out| shardlog_cli::broker_api_versions::run(&args, out).map_err(|e| e.0))
        }
        Command::Storage(args) => client_tool(|out| tools::run(&args, out)),
    }
}

fn start(args: StartArgs) -> ExitCode {
    shardlog_net::alloc::keep_large_allocations_in_the_heap();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&io::stderr()))
        .init();
    let file = args.config.or(args.config_positional);
    let config = match config::BrokerConfig::load(file.as_deref(), &args.overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match broker::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dump_log(args: &shardlog_cli::dump_log::DumpLogArgs) -> ExitCode {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut err = io::stderr().lock();
    match shardlog_cli::dump_log::run(args, &mut out, &mut err) {
        Ok(outcome) if outcome.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        // A reader that went away (`| head`) is not worth a message.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::FAILURE,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `console-producer`: records from stdin; a failed record is a stderr line and makes the exit
/// non-zero.
fn console_producer(args: &shardlog_cli::console_producer::ConsoleProducerArgs) -> ExitCode {
    let interactive = std::io::IsTerminal::is_terminal(&io::stdin());
    let mut out = io::stdout().lock();
    let mut err = io::stderr().lock();
    match shardlog_cli::console_producer::run(args, io::stdin().lock(), interactive, &mut out, &mut err) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            let _ = writeln!(err, "{e}");
            ExitCode::FAILURE
        }
    }
}

/// `console-consumer`: SIGINT and SIGTERM stop it cleanly (the record count is still printed).
fn console_consumer(args: &shardlog_cli::console_consumer::ConsoleConsumerArgs) -> ExitCode {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(signal, std::sync::Arc::clone(&stop));
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut err = io::stderr().lock();
    let result = shardlog_cli::console_consumer::run(args, &mut out, &mut err, &stop);
    let _ = out.flush();
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(err, "{e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a tool that writes to stdout and fails with one line: the line goes to stderr and the
/// exit is non-zero.
fn client_tool(run: impl FnOnce(&mut dyn Write) -> Result<(), String>) -> ExitCode {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = run(&mut out);
    let flushed = out.flush();
    match result {
        Ok(()) if flushed.is_ok() => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
        Err(line) => {
            let _ = writeln!(io::stderr(), "{line}");
            ExitCode::FAILURE
        }
    }
}
