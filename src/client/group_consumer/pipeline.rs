//! The consume-transform-produce loop of a pipeline member, as Kafka Streams runs it with
//! `processing.guarantee = exactly_once_v2` (KIP-447): each poll's records are transformed and
//! written, and the poll's offsets committed, in one transaction of the member's transactional
//! producer. The offsets go through `sendOffsetsToTransaction` with the member's generation, so
//! a member that lost its partitions in a rebalance cannot commit for them any more.
//!
//! If the transaction aborts, its outputs are never read by `read_committed` consumers, and
//! the member rewinds to its group's committed offsets to process those inputs again. Reading
//! them with `require_stable` makes it wait for a transaction still being completed. If the
//! producer is fenced, the member gives it up and rejoins with a new one.
//!
//! History: each transaction is a `txn` op, like the `transactional` workload's. The
//! completion lists the output values.

use std::collections::BTreeMap;

use bytes::Bytes;
use samsa_sim::history::OpType;
use samsa_sim::val;
use samsa_sim::val::Val;

use super::{Member, Polled};
use crate::client::producer::transactions::{ConsumerGroupMetadata, TxnError};
use crate::client::producer::{KafkaProducer, ProducerRecord};
use crate::scenario::TopicPartition;

impl Member {
    /// One poll's transaction.
    pub(super) async fn transform(
        &mut self,
        polled: &Polled,
        offsets: BTreeMap<TopicPartition, i64>,
    ) {
        let Some(pipeline) = self.spec.pipeline.clone() else {
            return;
        };
        let Some(producer) = self.pipeline_producer().await else {
            self.rewind();
            return;
        };
        let transactional_id = pipeline.producer.transactional_id.clone();
        let ids = producer.producer_id_and_epoch();
        let header = val!({
            "transactional_id": transactional_id.as_deref(),
            "producer_id": ids.map_or(-1, |p| p.producer_id),
            "epoch": ids.map_or(-1, |p| p.epoch as i64),
        });
        if let Err(e) = producer.begin_transaction() {
            self.give_up_producer(&e);
            return;
        }
        self.op(OpType::Invoke, "txn", header.clone());
        let mut values = Vec::with_capacity(polled.len());
        for (_, _, value) in polled {
            let output = format!("{}{}", pipeline.prefix, value.as_deref().unwrap_or(""));
            values.push(Val::from(output.as_str()));
            let record = ProducerRecord {
                topic: pipeline.output.clone(),
                value: Some(Bytes::from(output)),
                ..ProducerRecord::default()
            };
            producer.send(record, Box::new(|_| {})).await;
        }
        let group = {
            let s = self.state();
            ConsumerGroupMetadata {
                group_id: self.spec.group.clone(),
                generation_id: s.generation,
                member_id: s.member_id.clone(),
                group_instance_id: self.spec.group_instance_id.clone(),
            }
        };
        let mut outcome = producer.send_offsets_to_transaction(&offsets, &group).await;
        if outcome.is_ok() {
            outcome = producer.commit_transaction().await;
        }
        let done = header.with("values", Val::array(values));
        match outcome {
            Ok(()) => self.op(OpType::Ok, "txn", done),
            Err(e @ TxnError::Fatal(_)) => {
                self.op(
                    OpType::Info,
                    "txn",
                    done.with("reason", e.to_string().into()),
                );
                self.give_up_producer(&e);
            }
            Err(e) => {
                let aborted = producer.abort_transaction().await;
                let kind = if aborted.is_ok() {
                    OpType::Fail
                } else {
                    OpType::Info
                };
                self.op(kind, "txn", done.with("reason", e.to_string().into()));
                match aborted {
                    Ok(()) => self.rewind(),
                    Err(e) => self.give_up_producer(&e),
                }
            }
        }
    }

    /// The member's producer, created and initialized (`initTransactions`) on first use.
    async fn pipeline_producer(&mut self) -> Option<KafkaProducer> {
        if let Some(producer) = &self.producer {
            return Some(producer.clone());
        }
        let config = self.spec.pipeline.as_ref()?.producer.clone();
        let producer = KafkaProducer::new(self.ctx.clone(), config);
        if let Err(e) = producer.init_transactions().await {
            self.op(
                OpType::Fail,
                "init-transactions",
                val!({ "error": e.to_string() }),
            );
            producer.close().await;
            return None;
        }
        self.producer = Some(producer.clone());
        Some(producer)
    }

    /// Back to the committed offsets: what the aborted transaction read is read again.
    fn rewind(&mut self) {
        self.buffer.clear();
        let partitions: Vec<TopicPartition> = self.positions.keys().cloned().collect();
        for tp in partitions {
            self.positions.insert(tp.clone(), None);
            self.forget_epoch(&tp);
        }
    }

    /// The producer cannot go on (fenced): a new one, a new generation, the committed offsets.
    fn give_up_producer(&mut self, error: &TxnError) {
        self.op(
            OpType::Info,
            "producer-closed",
            val!({ "error": error.to_string() }),
        );
        self.producer = None;
        self.state().rejoin_needed = true;
        self.rewind();
    }
}
