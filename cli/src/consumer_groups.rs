//! `shardlog consumer-groups`: Kafka 3.7's `kafka-consumer-groups.sh` (ConsumerGroupCommand)
//! for classic groups — `--list` (ListGroups at every node), `--describe` (DescribeGroups and
//! OffsetFetch at the coordinator, ListOffsets at each leader), `--reset-offsets` (OffsetCommit
//! with generation -1, refused while the group has members) and `--delete` (DeleteGroups).
//!
//! Tables are printed with Kafka's column formats; notes Kafka prints to stderr go to `err`;
//! a failure is one stderr line and a non-zero exit.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use bytes::{Buf, Bytes};
use clap::{ArgGroup, Args};
use shardlog_net::kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use shardlog_net::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use shardlog_net::kafka_protocol::messages::{
    BrokerId, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerProtocolAssignment,
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, ListGroupsRequest, ListGroupsResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse,
};
use shardlog_net::kafka_protocol::protocol::{Decodable, StrBytes};
use shardlog_net::kafka_protocol::ResponseError;

use crate::admin::{self, error_message, error_name, ToolError};
use crate::client::{timeout_from_command_config, Client};

const FIND_COORDINATOR_V: i16 = 3;
const LIST_GROUPS_V: i16 = 4;
const DESCRIBE_GROUPS_V: i16 = 5;
const CONSUMER_GROUP_DESCRIBE_V: i16 = 0;
const DELETE_GROUPS_V: i16 = 2;
const OFFSET_FETCH_V: i16 = 7;
const OFFSET_COMMIT_V: i16 = 8;
const LIST_OFFSETS_V: i16 = 7;
const MISSING: &str = "-";

/// List, describe, reset the offsets of, or delete consumer groups (Kafka's kafka-consumer-groups.sh).
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("action").required(true).args(["list", "describe", "reset_offsets", "delete"])),
    group(ArgGroup::new("reset_spec").args(["to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime", "by_duration"])),
    after_help = "Examples:\n  \
        shardlog consumer-groups --bootstrap-server localhost:9092 --list\n  \
        shardlog consumer-groups --bootstrap-server localhost:9092 --describe --group orders-app\n  \
        shardlog consumer-groups --bootstrap-server localhost:9092 --describe --group orders-app --members\n  \
        shardlog consumer-groups --bootstrap-server localhost:9092 --describe --group orders-app --state\n  \
        shardlog consumer-groups --bootstrap-server localhost:9092 --reset-offsets --group orders-app --topic orders --to-earliest --execute\n  \
        shardlog consumer-groups --bootstrap-server localhost:9092 --delete --group orders-app"
)]
pub struct ConsumerGroupsArgs {
    /// The broker to connect to: HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, value_name = "HOST:PORT", required = true)]
    pub bootstrap_server: String,
    /// List every consumer group.
    #[arg(long)]
    pub list: bool,
    /// Describe the group: its committed offsets, log end offsets and lag per partition.
    #[arg(long, requires = "group")]
    pub describe: bool,
    /// With --describe: the group's members instead of its offsets.
    #[arg(long, requires = "describe", conflicts_with = "state")]
    pub members: bool,
    /// With --describe: the group's coordinator, assignment strategy, state and member count.
    #[arg(long, requires = "describe")]
    pub state: bool,
    /// Reset the group's committed offsets (a dry run that prints the plan unless --execute).
    #[arg(long, requires = "group", requires = "reset_spec")]
    pub reset_offsets: bool,
    /// Delete the group (it must have no active members).
    #[arg(long, requires = "group")]
    pub delete: bool,
    /// The consumer group.
    #[arg(long)]
    pub group: Option<String>,
    /// With --reset-offsets: the topic, optionally with partitions (TOPIC or TOPIC:0,1).
    #[arg(long, conflicts_with = "all_topics")]
    pub topic: Vec<String>,
    /// With --reset-offsets: every topic the group has committed offsets for.
    #[arg(long)]
    pub all_topics: bool,
    /// Reset to the earliest offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// Reset to the latest offset.
    #[arg(long)]
    pub to_latest: bool,
    /// Reset to this offset (clamped to the partition's range).
    #[arg(long, value_name = "OFFSET", allow_hyphen_values = true)]
    pub to_offset: Option<i64>,
    /// Move the committed offset by N (may be negative; clamped to the partition's range).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Reset to the first offset at or after this time: YYYY-MM-DDTHH:mm:SS.sss, optionally with
    /// a zone (Z, +HH:MM); without one the time is UTC.
    #[arg(long, value_name = "DATETIME")]
    pub to_datetime: Option<String>,
    /// Reset to the first offset at or after now minus this ISO-8601 duration (PnDTnHnMnS).
    #[arg(long, value_name = "DURATION")]
    pub by_duration: Option<String>,
    /// Only print the plan (the default).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    pub execute: bool,
    /// Client properties file; request.timeout.ms is honoured, other keys are ignored.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
}

fn fail(what: &str, code: i16) -> ToolError {
    ToolError(format!("{what}: {}: {}", error_name(code), error_message(code, None)))
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

pub fn run(args: &ConsumerGroupsArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), ToolError> {
    let timeout = timeout_from_command_config(args.command_config.as_deref()).map_err(ToolError)?;
    if args.reset_offsets && args.topic.is_empty() && !args.all_topics {
        return Err(ToolError(
            "Error: Option --reset-offsets takes the option: --topic or --all-topics".into(),
        ));
    }
    // Parse before connecting: a bad flag sends no request.
    let at_time = match (&args.to_datetime, &args.by_duration) {
        (Some(text), _) => Some(parse_datetime(text).ok_or_else(|| {
            ToolError(format!("Error: --to-datetime '{text}' is not of the form YYYY-MM-DDTHH:mm:SS.sss"))
        })?),
        (_, Some(text)) => {
            let ms = parse_duration(text).ok_or_else(|| {
                ToolError(format!("Error: --by-duration '{text}' is not an ISO-8601 duration (PnDTnHnMnS)"))
            })?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            Some(now - ms)
        }
        _ => None,
    };
    let mut bootstrap = admin::connect_bootstrap(&args.bootstrap_server, timeout)?;
    let md = admin::metadata(&mut bootstrap, None)?;
    let mut tool = Tool { nodes: admin::node_addresses(&md), md, clients: BTreeMap::new(), timeout };
    if args.list {
        return list(&mut tool, out);
    }
    let group = args.group.as_deref().expect("clap requires --group");
    let (coordinator_id, coordinator) = find_coordinator(&mut bootstrap, group, timeout)?;
    let mut coordinator = coordinator;
    if args.delete {
        return delete(&mut coordinator, group, out);
    }
    let described = describe_group(&mut coordinator, group)?;
    if args.describe && described.state == "Dead" {
        return Err(ToolError(format!("Error: Consumer group '{group}' does not exist.")));
    }
    if args.describe && args.state {
        let addr = coordinator.addr().to_string();
        return print_state(group, &addr, coordinator_id, &described, out);
    }
    if args.describe && args.members {
        return print_members(group, &described, err, out);
    }
    let committed = fetch_offsets(&mut coordinator, group)?;
    if args.describe {
        return describe(&mut tool, group, &described, &committed, out, err);
    }
    reset(args, at_time, &mut tool, &mut coordinator, group, &described, &committed, out, err)
}

struct Tool {
    md: MetadataResponse,
    nodes: BTreeMap<i32, String>,
    clients: BTreeMap<i32, Client>,
    timeout: Duration,
}

impl Tool {
    fn client(&mut self, node: i32) -> Result<&mut Client, ToolError> {
        if !self.clients.contains_key(&node) {
            let addr =
                self.nodes.get(&node).ok_or_else(|| ToolError(format!("No address for node {node}")))?;
            self.clients.insert(node, Client::connect(addr, self.timeout)?);
        }
        Ok(self.clients.get_mut(&node).expect("connected above"))
    }

    fn partitions(&self, topic: &str) -> Option<Vec<(i32, i32)>> {
        admin::partition_leaders(&self.md, topic)
    }

    /// The offset of `topic`-`partition` at `time` (-1 latest, -2 earliest), from its leader.
    fn list_offset(&mut self, topic: &str, partition: i32, time: i64) -> Result<i64, ToolError> {
        let leader = self
            .partitions(topic)
            .and_then(|ps| ps.into_iter().find(|(p, _)| *p == partition))
            .map(|(_, l)| l)
            .ok_or_else(|| ToolError(format!("Error: Topic-partition {topic}-{partition} does not exist")))?;
        let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
            ListOffsetsTopic::default().with_name(admin::topic_name(topic)).with_partitions(vec![
                ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(time)
                    .with_current_leader_epoch(-1),
            ]),
        ]);
        let resp: ListOffsetsResponse = self.client(leader)?.call(LIST_OFFSETS_V, &req)?;
        let p = resp
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| ToolError(format!("no offset for {topic}-{partition}")))?;
        if p.error_code != 0 {
            return Err(fail(&format!("ListOffsets {topic}-{partition}"), p.error_code));
        }
        Ok(p.offset)
    }
}

fn list(tool: &mut Tool, out: &mut dyn Write) -> Result<(), ToolError> {
    let mut groups = BTreeSet::new();
    let nodes: Vec<i32> = tool.nodes.keys().copied().collect();
    for node in nodes {
        let resp: ListGroupsResponse =
            tool.client(node)?.call(LIST_GROUPS_V, &ListGroupsRequest::default())?;
        if resp.error_code != 0 {
            return Err(fail("ListGroups", resp.error_code));
        }
        groups.extend(resp.groups.iter().map(|g| g.group_id.0.to_string()));
    }
    for g in groups {
        writeln!(out, "{g}")?;
    }
    Ok(())
}

fn find_coordinator(
    bootstrap: &mut Client,
    group: &str,
    timeout: Duration,
) -> Result<(i32, Client), ToolError> {
    let req = FindCoordinatorRequest::default().with_key(s(group)).with_key_type(0);
    let resp: FindCoordinatorResponse = bootstrap.call(FIND_COORDINATOR_V, &req)?;
    if resp.error_code != 0 {
        return Err(fail("FindCoordinator", resp.error_code));
    }
    let client = Client::connect(&format!("{}:{}", resp.host.as_str(), resp.port), timeout)?;
    Ok((resp.node_id.0, client))
}

struct Member {
    id: String,
    client_id: String,
    host: String,
    /// topic -> partitions assigned.
    assignment: BTreeMap<String, Vec<i32>>,
}

struct Described {
    state: String,
    protocol: String,
    members: Vec<Member>,
}

fn decode_assignment(mut bytes: Bytes) -> BTreeMap<String, Vec<i32>> {
    let mut out = BTreeMap::new();
    if bytes.remaining() < 2 {
        return out;
    }
    let version = bytes.get_i16().clamp(0, 3);
    if let Ok(a) = ConsumerProtocolAssignment::decode(&mut bytes, version) {
        for t in a.assigned_partitions {
            let mut ps = t.partitions.clone();
            ps.sort_unstable();
            out.entry(t.topic.0.to_string()).or_insert_with(Vec::new).extend(ps);
        }
    }
    out
}

fn describe_group(coordinator: &mut Client, group: &str) -> Result<Described, ToolError> {
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
    let resp: DescribeGroupsResponse = coordinator.call(DESCRIBE_GROUPS_V, &req)?;
    let g = resp.groups.into_iter().next().ok_or_else(|| ToolError("DescribeGroups: empty answer".into()))?;
    if g.error_code != 0 {
        return Err(fail("DescribeGroups", g.error_code));
    }
    if g.group_state.as_str() == "Dead" {
        // DescribeGroups below v6 calls a KIP-848 consumer group "Dead" (as Kafka 4 does);
        // such a group describes itself through ConsumerGroupDescribe, as Kafka 4's tool asks.
        if let Some(described) = describe_consumer_group(coordinator, group)? {
            return Ok(described);
        }
    }
    let mut members: Vec<Member> = g
        .members
        .into_iter()
        .map(|m| Member {
            id: m.member_id.to_string(),
            client_id: m.client_id.to_string(),
            // The broker does not record peer addresses yet (empty host): shown as missing.
            host: if m.client_host.is_empty() { MISSING.to_string() } else { m.client_host.to_string() },
            assignment: decode_assignment(m.member_assignment),
        })
        .collect();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Described { state: g.group_state.to_string(), protocol: g.protocol_data.to_string(), members })
}

/// A group of the consumer protocol (KIP-848) through ConsumerGroupDescribe; `None` when the
/// coordinator knows no such group (it really is dead, or not a consumer group).
fn describe_consumer_group(coordinator: &mut Client, group: &str) -> Result<Option<Described>, ToolError> {
    let req = ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(group))]);
    let resp: ConsumerGroupDescribeResponse = coordinator.call(CONSUMER_GROUP_DESCRIBE_V, &req)?;
    let Some(g) = resp.groups.into_iter().next() else { return Ok(None) };
    if g.error_code == ResponseError::GroupIdNotFound.code() {
        return Ok(None);
    }
    if g.error_code != 0 {
        return Err(fail("ConsumerGroupDescribe", g.error_code));
    }
    let mut members: Vec<Member> = g
        .members
        .into_iter()
        .map(|m| {
            let mut assignment: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for t in m.assignment.topic_partitions {
                assignment.entry(t.topic_name.0.to_string()).or_default().extend(t.partitions);
            }
            assignment.values_mut().for_each(|ps| ps.sort_unstable());
            Member {
                id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                host: if m.client_host.is_empty() { MISSING.to_string() } else { m.client_host.to_string() },
                assignment,
            }
        })
        .collect();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Some(Described { state: g.group_state.to_string(), protocol: g.assignor_name.to_string(), members }))
}

/// Every committed offset of the group: (topic, partition) -> offset.
fn fetch_offsets(coordinator: &mut Client, group: &str) -> Result<BTreeMap<(String, i32), i64>, ToolError> {
    let req = OffsetFetchRequest::default().with_group_id(GroupId(s(group))).with_topics(None);
    let resp: OffsetFetchResponse = coordinator.call(OFFSET_FETCH_V, &req)?;
    if resp.error_code != 0 {
        return Err(fail("OffsetFetch", resp.error_code));
    }
    let mut out = BTreeMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            if p.error_code == 0 && p.committed_offset >= 0 {
                out.insert((t.name.0.to_string(), p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// Kafka's `%-Ns` for each of `widths`, columns joined by one space, the last unpadded.
fn row(cells: &[&str], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        match widths.get(i) {
            Some(&w) => line.push_str(&format!("{cell:<w$}")),
            None => line.push_str(cell),
        }
    }
    line
}

fn describe(
    tool: &mut Tool,
    group: &str,
    d: &Described,
    committed: &BTreeMap<(String, i32), i64>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), ToolError> {
    // (topic, partition) -> the member it is assigned to.
    let mut owner: BTreeMap<(String, i32), &Member> = BTreeMap::new();
    for m in &d.members {
        for (t, ps) in &m.assignment {
            for p in ps {
                owner.insert((t.clone(), *p), m);
            }
        }
    }
    let keys: BTreeSet<(String, i32)> = owner.keys().chain(committed.keys()).cloned().collect();
    let mut rows: Vec<[String; 9]> = Vec::new();
    for (topic, partition) in &keys {
        let end = tool.list_offset(topic, *partition, -1).ok();
        let current = committed.get(&(topic.clone(), *partition)).copied();
        let lag = match (current, end) {
            (Some(c), Some(e)) => Some((e - c).max(0)),
            _ => None,
        };
        let m = owner.get(&(topic.clone(), *partition));
        let opt = |v: Option<i64>| v.map_or(MISSING.to_string(), |v| v.to_string());
        rows.push([
            group.to_string(),
            topic.clone(),
            partition.to_string(),
            opt(current),
            opt(end),
            opt(lag),
            m.map_or(MISSING.to_string(), |m| m.id.clone()),
            m.map_or(MISSING.to_string(), |m| m.host.clone()),
            m.map_or(MISSING.to_string(), |m| m.client_id.clone()),
        ]);
    }
    match d.state.as_str() {
        "Empty" => writeln!(err, "\nConsumer group '{group}' has no active members.")?,
        "PreparingRebalance" | "CompletingRebalance" | "AssigningPartitions" | "Reconciling" => {
            writeln!(err, "\nWarning: Consumer group '{group}' is rebalancing.")?
        }
        _ => {}
    }
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0).max(15);
    let widths = [width(0), width(1), 10, 15, 15, 15, width(6), width(7)];
    let header = [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ];
    writeln!(out, "\n{}", row(&header, &widths))?;
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        writeln!(out, "{}", row(&cells, &widths))?;
    }
    Ok(())
}

fn print_members(
    group: &str,
    d: &Described,
    err: &mut dyn Write,
    out: &mut dyn Write,
) -> Result<(), ToolError> {
    if d.state == "Empty" {
        writeln!(err, "\nConsumer group '{group}' has no active members.")?;
    }
    let rows: Vec<[String; 5]> = d
        .members
        .iter()
        .map(|m| {
            let n: usize = m.assignment.values().map(Vec::len).sum();
            [group.to_string(), m.id.clone(), m.host.clone(), m.client_id.clone(), n.to_string()]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0).max(15);
    let widths = [width(0), width(1), width(2), width(3)];
    writeln!(out, "\n{}", row(&["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"], &widths))?;
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        writeln!(out, "{}", row(&cells, &widths))?;
    }
    Ok(())
}

fn print_state(
    group: &str,
    addr: &str,
    id: i32,
    d: &Described,
    out: &mut dyn Write,
) -> Result<(), ToolError> {
    let coordinator = format!("{addr}  ({id})");
    let widths = [group.len().max(15), coordinator.len().max(25), 20, 20];
    writeln!(
        out,
        "\n{}",
        row(&["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"], &widths)
    )?;
    let members = d.members.len().to_string();
    writeln!(out, "{}", row(&[group, &coordinator, &d.protocol, &d.state, &members], &widths))?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn reset(
    args: &ConsumerGroupsArgs,
    at_time: Option<i64>,
    tool: &mut Tool,
    coordinator: &mut Client,
    group: &str,
    d: &Described,
    committed: &BTreeMap<(String, i32), i64>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), ToolError> {
    if d.state != "Empty" && d.state != "Dead" {
        return Err(ToolError(format!(
            "Error: Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
            d.state
        )));
    }
    // The partitions to reset, sorted.
    let mut targets: BTreeSet<(String, i32)> = BTreeSet::new();
    if args.all_topics {
        targets.extend(committed.keys().cloned());
    } else {
        for spec in &args.topic {
            let (topic, parts) = match spec.split_once(':') {
                Some((t, ps)) => (t, Some(ps)),
                None => (spec.as_str(), None),
            };
            let all = tool
                .partitions(topic)
                .ok_or_else(|| ToolError(format!("Error: Topic '{topic}' does not exist")))?;
            match parts {
                None => targets.extend(all.iter().map(|(p, _)| (topic.to_string(), *p))),
                Some(ps) => {
                    for p in ps.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        let p: i32 = p
                            .parse()
                            .map_err(|_| ToolError(format!("Error: bad partition '{p}' in '{spec}'")))?;
                        targets.insert((topic.to_string(), p));
                    }
                }
            }
        }
    }
    let mut plan: Vec<(String, i32, i64)> = Vec::with_capacity(targets.len());
    for (topic, p) in targets {
        let earliest = tool.list_offset(&topic, p, -2)?;
        let latest = tool.list_offset(&topic, p, -1)?;
        let clamp = |o: i64| o.clamp(earliest, latest);
        let new = if args.to_earliest {
            earliest
        } else if args.to_latest {
            latest
        } else if let Some(o) = args.to_offset {
            clamp(o)
        } else if let Some(time) = at_time {
            // No record at or after the time: the log end, as Kafka does.
            match tool.list_offset(&topic, p, time)? {
                -1 => latest,
                o => clamp(o),
            }
        } else if let Some(n) = args.shift_by {
            let current = committed.get(&(topic.clone(), p)).copied().unwrap_or(latest);
            clamp(current.saturating_add(n))
        } else {
            return Err(ToolError(
                "Error: Option --reset-offsets needs one of --to-earliest, --to-latest, --to-offset, --shift-by, --to-datetime, --by-duration"
                    .into(),
            ));
        };
        plan.push((topic, p, new));
    }
    if args.execute {
        commit(coordinator, group, &plan)?;
    } else if !args.dry_run {
        writeln!(
            err,
            "WARN: No action will be performed as the --execute option is missing. In a future major release, the default behavior of this command will be to prompt the user before executing the reset rather than doing a dry run. You should add the --dry-run option explicitly if you are scripting this command and want to keep the current default behavior without prompting."
        )?;
    }
    let widths = [30, 30, 10, 15];
    writeln!(out, "\n{}", row(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &widths))?;
    for (topic, p, new) in &plan {
        writeln!(out, "{}", row(&[group, topic, &p.to_string(), &new.to_string()], &widths))?;
    }
    Ok(())
}

fn commit(coordinator: &mut Client, group: &str, plan: &[(String, i32, i64)]) -> Result<(), ToolError> {
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (topic, p, offset) in plan {
        by_topic.entry(topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(t, ps)| {
            OffsetCommitRequestTopic::default().with_name(admin::topic_name(t)).with_partitions(ps)
        })
        .collect();
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::default())
        .with_topics(topics);
    let resp: OffsetCommitResponse = coordinator.call(OFFSET_COMMIT_V, &req)?;
    for t in &resp.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(fail(
                    &format!("OffsetCommit {}-{}", t.name.0.as_str(), p.partition_index),
                    p.error_code,
                ));
            }
        }
    }
    Ok(())
}

fn delete(coordinator: &mut Client, group: &str, out: &mut dyn Write) -> Result<(), ToolError> {
    let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))]);
    let resp: DeleteGroupsResponse = coordinator.call(DELETE_GROUPS_V, &req)?;
    let code = resp.results.iter().find(|r| r.group_id.0.as_str() == group).map_or(0, |r| r.error_code);
    match code {
        0 => {
            writeln!(out, "Deletion of requested consumer groups ('{group}') was successful.")?;
            Ok(())
        }
        code => Err(ToolError(format!(
            "Error: Deletion of some consumer groups failed: Group '{group}' could not be deleted due to: {}: {}",
            error_name(code),
            error_message(code, None)
        ))),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:mm:SS[.sss][Z|±HH:MM|±HHMM]` as epoch milliseconds (no zone: UTC).
pub fn parse_datetime(text: &str) -> Option<i64> {
    let (date, rest) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|n| n.parse::<i64>().ok());
    let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
    let (clock, offset_ms) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, zone) = rest.split_at(i);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let (h, m): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
        (c, sign * (h * 60 + m) * 60_000)
    } else {
        (rest, 0)
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    let mut c = hms.splitn(3, ':').map(|n| n.parse::<i64>().ok());
    let (h, mi, s) = (c.next()??, c.next()??, c.next().unwrap_or(Some(0))?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    if frac.is_empty() || frac.len() > 9 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    let secs = days_from_civil(y, mo, day) * 86_400 + h * 3_600 + mi * 60 + s;
    Some(secs * 1_000 + ms - offset_ms)
}

/// An ISO-8601 duration `PnDTnHnMn[.n]S` (Java's `Duration.parse`) in milliseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let rest = text.strip_prefix('P').or_else(|| text.strip_prefix('p'))?;
    let (days, time) = match rest.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut ms = 0i64;
    let mut any = false;
    if !days.is_empty() {
        ms += days.strip_suffix(['D', 'd'])?.parse::<i64>().ok()? * 86_400_000;
        any = true;
    }
    if let Some(mut time) = time {
        if time.is_empty() {
            return None;
        }
        for (unit, scale) in [('H', 3_600_000f64), ('M', 60_000f64), ('S', 1_000f64)] {
            if let Some(i) = time.find([unit, unit.to_ascii_lowercase()]) {
                let n: f64 = time[..i].parse().ok()?;
                ms += (n * scale).round() as i64;
                time = &time[i + 1..];
                any = true;
            }
        }
        if !time.is_empty() {
            return None;
        }
    }
    any.then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_and_durations_parse_like_kafka() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000"), Some(0));
        assert_eq!(parse_datetime("2024-02-29T12:30:15.250Z"), Some(1_709_209_815_250));
        assert_eq!(parse_datetime("2024-02-29T13:30:15.250+01:00"), Some(1_709_209_815_250));
        assert_eq!(parse_datetime("2024-02-29T12:30:15"), Some(1_709_209_815_000));
        assert_eq!(parse_datetime("2024-13-01T00:00:00"), None);
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(parse_duration("PT0.5S"), Some(500));
        assert_eq!(parse_duration("P1DT2H3M4S"), Some(93_784_000));
        assert_eq!(parse_duration("PT15M"), Some(900_000));
        assert_eq!(parse_duration("P"), None);
        assert_eq!(parse_duration("PT"), None);
        assert_eq!(parse_duration("15m"), None);
    }
}
