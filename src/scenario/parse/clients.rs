//! `[[client]]`: producers, consumers, transactional producers and pipelines.

use super::known::KnownTopics;
use super::sections::kafka_configs;
use super::table::{array_of_tables, boolean, int_in, q, string, strings, u32_in, Table};
use super::tree::Node;
use super::values::{ms_at_least, probability, rate_per_s, show_ms};
use super::{fail, Fail, Lines, Res, MAX_NODES};
use crate::scenario::configs::Scope;
use crate::scenario::model::{ClientKind, ClientSpec, CommitOrder, Configs, Keys};

const CLIENT_KEYS: &[&str] = &[
    "type",
    "id",
    "topic",
    "topics",
    "group",
    "members",
    "rate",
    "count",
    "keys",
    "at",
    "config",
    "commit",
    "processing",
    "handoff",
    "stall-at",
    "stall-for",
    "per-transaction",
    "abort",
];

fn client_keys(kind: ClientKind) -> &'static [&'static str] {
    match kind {
        ClientKind::Producer => &[
            "type", "id", "at", "config", "topic", "rate", "count", "keys",
        ],
        ClientKind::Transactional => &[
            "type",
            "id",
            "at",
            "config",
            "topic",
            "rate",
            "count",
            "keys",
            "per-transaction",
            "abort",
        ],
        ClientKind::Consumer => &[
            "type",
            "id",
            "at",
            "config",
            "topics",
            "group",
            "members",
            "commit",
            "processing",
            "handoff",
            "stall-at",
            "stall-for",
        ],
        ClientKind::Pipeline => &[
            "type",
            "id",
            "at",
            "config",
            "topics",
            "topic",
            "group",
            "members",
            "processing",
        ],
    }
}

fn client_kind_name(kind: ClientKind) -> &'static str {
    match kind {
        ClientKind::Producer => "producer",
        ClientKind::Consumer => "consumer",
        ClientKind::Transactional => "transactional",
        ClientKind::Pipeline => "pipeline",
    }
}

pub(super) fn clients(
    node: Option<&Node>,
    topics: &mut KnownTopics,
    duration_ms: u64,
    lines: &Lines,
) -> Res<Vec<ClientSpec>> {
    let mut out: Vec<ClientSpec> = Vec::new();
    for (i, node) in array_of_tables(node, "client")?.iter().enumerate() {
        let client = client(node, i + 1, topics, duration_ms, lines)?;
        let id_pos = Table::of(node, "")?.get("id").and_then(Node::pos);
        if out.iter().any(|c| c.id == client.id) {
            return fail(id_pos, format!("client id {} is used twice", q(&client.id)));
        }
        out.push(client);
    }
    // A group's members are named `<id>-1` … `<id>-N`: no client may take one of those names.
    for c in out.iter().filter(|c| c.group.is_some()) {
        if let Some(clash) = out
            .iter()
            .find(|o| (1..=c.members).any(|m| o.id == format!("{}-{m}", c.id)))
        {
            let message = format!(
                "client id {} is also the name of a member of client {}",
                q(&clash.id),
                q(&c.id)
            );
            return fail(lines_pos(lines, clash.line), message);
        }
    }
    Ok(out)
}

/// The offset of the start of a line, to point back at a line recorded earlier.
fn lines_pos(lines: &Lines, line: usize) -> Option<usize> {
    match line {
        0 => None,
        1 => Some(0),
        n => lines.starts.get(n - 2).copied(),
    }
}

fn client(
    node: &Node,
    index: usize,
    topics: &mut KnownTopics,
    duration_ms: u64,
    lines: &Lines,
) -> Res<ClientSpec> {
    let mut t = Table::of(node, format!("[[client]] #{index}"))?;
    t.name_by("id", "[[client]]");
    let kind = client_kind(&t)?;
    let kind_name = client_kind_name(kind);
    t.allow(
        client_keys(kind),
        CLIENT_KEYS,
        &format!("does not apply to a {kind_name} client"),
    )?;
    let id = client_id(&t)?;
    let start_ms = client_start_ms(&t, &id, duration_ms)?;
    let topic = topic_written(&t, topics)?;
    let topics_read = topics_read(&t, topics)?;
    let scopes = client_scopes(kind);
    let config_name = format!("the config of client {}", q(&id));
    let config = t
        .opt("config", |n, _| kafka_configs(n, scopes, &config_name))?
        .unwrap_or_default();
    let group = client_group(&t, &config)?;
    let members = t
        .opt("members", |n, w| u32_in(n, w, 1, MAX_NODES))?
        .unwrap_or(1);
    let spec = ClientSpec {
        kind,
        id,
        topic,
        topics: topics_read,
        group,
        members,
        rate_per_s: t.opt("rate", rate_per_s)?,
        count: t
            .opt("count", |n, w| int_in(n, w, 1, i64::MAX))?
            .map(|c| c as u64),
        keys: t.opt("keys", keys)?.unwrap_or(Keys::Random),
        commit: t.opt("commit", commit_order)?,
        processing_ms: t
            .opt("processing", |n, w| ms_at_least(n, w, 0))?
            .unwrap_or(0),
        handoff: t.opt("handoff", boolean)?.unwrap_or(false),
        stall: stall(&t)?,
        per_transaction: t
            .opt("per-transaction", |n, w| int_in(n, w, 1, 100_000))?
            .map_or(10, |n| n as u64),
        abort_ratio: t.opt("abort", probability)?.unwrap_or(0.0),
        start_ms,
        config,
        line: lines.line_of(node),
    };
    check_client(&t, &spec)?;
    Ok(spec)
}

/// `stall-at` and `stall-for`: both or neither.
fn stall(t: &Table) -> Res<Option<(u64, u64)>> {
    let at = t.opt("stall-at", |n, w| ms_at_least(n, w, 0))?;
    let length = t.opt("stall-for", |n, w| ms_at_least(n, w, 1))?;
    match (at, length) {
        (Some(at), Some(length)) => Ok(Some((at, length))),
        (None, None) => Ok(None),
        (Some(_), None) => fail(
            t.get("stall-at").and_then(Node::pos),
            format!(
                "{} needs `stall-for` (how long the stall lasts)",
                t.what("stall-at")
            ),
        ),
        (None, Some(_)) => fail(
            t.get("stall-for").and_then(Node::pos),
            format!(
                "{} needs `stall-at` (when the stall starts)",
                t.what("stall-for")
            ),
        ),
    }
}

/// `commit`: when a group consumer commits.
fn commit_order(node: &Node, what: &str) -> Res<CommitOrder> {
    match string(node, what)? {
        "after-processing" => Ok(CommitOrder::AfterProcessing),
        "after-processing-async" => Ok(CommitOrder::AfterProcessingAsync),
        "before-processing" => Ok(CommitOrder::BeforeProcessing),
        "auto" => Ok(CommitOrder::Auto),
        other => fail(
            node.pos(),
            format!(
                "{what} must be \"after-processing\", \"after-processing-async\", \"before-processing\" or \"auto\", found {}",
                q(other)
            ),
        ),
    }
}

/// `type`: which of the four kinds of client.
fn client_kind(t: &Table) -> Res<ClientKind> {
    let type_node = t.req("type")?;
    match string(type_node, &t.what("type"))? {
        "producer" => Ok(ClientKind::Producer),
        "consumer" => Ok(ClientKind::Consumer),
        "transactional" => Ok(ClientKind::Transactional),
        "pipeline" => Ok(ClientKind::Pipeline),
        other => {
            let message = format!(
                "unknown client type {} (types: producer, consumer, transactional, pipeline)",
                q(other)
            );
            fail(type_node.pos(), message)
        }
    }
}

fn client_id(t: &Table) -> Res<String> {
    let id_node = t.req("id")?;
    let id = string(id_node, &t.what("id"))?.to_string();
    check_client_id(&id).map_err(|m| Fail {
        pos: id_node.pos(),
        message: m,
    })?;
    Ok(id)
}

/// `at`: when the client starts, before the scenario ends.
fn client_start_ms(t: &Table, id: &str, duration_ms: u64) -> Res<u64> {
    let start_ms = t.opt("at", |n, w| ms_at_least(n, w, 0))?.unwrap_or(0);
    if start_ms >= duration_ms {
        let at = t.get("at").and_then(Node::pos);
        return fail(
            at,
            format!(
                "client {} starts at {}, when the scenario has ended ({})",
                q(id),
                show_ms(start_ms),
                show_ms(duration_ms)
            ),
        );
    }
    Ok(start_ms)
}

/// `topic`: the known (or auto-created) topic a producing client writes to.
fn topic_written(t: &Table, topics: &mut KnownTopics) -> Res<Option<String>> {
    t.opt("topic", |n, w| {
        let name = string(n, w)?;
        topics.for_client(name).map_err(|m| Fail {
            pos: n.pos(),
            message: format!("{w}: {m}"),
        })?;
        Ok(name.to_string())
    })
}

/// `topics`: the known (or auto-created) topics a consuming client reads, at least one, each once.
fn topics_read(t: &Table, topics: &mut KnownTopics) -> Res<Vec<String>> {
    let mut topics_read = Vec::new();
    let Some(n) = t.get("topics") else {
        return Ok(topics_read);
    };
    let what = t.what("topics");
    for (name, item) in strings(n, &what)? {
        topics.for_client(name).map_err(|m| Fail {
            pos: item.pos(),
            message: format!("{what}: {m}"),
        })?;
        if topics_read.iter().any(|t: &String| t == name) {
            return fail(item.pos(), format!("{what} lists topic {} twice", q(name)));
        }
        topics_read.push(name.to_string());
    }
    if topics_read.is_empty() {
        return fail(n.pos(), format!("{what} must name at least one topic"));
    }
    Ok(topics_read)
}

/// The Kafka configs a client takes: a pipeline both consumes and produces.
fn client_scopes(kind: ClientKind) -> &'static [Scope] {
    match kind {
        ClientKind::Producer | ClientKind::Transactional => &[Scope::Producer],
        ClientKind::Consumer => &[Scope::Consumer],
        ClientKind::Pipeline => &[Scope::Consumer, Scope::Producer],
    }
}

/// Client ids name history processes and fault targets: no spaces, no brackets, and nothing a
/// node target could be mistaken for.
fn check_client_id(id: &str) -> Result<(), String> {
    let legal = !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !legal {
        return Err(format!(
            "client id {} must be 1 to 100 of a-z, A-Z, 0-9, '.', '_' and '-'",
            q(id)
        ));
    }
    let node_like = ["broker-", "controller-"].iter().any(|p| {
        id.strip_prefix(p)
            .is_some_and(|n| n == "*" || n == "leader" || n.parse::<u32>().is_ok())
    });
    if node_like {
        return Err(format!(
            "client id {} would read as a node target; choose another",
            q(id)
        ));
    }
    Ok(())
}

fn keys(node: &Node, what: &str) -> Res<Keys> {
    match string(node, what)? {
        "random" => Ok(Keys::Random),
        "none" => Ok(Keys::None),
        "sequential" => Ok(Keys::Sequential),
        other => fail(
            node.pos(),
            format!(
                "{what} must be \"random\", \"none\" or \"sequential\", found {}",
                q(other)
            ),
        ),
    }
}

/// The group: `group`, or the config's `group.id`; both must agree.
fn client_group(t: &Table, config: &Configs) -> Res<Option<String>> {
    let from_config = config
        .get("group.id")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let Some(n) = t.get("group") else {
        return Ok(from_config);
    };
    let group = string(n, &t.what("group"))?;
    if group.is_empty()
        || !group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return fail(
            n.pos(),
            format!(
                "{} must be 1 or more of a-z, A-Z, 0-9, '.', '_' and '-', found {}",
                t.what("group"),
                q(group)
            ),
        );
    }
    if from_config.as_deref().is_some_and(|g| g != group) {
        return fail(
            n.pos(),
            format!(
                "{} is {} but its config's group.id says otherwise",
                t.what("group"),
                q(group)
            ),
        );
    }
    Ok(Some(group.to_string()))
}

/// What each client type needs, once its keys are read.
fn check_client(t: &Table, c: &ClientSpec) -> Res<()> {
    let name = client_kind_name(c.kind);
    let produces = matches!(
        c.kind,
        ClientKind::Producer | ClientKind::Transactional | ClientKind::Pipeline
    );
    let consumes = matches!(c.kind, ClientKind::Consumer | ClientKind::Pipeline);
    if produces && c.topic.is_none() {
        return fail(
            t.pos,
            format!("{name} {} needs a `topic` to write to", q(&c.id)),
        );
    }
    if consumes && c.topics.is_empty() {
        return fail(t.pos, format!("{name} {} needs `topics` to read", q(&c.id)));
    }
    if matches!(c.kind, ClientKind::Producer | ClientKind::Transactional)
        && c.rate_per_s.is_none()
        && c.count.is_none()
    {
        return fail(
            t.pos,
            format!(
                "{name} {} needs a `rate` (like \"200/s\"), a `count`, or both",
                q(&c.id)
            ),
        );
    }
    let workload = ["commit", "processing", "handoff", "stall-at", "stall-for"];
    if c.group.is_none() {
        if let Some(key) = workload.iter().find(|k| t.get(k).is_some()) {
            let at = t.get(key).and_then(Node::pos);
            return fail(at, format!("{name} {}: `{key}` needs a `group`", q(&c.id)));
        }
    }
    if c.kind == ClientKind::Pipeline && c.group.is_none() {
        return fail(
            t.pos,
            format!(
                "pipeline {} needs a `group`: its offsets commit within its transactions",
                q(&c.id)
            ),
        );
    }
    if c.kind == ClientKind::Pipeline && c.topic.as_ref().is_some_and(|out| c.topics.contains(out))
    {
        let at = t.get("topic").and_then(Node::pos);
        return fail(
            at,
            format!("pipeline {} writes to a topic it reads", q(&c.id)),
        );
    }
    if c.members > 1 && c.group.is_none() {
        let at = t.get("members").and_then(Node::pos);
        return fail(
            at,
            format!(
                "{} needs a `group` for its members to share",
                t.what("members")
            ),
        );
    }
    if c.kind == ClientKind::Producer && c.config.contains_key("transactional.id") {
        let message = format!(
            "producer {} sets transactional.id: make it type = \"transactional\"",
            q(&c.id)
        );
        return fail(t.get("config").and_then(Node::pos), message);
    }
    if let Some(conflict) = idempotence_conflict(&c.config) {
        let message = format!(
            "client {} sets enable.idempotence = true, which needs {conflict} \
             (Kafka's ConfigException)",
            q(&c.id)
        );
        return fail(t.get("config").and_then(Node::pos), message);
    }
    Ok(())
}

/// What an explicit `enable.idempotence = true` cannot live with (Kafka's
/// `ProducerConfig.postProcessAndValidateIdempotenceConfigs`): acks other than all, more than
/// five requests in flight, no retries.
fn idempotence_conflict(config: &Configs) -> Option<&'static str> {
    use crate::scenario::configs::{get_i64, get_str};
    let scope = Scope::Producer;
    let explicit = config.get("enable.idempotence").and_then(|v| v.as_bool());
    if explicit != Some(true) {
        return None;
    }
    let int = |name: &str| get_i64(config, name, scope);
    if get_str(config, "acks", scope).is_some_and(|a| a != "all" && a != "-1") {
        Some("acks = \"all\"")
    } else if int("max.in.flight.requests.per.connection").is_some_and(|n| n > 5) {
        Some("max.in.flight.requests.per.connection <= 5")
    } else if int("retries") == Some(0) {
        Some("retries > 0")
    } else {
        None
    }
}
