//! `commitSync`.

use super::*;

impl Member {
    /// `commitSync` of `offsets` (or of every position, for auto-commit), retried on the
    /// coordinator's retriable errors a few times. Returns whether it was committed.
    pub(super) async fn commit(
        &mut self,
        coordinator: i32,
        offsets: Option<BTreeMap<TopicPartition, i64>>,
    ) -> bool {
        let offsets: BTreeMap<TopicPartition, i64> = match offsets {
            Some(offsets) => offsets,
            None => self
                .positions
                .iter()
                .filter_map(|(tp, p)| p.map(|p| (tp.clone(), p)))
                .collect(),
        };
        if offsets.is_empty() {
            return true;
        }
        let (member_id, generation, stable) = {
            let s = self.state();
            (s.member_id.clone(), s.generation, s.stable)
        };
        if !stable {
            // `CommitFailedException` before anything is sent: the member is not in a stable
            // generation (it left, or learned it was dropped), so it has no right to commit.
            self.op(
                OpType::Fail,
                "commit",
                val!({ "group": self.group(), "generation": generation, "error": "CommitFailedException: not part of an active group" }),
            );
            self.state().rejoin_needed = true;
            return false;
        }
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        let mut shown = Vec::new();
        for (tp, offset) in &offsets {
            by_topic.entry(&tp.topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition as i32)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(-1),
            );
            shown.push((tp.to_string(), Val::from(*offset)));
        }
        let request = RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(str_bytes(self.group())))
                .with_generation_id_or_member_epoch(generation)
                .with_member_id(str_bytes(&member_id))
                .with_group_instance_id(self.spec.group_instance_id.as_deref().map(str_bytes))
                .with_retention_time_ms(-1)
                .with_topics(
                    by_topic
                        .into_iter()
                        .map(|(t, ps)| {
                            OffsetCommitRequestTopic::default()
                                .with_name(topic_name(t))
                                .with_partitions(ps)
                        })
                        .collect(),
                ),
        );
        let group = self.spec.group.clone();
        let value_with = |error: Option<&str>| {
            let offsets = Val::object(shown.iter().map(|(k, v)| (k.as_str(), v.clone())));
            match error {
                None => {
                    val!({ "group": group.as_str(), "generation": generation, "offsets": offsets })
                }
                Some(e) => {
                    val!({ "group": group.as_str(), "generation": generation, "offsets": offsets, "error": e })
                }
            }
        };
        let value = value_with(None);
        self.op(OpType::Invoke, "commit", value.clone());
        let mut coordinator = coordinator;
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
                match self.coordinator().await {
                    Some(c) => coordinator = c,
                    None => continue,
                }
            }
            let response = match self.send(coordinator, ApiKey::OffsetCommit, &request).await {
                Ok(ResponseKind::OffsetCommit(r)) => r,
                Ok(_) | Err(ClientError::NotSent(_)) => {
                    self.coordinator_lost(coordinator);
                    continue;
                }
                Err(_) => {
                    // Sent, unanswered: it may have landed.
                    self.coordinator_lost(coordinator);
                    self.op(OpType::Info, "commit", value);
                    return false;
                }
            };
            let code = response
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.error_code)
                .find(|&c| c != 0)
                .unwrap_or(0);
            match code {
                0 => {
                    self.op(OpType::Ok, "commit", value);
                    return true;
                }
                c if COORDINATOR_ERRORS.contains(&c) => {
                    self.coordinator_lost(coordinator);
                    continue;
                }
                c => {
                    let error =
                        ResponseError::try_from_code(c).map_or(c.to_string(), |e| format!("{e:?}"));
                    self.op(OpType::Fail, "commit", value_with(Some(&error)));
                    let mut s = self.state();
                    s.rejoin_needed = true;
                    if c == UNKNOWN_MEMBER_ID || c == FENCED_INSTANCE_ID {
                        s.member_id.clear();
                        s.generation = -1;
                    }
                    return false;
                }
            }
        }
        self.op(
            OpType::Fail,
            "commit",
            value_with(Some("coordinator not available")),
        );
        false
    }
}
