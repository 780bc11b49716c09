//! The KRaft controller quorum of a run: `controllers` voters, each on a node of its own with a
//! simulated disk, electing a leader and replicating `__cluster_metadata` (see `crate::raft`),
//! each running the controller (`crate::controller::service`) on top: the active one answers
//! the brokers and the admin client and writes the metadata records.
//!
//! Controller `controller-N` has node id `3000 + N`, as Kafka's test clusters number them, so
//! that no controller shares an id with a broker (KRaft requires distinct node ids: brokers
//! fetch the metadata log as observers under their own).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use super::world::{NodeState, SimNode, World};
use super::Slot;
use crate::controller::service::ControllerService;
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

/// The node id of controller `controller-n`.
pub fn controller_id(n: u32) -> i32 {
    CONTROLLER_ID_BASE + n as i32
}

/// Kafka's test clusters number controllers from 3000.
pub const CONTROLLER_ID_BASE: i32 = 3000;

/// Every controller's listener by node id (`controller.quorum.voters`).
pub fn voters(scenario: &Scenario) -> BTreeMap<i32, SocketAddr> {
    (1..=scenario.cluster.controllers)
        .map(|n| {
            (
                controller_id(n),
                SocketAddr::new(controller_ip(n), CONTROLLER_PORT),
            )
        })
        .collect()
}

pub fn start(
    scenario: &Scenario,
    seed: u64,
    clock: &Clock,
    recorder: &SharedRecorder,
    voters: &BTreeMap<i32, SocketAddr>,
    world: &mut World,
    slot: &Arc<Mutex<Slot>>,
) {
    let controller_config = super::config::quorum_controller_config(scenario);
    let metadata_log = super::config::metadata_log_config(scenario);
    for n in 1..=scenario.cluster.controllers {
        let id = controller_id(n);
        let name = format!("controller-{n}");
        let (sim_disk, disk) = super::node_disk(
            &name,
            scenario,
            seed,
            clock,
            slot,
            crate::world::buggify::Buggify::off(),
        );
        let mut raft = RaftConfig::new(id, voters.keys().copied());
        raft.check_quorum = scenario.protocol.check_quorum;
        let node_clock = clock.for_node();
        let ctx = Arc::new(ControllerContext {
            id,
            name: name.clone(),
            voters: voters.clone(),
            listen: voters[&id],
            disk,
            clock: node_clock.clone(),
            recorder: recorder.clone(),
            raft,
            seed: derive_seed(seed, &name),
            noop_interval_ms: Some(NOOP_INTERVAL_MS),
            metadata_log,
        });
        let config = controller_config.clone();
        let service_seed = derive_seed(seed, &format!("{name}/controller"));
        let node = world
            .handle
            .create_node()
            .name(&name)
            .ip(controller_ip(n))
            .init(move || {
                let start_ms = ctx.clock.elapsed_ms();
                let service = ControllerService::new(
                    ctx.name(),
                    ctx.recorder.clone(),
                    config.clone(),
                    derive_seed(service_seed, &format!("start/{start_ms}")),
                );
                driver::run(ctx.clone(), None, Some(Box::new(service)))
            })
            .build();
        world.nodes.insert(
            name,
            SimNode {
                id: node.id(),
                broker: None,
                controller: Some(id),
                clock: node_clock,
                disk: Some(sim_disk),
                state: NodeState::Up,
                shutdown: None,
                delays: Default::default(),
            },
        );
    }
}
