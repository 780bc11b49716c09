//! SyncGroup, Heartbeat and LeaveGroup (`GroupMetadataManager.classicGroupSync`,
//! `classicGroupHeartbeat`, `classicGroupLeave`).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::classic_group::{ClassicGroup, ClassicGroupState};
use super::coordinator::{CoordinatorOutput, GroupCoordinator};
use super::join::validate_member;
use super::rebalance::{
    maybe_complete_join_phase, maybe_prepare_rebalance_or_complete_join, remove_member,
    remove_pending_sync_member, set_and_propagate_assignment, timeout_ms, Ctx,
};
use super::records::CoordinatorRecord;
use super::{
    error_code, GroupResponse, HeartbeatRequest, LeaveGroupMemberResponse, LeaveGroupRequest,
    LeaveGroupResponse, MemberIdentity, RequestId, SyncGroupRequest, SyncGroupResponse,
};

impl GroupCoordinator {
    /// `classicGroupSync`: during the sync phase a member waits for the leader's assignment;
    /// the leader's SyncGroup writes it in a GroupMetadata record and answers everyone (the
    /// driver sends the answers once the record is committed). In a Stable group a member gets
    /// its assignment at once.
    pub(super) fn sync_group(
        &mut self,
        now_ms: u64,
        id: RequestId,
        request: SyncGroupRequest,
        out: &mut CoordinatorOutput,
    ) {
        let Some(g) = self.groups.get_mut(&request.group_id) else {
            let response = SyncGroupResponse::error(error_code::UNKNOWN_MEMBER_ID);
            return out.respond(id, GroupResponse::SyncGroup(response));
        };
        let error = validate_sync(g, &request).or(match g.state {
            ClassicGroupState::Empty | ClassicGroupState::Dead => {
                Some(error_code::UNKNOWN_MEMBER_ID)
            }
            ClassicGroupState::PreparingRebalance => Some(error_code::REBALANCE_IN_PROGRESS),
            _ => None,
        });
        if let Some(error) = error {
            return out.respond(
                id,
                GroupResponse::SyncGroup(SyncGroupResponse::error(error)),
            );
        }
        let mut cx = Ctx {
            config: &self.config,
            now_ms,
            out,
        };
        let member_id = request.member_id.clone();
        remove_pending_sync_member(g, &member_id);
        if g.is_in_state(ClassicGroupState::Stable) {
            // The current assignment; as in Kafka, this does not count as a heartbeat.
            let member = &g.members[&member_id];
            let response = SyncGroupResponse {
                error_code: error_code::NONE,
                protocol_type: g.protocol_type.clone(),
                protocol_name: g.protocol_name.clone(),
                assignment: member.assignment.clone(),
            };
            return cx.out.respond(id, GroupResponse::SyncGroup(response));
        }
        g.members
            .get_mut(&member_id)
            .expect("validated member")
            .awaiting_sync = Some(id);
        if g.is_leader(&member_id) {
            complete_sync(g, &request, &mut cx);
        }
    }

    /// `classicGroupHeartbeat`: keeps the member's session; tells it to rejoin while the group
    /// prepares a rebalance.
    pub(super) fn heartbeat(&mut self, now_ms: u64, request: &HeartbeatRequest) -> i16 {
        let Some(g) = self.groups.get_mut(&request.group_id) else {
            return error_code::UNKNOWN_MEMBER_ID;
        };
        if g.is_in_state(ClassicGroupState::Dead) {
            return error_code::COORDINATOR_NOT_AVAILABLE;
        }
        let instance_id = request.group_instance_id.as_deref();
        if let Some(error) = validate_member(g, &request.member_id, instance_id) {
            return error;
        }
        if request.generation_id != g.generation_id {
            return error_code::ILLEGAL_GENERATION;
        }
        if g.is_in_state(ClassicGroupState::Empty) {
            return error_code::UNKNOWN_MEMBER_ID;
        }
        let member = g
            .members
            .get_mut(&request.member_id)
            .expect("validated member");
        member.heartbeat_deadline_ms = Some(now_ms + timeout_ms(member.session_timeout_ms));
        if g.is_in_state(ClassicGroupState::PreparingRebalance) {
            error_code::REBALANCE_IN_PROGRESS
        } else {
            error_code::NONE
        }
    }

    /// `classicGroupLeave` (v3+ batch): each member is removed or refused on its own; one
    /// rebalance follows for all of them.
    pub(super) fn leave_group(
        &mut self,
        now_ms: u64,
        id: RequestId,
        request: LeaveGroupRequest,
        out: &mut CoordinatorOutput,
    ) {
        let Some(g) = self.groups.get_mut(&request.group_id) else {
            let response = LeaveGroupResponse {
                error_code: error_code::UNKNOWN_MEMBER_ID,
                members: Vec::new(),
            };
            return out.respond(id, GroupResponse::LeaveGroup(response));
        };
        if g.is_in_state(ClassicGroupState::Dead) {
            let response = LeaveGroupResponse {
                error_code: error_code::COORDINATOR_NOT_AVAILABLE,
                members: Vec::new(),
            };
            return out.respond(id, GroupResponse::LeaveGroup(response));
        }
        let mut cx = Ctx {
            config: &self.config,
            now_ms,
            out,
        };
        let members: Vec<LeaveGroupMemberResponse> = request
            .members
            .iter()
            .map(|identity| LeaveGroupMemberResponse {
                member_id: identity.member_id.clone(),
                group_instance_id: identity.group_instance_id.clone(),
                error_code: leave_one(g, identity, &mut cx),
            })
            .collect();
        if members.iter().any(|m| m.error_code == error_code::NONE) {
            match g.state {
                ClassicGroupState::Stable | ClassicGroupState::CompletingRebalance => {
                    maybe_prepare_rebalance_or_complete_join(g, &mut cx)
                }
                ClassicGroupState::PreparingRebalance => maybe_complete_join_phase(g, &mut cx),
                _ => {}
            }
        }
        let response = LeaveGroupResponse {
            error_code: error_code::NONE,
            members,
        };
        cx.out.respond(id, GroupResponse::LeaveGroup(response));
    }
}

/// `validateSyncGroup`.
fn validate_sync(g: &ClassicGroup, request: &SyncGroupRequest) -> Option<i16> {
    if g.is_in_state(ClassicGroupState::Dead) {
        return Some(error_code::COORDINATOR_NOT_AVAILABLE);
    }
    let instance_id = request.group_instance_id.as_deref();
    if let Some(error) = validate_member(g, &request.member_id, instance_id) {
        return Some(error);
    }
    // `isProtocolInconsistent`: only when both are known.
    let differs = |given: &Option<String>, ours: &Option<String>| {
        given.is_some() && ours.is_some() && given != ours
    };
    if request.generation_id != g.generation_id {
        Some(error_code::ILLEGAL_GENERATION)
    } else if differs(&request.protocol_type, &g.protocol_type)
        || differs(&request.protocol_name, &g.protocol_name)
    {
        Some(error_code::INCONSISTENT_GROUP_PROTOCOL)
    } else {
        None
    }
}

/// The leader's SyncGroup: its assignment (members it left out get an empty one) is written
/// and sent to every member waiting on its SyncGroup; the group is Stable.
fn complete_sync(g: &mut ClassicGroup, request: &SyncGroupRequest, cx: &mut Ctx<'_>) {
    let given: BTreeMap<&str, &Bytes> = request
        .assignments
        .iter()
        .map(|(member_id, assignment)| (member_id.as_str(), assignment))
        .collect();
    let assignment: BTreeMap<String, Bytes> = g
        .members
        .keys()
        .map(|member_id| {
            let bytes = given.get(member_id.as_str()).map(|b| (*b).clone());
            (member_id.clone(), bytes.unwrap_or_default())
        })
        .collect();
    cx.out.records.push(CoordinatorRecord::GroupMetadata {
        group: g.group_id.clone(),
        value: Some(g.to_record_value(&assignment)),
    });
    set_and_propagate_assignment(g, &assignment, cx);
}

/// One member of a LeaveGroup. A static member may be removed by its instance id alone (an
/// admin's removal, KIP-345); a member id handed out but not joined is simply forgotten.
fn leave_one(g: &mut ClassicGroup, identity: &MemberIdentity, cx: &mut Ctx<'_>) -> i16 {
    let instance_id = identity.group_instance_id.as_deref();
    if identity.member_id.is_empty() {
        let Some(member_id) = instance_id
            .and_then(|i| g.static_member_id(i))
            .map(str::to_owned)
        else {
            return error_code::UNKNOWN_MEMBER_ID;
        };
        remove_member(g, &member_id, cx);
        return error_code::NONE;
    }
    if g.pending_join_members.remove(&identity.member_id).is_some() {
        return error_code::NONE;
    }
    match validate_member(g, &identity.member_id, instance_id) {
        Some(error) => error,
        None => {
            remove_member(g, &identity.member_id, cx);
            error_code::NONE
        }
    }
}
