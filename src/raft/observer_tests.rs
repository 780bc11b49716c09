//! Observers (KIP-595): the leader serves a non-voter's fetch without counting it; the observer
//! finds the leader, follows it, truncates what was never committed, and follows the next leader.
//! Exact outputs for the leader's and the observer's single steps, then stories on the
//! `sim_tests` cluster.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::observer::{FETCH_IDLE_MS, REQUEST_TIMEOUT_MS, RETRY_BACKOFF_MS};
use super::sim_tests::{Cluster, FIRST_OBSERVER};
use super::*;

const OBSERVER: NodeId = FIRST_OBSERVER;

fn entry(epoch: Epoch, data: &str) -> Entry {
    Entry {
        epoch,
        data: Bytes::from(data.to_string()),
    }
}

fn fetch(epoch: Epoch, fetch_offset: i64, last_fetched_epoch: Epoch) -> Message {
    Message::FetchRequest {
        epoch,
        fetch_offset,
        last_fetched_epoch,
    }
}

fn answer(epoch: Epoch, leader: NodeId, body: FetchBody) -> Message {
    Message::FetchResponse {
        epoch,
        leader: Some(leader),
        body,
    }
}

fn records(from_offset: i64, entries: Vec<Entry>, high_watermark: i64) -> FetchBody {
    FetchBody::Records {
        from_offset,
        entries,
        high_watermark,
    }
}

/// Voter 1 of {1, 2, 3} once its election timer has made it a candidate; returns when (ms).
fn candidate_of_three() -> (RaftCore, u64) {
    let config = RaftConfig::new(1, [1, 2, 3]);
    let mut core = RaftCore::restore(config, QuorumStateRecord::default(), Vec::new(), 0, 1);
    let mut now_ms = 0;
    while core.role() != RoleName::Candidate {
        now_ms += 5;
        core.tick(now_ms);
    }
    (core, now_ms)
}

fn granted(core: &RaftCore) -> Message {
    Message::VoteResponse {
        epoch: core.epoch(),
        granted: true,
        leader: None,
    }
}

/// Voter 1 of {1, 2, 3} elected by 2's vote alone; returns when (ms) it became leader.
fn leader_of_three() -> (RaftCore, u64) {
    let (mut core, now_ms) = candidate_of_three();
    core.receive(now_ms, 2, granted(&core));
    assert_eq!(core.role(), RoleName::Leader);
    (core, now_ms)
}

// ---- the leader's side ------------------------------------------------------------------------

#[test]
fn the_leader_serves_an_observer_its_entries_and_high_watermark() {
    let (mut leader, now_ms) = leader_of_three();
    let epoch = leader.epoch();
    leader.receive(now_ms, 2, fetch(epoch, 1, epoch));
    assert_eq!(
        leader.high_watermark(),
        1,
        "voter 2 holds the leader-change entry"
    );
    leader.propose(now_ms, Bytes::from("a")).unwrap();
    leader.propose(now_ms, Bytes::from("b")).unwrap();

    let commands = leader.receive(now_ms, OBSERVER, fetch(epoch, 0, 0));

    let served = answer(epoch, 1, records(0, leader.log().to_vec(), 1));
    assert_eq!(
        commands,
        vec![Command::Send {
            to: OBSERVER,
            message: served
        }]
    );
    assert_eq!(leader.log().len(), 3);
}

#[test]
fn an_observer_fetching_everything_moves_neither_the_high_watermark_nor_check_quorum() {
    // Voters 2 and 3 are gone; only an observer fetches, always the whole log.
    let (mut leader, since_ms) = leader_of_three();
    let epoch = leader.epoch();
    let mut resigned_ms = None;
    for (i, now_ms) in (since_ms..since_ms + 4_000).step_by(50).enumerate() {
        if i % 4 == 0 {
            if let Ok((_, commands)) = leader.propose(now_ms, Bytes::from("x")) {
                assert!(!commands
                    .iter()
                    .any(|c| matches!(c, Command::HighWatermark(_))));
            }
        }
        let end = leader.log().len() as i64;
        let commands = leader.receive(now_ms, OBSERVER, fetch(epoch, end, epoch));
        assert!(
            !commands
                .iter()
                .any(|c| matches!(c, Command::HighWatermark(_))),
            "an observer's fetch moved the high watermark at {now_ms} ms: {commands:?}"
        );
        leader.tick(now_ms);
        if leader.role() == RoleName::Resigned && resigned_ms.is_none() {
            resigned_ms = Some(now_ms);
        }
    }
    assert_eq!(leader.high_watermark(), 0);
    assert!(leader.log().len() > 10);
    // Check-quorum counts voters only: 1.5 × fetch.timeout.ms after taking office it resigns.
    let resigned_ms = resigned_ms.expect("an observer kept a leader without a quorum in office");
    assert!(resigned_ms >= since_ms + 3_000, "resigned at {resigned_ms}");
}

#[test]
fn a_voter_that_does_not_lead_refuses_an_observer_naming_the_leader_it_knows() {
    let config = RaftConfig::new(2, [1, 2, 3]);
    let mut voter = RaftCore::restore(config, QuorumStateRecord::default(), Vec::new(), 0, 2);
    let refused = |leader| Message::FetchResponse {
        epoch: 1,
        leader,
        body: FetchBody::Fenced,
    };

    voter.receive(
        0,
        3,
        Message::VoteRequest {
            epoch: 1,
            last: LogPosition {
                last_epoch: 0,
                end_offset: 0,
            },
        },
    );
    let voted = voter.receive(1, OBSERVER, fetch(0, 0, 0));
    assert_eq!(
        voted,
        vec![Command::Send {
            to: OBSERVER,
            message: refused(None)
        }]
    );

    voter.receive(2, 1, Message::BeginQuorumEpoch { epoch: 1 });
    assert_eq!(voter.role(), RoleName::Follower);
    let following = voter.receive(3, OBSERVER, fetch(0, 0, 0));
    assert_eq!(
        following,
        vec![Command::Send {
            to: OBSERVER,
            message: refused(Some(1))
        }]
    );
}

#[test]
fn an_observer_cannot_vote() {
    let (mut core, now_ms) = candidate_of_three();
    let vote = granted(&core);
    assert_eq!(core.receive(now_ms, OBSERVER, vote), Vec::new());
    assert_eq!(core.role(), RoleName::Candidate);
}

// ---- the observer's side ----------------------------------------------------------------------

fn observer() -> ObserverCore {
    ObserverCore::new(OBSERVER, BTreeSet::from([1, 2, 3]), 7)
}

/// An observer that has learnt at 0 ms that voter 1 leads `epoch`, its fetch not yet sent.
fn following_1_in(epoch: Epoch) -> ObserverCore {
    let mut o = observer();
    let (to, _) = o.poll(0).unwrap();
    o.on_response(0, to, Some(answer(epoch, 1, FetchBody::Fenced)));
    assert_eq!((o.epoch(), o.leader()), (epoch, Some(1)));
    o
}

fn following_1() -> ObserverCore {
    following_1_in(2)
}

#[test]
fn an_observer_asks_a_random_voter_then_fetches_from_the_leader_it_names() {
    let mut o = observer();
    let (asked, request) = o.poll(0).unwrap();
    assert!([1, 2, 3].contains(&asked));
    assert_eq!(request, fetch(0, 0, 0));
    assert_eq!(o.poll(1), None, "one fetch in flight at most");

    let leader = if asked == 3 { 1 } else { 3 };
    let events = o.on_response(5, asked, Some(answer(2, leader, FetchBody::Fenced)));
    assert_eq!(events, vec![]);
    assert_eq!((o.epoch(), o.leader()), (2, Some(leader)));

    assert_eq!(o.poll(5), Some((leader, fetch(2, 0, 0))));
    let body = records(0, vec![entry(1, "a"), entry(2, "b")], 1);
    let events = o.on_response(8, leader, Some(answer(2, leader, body)));
    assert_eq!(
        events,
        vec![
            ObserverEvent::Appended {
                from_offset: 0,
                count: 2
            },
            ObserverEvent::HighWatermark(1)
        ]
    );

    // It asks again at once; caught up, it waits before the next fetch.
    assert_eq!(o.poll(8), Some((leader, fetch(2, 2, 2))));
    let events = o.on_response(10, leader, Some(answer(2, leader, records(2, vec![], 2))));
    assert_eq!(events, vec![ObserverEvent::HighWatermark(2)]);
    assert_eq!(o.poll(10 + FETCH_IDLE_MS - 1), None);
    assert_eq!(o.poll(10 + FETCH_IDLE_MS), Some((leader, fetch(2, 2, 2))));
    assert_eq!(o.log(), &[entry(1, "a"), entry(2, "b")]);
}

#[test]
fn an_observer_ignores_answers_it_did_not_ask_for_and_stale_records() {
    let mut o = following_1();
    assert_eq!(o.poll(0), Some((1, fetch(2, 0, 0))));
    let body = records(0, vec![entry(2, "a")], 1);
    assert_eq!(
        o.on_response(1, 2, Some(answer(2, 2, body.clone()))),
        vec![]
    );
    // Records for another position than asked for.
    let stale = records(3, vec![entry(2, "d")], 1);
    assert_eq!(o.on_response(2, 1, Some(answer(2, 1, stale))), vec![]);
    assert_eq!(o.poll(2), Some((1, fetch(2, 0, 0))));
    // Records from an older epoch are not the leader's.
    assert_eq!(o.on_response(3, 1, Some(answer(1, 1, body))), vec![]);
    assert!(o.log().is_empty());
}

#[test]
fn an_unanswered_fetch_is_abandoned_and_the_leader_forgotten() {
    let mut o = following_1();
    assert_eq!(o.poll(100), Some((1, fetch(2, 0, 0))));
    // A transport failure alone keeps the leader.
    assert_eq!(o.on_response(101, 1, None), vec![]);
    assert_eq!(o.poll(101 + RETRY_BACKOFF_MS - 1), None);
    let sent_ms = 101 + RETRY_BACKOFF_MS;
    assert_eq!(o.poll(sent_ms), Some((1, fetch(2, 0, 0))));

    assert_eq!(o.poll(sent_ms + REQUEST_TIMEOUT_MS - 1), None);
    assert_eq!(o.poll(sent_ms + REQUEST_TIMEOUT_MS), None);
    assert_eq!(o.leader(), None);
    assert_eq!(o.epoch(), 2);
    let (_, request) = o
        .poll(sent_ms + REQUEST_TIMEOUT_MS + RETRY_BACKOFF_MS)
        .expect("a fetch to a random voter");
    assert_eq!(request, fetch(2, 0, 0));
}

#[test]
fn a_leader_that_refuses_in_its_own_epoch_is_forgotten() {
    let mut o = following_1();
    o.poll(0).unwrap();
    assert_eq!(
        o.on_response(1, 1, Some(answer(2, 1, FetchBody::Fenced))),
        vec![]
    );
    assert_eq!(
        o.leader(),
        None,
        "a resigned leader refuses; another voter will know more"
    );
}

/// An observer that holds `epochs`, committed below `high_watermark`, following voter 1 in
/// epoch 3 with its next fetch in flight.
fn holding(epochs: &[Epoch], high_watermark: i64) -> ObserverCore {
    let mut o = following_1_in(3);
    o.poll(0).unwrap();
    let entries = epochs.iter().map(|&e| entry(e, &format!("e{e}"))).collect();
    o.on_response(
        1,
        1,
        Some(answer(3, 1, records(0, entries, high_watermark))),
    );
    assert_eq!(o.high_watermark(), high_watermark);
    let end = epochs.len() as i64;
    assert_eq!(o.poll(1), Some((1, fetch(3, end, *epochs.last().unwrap()))));
    o
}

#[test]
fn an_observer_truncates_to_where_its_epochs_agree_with_the_leader() {
    // The leader ends epoch 1 at 3; ours ends at 2, followed by entries of epoch 2 it lacks.
    let mut o = holding(&[1, 1, 2, 2], 1);
    let diverging = FetchBody::Diverging {
        epoch: 1,
        end_offset: 3,
    };
    let events = o.on_response(2, 1, Some(answer(3, 1, diverging)));
    assert_eq!(events, vec![ObserverEvent::Truncated { end_offset: 2 }]);
    assert_eq!(o.poll(2), Some((1, fetch(3, 2, 1))));
    assert_eq!(o.high_watermark(), 1);
}

#[test]
#[should_panic(expected = "would truncate committed entries: to 0 below its high watermark 2")]
fn an_observer_refuses_to_truncate_below_its_high_watermark() {
    let mut o = holding(&[1, 1, 1], 2);
    let diverging = FetchBody::Diverging {
        epoch: 0,
        end_offset: 0,
    };
    o.on_response(2, 1, Some(answer(3, 1, diverging)));
}

// ---- stories on a cluster ---------------------------------------------------------------------

/// Stops proposing at `until_ms` and lets everyone catch up. The harness loses 5% of messages
/// even without faults, and an observer waits out a lost fetch (`REQUEST_TIMEOUT_MS`), hence
/// a few seconds.
fn settle(cluster: &mut Cluster, until_ms: u64) {
    cluster.run(until_ms);
    cluster.proposing = false;
    cluster.run(until_ms + 5_000);
    cluster.check_observers();
    assert_eq!(cluster.violations, Vec::<String>::new());
}

fn assert_caught_up(cluster: &Cluster, observer: NodeId, leader: NodeId) {
    let (o, l) = (cluster.observer(observer), cluster.voter(leader).unwrap());
    assert_eq!((o.leader(), o.epoch()), (Some(leader), l.epoch()));
    assert_eq!(o.log(), l.log());
    assert_eq!(o.high_watermark(), l.high_watermark());
    assert_eq!(o.high_watermark(), l.log().len() as i64);
}

#[test]
fn an_observer_joining_late_catches_up_to_the_leaders_log_and_high_watermark() {
    let mut cluster = Cluster::new(3, 7, RaftBugs::default());
    cluster.faults_on = false;
    cluster.run(3_000);
    assert!(cluster.committed.len() > 50);
    let mut cluster = cluster.with_observers(1);
    settle(&mut cluster, 6_000);
    let leader = cluster.leader().unwrap();
    assert_caught_up(&cluster, OBSERVER, leader);
}

#[test]
fn an_observer_follows_a_new_leader_when_the_leader_is_killed() {
    let mut cluster = Cluster::new(3, 7, RaftBugs::default()).with_observers(1);
    cluster.faults_on = false;
    cluster.run(3_000);
    let old = cluster.leader().unwrap();
    assert_eq!(cluster.observer(OBSERVER).leader(), Some(old));
    let old_epoch = cluster.voter(old).unwrap().epoch();

    cluster.kill(old);
    settle(&mut cluster, 12_000);
    let new = cluster
        .leader()
        .expect("the two voters left elect a leader");
    assert_ne!(new, old);
    assert!(cluster.observer(OBSERVER).epoch() > old_epoch);
    assert_caught_up(&cluster, OBSERVER, new);
}

#[test]
fn an_observer_cut_off_with_an_old_leader_truncates_its_uncommitted_suffix() {
    let mut cluster = Cluster::new(3, 7, RaftBugs::default()).with_observers(1);
    cluster.faults_on = false;
    cluster.run(3_000);
    let old = cluster.leader().unwrap();
    let others: Vec<NodeId> = [1, 2, 3].into_iter().filter(|&v| v != old).collect();

    // The old leader goes on appending, for the observer only, until check-quorum stops it.
    cluster.partition(&[&[old, OBSERVER], &others]);
    cluster.run(5_500);
    let o = cluster.observer(OBSERVER);
    let (uncommitted, hw) = (o.log().len() as i64, o.high_watermark());
    assert!(uncommitted > hw, "observer at {uncommitted}, HW {hw}");

    cluster.run(9_000);
    cluster.heal();
    settle(&mut cluster, 12_000);
    let new = cluster.leader().unwrap();
    assert_ne!(new, old);
    assert!(!cluster.observer_truncations.is_empty());
    for &(id, end_offset, hw) in &cluster.observer_truncations {
        assert!(
            end_offset >= hw,
            "observer {id} truncated to {end_offset} below HW {hw}"
        );
        assert!(end_offset < uncommitted);
    }
    assert_caught_up(&cluster, OBSERVER, new);
}

#[test]
fn observers_leave_the_voters_run_unchanged() {
    // Their traffic and faults draw from a stream of their own, and no voter counts them: the
    // quorum commits the same entries, through the same leaders, with observers or without.
    for seed in 0..5 {
        let mut alone = Cluster::new(3, seed, RaftBugs::default());
        alone.run(20_000);
        let mut observed = Cluster::new(3, seed, RaftBugs::default()).with_observers(2);
        observed.run(20_000);
        assert_eq!(alone.leaders, observed.leaders, "seed {seed}");
        assert_eq!(alone.committed, observed.committed, "seed {seed}");
    }
}
