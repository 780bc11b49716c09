//! The fault schedule: the scenario's faults in file order, each waiting for its trigger (a time,
//! or the moment a condition first holds, watched from when the fault before it fired), then its
//! `after`, then acting on targets resolved at that moment, and undone after its `for`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::world::World;
use crate::client::sleep_until_ms;
use crate::scenario::{Action, Condition, FaultSpec, Figure, Target, Trigger};
use crate::world::Clock;

/// What the scenario's `recovery` asks of the end of the schedule: once every fault has fired and
/// been undone, heal everything and give the cluster `recovery_ms` to serve writes and reads
/// again (the `unavailable` check reads the `healed` event).
#[derive(Clone, Copy, Debug)]
pub struct Recovery {
    pub recovery_ms: u64,
    /// When the run ends, so the check knows which deadlines fell inside it.
    pub end_ms: u64,
}

/// Runs the schedule; `fired` counts the faults fired so far, so the run can say which never did.
pub async fn run_schedule(
    world: Arc<Mutex<World>>,
    faults: Vec<FaultSpec>,
    clock: Clock,
    fired: Arc<std::sync::atomic::AtomicUsize>,
    recovery: Option<Recovery>,
) {
    let mut undos = Vec::new();
    for fault in faults {
        match &fault.trigger {
            Trigger::At(at_ms) => sleep_until_ms(&clock, *at_ms).await,
            Trigger::When(condition) => wait_for(&world, condition).await,
        }
        if fault.after_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.after_ms)).await;
        }
        let affected = fire(&world, &fault);
        fired.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(for_ms) = fault.for_ms {
            let world = world.clone();
            let fault = fault.clone();
            undos.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(for_ms)).await;
                undo(&world, &fault, &affected);
            }));
        }
    }
    let Some(recovery) = recovery else {
        return;
    };
    for undo in undos {
        let _ = undo.await;
    }
    let mut world = world.lock().expect("world lock");
    world.heal_all();
    world.event(
        "healed",
        json!({ "recovery_ms": recovery.recovery_ms, "end_ms": recovery.end_ms }),
    );
}

async fn wait_for(world: &Arc<Mutex<World>>, condition: &Condition) {
    let recorder = world.lock().expect("world lock").recorder.clone();
    loop {
        let changed = recorder.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if holds(&world.lock().expect("world lock"), condition) {
            return;
        }
        changed.await;
    }
}

fn holds(world: &World, condition: &Condition) -> bool {
    figure(world, &condition.figure)
        .is_some_and(|value| condition.cmp.holds(value, condition.value))
}

/// The current value of a figure; `None` when the cluster does not know it yet.
pub fn figure(world: &World, figure: &Figure) -> Option<i64> {
    let figures = world.recorder.figures.lock().expect("figures lock");
    let partition = |tp: &crate::scenario::TopicPartition| figures.partitions.get(&tp.to_string());
    let replica = |tp: &crate::scenario::TopicPartition, broker: Option<u32>| {
        let broker = match broker {
            Some(b) => b as i32,
            None => partition(tp)?.leader,
        };
        figures.replicas.get(&tp.to_string())?.get(&broker).copied()
    };
    match figure {
        Figure::Acked(client) => Some(figures.acked.get(client).copied().unwrap_or(0)),
        Figure::Hw(tp, broker) => replica(tp, *broker).map(|r| r.hw),
        Figure::Leo(tp, broker) => replica(tp, *broker).map(|r| r.leo),
        Figure::Epoch(tp) => partition(tp).map(|m| m.leader_epoch),
        Figure::IsrSize(tp) => partition(tp).map(|m| m.isr.len() as i64),
        Figure::Leader(tp) => partition(tp).map(|m| i64::from(m.leader)),
        Figure::Committed(group, tp) => figures
            .committed
            .get(&(group.clone(), tp.to_string()))
            .copied(),
    }
}

fn targets(world: &World, target: Option<&Target>) -> Result<Vec<String>, String> {
    match target {
        Some(target) => world.resolve(target),
        None => Err("the fault has no target".into()),
    }
}

/// Fires a fault; returns the nodes it acted on (so `for` undoes it on the same ones).
fn fire(world: &Arc<Mutex<World>>, fault: &FaultSpec) -> Vec<String> {
    let mut world = world.lock().expect("world lock");
    match act(&mut world, fault) {
        Ok(names) => names,
        Err(why) => {
            world.event(
                "fault-skipped",
                json!({ "line": fault.line, "action": format!("{:?}", fault.action), "why": why }),
            );
            Vec::new()
        }
    }
}

fn act(world: &mut World, fault: &FaultSpec) -> Result<Vec<String>, String> {
    let target = fault.target.as_ref();
    match fault.action {
        Action::Partition => {
            let groups = fault
                .groups
                .iter()
                .map(|group| {
                    let mut names = Vec::new();
                    for target in group {
                        names.extend(world.resolve(target)?);
                    }
                    Ok(names)
                })
                .collect::<Result<Vec<_>, String>>()?;
            world.partition(&groups);
        }
        Action::Heal => world.heal(),
        Action::Loss => world.loss(fault.rate.unwrap_or(0.0)),
        Action::CreateTopic
        | Action::DeleteTopic
        | Action::CreatePartitions
        | Action::Reassign
        | Action::ElectLeaders
        | Action::DescribeGroup => {
            // The admin client performs it, in order, and records the cluster's answer.
            let queue = world.admin_steps.as_ref().ok_or("no admin client")?;
            queue
                .send(fault.clone())
                .map_err(|_| "the admin client stopped".to_string())?;
        }

        Action::ClogLink => {
            let from = targets(world, fault.from.as_ref())?;
            let to = targets(world, fault.to.as_ref())?;
            for f in &from {
                for t in &to {
                    world.clog_link(f, t);
                }
            }
        }
        _ => {
            let names = targets(world, target)?;
            for name in &names {
                act_on_node(world, fault, name)?;
            }
            return Ok(names);
        }
    }
    Ok(Vec::new())
}

fn act_on_node(world: &mut World, fault: &FaultSpec, name: &str) -> Result<(), String> {
    match fault.action {
        Action::Kill => world.kill(name),
        Action::Crash => world.crash(name),
        Action::Restart => world.restart(name),
        Action::Wipe => world.wipe(name),
        Action::Pause => world.pause(name),
        Action::Resume => world.resume(name),
        Action::Isolate => world.isolate(name),
        Action::SlowDisk => world.slow_disk(name, fault.factor.unwrap_or(10.0))?,
        Action::DiskFull => world.disk_full(name, true)?,
        Action::Corrupt => world.corrupt(name, fault.file.as_deref())?,
        Action::ClockSkew => world.clock_skew(name, fault.by_ms.unwrap_or(0)),
        Action::ControlledShutdown => world.controlled_shutdown(name)?,
        Action::Delay => {
            let api = fault.api.as_deref().unwrap_or_default();
            let api = crate::protocol::delays::api_named(api)
                .ok_or_else(|| format!("no Kafka API {api:?}"))?;
            world.delay(name, api, fault.by_ms.unwrap_or(0).max(0) as u64);
        }
        Action::Partition
        | Action::Heal
        | Action::Loss
        | Action::ClogLink
        | Action::CreateTopic
        | Action::DeleteTopic
        | Action::CreatePartitions
        | Action::Reassign
        | Action::ElectLeaders
        | Action::DescribeGroup => unreachable!("handled in act"),
    }
    Ok(())
}

/// Undoes a fault after its `for`: a downed node restarts, a paused one resumes, the network
/// heals, the disk and clock return to normal.
fn undo(world: &Arc<Mutex<World>>, fault: &FaultSpec, affected: &[String]) {
    let mut world = world.lock().expect("world lock");
    if matches!(
        fault.action,
        Action::Partition | Action::Isolate | Action::ClogLink | Action::Loss
    ) {
        world.heal();
        return;
    }
    for name in affected {
        let name = name.as_str();
        let _ = match fault.action {
            Action::Kill | Action::Crash | Action::ControlledShutdown => {
                world.restart(name);
                Ok(())
            }
            Action::Pause => {
                world.resume(name);
                Ok(())
            }
            Action::SlowDisk => world.slow_disk(name, 1.0),
            Action::DiskFull => world.disk_full(name, false).map(|()| {
                // Its broker halted on the full disk (Kafka's does when its only log
                // directory fails): space freed, the operator starts it again.
                world.restart_if_exited(name)
            }),
            Action::ClockSkew => {
                world.clock_skew(name, 0);
                Ok(())
            }
            Action::Delay => {
                if let Some(api) = fault
                    .api
                    .as_deref()
                    .and_then(crate::protocol::delays::api_named)
                {
                    world.undelay(name, api);
                }
                Ok(())
            }
            _ => Ok(()),
        };
    }
}
