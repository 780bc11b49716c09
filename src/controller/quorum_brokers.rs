//! The brokers' lifecycle in the active controller: Kafka's `ClusterControlManager.registerBroker`,
//! `BrokerHeartbeatManager` (sessions and `calculateNextBrokerState`) and the records
//! `ReplicationControlManager` writes when a broker is fenced, unfenced or shuts down.
//!
//! A broker registers fenced; its epoch is the offset of its `RegisterBrokerRecord`. Its
//! heartbeats keep its session alive; once it has replayed the log up to that record it is
//! unfenced and may lead. A broker whose session expires (`broker.session.timeout.ms` without a
//! heartbeat) is fenced: it leaves every ISR (without ELR the last member stays, leaderless;
//! with it, the ISR may empty and the broker may go into the ELR) and its leaderships move to
//! the next valid replica in assignment order. A broker asking to shut down enters controlled
//! shutdown (it leaves ISRs and leaderships the same way, still unfenced so that it keeps
//! serving fetches), and is told to shut down once it leads nothing and every active broker has
//! replayed those changes.
//!
//! A broker registering again may have lost what its log held (Samsa's brokers keep no clean
//! shutdown file, so the `previousBrokerEpoch` that would prove a clean shutdown is never
//! trusted): it leaves every ISR, and with ELR every ELR too (KIP-966's
//! `handleBrokerUncleanShutdown`).

use super::quorum::{
    error_code, error_response, heartbeat_error, is_acceptable_leader, BrokerSession,
    ControllerRequest, ControllerResponse, QuorumController,
};
use super::records::{
    BrokerEndpoint, BrokerRegistrationChangeRecord, MetadataRecord, ProducerIdsRecord,
    RegisterBrokerRecord,
};
use super::uuid::Uuid;

/// `BrokerRegistrationFencingChange`.
const FENCE: i8 = 1;
const UNFENCE: i8 = -1;
/// `BrokerRegistrationInControlledShutdownChange.IN_CONTROLLED_SHUTDOWN`.
const IN_CONTROLLED_SHUTDOWN: i8 = 1;
/// `SecurityProtocol.PLAINTEXT.id`.
const PLAINTEXT: i16 = 0;

/// `BrokerControlState`: where a heartbeat leaves a broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BrokerControlState {
    Fenced,
    Unfenced,
    ControlledShutdown,
    ShutdownNow,
}

impl BrokerControlState {
    fn fenced(self) -> bool {
        matches!(
            self,
            BrokerControlState::Fenced | BrokerControlState::ShutdownNow
        )
    }
}

/// `RegisterBroker`'s fields.
pub(super) type Registration = (i32, Uuid, String, u16, Uuid);

impl QuorumController {
    /// `ClusterControlManager.registerBroker`. A registration replacing one of another
    /// incarnation whose session is still live is refused (`DUPLICATE_BROKER_REGISTRATION`).
    /// A broker registering again comes back fenced with a new epoch, and leaves the ISRs and
    /// leaderships it held (Kafka's `handleBrokerShutdown`), and with ELR the ELRs too, as
    /// an unclean shutdown: its log may have lost what it had acknowledged.
    pub(super) fn register_broker(
        &mut self,
        now_ms: u64,
        next_offset: i64,
        (broker_id, incarnation_id, host, port, log_dir): Registration,
        records: &mut Vec<MetadataRecord>,
    ) -> ControllerResponse {
        debug_assert!(
            records.is_empty(),
            "the registration is the batch's first record"
        );
        let existing = self.image.brokers.get(&broker_id);
        if let Some(existing) = existing {
            if existing.incarnation_id != incarnation_id && self.has_live_session(broker_id, now_ms)
            {
                return ControllerResponse::RegisterBroker {
                    error_code: error_code::DUPLICATE_BROKER_REGISTRATION,
                    broker_epoch: -1,
                };
            }
        }
        let registered_before = existing.is_some();
        let record = RegisterBrokerRecord {
            broker_id,
            is_migrating_zk_broker: false,
            incarnation_id,
            broker_epoch: next_offset,
            endpoints: vec![BrokerEndpoint {
                name: "PLAINTEXT".to_owned(),
                host,
                port,
                security_protocol: PLAINTEXT,
            }],
            features: Vec::new(),
            rack: None,
            fenced: true,
            in_controlled_shutdown: false,
            log_dirs: vec![log_dir],
        };
        self.append(records, MetadataRecord::RegisterBroker(record));
        self.sessions.insert(broker_id, BrokerSession::new(now_ms));
        if registered_before && self.config.eligible_leader_replicas {
            self.handle_unclean_shutdown(broker_id, records);
        } else if registered_before {
            self.remove_from_isrs(broker_id, records);
        }
        ControllerResponse::RegisterBroker {
            error_code: error_code::NONE,
            broker_epoch: next_offset,
        }
    }

    /// `ReplicationControlManager.processBrokerHeartbeat`: check the epoch, move the broker to
    /// its next state (writing what that takes), refresh its session.
    pub(super) fn broker_heartbeat(
        &mut self,
        now_ms: u64,
        next_offset: i64,
        (broker_id, broker_epoch, current_metadata_offset): (i32, i64, i64),
        (want_fence, want_shutdown): (bool, bool),
        records: &mut Vec<MetadataRecord>,
    ) -> ControllerResponse {
        let Some(registration) = self.image.brokers.get(&broker_id) else {
            return heartbeat_error(error_code::BROKER_ID_NOT_REGISTERED);
        };
        if registration.epoch != broker_epoch {
            return heartbeat_error(error_code::STALE_BROKER_EPOCH);
        }
        // The broker has replayed its own registration: the offset of that record is its epoch.
        let is_caught_up = current_metadata_offset >= broker_epoch;
        let current = self.broker_control_state(broker_id);
        let next =
            self.next_broker_state(broker_id, current, is_caught_up, want_fence, want_shutdown);
        if current != next {
            match next {
                BrokerControlState::Fenced | BrokerControlState::ShutdownNow => {
                    self.fence_broker(broker_id, records)
                }
                BrokerControlState::Unfenced => self.unfence_broker(broker_id, records),
                BrokerControlState::ControlledShutdown => {
                    self.enter_controlled_shutdown(broker_id, records)
                }
            }
        }
        // `touch`, then `maybeUpdateControlledShutdownOffset` with the batch's end offset.
        let batch_end_offset = next_offset + records.len() as i64 - 1;
        let session = self
            .sessions
            .entry(broker_id)
            .or_insert_with(|| BrokerSession::new(now_ms));
        session.last_contact_ms = now_ms;
        session.metadata_offset = current_metadata_offset;
        if next.fenced() {
            session.controlled_shutdown_offset = None;
        } else if next == BrokerControlState::ControlledShutdown {
            session
                .controlled_shutdown_offset
                .get_or_insert(batch_end_offset);
        }
        ControllerResponse::BrokerHeartbeat {
            error_code: error_code::NONE,
            is_caught_up,
            is_fenced: next.fenced(),
            should_shut_down: next == BrokerControlState::ShutdownNow,
        }
    }

    /// `maybeFenceStaleBroker`: every unfenced broker whose last contact is more than the
    /// session timeout ago is fenced, in id order, each fencing applied before the next.
    pub(super) fn fence_stale_brokers(&mut self, now_ms: u64, records: &mut Vec<MetadataRecord>) {
        let stale: Vec<i32> = self
            .image
            .brokers
            .values()
            .filter(|b| !b.fenced && !self.has_live_session(b.id, now_ms))
            .map(|b| b.id)
            .collect();
        for broker_id in stale {
            self.fence_broker(broker_id, records);
        }
    }

    /// `BrokerHeartbeatTracker.hasValidSession`: a contact within the session timeout.
    fn has_live_session(&self, broker_id: i32, now_ms: u64) -> bool {
        self.sessions.get(&broker_id).is_some_and(|s| {
            s.last_contact_ms
                .saturating_add(self.config.session_timeout_ms)
                >= now_ms
        })
    }

    /// `currentBrokerState`: controlled shutdown is the session's state; fencing the image's.
    fn broker_control_state(&self, broker_id: i32) -> BrokerControlState {
        let shutting_down = self
            .sessions
            .get(&broker_id)
            .is_some_and(|s| s.controlled_shutdown_offset.is_some());
        if shutting_down {
            BrokerControlState::ControlledShutdown
        } else if self.image.brokers[&broker_id].fenced {
            BrokerControlState::Fenced
        } else {
            BrokerControlState::Unfenced
        }
    }

    /// `BrokerHeartbeatManager.calculateNextBrokerState`.
    fn next_broker_state(
        &self,
        broker_id: i32,
        current: BrokerControlState,
        is_caught_up: bool,
        want_fence: bool,
        want_shutdown: bool,
    ) -> BrokerControlState {
        use BrokerControlState::*;
        let has_leaderships = || !self.partitions_where(|p| p.leader == broker_id).is_empty();
        match current {
            Fenced if want_shutdown => ShutdownNow,
            Fenced if !want_fence && is_caught_up => Unfenced,
            Fenced => Fenced,
            Unfenced if want_fence && want_shutdown => ShutdownNow,
            Unfenced if want_fence => Fenced,
            Unfenced if want_shutdown && has_leaderships() => ControlledShutdown,
            Unfenced if want_shutdown => ShutdownNow,
            Unfenced => Unfenced,
            ControlledShutdown if has_leaderships() => ControlledShutdown,
            ControlledShutdown => {
                // Every active broker has replayed the records that took this broker's
                // leaderships away.
                let offset = self.sessions[&broker_id]
                    .controlled_shutdown_offset
                    .expect("a broker in controlled shutdown has its offset");
                if offset <= self.lowest_active_offset() {
                    ShutdownNow
                } else {
                    ControlledShutdown
                }
            }
            ShutdownNow => ShutdownNow,
        }
    }

    /// `lowestActiveOffset`: the least metadata offset reported by the unfenced brokers not
    /// shutting down (-1 for one that has not heartbeaten since activation).
    fn lowest_active_offset(&self) -> i64 {
        self.image
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .filter_map(|b| self.sessions.get(&b.id))
            .filter(|s| s.controlled_shutdown_offset.is_none())
            .map(|s| s.metadata_offset)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// `handleBrokerFenced`: out of every ISR and leadership, then the fencing record (none if
    /// already fenced).
    pub(super) fn fence_broker(&mut self, broker_id: i32, records: &mut Vec<MetadataRecord>) {
        self.remove_from_isrs(broker_id, records);
        // A fenced broker leaves controlled shutdown: it is told to shut down at once.
        if let Some(session) = self.sessions.get_mut(&broker_id) {
            session.controlled_shutdown_offset = None;
        }
        let registration = &self.image.brokers[&broker_id];
        if !registration.fenced {
            let change = registration_change(broker_id, registration.epoch, FENCE, 0);
            self.append(records, change);
        }
    }

    /// `handleBrokerUnfenced`: the unfencing record, then an election for every leaderless
    /// partition (the broker may now lead those whose ISR holds it).
    fn unfence_broker(&mut self, broker_id: i32, records: &mut Vec<MetadataRecord>) {
        let epoch = self.image.brokers[&broker_id].epoch;
        self.append(records, registration_change(broker_id, epoch, UNFENCE, 0));
        for (topic_id, partition_id) in self.partitions_where(|p| !p.has_leader()) {
            let election = self.topic_election(topic_id);
            self.elect_by(topic_id, partition_id, election, records);
        }
    }

    /// `handleBrokerInControlledShutdown`: mark it (once), then out of every ISR and leadership.
    fn enter_controlled_shutdown(&mut self, broker_id: i32, records: &mut Vec<MetadataRecord>) {
        let registration = &self.image.brokers[&broker_id];
        if !registration.in_controlled_shutdown {
            let change =
                registration_change(broker_id, registration.epoch, 0, IN_CONTROLLED_SHUTDOWN);
            self.append(records, change);
        }
        self.remove_from_isrs(broker_id, records);
    }

    /// `generateLeaderAndIsrUpdates` with `brokerToRemove`: for every partition whose ISR holds
    /// the broker, the ISR without it and a leader other than it, by the topic's election.
    pub(super) fn remove_from_isrs(&mut self, broker_id: i32, records: &mut Vec<MetadataRecord>) {
        let partitions = self.partitions_where(|p| p.isr.contains(&broker_id));
        self.leader_and_isr_updates(broker_id, false, partitions, records);
    }

    /// `handleBrokerUncleanShutdown` (KIP-966): as `remove_from_isrs`, with the broker named an
    /// unclean-shutdown replica so that it leaves the ELR too; then the same for every partition
    /// whose ELR holds it.
    fn handle_unclean_shutdown(&mut self, broker_id: i32, records: &mut Vec<MetadataRecord>) {
        let in_isr = self.partitions_where(|p| p.isr.contains(&broker_id));
        self.leader_and_isr_updates(broker_id, true, in_isr, records);
        let in_elr = self.partitions_where(|p| p.elr.contains(&broker_id));
        self.leader_and_isr_updates(broker_id, true, in_elr, records);
    }

    /// `generateLeaderAndIsrUpdates` for `partitions`, in order: the broker out of the ISR (and
    /// with `unclean_shutdown` out of the ELR) and never the leader.
    fn leader_and_isr_updates(
        &mut self,
        broker_id: i32,
        unclean_shutdown: bool,
        partitions: Vec<(Uuid, i32)>,
        records: &mut Vec<MetadataRecord>,
    ) {
        for (topic_id, partition_id) in partitions {
            let election = self.topic_election(topic_id);
            let partition = self
                .image
                .partition(topic_id, partition_id)
                .expect("listed by the caller");
            let target_isr = partition
                .isr
                .iter()
                .copied()
                .filter(|&r| r != broker_id)
                .collect();
            let unclean_shutdown_replicas = if unclean_shutdown {
                vec![broker_id]
            } else {
                Vec::new()
            };
            let change = self
                .partition_change(partition, topic_id, partition_id, |r| {
                    r != broker_id && is_acceptable_leader(&self.image, r)
                })
                .set_election(election)
                .set_target_isr(target_isr)
                .set_unclean_shutdown_replicas(unclean_shutdown_replicas)
                .build();
            if let Some(change) = change {
                self.append(records, MetadataRecord::PartitionChange(change));
            }
        }
    }
}

fn registration_change(
    broker_id: i32,
    broker_epoch: i64,
    fenced: i8,
    in_controlled_shutdown: i8,
) -> MetadataRecord {
    MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
        broker_id,
        broker_epoch,
        fenced,
        in_controlled_shutdown,
        log_dirs: Vec::new(),
    })
}

/// `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`: the ids a broker gets at a time.
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

impl QuorumController {
    /// `ProducerIdControlManager.generateNextProducerId`: a registered broker at its current
    /// epoch gets the next block of producer ids, recorded in a `ProducerIdsRecord` so that no
    /// controller hands it out again.
    pub(super) fn allocate_producer_ids(
        &mut self,
        broker_id: i32,
        broker_epoch: i64,
        records: &mut Vec<MetadataRecord>,
    ) -> ControllerResponse {
        let registered = self.image.brokers.get(&broker_id).map(|b| b.epoch);
        if registered != Some(broker_epoch) {
            return error_response(
                &ControllerRequest::AllocateProducerIds {
                    broker_id,
                    broker_epoch,
                },
                error_code::STALE_BROKER_EPOCH,
            );
        }
        let start = self.image.next_producer_id;
        let next = start + i64::from(PRODUCER_ID_BLOCK_SIZE);
        self.append(
            records,
            MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id,
                broker_epoch,
                next_producer_id: next,
            }),
        );
        ControllerResponse::AllocateProducerIds {
            error_code: 0,
            producer_id_start: start,
            producer_id_len: PRODUCER_ID_BLOCK_SIZE,
        }
    }
}
