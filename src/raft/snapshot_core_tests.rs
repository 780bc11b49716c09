//! Snapshots in the cores (KIP-630), by exact output: the leader answers a fetch below its log
//! start with its snapshot's id and serves `FetchSnapshot`; a follower fetches the snapshot in
//! chunks, installs it and fetches the log after it; an observer does the same in memory; and a
//! snapshot moves the log start.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::*;

const SNAP: SnapshotId = SnapshotId {
    end_offset: 10,
    epoch: 2,
};

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

fn fetch_snapshot(epoch: Epoch, snapshot: SnapshotId, position: i64) -> Message {
    Message::FetchSnapshotRequest {
        epoch,
        snapshot,
        position,
    }
}

fn chunk(epoch: Epoch, size: i64, position: i64, bytes: &'static [u8]) -> Message {
    Message::FetchSnapshotResponse {
        epoch,
        leader: Some(1),
        body: SnapshotBody::Chunk {
            snapshot: SNAP,
            size,
            position,
            bytes: Bytes::from_static(bytes),
        },
    }
}

fn send(to: NodeId, message: Message) -> Command {
    Command::Send { to, message }
}

/// Voter 1 of {1, 2, 3} restarted from the snapshot `SNAP` and three entries after it, then
/// elected by 2's vote: it leads epoch 3, its log from 10 to 14 (the last its leader-change).
fn leader_from_snapshot() -> (RaftCore, u64) {
    let config = RaftConfig::new(1, [1, 2, 3]);
    let state = QuorumStateRecord {
        epoch: 2,
        voted_for: None,
        leader: Some(3),
    };
    let log = vec![entry(2, "a"), entry(2, "b"), entry(2, "c")];
    let snapshots = BTreeSet::from([SNAP]);
    let mut core = RaftCore::restore_from(config, state, 10, snapshots, log, 0, 1);
    assert_eq!(core.high_watermark(), 10, "a snapshot is committed");
    let mut now_ms = 0;
    while core.role() != RoleName::Candidate {
        now_ms += 5;
        core.tick(now_ms);
    }
    let vote = Message::VoteResponse {
        epoch: core.epoch(),
        granted: true,
        leader: None,
    };
    core.receive(now_ms, 2, vote);
    assert_eq!((core.role(), core.epoch()), (RoleName::Leader, 3));
    assert_eq!((core.log_start(), core.log_end()), (10, 14));
    (core, now_ms)
}

#[test]
fn the_leader_sends_its_snapshot_id_to_a_fetch_below_its_log_start() {
    let (mut leader, now_ms) = leader_from_snapshot();
    let snapshot_body = |core: &RaftCore| {
        send(
            2,
            Message::FetchResponse {
                epoch: core.epoch(),
                leader: Some(1),
                body: FetchBody::Snapshot { snapshot: SNAP },
            },
        )
    };
    // Below the log start; at it in another epoch; an epoch older than the snapshot's.
    for (offset, epoch) in [(0, 0), (4, 2), (10, 1), (12, 1)] {
        let out = leader.receive(now_ms, 2, fetch(3, offset, epoch));
        assert_eq!(
            out,
            vec![snapshot_body(&leader)],
            "fetch at {offset} epoch {epoch}"
        );
    }
    // At the log start in the snapshot's epoch: the log from there.
    let out = leader.receive(now_ms, 2, fetch(3, 10, 2));
    let Command::Send {
        message:
            Message::FetchResponse {
                body:
                    FetchBody::Records {
                        from_offset,
                        entries,
                        ..
                    },
                ..
            },
        ..
    } = &out[0]
    else {
        panic!("{out:?}");
    };
    assert_eq!((*from_offset, entries.len()), (10, 4));
}

#[test]
fn the_leader_serves_fetch_snapshot_only_of_its_own_snapshots_in_its_epoch() {
    let (mut leader, now_ms) = leader_from_snapshot();
    let out = leader.receive(now_ms, 2, fetch_snapshot(3, SNAP, 4096));
    assert_eq!(
        out,
        vec![Command::ServeSnapshot {
            to: 2,
            snapshot: SNAP,
            position: 4096
        }]
    );
    let refusal = |body| {
        vec![send(
            2,
            Message::FetchSnapshotResponse {
                epoch: 3,
                leader: Some(1),
                body,
            },
        )]
    };
    let other = SnapshotId {
        end_offset: 11,
        epoch: 2,
    };
    let out = leader.receive(now_ms, 2, fetch_snapshot(3, other, 0));
    assert_eq!(out, refusal(SnapshotBody::NotFound));
    let out = leader.receive(now_ms, 2, fetch_snapshot(2, SNAP, 0));
    assert_eq!(out, refusal(SnapshotBody::Fenced));
}

#[test]
fn a_follower_fetches_the_snapshot_in_chunks_installs_it_and_fetches_the_log_after_it() {
    let config = RaftConfig::new(2, [1, 2, 3]);
    let mut follower = RaftCore::restore(config, QuorumStateRecord::default(), Vec::new(), 0, 7);
    let out = follower.receive(0, 1, Message::BeginQuorumEpoch { epoch: 3 });
    assert_eq!(out.last(), Some(&send(1, fetch(3, 0, 0))));
    let named = Message::FetchResponse {
        epoch: 3,
        leader: Some(1),
        body: FetchBody::Snapshot { snapshot: SNAP },
    };
    let out = follower.receive(5, 1, named);
    assert_eq!(out, vec![send(1, fetch_snapshot(3, SNAP, 0))]);
    let out = follower.receive(10, 1, chunk(3, 8, 0, b"abcd"));
    assert_eq!(
        out,
        vec![
            Command::WriteSnapshotChunk {
                snapshot: SNAP,
                position: 0,
                bytes: Bytes::from_static(b"abcd"),
            },
            send(1, fetch_snapshot(3, SNAP, 4)),
        ]
    );
    // A late duplicate of the first chunk is not written again: ask from where we are.
    let out = follower.receive(12, 1, chunk(3, 8, 0, b"abcd"));
    assert_eq!(out, vec![send(1, fetch_snapshot(3, SNAP, 4))]);
    let out = follower.receive(15, 1, chunk(3, 8, 4, b"efgh"));
    assert_eq!(
        out,
        vec![
            Command::WriteSnapshotChunk {
                snapshot: SNAP,
                position: 4,
                bytes: Bytes::from_static(b"efgh"),
            },
            Command::InstallSnapshot(SNAP),
            Command::HighWatermark(10),
            send(1, fetch(3, 10, 2)),
        ]
    );
    assert_eq!((follower.log_start(), follower.log_end()), (10, 10));
    assert_eq!(follower.latest_snapshot(), Some(SNAP));
    assert_eq!(follower.epoch_at(9), Some(2));
}

#[test]
fn a_snapshot_of_the_committed_log_moves_the_log_start() {
    let mut core = RaftCore::restore(
        RaftConfig::new(1, [1]),
        QuorumStateRecord::default(),
        Vec::new(),
        0,
        3,
    );
    let mut now_ms = 0;
    while core.role() != RoleName::Leader {
        now_ms += 5;
        core.tick(now_ms);
    }
    for i in 0..9 {
        core.propose(now_ms, Bytes::from(format!("r{i}"))).unwrap();
    }
    assert_eq!((core.log_end(), core.high_watermark()), (10, 10));
    let epoch = core.epoch();
    let at = |end_offset| SnapshotId { end_offset, epoch };
    core.snapshot_written(at(4));
    core.snapshot_written(at(8));
    assert!(!core.delete_before_snapshot(at(6)), "no snapshot there");
    assert!(core.delete_before_snapshot(at(8)));
    assert_eq!((core.log_start(), core.log_end()), (8, 10));
    assert_eq!(core.snapshots(), &BTreeSet::from([at(8)]));
    assert_eq!(core.entry(7), None);
    assert_eq!(core.epoch_at(7), Some(epoch));
    assert_eq!(
        core.entry(8).map(|e| e.data.clone()),
        Some(Bytes::from("r7"))
    );
    assert!(!core.delete_before_snapshot(at(8)), "already the log start");
}

#[test]
#[should_panic(expected = "is not of the committed log")]
fn a_snapshot_past_the_high_watermark_is_refused() {
    let (mut leader, _) = leader_from_snapshot();
    // The leader's own epoch-3 entry at 13 is not committed: no follower has it.
    leader.snapshot_written(SnapshotId {
        end_offset: 14,
        epoch: 3,
    });
}

#[test]
fn an_observer_fetches_the_snapshot_into_memory_and_starts_its_log_after_it() {
    let mut observer = ObserverCore::new(101, BTreeSet::from([1, 2, 3]), 9);
    let (to, first) = observer.poll(0).expect("a fetch");
    assert_eq!(first, fetch(0, 0, 0));
    let named = Message::FetchResponse {
        epoch: 3,
        leader: Some(1),
        body: FetchBody::Snapshot { snapshot: SNAP },
    };
    assert_eq!(observer.on_response(1, to, Some(named)), vec![]);
    let (to, request) = observer.poll(2).expect("a fetch");
    assert_eq!((to, request), (1, fetch_snapshot(3, SNAP, 0)));
    assert_eq!(
        observer.on_response(3, 1, Some(chunk(3, 8, 0, b"abcd"))),
        vec![]
    );
    assert_eq!(observer.poll(4), Some((1, fetch_snapshot(3, SNAP, 4))));
    let events = observer.on_response(5, 1, Some(chunk(3, 8, 4, b"efgh")));
    assert_eq!(
        events,
        vec![
            ObserverEvent::SnapshotLoaded {
                snapshot: SNAP,
                bytes: Bytes::from_static(b"abcdefgh"),
            },
            ObserverEvent::HighWatermark(10),
        ]
    );
    assert_eq!((observer.log_start(), observer.log_end()), (10, 10));
    assert_eq!(observer.poll(6), Some((1, fetch(3, 10, 2))));
}
