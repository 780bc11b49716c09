//! OffsetCommit, OffsetFetch and offset expiration (Kafka's `OffsetMetadataManager`).

use std::collections::BTreeMap;

use super::classic_group::{ms_i64, ClassicGroup, ClassicGroupState};
use super::coordinator::{CoordinatorOutput, GroupCoordinator, GroupOffsets, OffsetAndMetadata};
use super::join::validate_member;
use super::rebalance::timeout_ms;
use super::records::{CoordinatorRecord, OffsetCommitValue};
use super::{
    error_code, GroupResponse, OffsetCommitPartition, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchPartition, OffsetFetchRequest, OffsetFetchResponse, RequestId,
};

impl GroupCoordinator {
    /// `commitOffset`: validated against the group (fenced by generation and member, unless
    /// `offset_commit_fencing` is off), then one OffsetCommit record per partition, applied as
    /// it is written. An error of the group is every partition's error.
    pub(super) fn commit_offsets(
        &mut self,
        now_ms: u64,
        id: RequestId,
        request: OffsetCommitRequest,
        out: &mut CoordinatorOutput,
    ) {
        let committer = Committer {
            group_id: &request.group_id,
            generation_id: request.generation_id,
            member_id: &request.member_id,
            group_instance_id: request.group_instance_id.as_deref(),
        };
        let group_error = self.validate_offset_commit(now_ms, committer, false);
        if group_error == error_code::NONE {
            self.keep_committer_alive(now_ms, &request);
        }
        let mut topics = Vec::with_capacity(request.topics.len());
        for (topic, partitions) in &request.topics {
            let mut results = Vec::with_capacity(partitions.len());
            for p in partitions {
                let error = if group_error != error_code::NONE {
                    group_error
                } else if self.metadata_too_large(p) {
                    error_code::OFFSET_METADATA_TOO_LARGE
                } else {
                    let record = commit_record(now_ms, &request.group_id, topic, p);
                    self.replay(&record);
                    out.records.push(record);
                    error_code::NONE
                };
                results.push((p.partition_index, error));
            }
            topics.push((topic.clone(), results));
        }
        out.respond(
            id,
            GroupResponse::OffsetCommit(OffsetCommitResponse { topics }),
        );
    }

    /// `OffsetMetadataManager.validateOffsetCommit` and `ClassicGroup.validateOffsetCommit`.
    /// A commit with generation -1 comes from a consumer outside group management: it creates
    /// the group if needed and is accepted while the group is Empty. Otherwise the member must
    /// be the group's (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) and of its generation
    /// (ILLEGAL_GENERATION: a zombie of an older one), and not between join and sync
    /// (REBALANCE_IN_PROGRESS). A transactional commit (TxnOffsetCommit, `transactional`) is
    /// held to the same rules but two: one without generation nor member (a v0-2 request, which
    /// has no such fields) is accepted whatever the group's state, and a rebalance does not
    /// hold it back (KIP-447 fences by generation only).
    pub(super) fn validate_offset_commit(
        &mut self,
        now_ms: u64,
        committer: Committer<'_>,
        transactional: bool,
    ) -> i16 {
        let fencing = self.config.offset_commit_fencing;
        let Some(g) = self.groups.get(committer.group_id) else {
            if committer.generation_id >= 0 && fencing {
                return error_code::ILLEGAL_GENERATION;
            }
            let group = ClassicGroup::new(committer.group_id, now_ms);
            self.groups.insert(committer.group_id.to_owned(), group);
            return error_code::NONE;
        };
        if g.is_in_state(ClassicGroupState::Dead) {
            return error_code::COORDINATOR_NOT_AVAILABLE;
        }
        if !fencing || (committer.generation_id < 0 && g.is_in_state(ClassicGroupState::Empty)) {
            return error_code::NONE;
        }
        let (member_id, instance_id) = (committer.member_id, committer.group_instance_id);
        if committer.generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            if let Some(error) = validate_member(g, member_id, instance_id) {
                return error;
            }
            if committer.generation_id != g.generation_id {
                return error_code::ILLEGAL_GENERATION;
            }
        } else if !transactional && !g.is_in_state(ClassicGroupState::Empty) {
            return error_code::UNKNOWN_MEMBER_ID;
        }
        if !transactional && g.is_in_state(ClassicGroupState::CompletingRebalance) {
            return error_code::REBALANCE_IN_PROGRESS;
        }
        error_code::NONE
    }

    /// `isMetadataInvalid`: longer than `offset.metadata.max.bytes`.
    pub(super) fn metadata_too_large(&self, p: &OffsetCommitPartition) -> bool {
        p.committed_metadata.as_ref().map_or(0, String::len) > self.config.offset_metadata_max_bytes
    }

    /// A member's commit keeps its session alive while the group is Stable or preparing a
    /// rebalance, as in the classic protocol.
    fn keep_committer_alive(&mut self, now_ms: u64, request: &OffsetCommitRequest) {
        let Some(g) = self.groups.get_mut(&request.group_id) else {
            return;
        };
        if !matches!(
            g.state,
            ClassicGroupState::Stable | ClassicGroupState::PreparingRebalance
        ) {
            return;
        }
        if let Some(member) = g.members.get_mut(&request.member_id) {
            member.heartbeat_deadline_ms = Some(now_ms + timeout_ms(member.session_timeout_ms));
        }
    }

    /// `fetchOffsets` / `fetchAllOffsets`: a partition without a committed offset answers
    /// offset -1 and empty metadata; no topics asks for all the group's committed offsets.
    /// Asked for stable offsets, a partition with a pending transactional offset answers
    /// UNSTABLE_OFFSET_COMMIT (and -1) instead: the consumer retries once the transaction ends.
    pub(super) fn fetch_offsets(&self, request: &OffsetFetchRequest) -> OffsetFetchResponse {
        let group_id = request.group_id.as_str();
        let empty = BTreeMap::new();
        let offsets = self.offsets.get(group_id).unwrap_or(&empty);
        let partition = |topic: &str, p: i32, o: Option<&OffsetAndMetadata>| {
            let unstable =
                request.require_stable && self.has_pending_txn_offset(group_id, topic, p);
            let o = o.filter(|_| !unstable);
            OffsetFetchPartition {
                partition_index: p,
                committed_offset: o.map_or(-1, |o| o.committed_offset),
                committed_leader_epoch: o.map_or(-1, |o| o.leader_epoch),
                metadata: Some(o.map(|o| o.metadata.clone()).unwrap_or_default()),
                error_code: if unstable {
                    error_code::UNSTABLE_OFFSET_COMMIT
                } else {
                    error_code::NONE
                },
            }
        };
        let topics = match &request.topics {
            Some(topics) => topics
                .iter()
                .map(|(topic, partitions)| {
                    let found = |p: &i32| partition(topic, *p, offsets.get(&(topic.clone(), *p)));
                    (topic.clone(), partitions.iter().map(found).collect())
                })
                .collect(),
            None => {
                let mut by_topic: Vec<(String, Vec<OffsetFetchPartition>)> = Vec::new();
                for ((topic, p), o) in offsets {
                    if by_topic.last().is_none_or(|(t, _)| t != topic) {
                        by_topic.push((topic.clone(), Vec::new()));
                    }
                    by_topic
                        .last_mut()
                        .expect("pushed")
                        .1
                        .push(partition(topic, *p, Some(o)));
                }
                by_topic
            }
        };
        OffsetFetchResponse {
            error_code: error_code::NONE,
            topics,
        }
    }

    /// Applies an OffsetCommit record of a plain batch: it is the partition's committed offset
    /// now. A tombstone deletes the offset, and any transaction's pending offset of the
    /// partition with it.
    pub(super) fn replay_offset_commit(
        &mut self,
        group_id: &str,
        key: (String, i32),
        value: Option<&OffsetCommitValue>,
    ) {
        let Some(value) = value else {
            remove_offset(&mut self.offsets, group_id, &key);
            self.drop_pending_txn_offsets(group_id, &key);
            return;
        };
        self.ensure_group(group_id, value.commit_timestamp_ms);
        let offset = self.offset_from_record(value);
        self.offsets
            .entry(group_id.to_owned())
            .or_default()
            .insert(key, offset);
    }

    /// An offset commit of a group not known creates it, empty, without protocol type: the
    /// "simple" group of a consumer without group management.
    pub(super) fn ensure_group(&mut self, group_id: &str, commit_timestamp_ms: i64) {
        if !self.groups.contains_key(group_id) {
            let created_ms = u64::try_from(commit_timestamp_ms).unwrap_or(0);
            let group = ClassicGroup::new(group_id, created_ms);
            self.groups.insert(group_id.to_owned(), group);
        }
    }

    /// The offset a record holds, at the position of the record being replayed.
    pub(super) fn offset_from_record(&self, value: &OffsetCommitValue) -> OffsetAndMetadata {
        OffsetAndMetadata {
            committed_offset: value.offset,
            leader_epoch: value.leader_epoch,
            metadata: value.metadata.clone(),
            commit_timestamp_ms: value.commit_timestamp_ms,
            record_position: self.records_replayed,
        }
    }

    /// `cleanupGroupMetadata`: every `offsets.retention.check.interval.ms`, the offsets of
    /// Empty groups expire `offsets.retention.minutes` after the group became empty (after the
    /// commit, for a group without protocol type); an Empty group left without offsets is
    /// deleted. Tombstones are written for both. An offset with a transaction's pending offset
    /// waits for the transaction, and so does its group.
    pub(super) fn expire_offsets(&mut self, now_ms: u64, out: &mut CoordinatorOutput) {
        let group_ids: Vec<String> = self.groups.keys().cloned().collect();
        for group_id in group_ids {
            let expired = self.expired_offsets(&group_id, now_ms);
            for (topic, partition) in expired {
                let record = CoordinatorRecord::OffsetCommit {
                    group: group_id.clone(),
                    topic,
                    partition,
                    value: None,
                };
                self.replay(&record);
                out.records.push(record);
            }
            let empty = self.groups[&group_id].is_in_state(ClassicGroupState::Empty);
            let open_txn = self.has_pending_txn_offsets(&group_id);
            if empty && !self.offsets.contains_key(&group_id) && !open_txn {
                let record = CoordinatorRecord::GroupMetadata {
                    group: group_id,
                    value: None,
                };
                self.replay(&record);
                out.records.push(record);
            }
        }
    }

    /// The group's offsets past retention (`ClassicGroup.offsetExpirationCondition`).
    fn expired_offsets(&self, group_id: &str, now_ms: u64) -> Vec<(String, i32)> {
        let g = &self.groups[group_id];
        let Some(offsets) = self.offsets.get(group_id) else {
            return Vec::new();
        };
        let since_empty = match g.protocol_type {
            Some(_) if !g.is_in_state(ClassicGroupState::Empty) => return Vec::new(),
            Some(_) => g.current_state_timestamp_ms,
            None => None,
        };
        let retention_ms = ms_i64(self.config.offsets_retention_ms);
        offsets
            .iter()
            .filter(|((topic, p), o)| {
                ms_i64(now_ms) - since_empty.unwrap_or(o.commit_timestamp_ms) >= retention_ms
                    && !self.has_pending_txn_offset(group_id, topic, *p)
            })
            .map(|(key, _)| key.clone())
            .collect()
    }
}

/// The record of one partition's commit at `now_ms`.
pub(super) fn commit_record(
    now_ms: u64,
    group_id: &str,
    topic: &str,
    p: &OffsetCommitPartition,
) -> CoordinatorRecord {
    CoordinatorRecord::OffsetCommit {
        group: group_id.to_owned(),
        topic: topic.to_owned(),
        partition: p.partition_index,
        value: Some(OffsetCommitValue {
            offset: p.committed_offset,
            leader_epoch: p.committed_leader_epoch,
            metadata: p.committed_metadata.clone().unwrap_or_default(),
            commit_timestamp_ms: ms_i64(now_ms),
        }),
    }
}

/// Removes one partition's offset from a group's, and the group's entry once it has none.
pub(super) fn remove_offset(
    offsets: &mut BTreeMap<String, GroupOffsets>,
    group_id: &str,
    key: &(String, i32),
) {
    if let Some(group_offsets) = offsets.get_mut(group_id) {
        group_offsets.remove(key);
        if group_offsets.is_empty() {
            offsets.remove(group_id);
        }
    }
}

/// Who commits: the fields an OffsetCommit and a TxnOffsetCommit are validated by.
#[derive(Clone, Copy, Debug)]
pub(super) struct Committer<'a> {
    pub group_id: &'a str,
    pub generation_id: i32,
    pub member_id: &'a str,
    pub group_instance_id: Option<&'a str>,
}
