//! `zombie-write`: a fenced producer (older epoch) still got a write accepted.
//!
//! The guarantee is KIP-98's zombie fencing ("Transactional Guarantees"; Kafka documentation,
//! producer config `transactional.id`): a producer that calls `initTransactions` with a
//! transactional id gets its producer id with a bumped epoch, the coordinator aborts what the
//! previous instance left open, and every broker refuses the previous epoch from then on
//! (`INVALID_PRODUCER_EPOCH`, `PRODUCER_FENCED`): "a producer instance with the same
//! transactional.id … fences off any zombie instances". KIP-360 bumps the epoch of an
//! idempotent producer the same way, and KIP-890 once per transaction, so that a late write of
//! a previous transaction cannot land in the next one (Jepsen, Bufstream 0.1.0, Kingsbury 2024,
//! <https://jepsen.io/analyses/bufstream-0.1.0>). A partition's log therefore
//! never holds, after a batch or marker of a producer id in some epoch, a data batch of that
//! producer id in an older one.
//!
//! Two readings:
//!
//! - **The final logs.** In each partition's final log (the last leader's whole log, and every
//!   replica's), a data record of producer id P in epoch e that follows, in offset order, a
//!   record or marker of P in an epoch above e. One violation per partition and producer id,
//!   from the last leader's log if it shows one, else from the first replica's that does, at
//!   the time of the last `append` that wrote the first such record (0 if the trace has none),
//!   naming it and counting the rest. Producer ids written without one (-1) are not judged.
//! - **The trace and the history.** A leader's `append` of a batch from client X (`client` in
//!   the event) whose latest `init-producer-id` before it gave a transactional id T, made after
//!   another process Y with T completed its own `init-producer-id` (Y's `ok` before the append,
//!   and after X's latest one): Y fenced X, and X's write was accepted all the same, even where
//!   no later marker or batch of Y in that partition would show it in the log. One violation
//!   per (client, partition), at the first such append, counting the others. Appends without a
//!   client, and clients without a transactional id, are not judged.

use std::collections::BTreeMap;

use super::{FinalMarker, FinalRecord, FinalState, Violation};
use crate::history::{Op, OpType, TraceEvent};
use crate::val::Val;

const CHECK: &str = "zombie-write";

pub fn check(history: &[Op], trace: &[TraceEvent], state: &FinalState) -> Vec<Violation> {
    let mut found = in_final_logs(trace, state);
    found.extend(in_trace(history, trace));
    found
}

/// What a log shows of one producer id writing in an epoch older than one before it.
#[derive(Clone, Copy, Debug)]
struct Stale<'a> {
    record: &'a FinalRecord,
    epoch: i16,
    /// The newer epoch before it, at that offset, and whether that was a marker.
    newer: (i16, i64, bool),
    count: usize,
}

/// Every producer id's stale records in one log: `records` and `markers` in offset order.
fn stale_in<'a>(records: &'a [FinalRecord], markers: &[FinalMarker]) -> BTreeMap<i64, Stale<'a>> {
    // (offset, producer id, epoch, the record, or None for a marker)
    let mut steps: Vec<(i64, i64, i16, Option<&FinalRecord>)> = records
        .iter()
        .filter_map(|r| Some((r.offset, r.producer_id?, r.epoch?, Some(r))))
        .chain(
            markers
                .iter()
                .map(|m| (m.offset, m.producer_id, m.epoch, None)),
        )
        .filter(|&(_, pid, _, _)| pid >= 0)
        .collect();
    steps.sort_by_key(|&(offset, _, _, _)| offset);
    let mut newest: BTreeMap<i64, (i16, i64, bool)> = BTreeMap::new();
    let mut stale: BTreeMap<i64, Stale> = BTreeMap::new();
    for (offset, pid, epoch, record) in steps {
        let before = newest.get(&pid).copied();
        match (before, record) {
            (Some(newer), Some(record)) if newer.0 > epoch => {
                stale
                    .entry(pid)
                    .and_modify(|s| s.count += 1)
                    .or_insert(Stale {
                        record,
                        epoch,
                        newer,
                        count: 1,
                    });
            }
            (Some((e, _, _)), _) if e >= epoch => {}
            _ => {
                newest.insert(pid, (epoch, offset, record.is_none()));
            }
        }
    }
    stale
}

fn in_final_logs(trace: &[TraceEvent], state: &FinalState) -> Vec<Violation> {
    let mut found = Vec::new();
    for (partition, log) in &state.partitions {
        let mut reported = stale_in(&log.committed, &log.markers);
        let mut where_: BTreeMap<i64, String> = reported
            .keys()
            .map(|&pid| (pid, "the final log".to_string()))
            .collect();
        for (broker, replica) in state.replicas.get(partition).into_iter().flatten() {
            for (pid, stale) in stale_in(&replica.records, &replica.markers) {
                if let std::collections::btree_map::Entry::Vacant(e) = reported.entry(pid) {
                    e.insert(stale);
                    where_.insert(pid, format!("broker-{broker}'s log"));
                }
            }
        }
        for (pid, stale) in reported {
            let (newer_epoch, newer_offset, marker) = stale.newer;
            let newer = if marker { "marker" } else { "write" };
            let others = match stale.count {
                1 => String::new(),
                n => format!(" ({} more such records)", n - 1),
            };
            found.push(Violation {
                check: CHECK.to_string(),
                at_ms: appended_ms(trace, partition, stale.record.offset),
                detail: format!(
                    "in {}, producer {pid}'s epoch {} write {} at offset {} of {partition} \
                     follows its epoch {newer_epoch} {newer} at offset {newer_offset}{others}",
                    where_[&pid],
                    stale.epoch,
                    stale.record.value.as_deref().unwrap_or("null"),
                    stale.record.offset,
                ),
                partition: Some(partition.to_string()),
            });
        }
    }
    found
}

/// When a leader last appended a batch holding `offset` of `partition` (0 if the trace has no
/// such `append`).
fn appended_ms(trace: &[TraceEvent], partition: &str, offset: i64) -> u64 {
    trace
        .iter()
        .rev()
        .filter(|e| e.kind == "append")
        .find(|e| {
            let d = &e.detail;
            d.get("partition").and_then(Val::as_str) == Some(partition)
                && d.get("first")
                    .and_then(Val::as_i64)
                    .is_some_and(|f| f <= offset)
                && d.get("last")
                    .and_then(Val::as_i64)
                    .is_some_and(|l| offset <= l)
        })
        .map_or(0, |e| e.at_ms)
}

/// One `init-producer-id` that completed `ok`.
#[derive(Clone, Copy, Debug)]
struct Init<'a> {
    process: &'a str,
    at_ms: u64,
    producer_id: i64,
    epoch: i64,
    transactional_id: Option<&'a str>,
}

fn inits(history: &[Op]) -> Vec<Init<'_>> {
    history
        .iter()
        .filter(|op| op.f == "init-producer-id" && op.kind == OpType::Ok)
        // An epoch bump (KIP-360, or transaction version 2's after each EndTxn) is the same
        // instance going on, and may be recorded late (the instance was paused): only an
        // `initTransactions` takes a transactional id over.
        .filter(|op| op.value.get("bump").and_then(Val::as_bool) != Some(true))
        .map(|op| Init {
            process: &op.process,
            at_ms: op.at_ms,
            producer_id: op
                .value
                .get("producer_id")
                .and_then(Val::as_i64)
                .unwrap_or(-1),
            epoch: op.value.get("epoch").and_then(Val::as_i64).unwrap_or(-1),
            transactional_id: op.value.get("transactional_id").and_then(Val::as_str),
        })
        .collect()
}

/// A fenced client's accepted appends to one partition: the first, who fenced it, and how many.
struct Fenced<'a> {
    first: &'a TraceEvent,
    own: Init<'a>,
    by: Init<'a>,
    count: usize,
}

fn in_trace(history: &[Op], trace: &[TraceEvent]) -> Vec<Violation> {
    let inits = inits(history);
    let mut fenced: BTreeMap<(&str, &str), Fenced> = BTreeMap::new();
    for event in trace.iter().filter(|e| e.kind == "append") {
        let d = &event.detail;
        let (Some(client), Some(partition)) = (
            d.get("client").and_then(Val::as_str),
            d.get("partition").and_then(Val::as_str),
        ) else {
            continue;
        };
        // The client's latest init before the append, and the first other init of its
        // transactional id after that one and before the append.
        let Some(own) = inits
            .iter()
            .rev()
            .find(|i| i.process == client && i.at_ms <= event.at_ms)
        else {
            continue;
        };
        let Some(tid) = own.transactional_id else {
            continue;
        };
        let by = inits.iter().find(|i| {
            i.process != client
                && i.transactional_id == Some(tid)
                && own.at_ms < i.at_ms
                && i.at_ms < event.at_ms
        });
        let Some(by) = by else {
            continue;
        };
        fenced
            .entry((client, partition))
            .and_modify(|f| f.count += 1)
            .or_insert(Fenced {
                first: event,
                own: *own,
                by: *by,
                count: 1,
            });
    }
    fenced
        .into_iter()
        .map(|((client, partition), f)| {
            let d = &f.first.detail;
            let field = |name: &str| d.get(name).and_then(Val::as_i64).unwrap_or(-1);
            let others = match f.count {
                1 => String::new(),
                n => format!(" ({} more such appends)", n - 1),
            };
            Violation {
                check: CHECK.to_string(),
                at_ms: f.first.at_ms,
                detail: format!(
                    "{} appended a batch of {client} (transactional id {}, producer {} epoch {}) \
                     to {partition} at offsets {}..={}, after {} took the transactional id over \
                     at {} ms (producer {}, epoch {}); {client}'s last init-producer-id was at \
                     {} ms (producer {}, epoch {}){others}",
                    f.first.node,
                    f.own.transactional_id.unwrap_or("?"),
                    field("pid"),
                    field("epoch"),
                    field("first"),
                    field("last"),
                    f.by.process,
                    f.by.at_ms,
                    f.by.producer_id,
                    f.by.epoch,
                    f.own.at_ms,
                    f.own.producer_id,
                    f.own.epoch,
                ),
                partition: Some(partition.to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::check::fixtures::{
        event, marker, op, plain, record_of, replica, state, summary, txn_partition,
    };
    use crate::check::TxnStatus::{Aborted, Committed, Open};

    /// A leader's `append` of `client`'s batch of producer `pid` in `epoch` at `first..=last`.
    fn append(
        at_ms: u64,
        partition: &str,
        (first, last): (i64, i64),
        client: &str,
        (pid, epoch): (i64, i64),
    ) -> TraceEvent {
        event(
            at_ms,
            "broker-1",
            "append",
            json!({
                "broker": 1, "partition": partition, "first": first, "last": last,
                "hw": first, "leo": last + 1, "pid": pid, "epoch": epoch, "client": client,
                "txn": true,
            }),
        )
    }

    fn init(process: &str, at_ms: u64, (pid, epoch): (i64, i64), tid: Option<&str>) -> Op {
        let mut value = json!({"producer_id": pid, "epoch": epoch});
        if let Some(tid) = tid {
            value["transactional_id"] = json!(tid);
        }
        op(process, OpType::Ok, "init-producer-id", value, at_ms)
    }

    #[test]
    fn epochs_that_only_go_up_in_the_final_logs_are_quiet() {
        let log = txn_partition(
            vec![
                record_of(0, "a", (5, 0), Some(Aborted)),
                plain(2, "p"),
                record_of(3, "b", (5, 1), Some(Committed)),
                // Another producer id, in a lower epoch: its own business.
                record_of(4, "c", (6, 0), Some(Committed)),
                record_of(7, "d", (5, 2), Some(Open)),
            ],
            // KIP-890: the marker carries the bumped epoch, the next transaction uses it.
            vec![
                marker(1, (5, 1), false),
                marker(5, (5, 2), true),
                marker(6, (6, 0), true),
            ],
        );
        let final_state = state(vec![("orders-0", log)]);
        assert_eq!(check(&[], &[], &final_state), vec![]);
    }

    #[test]
    fn an_older_epoch_after_a_newer_marker_or_write_fires_once_per_producer() {
        // The planted bug: producer 5's epoch-0 writes accepted after its epoch-1 abort marker.
        let log = txn_partition(
            vec![
                record_of(0, "z-0", (5, 0), Some(Aborted)),
                record_of(2, "z-1", (5, 0), Some(Open)),
                record_of(3, "z-2", (5, 0), Some(Open)),
            ],
            vec![marker(1, (5, 1), false)],
        );
        let mut final_state = state(vec![("orders-0", log)]);
        // Only broker-2's log shows producer 6's older write after its newer one.
        let mut stale = replica(4, &[]);
        stale.records = vec![
            record_of(0, "y-0", (6, 3), None),
            record_of(1, "y-1", (6, 2), None),
        ];
        final_state
            .replicas
            .insert("orders-0".to_string(), BTreeMap::from([(2, stale)]));
        let trace = [append(70, "orders-0", (2, 3), "p1", (5, 0))];
        let found = check(&[], &trace, &final_state);
        assert_eq!(
            summary(&found),
            vec![(70, Some("orders-0")), (0, Some("orders-0"))]
        );
        assert!(found.iter().all(|v| v.check == "zombie-write"));
        assert_eq!(
            found[0].detail,
            "in the final log, producer 5's epoch 0 write z-1 at offset 2 of orders-0 follows \
             its epoch 1 marker at offset 1 (1 more such records)"
        );
        assert_eq!(
            found[1].detail,
            "in broker-2's log, producer 6's epoch 2 write y-1 at offset 1 of orders-0 follows \
             its epoch 3 write at offset 0"
        );
    }

    #[test]
    fn a_write_of_a_client_another_fenced_fires() {
        let history = vec![
            init("p1", 10, (5, 0), Some("t1")),
            init("p3", 15, (9, 0), None),
            init("p2", 100, (5, 1), Some("t1")),
        ];
        let trace = [
            // Before p2 took over: fine. p3 has no transactional id.
            append(50, "orders-0", (0, 1), "p1", (5, 0)),
            append(150, "orders-0", (2, 2), "p3", (9, 0)),
            // p2's own: fine.
            append(160, "orders-0", (3, 3), "p2", (5, 1)),
            // The planted bug: p1, fenced at 100 ms, still appended.
            append(200, "orders-0", (4, 5), "p1", (5, 0)),
            append(210, "orders-0", (6, 6), "p1", (5, 0)),
            append(220, "orders-1", (0, 0), "p1", (5, 0)),
        ];
        let found = check(&history, &trace, &FinalState::default());
        assert_eq!(
            summary(&found),
            vec![(200, Some("orders-0")), (220, Some("orders-1"))]
        );
        assert_eq!(
            found[0].detail,
            "broker-1 appended a batch of p1 (transactional id t1, producer 5 epoch 0) to \
             orders-0 at offsets 4..=5, after p2 took the transactional id over at 100 ms \
             (producer 5, epoch 1); p1's last init-producer-id was at 10 ms (producer 5, epoch \
             0) (1 more such appends)"
        );
        // Had p1 initialized again after p2 (fencing p2 in turn), its appends are its right.
        let mut again = history.clone();
        again.push(init("p1", 180, (5, 2), Some("t1")));
        assert_eq!(check(&again, &trace, &FinalState::default()), vec![]);
    }

    #[test]
    fn an_epoch_bump_recorded_late_takes_nothing_over() {
        // p1 was paused with its commit's answer in flight: it hears of the bumped epoch
        // (transaction version 2) after p2 started, and p2's writes stay p2's right.
        let mut late_bump = init("p1", 300, (5, 1), Some("t1"));
        late_bump.value = late_bump.value.with("bump", true.into());
        let history = vec![
            init("p1", 10, (5, 0), Some("t1")),
            init("p2", 100, (5, 2), Some("t1")),
            late_bump,
        ];
        let trace = [append(400, "orders-0", (0, 0), "p2", (5, 2))];
        assert_eq!(check(&history, &trace, &FinalState::default()), vec![]);
    }
}
