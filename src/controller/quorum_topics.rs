//! Topics in the active controller: Kafka's `ReplicationControlManager.createTopics`,
//! `deleteTopics` and `createPartitions` (with `ControllerApis`' duplicate-name check).
//!
//! A new partition's replicas come from placement over the usable brokers (or the request's
//! manual assignment); its ISR is those replicas that are active (unfenced, not shutting down),
//! in replica order, and its leader the first of them, at leader and partition epoch 0. Each
//! topic of a request stands alone: one refused topic does not fail the others.

use std::collections::{BTreeMap, BTreeSet};

use super::image::{CONFIG_RESOURCE_TOPIC, DIRECTORY_UNASSIGNED};
use super::placement::assign_replicas_to_brokers_from;
use super::quorum::{
    error_code, is_acceptable_leader, ApiError, ControllerResponse, CreatableTopicResult,
    CreatePartitionsTopic, CreatePartitionsTopicResult, DeletableTopicResult, NewTopic,
    QuorumController,
};
use super::records::{
    ConfigRecord, MetadataRecord, PartitionRecord, RemoveTopicRecord, TopicRecord,
};
use super::uuid::Uuid;

/// Partition id → (replicas, ISR) of the partitions a request creates.
type NewPartitions = BTreeMap<i32, (Vec<i32>, Vec<i32>)>;

/// `Topic.MAX_NAME_LENGTH`.
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// `Topic.validate`: 1 to 249 of ASCII alphanumerics, '.', '_' and '-', and not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".to_owned());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".to_owned());
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters, \
             topic name: {name}"
        ));
    }
    let legal = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-';
    if !name.chars().all(legal) {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII \
             alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// `Topic.unifyCollisionChars`: '.' and '_' collide in metric names.
fn unify_collision_chars(name: &str) -> String {
    name.replace('.', "_")
}

/// The names given more than once in one request (`ControllerApis` refuses them all with
/// `INVALID_REQUEST`, "Duplicate topic name.").
fn duplicate_names<'a>(names: impl Iterator<Item = &'a str>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    names.filter(|name| !seen.insert(*name)).collect()
}

fn duplicate_name_error() -> ApiError {
    ApiError::new(error_code::INVALID_REQUEST, "Duplicate topic name.")
}

impl QuorumController {
    /// `createTopics`; with `validate_only` the results are computed the same way and no
    /// record is written.
    pub(super) fn create_topics(
        &mut self,
        topics: &[NewTopic],
        validate_only: bool,
        records: &mut Vec<MetadataRecord>,
    ) -> ControllerResponse {
        let created = self.each_topic(
            topics,
            |t| t.name.as_str(),
            validate_only,
            records,
            Self::create_topic,
        );
        let results = created
            .into_iter()
            .zip(topics)
            .map(|(created, topic)| {
                created.unwrap_or_else(|error| CreatableTopicResult::error(&topic.name, &error))
            })
            .collect();
        ControllerResponse::CreateTopics { topics: results }
    }

    /// What `createTopics` and `createPartitions` share: each topic stands alone, a name given
    /// more than once is refused, and with `validate_only` the image goes back to what it was
    /// and the records are dropped.
    fn each_topic<T, R>(
        &mut self,
        topics: &[T],
        name: impl Fn(&T) -> &str,
        validate_only: bool,
        records: &mut Vec<MetadataRecord>,
        mut one: impl FnMut(&mut Self, &T, &mut Vec<MetadataRecord>) -> Result<R, ApiError>,
    ) -> Vec<Result<R, ApiError>> {
        let before = validate_only.then(|| self.image.clone());
        let duplicates = duplicate_names(topics.iter().map(&name));
        let results = topics
            .iter()
            .map(|topic| {
                if duplicates.contains(name(topic)) {
                    Err(duplicate_name_error())
                } else {
                    one(self, topic, records)
                }
            })
            .collect();
        if let Some(before) = before {
            self.image = before;
            records.clear();
        }
        results
    }

    /// `createTopic`: validate, place, then `TopicRecord`, the `ConfigRecord`s, the
    /// `PartitionRecord`s.
    fn create_topic(
        &mut self,
        topic: &NewTopic,
        records: &mut Vec<MetadataRecord>,
    ) -> Result<CreatableTopicResult, ApiError> {
        validate_topic_name(&topic.name)
            .map_err(|message| ApiError::new(error_code::INVALID_TOPIC_EXCEPTION, message))?;
        if self.image.topics_by_name.contains_key(&topic.name) {
            return Err(ApiError::new(
                error_code::TOPIC_ALREADY_EXISTS,
                format!("Topic '{}' already exists.", topic.name),
            ));
        }
        let unified = unify_collision_chars(&topic.name);
        if let Some(existing) = self
            .image
            .topics_by_name
            .keys()
            .find(|existing| unify_collision_chars(existing) == unified)
        {
            return Err(ApiError::new(
                error_code::INVALID_TOPIC_EXCEPTION,
                format!(
                    "Topic '{}' collides with existing topic: {existing}",
                    topic.name
                ),
            ));
        }
        let partitions = match &topic.assignment {
            Some(assignment) if !assignment.is_empty() => {
                self.manual_topic_assignment(topic, assignment)?
            }
            _ => self.placed_topic_assignment(topic)?,
        };
        let topic_id = self.new_topic_id();
        let replication_factor = partitions.values().next().map_or(0, |(r, _)| r.len()) as i16;
        let result = CreatableTopicResult {
            name: topic.name.clone(),
            error_code: error_code::NONE,
            error_message: None,
            topic_id,
            num_partitions: partitions.len() as i32,
            replication_factor,
        };
        let name = topic.name.clone();
        self.append(
            records,
            MetadataRecord::Topic(TopicRecord { name, topic_id }),
        );
        // "ConfigRecords go after TopicRecord but before PartitionRecord(s)."
        for (key, value) in &topic.configs {
            let config = ConfigRecord {
                resource_type: CONFIG_RESOURCE_TOPIC,
                resource_name: topic.name.clone(),
                name: key.clone(),
                value: Some(value.clone()),
            };
            self.append(records, MetadataRecord::Config(config));
        }
        self.append_new_partitions(topic_id, partitions, records);
        Ok(result)
    }

    /// A manual assignment: both counts -1, ids 0.. without gaps, each partition's replicas
    /// valid and as many as the others', at least one of them active.
    fn manual_topic_assignment(
        &self,
        topic: &NewTopic,
        assignment: &BTreeMap<i32, Vec<i32>>,
    ) -> Result<NewPartitions, ApiError> {
        if topic.replication_factor != -1 {
            return Err(ApiError::new(
                error_code::INVALID_REQUEST,
                "A manual partition assignment was specified, but replication factor was not \
                 set to -1.",
            ));
        }
        if topic.num_partitions != -1 {
            return Err(ApiError::new(
                error_code::INVALID_REQUEST,
                "A manual partition assignment was specified, but numPartitions was not set \
                 to -1.",
            ));
        }
        let mut replication_factor = None;
        let mut partitions = BTreeMap::new();
        for (&partition_id, replicas) in assignment {
            let partition = self.manual_partition(partition_id, replicas, replication_factor)?;
            replication_factor = Some(replicas.len());
            partitions.insert(partition_id, partition);
        }
        if !partitions.keys().copied().eq(0..partitions.len() as i32) {
            return Err(ApiError::new(
                error_code::INVALID_REPLICA_ASSIGNMENT,
                "partitions should be a consecutive 0-based integer sequence",
            ));
        }
        Ok(partitions)
    }

    /// Counts from the request or the defaults, replicas from placement.
    fn placed_topic_assignment(&mut self, topic: &NewTopic) -> Result<NewPartitions, ApiError> {
        if topic.replication_factor < -1 || topic.replication_factor == 0 {
            return Err(ApiError::new(
                error_code::INVALID_REPLICATION_FACTOR,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ));
        }
        if topic.num_partitions < -1 || topic.num_partitions == 0 {
            return Err(ApiError::new(
                error_code::INVALID_PARTITIONS,
                "Number of partitions was set to an invalid non-positive value.",
            ));
        }
        let num_partitions = match topic.num_partitions {
            -1 => self.config.num_partitions,
            n => n,
        };
        let replication_factor = match topic.replication_factor {
            -1 => self.config.default_replication_factor,
            rf => rf,
        };
        self.place(0, num_partitions, replication_factor)
    }

    /// Placement over the usable brokers of partitions `start..start + count`; the ISR of each
    /// is its active replicas (all of them: placement picks only active brokers).
    fn place(
        &mut self,
        start_partition_id: i32,
        count: i32,
        replication_factor: i16,
    ) -> Result<NewPartitions, ApiError> {
        let usable = self.image.usable_brokers();
        let placed = assign_replicas_to_brokers_from(
            &usable,
            count,
            i32::from(replication_factor),
            None,
            start_partition_id,
            &mut self.rng,
        )
        .map_err(|e| {
            ApiError::new(
                e.error_code(),
                format!("Unable to replicate the partition {replication_factor} time(s): {e}"),
            )
        })?;
        Ok(placed
            .into_iter()
            .map(|(id, replicas)| {
                let isr = self.active_replicas(&replicas);
                debug_assert_eq!(isr, replicas, "placement picks active brokers only");
                (id, (replicas, isr))
            })
            .collect())
    }

    /// `validateManualPartitionAssignment`: not empty, registered brokers only, none twice, and
    /// `replication_factor` replicas when given.
    pub(super) fn validate_manual_assignment(
        &self,
        replicas: &[i32],
        replication_factor: Option<usize>,
    ) -> Result<(), ApiError> {
        let invalid =
            |message: String| ApiError::new(error_code::INVALID_REPLICA_ASSIGNMENT, message);
        if replicas.is_empty() {
            return Err(invalid(
                "The manual partition assignment includes an empty replica list.".to_owned(),
            ));
        }
        let mut seen = BTreeSet::new();
        for &broker in replicas {
            if !self.image.brokers.contains_key(&broker) {
                return Err(invalid(format!(
                    "The manual partition assignment includes broker {broker}, but no such \
                     broker is registered."
                )));
            }
            if !seen.insert(broker) {
                return Err(invalid(format!(
                    "The manual partition assignment includes the broker {broker} more than once."
                )));
            }
        }
        match replication_factor {
            Some(rf) if rf != replicas.len() => Err(invalid(format!(
                "The manual partition assignment includes a partition with {} replica(s), but \
                 this is not consistent with previous partitions, which have {rf} replica(s).",
                replicas.len()
            ))),
            _ => Ok(()),
        }
    }

    /// The replicas that may be in a new ISR, in replica order.
    fn active_replicas(&self, replicas: &[i32]) -> Vec<i32> {
        replicas
            .iter()
            .copied()
            .filter(|&r| is_acceptable_leader(&self.image, r))
            .collect()
    }

    /// `Uuid.randomUuid()` from the controller's stream, never a live topic's id.
    fn new_topic_id(&mut self) -> Uuid {
        loop {
            let id = Uuid::random(&mut self.rng);
            if !self.image.topics.contains_key(&id) {
                return id;
            }
        }
    }

    /// `deleteTopics` by name: a `RemoveTopicRecord` for each known topic.
    pub(super) fn delete_topics(
        &mut self,
        names: &[String],
        records: &mut Vec<MetadataRecord>,
    ) -> ControllerResponse {
        let duplicates = duplicate_names(names.iter().map(String::as_str));
        let mut results = Vec::with_capacity(names.len());
        for name in names {
            let found = self.image.topics_by_name.get(name).copied();
            let (topic_id, code) = match found {
                _ if duplicates.contains(name.as_str()) => {
                    (Uuid::ZERO, error_code::INVALID_REQUEST)
                }
                None => (Uuid::ZERO, error_code::UNKNOWN_TOPIC_OR_PARTITION),
                Some(topic_id) => {
                    let record = RemoveTopicRecord { topic_id };
                    self.append(records, MetadataRecord::RemoveTopic(record));
                    (topic_id, error_code::NONE)
                }
            };
            results.push(DeletableTopicResult {
                name: name.clone(),
                topic_id,
                error_code: code,
            });
        }
        ControllerResponse::DeleteTopics { topics: results }
    }

    /// `createPartitions`; `validate_only` writes nothing.
    pub(super) fn create_partitions(
        &mut self,
        topics: &[CreatePartitionsTopic],
        validate_only: bool,
        records: &mut Vec<MetadataRecord>,
    ) -> ControllerResponse {
        let created = self.each_topic(
            topics,
            |t| t.name.as_str(),
            validate_only,
            records,
            Self::create_partitions_of,
        );
        let results = created
            .into_iter()
            .zip(topics)
            .map(|(created, topic)| {
                let error = created.err().unwrap_or(ApiError::code(error_code::NONE));
                CreatePartitionsTopicResult {
                    name: topic.name.clone(),
                    error_code: error.code,
                    error_message: error.message,
                }
            })
            .collect();
        ControllerResponse::CreatePartitions { topics: results }
    }

    /// One topic of `createPartitions`: the new partitions take ids from the current count on,
    /// with the topic's replication factor (that of its first partition).
    fn create_partitions_of(
        &mut self,
        request: &CreatePartitionsTopic,
        records: &mut Vec<MetadataRecord>,
    ) -> Result<(), ApiError> {
        let topic = self
            .image
            .topic_by_name(&request.name)
            .ok_or(ApiError::code(error_code::UNKNOWN_TOPIC_OR_PARTITION))?;
        let topic_id = topic.id;
        let current = topic.partitions.len() as i32;
        if request.count == current {
            return Err(ApiError::new(
                error_code::INVALID_PARTITIONS,
                format!("Topic already has {current} partition(s)."),
            ));
        }
        if request.count < current {
            return Err(ApiError::new(
                error_code::INVALID_PARTITIONS,
                format!(
                    "The topic {} currently has {current} partition(s); {} would not be an \
                     increase.",
                    request.name, request.count
                ),
            ));
        }
        let additional = request.count - current;
        let replication_factor = topic
            .partitions
            .values()
            .next()
            .map_or(0, |p| p.replicas.len());
        let partitions = match &request.assignment {
            Some(assignment) => {
                self.manual_new_partitions(assignment, additional, current, replication_factor)?
            }
            None => self.place(current, additional, replication_factor as i16)?,
        };
        self.append_new_partitions(topic_id, partitions, records);
        Ok(())
    }

    fn manual_new_partitions(
        &self,
        assignment: &[Vec<i32>],
        additional: i32,
        start_partition_id: i32,
        replication_factor: usize,
    ) -> Result<NewPartitions, ApiError> {
        if assignment.len() != additional as usize {
            return Err(ApiError::new(
                error_code::INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "Attempted to add {additional} additional partition(s), but only {} \
                     assignment(s) were specified.",
                    assignment.len()
                ),
            ));
        }
        let mut partitions = BTreeMap::new();
        for (partition_id, replicas) in (start_partition_id..).zip(assignment) {
            let partition =
                self.manual_partition(partition_id, replicas, Some(replication_factor))?;
            partitions.insert(partition_id, partition);
        }
        Ok(partitions)
    }

    /// One partition of a manual assignment: its replicas valid (and `replication_factor` of
    /// them when given), its ISR their active ones, which must not be none.
    fn manual_partition(
        &self,
        partition_id: i32,
        replicas: &[i32],
        replication_factor: Option<usize>,
    ) -> Result<(Vec<i32>, Vec<i32>), ApiError> {
        self.validate_manual_assignment(replicas, replication_factor)?;
        let isr = self.active_replicas(replicas);
        if isr.is_empty() {
            return Err(ApiError::new(
                error_code::INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "All brokers specified in the manual partition assignment for partition \
                     {partition_id} are fenced or in controlled shutdown."
                ),
            ));
        }
        Ok((replicas.to_vec(), isr))
    }

    /// A `PartitionRecord` for each new partition, in partition order.
    fn append_new_partitions(
        &mut self,
        topic_id: Uuid,
        partitions: NewPartitions,
        records: &mut Vec<MetadataRecord>,
    ) {
        for (partition_id, (replicas, isr)) in partitions {
            let record = new_partition_record(topic_id, partition_id, replicas, isr);
            self.append(records, record);
        }
    }
}

/// `buildPartitionRegistration(...).toRecord`: leader the first ISR member, epochs 0, each
/// replica's directory unassigned.
fn new_partition_record(
    topic_id: Uuid,
    partition_id: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id,
        topic_id,
        directories: vec![DIRECTORY_UNASSIGNED; replicas.len()],
        replicas,
        leader: isr[0],
        isr,
        removing_replicas: Vec::new(),
        adding_replicas: Vec::new(),
        leader_recovery_state: 0,
        leader_epoch: 0,
        partition_epoch: 0,
        eligible_leader_replicas: None,
        last_known_elr: None,
    })
}
