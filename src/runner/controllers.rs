//! The KRaft controller quorum of a run: `controllers` voters, each on a node of its own with a
//! simulated disk, electing a leader and replicating `__cluster_metadata` (see `crate::raft`).
//!
//! Brokers do not register with the quorum yet: their metadata is still fixed at start. What runs
//! here is the quorum itself — elections, check-quorum, the metadata log with the active
//! controller's KIP-835 no-op records — under the scenario's faults, checked by `split-brain`
//! and `metadata-lost`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use super::world::{NodeState, SimNode, World};
use super::Slot;
use crate::raft::driver::{self, ControllerContext};
use crate::raft::RaftConfig;
use crate::scenario::Scenario;
use crate::world::{derive_seed, Clock, SharedRecorder};

/// Kafka's usual controller listener port.
pub const CONTROLLER_PORT: u16 = 9093;

/// `metadata.max.idle.interval.ms`'s default (KIP-835).
const NOOP_INTERVAL_MS: u64 = 500;

pub fn controller_ip(id: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, id as u8))
}

pub fn start(
    scenario: &Scenario,
    seed: u64,
    clock: &Clock,
    recorder: &SharedRecorder,
    world: &mut World,
    slot: &Arc<Mutex<Slot>>,
) {
    let voters: BTreeMap<i32, SocketAddr> = (1..=scenario.cluster.controllers)
        .map(|id| {
            (
                id as i32,
                SocketAddr::new(controller_ip(id), CONTROLLER_PORT),
            )
        })
        .collect();
    for id in 1..=scenario.cluster.controllers {
        let name = format!("controller-{id}");
        let (sim_disk, disk) = super::node_disk(&name, scenario, seed, clock, slot);
        let mut raft = RaftConfig::new(id as i32, voters.keys().copied());
        raft.check_quorum = scenario.protocol.check_quorum;
        let node_clock = clock.for_node();
        let ctx = Arc::new(ControllerContext {
            id: id as i32,
            voters: voters.clone(),
            listen: voters[&(id as i32)],
            disk,
            clock: node_clock.clone(),
            recorder: recorder.clone(),
            raft,
            seed: derive_seed(seed, &name),
            noop_interval_ms: Some(NOOP_INTERVAL_MS),
        });
        let node = world
            .handle
            .create_node()
            .name(&name)
            .ip(controller_ip(id))
            .init(move || driver::run(ctx.clone(), None))
            .build();
        world.nodes.insert(
            name,
            SimNode {
                id: node.id(),
                broker: None,
                controller: Some(id as i32),
                clock: node_clock,
                disk: Some(sim_disk),
                state: NodeState::Up,
            },
        );
    }
}
