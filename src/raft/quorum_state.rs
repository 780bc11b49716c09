//! KRaft's `quorum-state` file, in the metadata log's directory (`__cluster_metadata-0/`): the
//! election state a voter must not forget across a restart (its epoch, its vote, the leader it
//! knows), so it never votes twice in one epoch (Raft §5.2).
//!
//! The format is Kafka's `FileQuorumStateStore`: one line of JSON, the fields of
//! `QuorumStateData` plus `data_version`. Version 0 (static voters, `controller.quorum.voters`,
//! before KIP-853) is written:
//!
//! ```text
//! {"clusterId":"","leaderId":1,"leaderEpoch":2,"votedId":-1,"appliedOffset":0,"currentVoters":[{"voterId":1},{"voterId":2},{"voterId":3}],"data_version":0}
//! ```
//!
//! Versions 0 and 1 are read (version 1 drops `clusterId` and `currentVoters` and adds
//! `votedDirectoryId`, which is ignored). `-1` means none for `leaderId` and `votedId`.
//!
//! Writes are atomic as Kafka's `writeElectionStateToFile`: the line goes to `quorum-state.tmp`,
//! which is fsynced and renamed over the file, so a crash leaves the old state or the new one.

use std::collections::BTreeSet;
use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};

use super::core::QuorumStateRecord;
use super::messages::NodeId;
use crate::storage::checkpoint;
use crate::world::Disk;

/// `FileQuorumStateStore.DEFAULT_FILE_NAME`.
pub const QUORUM_STATE_FILE: &str = "quorum-state";
/// The version written: static voters (`kraft.version` 0).
pub const DATA_VERSION: i16 = 0;
const HIGHEST_SUPPORTED_VERSION: i16 = 1;
/// Kafka's sentinel for "no leader" and "no vote".
const NONE: i32 = -1;

/// What the file holds: the election state and, in version 0, the voters it was written with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumStateFile {
    pub state: QuorumStateRecord,
    pub voters: Option<BTreeSet<NodeId>>,
}

/// A `quorum-state` file Kafka would refuse to read (it throws, and the controller does not
/// start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumStateError(pub String);

impl fmt::Display for QuorumStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unreadable quorum-state: {}", self.0)
    }
}

impl std::error::Error for QuorumStateError {}

impl From<QuorumStateError> for io::Error {
    fn from(e: QuorumStateError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

#[derive(Serialize, Deserialize)]
struct Voter {
    #[serde(rename = "voterId")]
    voter_id: i32,
}

fn none() -> i32 {
    NONE
}

/// `QuorumStateData` as `QuorumStateDataJsonConverter` writes it, field order included.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QuorumStateData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cluster_id: Option<String>,
    #[serde(default = "none")]
    leader_id: i32,
    #[serde(default = "none")]
    leader_epoch: i32,
    #[serde(default = "none")]
    voted_id: i32,
    #[serde(default)]
    applied_offset: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current_voters: Option<Vec<Voter>>,
    #[serde(rename = "data_version")]
    data_version: Option<i16>,
}

/// The file's line for `state`, written with the configured `voters`.
pub fn encode(state: &QuorumStateRecord, voters: &BTreeSet<NodeId>) -> String {
    let data = QuorumStateData {
        cluster_id: Some(String::new()),
        leader_id: state.leader.unwrap_or(NONE),
        leader_epoch: state.epoch,
        voted_id: state.voted_for.unwrap_or(NONE),
        applied_offset: 0,
        current_voters: Some(voters.iter().map(|&voter_id| Voter { voter_id }).collect()),
        data_version: Some(DATA_VERSION),
    };
    serde_json::to_string(&data).expect("QuorumStateData serializes")
}

/// Parses the file's first line, as `FileQuorumStateStore.readStateFromFile` does.
pub fn decode(text: &str) -> Result<QuorumStateFile, QuorumStateError> {
    let line = text
        .lines()
        .next()
        .ok_or_else(|| QuorumStateError("file ended prematurely".into()))?;
    let data: QuorumStateData =
        serde_json::from_str(line).map_err(|e| QuorumStateError(format!("{line:?}: {e}")))?;
    let version = data
        .data_version
        .ok_or_else(|| QuorumStateError(format!("{line:?} does not have data_version field")))?;
    if !(0..=HIGHEST_SUPPORTED_VERSION).contains(&version) {
        return Err(QuorumStateError(format!(
            "data_version ({version}) is not within the min (0) and max \
             ({HIGHEST_SUPPORTED_VERSION}) supported version"
        )));
    }
    let id = |raw: i32| (raw >= 0).then_some(raw);
    Ok(QuorumStateFile {
        state: QuorumStateRecord {
            epoch: data.leader_epoch.max(0),
            voted_for: id(data.voted_id),
            leader: id(data.leader_id),
        },
        voters: data
            .current_voters
            .map(|voters| voters.into_iter().map(|v| v.voter_id).collect()),
    })
}

/// The state in `dir`'s `quorum-state`, `None` if there is none (a new voter).
pub async fn read(disk: &Disk, dir: &str) -> io::Result<Option<QuorumStateFile>> {
    let path = format!("{dir}/{QUORUM_STATE_FILE}");
    match checkpoint::read(disk, &path).await? {
        None => Ok(None),
        Some(text) => Ok(Some(decode(&text).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {e}"))
        })?)),
    }
}

/// Replaces `dir`'s `quorum-state` atomically and durably.
pub async fn write(
    disk: &Disk,
    dir: &str,
    state: &QuorumStateRecord,
    voters: &BTreeSet<NodeId>,
) -> io::Result<()> {
    let path = format!("{dir}/{QUORUM_STATE_FILE}");
    let tmp = format!("{path}.tmp");
    checkpoint::write_atomically(disk, &path, &tmp, &encode(state, voters)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters() -> BTreeSet<NodeId> {
        BTreeSet::from([1, 2, 3])
    }

    #[test]
    fn writes_kafkas_version_0_line() {
        let state = QuorumStateRecord {
            epoch: 2,
            voted_for: None,
            leader: Some(1),
        };
        assert_eq!(
            encode(&state, &voters()),
            r#"{"clusterId":"","leaderId":1,"leaderEpoch":2,"votedId":-1,"appliedOffset":0,"currentVoters":[{"voterId":1},{"voterId":2},{"voterId":3}],"data_version":0}"#
        );
    }

    #[test]
    fn every_state_survives_the_file() {
        for state in [
            QuorumStateRecord::default(),
            QuorumStateRecord {
                epoch: 7,
                voted_for: Some(3),
                leader: None,
            },
            QuorumStateRecord {
                epoch: 9,
                voted_for: Some(2),
                leader: Some(2),
            },
        ] {
            let file = decode(&encode(&state, &voters())).unwrap();
            assert_eq!(file.state, state);
            assert_eq!(file.voters, Some(voters()));
        }
    }

    #[test]
    fn reads_kafkas_version_1_line() {
        let line = r#"{"leaderId":-1,"leaderEpoch":2,"votedId":1,"votedDirectoryId":"J8aAPcfLQt2bqs1JT_rMgQ","data_version":1}"#;
        let file = decode(line).unwrap();
        assert_eq!(
            file.state,
            QuorumStateRecord {
                epoch: 2,
                voted_for: Some(1),
                leader: None
            }
        );
        assert_eq!(file.voters, None);
    }

    #[test]
    fn refuses_what_kafka_refuses() {
        assert!(decode("").is_err(), "empty");
        assert!(decode("[1,2]").is_err(), "not an object");
        assert!(
            decode(r#"{"leaderId":1,"leaderEpoch":2}"#).is_err(),
            "no data_version"
        );
        assert!(
            decode(r#"{"leaderId":1,"leaderEpoch":2,"data_version":2}"#).is_err(),
            "a version from the future"
        );
        assert!(decode(r#"{"leaderId":1,"leaderEp"#).is_err(), "torn");
    }
}
