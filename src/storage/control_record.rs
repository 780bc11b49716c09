//! Kafka's transaction markers: the control batches a transaction coordinator has each
//! partition leader write to end a transaction (KIP-98, Kafka's `EndTransactionMarker` and
//! `ControlRecordType`).
//!
//! A marker is a batch with the transactional and control attributes set, the producer's id and
//! epoch, no sequence (-1), and one record whose
//!
//! ```text
//! key   = version i16 (0) + type i16 (0 ABORT, 1 COMMIT)
//! value = version i16 (0) + coordinatorEpoch i32
//! ```

use bytes::Bytes;

use crate::storage::batch::{self, BatchError, BatchSpec, Record, NO_SEQUENCE};

/// Kafka's `ControlRecordType.ABORT` and `COMMIT` ids.
const ABORT_TYPE: i16 = 0;
const COMMIT_TYPE: i16 = 1;
/// `ControlRecordType.CURRENT_CONTROL_RECORD_KEY_VERSION` and `EndTransactionMarker`'s value
/// version.
const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// A decoded end-of-transaction marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    pub fn key(&self) -> [u8; 4] {
        let kind = if self.commit { COMMIT_TYPE } else { ABORT_TYPE };
        let mut key = [0; 4];
        key[..2].copy_from_slice(&KEY_VERSION.to_be_bytes());
        key[2..].copy_from_slice(&kind.to_be_bytes());
        key
    }

    pub fn value(&self) -> [u8; 6] {
        let mut value = [0; 6];
        value[..2].copy_from_slice(&VALUE_VERSION.to_be_bytes());
        value[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        value
    }

    /// The marker a control record's key and value hold; `None` for other control records
    /// (KRaft's, or an unknown type), as Kafka only reads ABORT and COMMIT as markers.
    pub fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Option<Self>, BatchError> {
        let corrupt = |why: String| BatchError::Corrupt(why);
        let key = key.ok_or_else(|| corrupt("control record without a key".into()))?;
        if key.len() < 4 {
            return Err(corrupt(format!(
                "control record key of {} bytes",
                key.len()
            )));
        }
        let kind = i16::from_be_bytes([key[2], key[3]]);
        let commit = match kind {
            ABORT_TYPE => false,
            COMMIT_TYPE => true,
            _ => return Ok(None),
        };
        let value = value.ok_or_else(|| corrupt("transaction marker without a value".into()))?;
        if value.len() < 6 {
            return Err(corrupt(format!(
                "transaction marker value of {} bytes",
                value.len()
            )));
        }
        let version = i16::from_be_bytes([value[0], value[1]]);
        if version < 0 {
            return Err(corrupt(format!("transaction marker version {version}")));
        }
        let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
        Ok(Some(EndTxnMarker {
            commit,
            coordinator_epoch,
        }))
    }
}

/// A marker batch as the leader writes it (Kafka's `MemoryRecords.withEndTransactionMarker`):
/// offsets from 0 (the log assigns them), one record stamped `timestamp_ms`.
pub fn encode_marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: EndTxnMarker,
    partition_leader_epoch: i32,
    timestamp_ms: i64,
) -> Vec<u8> {
    let spec = BatchSpec {
        partition_leader_epoch,
        base_timestamp: timestamp_ms,
        producer_id,
        producer_epoch,
        base_sequence: NO_SEQUENCE,
        transactional: true,
        control: true,
        ..BatchSpec::default()
    };
    let record = Record {
        offset_delta: 0,
        timestamp_delta: 0,
        key: Some(Bytes::copy_from_slice(&marker.key())),
        value: Some(Bytes::copy_from_slice(&marker.value())),
        headers: vec![],
    };
    batch::encode_batch(&spec, &[record]).to_vec()
}

/// The marker of the control batch at the start of `buf`: `None` if the batch holds no record
/// (the cleaner removed it) or another control record.
pub fn read_marker(buf: &[u8]) -> Result<Option<EndTxnMarker>, BatchError> {
    let mut first = None;
    batch::for_each_record(buf, |record| {
        if first.is_none() {
            first = Some(EndTxnMarker::parse(record.key, record.value));
        }
    })?;
    first.transpose().map(Option::flatten)
}
