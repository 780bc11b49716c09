//! TxnOffsetCommit and the end of transactions (KIP-98, KIP-447; Kafka's
//! `OffsetMetadataManager.commitTransactionalOffset` and `replayEndTransactionMarker`).
//!
//! A transactional producer commits its consumer's offsets within its transaction, so that the
//! records it produced and the offsets of the records it consumed to produce them commit or
//! abort together. The coordinator writes them as ordinary OffsetCommit records, but in a
//! transactional batch of the producer's id and epoch; until the transaction's marker lands in
//! the partition they are pending, kept per producer id and invisible to OffsetFetch (which,
//! asked for stable offsets, answers UNSTABLE_OFFSET_COMMIT for a partition with any). A commit
//! marker makes them the committed offsets, unless a plain commit of the partition was written
//! after them; an abort marker drops them.

use std::collections::BTreeMap;

use super::coordinator::{CoordinatorOutput, GroupCoordinator, TransactionalBatch};
use super::offsets::{commit_record, remove_offset, Committer};
use super::records::OffsetCommitValue;
use super::{error_code, GroupResponse, OffsetCommitResponse, RequestId, TxnOffsetCommitRequest};

/// An offset a transaction's commit marker made the group's committed offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaterializedOffset {
    pub group_id: String,
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
}

impl GroupCoordinator {
    /// `commitTransactionalOffset`: validated as an OffsetCommit with the transactional
    /// exceptions (`validate_offset_commit`), then one OffsetCommit record per partition in
    /// the producer's transactional batch, pending as it is written. An error of the group is
    /// every partition's error; an empty group id is INVALID_GROUP_ID (Kafka's service checks
    /// it before the shard).
    pub(super) fn commit_transactional_offsets(
        &mut self,
        now_ms: u64,
        id: RequestId,
        request: TxnOffsetCommitRequest,
        out: &mut CoordinatorOutput,
    ) {
        let group_error = if request.group_id.is_empty() {
            error_code::INVALID_GROUP_ID
        } else {
            let committer = Committer {
                group_id: &request.group_id,
                generation_id: request.generation_id,
                member_id: &request.member_id,
                group_instance_id: request.group_instance_id.as_deref(),
            };
            self.validate_offset_commit(now_ms, committer, true)
        };
        let mut records = Vec::new();
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
                    self.replay_record(Some(request.producer_id), &record);
                    records.push(record);
                    error_code::NONE
                };
                results.push((p.partition_index, error));
            }
            topics.push((topic.clone(), results));
        }
        assert!(
            out.transactional.is_none(),
            "one transactional batch per output"
        );
        if !records.is_empty() {
            out.transactional = Some(TransactionalBatch {
                producer_id: request.producer_id,
                producer_epoch: request.producer_epoch,
                records,
            });
        }
        out.respond(
            id,
            GroupResponse::TxnOffsetCommit(OffsetCommitResponse { topics }),
        );
    }

    /// An OffsetCommit record of producer `producer_id`'s transactional batch: pending until
    /// the transaction's marker.
    pub(super) fn replay_transactional_offset_commit(
        &mut self,
        producer_id: i64,
        group_id: &str,
        key: (String, i32),
        value: &OffsetCommitValue,
    ) {
        self.ensure_group(group_id, value.commit_timestamp_ms);
        let offset = self.offset_from_record(value);
        self.pending_txn_offsets
            .entry(producer_id)
            .or_default()
            .entry(group_id.to_owned())
            .or_default()
            .insert(key, offset);
    }

    /// Applies a transaction's end marker written to this partition
    /// (`replayEndTransactionMarker`): on commit, the producer's pending offsets become the
    /// committed ones, each unless the partition's committed offset was written after it (a
    /// plain commit after the transactional one: the later record wins, as compaction of the
    /// log would keep it); on abort they are dropped. A marker of a producer with nothing
    /// pending does nothing. Returns the offsets it made committed, in group, topic and
    /// partition order.
    pub fn replay_end_transaction_marker(
        &mut self,
        producer_id: i64,
        commit: bool,
    ) -> Vec<MaterializedOffset> {
        let Some(pending) = self.pending_txn_offsets.remove(&producer_id) else {
            return Vec::new();
        };
        if !commit {
            return Vec::new();
        }
        let mut materialized = Vec::new();
        for (group_id, offsets) in pending {
            for (key, offset) in offsets {
                self.ensure_group(&group_id, offset.commit_timestamp_ms);
                let committed = self.offsets.entry(group_id.clone()).or_default();
                if committed
                    .get(&key)
                    .is_some_and(|c| c.record_position > offset.record_position)
                {
                    continue;
                }
                materialized.push(MaterializedOffset {
                    group_id: group_id.clone(),
                    topic: key.0.clone(),
                    partition: key.1,
                    committed_offset: offset.committed_offset,
                });
                committed.insert(key, offset);
            }
        }
        materialized
    }

    /// The offset producer `producer_id`'s open transaction committed for a partition, not yet
    /// visible.
    pub fn pending_transactional_offset(
        &self,
        producer_id: i64,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> Option<&super::OffsetAndMetadata> {
        self.pending_txn_offsets
            .get(&producer_id)?
            .get(group_id)?
            .get(&(topic.to_owned(), partition))
    }

    /// Whether an open transaction has committed an offset for the group's partition
    /// (`hasPendingTransactionalOffsets`).
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        let key = (topic.to_owned(), partition);
        self.pending_txn_offsets
            .values()
            .any(|groups| groups.get(group_id).is_some_and(|o| o.contains_key(&key)))
    }

    /// Whether an open transaction has committed an offset for the group.
    pub(super) fn has_pending_txn_offsets(&self, group_id: &str) -> bool {
        self.pending_txn_offsets
            .values()
            .any(|groups| groups.contains_key(group_id))
    }

    /// A tombstone of the partition's offset drops every transaction's pending offset of it.
    pub(super) fn drop_pending_txn_offsets(&mut self, group_id: &str, key: &(String, i32)) {
        for groups in self.pending_txn_offsets.values_mut() {
            remove_offset(groups, group_id, key);
        }
        self.pending_txn_offsets
            .retain(|_, groups: &mut BTreeMap<_, _>| !groups.is_empty());
    }
}
