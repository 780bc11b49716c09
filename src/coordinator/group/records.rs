//! The records of `__consumer_offsets`, in Kafka's own binary formats (the schemas of
//! `group-coordinator/src/main/resources/common/message/`): a key and a value, each starting with
//! its int16 version, non-flexible (no tagged fields), big-endian; strings are an int16 length
//! and UTF-8 (-1 for null), bytes an int32 length, arrays an int32 count. A null value is a
//! tombstone: it deletes the key.
//!
//! - `OffsetCommitKey` (key version 0 or 1: group, topic, partition), `OffsetCommitValue`
//!   (written as version 3: offset, leader epoch, metadata, commit timestamp; read 0-3);
//! - `GroupMetadataKey` (key version 2: group), `GroupMetadataValue` (written as version 3,
//!   Kafka's `groupMetadataValueVersion`; read 0-3).

use bytes::{BufMut, Bytes, BytesMut};

/// The key versions, which are also the record types (Kafka's `CoordinatorRecordType`).
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const GROUP_METADATA_KEY_VERSION: i16 = 2;
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// One record of `__consumer_offsets`; a `None` value is a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordinatorRecord {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetCommitValue>,
    },
    GroupMetadata {
        group: String,
        value: Option<GroupMetadataValue>,
    },
}

/// `OffsetCommitValue` v3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// -1 when not known.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// `GroupMetadataValue` v3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// -1 when not known (versions before 2).
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

/// `GroupMetadataValue.MemberMetadata` v3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// Why a record could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    Truncated,
    TrailingBytes,
    UnknownKeyVersion(i16),
    UnknownValueVersion(i16),
    InvalidUtf8,
    NegativeLength,
    NullNotAllowed,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl CoordinatorRecord {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            CoordinatorRecord::OffsetCommit { group, .. } => group,
            CoordinatorRecord::GroupMetadata { group, .. } => group,
        }
    }

    /// The record's key bytes.
    pub fn encode_key(&self) -> Bytes {
        let mut buf = BytesMut::new();
        match self {
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                ..
            } => {
                buf.put_i16(OFFSET_COMMIT_KEY_VERSION);
                put_string(&mut buf, group);
                put_string(&mut buf, topic);
                buf.put_i32(*partition);
            }
            CoordinatorRecord::GroupMetadata { group, .. } => {
                buf.put_i16(GROUP_METADATA_KEY_VERSION);
                put_string(&mut buf, group);
            }
        }
        buf.freeze()
    }

    /// The record's value bytes; `None` for a tombstone.
    pub fn encode_value(&self) -> Option<Bytes> {
        let mut buf = BytesMut::new();
        match self {
            CoordinatorRecord::OffsetCommit { value, .. } => {
                encode_offset_commit(&mut buf, value.as_ref()?)
            }
            CoordinatorRecord::GroupMetadata { value, .. } => {
                encode_group_metadata(&mut buf, value.as_ref()?)
            }
        }
        Some(buf.freeze())
    }

    /// Reads a record from its key and value (`None`: a tombstone).
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<CoordinatorRecord, DecodeError> {
        let mut k = Reader(key);
        let version = k.i16()?;
        let record = match version {
            0 | 1 => {
                let group = k.string()?;
                let topic = k.string()?;
                let partition = k.i32()?;
                let value = value.map(decode_offset_commit).transpose()?;
                CoordinatorRecord::OffsetCommit {
                    group,
                    topic,
                    partition,
                    value,
                }
            }
            2 => {
                let group = k.string()?;
                let value = value.map(decode_group_metadata).transpose()?;
                CoordinatorRecord::GroupMetadata { group, value }
            }
            other => return Err(DecodeError::UnknownKeyVersion(other)),
        };
        k.finish()?;
        Ok(record)
    }
}

fn encode_offset_commit(buf: &mut BytesMut, value: &OffsetCommitValue) {
    buf.put_i16(OFFSET_COMMIT_VALUE_VERSION);
    buf.put_i64(value.offset);
    buf.put_i32(value.leader_epoch);
    put_string(buf, &value.metadata);
    buf.put_i64(value.commit_timestamp_ms);
}

fn encode_group_metadata(buf: &mut BytesMut, value: &GroupMetadataValue) {
    buf.put_i16(GROUP_METADATA_VALUE_VERSION);
    put_string(buf, &value.protocol_type);
    buf.put_i32(value.generation);
    put_nullable_string(buf, value.protocol.as_deref());
    put_nullable_string(buf, value.leader.as_deref());
    buf.put_i64(value.current_state_timestamp_ms);
    buf.put_i32(i32::try_from(value.members.len()).expect("member count fits an int32"));
    for member in &value.members {
        put_string(buf, &member.member_id);
        put_nullable_string(buf, member.group_instance_id.as_deref());
        put_string(buf, &member.client_id);
        put_string(buf, &member.client_host);
        buf.put_i32(member.rebalance_timeout_ms);
        buf.put_i32(member.session_timeout_ms);
        put_bytes(buf, &member.subscription);
        put_bytes(buf, &member.assignment);
    }
}

/// `OffsetCommitValue` versions 0-3: v1 has an expire timestamp (ignored here: Kafka's
/// per-commit retention is not modelled), v3 a leader epoch.
fn decode_offset_commit(bytes: &[u8]) -> Result<OffsetCommitValue, DecodeError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(DecodeError::UnknownValueVersion(version));
    }
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    if version == 1 {
        r.i64()?;
    }
    r.finish()?;
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

/// `GroupMetadataValue` versions 0-3: v1 adds the rebalance timeout, v2 the current state
/// timestamp, v3 the group instance id. Before v1 the rebalance timeout is the session timeout,
/// as Kafka reads it.
fn decode_group_metadata(bytes: &[u8]) -> Result<GroupMetadataValue, DecodeError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(DecodeError::UnknownValueVersion(version));
    }
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = r.i32()?;
    let count = r.length(count)?;
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        members.push(decode_member(&mut r, version)?);
    }
    r.finish()?;
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

fn decode_member(r: &mut Reader<'_>, version: i16) -> Result<MemberMetadata, DecodeError> {
    let member_id = r.string()?;
    let group_instance_id = if version >= 3 {
        r.nullable_string()?
    } else {
        None
    };
    let client_id = r.string()?;
    let client_host = r.string()?;
    let rebalance_timeout = if version >= 1 { Some(r.i32()?) } else { None };
    let session_timeout_ms = r.i32()?;
    Ok(MemberMetadata {
        member_id,
        group_instance_id,
        client_id,
        client_host,
        rebalance_timeout_ms: rebalance_timeout.unwrap_or(session_timeout_ms),
        session_timeout_ms,
        subscription: r.bytes()?,
        assignment: r.bytes()?,
    })
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(i16::try_from(s.len()).expect("a string of at most 32767 bytes"));
    buf.put_slice(s.as_bytes());
}

fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(i32::try_from(b.len()).expect("bytes of at most 2 GiB"));
    buf.put_slice(b);
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

    fn length(&self, n: i32) -> Result<usize, DecodeError> {
        usize::try_from(n).map_err(|_| DecodeError::NegativeLength)
    }

    fn nullable_string(&mut self) -> Result<Option<String>, DecodeError> {
        let n = self.i16()?;
        if n == -1 {
            return Ok(None);
        }
        let len = self.length(i32::from(n))?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| DecodeError::InvalidUtf8)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        self.nullable_string()?.ok_or(DecodeError::NullNotAllowed)
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.i32()?;
        let len = self.length(n)?;
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}
