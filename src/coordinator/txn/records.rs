//! The records of `__transaction_state`, in Kafka's own binary format (the schemas
//! `TransactionLogKey.json` and `TransactionLogValue.json` of Kafka's `transaction-coordinator`
//! module).
//!
//! - The key: the int16 record type `0` (`CoordinatorRecordType.TRANSACTION_LOG`), then
//!   `TransactionLogKey` v0: the transactional id as an int16-length string.
//! - The value: its int16 version, then `TransactionLogValue`. Version 0 is not flexible (int16
//!   string lengths, int32 array counts, -1 for null); version 1 (written since
//!   `transaction.version` 1) is flexible: compact strings and arrays (unsigned varint of
//!   length + 1, 0 for null), a tagged-field section closing every struct. Its tagged fields, each
//!   written only when it differs from its default: 0 `PreviousProducerId` (int64, -1),
//!   1 `NextProducerId` (int64, -1), 2 `ClientTransactionVersion` (int16, 0),
//!   3 `NextProducerEpoch` (int16, -1, KIP-939).
//! - A null value is a tombstone: the transactional id expired (`Dead`).
//!
//! The value is written as version 1; versions 0 and 1 are read.

use bytes::{BufMut, Bytes, BytesMut};

use super::TransactionState;

/// `CoordinatorRecordType.TRANSACTION_LOG`: the key's version prefix.
const TRANSACTION_LOG_KEY_TYPE: i16 = 0;
const TRANSACTION_LOG_VALUE_VERSION: i16 = 1;

const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;
const TAG_NEXT_PRODUCER_EPOCH: u32 = 3;

/// One record of `__transaction_state`; a `None` value is a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnRecord {
    pub transactional_id: String,
    pub value: Option<TransactionLogValue>,
}

/// `TransactionLogValue` v1, with Kafka's field names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionLogValue {
    pub producer_id: i64,
    /// Tagged (v1+), -1 by default.
    pub previous_producer_id: i64,
    /// Tagged (v1+), -1 by default: the producer id the next epoch bump moves to (KIP-890).
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    /// Tagged (v1+), -1 by default (KIP-939; not used by this coordinator).
    pub next_producer_epoch: i16,
    pub transaction_timeout_ms: i32,
    pub transaction_status: TransactionState,
    /// (topic, partition ids); `None` (null) in the Empty state.
    pub transaction_partitions: Option<Vec<(String, Vec<i32>)>>,
    pub transaction_last_update_timestamp_ms: i64,
    pub transaction_start_timestamp_ms: i64,
    /// Tagged (v1+), 0 by default: the client's `transaction.version` feature level.
    pub client_transaction_version: i16,
}

/// Why a record could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    Truncated,
    TrailingBytes,
    UnknownKeyType(i16),
    UnknownValueVersion(i16),
    UnknownTransactionStatus(i8),
    InvalidUtf8,
    NegativeLength,
    NullNotAllowed,
    VarintTooLong,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl TxnRecord {
    /// The record's key bytes.
    pub fn encode_key(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(TRANSACTION_LOG_KEY_TYPE);
        put_string(&mut buf, &self.transactional_id);
        buf.freeze()
    }

    /// The record's value bytes (version 1); `None` for a tombstone.
    pub fn encode_value(&self) -> Option<Bytes> {
        let value = self.value.as_ref()?;
        let mut buf = BytesMut::new();
        buf.put_i16(TRANSACTION_LOG_VALUE_VERSION);
        encode_value_v1(&mut buf, value);
        Some(buf.freeze())
    }

    /// Reads a record from its key and value (`None`: a tombstone).
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<TxnRecord, DecodeError> {
        let mut k = Reader(key);
        let record_type = k.i16()?;
        if record_type != TRANSACTION_LOG_KEY_TYPE {
            return Err(DecodeError::UnknownKeyType(record_type));
        }
        let transactional_id = k.string()?;
        k.finish()?;
        let value = value.map(decode_value).transpose()?;
        Ok(TxnRecord {
            transactional_id,
            value,
        })
    }
}

fn encode_value_v1(buf: &mut BytesMut, v: &TransactionLogValue) {
    buf.put_i64(v.producer_id);
    buf.put_i16(v.producer_epoch);
    buf.put_i32(v.transaction_timeout_ms);
    buf.put_i8(v.transaction_status.id());
    match &v.transaction_partitions {
        None => put_uvarint(buf, 0),
        Some(topics) => {
            put_uvarint(buf, compact_len(topics.len()));
            for (topic, partitions) in topics {
                put_compact_string(buf, topic);
                put_uvarint(buf, compact_len(partitions.len()));
                for p in partitions {
                    buf.put_i32(*p);
                }
                put_uvarint(buf, 0); // the PartitionsSchema's tagged fields: none
            }
        }
    }
    buf.put_i64(v.transaction_last_update_timestamp_ms);
    buf.put_i64(v.transaction_start_timestamp_ms);
    // Tagged fields, in tag order, each only when not its default.
    let mut tagged: Vec<(u32, Vec<u8>)> = Vec::new();
    if v.previous_producer_id != -1 {
        tagged.push((
            TAG_PREVIOUS_PRODUCER_ID,
            v.previous_producer_id.to_be_bytes().to_vec(),
        ));
    }
    if v.next_producer_id != -1 {
        tagged.push((
            TAG_NEXT_PRODUCER_ID,
            v.next_producer_id.to_be_bytes().to_vec(),
        ));
    }
    if v.client_transaction_version != 0 {
        let bytes = v.client_transaction_version.to_be_bytes().to_vec();
        tagged.push((TAG_CLIENT_TRANSACTION_VERSION, bytes));
    }
    if v.next_producer_epoch != -1 {
        tagged.push((
            TAG_NEXT_PRODUCER_EPOCH,
            v.next_producer_epoch.to_be_bytes().to_vec(),
        ));
    }
    put_uvarint(buf, tagged.len() as u32);
    for (tag, data) in tagged {
        put_uvarint(buf, tag);
        put_uvarint(buf, data.len() as u32);
        buf.put_slice(&data);
    }
}

fn decode_value(bytes: &[u8]) -> Result<TransactionLogValue, DecodeError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if !(0..=1).contains(&version) {
        return Err(DecodeError::UnknownValueVersion(version));
    }
    let flexible = version >= 1;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let transaction_timeout_ms = r.i32()?;
    let status = r.i8()?;
    let transaction_status =
        TransactionState::from_id(status).ok_or(DecodeError::UnknownTransactionStatus(status))?;
    let transaction_partitions = decode_partitions(&mut r, flexible)?;
    let mut value = TransactionLogValue {
        producer_id,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch,
        next_producer_epoch: -1,
        transaction_timeout_ms,
        transaction_status,
        transaction_partitions,
        transaction_last_update_timestamp_ms: r.i64()?,
        transaction_start_timestamp_ms: r.i64()?,
        client_transaction_version: 0,
    };
    if flexible {
        decode_tagged_fields(&mut r, &mut value)?;
    }
    r.finish()?;
    Ok(value)
}

type Partitions = Option<Vec<(String, Vec<i32>)>>;

fn decode_partitions(r: &mut Reader<'_>, flexible: bool) -> Result<Partitions, DecodeError> {
    let Some(count) = r.array_len(flexible)? else {
        return Ok(None);
    };
    let mut topics = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let topic = if flexible {
            r.compact_string()?
        } else {
            r.string()?
        };
        let n = r.array_len(flexible)?.ok_or(DecodeError::NullNotAllowed)?;
        let mut partitions = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            partitions.push(r.i32()?);
        }
        if flexible {
            r.skip_tagged_fields()?;
        }
        topics.push((topic, partitions));
    }
    Ok(Some(topics))
}

fn decode_tagged_fields(
    r: &mut Reader<'_>,
    value: &mut TransactionLogValue,
) -> Result<(), DecodeError> {
    let count = r.uvarint()?;
    for _ in 0..count {
        let tag = r.uvarint()?;
        let size = r.uvarint()? as usize;
        let mut field = Reader(r.take(size)?);
        match tag {
            TAG_PREVIOUS_PRODUCER_ID => value.previous_producer_id = field.i64()?,
            TAG_NEXT_PRODUCER_ID => value.next_producer_id = field.i64()?,
            TAG_CLIENT_TRANSACTION_VERSION => value.client_transaction_version = field.i16()?,
            TAG_NEXT_PRODUCER_EPOCH => value.next_producer_epoch = field.i16()?,
            // An unknown tag is skipped, as Kafka's generated readers do.
            _ => continue,
        }
        field.finish()?;
    }
    Ok(())
}

fn compact_len(n: usize) -> u32 {
    u32::try_from(n + 1).expect("an array of fewer than 2^32 - 1 elements")
}

fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(i16::try_from(s.len()).expect("a string of at most 32767 bytes"));
    buf.put_slice(s.as_bytes());
}

fn put_compact_string(buf: &mut BytesMut, s: &str) {
    put_uvarint(buf, compact_len(s.len()));
    buf.put_slice(s.as_bytes());
}

/// A cursor over a record's bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.take(1)?.try_into().expect("1 byte")))
    }

    fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// An unsigned varint of at most 5 bytes (a u32).
    fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.take(1)?[0];
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong)
    }

    /// An array's element count: int32 (-1 null) or, flexible, uvarint of count + 1 (0 null).
    fn array_len(&mut self, flexible: bool) -> Result<Option<usize>, DecodeError> {
        if flexible {
            let n = self.uvarint()?;
            return Ok(n.checked_sub(1).map(|n| n as usize));
        }
        match self.i32()? {
            -1 => Ok(None),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| DecodeError::NegativeLength),
        }
    }

    fn utf8(bytes: &[u8]) -> Result<String, DecodeError> {
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.i16()?;
        if n == -1 {
            return Err(DecodeError::NullNotAllowed);
        }
        let len = usize::try_from(n).map_err(|_| DecodeError::NegativeLength)?;
        let bytes = self.take(len)?;
        Self::utf8(bytes)
    }

    fn compact_string(&mut self) -> Result<String, DecodeError> {
        let n = self.uvarint()?;
        let len = n.checked_sub(1).ok_or(DecodeError::NullNotAllowed)? as usize;
        let bytes = self.take(len)?;
        Self::utf8(bytes)
    }

    fn skip_tagged_fields(&mut self) -> Result<(), DecodeError> {
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}
