//! The KRaft controller's metadata layer, pure (no I/O, no clock, no randomness of its own): the
//! records of the metadata log in Kafka's bytes, the image their replay builds, and the two
//! decisions the controller makes about partitions, where replicas go and who leads.
//!
//! - `records`: `MetadataRecord`, the metadata records Samsa writes (`RegisterBrokerRecord`,
//!   `TopicRecord`, `PartitionRecord`, `PartitionChangeRecord`, …) with `encode`/`decode` in
//!   `MetadataRecordSerde`'s framing; the versions chosen are listed there. `record_bodies`
//!   holds each record's fields in schema order, over the flexible-encoding primitives of
//!   `codec`. `uuid` is Kafka's `Uuid` (topic ids, incarnation ids, directory ids).
//! - `image`: `MetadataImage` and `replay`, with the semantics of Kafka's
//!   `ClusterControlManager`, `ReplicationControlManager` and `ConfigurationControlManager`.
//! - `placement`: `assign_replicas_to_brokers`, Kafka's rack-unaware `AdminUtils` placement.
//! - `election`: `elect_leader` and `PartitionChangeBuilder` (clean, unclean, preferred).
//!
//! Still to build, on top of this: the `QuorumController`, a state machine that turns requests
//! (`BrokerRegistration`, `BrokerHeartbeat`, `CreateTopics`, `AlterPartition`, `DeleteTopics`,
//! `ElectLeaders`) into records, appends them through `crate::raft` and replays what the quorum
//! commits; the heartbeat-driven fencing (`BrokerHeartbeatManager`: session timeout, unfence
//! once caught up, controlled shutdown); the records this layer does not know yet
//! (`FeatureLevelRecord` for `metadata.version`, `NoOpRecord`, `UnregisterBrokerRecord`,
//! snapshots). Brokers then follow the committed log into the same image, replacing the fixed
//! `crate::metadata::MetadataImage`.

pub mod codec;
pub mod election;
pub mod image;
pub mod placement;
pub mod record_bodies;
pub mod records;
pub mod uuid;

#[cfg(test)]
mod tests;

pub use election::{elect_leader, Election, ElectionResult, PartitionChangeBuilder, NO_LEADER};
pub use image::{
    BrokerRegistration, LeaderRecoveryState, MetadataImage, PartitionRegistration, ReplayError,
    TopicImage,
};
pub use placement::{assign_replicas_to_brokers, PlacementError};
pub use records::{MetadataRecord, RecordError};
pub use uuid::Uuid;
