//! JoinGroup, SyncGroup and what a member does around them (`onJoinPrepare`, the leader's
//! assignment, `onJoinComplete`).

use super::protocol::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription,
};
use super::*;

impl Member {
    /// `onJoinPrepare`, JoinGroup, SyncGroup and `onJoinComplete`.
    pub(super) async fn join(&mut self, coordinator: i32) -> bool {
        let protocol = self.protocol();
        if protocol == RebalanceProtocol::Eager && !self.assigned.is_empty() {
            if self.spec.commit == CommitMode::Auto {
                self.commit(coordinator, None).await;
            }
            let all: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
            self.revoke(&all);
        }
        let (member_id, generation) = {
            let s = self.state();
            (s.member_id.clone(), s.generation)
        };
        let owned: Vec<TopicPartition> = self.assigned.iter().cloned().collect();
        let subscription = encode_subscription(&self.spec.consumer.topics, &owned, generation);
        let request = RequestKind::JoinGroup(
            JoinGroupRequest::default()
                .with_group_id(GroupId(str_bytes(self.group())))
                .with_session_timeout_ms(self.spec.session_timeout_ms)
                .with_rebalance_timeout_ms(self.spec.max_poll_interval_ms)
                .with_member_id(str_bytes(&member_id))
                .with_group_instance_id(self.spec.group_instance_id.as_deref().map(str_bytes))
                .with_protocol_type(str_bytes("consumer"))
                .with_protocols(
                    self.spec
                        .assignors
                        .iter()
                        .map(|a| {
                            JoinGroupRequestProtocol::default()
                                .with_name(str_bytes(a.name()))
                                .with_metadata(subscription.clone())
                        })
                        .collect(),
                ),
        );
        // A JoinGroup waits for the whole group: up to the rebalance timeout, and a little more.
        let timeout = Duration::from_millis(self.spec.max_poll_interval_ms as u64 + 5_000);
        let joined = match self.view.connection(coordinator).await {
            Ok(conn) => {
                conn.send(
                    ApiKey::JoinGroup,
                    client_version(ApiKey::JoinGroup),
                    &request,
                    timeout,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let joined = match joined {
            Ok(ResponseKind::JoinGroup(r)) => r,
            _ => {
                self.view.disconnect(coordinator);
                self.coordinator_lost(coordinator);
                return false;
            }
        };
        match joined.error_code {
            0 => {}
            MEMBER_ID_REQUIRED => {
                self.state().member_id = joined.member_id.to_string();
                return true;
            }
            code => return self.join_failed(coordinator, code),
        }
        let member_id = joined.member_id.to_string();
        let generation = joined.generation_id;
        let protocol_name = joined.protocol_name.as_ref().map(|p| p.to_string());
        {
            let mut s = self.state();
            s.member_id = member_id.clone();
            s.generation = generation;
        }
        let assignments = if joined.leader == joined.member_id && !joined.skip_assignment {
            let kind = protocol_name
                .as_deref()
                .and_then(AssignorKind::from_name)
                .unwrap_or(AssignorKind::Range);
            self.assign_as_leader(kind, &joined.members)
        } else {
            self.assigned_counts = None;
            Vec::new()
        };
        let request = RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(GroupId(str_bytes(self.group())))
                .with_generation_id(generation)
                .with_member_id(str_bytes(&member_id))
                .with_group_instance_id(self.spec.group_instance_id.as_deref().map(str_bytes))
                .with_protocol_type(Some(str_bytes("consumer")))
                .with_protocol_name(protocol_name.as_deref().map(str_bytes))
                .with_assignments(assignments),
        );
        let synced = match self.send(coordinator, ApiKey::SyncGroup, &request).await {
            Ok(ResponseKind::SyncGroup(r)) => r,
            _ => {
                self.coordinator_lost(coordinator);
                return false;
            }
        };
        match synced.error_code {
            0 => {}
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => return true,
            code => return self.join_failed(coordinator, code),
        }
        let assigned: BTreeSet<TopicPartition> =
            decode_assignment(&synced.assignment).into_iter().collect();
        // Cooperative: give up what moved, keep the rest; join again if anything moved.
        let revoked: Vec<TopicPartition> = self.assigned.difference(&assigned).cloned().collect();
        if !revoked.is_empty() {
            if self.spec.commit == CommitMode::Auto {
                self.commit(coordinator, None).await;
            }
            self.revoke(&revoked);
        }
        let added: Vec<TopicPartition> = assigned.difference(&self.assigned).cloned().collect();
        for tp in &added {
            self.positions.insert(tp.clone(), None);
            self.forget_epoch(tp);
        }
        self.assigned = assigned;
        let partitions: Vec<Val> = self
            .assigned
            .iter()
            .map(|tp| Val::from(tp.to_string()))
            .collect();
        self.op(
            OpType::Ok,
            "assign",
            val!({
                "group": self.group(),
                "generation": generation,
                "member": member_id.as_str(),
                "partitions": Val::array(partitions),
            }),
        );
        let mut s = self.state();
        s.stable = true;
        s.rejoin_needed = !revoked.is_empty() && protocol == RebalanceProtocol::Cooperative;
        s.last_poll_ms = self.ctx.clock.elapsed_ms();
        s.last_heartbeat_ms = s.last_poll_ms;
        true
    }

    /// The rebalance protocol of the first assignor: what the whole group will agree on when
    /// its members are configured alike.
    pub(super) fn protocol(&self) -> RebalanceProtocol {
        self.spec
            .assignors
            .first()
            .map_or(RebalanceProtocol::Eager, |a| a.protocol())
    }

    /// Gives partitions up: positions and fetched records of them are dropped.
    pub(super) fn revoke(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.assigned.remove(tp);
            self.positions.remove(tp);
            self.forget_epoch(tp);
        }
        self.buffer.retain(|(tp, _, _, _)| !partitions.contains(tp));
        let generation = self.state().generation;
        let names: Vec<Val> = partitions
            .iter()
            .map(|tp| Val::from(tp.to_string()))
            .collect();
        self.op(
            OpType::Ok,
            "revoke",
            val!({ "group": self.group(), "generation": generation, "partitions": Val::array(names) }),
        );
    }

    /// The group leader's assignment, as the chosen assignor makes it.
    pub(super) fn assign_as_leader(
        &mut self,
        kind: AssignorKind,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Vec<SyncGroupRequestAssignment> {
        let subscriptions: Vec<MemberSubscription> = members
            .iter()
            .map(|m| decode_subscription(&m.member_id, m.group_instance_id.as_ref(), &m.metadata))
            .collect();
        let mut partitions: BTreeMap<String, u32> = BTreeMap::new();
        for s in &subscriptions {
            for topic in &s.topics {
                if let Some(count) = self.view.partition_count(topic) {
                    partitions.insert(topic.clone(), count);
                }
            }
        }
        let assignment = kind.assign(&partitions, &subscriptions);
        self.assigned_counts = Some(partitions);
        assignment
            .into_iter()
            .map(|(member, tps)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(str_bytes(&member))
                    .with_assignment(encode_assignment(&tps))
            })
            .collect()
    }

    /// A JoinGroup or SyncGroup refused: a member the coordinator no longer knows starts over
    /// without its id; a coordinator that moved is looked for again. Always false.
    fn join_failed(&mut self, coordinator: i32, code: i16) -> bool {
        if code == UNKNOWN_MEMBER_ID || code == FENCED_INSTANCE_ID {
            let mut s = self.state();
            s.member_id.clear();
            s.generation = -1;
        } else if COORDINATOR_ERRORS.contains(&code) {
            self.coordinator_lost(coordinator);
        }
        false
    }
}
