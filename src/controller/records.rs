//! The records of the metadata log (`__cluster_metadata`) that the controller writes and every
//! controller and broker replays, in Kafka's bytes.
//!
//! Framing (`AbstractApiMessageSerde`, the value of each record in a metadata batch): unsigned
//! varint frame version (1), unsigned varint record type (the schema's `apiKey`), unsigned varint
//! version, then the message in Kafka's flexible encoding (all metadata records are flexible from
//! version 0). Reading refuses frame version 0 (KRaft's 2.8 preview) and any other, a type or
//! version above `Short.MAX_VALUE`, and trailing bytes, as Kafka does.
//!
//! One version per record type, the latest in Apache Kafka's released schemas
//! (`metadata/src/main/resources/common/metadata/*.json`); Samsa writes only these and reads only
//! these:
//!
//! | record                           | apiKey | version | what the version adds                 |
//! |----------------------------------|--------|---------|---------------------------------------|
//! | `RegisterBrokerRecord`           | 0      | 3       | `LogDirs` (tag 0, KIP-858)            |
//! | `TopicRecord`                    | 2      | 0       |                                       |
//! | `PartitionRecord`                | 3      | 2       | `Directories` (v1), ELR tags 1-2 (v2) |
//! | `ConfigRecord`                   | 4      | 0       |                                       |
//! | `PartitionChangeRecord`          | 5      | 2       | `Directories` tag 8 (v1), ELR 6-7 (v2)|
//! | `FenceBrokerRecord`              | 7      | 0       |                                       |
//! | `UnfenceBrokerRecord`            | 8      | 0       |                                       |
//! | `RemoveTopicRecord`              | 9      | 0       |                                       |
//! | `ProducerIdsRecord`              | 15     | 0       |                                       |
//! | `BrokerRegistrationChangeRecord` | 17     | 2       | `LogDirs` tag 2 (v2)                  |
//! | `NoOpRecord`                     | 20     | 0       | (KIP-835; `raft::driver` writes it)   |
//!
//! Tagged fields are written only when they differ from their schema default, in ascending tag
//! order, as the generated Java does; on reading, unknown tags are skipped (Kafka keeps them as
//! raw bytes and writes them back; Samsa drops them).

use std::fmt;

use bytes::Bytes;

use super::codec::{Reader, Writer};
use super::uuid::Uuid;

/// `AbstractApiMessageSerde.DEFAULT_FRAME_VERSION`.
pub const FRAME_VERSION: u32 = 1;

/// `RegisterBrokerRecord` v3: a broker's registration, written when it registers (KIP-631).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterBrokerRecord {
    pub broker_id: i32,
    /// v2+; always false in KRaft-only clusters.
    pub is_migrating_zk_broker: bool,
    pub incarnation_id: Uuid,
    pub broker_epoch: i64,
    pub endpoints: Vec<BrokerEndpoint>,
    pub features: Vec<BrokerFeature>,
    pub rack: Option<String>,
    /// Schema default true: a broker registers fenced and is unfenced once caught up.
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    /// Tag 0: the broker's online log directories.
    pub log_dirs: Vec<Uuid>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// `SecurityProtocol.id`: 0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL.
    pub security_protocol: i16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerFeature {
    pub name: String,
    pub min_supported_version: i16,
    pub max_supported_version: i16,
}

/// `TopicRecord` v0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicRecord {
    pub name: String,
    pub topic_id: Uuid,
}

/// `PartitionRecord` v2: a partition's whole state, written when it is created (and in
/// snapshots).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRecord {
    pub partition_id: i32,
    pub topic_id: Uuid,
    /// In preferred order: the first is the preferred leader.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    /// -1 when there is no leader.
    pub leader: i32,
    /// Tag 0 (default 0): 1 while recovering from an unclean election (KIP-704).
    pub leader_recovery_state: i8,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// v1+: the log directory of each replica, in `replicas` order.
    pub directories: Vec<Uuid>,
    /// Tag 1 (v2, default null): KIP-966's eligible leader replicas.
    pub eligible_leader_replicas: Option<Vec<i32>>,
    /// Tag 2 (v2, default null).
    pub last_known_elr: Option<Vec<i32>>,
}

/// `ConfigRecord` v0: sets (or with a null value, deletes) one configuration key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigRecord {
    /// `ConfigResource.Type` id: 2 topic, 4 broker, 8 broker logger.
    pub resource_type: i8,
    pub resource_name: String,
    pub name: String,
    pub value: Option<String>,
}

/// `PartitionChangeRecord` v2: what changed in one partition; every field but the ids is tagged
/// and absent when unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionChangeRecord {
    pub partition_id: i32,
    pub topic_id: Uuid,
    /// Tag 0.
    pub isr: Option<Vec<i32>>,
    /// Tag 1: `None` is Kafka's -2 (no change); `Some(-1)` is "now no leader". Present means the
    /// leader epoch is bumped, even if the leader is the same broker.
    pub leader: Option<i32>,
    /// Tag 2.
    pub replicas: Option<Vec<i32>>,
    /// Tag 3.
    pub removing_replicas: Option<Vec<i32>>,
    /// Tag 4.
    pub adding_replicas: Option<Vec<i32>>,
    /// Tag 5: `None` is Kafka's -1 (no change).
    pub leader_recovery_state: Option<i8>,
    /// Tag 6 (v2).
    pub eligible_leader_replicas: Option<Vec<i32>>,
    /// Tag 7 (v2).
    pub last_known_elr: Option<Vec<i32>>,
    /// Tag 8 (v1).
    pub directories: Option<Vec<Uuid>>,
}

/// `FenceBrokerRecord` v0 (and `UnfenceBrokerRecord` v0): superseded by
/// `BrokerRegistrationChangeRecord` since metadata version 3.3, still replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FenceBrokerRecord {
    pub id: i32,
    pub epoch: i64,
}

/// `UnfenceBrokerRecord` v0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnfenceBrokerRecord {
    pub id: i32,
    pub epoch: i64,
}

/// `ProducerIdsRecord` v0: the controller handed the producer ids below `next_producer_id` out
/// (the last block to `broker_id` at `broker_epoch`; -1 for both in a snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerIdsRecord {
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub next_producer_id: i64,
}

/// `RemoveTopicRecord` v0: removes the topic, its partitions and its configs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoveTopicRecord {
    pub topic_id: Uuid,
}

/// `BrokerRegistrationChangeRecord` v2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistrationChangeRecord {
    pub broker_id: i32,
    pub broker_epoch: i64,
    /// Tag 0: -1 unfenced, 0 no change, 1 fenced (`BrokerRegistrationFencingChange`).
    pub fenced: i8,
    /// Tag 1: 0 no change, 1 in controlled shutdown.
    pub in_controlled_shutdown: i8,
    /// Tag 2.
    pub log_dirs: Vec<Uuid>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataRecord {
    RegisterBroker(RegisterBrokerRecord),
    Topic(TopicRecord),
    Partition(PartitionRecord),
    Config(ConfigRecord),
    PartitionChange(PartitionChangeRecord),
    FenceBroker(FenceBrokerRecord),
    UnfenceBroker(UnfenceBrokerRecord),
    RemoveTopic(RemoveTopicRecord),
    BrokerRegistrationChange(BrokerRegistrationChangeRecord),
    ProducerIds(ProducerIdsRecord),
    /// `NoOpRecord` v0 (no fields): the active controller's heartbeat in the log (KIP-835).
    NoOp,
}

/// Record type (`apiKey`) and the one version Samsa writes and reads, per record.
pub mod api_key {
    pub const REGISTER_BROKER: (i16, i16) = (0, 3);
    pub const TOPIC: (i16, i16) = (2, 0);
    pub const PARTITION: (i16, i16) = (3, 2);
    pub const CONFIG: (i16, i16) = (4, 0);
    pub const PARTITION_CHANGE: (i16, i16) = (5, 2);
    pub const FENCE_BROKER: (i16, i16) = (7, 0);
    pub const UNFENCE_BROKER: (i16, i16) = (8, 0);
    pub const REMOVE_TOPIC: (i16, i16) = (9, 0);
    pub const PRODUCER_IDS: (i16, i16) = (15, 0);
    pub const BROKER_REGISTRATION_CHANGE: (i16, i16) = (17, 2);
    pub const NO_OP: (i16, i16) = (20, 0);
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Kafka: "Could not deserialize metadata record due to unknown frame version".
    UnsupportedFrameVersion(u32),
    /// A record type Samsa does not know (or a type above `Short.MAX_VALUE`).
    UnknownRecordType(u32),
    /// A version other than the one Samsa reads for this type.
    UnsupportedVersion {
        api_key: i16,
        version: u32,
    },
    Malformed {
        field: &'static str,
        detail: String,
    },
    /// Kafka: "Found N byte(s) of garbage after" the record.
    TrailingBytes {
        api_key: i16,
        count: usize,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::UnsupportedFrameVersion(v) => write!(
                f,
                "could not deserialize metadata record due to unknown frame version {v} \
                 (only frame version {FRAME_VERSION} is supported)"
            ),
            RecordError::UnknownRecordType(t) => write!(f, "unknown metadata record type {t}"),
            RecordError::UnsupportedVersion { api_key, version } => {
                write!(
                    f,
                    "unsupported version {version} of metadata record type {api_key}"
                )
            }
            RecordError::Malformed { field, detail } => write!(f, "malformed {field}: {detail}"),
            RecordError::TrailingBytes { api_key, count } => {
                write!(
                    f,
                    "found {count} byte(s) of garbage after record type {api_key}"
                )
            }
        }
    }
}

impl std::error::Error for RecordError {}

impl MetadataRecord {
    /// The (apiKey, version) this record is written with.
    pub fn api_key_and_version(&self) -> (i16, i16) {
        match self {
            MetadataRecord::RegisterBroker(_) => api_key::REGISTER_BROKER,
            MetadataRecord::Topic(_) => api_key::TOPIC,
            MetadataRecord::Partition(_) => api_key::PARTITION,
            MetadataRecord::Config(_) => api_key::CONFIG,
            MetadataRecord::PartitionChange(_) => api_key::PARTITION_CHANGE,
            MetadataRecord::FenceBroker(_) => api_key::FENCE_BROKER,
            MetadataRecord::UnfenceBroker(_) => api_key::UNFENCE_BROKER,
            MetadataRecord::RemoveTopic(_) => api_key::REMOVE_TOPIC,
            MetadataRecord::BrokerRegistrationChange(_) => api_key::BROKER_REGISTRATION_CHANGE,
            MetadataRecord::ProducerIds(_) => api_key::PRODUCER_IDS,
            MetadataRecord::NoOp => api_key::NO_OP,
        }
    }

    /// The framed record, as `MetadataRecordSerde.write` produces it.
    pub fn encode(&self) -> Bytes {
        let (key, version) = self.api_key_and_version();
        let mut w = Writer::default();
        w.unsigned_varint(FRAME_VERSION);
        w.unsigned_varint(key as u32);
        w.unsigned_varint(version as u32);
        match self {
            MetadataRecord::RegisterBroker(r) => r.write(&mut w),
            MetadataRecord::Topic(r) => r.write(&mut w),
            MetadataRecord::Partition(r) => r.write(&mut w),
            MetadataRecord::Config(r) => r.write(&mut w),
            MetadataRecord::PartitionChange(r) => r.write(&mut w),
            MetadataRecord::FenceBroker(r) => write_broker_epoch(&mut w, r.id, r.epoch),
            MetadataRecord::UnfenceBroker(r) => write_broker_epoch(&mut w, r.id, r.epoch),
            MetadataRecord::RemoveTopic(r) => {
                w.uuid(r.topic_id);
                w.tagged_fields(&[]);
            }
            MetadataRecord::BrokerRegistrationChange(r) => r.write(&mut w),
            MetadataRecord::ProducerIds(r) => {
                w.i32(r.broker_id);
                w.i64(r.broker_epoch);
                w.i64(r.next_producer_id);
                w.tagged_fields(&[]);
            }
            MetadataRecord::NoOp => w.tagged_fields(&[]),
        }
        w.finish()
    }

    /// Reads one framed record, as `MetadataRecordSerde.read` does; never panics.
    pub fn decode(bytes: &[u8]) -> Result<MetadataRecord, RecordError> {
        let mut r = Reader::new(bytes);
        let frame_version = r.unsigned_varint("frame version")?;
        if frame_version != FRAME_VERSION {
            return Err(RecordError::UnsupportedFrameVersion(frame_version));
        }
        let key = r.unsigned_varint("type")?;
        let key = i16::try_from(key).map_err(|_| RecordError::UnknownRecordType(key))?;
        let version = r.unsigned_varint("version")?;
        let expected = match key {
            0 => api_key::REGISTER_BROKER,
            2 => api_key::TOPIC,
            3 => api_key::PARTITION,
            4 => api_key::CONFIG,
            5 => api_key::PARTITION_CHANGE,
            7 => api_key::FENCE_BROKER,
            8 => api_key::UNFENCE_BROKER,
            9 => api_key::REMOVE_TOPIC,
            15 => api_key::PRODUCER_IDS,
            17 => api_key::BROKER_REGISTRATION_CHANGE,
            20 => api_key::NO_OP,
            _ => return Err(RecordError::UnknownRecordType(key as u32)),
        };
        if version != expected.1 as u32 {
            return Err(RecordError::UnsupportedVersion {
                api_key: key,
                version,
            });
        }
        let record = match key {
            0 => MetadataRecord::RegisterBroker(RegisterBrokerRecord::read(&mut r)?),
            2 => MetadataRecord::Topic(TopicRecord::read(&mut r)?),
            3 => MetadataRecord::Partition(PartitionRecord::read(&mut r)?),
            4 => MetadataRecord::Config(ConfigRecord::read(&mut r)?),
            5 => MetadataRecord::PartitionChange(PartitionChangeRecord::read(&mut r)?),
            7 => {
                let (id, epoch) = read_broker_epoch(&mut r)?;
                MetadataRecord::FenceBroker(FenceBrokerRecord { id, epoch })
            }
            8 => {
                let (id, epoch) = read_broker_epoch(&mut r)?;
                MetadataRecord::UnfenceBroker(UnfenceBrokerRecord { id, epoch })
            }
            9 => {
                let topic_id = r.uuid("topic id")?;
                r.tagged_fields(|_, _| Ok(false))?;
                MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id })
            }
            15 => {
                let (broker_id, broker_epoch) = read_broker_epoch_prefix(&mut r)?;
                let next_producer_id = r.i64("next producer id")?;
                r.tagged_fields(|_, _| Ok(false))?;
                MetadataRecord::ProducerIds(ProducerIdsRecord {
                    broker_id,
                    broker_epoch,
                    next_producer_id,
                })
            }
            17 => MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord::read(
                &mut r,
            )?),
            _ => {
                r.tagged_fields(|_, _| Ok(false))?;
                MetadataRecord::NoOp
            }
        };
        if r.remaining() > 0 {
            return Err(RecordError::TrailingBytes {
                api_key: key,
                count: r.remaining(),
            });
        }
        Ok(record)
    }
}

fn write_broker_epoch(w: &mut Writer, id: i32, epoch: i64) {
    w.i32(id);
    w.i64(epoch);
    w.tagged_fields(&[]);
}

fn read_broker_epoch(r: &mut Reader<'_>) -> Result<(i32, i64), RecordError> {
    let (id, epoch) = read_broker_epoch_prefix(r)?;
    r.tagged_fields(|_, _| Ok(false))?;
    Ok((id, epoch))
}

fn read_broker_epoch_prefix(r: &mut Reader<'_>) -> Result<(i32, i64), RecordError> {
    Ok((r.i32("id")?, r.i64("epoch")?))
}
