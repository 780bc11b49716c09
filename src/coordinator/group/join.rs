//! JoinGroup (`GroupMetadataManager.classicGroupJoin` and the paths it takes): new members get
//! a member id (KIP-394) or join at once; static members (KIP-345) replace their old member id;
//! known members rejoin. Each join either waits for the rebalance (answered later, by the
//! request id) or is answered now.

use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use super::classic_group::{ClassicGroup, ClassicGroupMember, ClassicGroupState};
use super::coordinator::{CoordinatorOutput, GroupCoordinator};
use super::rebalance::{
    maybe_complete_join_phase, maybe_prepare_rebalance_or_complete_join, prepare_rebalance,
    timeout_ms, Ctx,
};
use super::records::{CoordinatorRecord, GroupMetadataValue};
use super::{error_code, GroupResponse, JoinGroupRequest, JoinGroupResponse, RequestId};

impl GroupCoordinator {
    /// `classicGroupJoin`. A join that creates the group also writes it, empty, to the log.
    pub(super) fn join_group(
        &mut self,
        now_ms: u64,
        id: RequestId,
        request: JoinGroupRequest,
        out: &mut CoordinatorOutput,
    ) {
        if let Some(error) = self.validate_join(&request) {
            let response = JoinGroupResponse::error(error, &request.member_id);
            return out.respond(id, GroupResponse::JoinGroup(response));
        }
        let is_new_group = !self.groups.contains_key(&request.group_id);
        if is_new_group {
            self.groups.insert(
                request.group_id.clone(),
                ClassicGroup::new(&request.group_id, now_ms),
            );
        }
        let records_before = out.records.len();
        let GroupCoordinator {
            groups,
            config,
            rng,
            ..
        } = self;
        let group = groups
            .get_mut(&request.group_id)
            .expect("present or created");
        let mut cx = Ctx {
            config,
            now_ms,
            out,
        };
        if request.member_id.is_empty() {
            join_new_member(group, rng, id, request, &mut cx);
        } else {
            join_existing_member(group, id, request, &mut cx);
        }
        if is_new_group && out.records.len() == records_before {
            out.records.push(empty_group_record(group, now_ms));
        }
    }

    /// The checks before any group is touched: the group id, the session timeout within
    /// `group.min.session.timeout.ms`..`group.max.session.timeout.ms`, and a known member of a
    /// group that does not exist.
    fn validate_join(&self, request: &JoinGroupRequest) -> Option<i16> {
        let timeouts = self.config.min_session_timeout_ms..=self.config.max_session_timeout_ms;
        if request.group_id.is_empty() {
            Some(error_code::INVALID_GROUP_ID)
        } else if !timeouts.contains(&request.session_timeout_ms) {
            Some(error_code::INVALID_SESSION_TIMEOUT)
        } else if !request.member_id.is_empty() && !self.groups.contains_key(&request.group_id) {
            Some(error_code::UNKNOWN_MEMBER_ID)
        } else {
            None
        }
    }
}

/// `newEmptyGroupMetadataRecord`: commits a newly created group to the log.
fn empty_group_record(g: &ClassicGroup, now_ms: u64) -> CoordinatorRecord {
    CoordinatorRecord::GroupMetadata {
        group: g.group_id.clone(),
        value: Some(GroupMetadataValue {
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            generation: g.generation_id,
            protocol: None,
            leader: None,
            current_state_timestamp_ms: super::classic_group::ms_i64(now_ms),
            members: Vec::new(),
        }),
    }
}

fn respond_error(id: RequestId, error: i16, member_id: &str, cx: &mut Ctx<'_>) {
    let response = JoinGroupResponse::error(error, member_id);
    cx.out.respond(id, GroupResponse::JoinGroup(response));
}

/// `classicGroupJoinNewMember`.
fn join_new_member(
    g: &mut ClassicGroup,
    rng: &mut ChaCha8Rng,
    id: RequestId,
    request: JoinGroupRequest,
    cx: &mut Ctx<'_>,
) {
    if g.is_in_state(ClassicGroupState::Dead) {
        return respond_error(id, error_code::COORDINATOR_NOT_AVAILABLE, "", cx);
    }
    if !g.supports_protocols(&request.protocol_type, &request.protocols) {
        return respond_error(id, error_code::INCONSISTENT_GROUP_PROTOCOL, "", cx);
    }
    // `ClassicGroup.generateMemberId`: `<group.instance.id or client.id>-<random UUID>`.
    let prefix = request
        .group_instance_id
        .as_ref()
        .unwrap_or(&request.client_id);
    let member_id = format!("{prefix}-{}", random_uuid(rng));
    match request.group_instance_id.clone() {
        Some(instance_id) => match g.static_member_id(&instance_id).map(str::to_owned) {
            Some(old_member_id) => {
                update_static_member(g, id, request, &old_member_id, member_id, cx)
            }
            None => add_member_then_rebalance_or_complete_join(g, id, request, member_id, cx),
        },
        None if request.require_known_member_id => {
            // KIP-394: the member must come back with this id; until then it counts as a
            // member still to join, for one session timeout.
            let deadline_ms = cx.now_ms + timeout_ms(request.session_timeout_ms);
            g.pending_join_members
                .insert(member_id.clone(), deadline_ms);
            respond_error(id, error_code::MEMBER_ID_REQUIRED, &member_id, cx);
        }
        None => add_member_then_rebalance_or_complete_join(g, id, request, member_id, cx),
    }
}

/// `classicGroupJoinExistingMember`.
fn join_existing_member(
    g: &mut ClassicGroup,
    id: RequestId,
    request: JoinGroupRequest,
    cx: &mut Ctx<'_>,
) {
    let member_id = request.member_id.clone();
    if g.is_in_state(ClassicGroupState::Dead) {
        return respond_error(id, error_code::COORDINATOR_NOT_AVAILABLE, &member_id, cx);
    }
    if !g.supports_protocols(&request.protocol_type, &request.protocols) {
        return respond_error(id, error_code::INCONSISTENT_GROUP_PROTOCOL, &member_id, cx);
    }
    if g.is_pending_member(&member_id) {
        // Pending ids are handed to dynamic members only; Kafka fails such a join with an
        // IllegalStateException (UNKNOWN_SERVER_ERROR).
        if request.group_instance_id.is_some() {
            return respond_error(id, error_code::UNKNOWN_SERVER_ERROR, &member_id, cx);
        }
        return add_member_then_rebalance_or_complete_join(g, id, request, member_id, cx);
    }
    if let Some(error) = validate_member(g, &member_id, request.group_instance_id.as_deref()) {
        return respond_error(id, error, &member_id, cx);
    }
    let member = &g.members[&member_id];
    let same_metadata = member.matches(&request.protocols);
    match g.state {
        ClassicGroupState::CompletingRebalance if same_metadata => {
            // A retry of a join whose response was lost: the current generation again.
            let response = current_generation_response(g, &member_id, false);
            cx.out.respond(id, GroupResponse::JoinGroup(response));
        }
        ClassicGroupState::Stable if same_metadata && !g.is_leader(&member_id) => {
            // A follower rejoining with the same subscription changes nothing.
            let mut response = current_generation_response(g, &member_id, false);
            response.members.clear();
            cx.out.respond(id, GroupResponse::JoinGroup(response));
        }
        ClassicGroupState::Empty | ClassicGroupState::Dead => {
            respond_error(id, error_code::UNKNOWN_MEMBER_ID, &member_id, cx)
        }
        // Preparing; or a changed subscription, or the leader rejoining (it may want to
        // assign again): (re)join the rebalance.
        _ => update_member_then_rebalance_or_complete_join(g, id, &request, cx),
    }
}

/// `ClassicGroup.validateMember`: a static member's instance id must map to its member id
/// (else FENCED_INSTANCE_ID: another incarnation took it over); the member must exist.
pub(super) fn validate_member(
    g: &ClassicGroup,
    member_id: &str,
    instance_id: Option<&str>,
) -> Option<i16> {
    if let Some(instance_id) = instance_id {
        match g.static_member_id(instance_id) {
            None => return Some(error_code::UNKNOWN_MEMBER_ID),
            Some(existing) if existing != member_id => return Some(error_code::FENCED_INSTANCE_ID),
            Some(_) => {}
        }
    }
    (!g.members.contains_key(member_id)).then_some(error_code::UNKNOWN_MEMBER_ID)
}

/// The JoinGroup answer of the current generation; the leader's lists every member.
fn current_generation_response(
    g: &ClassicGroup,
    member_id: &str,
    skip_assignment: bool,
) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: error_code::NONE,
        generation_id: g.generation_id,
        protocol_type: g.protocol_type.clone(),
        protocol_name: g.protocol_name.clone(),
        leader: g.leader_id.clone().unwrap_or_default(),
        skip_assignment,
        member_id: member_id.to_owned(),
        members: if g.is_leader(member_id) {
            g.current_members()
        } else {
            Vec::new()
        },
    }
}

/// `addMemberThenRebalanceOrCompleteJoin`: a new member may wait in the rebalance only
/// `new_member_join_timeout_ms` (its client cannot heartbeat without a member id).
fn add_member_then_rebalance_or_complete_join(
    g: &mut ClassicGroup,
    id: RequestId,
    request: JoinGroupRequest,
    member_id: String,
    cx: &mut Ctx<'_>,
) {
    let member = ClassicGroupMember {
        member_id,
        group_instance_id: request.group_instance_id,
        client_id: request.client_id,
        client_host: request.client_host,
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        session_timeout_ms: request.session_timeout_ms,
        protocol_type: request.protocol_type,
        supported_protocols: request.protocols,
        assignment: Default::default(),
        awaiting_join: Some(id),
        awaiting_sync: None,
        is_new: true,
        heartbeat_deadline_ms: Some(cx.now_ms + cx.config.new_member_join_timeout_ms),
    };
    if g.is_in_state(ClassicGroupState::PreparingRebalance)
        && g.previous_state == ClassicGroupState::Empty
    {
        // The initial rebalance may be delayed further for it.
        g.new_member_added = true;
    }
    g.add(member);
    maybe_prepare_rebalance_or_complete_join(g, cx);
}

/// `updateMemberThenRebalanceOrCompleteJoin`.
fn update_member_then_rebalance_or_complete_join(
    g: &mut ClassicGroup,
    id: RequestId,
    request: &JoinGroupRequest,
    cx: &mut Ctx<'_>,
) {
    update_member(g, &request.member_id, id, request);
    maybe_prepare_rebalance_or_complete_join(g, cx);
}

/// `ClassicGroup.updateMember`: new subscription and timeouts; the member now waits on `id`.
/// A JoinGroup it was already waiting on is dropped unanswered, as Kafka overwrites its future.
fn update_member(g: &mut ClassicGroup, member_id: &str, id: RequestId, request: &JoinGroupRequest) {
    let member = g.members.get_mut(member_id).expect("validated member");
    member.supported_protocols = request.protocols.clone();
    member.rebalance_timeout_ms = request.rebalance_timeout_ms;
    member.session_timeout_ms = request.session_timeout_ms;
    member.awaiting_join = Some(id);
}

/// `updateStaticMemberThenRebalanceOrCompleteJoin` (KIP-345): the new incarnation takes the
/// old member id's place and assignment. In a Stable group whose protocol would not change,
/// that is written to the log and answered with the current generation (the leader's with
/// `skip_assignment`, KIP-814); otherwise the group rebalances.
fn update_static_member(
    g: &mut ClassicGroup,
    id: RequestId,
    request: JoinGroupRequest,
    old_member_id: &str,
    new_member_id: String,
    cx: &mut Ctx<'_>,
) {
    let old_leader = g.leader_id.clone().unwrap_or_default();
    replace_static_member(g, old_member_id, &new_member_id, cx);
    update_member(g, &new_member_id, id, &request);
    let member = g.members.get_mut(&new_member_id).expect("replaced member");
    member.heartbeat_deadline_ms = Some(cx.now_ms + timeout_ms(member.session_timeout_ms));
    match g.state {
        ClassicGroupState::Stable if g.protocol_name.as_deref() == Some(&g.select_protocol()) => {
            let value = g.to_record_value(&g.assignments());
            cx.out.records.push(CoordinatorRecord::GroupMetadata {
                group: g.group_id.clone(),
                value: Some(value),
            });
            let response = if request.supports_skip_assignment {
                let is_leader = g.is_leader(&new_member_id);
                current_generation_response(g, &new_member_id, is_leader)
            } else {
                // Before KIP-814 the member learns no members, and the leader as it was.
                let mut response = current_generation_response(g, &new_member_id, false);
                response.members.clear();
                response.leader = old_leader;
                response
            };
            let member = g.members.get_mut(&new_member_id).expect("replaced member");
            member.awaiting_join = None;
            cx.out.respond(id, GroupResponse::JoinGroup(response));
        }
        // The old member id may already be in the leader's hands: assign again.
        ClassicGroupState::CompletingRebalance => prepare_rebalance(g, cx),
        ClassicGroupState::PreparingRebalance => maybe_complete_join_phase(g, cx),
        _ => maybe_prepare_rebalance_or_complete_join(g, cx),
    }
}

/// `ClassicGroup.replaceStaticMember`: the old member id's waiting JoinGroup and SyncGroup are
/// fenced with FENCED_INSTANCE_ID; the member, its assignment and leadership move to the new id.
fn replace_static_member(
    g: &mut ClassicGroup,
    old_member_id: &str,
    new_member_id: &str,
    cx: &mut Ctx<'_>,
) {
    let mut member = g
        .members
        .remove(old_member_id)
        .expect("a static member's id is a member");
    if let Some(request) = member.awaiting_join.take() {
        let response = JoinGroupResponse::error(error_code::FENCED_INSTANCE_ID, old_member_id);
        cx.out.respond(request, GroupResponse::JoinGroup(response));
    }
    if let Some(request) = member.awaiting_sync.take() {
        let response = super::SyncGroupResponse::error(error_code::FENCED_INSTANCE_ID);
        cx.out.respond(request, GroupResponse::SyncGroup(response));
    }
    member.member_id = new_member_id.to_owned();
    member.is_new = false;
    if g.is_leader(old_member_id) {
        g.leader_id = Some(new_member_id.to_owned());
    }
    if g.pending_sync_members.remove(old_member_id) {
        g.pending_sync_members.insert(new_member_id.to_owned());
    }
    let instance_id = member.group_instance_id.clone().expect("a static member");
    g.static_members
        .insert(instance_id, new_member_id.to_owned());
    g.members.insert(new_member_id.to_owned(), member);
}

/// Java's `UUID.randomUUID().toString()` from the seeded stream: 122 random bits, version 4,
/// IETF variant, as 8-4-4-4-12 lowercase hex.
pub(super) fn random_uuid(rng: &mut ChaCha8Rng) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
