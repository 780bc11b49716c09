//! `commitSync` and `commitAsync`.

use super::*;

/// What a commit's history operations say: the group, the generation and the offsets.
struct CommitRecord {
    group: String,
    generation: i32,
    offsets: Vec<(String, Val)>,
}

impl CommitRecord {
    fn value(&self, error: Option<&str>) -> Val {
        let offsets = Val::object(self.offsets.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let group = self.group.as_str();
        let generation = self.generation;
        match error {
            None => val!({ "group": group, "generation": generation, "offsets": offsets }),
            Some(e) => {
                val!({ "group": group, "generation": generation, "offsets": offsets, "error": e })
            }
        }
    }
}

/// How an OffsetCommit answer leaves the member: the first partition's error (0: committed).
fn answer_code(response: &kafka_protocol::messages::OffsetCommitResponse) -> i16 {
    response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.error_code)
        .find(|&c| c != 0)
        .unwrap_or(0)
}

fn error_name(code: i16) -> String {
    ResponseError::try_from_code(code).map_or(code.to_string(), |e| format!("{e:?}"))
}

/// The member's state after the coordinator refused a commit: rejoin, and without a member id
/// when it no longer knows this one.
fn refused(shared: &Shared, code: i16) {
    let mut s = shared.lock().expect("membership lock");
    s.rejoin_needed = true;
    if code == UNKNOWN_MEMBER_ID || code == FENCED_INSTANCE_ID {
        s.member_id.clear();
        s.generation = -1;
    }
}

impl Member {
    /// The OffsetCommit of `offsets` (every position when `None`) in the member's generation,
    /// and its record; `None` (with the commit failed in the history) when the member is not in
    /// a stable generation: Kafka's client refuses such a commit itself
    /// (`CommitFailedException`), as the member has no right to commit.
    fn commit_request(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, i64>>,
    ) -> Option<(RequestKind, CommitRecord)> {
        let offsets: BTreeMap<TopicPartition, i64> = match offsets {
            Some(offsets) => offsets,
            None => self
                .positions
                .iter()
                .filter_map(|(tp, p)| p.map(|p| (tp.clone(), p)))
                .collect(),
        };
        let (member_id, generation, stable) = {
            let s = self.state();
            (s.member_id.clone(), s.generation, s.stable)
        };
        if !stable {
            self.op(
                OpType::Fail,
                "commit",
                val!({ "group": self.group(), "generation": generation, "error": "CommitFailedException: not part of an active group" }),
            );
            self.state().rejoin_needed = true;
            return None;
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
        let record = CommitRecord {
            group: self.spec.group.clone(),
            generation,
            offsets: shown,
        };
        Some((request, record))
    }

    /// `commitSync` of `offsets` (or of every position, for auto-commit), retried on the
    /// coordinator's retriable errors a few times. Returns whether it was committed.
    pub(super) async fn commit(
        &mut self,
        coordinator: i32,
        offsets: Option<BTreeMap<TopicPartition, i64>>,
    ) -> bool {
        if offsets.as_ref().is_some_and(BTreeMap::is_empty) {
            return true;
        }
        if offsets.is_none() && self.positions.values().all(Option::is_none) {
            return true;
        }
        let Some((request, record)) = self.commit_request(offsets) else {
            return false;
        };
        let value = record.value(None);
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
            match answer_code(&response) {
                0 => {
                    self.op(OpType::Ok, "commit", value);
                    return true;
                }
                c if COORDINATOR_ERRORS.contains(&c) => {
                    self.coordinator_lost(coordinator);
                    continue;
                }
                c => {
                    self.op(OpType::Fail, "commit", record.value(Some(&error_name(c))));
                    refused(&self.shared, c);
                    return false;
                }
            }
        }
        self.op(
            OpType::Fail,
            "commit",
            record.value(Some("coordinator not available")),
        );
        false
    }

    /// `commitAsync` of `offsets`: sent, not waited for, never retried (a retry could land
    /// after a later commit and move the offset back); the answer is recorded when it comes.
    pub(super) async fn commit_async(
        &mut self,
        coordinator: i32,
        offsets: BTreeMap<TopicPartition, i64>,
    ) {
        if offsets.is_empty() {
            return;
        }
        let Some((request, record)) = self.commit_request(Some(offsets)) else {
            return;
        };
        self.op(OpType::Invoke, "commit", record.value(None));
        let conn = match self.view.connection(coordinator).await {
            Ok(conn) => conn,
            Err(_) => {
                self.coordinator_lost(coordinator);
                let failed = record.value(Some("coordinator not available"));
                self.op(OpType::Fail, "commit", failed);
                return;
            }
        };
        let ctx = self.ctx.clone();
        let shared = self.shared.clone();
        let timeout = self.spec.consumer.request_timeout;
        tokio::spawn(async move {
            let version = client_version(ApiKey::OffsetCommit);
            let sent = conn
                .send(ApiKey::OffsetCommit, version, &request, timeout)
                .await;
            let op = |kind, value| ctx.recorder.op_val(&ctx.id, kind, "commit", value);
            match sent {
                Ok(ResponseKind::OffsetCommit(r)) => match answer_code(&r) {
                    0 => op(OpType::Ok, record.value(None)),
                    c => {
                        op(OpType::Fail, record.value(Some(&error_name(c))));
                        if COORDINATOR_ERRORS.contains(&c) {
                            let mut s = shared.lock().expect("membership lock");
                            s.coordinator = None;
                        } else {
                            refused(&shared, c);
                        }
                    }
                },
                Ok(_) | Err(ClientError::NotSent(_)) => {
                    op(OpType::Fail, record.value(Some("not sent")))
                }
                Err(_) => op(OpType::Info, record.value(None)),
            }
        });
    }
}
