//! OffsetCommit, OffsetFetch and offset expiration (Kafka's `OffsetMetadataManager`).

use std::collections::BTreeMap;

use super::classic_group::{ms_i64, ClassicGroup, ClassicGroupState};
use super::coordinator::{CoordinatorOutput, GroupCoordinator, OffsetAndMetadata};
use super::join::validate_member;
use super::rebalance::timeout_ms;
use super::records::{CoordinatorRecord, OffsetCommitValue};
use super::{
    error_code, GroupResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchPartition,
    OffsetFetchRequest, OffsetFetchResponse, RequestId,
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
        let group_error = self.validate_offset_commit(now_ms, &request);
        if group_error == error_code::NONE {
            self.keep_committer_alive(now_ms, &request);
        }
        let mut topics = Vec::with_capacity(request.topics.len());
        for (topic, partitions) in &request.topics {
            let mut results = Vec::with_capacity(partitions.len());
            for p in partitions {
                let error = if group_error != error_code::NONE {
                    group_error
                } else if p.committed_metadata.as_ref().map_or(0, String::len)
                    > self.config.offset_metadata_max_bytes
                {
                    error_code::OFFSET_METADATA_TOO_LARGE
                } else {
                    let record = CoordinatorRecord::OffsetCommit {
                        group: request.group_id.clone(),
                        topic: topic.clone(),
                        partition: p.partition_index,
                        value: Some(OffsetCommitValue {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p.committed_metadata.clone().unwrap_or_default(),
                            commit_timestamp_ms: ms_i64(now_ms),
                        }),
                    };
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
    /// (REBALANCE_IN_PROGRESS).
    fn validate_offset_commit(&mut self, now_ms: u64, request: &OffsetCommitRequest) -> i16 {
        let fencing = self.config.offset_commit_fencing;
        let Some(g) = self.groups.get(&request.group_id) else {
            if request.generation_id >= 0 && fencing {
                return error_code::ILLEGAL_GENERATION;
            }
            let group = ClassicGroup::new(&request.group_id, now_ms);
            self.groups.insert(request.group_id.clone(), group);
            return error_code::NONE;
        };
        if g.is_in_state(ClassicGroupState::Dead) {
            return error_code::COORDINATOR_NOT_AVAILABLE;
        }
        if !fencing || (request.generation_id < 0 && g.is_in_state(ClassicGroupState::Empty)) {
            return error_code::NONE;
        }
        let instance_id = request.group_instance_id.as_deref();
        if request.generation_id >= 0 || !request.member_id.is_empty() || instance_id.is_some() {
            if let Some(error) = validate_member(g, &request.member_id, instance_id) {
                return error;
            }
            if request.generation_id != g.generation_id {
                return error_code::ILLEGAL_GENERATION;
            }
        } else if !g.is_in_state(ClassicGroupState::Empty) {
            return error_code::UNKNOWN_MEMBER_ID;
        }
        if g.is_in_state(ClassicGroupState::CompletingRebalance) {
            return error_code::REBALANCE_IN_PROGRESS;
        }
        error_code::NONE
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
    /// offset -1 and empty metadata; no topics asks for all the group's offsets.
    pub(super) fn fetch_offsets(&self, request: &OffsetFetchRequest) -> OffsetFetchResponse {
        let empty = BTreeMap::new();
        let offsets = self.offsets.get(&request.group_id).unwrap_or(&empty);
        let partition = |p: i32, o: Option<&OffsetAndMetadata>| OffsetFetchPartition {
            partition_index: p,
            committed_offset: o.map_or(-1, |o| o.committed_offset),
            committed_leader_epoch: o.map_or(-1, |o| o.leader_epoch),
            metadata: Some(o.map(|o| o.metadata.clone()).unwrap_or_default()),
            error_code: error_code::NONE,
        };
        let topics = match &request.topics {
            Some(topics) => topics
                .iter()
                .map(|(topic, partitions)| {
                    let found = |p: &i32| partition(*p, offsets.get(&(topic.clone(), *p)));
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
                        .push(partition(*p, Some(o)));
                }
                by_topic
            }
        };
        OffsetFetchResponse {
            error_code: error_code::NONE,
            topics,
        }
    }

    /// Applies an OffsetCommit record (a tombstone deletes the offset).
    pub(super) fn replay_offset_commit(
        &mut self,
        group_id: &str,
        topic: &str,
        partition: i32,
        value: Option<&OffsetCommitValue>,
    ) {
        let key = (topic.to_owned(), partition);
        let Some(value) = value else {
            if let Some(offsets) = self.offsets.get_mut(group_id) {
                offsets.remove(&key);
                if offsets.is_empty() {
                    self.offsets.remove(group_id);
                }
            }
            return;
        };
        if !self.groups.contains_key(group_id) {
            let created_ms = u64::try_from(value.commit_timestamp_ms).unwrap_or(0);
            let group = ClassicGroup::new(group_id, created_ms);
            self.groups.insert(group_id.to_owned(), group);
        }
        let offset = OffsetAndMetadata {
            committed_offset: value.offset,
            leader_epoch: value.leader_epoch,
            metadata: value.metadata.clone(),
            commit_timestamp_ms: value.commit_timestamp_ms,
        };
        self.offsets
            .entry(group_id.to_owned())
            .or_default()
            .insert(key, offset);
    }

    /// `cleanupGroupMetadata`: every `offsets.retention.check.interval.ms`, the offsets of
    /// Empty groups expire `offsets.retention.minutes` after the group became empty (after the
    /// commit, for a group without protocol type); an Empty group left without offsets is
    /// deleted. Tombstones are written for both.
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
            if empty && !self.offsets.contains_key(&group_id) {
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
            .filter(|(_, o)| {
                ms_i64(now_ms) - since_empty.unwrap_or(o.commit_timestamp_ms) >= retention_ms
            })
            .map(|(key, _)| key.clone())
            .collect()
    }
}
