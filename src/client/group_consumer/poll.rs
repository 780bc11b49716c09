//! Positions (`OffsetFetch`, `auto.offset.reset`), fetching and `poll`.

use crate::client::consumer::{
    aborted_of, decode_fetched, fetch_request, isolation, list_offsets_request, listed_offset,
};

use super::*;

/// `UNSTABLE_OFFSET_COMMIT`: a transactional offset commit is pending (KIP-447).
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

impl Member {
    /// Positions of newly assigned partitions: the group's committed offset, else
    /// `auto.offset.reset`.
    pub(super) async fn find_positions(&mut self, coordinator: i32) -> bool {
        let unknown: Vec<TopicPartition> = self
            .positions
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in &unknown {
            by_topic
                .entry(&tp.topic)
                .or_default()
                .push(tp.partition as i32);
        }
        let request = RequestKind::OffsetFetch(
            OffsetFetchRequest::default()
                .with_require_stable(true)
                .with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(str_bytes(self.group())))
                    .with_topics(Some(
                        by_topic
                            .into_iter()
                            .map(|(t, ps)| {
                                OffsetFetchRequestTopics::default()
                                    .with_name(topic_name(t))
                                    .with_partition_indexes(ps)
                            })
                            .collect(),
                    ))]),
        );
        let response = match self.send(coordinator, ApiKey::OffsetFetch, &request).await {
            Ok(ResponseKind::OffsetFetch(r)) => r,
            _ => {
                self.coordinator_lost(coordinator);
                return false;
            }
        };
        let Some(group) = response.groups.first() else {
            return false;
        };
        if group.error_code != 0 {
            if COORDINATOR_ERRORS.contains(&group.error_code) {
                self.coordinator_lost(coordinator);
            }
            return false;
        }
        // KIP-447: a partition whose offset a transaction is still committing answers
        // UNSTABLE_OFFSET_COMMIT; the consumer waits and asks again (resetting it would read
        // again what the transaction is about to commit as read).
        let unstable = group
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .any(|p| p.error_code == UNSTABLE_OFFSET_COMMIT);
        if unstable {
            return false;
        }
        for topic in &group.topics {
            for p in &topic.partitions {
                let tp = TopicPartition {
                    topic: topic.name.0.to_string(),
                    partition: p.partition_index as u32,
                };
                if p.error_code == 0 && p.committed_offset >= 0 && self.positions.contains_key(&tp)
                {
                    self.positions.insert(tp.clone(), Some(p.committed_offset));
                    self.forget_epoch(&tp);
                    self.op(
                        OpType::Ok,
                        "reset",
                        val!({ "partition": tp.to_string(), "to": p.committed_offset, "committed": true }),
                    );
                }
            }
        }
        let still: Vec<TopicPartition> = self
            .positions
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in still {
            if !self.reset(&tp).await {
                return false;
            }
        }
        true
    }

    /// `auto.offset.reset` with `ListOffsets`.
    pub(super) async fn reset(&mut self, tp: &TopicPartition) -> bool {
        let timestamp = match self.spec.consumer.auto_offset_reset {
            OffsetReset::Earliest => -2,
            OffsetReset::Latest => -1,
            OffsetReset::None => {
                self.op(
                    OpType::Fail,
                    "reset",
                    val!({ "partition": tp.to_string(), "error": "NoOffsetForPartition" }),
                );
                return false;
            }
        };
        let Some(leader) = self.view.leader(tp) else {
            self.view.mark_stale();
            return false;
        };
        let request = list_offsets_request(tp, timestamp);
        let offset = match self
            .send(leader.broker, ApiKey::ListOffsets, &request)
            .await
        {
            Ok(response) => listed_offset(&response),
            Err(_) => None,
        };
        match offset {
            Some(offset) => {
                self.positions.insert(tp.clone(), Some(offset));
                self.forget_epoch(tp);
                self.op(
                    OpType::Ok,
                    "reset",
                    val!({ "partition": tp.to_string(), "to": offset }),
                );
                true
            }
            None => {
                self.view.mark_stale();
                false
            }
        }
    }

    /// `poll`: auto-commit when due, return up to `max.poll.records` (fetching when nothing is
    /// buffered), then process and commit as the workload says.
    pub(super) async fn poll(&mut self, coordinator: i32) -> bool {
        // The application's stall, if one is due: between two polls, as a slow call in its
        // loop would be, while the heartbeat task goes on.
        if let Some((at, length)) = self.spec.stall {
            let now = self.now();
            if (at..at + length).contains(&now) {
                tokio::time::sleep(Duration::from_millis(at + length - now)).await;
            }
        }
        self.state().last_poll_ms = self.now();
        if self.spec.commit == CommitMode::Auto && self.now() >= self.next_auto_commit_ms {
            self.next_auto_commit_ms = self.now() + self.spec.auto_commit_interval_ms;
            self.commit(coordinator, None).await;
        }
        if self.buffer.is_empty() && !self.fetch().await {
            return false;
        }
        let n = self.spec.max_poll_records.min(self.buffer.len());
        if n == 0 {
            return true;
        }
        let drained: Vec<_> = self.buffer.drain(..n).collect();
        let mut polled: Polled = Vec::with_capacity(n);
        for (tp, offset, value, epoch) in drained {
            self.positions.insert(tp.clone(), Some(offset + 1));
            self.epochs.insert(tp.clone(), epoch);
            polled.push((tp, offset, value));
        }
        let records: Vec<Val> = polled
            .iter()
            .map(|(tp, offset, value)| {
                val!({ "partition": tp.to_string(), "offset": *offset, "value": value.clone() })
            })
            .collect();
        let spec = &self.spec.consumer;
        let invoke = isolation(spec, val!({ "group": self.group() }));
        let done = isolation(
            spec,
            val!({ "group": self.group(), "records": Val::array(records) }),
        );
        self.op(OpType::Invoke, "poll", invoke);
        self.op(OpType::Ok, "poll", done);
        let offsets: BTreeMap<TopicPartition, i64> = polled
            .iter()
            .map(|(tp, offset, _)| (tp.clone(), offset + 1))
            .collect();
        match self.spec.commit {
            CommitMode::AfterProcessing => {
                self.process(&polled).await;
                self.commit(coordinator, Some(offsets)).await;
            }
            CommitMode::AfterProcessingAsync => {
                self.process(&polled).await;
                self.commit_async(coordinator, offsets).await;
            }
            CommitMode::BeforeProcessing => {
                self.commit(coordinator, Some(offsets)).await;
                self.process(&polled).await;
            }
            CommitMode::Transactional => {
                self.process(&polled).await;
                self.transform(&polled, offsets).await;
            }
            CommitMode::Auto => match &self.worker {
                Some(worker) => {
                    let _ = worker.send(polled);
                }
                None => self.process(&polled).await,
            },
        }
        true
    }

    pub(super) async fn process(&self, polled: &Polled) {
        process_records(&self.ctx, &self.spec, polled).await;
    }

    /// A position set anew (committed offset, reset, revocation) has no epoch to validate.
    pub(super) fn forget_epoch(&mut self, tp: &TopicPartition) {
        self.epochs.remove(tp);
        self.validated.remove(tp);
    }

    /// KIP-320: after its partition's leader epoch changed, a position reached by reading
    /// records of an older epoch is checked with `OffsetForLeaderEpoch`. Where that epoch ended
    /// below the position, the log was truncated under the consumer: the position moves back to
    /// the end of the epoch (Kafka's "truncation detected" reset), instead of silently
    /// skipping what the new leader writes there. False when a leader could not be asked.
    pub(super) async fn validate_positions(&mut self) -> bool {
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i32, i32)>> = BTreeMap::new();
        for (tp, position) in &self.positions {
            if position.is_none() {
                continue;
            }
            let Some(leader) = self.view.leader(tp) else {
                continue;
            };
            match self.epochs.get(tp) {
                Some(&epoch) if self.validated.get(tp) != Some(&leader.epoch) => by_leader
                    .entry(leader.broker)
                    .or_default()
                    .push((tp.clone(), leader.epoch, epoch)),
                Some(_) => {}
                None => {
                    self.validated.insert(tp.clone(), leader.epoch);
                }
            }
        }
        let mut ok = true;
        for (broker, partitions) in by_leader {
            ok &= self.validate_at(broker, &partitions).await;
        }
        ok
    }

    async fn validate_at(
        &mut self,
        broker: i32,
        partitions: &[(TopicPartition, i32, i32)],
    ) -> bool {
        use kafka_protocol::messages::offset_for_leader_epoch_request::{
            OffsetForLeaderPartition, OffsetForLeaderTopic,
        };
        let mut topics: BTreeMap<&str, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
        for (tp, current, epoch) in partitions {
            topics.entry(&tp.topic).or_default().push(
                OffsetForLeaderPartition::default()
                    .with_partition(tp.partition as i32)
                    .with_current_leader_epoch(*current)
                    .with_leader_epoch(*epoch),
            );
        }
        let request = RequestKind::OffsetForLeaderEpoch(
            kafka_protocol::messages::OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            OffsetForLeaderTopic::default()
                                .with_topic(topic_name(t))
                                .with_partitions(ps)
                        })
                        .collect(),
                ),
        );
        let response = match self
            .send(broker, ApiKey::OffsetForLeaderEpoch, &request)
            .await
        {
            Ok(ResponseKind::OffsetForLeaderEpoch(r)) => r,
            _ => {
                self.view.mark_stale();
                return false;
            }
        };
        let current: BTreeMap<&TopicPartition, i32> =
            partitions.iter().map(|(tp, c, _)| (tp, *c)).collect();
        let mut ok = true;
        for topic in response.topics {
            for p in topic.partitions {
                let tp = TopicPartition {
                    topic: topic.topic.0.to_string(),
                    partition: p.partition as u32,
                };
                let Some(&leader_epoch) = current.get(&tp) else {
                    continue;
                };
                if p.error_code != 0 {
                    self.view.mark_stale();
                    ok = false;
                    continue;
                }
                let Some(Some(position)) = self.positions.get(&tp).copied() else {
                    continue;
                };
                if p.leader_epoch < 0 || p.end_offset < 0 {
                    // The leader knows no such epoch: where to resume is auto.offset.reset's.
                    self.positions.insert(tp.clone(), None);
                    self.forget_epoch(&tp);
                    continue;
                }
                if p.end_offset < position {
                    self.buffer.retain(|(t, _, _, _)| *t != tp);
                    self.positions.insert(tp.clone(), Some(p.end_offset));
                    self.epochs.insert(tp.clone(), p.leader_epoch);
                    self.op(
                        OpType::Ok,
                        "reset",
                        val!({
                            "partition": tp.to_string(),
                            "from": position,
                            "to": p.end_offset,
                            "reason": "truncation detected (KIP-320)",
                        }),
                    );
                }
                self.validated.insert(tp, leader_epoch);
            }
        }
        ok
    }

    /// Fetches every assigned partition with a position from its leader into the buffer.
    pub(super) async fn fetch(&mut self) -> bool {
        if !self.validate_positions().await {
            return false;
        }
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i64, i32)>> = BTreeMap::new();
        for (tp, position) in &self.positions {
            let Some(position) = position else { continue };
            match self.view.leader(tp) {
                Some(leader) => by_leader.entry(leader.broker).or_default().push((
                    tp.clone(),
                    *position,
                    leader.epoch,
                )),
                None => {
                    self.view.mark_stale();
                    return false;
                }
            }
        }
        if by_leader.is_empty() {
            // Nothing assigned: an idle member still polls (and heartbeats).
            tokio::time::sleep(Duration::from_millis(
                self.spec.consumer.fetch_max_wait_ms as u64,
            ))
            .await;
            return true;
        }
        let mut ok = true;
        for (broker, partitions) in by_leader {
            ok &= self.fetch_from(broker, &partitions).await;
        }
        ok
    }

    pub(super) async fn fetch_from(
        &mut self,
        broker: i32,
        partitions: &[(TopicPartition, i64, i32)],
    ) -> bool {
        let request = fetch_request(&self.spec.consumer, partitions);
        let response = match self.send(broker, ApiKey::Fetch, &request).await {
            Ok(ResponseKind::Fetch(r)) => r,
            _ => {
                self.view.mark_stale();
                return false;
            }
        };
        for topic in response.responses {
            for p in topic.partitions {
                let tp = TopicPartition {
                    topic: topic.topic.0.to_string(),
                    partition: p.partition_index as u32,
                };
                let Some(Some(position)) = self.positions.get(&tp).copied() else {
                    continue;
                };
                if p.error_code != 0 {
                    if ResponseError::try_from_code(p.error_code)
                        == Some(ResponseError::OffsetOutOfRange)
                    {
                        self.forget_epoch(&tp);
                        self.positions.insert(tp, None);
                    } else {
                        self.view.mark_stale();
                    }
                    continue;
                }
                let aborted = aborted_of(self.spec.consumer.read_committed, &p);
                let bytes = p.records.as_deref().unwrap_or(&[]);
                let (records, next) = decode_fetched(position, bytes, aborted.as_deref());
                if records.is_empty() && next > position {
                    // Only markers or aborted batches: nothing to return, but past them.
                    self.positions.insert(tp.clone(), Some(next));
                }
                for (offset, value, epoch) in records {
                    self.buffer.push_back((tp.clone(), offset, value, epoch));
                }
            }
        }
        true
    }
}
