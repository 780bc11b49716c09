//! The tables written once (`[cluster]`, `[protocol]`, `[network]`, `[disk]`, `[expect]`), and
//! the tables of Kafka configs that the cluster, the topics and the clients carry.

use super::table::{boolean, found, int_in, q, string, strings, u32_in, Table};
use super::tree::{Key, Kind, Node};
use super::values::{ms_at_least, probability, range_us};
use super::{fail, Fail, Res, MAX_NODES};
use crate::scenario::configs::{self, Scope};
use crate::scenario::model::{
    ClusterSpec, ConfigValue, Configs, DiskSpec, Expect, NetworkSpec, ProtocolSpec, RangeUs,
    Truncation, CHECK_NAMES,
};

pub(super) fn cluster(node: Option<&Node>) -> Res<ClusterSpec> {
    let Some(node) = node else {
        return Ok(ClusterSpec {
            brokers: 1,
            controllers: 1,
            config: Configs::new(),
        });
    };
    let t = Table::of(node, "[cluster]")?;
    t.allow(&["brokers", "controllers", "config"], &[], "")?;
    Ok(ClusterSpec {
        brokers: t
            .opt("brokers", |n, w| u32_in(n, w, 1, MAX_NODES))?
            .unwrap_or(1),
        // KRaft has no cluster without a controller quorum: at least one voter.
        controllers: t
            .opt("controllers", |n, w| u32_in(n, w, 1, MAX_NODES))?
            .unwrap_or(1),
        config: t
            .opt("config", |n, _| {
                kafka_configs(n, &[Scope::Broker], "[cluster.config]")
            })?
            .unwrap_or_default(),
    })
}

pub(super) fn protocol(node: Option<&Node>) -> Res<ProtocolSpec> {
    let mut spec = ProtocolSpec::default();
    let Some(node) = node else {
        return Ok(spec);
    };
    let t = Table::of(node, "[protocol]")?;
    t.allow(
        &[
            "truncation",
            "eligible-leader-replicas",
            "broker-epoch-check",
            "transaction-version",
            "check-quorum",
            "offset-commit-fencing",
        ],
        &[],
        "",
    )?;
    if let Some(n) = t.get("truncation") {
        spec.truncation = match string(n, &t.what("truncation"))? {
            "leader-epoch" => Truncation::LeaderEpoch,
            "high-watermark" => Truncation::HighWatermark,
            other => {
                let message = format!(
                    "{} must be \"leader-epoch\" or \"high-watermark\", found {}",
                    t.what("truncation"),
                    q(other)
                );
                return fail(n.pos(), message);
            }
        };
    }
    let flag = |key: &str, value: &mut bool| -> Res<()> {
        if let Some(b) = t.opt(key, boolean)? {
            *value = b;
        }
        Ok(())
    };
    flag(
        "eligible-leader-replicas",
        &mut spec.eligible_leader_replicas,
    )?;
    flag("broker-epoch-check", &mut spec.broker_epoch_check)?;
    flag("check-quorum", &mut spec.check_quorum)?;
    flag("offset-commit-fencing", &mut spec.offset_commit_fencing)?;
    if let Some(v) = t.opt("transaction-version", |n, w| int_in(n, w, 1, 2))? {
        spec.transaction_version = v as u8;
    }
    Ok(spec)
}

pub(super) fn network(node: Option<&Node>) -> Res<NetworkSpec> {
    let mut spec = NetworkSpec {
        latency_us: RangeUs {
            lo: 1_000,
            hi: 5_000,
        },
        loss: 0.0,
    };
    if let Some(node) = node {
        let t = Table::of(node, "[network]")?;
        t.allow(&["latency", "loss"], &[], "")?;
        spec.latency_us = t.opt("latency", range_us)?.unwrap_or(spec.latency_us);
        spec.loss = t.opt("loss", probability)?.unwrap_or(spec.loss);
    }
    Ok(spec)
}

pub(super) fn disk(node: Option<&Node>) -> Res<DiskSpec> {
    let mut spec = DiskSpec {
        latency_us: RangeUs { lo: 100, hi: 2_000 },
        writeback_ms: 30_000,
    };
    if let Some(node) = node {
        let t = Table::of(node, "[disk]")?;
        t.allow(&["latency", "writeback"], &[], "")?;
        spec.latency_us = t.opt("latency", range_us)?.unwrap_or(spec.latency_us);
        spec.writeback_ms = t
            .opt("writeback", |n, w| ms_at_least(n, w, 0))?
            .unwrap_or(spec.writeback_ms);
    }
    Ok(spec)
}

// Kafka configs ---------------------------------------------------------------------------------

/// A table of Kafka configs by their names. Dotted keys written bare (`min.insync.replicas = 2`)
/// are TOML sub-tables; they are joined back into the config's name.
pub(super) fn kafka_configs(node: &Node, scopes: &[Scope], name: &str) -> Res<Configs> {
    let t = Table::of(node, name)?;
    let mut flat = Vec::new();
    flatten(t.entries, "", &mut flat);
    let mut out = Configs::new();
    for (config, key, value) in flat {
        let Some(def) = scopes.iter().find_map(|&s| configs::lookup(s, &config)) else {
            let kind = scopes
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(" or ");
            let hint = configs::unknown_hint(scopes[0], &config);
            return fail(
                key.pos(),
                format!("unknown {kind} config {} in {name}{hint}", q(&config)),
            );
        };
        let what = format!("config {} in {name}", q(&config));
        let raw = config_value(value, def, &what)?;
        let checked = configs::check(def, raw).map_err(|m| Fail {
            pos: value.pos(),
            message: format!("{what}: {m}"),
        })?;
        if out.insert(config.clone(), checked).is_some() {
            return fail(key.pos(), format!("{what} is set twice"));
        }
    }
    Ok(out)
}

fn flatten<'a>(
    entries: &'a [(Key, Node)],
    prefix: &str,
    out: &mut Vec<(String, &'a Key, &'a Node)>,
) {
    for (key, value) in entries {
        let name = format!("{prefix}{}", key.name);
        match &value.kind {
            Kind::Table(inner) => flatten(inner, &format!("{name}."), out),
            _ => out.push((name, key, value)),
        }
    }
}

fn config_value(node: &Node, def: &configs::ConfigDef, what: &str) -> Res<ConfigValue> {
    let wrong = || {
        let message = format!(
            "{what}: expected {}, found {}",
            configs::type_phrase(def.ty),
            found(node)
        );
        fail(node.pos(), message)
    };
    match &node.kind {
        Kind::Str(s) => Ok(ConfigValue::Str(s.clone())),
        Kind::Int(v) => Ok(ConfigValue::Int(*v)),
        Kind::Float(v) => Ok(ConfigValue::Float(*v)),
        Kind::Bool(v) => Ok(ConfigValue::Bool(*v)),
        // Kafka's LIST, written as a TOML array.
        Kind::Array(items) if matches!(def.ty, configs::ConfigType::ListOf(_)) => {
            let items: Vec<&str> = items
                .iter()
                .map(|i| string(i, &format!("each item of {what}")))
                .collect::<Res<_>>()?;
            Ok(ConfigValue::Str(items.join(",")))
        }
        _ => wrong(),
    }
}

// [expect] --------------------------------------------------------------------------------------

pub(super) fn expect(node: Option<&Node>) -> Res<Expect> {
    let Some(node) = node else {
        return Ok(Expect::default());
    };
    let t = Table::of(node, "[expect]")?;
    t.allow(&["violations", "allow"], &[], "")?;
    let violations = t.opt("violations", check_names)?.unwrap_or_default();
    let allow = t.opt("allow", check_names)?.unwrap_or_default();
    if let Some(both) = allow.iter().find(|name| violations.contains(name)) {
        let at = t.get("allow").and_then(Node::pos);
        return fail(
            at,
            format!(
                "check {} is in both `violations` and `allow` of [expect]",
                q(both)
            ),
        );
    }
    Ok(Expect { violations, allow })
}

fn check_names(node: &Node, what: &str) -> Res<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (name, item) in strings(node, what)? {
        if !CHECK_NAMES.contains(&name) {
            let hint = configs::closest(name, CHECK_NAMES.iter().copied())
                .map(|c| format!("did you mean {}? ", q(c)))
                .unwrap_or_default();
            return fail(
                item.pos(),
                format!(
                    "{what}: unknown check {} ({hint}checks: {})",
                    q(name),
                    CHECK_NAMES.join(", ")
                ),
            );
        }
        if out.iter().any(|n| n == name) {
            return fail(item.pos(), format!("{what} lists {} twice", q(name)));
        }
        out.push(name.to_string());
    }
    Ok(out)
}
