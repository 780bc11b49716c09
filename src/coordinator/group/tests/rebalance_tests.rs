//! Rebalances: a member joining, a session expiring, the rebalance timeout, the sync timeout.

use super::support::*;
use crate::coordinator::group::*;

#[test]
fn a_new_member_triggers_a_rebalance_the_others_learn_of_by_heartbeat() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1", "c2"]);
    h.at(8_000);
    let m3 = h.member_id_for("c3");
    // A member id handed out but not used yet does not disturb the group.
    assert_eq!(h.heartbeat(&ids[0], 1), error_code::NONE);
    let j3 = h.join_waits(join(GROUP, &m3, "c3"));
    assert_eq!(
        h.c.group(GROUP).unwrap().state(),
        ClassicGroupState::PreparingRebalance
    );
    assert_eq!(h.heartbeat(&ids[0], 1), error_code::REBALANCE_IN_PROGRESS);
    assert_eq!(h.heartbeat(&ids[1], 1), error_code::REBALANCE_IN_PROGRESS);
    let j1 = h.join_waits(join(GROUP, &ids[0], "c1"));
    // The last one to rejoin completes the join phase at once (not the initial rebalance).
    let (j2, out) = h.send(join(GROUP, &ids[1], "c2"));
    let all = member_list(&[(&ids[0], "c1"), (&ids[1], "c2"), (&m3, "c3")]);
    assert_eq!(
        by_request(&out),
        vec![
            (j3, joined(&m3, 2, &ids[0], vec![])),
            (j1, joined(&ids[0], 2, &ids[0], all)),
            (j2, joined(&ids[1], 2, &ids[0], vec![])),
        ]
    );
    // A zombie's SyncGroup of generation 1 is refused.
    assert_eq!(
        h.answer(sync(&ids[1], 1, &[])),
        sync_error(error_code::ILLEGAL_GENERATION)
    );
}

#[test]
fn a_rebalance_starting_during_the_sync_phase_sends_syncing_members_back() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1", "c2"]);
    h.send(join(GROUP, &ids[0], "c1"));
    let (_, out) = h.send(join(GROUP, &ids[1], "c2"));
    assert_eq!(out.responses.len(), 2, "generation 2 joined: {out:?}");
    let (s2, _) = h.send(sync(&ids[1], 2, &[]));
    let m3 = h.member_id_for("c3");
    let (_, out) = h.send(join(GROUP, &m3, "c3"));
    // The waiting SyncGroup is answered REBALANCE_IN_PROGRESS: its member must rejoin.
    let rejoin = SyncGroupResponse {
        error_code: error_code::REBALANCE_IN_PROGRESS,
        protocol_type: Some("consumer".to_owned()),
        protocol_name: Some("range".to_owned()),
        assignment: Default::default(),
    };
    assert_eq!(out.responses, vec![(s2, GroupResponse::SyncGroup(rejoin))]);
    assert_eq!(
        h.c.group(GROUP).unwrap().state(),
        ClassicGroupState::PreparingRebalance
    );
}

#[test]
fn a_member_whose_session_expires_is_removed_and_the_group_rebalances() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1", "c2"]);
    // Synced at 6 s: sessions end at 16 s without a heartbeat. c1 heartbeats; c2 is silent.
    h.at(12_000);
    assert_eq!(h.heartbeat(&ids[0], 1), error_code::NONE);
    assert_eq!(h.at(15_999), CoordinatorOutput::default());
    assert_eq!(
        h.at(16_000),
        CoordinatorOutput::default(),
        "c2 removed; a rebalance starts"
    );
    let group = h.c.group(GROUP).unwrap();
    assert_eq!(group.state(), ClassicGroupState::PreparingRebalance);
    assert!(group.member(&ids[1]).is_none());
    assert_eq!(h.heartbeat(&ids[0], 1), error_code::REBALANCE_IN_PROGRESS);
    assert_eq!(h.heartbeat(&ids[1], 1), error_code::UNKNOWN_MEMBER_ID);
    // c1 is the only member: its rejoin completes generation 2 at once.
    let (j1, out) = h.send(join(GROUP, &ids[0], "c1"));
    let all = member_list(&[(&ids[0], "c1")]);
    assert_eq!(out.responses, vec![(j1, joined(&ids[0], 2, &ids[0], all))]);
}

#[test]
fn the_rebalance_timeout_completes_the_join_without_the_members_that_did_not_rejoin() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1", "c2"]);
    h.at(7_000);
    let (j1, _) = h.send(join(GROUP, &ids[0], "c1"));
    // c2 keeps heartbeating but never rejoins: at the rebalance timeout (30 s) it is dropped.
    for t in [12_000, 20_000, 28_000, 36_000] {
        h.at(t);
        assert_eq!(h.heartbeat(&ids[1], 1), error_code::REBALANCE_IN_PROGRESS);
    }
    let out = h.at(37_000);
    let all = member_list(&[(&ids[0], "c1")]);
    assert_eq!(
        out,
        CoordinatorOutput {
            records: vec![],
            transactional: None,
            responses: vec![(j1, joined(&ids[0], 2, &ids[0], all))]
        }
    );
    assert_eq!(h.heartbeat(&ids[1], 2), error_code::UNKNOWN_MEMBER_ID);
}

#[test]
fn members_that_never_sync_are_removed_at_the_rebalance_timeout() {
    let mut h = Harness::new();
    let m1 = h.member_id_for("c1");
    let m2 = h.member_id_for("c2");
    h.join_waits(join(GROUP, &m1, "c1"));
    h.join_waits(join(GROUP, &m2, "c2"));
    h.at(6_000);
    h.send(sync(&m1, 1, &[(&m1, b"a"), (&m2, b"b")]));
    // m2 heartbeats, but never syncs: at 6 s + 30 s it is removed.
    for t in [14_000, 22_000, 30_000] {
        h.at(t);
        assert_eq!(h.heartbeat(&m2, 1), error_code::NONE);
        assert_eq!(h.heartbeat(&m1, 1), error_code::NONE);
    }
    h.at(36_000);
    let group = h.c.group(GROUP).unwrap();
    assert!(group.member(&m2).is_none());
    assert_eq!(group.state(), ClassicGroupState::PreparingRebalance);
}

#[test]
fn a_member_id_handed_out_but_never_used_expires_after_a_session() {
    let mut h = Harness::new();
    let m1 = h.member_id_for("c1");
    assert!(h.c.group(GROUP).unwrap().is_pending_member(&m1));
    h.at(10_000);
    assert!(!h.c.group(GROUP).unwrap().is_pending_member(&m1));
    assert_eq!(
        h.answer(join(GROUP, &m1, "c1")),
        join_error(error_code::UNKNOWN_MEMBER_ID, &m1)
    );
}

#[test]
fn the_initial_delay_is_extended_only_up_to_the_rebalance_timeout() {
    let mut h = Harness::new();
    let short = |member_id: &str, client: &str| {
        let GroupRequest::JoinGroup(mut r) = join(GROUP, member_id, client) else {
            unreachable!()
        };
        r.rebalance_timeout_ms = 5_000;
        GroupRequest::JoinGroup(r)
    };
    let ids: Vec<String> = ["c1", "c2", "c3"]
        .iter()
        .map(|c| h.member_id_for(c))
        .collect();
    h.join_waits(short(&ids[0], "c1"));
    h.at(1_000);
    h.join_waits(short(&ids[1], "c2"));
    // At 3 s a member has arrived: 2 s more (what is left of the 5 s), not 3.
    h.at(3_000);
    h.join_waits(short(&ids[2], "c3"));
    assert_eq!(h.at(4_999).responses, vec![]);
    let out = h.at(5_000);
    assert_eq!(
        out.responses.len(),
        3,
        "the join completes at the rebalance timeout: {out:?}"
    );
    assert_eq!(h.c.group(GROUP).unwrap().generation_id(), 1);
}

#[test]
fn the_leader_rejoining_a_stable_group_triggers_a_rebalance() {
    let mut h = Harness::new();
    let ids = h.stable_group(&["c1", "c2"]);
    h.join_waits(join(GROUP, &ids[0], "c1"));
    assert_eq!(
        h.c.group(GROUP).unwrap().state(),
        ClassicGroupState::PreparingRebalance
    );
    assert_eq!(h.heartbeat(&ids[1], 1), error_code::REBALANCE_IN_PROGRESS);
}

#[test]
fn one_seed_and_one_sequence_give_one_log_and_one_set_of_answers() {
    let run = || {
        let mut h = Harness::new();
        let ids = h.stable_group(&["c1", "c2", "c3"]);
        h.at(20_000);
        h.send(commit(&ids[2], 1, "t", 0, 1));
        let out = h.at(40_000);
        (h.log, out)
    };
    assert_eq!(run(), run());
}
