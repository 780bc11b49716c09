//! `ClassicGroup` and `ClassicGroupMember` (Kafka's `coordinator.group.classic`): one group of
//! the classic protocol, its state machine, members, chosen protocol and the futures (here the
//! request ids) of the JoinGroup and SyncGroup requests waiting on the rebalance.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::records::{GroupMetadataValue, MemberMetadata};
use super::{JoinGroupResponseMember, RequestId};

/// `ClassicGroupState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClassicGroupState {
    /// No members; offsets may remain, and expire.
    Empty,
    /// Waiting for the members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment in its SyncGroup.
    CompletingRebalance,
    Stable,
    /// Unloaded or deleted.
    Dead,
}

impl ClassicGroupState {
    /// The name DescribeGroups and ListGroups report (Kafka's `toString`).
    pub fn name(self) -> &'static str {
        match self {
            ClassicGroupState::Empty => "Empty",
            ClassicGroupState::PreparingRebalance => "PreparingRebalance",
            ClassicGroupState::CompletingRebalance => "CompletingRebalance",
            ClassicGroupState::Stable => "Stable",
            ClassicGroupState::Dead => "Dead",
        }
    }

    /// The states a group may come from into this one (`ClassicGroupState.validPreviousStates`).
    fn valid_previous_states(self) -> &'static [ClassicGroupState] {
        use ClassicGroupState::*;
        match self {
            Empty => &[PreparingRebalance],
            PreparingRebalance => &[Stable, CompletingRebalance, Empty],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Dead => &[Stable, PreparingRebalance, CompletingRebalance, Empty, Dead],
        }
    }
}

/// `ClassicGroupMember`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassicGroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// (assignor name, subscription), in the member's order of preference.
    pub supported_protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// The JoinGroup waiting for the rebalance to complete.
    pub(super) awaiting_join: Option<RequestId>,
    /// The SyncGroup waiting for the leader's assignment.
    pub(super) awaiting_sync: Option<RequestId>,
    /// Joined in the current rebalance for the first time: its join may time out
    /// (`hasSatisfiedHeartbeat`).
    pub(super) is_new: bool,
    /// When its session (or, new, its join) expires.
    pub(super) heartbeat_deadline_ms: Option<u64>,
}

impl ClassicGroupMember {
    /// The subscription metadata for `protocol`, if the member supports it.
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.supported_protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata)
    }

    /// Whether `protocols` are exactly the member's (`ClassicGroupMember.matches`): a rejoin
    /// with the same metadata needs no rebalance.
    pub fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.supported_protocols == protocols
    }

    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    pub fn is_awaiting_join(&self) -> bool {
        self.awaiting_join.is_some()
    }

    pub fn is_awaiting_sync(&self) -> bool {
        self.awaiting_sync.is_some()
    }

    /// Whether an expired heartbeat timer leaves the member in place
    /// (`ClassicGroupMember.hasSatisfiedHeartbeat`): members waiting on a rebalance are alive,
    /// unless they are new (then the timer was the new-member join timeout).
    pub(super) fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.is_awaiting_join() || self.is_awaiting_sync())
    }

    /// Its vote for the group's protocol: its first supported one all members support
    /// (`ClassicGroupMember.vote`).
    fn vote(&self, candidates: &BTreeSet<&str>) -> Option<&str> {
        self.supported_protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| candidates.contains(name))
    }
}

/// The join phase's timer: the initial delay of a new group's first rebalance, or the rebalance
/// timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum JoinTimer {
    /// `tryCompleteInitialRebalanceElseSchedule(delay, remaining)`.
    InitialDelay {
        deadline_ms: u64,
        delay_ms: u64,
        remaining_ms: u64,
    },
    /// `completeClassicGroupJoin` at the rebalance timeout.
    Rebalance { deadline_ms: u64 },
}

impl JoinTimer {
    pub(super) fn deadline_ms(self) -> u64 {
        match self {
            JoinTimer::InitialDelay { deadline_ms, .. } | JoinTimer::Rebalance { deadline_ms } => {
                deadline_ms
            }
        }
    }
}

/// `ClassicGroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassicGroup {
    pub group_id: String,
    pub(super) state: ClassicGroupState,
    pub(super) previous_state: ClassicGroupState,
    pub(super) current_state_timestamp_ms: Option<i64>,
    pub(super) generation_id: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol_name: Option<String>,
    pub(super) leader_id: Option<String>,
    pub(super) members: BTreeMap<String, ClassicGroupMember>,
    /// Group instance id → member id (KIP-345).
    pub(super) static_members: BTreeMap<String, String>,
    /// KIP-394: member ids handed out with MEMBER_ID_REQUIRED, not joined yet → when they expire.
    pub(super) pending_join_members: BTreeMap<String, u64>,
    /// Members of this generation that have not sent their SyncGroup.
    pub(super) pending_sync_members: BTreeSet<String>,
    /// A member joined during the initial delay: extend it.
    pub(super) new_member_added: bool,
    pub(super) join_timer: Option<JoinTimer>,
    /// (deadline, generation): members not synced by then are removed (`expirePendingSync`).
    pub(super) sync_timer: Option<(u64, i32)>,
}

impl ClassicGroup {
    /// A new, empty group at generation 0.
    pub fn new(group_id: &str, now_ms: u64) -> ClassicGroup {
        ClassicGroup {
            group_id: group_id.to_owned(),
            state: ClassicGroupState::Empty,
            previous_state: ClassicGroupState::Empty,
            current_state_timestamp_ms: Some(ms_i64(now_ms)),
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_join_members: BTreeMap::new(),
            pending_sync_members: BTreeSet::new(),
            new_member_added: false,
            join_timer: None,
            sync_timer: None,
        }
    }

    pub fn state(&self) -> ClassicGroupState {
        self.state
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    pub fn members(&self) -> &BTreeMap<String, ClassicGroupMember> {
        &self.members
    }

    pub fn member(&self, member_id: &str) -> Option<&ClassicGroupMember> {
        self.members.get(member_id)
    }

    pub fn is_in_state(&self, state: ClassicGroupState) -> bool {
        self.state == state
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub fn is_pending_member(&self, member_id: &str) -> bool {
        self.pending_join_members.contains_key(member_id)
    }

    pub fn static_member_id(&self, group_instance_id: &str) -> Option<&str> {
        self.static_members
            .get(group_instance_id)
            .map(String::as_str)
    }

    /// `transitionTo`: asserts the move is one Kafka allows.
    pub(super) fn transition_to(&mut self, state: ClassicGroupState, now_ms: u64) {
        assert!(
            state.valid_previous_states().contains(&self.state),
            "group {} cannot move from {:?} to {:?}",
            self.group_id,
            self.state,
            state
        );
        self.previous_state = self.state;
        self.state = state;
        self.current_state_timestamp_ms = Some(ms_i64(now_ms));
    }

    /// Whether a rebalance may start (`canRebalance`).
    pub(super) fn can_rebalance(&self) -> bool {
        ClassicGroupState::PreparingRebalance
            .valid_previous_states()
            .contains(&self.state)
    }

    /// The group's rebalance timeout: the largest of its members'.
    pub(super) fn rebalance_timeout_ms(&self) -> u64 {
        self.members
            .values()
            .map(|m| u64::try_from(m.rebalance_timeout_ms).unwrap_or(0))
            .max()
            .unwrap_or(0)
    }

    pub(super) fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.is_awaiting_join())
            .count()
    }

    /// `hasAllMembersJoined`: every member waits on a JoinGroup and no member id handed out is
    /// still to join.
    pub(super) fn has_all_members_joined(&self) -> bool {
        self.members.len() == self.num_awaiting_join() && self.pending_join_members.is_empty()
    }

    /// `add`: the first member sets the protocol type; the first one leads.
    pub(super) fn add(&mut self, member: ClassicGroupMember) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        if let Some(instance_id) = &member.group_instance_id {
            self.static_members
                .insert(instance_id.clone(), member.member_id.clone());
        }
        self.pending_join_members.remove(&member.member_id);
        self.members.insert(member.member_id.clone(), member);
    }

    /// `remove`: a removed leader is succeeded by the first remaining member.
    pub(super) fn remove(&mut self, member_id: &str) -> Option<ClassicGroupMember> {
        let removed = self.members.remove(member_id);
        if let Some(instance_id) = removed.as_ref().and_then(|m| m.group_instance_id.as_ref()) {
            self.static_members.remove(instance_id);
        }
        if self.is_leader(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.pending_join_members.remove(member_id);
        self.pending_sync_members.remove(member_id);
        removed
    }

    /// `supportsProtocols`: an empty group takes any non-empty protocol type and list; otherwise
    /// the type must be the group's and one protocol supported by every member.
    pub(super) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
    ) -> bool {
        if self.is_in_state(ClassicGroupState::Empty) {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.metadata(name).is_some()))
    }

    /// `selectProtocol`: each member votes for its first protocol every member supports; the
    /// most votes win. Kafka breaks a tie by hash-map order; here the smallest name wins.
    pub(super) fn select_protocol(&self) -> String {
        let candidates: BTreeSet<&str> = self
            .members
            .values()
            .flat_map(|m| m.supported_protocols.iter().map(|(name, _)| name.as_str()))
            .filter(|name| self.members.values().all(|m| m.metadata(name).is_some()))
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            let vote = member
                .vote(&candidates)
                .expect("every member supports a common protocol");
            *votes.entry(vote).or_default() += 1;
        }
        let most = votes.values().copied().max().unwrap_or(0);
        let winner = votes
            .iter()
            .find(|(_, &n)| n == most)
            .map(|(name, _)| *name);
        winner
            .expect("a group with members has a protocol")
            .to_owned()
    }

    /// `initNextGeneration`: the next generation, with the voted protocol, CompletingRebalance
    /// if any member remains, else Empty.
    pub(super) fn init_next_generation(&mut self, now_ms: u64) {
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition_to(ClassicGroupState::Empty, now_ms);
        } else {
            self.protocol_name = Some(self.select_protocol());
            self.transition_to(ClassicGroupState::CompletingRebalance, now_ms);
        }
        self.pending_sync_members.clear();
    }

    /// `maybeElectNewJoinedLeader`: a leader that did not rejoin gives way to the first member
    /// that did; false when none did.
    pub(super) fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.clone() else {
            return false;
        };
        if self
            .members
            .get(&leader)
            .is_some_and(|m| m.is_awaiting_join())
        {
            return true;
        }
        let joined = self.members.values().find(|m| m.is_awaiting_join());
        match joined.map(|m| m.member_id.clone()) {
            Some(new_leader) => {
                self.leader_id = Some(new_leader);
                true
            }
            None => false,
        }
    }

    /// `currentClassicGroupMembers`: what the leader's JoinGroup response lists.
    pub(super) fn current_members(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinGroupResponseMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// The `GroupMetadataValue` of the group (`newGroupMetadataRecord`), with `assignment` as
    /// the members' (absent members: empty).
    pub(super) fn to_record_value(
        &self,
        assignment: &BTreeMap<String, Bytes>,
    ) -> GroupMetadataValue {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        let members = self
            .members
            .values()
            .map(|m| MemberMetadata {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: m
                    .metadata(protocol)
                    .cloned()
                    .expect("a member of a group with a protocol supports it"),
                assignment: assignment.get(&m.member_id).cloned().unwrap_or_default(),
            })
            .collect();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp_ms: self.current_state_timestamp_ms.unwrap_or(-1),
            members,
        }
    }

    /// The members' current assignments.
    pub(super) fn assignments(&self) -> BTreeMap<String, Bytes> {
        self.members
            .iter()
            .map(|(id, m)| (id.clone(), m.assignment.clone()))
            .collect()
    }

    /// A group as a `GroupMetadataValue` loads it (`ClassicGroup.fromRecord`): Stable with its
    /// members, each supporting only the group's protocol, or Empty.
    pub(super) fn from_record(group_id: &str, value: &GroupMetadataValue) -> ClassicGroup {
        let state = if value.members.is_empty() {
            ClassicGroupState::Empty
        } else {
            ClassicGroupState::Stable
        };
        let protocol_type = Some(value.protocol_type.clone()).filter(|t| !t.is_empty());
        let mut group = ClassicGroup {
            state,
            previous_state: state,
            current_state_timestamp_ms: Some(value.current_state_timestamp_ms).filter(|&t| t >= 0),
            generation_id: value.generation,
            protocol_type: protocol_type.clone(),
            protocol_name: value.protocol.clone(),
            ..ClassicGroup::new(group_id, 0)
        };
        for m in &value.members {
            group.add(ClassicGroupMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                protocol_type: value.protocol_type.clone(),
                supported_protocols: vec![(
                    value.protocol.clone().unwrap_or_default(),
                    m.subscription.clone(),
                )],
                assignment: m.assignment.clone(),
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
                heartbeat_deadline_ms: None,
            });
        }
        group.protocol_type = protocol_type;
        group.leader_id = value.leader.clone();
        group
    }
}

/// Milliseconds as Kafka's int64 timestamps.
pub(super) fn ms_i64(ms: u64) -> i64 {
    i64::try_from(ms).expect("simulated time fits an int64")
}
