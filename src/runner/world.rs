//! The simulated world of one run: its nodes on madsim, their disks and clocks, and the faults
//! that act on them. Targets are resolved here, at the moment a fault fires.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use madsim::net::NetSim;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use samsa_sim::disk::SimDisk;
use serde_json::json;

use super::recorder::RunRecorder;
use crate::scenario::Target;
use crate::world::{Clock, Recorder};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Up,
    Paused,
    /// Killed or crashed: not running until `restart`.
    Down,
}

pub struct SimNode {
    pub id: NodeId,
    /// The broker id, for brokers.
    pub broker: Option<i32>,
    /// The voter id, for controllers.
    pub controller: Option<i32>,
    pub clock: Clock,
    pub disk: Option<Arc<Mutex<SimDisk>>>,
    pub state: NodeState,
    /// A broker's controlled-shutdown request (brokers only).
    pub shutdown: Option<Arc<crate::broker::ShutdownSignal>>,
    /// The requests this node's process holds on their way out (the `delay` fault).
    pub delays: crate::protocol::RequestDelays,
}

pub fn broker_ip(id: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8))
}

pub fn client_ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 2, (index + 1) as u8))
}

pub struct World {
    pub handle: Handle,
    pub nodes: BTreeMap<String, SimNode>,
    pub recorder: Arc<RunRecorder>,
    /// The faults' own random stream (which byte to corrupt, how a crash tears).
    pub rng: ChaCha8Rng,
    /// Directed links we clogged, by node name.
    clogged: BTreeSet<(String, String)>,
    isolated: BTreeSet<String>,
    pub base_loss: f64,
    /// The admin client's queue of script steps (`create-topic`, `reassign`, …).
    pub admin_steps: Option<tokio::sync::mpsc::UnboundedSender<crate::scenario::FaultSpec>>,
}

/// A fault that cannot act (its target does not exist at this moment): recorded, not fatal.
pub type FaultResult = Result<(), String>;

impl World {
    pub fn new(
        handle: Handle,
        recorder: Arc<RunRecorder>,
        rng: ChaCha8Rng,
        base_loss: f64,
    ) -> Self {
        World {
            handle,
            nodes: BTreeMap::new(),
            recorder,
            rng,
            clogged: BTreeSet::new(),
            isolated: BTreeSet::new(),
            base_loss,
            admin_steps: None,
        }
    }

    pub fn event(&self, kind: &str, detail: serde_json::Value) {
        self.recorder.event("world", kind, detail);
    }

    /// A partition's committed state now, as the controllers traced it.
    fn committed_partition(
        &self,
        tp: &crate::scenario::TopicPartition,
    ) -> Result<super::recorder::PartitionFigures, String> {
        let figures = self.recorder.figures.lock().expect("figures lock");
        figures
            .partitions
            .get(&tp.to_string())
            .cloned()
            .ok_or_else(|| format!("no partition {tp} in the committed metadata"))
    }

    /// The node names a target names now.
    pub fn resolve(&self, target: &Target) -> Result<Vec<String>, String> {
        let broker = |id: i32| format!("broker-{id}");
        let names = match target {
            Target::Broker(n) => vec![broker(*n as i32)],
            Target::AllBrokers => self
                .nodes
                .iter()
                .filter(|(_, node)| node.broker.is_some())
                .map(|(name, _)| name.clone())
                .collect(),
            Target::Leader(tp) => {
                let meta = self.committed_partition(tp)?;
                if meta.leader < 0 {
                    return Err(format!("{tp} has no leader"));
                }
                vec![broker(meta.leader)]
            }
            Target::Follower(tp) => {
                let meta = self.committed_partition(tp)?;
                let follower = meta
                    .replicas
                    .iter()
                    .find(|&&r| r != meta.leader)
                    .ok_or_else(|| format!("{tp} has no follower"))?;
                vec![broker(*follower)]
            }
            Target::Controller(n) => vec![format!("controller-{n}")],
            Target::AllControllers => self
                .nodes
                .iter()
                .filter(|(_, node)| node.controller.is_some())
                .map(|(name, _)| name.clone())
                .collect(),
            Target::ControllerLeader => {
                let figures = self.recorder.figures.lock().expect("figures lock");
                let leader = figures
                    .controller_roles
                    .iter()
                    .filter(|(_, (_, role))| role == "leader")
                    .max_by_key(|(_, (epoch, _))| *epoch)
                    .map(|(name, _)| name.clone());
                vec![leader.ok_or("no controller leads now")?]
            }
            // The leader of the group's `__consumer_offsets` partition.
            Target::Coordinator(group) => {
                let partitions = {
                    let figures = self.recorder.figures.lock().expect("figures lock");
                    let prefix = format!("{}-", crate::broker::OFFSETS_TOPIC);
                    figures
                        .partitions
                        .keys()
                        .filter(|name| name.starts_with(&prefix))
                        .count() as i32
                };
                if partitions == 0 {
                    return Err(format!(
                        "{} does not exist yet",
                        crate::broker::OFFSETS_TOPIC
                    ));
                }
                let tp = crate::scenario::TopicPartition {
                    topic: crate::broker::OFFSETS_TOPIC.to_string(),
                    partition: crate::coordinator::group::partition_for(group, partitions) as u32,
                };
                let meta = self.committed_partition(&tp)?;
                if meta.leader < 0 {
                    return Err(format!("{tp} has no leader"));
                }
                vec![broker(meta.leader)]
            }
            // A client's node is named by its id, exactly; brokers and controllers never match.
            Target::Client(id) => self
                .nodes
                .get_key_value(id.as_str())
                .filter(|(_, node)| node.broker.is_none() && node.controller.is_none())
                .map(|(name, _)| vec![name.clone()])
                .ok_or_else(|| format!("no client {id}"))?,
        };
        for name in &names {
            if !self.nodes.contains_key(name) {
                return Err(format!("no node {name}"));
            }
        }
        Ok(names)
    }

    fn node(&mut self, name: &str) -> &mut SimNode {
        self.nodes
            .get_mut(name)
            .expect("resolve returns existing nodes")
    }

    pub fn kill(&mut self, name: &str) {
        let id = self.node(name).id;
        self.handle.kill(id);
        self.node(name).state = NodeState::Down;
        self.event("kill", json!({ "node": name }));
    }

    /// The machine dies: the process, and whatever its disk had not made durable.
    pub fn crash(&mut self, name: &str) {
        let id = self.node(name).id;
        self.handle.kill(id);
        self.node(name).state = NodeState::Down;
        let now = self.recorder.now_ms();
        let report = self.nodes[name]
            .disk
            .as_ref()
            .map(|disk| disk.lock().expect("disk lock").crash(now, &mut self.rng));
        self.event("crash", json!({ "node": name, "disk": report }));
    }

    /// A broker shuts down cleanly (KIP-631): it asks the controller in its heartbeats, which
    /// moves its leaderships away first, then flushes its logs and stops.
    pub fn controlled_shutdown(&mut self, name: &str) -> FaultResult {
        let signal = self.nodes[name]
            .shutdown
            .clone()
            .ok_or_else(|| format!("{name} is not a broker"))?;
        signal.request();
        self.event("controlled-shutdown", json!({ "node": name }));
        Ok(())
    }

    /// Restarts the node if its process ended by itself (see `has_exited`).
    pub fn restart_if_exited(&mut self, name: &str) {
        if self.nodes[name].state == NodeState::Up && self.has_exited(name) {
            self.restart(name);
        }
    }

    fn has_exited(&self, name: &str) -> bool {
        self.nodes[name]
            .shutdown
            .as_ref()
            .is_some_and(|signal| signal.has_exited())
    }

    pub fn restart(&mut self, name: &str) {
        let id = self.node(name).id;
        if let Some(signal) = &self.nodes[name].shutdown {
            signal.clear(); // the new process runs until asked again
        }
        if self.nodes[name].state != NodeState::Down {
            // A process that exited by itself (a controlled shutdown) leaves a live node behind:
            // end it before starting the new process.
            self.handle.kill(id);
        }
        self.handle.restart(id);
        self.node(name).state = NodeState::Up;
        self.event("restart", json!({ "node": name }));
    }

    /// A disk replacement: the node comes back with nothing on its disk.
    pub fn wipe(&mut self, name: &str) {
        let id = self.node(name).id;
        self.handle.kill(id);
        if let Some(disk) = &self.nodes[name].disk {
            disk.lock().expect("disk lock").wipe();
        }
        self.handle.restart(id);
        self.node(name).state = NodeState::Up;
        self.event("wipe", json!({ "node": name }));
    }

    pub fn pause(&mut self, name: &str) {
        let id = self.node(name).id;
        self.handle.pause(id);
        self.node(name).state = NodeState::Paused;
        self.event("pause", json!({ "node": name }));
    }

    pub fn resume(&mut self, name: &str) {
        let id = self.node(name).id;
        self.handle.resume(id);
        self.node(name).state = NodeState::Up;
        self.event("resume", json!({ "node": name }));
    }

    /// Nodes in different groups cannot reach each other; nodes in no group reach everyone.
    pub fn partition(&mut self, groups: &[Vec<String>]) {
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i == j {
                    continue;
                }
                for from in a {
                    for to in b {
                        if from != to && !b.contains(from) {
                            self.clog(from, to);
                        }
                    }
                }
            }
        }
        self.event("partition", json!({ "groups": groups }));
    }

    fn clog(&mut self, from: &str, to: &str) {
        let (src, dst) = (self.nodes[from].id, self.nodes[to].id);
        NetSim::current().clog_link(src, dst);
        self.clogged.insert((from.to_string(), to.to_string()));
    }

    pub fn clog_link(&mut self, from: &str, to: &str) {
        self.clog(from, to);
        self.event("clog-link", json!({ "from": from, "to": to }));
    }

    pub fn isolate(&mut self, name: &str) {
        NetSim::current().clog_node(self.nodes[name].id);
        self.isolated.insert(name.to_string());
        self.event("isolate", json!({ "node": name }));
    }

    /// Undoes every partition, isolation and clog, and the loss rate.
    pub fn heal(&mut self) {
        let net = NetSim::current();
        for (from, to) in std::mem::take(&mut self.clogged) {
            net.unclog_link(self.nodes[&from].id, self.nodes[&to].id);
        }
        for name in std::mem::take(&mut self.isolated) {
            net.unclog_node(self.nodes[&name].id);
        }
        self.set_loss(self.base_loss);
        self.event("heal", json!({}));
    }

    pub fn set_loss(&mut self, rate: f64) {
        NetSim::current().update_config(|config| config.packet_loss_rate = rate);
    }

    pub fn loss(&mut self, rate: f64) {
        self.set_loss(rate);
        self.event("loss", json!({ "rate": rate }));
    }

    fn disk(&self, name: &str) -> Result<Arc<Mutex<SimDisk>>, String> {
        self.nodes[name]
            .disk
            .clone()
            .ok_or_else(|| format!("{name} has no disk"))
    }

    pub fn slow_disk(&mut self, name: &str, factor: f64) -> FaultResult {
        self.disk(name)?.lock().expect("disk lock").set_slow(factor);
        self.event("slow-disk", json!({ "node": name, "factor": factor }));
        Ok(())
    }

    pub fn disk_full(&mut self, name: &str, full: bool) -> FaultResult {
        self.disk(name)?.lock().expect("disk lock").set_full(full);
        self.event("disk-full", json!({ "node": name, "full": full }));
        Ok(())
    }

    /// Flips bytes in one file of the node's disk: the named one, or one chosen from the seed
    /// among the files whose path contains `pattern` (every segment file when none is given).
    pub fn corrupt(&mut self, name: &str, pattern: Option<&str>) -> FaultResult {
        let disk = self.disk(name)?;
        let mut disk = disk.lock().expect("disk lock");
        let pattern = pattern.unwrap_or(".log");
        let candidates: Vec<String> = disk
            .files()
            .map(|(path, _)| path.to_string())
            .filter(|path| path.contains(pattern))
            .collect();
        let path = candidates
            .choose(&mut self.rng)
            .ok_or_else(|| format!("{name} has no file matching {pattern:?}"))?
            .clone();
        let corruption = disk
            .corrupt(&path, &mut self.rng)
            .map_err(|e| e.to_string())?;
        drop(disk);
        self.event("corrupt", json!({ "node": name, "corruption": corruption }));
        Ok(())
    }

    /// Undoes every fault still in force: the network heals, paused nodes resume, downed ones
    /// restart, disks and clocks return to normal and no request is held any more.
    pub fn heal_all(&mut self) {
        self.heal();
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in &names {
            match self.nodes[name].state {
                NodeState::Paused => self.resume(name),
                NodeState::Down => self.restart(name),
                // A broker whose process ended by itself (its log directory failed, or a
                // controlled shutdown) is started again, as an operator would.
                NodeState::Up => self.restart_if_exited(name),
            }
            let node = &self.nodes[name];
            if let Some(disk) = &node.disk {
                let mut disk = disk.lock().expect("disk lock");
                disk.set_slow(1.0);
                disk.set_full(false);
            }
            node.clock.set_skew_ms(0);
            node.delays.release_all();
        }
    }

    /// The node's process holds every request of `api` it sends for `by_ms` (the `delay` fault).
    pub fn delay(&mut self, name: &str, api: kafka_protocol::messages::ApiKey, by_ms: u64) {
        self.nodes[name].delays.hold(api, by_ms);
        self.event(
            "delay",
            json!({ "node": name, "api": format!("{api:?}"), "by_ms": by_ms }),
        );
    }

    /// The node's requests of `api` go out at once again.
    pub fn undelay(&mut self, name: &str, api: kafka_protocol::messages::ApiKey) {
        self.nodes[name].delays.release(api);
        self.event(
            "undelay",
            json!({ "node": name, "api": format!("{api:?}") }),
        );
    }

    pub fn clock_skew(&mut self, name: &str, skew_ms: i64) {
        self.nodes[name].clock.set_skew_ms(skew_ms);
        self.event("clock-skew", json!({ "node": name, "skew_ms": skew_ms }));
    }
}
