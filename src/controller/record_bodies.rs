//! The message body of each metadata record, field by field in the order of its JSON schema
//! (`metadata/src/main/resources/common/metadata/<Name>.json`) at the version `records` names.
//! Non-tagged fields come first in schema order; the tagged ones follow in the tagged-field
//! section, written only when they differ from their default.

use super::codec::{Reader, TaggedField, Writer};
use super::records::{
    BrokerEndpoint, BrokerFeature, BrokerRegistrationChangeRecord, ConfigRecord,
    PartitionChangeRecord, PartitionRecord, RecordError, RegisterBrokerRecord, TopicRecord,
};

/// `PartitionChangeRecord.Leader`'s default: the leader did not change.
pub const NO_LEADER_CHANGE: i32 = -2;
/// `PartitionChangeRecord.LeaderRecoveryState`'s default: it did not change.
pub const NO_LEADER_RECOVERY_STATE_CHANGE: i8 = -1;

impl TopicRecord {
    pub(super) fn write(&self, w: &mut Writer) {
        w.compact_string(Some(&self.name));
        w.uuid(self.topic_id);
        w.tagged_fields(&[]);
    }

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let name = r.string("name")?;
        let topic_id = r.uuid("topic id")?;
        r.tagged_fields(|_, _| Ok(false))?;
        Ok(TopicRecord { name, topic_id })
    }
}

impl PartitionRecord {
    pub(super) fn write(&self, w: &mut Writer) {
        w.i32(self.partition_id);
        w.uuid(self.topic_id);
        w.i32_array(Some(&self.replicas));
        w.i32_array(Some(&self.isr));
        w.i32_array(Some(&self.removing_replicas));
        w.i32_array(Some(&self.adding_replicas));
        w.i32(self.leader);
        w.i32(self.leader_epoch);
        w.i32(self.partition_epoch);
        w.uuid_array(Some(&self.directories));
        let recovery = |w: &mut Writer| w.i8(self.leader_recovery_state);
        let elr = |w: &mut Writer| w.i32_array(self.eligible_leader_replicas.as_deref());
        let last_known = |w: &mut Writer| w.i32_array(self.last_known_elr.as_deref());
        let mut tagged: Vec<TaggedField<'_>> = Vec::new();
        if self.leader_recovery_state != 0 {
            tagged.push((0, &recovery));
        }
        if self.eligible_leader_replicas.is_some() {
            tagged.push((1, &elr));
        }
        if self.last_known_elr.is_some() {
            tagged.push((2, &last_known));
        }
        w.tagged_fields(&tagged);
    }

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let mut record = PartitionRecord {
            partition_id: r.i32("partition id")?,
            topic_id: r.uuid("topic id")?,
            replicas: r.i32_array("replicas")?,
            isr: r.i32_array("isr")?,
            removing_replicas: r.i32_array("removing replicas")?,
            adding_replicas: r.i32_array("adding replicas")?,
            leader: r.i32("leader")?,
            leader_recovery_state: 0,
            leader_epoch: r.i32("leader epoch")?,
            partition_epoch: r.i32("partition epoch")?,
            directories: r.uuid_array("directories")?,
            eligible_leader_replicas: None,
            last_known_elr: None,
        };
        r.tagged_fields(|tag, field| {
            match tag {
                0 => record.leader_recovery_state = field.i8("leader recovery state")?,
                1 => record.eligible_leader_replicas = field.nullable_i32_array("elr")?,
                2 => record.last_known_elr = field.nullable_i32_array("last known elr")?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(record)
    }
}

impl PartitionChangeRecord {
    pub(super) fn write(&self, w: &mut Writer) {
        w.i32(self.partition_id);
        w.uuid(self.topic_id);
        let leader = self.leader.unwrap_or(NO_LEADER_CHANGE);
        let recovery = self
            .leader_recovery_state
            .unwrap_or(NO_LEADER_RECOVERY_STATE_CHANGE);
        let isr = |w: &mut Writer| w.i32_array(self.isr.as_deref());
        let write_leader = |w: &mut Writer| w.i32(leader);
        let replicas = |w: &mut Writer| w.i32_array(self.replicas.as_deref());
        let removing = |w: &mut Writer| w.i32_array(self.removing_replicas.as_deref());
        let adding = |w: &mut Writer| w.i32_array(self.adding_replicas.as_deref());
        let write_recovery = |w: &mut Writer| w.i8(recovery);
        let elr = |w: &mut Writer| w.i32_array(self.eligible_leader_replicas.as_deref());
        let last_known = |w: &mut Writer| w.i32_array(self.last_known_elr.as_deref());
        let directories = |w: &mut Writer| w.uuid_array(self.directories.as_deref());
        let candidates: [(bool, TaggedField<'_>); 9] = [
            (self.isr.is_some(), (0, &isr)),
            (leader != NO_LEADER_CHANGE, (1, &write_leader)),
            (self.replicas.is_some(), (2, &replicas)),
            (self.removing_replicas.is_some(), (3, &removing)),
            (self.adding_replicas.is_some(), (4, &adding)),
            (
                recovery != NO_LEADER_RECOVERY_STATE_CHANGE,
                (5, &write_recovery),
            ),
            (self.eligible_leader_replicas.is_some(), (6, &elr)),
            (self.last_known_elr.is_some(), (7, &last_known)),
            (self.directories.is_some(), (8, &directories)),
        ];
        let tagged: Vec<TaggedField<'_>> = candidates
            .into_iter()
            .filter(|(present, _)| *present)
            .map(|(_, field)| field)
            .collect();
        w.tagged_fields(&tagged);
    }

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let mut record = PartitionChangeRecord {
            partition_id: r.i32("partition id")?,
            topic_id: r.uuid("topic id")?,
            ..PartitionChangeRecord::default()
        };
        r.tagged_fields(|tag, field| {
            match tag {
                0 => record.isr = field.nullable_i32_array("isr")?,
                1 => {
                    let leader = field.i32("leader")?;
                    record.leader = (leader != NO_LEADER_CHANGE).then_some(leader);
                }
                2 => record.replicas = field.nullable_i32_array("replicas")?,
                3 => record.removing_replicas = field.nullable_i32_array("removing replicas")?,
                4 => record.adding_replicas = field.nullable_i32_array("adding replicas")?,
                5 => {
                    let state = field.i8("leader recovery state")?;
                    record.leader_recovery_state =
                        (state != NO_LEADER_RECOVERY_STATE_CHANGE).then_some(state);
                }
                6 => record.eligible_leader_replicas = field.nullable_i32_array("elr")?,
                7 => record.last_known_elr = field.nullable_i32_array("last known elr")?,
                8 => record.directories = field.nullable_uuid_array("directories")?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(record)
    }
}

impl ConfigRecord {
    pub(super) fn write(&self, w: &mut Writer) {
        w.i8(self.resource_type);
        w.compact_string(Some(&self.resource_name));
        w.compact_string(Some(&self.name));
        w.compact_string(self.value.as_deref());
        w.tagged_fields(&[]);
    }

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let record = ConfigRecord {
            resource_type: r.i8("resource type")?,
            resource_name: r.string("resource name")?,
            name: r.string("name")?,
            value: r.nullable_string("value")?,
        };
        r.tagged_fields(|_, _| Ok(false))?;
        Ok(record)
    }
}

impl RegisterBrokerRecord {
    pub(super) fn write(&self, w: &mut Writer) {
        w.i32(self.broker_id);
        w.bool(self.is_migrating_zk_broker);
        w.uuid(self.incarnation_id);
        w.i64(self.broker_epoch);
        w.compact_array(Some(&self.endpoints), |w, e| {
            w.compact_string(Some(&e.name));
            w.compact_string(Some(&e.host));
            w.u16(e.port);
            w.i16(e.security_protocol);
            w.tagged_fields(&[]);
        });
        w.compact_array(Some(&self.features), |w, f| {
            w.compact_string(Some(&f.name));
            w.i16(f.min_supported_version);
            w.i16(f.max_supported_version);
            w.tagged_fields(&[]);
        });
        w.compact_string(self.rack.as_deref());
        w.bool(self.fenced);
        w.bool(self.in_controlled_shutdown);
        let log_dirs = |w: &mut Writer| w.uuid_array(Some(&self.log_dirs));
        if self.log_dirs.is_empty() {
            w.tagged_fields(&[]);
        } else {
            w.tagged_fields(&[(0, &log_dirs)]);
        }
    }

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let mut record = RegisterBrokerRecord {
            broker_id: r.i32("broker id")?,
            is_migrating_zk_broker: r.bool("is migrating zk broker")?,
            incarnation_id: r.uuid("incarnation id")?,
            broker_epoch: r.i64("broker epoch")?,
            endpoints: r.array("endpoints", read_endpoint)?,
            features: r.array("features", read_feature)?,
            rack: r.nullable_string("rack")?,
            fenced: r.bool("fenced")?,
            in_controlled_shutdown: r.bool("in controlled shutdown")?,
            log_dirs: Vec::new(),
        };
        r.tagged_fields(|tag, field| {
            if tag != 0 {
                return Ok(false);
            }
            record.log_dirs = field.uuid_array("log dirs")?;
            Ok(true)
        })?;
        Ok(record)
    }
}

fn read_endpoint(r: &mut Reader<'_>) -> Result<BrokerEndpoint, RecordError> {
    let endpoint = BrokerEndpoint {
        name: r.string("endpoint name")?,
        host: r.string("endpoint host")?,
        port: r.u16("endpoint port")?,
        security_protocol: r.i16("endpoint security protocol")?,
    };
    r.tagged_fields(|_, _| Ok(false))?;
    Ok(endpoint)
}

fn read_feature(r: &mut Reader<'_>) -> Result<BrokerFeature, RecordError> {
    let feature = BrokerFeature {
        name: r.string("feature name")?,
        min_supported_version: r.i16("feature min supported version")?,
        max_supported_version: r.i16("feature max supported version")?,
    };
    r.tagged_fields(|_, _| Ok(false))?;
    Ok(feature)
}

impl BrokerRegistrationChangeRecord {
    pub(super) fn write(&self, w: &mut Writer) {
        w.i32(self.broker_id);
        w.i64(self.broker_epoch);
        let fenced = |w: &mut Writer| w.i8(self.fenced);
        let shutdown = |w: &mut Writer| w.i8(self.in_controlled_shutdown);
        let log_dirs = |w: &mut Writer| w.uuid_array(Some(&self.log_dirs));
        let mut tagged: Vec<TaggedField<'_>> = Vec::new();
        if self.fenced != 0 {
            tagged.push((0, &fenced));
        }
        if self.in_controlled_shutdown != 0 {
            tagged.push((1, &shutdown));
        }
        if !self.log_dirs.is_empty() {
            tagged.push((2, &log_dirs));
        }
        w.tagged_fields(&tagged);
    }

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let mut record = BrokerRegistrationChangeRecord {
            broker_id: r.i32("broker id")?,
            broker_epoch: r.i64("broker epoch")?,
            fenced: 0,
            in_controlled_shutdown: 0,
            log_dirs: Vec::new(),
        };
        r.tagged_fields(|tag, field| {
            match tag {
                0 => record.fenced = field.i8("fenced")?,
                1 => record.in_controlled_shutdown = field.i8("in controlled shutdown")?,
                2 => record.log_dirs = field.uuid_array("log dirs")?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(record)
    }
}
