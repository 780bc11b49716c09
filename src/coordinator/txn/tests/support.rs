//! A coordinator with a clock, a log, a producer id source and request builders, so that a test
//! reads as a story.

use crate::coordinator::txn::*;

/// The transactional id under test, and its `__transaction_state` partition of 50.
pub const TXN: &str = "t1";
pub const TXN_PARTITION: i32 = 45;
pub const TIMEOUT_MS: i32 = 60_000;
/// The first producer id the source hands out.
pub const PID: i64 = 1_000;
/// The leader epoch the harness's coordinator loads at.
pub const EPOCH: i32 = 5;
/// The group of the offsets in the transactions, and its `__consumer_offsets` partition of 50.
pub const GROUP: &str = "g1";
pub const GROUP_PARTITION: i32 = 42;

/// Producer ids from `PID` on.
pub struct Ids(pub i64);

impl ProducerIdSource for Ids {
    fn generate_producer_id(&mut self) -> Result<i64, i16> {
        let id = self.0;
        self.0 += 1;
        Ok(id)
    }
}

/// The coordinator under test, the time, and every record committed (its partition's log).
pub struct Harness {
    pub c: TransactionCoordinator,
    pub now_ms: u64,
    pub log: Vec<TxnRecord>,
    pub ids: Ids,
    next_id: u64,
}

pub fn config(transaction_version: u8) -> TransactionCoordinatorConfig {
    TransactionCoordinatorConfig {
        transaction_version,
        ..TransactionCoordinatorConfig::default()
    }
}

impl Harness {
    /// A coordinator of an empty partition, with `transaction-version` 1 or 2.
    pub fn new(transaction_version: u8) -> Harness {
        Harness::loaded(transaction_version, &[], EPOCH, 0).0
    }

    /// A coordinator that loads `log` at `now_ms`, as a broker that becomes the partition's
    /// leader at `coordinator_epoch` does; with the output of the load.
    pub fn loaded(
        transaction_version: u8,
        log: &[TxnRecord],
        coordinator_epoch: i32,
        now_ms: u64,
    ) -> (Harness, TxnOutput) {
        let mut c = TransactionCoordinator::new(config(transaction_version), TXN_PARTITION);
        let out = c.load(now_ms, coordinator_epoch, log);
        let h = Harness {
            c,
            now_ms,
            log: log.to_vec(),
            ids: Ids(PID),
            next_id: 0,
        };
        (h, out)
    }

    /// Sends a request now.
    pub fn send(&mut self, request: TxnRequest) -> (RequestId, TxnOutput) {
        self.next_id += 1;
        let id = RequestId(self.next_id);
        let out = self.c.handle(self.now_ms, id, request, &mut self.ids);
        (id, out)
    }

    /// Sends a request that is answered at once, alone, and returns the answer.
    pub fn answer(&mut self, request: TxnRequest) -> TxnResponse {
        let (id, out) = self.send(request);
        assert!(out.appends.is_empty(), "nothing written: {out:?}");
        assert_eq!(out.responses.len(), 1, "one response: {out:?}");
        assert_eq!(out.responses[0].0, id);
        out.responses[0].1.clone()
    }

    /// Commits every record of `out` (to the log) and returns what that leads to.
    pub fn commit(&mut self, out: &TxnOutput) -> TxnOutput {
        let mut next = TxnOutput::default();
        for append in &out.appends {
            self.log.push(append.record.clone());
            next.extend(self.c.append_committed(self.now_ms, append.id));
        }
        next
    }

    /// Reports every marker of `out` written, and returns what that leads to.
    pub fn write_markers(&mut self, out: &TxnOutput) -> TxnOutput {
        let mut next = TxnOutput::default();
        for marker in &out.markers {
            for tp in &marker.partitions {
                let result = MarkerResult::of(marker, tp, MarkerOutcome::Written);
                next.extend(self.c.marker_result(self.now_ms, &result));
            }
        }
        next
    }

    /// Commits and writes everything `out` leads to, until nothing is left; returns all the
    /// responses and events on the way.
    pub fn settle(&mut self, out: TxnOutput) -> TxnOutput {
        let mut all = TxnOutput::default();
        let mut out = out;
        for _ in 0..100 {
            if out.appends.is_empty() && out.markers.is_empty() {
                return all;
            }
            let mut next = self.commit(&out);
            next.extend(self.write_markers(&out));
            all.responses.extend(next.responses.iter().cloned());
            all.events.extend(next.events.iter().cloned());
            out = next;
        }
        panic!("no end to the output");
    }

    /// Sends a request, commits and writes all it leads to; returns the request's response.
    pub fn settled(&mut self, request: TxnRequest) -> TxnResponse {
        let (id, out) = self.send(request);
        let immediate = out.responses.clone();
        let all = self.settle(out);
        let mut responses = immediate
            .into_iter()
            .chain(all.responses)
            .filter(|(r, _)| *r == id);
        let response = responses.next().expect("a response");
        assert!(responses.next().is_none(), "one response");
        response.1
    }

    /// InitProducerId, settled: the producer id and epoch.
    pub fn init_producer(&mut self) -> (i64, i16) {
        match self.settled(init(-1, -1)) {
            TxnResponse::InitProducerId(r) if r.error_code == error_code::NONE => {
                (r.producer_id, r.producer_epoch)
            }
            other => panic!("InitProducerId failed: {other:?}"),
        }
    }

    pub fn state(&self) -> TransactionState {
        self.c.transaction(TXN).expect("the transactional id").state
    }
}

pub fn init(producer_id: i64, producer_epoch: i16) -> TxnRequest {
    TxnRequest::InitProducerId(InitProducerIdRequest {
        transactional_id: TXN.to_owned(),
        transaction_timeout_ms: TIMEOUT_MS,
        producer_id,
        producer_epoch,
    })
}

pub fn add(producer_id: i64, producer_epoch: i16, partitions: &[(&str, i32)]) -> TxnRequest {
    TxnRequest::AddPartitionsToTxn(add_request(producer_id, producer_epoch, partitions))
}

pub fn add_request(
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(&str, i32)],
) -> AddPartitionsToTxnRequest {
    let mut topics: Vec<(String, Vec<i32>)> = Vec::new();
    for (topic, p) in partitions {
        match topics.iter_mut().find(|(t, _)| t == topic) {
            Some((_, ps)) => ps.push(*p),
            None => topics.push(((*topic).to_owned(), vec![*p])),
        }
    }
    AddPartitionsToTxnRequest {
        transactional_id: TXN.to_owned(),
        producer_id,
        producer_epoch,
        verify_only: false,
        topics,
    }
}

pub fn add_offsets(producer_id: i64, producer_epoch: i16) -> TxnRequest {
    TxnRequest::AddOffsetsToTxn(AddOffsetsToTxnRequest {
        transactional_id: TXN.to_owned(),
        producer_id,
        producer_epoch,
        group_id: GROUP.to_owned(),
    })
}

pub fn end(producer_id: i64, producer_epoch: i16, committed: bool) -> TxnRequest {
    TxnRequest::EndTxn(EndTxnRequest {
        transactional_id: TXN.to_owned(),
        producer_id,
        producer_epoch,
        committed,
    })
}

pub fn end_response(error_code: i16, producer_id: i64, producer_epoch: i16) -> TxnResponse {
    TxnResponse::EndTxn(EndTxnResponse {
        error_code,
        producer_id,
        producer_epoch,
    })
}

pub fn init_response(error_code: i16, producer_id: i64, producer_epoch: i16) -> TxnResponse {
    TxnResponse::InitProducerId(InitProducerIdResponse {
        error_code,
        producer_id,
        producer_epoch,
    })
}

/// The answer to `add(…, partitions)`: `error` for each.
pub fn added(error: i16, partitions: &[(&str, i32)]) -> TxnResponse {
    let request = add_request(0, 0, partitions);
    TxnResponse::AddPartitionsToTxn(AddPartitionsToTxnResult::all(&request, error))
}

pub fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

/// A `__transaction_state` value with the harness's defaults: producer `PID`, the timeout,
/// transaction version 2, no partitions (null when Empty).
pub fn value(state: TransactionState, producer_epoch: i16) -> TransactionLogValue {
    TransactionLogValue {
        producer_id: PID,
        previous_producer_id: PID,
        next_producer_id: -1,
        producer_epoch,
        next_producer_epoch: -1,
        transaction_timeout_ms: TIMEOUT_MS,
        transaction_status: state,
        transaction_partitions: (state != TransactionState::Empty).then(Vec::new),
        transaction_last_update_timestamp_ms: 0,
        transaction_start_timestamp_ms: -1,
        client_transaction_version: 2,
    }
}

pub fn record(value: TransactionLogValue) -> TxnRecord {
    TxnRecord {
        transactional_id: TXN.to_owned(),
        value: Some(value),
    }
}

pub fn event(from: TransactionState, to: TransactionState, producer_epoch: i16) -> TxnEvent {
    TxnEvent {
        transactional_id: TXN.to_owned(),
        producer_id: PID,
        producer_epoch,
        from,
        to,
    }
}

/// The appended records of an output.
pub fn records(out: &TxnOutput) -> Vec<TxnRecord> {
    out.appends.iter().map(|a| a.record.clone()).collect()
}
