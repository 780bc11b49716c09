//! KRaft snapshots of the metadata log (KIP-630): files, format and the configs that drive them.
//!
//! - A snapshot holds the state of the log below its end offset, named after its id
//!   (`Snapshots.filenameFromSnapshotId`): `<end offset, 20 digits>-<epoch, 10 digits>.checkpoint`
//!   in the metadata log's directory.
//! - Its content is record batches, as Kafka's `RecordsSnapshotWriter` writes them: a control
//!   batch holding a `SnapshotHeaderRecord` (control type 3) first, the state machine's records in
//!   data batches, a control batch holding a `SnapshotFooterRecord` (type 4) last; offsets count
//!   from 0 within the file and every batch carries the snapshot's epoch as its partition leader
//!   epoch. A file without its footer is not a snapshot.
//! - It is written to `<name>.checkpoint.part`, fsynced, then renamed (Kafka's
//!   `FileRawSnapshotWriter.freeze`), so a crash leaves either the whole snapshot or a partial
//!   file, which recovery deletes (`KafkaMetadataLog.recoverSnapshots`).

use std::io;

use bytes::{BufMut, Bytes, BytesMut};

use super::messages::{Epoch, SnapshotId};
use crate::storage::batch::{self, BatchSpec, Record};
use crate::world::Disk;

/// `Snapshots.SUFFIX`.
pub const SUFFIX: &str = ".checkpoint";
/// `Snapshots.PARTIAL_SUFFIX`.
pub const PARTIAL_SUFFIX: &str = ".checkpoint.part";
/// `ControlRecordType.SNAPSHOT_HEADER`.
pub const SNAPSHOT_HEADER: i16 = 3;
/// `ControlRecordType.SNAPSHOT_FOOTER`.
pub const SNAPSHOT_FOOTER: i16 = 4;
/// Records per data batch (Kafka fills batches up to `metadata.max.batch.size`; Samsa's metadata
/// records are small, so a count bounds the batch instead).
const RECORDS_PER_BATCH: usize = 256;

/// The metadata log's configs (Kafka's `MetadataLogConfig`), with Kafka's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataLogConfig {
    /// `metadata.log.max.record.bytes.between.snapshots` (20 MiB): a controller snapshots its
    /// image once this many bytes of committed batches were applied since its last snapshot.
    pub max_bytes_between_snapshots: u64,
    /// `metadata.log.max.snapshot.interval.ms` (1 hour; 0 turns it off): or once its last
    /// snapshot is this old and something was committed since.
    pub max_snapshot_interval_ms: u64,
    /// `metadata.max.retention.bytes` (100 MiB; -1 unlimited): while the log is larger, the oldest
    /// snapshot and the log below the next one are deleted (never the latest snapshot).
    pub max_retention_bytes: i64,
    /// `metadata.max.retention.ms` (7 days; -1 unlimited): likewise for a snapshot whose last
    /// record is older.
    pub max_retention_ms: i64,
    /// `metadata.log.segment.bytes` (1 GiB; `internal.metadata.log.segment.bytes` overrides it
    /// below Kafka's 8 MiB floor, for tests).
    pub segment_bytes: u64,
}

impl Default for MetadataLogConfig {
    fn default() -> Self {
        MetadataLogConfig {
            max_bytes_between_snapshots: 20 * 1024 * 1024,
            max_snapshot_interval_ms: 3_600_000,
            max_retention_bytes: 100 * 1024 * 1024,
            max_retention_ms: 604_800_000,
            segment_bytes: 1 << 30,
        }
    }
}

/// `Snapshots.filenameFromSnapshotId` plus the suffix.
pub fn file_name(id: SnapshotId) -> String {
    format!("{:020}-{:010}{SUFFIX}", id.end_offset, id.epoch)
}

pub fn path(dir: &str, id: SnapshotId) -> String {
    format!("{dir}/{}", file_name(id))
}

fn partial_path(dir: &str, id: SnapshotId) -> String {
    format!(
        "{dir}/{:020}-{:010}{PARTIAL_SUFFIX}",
        id.end_offset, id.epoch
    )
}

/// The id a snapshot file's name gives, and whether it is a partial (`.part`) file; `None` for
/// any other file (`Snapshots.parse`).
pub fn parse_file_name(name: &str) -> Option<(SnapshotId, bool)> {
    let (stem, partial) = match name.strip_suffix(PARTIAL_SUFFIX) {
        Some(stem) => (stem, true),
        None => (name.strip_suffix(SUFFIX)?, false),
    };
    let (offset, epoch) = stem.split_once('-')?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(offset, 20) || !digits(epoch, 10) {
        return None;
    }
    let id = SnapshotId {
        end_offset: offset.parse().ok()?,
        epoch: epoch.parse().ok()?,
    };
    Some((id, partial))
}

fn control_record(kind: i16, value: Bytes) -> Record {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(0); // ControlRecordType key version
    key.put_i16(kind);
    Record {
        offset_delta: 0,
        timestamp_delta: 0,
        key: Some(key.freeze()),
        value: Some(value),
        headers: Vec::new(),
    }
}

fn control_batch(base_offset: i64, epoch: Epoch, timestamp_ms: i64, record: Record) -> Bytes {
    let spec = BatchSpec {
        base_offset,
        partition_leader_epoch: epoch,
        base_timestamp: timestamp_ms,
        control: true,
        ..BatchSpec::default()
    };
    batch::encode_batch(&spec, &[record])
}

/// A snapshot's bytes: header, `records` (each a metadata record's value), footer.
/// `last_contained_ms` is the append time of the log's entry below the end offset
/// (`SnapshotHeaderRecord.LastContainedLogTimestamp`), which retention by time reads.
pub fn encode(id: SnapshotId, last_contained_ms: i64, records: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    // SnapshotHeaderRecord v0: Version int16, LastContainedLogTimestamp int64, no tagged fields.
    let mut header = BytesMut::new();
    header.put_i16(0);
    header.put_i64(last_contained_ms);
    header.put_u8(0);
    let header = control_record(SNAPSHOT_HEADER, header.freeze());
    out.extend_from_slice(&control_batch(0, id.epoch, last_contained_ms, header));
    let mut offset = 1i64;
    for chunk in records.chunks(RECORDS_PER_BATCH) {
        let spec = BatchSpec {
            base_offset: offset,
            partition_leader_epoch: id.epoch,
            base_timestamp: last_contained_ms,
            ..BatchSpec::default()
        };
        let batch: Vec<Record> = (0..)
            .zip(chunk)
            .map(|(delta, value)| Record {
                offset_delta: delta,
                timestamp_delta: 0,
                key: None,
                value: Some(value.clone()),
                headers: Vec::new(),
            })
            .collect();
        out.extend_from_slice(&batch::encode_batch(&spec, &batch));
        offset += chunk.len() as i64;
    }
    // SnapshotFooterRecord v0: Version int16, no tagged fields.
    let footer = control_record(SNAPSHOT_FOOTER, Bytes::from_static(&[0, 0, 0]));
    out.extend_from_slice(&control_batch(offset, id.epoch, last_contained_ms, footer));
    out.freeze()
}

/// What a snapshot file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub last_contained_ms: i64,
    pub records: Vec<Bytes>,
}

/// Reads a snapshot's bytes, refusing anything but a whole one: a corrupt batch, a first batch
/// that is not the header, a missing footer or bytes after it.
pub fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    let mut rest = bytes;
    let mut records = Vec::new();
    let mut last_contained_ms = None;
    let mut footer = false;
    while !rest.is_empty() {
        if footer {
            return Err("bytes after the snapshot footer".into());
        }
        let header = batch::validate(rest).map_err(|e| format!("corrupt batch: {e}"))?;
        let size = header.size_in_bytes();
        let (_, decoded) =
            batch::decode_records(&rest[..size]).map_err(|e| format!("corrupt batch: {e}"))?;
        rest = &rest[size..];
        if header.is_control() {
            for record in decoded {
                let key = record.key.unwrap_or_default();
                let kind = (key.len() >= 4).then(|| i16::from_be_bytes([key[2], key[3]]));
                match kind {
                    Some(SNAPSHOT_HEADER) if last_contained_ms.is_none() => {
                        let value = record.value.unwrap_or_default();
                        if value.len() < 10 {
                            return Err("a short SnapshotHeaderRecord".into());
                        }
                        let ms = i64::from_be_bytes(value[2..10].try_into().expect("8 bytes"));
                        last_contained_ms = Some(ms);
                    }
                    Some(SNAPSHOT_FOOTER) if last_contained_ms.is_some() => footer = true,
                    other => return Err(format!("unexpected control record {other:?}")),
                }
            }
            continue;
        }
        if last_contained_ms.is_none() {
            return Err("the first batch is not a SnapshotHeaderRecord".into());
        }
        records.extend(decoded.into_iter().map(|r| r.value.unwrap_or_default()));
    }
    match (last_contained_ms, footer) {
        (Some(last_contained_ms), true) => Ok(Decoded {
            last_contained_ms,
            records,
        }),
        (None, _) => Err("no SnapshotHeaderRecord".into()),
        (Some(_), false) => Err("no SnapshotFooterRecord: the snapshot is incomplete".into()),
    }
}

// ---- on the disk ----------------------------------------------------------------------------

/// Writes a whole snapshot durably: to its `.part` file, fsynced, then renamed.
pub async fn write(disk: &Disk, dir: &str, id: SnapshotId, bytes: &[u8]) -> io::Result<()> {
    write_chunk(disk, dir, id, 0, bytes).await?;
    freeze(disk, dir, id).await
}

/// Writes fetched bytes at `position` of the snapshot's `.part` file; position 0 starts it over.
pub async fn write_chunk(
    disk: &Disk,
    dir: &str,
    id: SnapshotId,
    position: u64,
    bytes: &[u8],
) -> io::Result<()> {
    let part = partial_path(dir, id);
    if position == 0 {
        if disk.exists(&part) {
            disk.remove(&part).await?;
        }
        disk.create(&part).await?;
    }
    disk.write_at(&part, position, bytes).await
}

/// Makes the `.part` file the snapshot: fsync, then an atomic rename.
pub async fn freeze(disk: &Disk, dir: &str, id: SnapshotId) -> io::Result<()> {
    let part = partial_path(dir, id);
    disk.fsync(&part).await?;
    disk.rename(&part, &path(dir, id)).await
}

/// The snapshots in `dir`, oldest first, after deleting every partial file a crash left.
pub async fn recover(disk: &Disk, dir: &str) -> io::Result<Vec<SnapshotId>> {
    let mut ids = Vec::new();
    for file in disk.list(&format!("{dir}/")) {
        let name = file.rsplit('/').next().unwrap_or(&file);
        match parse_file_name(name) {
            Some((_, true)) => disk.remove(&file).await?,
            Some((id, false)) => ids.push(id),
            None => {}
        }
    }
    ids.sort();
    Ok(ids)
}

pub async fn read(disk: &Disk, dir: &str, id: SnapshotId) -> io::Result<Vec<u8>> {
    disk.read_all(&path(dir, id)).await
}

/// Up to `max_bytes` of the snapshot from `position`, and its size.
pub async fn read_chunk(
    disk: &Disk,
    dir: &str,
    id: SnapshotId,
    position: u64,
    max_bytes: usize,
) -> io::Result<(u64, Vec<u8>)> {
    let path = path(dir, id);
    let size = disk.len(&path)?;
    let bytes = disk.read_at(&path, position.min(size), max_bytes).await?;
    Ok((size, bytes))
}

pub async fn delete(disk: &Disk, dir: &str, id: SnapshotId) -> io::Result<()> {
    let path = path(dir, id);
    if disk.exists(&path) {
        disk.remove(&path).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(end_offset: i64, epoch: Epoch) -> SnapshotId {
        SnapshotId { end_offset, epoch }
    }

    #[test]
    fn names_as_kafkas_snapshots() {
        assert_eq!(
            file_name(id(1234, 7)),
            "00000000000000001234-0000000007.checkpoint"
        );
        assert_eq!(
            parse_file_name("00000000000000001234-0000000007.checkpoint"),
            Some((id(1234, 7), false))
        );
        assert_eq!(
            parse_file_name("00000000000000001234-0000000007.checkpoint.part"),
            Some((id(1234, 7), true))
        );
        assert_eq!(parse_file_name("00000000000000000000.log"), None);
        assert_eq!(parse_file_name("1234-7.checkpoint"), None);
        assert_eq!(parse_file_name("leader-epoch-checkpoint"), None);
    }

    #[test]
    fn header_records_footer_round_trip() {
        let records: Vec<Bytes> = (0..600)
            .map(|i| Bytes::from(format!("record-{i}")))
            .collect();
        let bytes = encode(id(900, 3), 12_345, &records);
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.last_contained_ms, 12_345);
        assert_eq!(decoded.records, records);
        let batches: Vec<_> = batch::batches(&bytes).map(|(_, h)| h).collect();
        assert_eq!(batches.len(), 5, "header, three data batches, footer");
        assert!(batches[0].is_control() && batches[4].is_control());
        assert!(batches.iter().all(|h| h.partition_leader_epoch == 3));
        assert_eq!(batches[4].base_offset, 601);
    }

    #[test]
    fn an_empty_image_is_a_header_and_a_footer() {
        let bytes = encode(id(1, 1), 0, &[]);
        assert_eq!(decode(&bytes).unwrap().records, Vec::<Bytes>::new());
    }

    #[test]
    fn a_torn_or_footerless_snapshot_is_refused() {
        let bytes = encode(id(10, 1), 0, &[Bytes::from_static(b"x")]);
        let footer = batch::batches(&bytes).last().unwrap().1.size_in_bytes();
        let footerless = &bytes[..bytes.len() - footer];
        assert!(decode(footerless).unwrap_err().contains("incomplete"));
        assert!(decode(&bytes[..bytes.len() - 3]).is_err());
        let mut flipped = bytes.to_vec();
        flipped[bytes.len() - footer - 2] ^= 1;
        assert!(decode(&flipped).is_err());
    }

    #[test]
    fn a_snapshot_is_renamed_whole_and_a_partial_one_is_deleted_at_recovery() {
        use crate::storage::tests::{disk, run};
        let (mem, disk) = disk();
        run(async {
            let dir = "__cluster_metadata-0";
            let bytes = encode(id(12, 1), 5, &[Bytes::from_static(b"r")]);
            write(&disk, dir, id(12, 1), &bytes).await.unwrap();
            assert_eq!(
                mem.fsyncs(&format!("{dir}/{:020}-{:010}{PARTIAL_SUFFIX}", 12, 1)),
                1
            );
            // A fetch cut short by a crash: half a snapshot in its .part file.
            write_chunk(&disk, dir, id(30, 2), 0, &bytes[..20])
                .await
                .unwrap();
            assert_eq!(
                mem.names(),
                vec![
                    "__cluster_metadata-0/00000000000000000012-0000000001.checkpoint".to_string(),
                    "__cluster_metadata-0/00000000000000000030-0000000002.checkpoint.part"
                        .to_string(),
                ]
            );
            assert_eq!(recover(&disk, dir).await.unwrap(), vec![id(12, 1)]);
            assert_eq!(mem.names().len(), 1, "the partial file is gone");
            let (size, chunk) = read_chunk(&disk, dir, id(12, 1), 10, 16).await.unwrap();
            assert_eq!(
                (size, chunk.as_slice()),
                (bytes.len() as u64, &bytes[10..26])
            );
            let read = read(&disk, dir, id(12, 1)).await.unwrap();
            assert_eq!(
                decode(&read).unwrap().records,
                vec![Bytes::from_static(b"r")]
            );
        });
    }
}
