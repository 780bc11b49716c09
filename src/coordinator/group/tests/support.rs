//! A coordinator with a clock, a log and request builders, so that a test reads as a story.

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::coordinator::group::*;

pub const GROUP: &str = "g1";
pub const SESSION_MS: i32 = 10_000;
pub const REBALANCE_MS: i32 = 30_000;
pub const HOST: &str = "/10.0.0.1";

/// The coordinator under test, the time, and every record it wrote (its partition's log).
pub struct Harness {
    pub c: GroupCoordinator,
    pub now_ms: u64,
    /// Every record written, plain and transactional.
    pub log: Vec<CoordinatorRecord>,
    /// The log as loading reads it: each record with its batch's producer id if transactional,
    /// and the transaction markers (`marker`).
    pub entries: Vec<LogEntry>,
    next_id: u64,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(GroupCoordinatorConfig::default())
    }

    pub fn with_config(config: GroupCoordinatorConfig) -> Harness {
        let mut c = GroupCoordinator::new(config, ChaCha8Rng::seed_from_u64(7));
        c.load(0, []);
        Harness {
            c,
            now_ms: 0,
            log: Vec::new(),
            entries: Vec::new(),
            next_id: 0,
        }
    }

    /// A coordinator that loads `log` at `now_ms`, as a broker that becomes the partition's
    /// leader does.
    pub fn loaded(log: &[CoordinatorRecord], now_ms: u64) -> Harness {
        let mut c = GroupCoordinator::new(
            GroupCoordinatorConfig::default(),
            ChaCha8Rng::seed_from_u64(8),
        );
        c.load(now_ms, log);
        let entries = log.iter().map(|r| plain(r.clone())).collect();
        Harness {
            c,
            now_ms,
            log: log.to_vec(),
            entries,
            next_id: 1_000,
        }
    }

    /// A coordinator that loads a log with transactions at `now_ms`.
    pub fn loaded_log(entries: &[LogEntry], now_ms: u64) -> Harness {
        let mut c = GroupCoordinator::new(
            GroupCoordinatorConfig::default(),
            ChaCha8Rng::seed_from_u64(8),
        );
        c.load_log(now_ms, entries);
        let log = entries
            .iter()
            .filter_map(|e| match e {
                LogEntry::Record { record, .. } => Some(record.clone()),
                LogEntry::Marker { .. } => None,
            })
            .collect();
        Harness {
            c,
            now_ms,
            log,
            entries: entries.to_vec(),
            next_id: 1_000,
        }
    }

    /// Sends a request now; its records go to the log.
    pub fn send(&mut self, request: GroupRequest) -> (RequestId, CoordinatorOutput) {
        self.next_id += 1;
        let id = RequestId(self.next_id);
        let out = self.c.handle(self.now_ms, id, request);
        self.written(&out);
        (id, out)
    }

    /// Moves the clock to `now_ms` and fires what is due.
    pub fn at(&mut self, now_ms: u64) -> CoordinatorOutput {
        self.now_ms = now_ms;
        let out = self.c.tick(now_ms);
        self.written(&out);
        out
    }

    /// An output's records, then its transactional batch, go to the log.
    fn written(&mut self, out: &CoordinatorOutput) {
        self.log.extend(out.records.iter().cloned());
        self.entries.extend(out.records.iter().cloned().map(plain));
        if let Some(txn) = &out.transactional {
            self.log.extend(txn.records.iter().cloned());
            self.entries
                .extend(txn.records.iter().map(|record| LogEntry::Record {
                    producer_id: Some(txn.producer_id),
                    record: record.clone(),
                }));
        }
    }

    /// The broker appended producer `producer_id`'s transaction marker to the partition.
    pub fn marker(&mut self, producer_id: i64, commit: bool) -> Vec<MaterializedOffset> {
        self.entries.push(LogEntry::Marker {
            producer_id,
            commit,
        });
        self.c.replay_end_transaction_marker(producer_id, commit)
    }

    /// Sends a request that must be answered at once, alone, and returns the answer.
    pub fn answer(&mut self, request: GroupRequest) -> GroupResponse {
        let (id, out) = self.send(request);
        assert_eq!(out.responses.len(), 1, "one response: {out:?}");
        assert_eq!(out.responses[0].0, id);
        out.responses[0].1.clone()
    }

    /// A first JoinGroup (KIP-394): returns the member id handed out.
    pub fn member_id_for(&mut self, client_id: &str) -> String {
        match self.answer(join(GROUP, "", client_id)) {
            GroupResponse::JoinGroup(r) if r.error_code == error_code::MEMBER_ID_REQUIRED => {
                r.member_id
            }
            other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
        }
    }

    /// A JoinGroup that must wait for the rebalance: returns its request id.
    pub fn join_waits(&mut self, request: GroupRequest) -> RequestId {
        let (id, out) = self.send(request);
        assert!(
            out.responses.iter().all(|(r, _)| *r != id),
            "the join waits: {out:?}"
        );
        id
    }

    pub fn heartbeat(&mut self, member_id: &str, generation_id: i32) -> i16 {
        match self.answer(heartbeat(member_id, generation_id)) {
            GroupResponse::Heartbeat(error) => error,
            other => panic!("not a heartbeat response: {other:?}"),
        }
    }

    /// Three dynamic members joined and synced: generation 1, Stable. Returns their ids, the
    /// leader first.
    pub fn stable_group(&mut self, clients: &[&str]) -> Vec<String> {
        let ids: Vec<String> = clients.iter().map(|c| self.member_id_for(c)).collect();
        for (id, client) in ids.iter().zip(clients) {
            self.join_waits(join(GROUP, id, client));
        }
        let done = self.at(self.now_ms + 6_000);
        assert_eq!(done.responses.len(), ids.len(), "{done:?}");
        for id in ids.iter().skip(1) {
            self.send(sync(id, 1, &[]));
        }
        let assignments: Vec<(&str, &[u8])> =
            ids.iter().map(|id| (id.as_str(), id.as_bytes())).collect();
        let out = self.send(sync(&ids[0], 1, &assignments)).1;
        assert_eq!(out.responses.len(), ids.len(), "{out:?}");
        assert_eq!(
            self.c.group(GROUP).unwrap().state(),
            ClassicGroupState::Stable
        );
        ids
    }
}

/// A consumer's subscription metadata, recognizable per client.
pub fn subscription(client_id: &str) -> Bytes {
    Bytes::from(format!("sub-{client_id}"))
}

pub fn join(group: &str, member_id: &str, client_id: &str) -> GroupRequest {
    GroupRequest::JoinGroup(JoinGroupRequest {
        group_id: group.to_owned(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        member_id: member_id.to_owned(),
        group_instance_id: None,
        protocol_type: "consumer".to_owned(),
        protocols: vec![("range".to_owned(), subscription(client_id))],
        client_id: client_id.to_owned(),
        client_host: HOST.to_owned(),
        require_known_member_id: true,
        supports_skip_assignment: true,
    })
}

/// A static member's JoinGroup (KIP-345).
pub fn join_static(member_id: &str, instance_id: &str, client_id: &str) -> GroupRequest {
    let GroupRequest::JoinGroup(mut r) = join(GROUP, member_id, client_id) else {
        unreachable!()
    };
    r.group_instance_id = Some(instance_id.to_owned());
    GroupRequest::JoinGroup(r)
}

pub fn sync(member_id: &str, generation_id: i32, assignments: &[(&str, &[u8])]) -> GroupRequest {
    sync_static(member_id, None, generation_id, assignments)
}

pub fn sync_static(
    member_id: &str,
    instance_id: Option<&str>,
    generation_id: i32,
    assignments: &[(&str, &[u8])],
) -> GroupRequest {
    GroupRequest::SyncGroup(SyncGroupRequest {
        group_id: GROUP.to_owned(),
        generation_id,
        member_id: member_id.to_owned(),
        group_instance_id: instance_id.map(str::to_owned),
        protocol_type: Some("consumer".to_owned()),
        protocol_name: Some("range".to_owned()),
        assignments: assignments
            .iter()
            .map(|(m, a)| ((*m).to_owned(), Bytes::copy_from_slice(a)))
            .collect(),
    })
}

pub fn heartbeat(member_id: &str, generation_id: i32) -> GroupRequest {
    GroupRequest::Heartbeat(HeartbeatRequest {
        group_id: GROUP.to_owned(),
        generation_id,
        member_id: member_id.to_owned(),
        group_instance_id: None,
    })
}

pub fn commit(
    member_id: &str,
    generation_id: i32,
    topic: &str,
    partition: i32,
    offset: i64,
) -> GroupRequest {
    GroupRequest::OffsetCommit(OffsetCommitRequest {
        group_id: GROUP.to_owned(),
        generation_id,
        member_id: member_id.to_owned(),
        group_instance_id: None,
        topics: vec![(
            topic.to_owned(),
            vec![OffsetCommitPartition {
                partition_index: partition,
                committed_offset: offset,
                committed_leader_epoch: 3,
                committed_metadata: Some("m".to_owned()),
            }],
        )],
    })
}

pub fn commit_response(topic: &str, partition: i32, error: i16) -> GroupResponse {
    GroupResponse::OffsetCommit(OffsetCommitResponse {
        topics: vec![(topic.to_owned(), vec![(partition, error)])],
    })
}

/// The record an accepted `commit` writes at `now_ms`.
pub fn commit_record(topic: &str, partition: i32, offset: i64, now_ms: i64) -> CoordinatorRecord {
    CoordinatorRecord::OffsetCommit {
        group: GROUP.to_owned(),
        topic: topic.to_owned(),
        partition,
        value: Some(OffsetCommitValue {
            offset,
            leader_epoch: 3,
            metadata: "m".to_owned(),
            commit_timestamp_ms: now_ms,
        }),
    }
}

pub fn leave(members: &[(&str, Option<&str>)]) -> GroupRequest {
    GroupRequest::LeaveGroup(LeaveGroupRequest {
        group_id: GROUP.to_owned(),
        members: members
            .iter()
            .map(|(m, i)| MemberIdentity {
                member_id: (*m).to_owned(),
                group_instance_id: i.map(str::to_owned),
            })
            .collect(),
    })
}

/// A successful JoinGroup answer of `generation_id` led by `leader`; `members` for the leader.
pub fn joined(
    member_id: &str,
    generation_id: i32,
    leader: &str,
    members: Vec<JoinGroupResponseMember>,
) -> GroupResponse {
    GroupResponse::JoinGroup(JoinGroupResponse {
        error_code: error_code::NONE,
        generation_id,
        protocol_type: Some("consumer".to_owned()),
        protocol_name: Some("range".to_owned()),
        leader: leader.to_owned(),
        skip_assignment: false,
        member_id: member_id.to_owned(),
        members,
    })
}

/// The leader's list: (member id, client id), sorted by member id as the coordinator lists them.
pub fn member_list(members: &[(&str, &str)]) -> Vec<JoinGroupResponseMember> {
    let mut list: Vec<JoinGroupResponseMember> = members
        .iter()
        .map(|(m, c)| JoinGroupResponseMember {
            member_id: (*m).to_owned(),
            group_instance_id: None,
            metadata: subscription(c),
        })
        .collect();
    list.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    list
}

pub fn synced(assignment: &[u8]) -> GroupResponse {
    GroupResponse::SyncGroup(SyncGroupResponse {
        error_code: error_code::NONE,
        protocol_type: Some("consumer".to_owned()),
        protocol_name: Some("range".to_owned()),
        assignment: Bytes::copy_from_slice(assignment),
    })
}

pub fn sync_error(error: i16) -> GroupResponse {
    GroupResponse::SyncGroup(SyncGroupResponse::error(error))
}

pub fn join_error(error: i16, member_id: &str) -> GroupResponse {
    GroupResponse::JoinGroup(JoinGroupResponse::error(error, member_id))
}

/// The responses of an output, sorted by request id.
pub fn by_request(out: &CoordinatorOutput) -> Vec<(RequestId, GroupResponse)> {
    let mut responses = out.responses.clone();
    responses.sort_by_key(|(id, _)| *id);
    responses
}

/// A record of a plain batch.
pub fn plain(record: CoordinatorRecord) -> LogEntry {
    LogEntry::Record {
        producer_id: None,
        record,
    }
}
