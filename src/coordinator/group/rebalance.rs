//! The rebalance of a classic group (`GroupMetadataManager`'s `prepareRebalance`,
//! `completeClassicGroupJoin`, `propagateAssignment` and the timers that drive them): the join
//! phase gathers the members' JoinGroups, then the next generation is answered to each, and
//! the sync phase waits for the leader's assignment.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::classic_group::{ClassicGroup, ClassicGroupState, JoinTimer};
use super::coordinator::CoordinatorOutput;
use super::records::CoordinatorRecord;
use super::{
    error_code, GroupCoordinatorConfig, GroupResponse, JoinGroupResponse, SyncGroupResponse,
    UNKNOWN_MEMBER_ID,
};

/// What every step of a rebalance needs besides the group: the configuration, the time, and
/// where its records and responses go.
pub(super) struct Ctx<'a> {
    pub(super) config: &'a GroupCoordinatorConfig,
    pub(super) now_ms: u64,
    pub(super) out: &'a mut CoordinatorOutput,
}

/// `maybePrepareRebalanceOrCompleteJoin`.
pub(super) fn maybe_prepare_rebalance_or_complete_join(g: &mut ClassicGroup, cx: &mut Ctx<'_>) {
    if g.can_rebalance() {
        prepare_rebalance(g, cx);
    } else {
        maybe_complete_join_phase(g, cx);
    }
}

/// `prepareRebalance`: members waiting on a sync are sent back to join; a new group's first
/// rebalance waits `group.initial.rebalance.delay.ms` for more members, any other the rebalance
/// timeout (unless everyone has joined already).
pub(super) fn prepare_rebalance(g: &mut ClassicGroup, cx: &mut Ctx<'_>) {
    if g.is_in_state(ClassicGroupState::CompletingRebalance) {
        reset_and_propagate_assignment_with_error(g, error_code::REBALANCE_IN_PROGRESS, cx);
    }
    g.sync_timer = None;
    let initial = g.is_in_state(ClassicGroupState::Empty);
    if initial {
        let delay_ms = cx.config.initial_rebalance_delay_ms;
        g.join_timer = Some(JoinTimer::InitialDelay {
            deadline_ms: cx.now_ms + delay_ms,
            delay_ms,
            remaining_ms: g.rebalance_timeout_ms().saturating_sub(delay_ms),
        });
    }
    g.transition_to(ClassicGroupState::PreparingRebalance, cx.now_ms);
    if !initial {
        maybe_complete_join_else_schedule(g, cx);
    }
}

fn maybe_complete_join_else_schedule(g: &mut ClassicGroup, cx: &mut Ctx<'_>) {
    if g.has_all_members_joined() {
        complete_join(g, cx);
    } else {
        schedule_rebalance_timeout(g, cx.now_ms);
    }
}

fn schedule_rebalance_timeout(g: &mut ClassicGroup, now_ms: u64) {
    g.join_timer = Some(JoinTimer::Rebalance {
        deadline_ms: now_ms + g.rebalance_timeout_ms(),
    });
}

/// `maybeCompleteJoinPhase`: when everyone has joined, except in the initial rebalance, which
/// always waits out its delay.
pub(super) fn maybe_complete_join_phase(g: &mut ClassicGroup, cx: &mut Ctx<'_>) {
    if g.is_in_state(ClassicGroupState::PreparingRebalance)
        && g.previous_state != ClassicGroupState::Empty
        && g.has_all_members_joined()
    {
        complete_join(g, cx);
    }
}

/// `tryCompleteInitialRebalanceElseSchedule`: the initial delay is extended (by at most the
/// delay, up to the rebalance timeout) while new members keep arriving.
pub(super) fn try_complete_initial_rebalance(
    g: &mut ClassicGroup,
    delay_ms: u64,
    remaining_ms: u64,
    cx: &mut Ctx<'_>,
) {
    if g.new_member_added && remaining_ms != 0 {
        g.new_member_added = false;
        let new_delay_ms = cx.config.initial_rebalance_delay_ms.min(remaining_ms);
        g.join_timer = Some(JoinTimer::InitialDelay {
            deadline_ms: cx.now_ms + new_delay_ms,
            delay_ms: new_delay_ms,
            remaining_ms: remaining_ms.saturating_sub(delay_ms),
        });
    } else {
        complete_join(g, cx);
    }
}

/// `completeClassicGroupJoin`: dynamic members that did not rejoin are dropped, then the next
/// generation: Empty (written to the log) or CompletingRebalance, answering every waiting
/// JoinGroup (the leader's with every member's subscription) and waiting for the SyncGroups.
pub(super) fn complete_join(g: &mut ClassicGroup, cx: &mut Ctx<'_>) {
    g.join_timer = None;
    let not_rejoined: Vec<String> = g
        .members
        .values()
        .filter(|m| !m.is_awaiting_join() && !m.is_static())
        .map(|m| m.member_id.clone())
        .collect();
    for member_id in &not_rejoined {
        g.remove(member_id);
    }
    if g.is_in_state(ClassicGroupState::Dead) {
        return;
    }
    if !g.maybe_elect_new_joined_leader() && !g.members.is_empty() {
        // Only static members that have not rejoined are left: wait another rebalance timeout
        // for them, or for their sessions to expire.
        schedule_rebalance_timeout(g, cx.now_ms);
        return;
    }
    g.init_next_generation(cx.now_ms);
    if g.is_in_state(ClassicGroupState::Empty) {
        let value = g.to_record_value(&BTreeMap::new());
        cx.out.records.push(CoordinatorRecord::GroupMetadata {
            group: g.group_id.clone(),
            value: Some(value),
        });
        return;
    }
    answer_joins(g, cx);
    g.sync_timer = Some((cx.now_ms + g.rebalance_timeout_ms(), g.generation_id));
}

/// The JoinGroup responses of a new generation; every member's session starts afresh and every
/// member owes a SyncGroup.
fn answer_joins(g: &mut ClassicGroup, cx: &mut Ctx<'_>) {
    let leader_members = g.current_members();
    let member_ids: Vec<String> = g.members.keys().cloned().collect();
    for member_id in member_ids {
        let response = JoinGroupResponse {
            error_code: error_code::NONE,
            generation_id: g.generation_id,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            leader: g.leader_id.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.clone(),
            members: if g.is_leader(&member_id) {
                leader_members.clone()
            } else {
                Vec::new()
            },
        };
        let member = g.members.get_mut(&member_id).expect("listed member");
        if let Some(request) = member.awaiting_join.take() {
            cx.out.respond(request, GroupResponse::JoinGroup(response));
        }
        member.heartbeat_deadline_ms = Some(cx.now_ms + timeout_ms(member.session_timeout_ms));
        member.is_new = false;
        g.pending_sync_members.insert(member_id);
    }
}

/// `resetAndPropagateAssignmentWithError`: a rebalance starting during the sync phase sends
/// the members waiting on their SyncGroup back to rejoin.
pub(super) fn reset_and_propagate_assignment_with_error(
    g: &mut ClassicGroup,
    error: i16,
    cx: &mut Ctx<'_>,
) {
    assert!(
        g.is_in_state(ClassicGroupState::CompletingRebalance),
        "group {} resets assignments in {:?}",
        g.group_id,
        g.state
    );
    for member in g.members.values_mut() {
        member.assignment = Bytes::new();
    }
    propagate_assignment(g, error, cx);
}

/// `setAndPropagateAssignment`: the leader's assignment is the members' (absent: empty), sent
/// to every member waiting on its SyncGroup; the group is Stable.
pub(super) fn set_and_propagate_assignment(
    g: &mut ClassicGroup,
    assignment: &BTreeMap<String, Bytes>,
    cx: &mut Ctx<'_>,
) {
    for (member_id, member) in g.members.iter_mut() {
        member.assignment = assignment.get(member_id).cloned().unwrap_or_default();
    }
    propagate_assignment(g, error_code::NONE, cx);
    g.transition_to(ClassicGroupState::Stable, cx.now_ms);
}

/// `propagateAssignment`: each waiting SyncGroup gets the member's assignment (or the error);
/// a member answered starts its session afresh.
fn propagate_assignment(g: &mut ClassicGroup, error: i16, cx: &mut Ctx<'_>) {
    for member in g.members.values_mut() {
        let Some(request) = member.awaiting_sync.take() else {
            continue;
        };
        let response = SyncGroupResponse {
            error_code: error,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            assignment: member.assignment.clone(),
        };
        cx.out.respond(request, GroupResponse::SyncGroup(response));
        member.heartbeat_deadline_ms = Some(cx.now_ms + timeout_ms(member.session_timeout_ms));
    }
}

/// `removePendingSyncMember`: once every member has synced, the sync timer is off.
pub(super) fn remove_pending_sync_member(g: &mut ClassicGroup, member_id: &str) {
    g.pending_sync_members.remove(member_id);
    let syncing = matches!(
        g.state,
        ClassicGroupState::CompletingRebalance | ClassicGroupState::Stable
    );
    if !syncing || g.pending_sync_members.is_empty() {
        g.sync_timer = None;
    }
}

/// `removeMemberAndUpdateClassicGroup`: a member leaves (session expired, LeaveGroup); its
/// waiting JoinGroup learns UNKNOWN_MEMBER_ID so that a live client rejoins; the group
/// rebalances, or completes a join that only waited for it.
pub(super) fn remove_member_and_update_group(
    g: &mut ClassicGroup,
    member_id: &str,
    cx: &mut Ctx<'_>,
) {
    remove_member(g, member_id, cx);
    match g.state {
        ClassicGroupState::Stable | ClassicGroupState::CompletingRebalance => {
            maybe_prepare_rebalance_or_complete_join(g, cx)
        }
        ClassicGroupState::PreparingRebalance if g.has_all_members_joined() => complete_join(g, cx),
        _ => {}
    }
}

/// Removes a member, answering its waiting JoinGroup with UNKNOWN_MEMBER_ID.
pub(super) fn remove_member(g: &mut ClassicGroup, member_id: &str, cx: &mut Ctx<'_>) {
    let Some(member) = g.remove(member_id) else {
        return;
    };
    if let Some(request) = member.awaiting_join {
        let response = JoinGroupResponse::error(error_code::UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID);
        cx.out.respond(request, GroupResponse::JoinGroup(response));
    }
}

/// `expirePendingSync`: members of this generation that never sent their SyncGroup are
/// removed, and the group rebalances without them.
pub(super) fn expire_pending_sync(g: &mut ClassicGroup, generation_id: i32, cx: &mut Ctx<'_>) {
    let syncing = matches!(
        g.state,
        ClassicGroupState::CompletingRebalance | ClassicGroupState::Stable
    );
    if generation_id != g.generation_id || !syncing || g.pending_sync_members.is_empty() {
        return;
    }
    let pending: Vec<String> = g.pending_sync_members.iter().cloned().collect();
    for member_id in &pending {
        remove_member(g, member_id, cx);
    }
    prepare_rebalance(g, cx);
}

/// `expireClassicGroupMemberHeartbeat`: a member id handed out but never joined is forgotten;
/// a member whose session (or, new, whose join) timed out is removed, unless it is waiting on
/// the rebalance.
pub(super) fn expire_heartbeat(g: &mut ClassicGroup, member_id: &str, cx: &mut Ctx<'_>) {
    if g.pending_join_members.remove(member_id).is_some() {
        if g.is_in_state(ClassicGroupState::PreparingRebalance) && g.has_all_members_joined() {
            complete_join(g, cx);
        }
        return;
    }
    let Some(member) = g.members.get_mut(member_id) else {
        return;
    };
    member.heartbeat_deadline_ms = None;
    if !member.has_satisfied_heartbeat() {
        remove_member_and_update_group(g, member_id, cx);
    }
}

/// A Kafka timeout (int32 ms) as a duration; a negative one is none.
pub(super) fn timeout_ms(ms: i32) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}
