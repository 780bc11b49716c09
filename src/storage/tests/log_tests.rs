//! `Log`: appends, reads, rolling, truncation, log start offset, flushing, leader epochs.

use crate::storage::batch::{
    self, encode_batch, BatchError, BatchSpec, Compression, Record, TimestampType, BATCH_HEADER_LEN,
};
use crate::storage::compression::BrokerCompression;
use crate::storage::log::{partition_dir, Log, LogConfig, LogError};
use crate::storage::segment::RollReason;
use crate::storage::tests::*;

#[test]
fn a_new_log_is_one_empty_segment_named_by_kafka() {
    run(async {
        assert_eq!(partition_dir("orders", 0), DIR);
        let (mem, disk) = disk();
        let (log, report) = open(&disk, u64::MAX).await;
        assert_eq!(mem.names(), vec![INDEX, SEGMENT, TIME_INDEX, EPOCHS]);
        assert_eq!(mem.text(EPOCHS), "0\n0\n");
        assert_eq!(report.truncated_bytes, 0);
        assert_eq!((report.log_end_offset, report.batches), (0, 0));
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
        let segments = log.segments();
        assert_eq!(segments.len(), 1);
        assert!(segments[0].is_active);
    })
}

#[test]
fn append_assigns_offsets_and_the_file_is_the_batches() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        let mut first = producer_batch("a", 3);
        batch::set_base_offset(&mut first, 999); // whatever the producer sent
        let info = log.append(&mut first, 5, 0).await.unwrap();
        assert_eq!(
            (info.first_offset, info.last_offset, info.log_end_offset),
            (0, 2, 3)
        );
        assert_eq!((info.log_append_time_ms, info.rolled), (-1, None));
        let mut second = producer_batch("b", 2);
        let info = log.append(&mut second, 6, 0).await.unwrap();
        assert_eq!(
            (info.first_offset, info.last_offset, info.log_end_offset),
            (3, 4, 5)
        );

        // Kafka's format exactly: the segment is the rewritten batches, back to back.
        assert_eq!(mem.bytes(SEGMENT), [first.clone(), second.clone()].concat());
        let header = batch::validate(&second).unwrap();
        assert_eq!((header.base_offset, header.partition_leader_epoch), (3, 6));
        assert_eq!(mem.text(EPOCHS), "0\n2\n5 0\n6 3\n");

        let read = log.read(0, usize::MAX).await.unwrap();
        assert_eq!(read.records.to_vec(), [first, second].concat());
        assert_eq!((read.log_start_offset, read.log_end_offset), (0, 5));
        let all = log.read_all_records().await.unwrap();
        let expected: Vec<_> = ["a-0", "a-1", "a-2", "b-0", "b-1"]
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64, v.to_string()))
            .collect();
        assert_eq!(values(&all), expected);
    })
}

#[test]
fn read_returns_whole_batches_from_the_containing_one() {
    run(async {
        let (_, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        let written = append_n(&mut log, 3, 2).await;
        let read = log.read(3, 1).await.unwrap(); // inside batch 2-3, max_bytes too small
        assert_eq!(read.records.to_vec(), written[1]);
        let both = written[1].len() + written[2].len();
        let read = log.read(3, both).await.unwrap();
        assert_eq!(
            read.records.to_vec(),
            [written[1].clone(), written[2].clone()].concat()
        );
        let read = log.read(3, both - 1).await.unwrap();
        assert_eq!(read.records.to_vec(), written[1]);
        assert!(log.read(6, 1000).await.unwrap().records.is_empty()); // at the log end
    })
}

#[test]
fn reads_outside_the_log_are_offset_out_of_range() {
    run(async {
        let (_, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        append_n(&mut log, 3, 2).await;
        for offset in [-1, 7, i64::MAX] {
            let error = log.read(offset, 1000).await.unwrap_err();
            assert!(
                matches!(
                    error,
                    LogError::OffsetOutOfRange { offset: o, log_start_offset: 0, log_end_offset: 6 }
                        if o == offset
                ),
                "{error}"
            );
        }
    })
}

#[test]
fn invalid_batches_are_refused_and_leave_the_log_alone() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        append_n(&mut log, 3, 2).await;
        let before = mem.bytes(SEGMENT);

        let mut flipped = producer_batch("x", 2);
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let error = log.append(&mut flipped, 5, 0).await.unwrap_err();
        assert!(matches!(
            error,
            LogError::Corrupt(BatchError::CrcMismatch { .. })
        ));

        let mut two = [producer_batch("x", 1), producer_batch("y", 1)].concat();
        assert!(matches!(
            log.append(&mut two, 5, 0).await,
            Err(LogError::Corrupt(_))
        ));

        let mut torn = producer_batch("x", 2);
        torn.truncate(70);
        let error = log.append(&mut torn, 5, 0).await.unwrap_err();
        assert!(matches!(
            error,
            LogError::Corrupt(BatchError::Truncated { .. })
        ));

        // Offset deltas 0 and 2: two records claiming three offsets.
        let gappy: Vec<Record> = [0, 2]
            .into_iter()
            .map(|d| Record {
                offset_delta: d,
                timestamp_delta: 0,
                key: None,
                value: None,
                headers: vec![],
            })
            .collect();
        let mut gappy = encode_batch(&BatchSpec::default(), &gappy).to_vec();
        assert!(matches!(
            log.append(&mut gappy, 5, 0).await,
            Err(LogError::Corrupt(_))
        ));

        assert_eq!(mem.bytes(SEGMENT), before);
        assert_eq!(log.log_end_offset(), 6);
    })
}

#[test]
fn segments_roll_at_segment_bytes_and_reads_stay_in_one_segment() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open_with(&disk, small_config()).await;
        let batch_len = producer_batch("b0", 3).len();
        let per_segment = 1_000 / batch_len;
        let written = append_n(&mut log, 2 * per_segment + 1, 3).await;
        let segments = log.segments();
        assert_eq!(segments.len(), 3, "{segments:?}");
        let second = (per_segment * 3) as i64;
        assert_eq!(segments[1].base_offset, second);
        assert_eq!(segments[0].next_offset, second);
        assert_eq!(segments[0].size_bytes, (per_segment * batch_len) as u64);
        assert!(!segments[1].is_active && segments[2].is_active);
        assert!(mem
            .names()
            .contains(&format!("{DIR}/{second:020}.timeindex")));
        // A read at the end of a segment returns that segment's last batch only.
        let read = log.read(second - 1, usize::MAX).await.unwrap();
        assert_eq!(read.records.to_vec(), written[per_segment - 1]);
        let read = log.read(second, batch_len).await.unwrap();
        assert_eq!(read.records.to_vec(), written[per_segment]);
        let all = log.read_all_records().await.unwrap();
        assert_eq!(all.len(), written.len() * 3);
        assert!(all.iter().enumerate().all(|(i, r)| r.offset == i as i64));

        // Rolling made everything below the active segment durable.
        assert!(log.recovery_point() >= segments[2].base_offset);
        assert!(mem.fsyncs(SEGMENT) >= 1);
        assert_eq!(
            mem.text(RECOVERY_POINTS).lines().nth(2),
            Some(&*format!("orders 0 {}", segments[2].base_offset))
        );
    })
}

#[test]
fn a_batch_larger_than_a_segment_is_refused() {
    run(async {
        let (_, disk) = disk();
        let config = LogConfig {
            segment_bytes: 100,
            ..small_config()
        };
        let (mut log, _) = open_with(&disk, config).await;
        let mut big = producer_batch(&"x".repeat(100), 1);
        let error = log.append(&mut big, 0, 0).await.unwrap_err();
        assert!(
            matches!(
                error,
                LogError::RecordBatchTooLarge {
                    segment_bytes: 100,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(log.log_end_offset(), 0);
    })
}

#[test]
fn segments_roll_at_segment_ms_from_the_first_batchs_timestamp() {
    run(async {
        let (_, disk) = disk();
        let config = LogConfig {
            segment_ms: 10_000,
            ..LogConfig::default()
        };
        let (mut log, _) = open_with(&disk, config).await;
        // Timestamps of the batches, not the clock, decide (Kafka's timeWaitedForRoll).
        log.append(&mut batch_at("a", 1, 50_000), 0, 0)
            .await
            .unwrap();
        let info = log
            .append(&mut batch_at("b", 1, 60_000), 0, 999_999)
            .await
            .unwrap();
        assert_eq!(info.rolled, None);
        let info = log
            .append(&mut batch_at("c", 1, 60_001), 0, 0)
            .await
            .unwrap();
        assert_eq!(info.rolled, Some(RollReason::SegmentMs));
        assert_eq!(log.segments()[1].base_offset, 2);

        // Without timestamps (-1), the segment's age on the clock decides.
        let (_, disk) = self::disk();
        let (mut log, _) = open_with(&disk, config).await;
        log.append(&mut batch_at("a", 1, -1), 0, 100).await.unwrap();
        let info = log
            .append(&mut batch_at("b", 1, -1), 0, 10_000)
            .await
            .unwrap();
        assert_eq!(info.rolled, None);
        let info = log
            .append(&mut batch_at("c", 1, -1), 0, 10_001)
            .await
            .unwrap();
        assert_eq!(info.rolled, Some(RollReason::SegmentMs));
    })
}

#[test]
fn segments_roll_when_an_index_is_full() {
    run(async {
        let (mem, disk) = disk();
        let config = LogConfig {
            index_interval_bytes: 0, // an entry for every batch but the first
            segment_index_bytes: 16, // two offset index entries (one time index entry)
            ..small_config()
        };
        let (mut log, _) = open_with(&disk, config).await;
        let mut rolled = Vec::new();
        for i in 0..4 {
            let mut bytes = batch_at("x", 1, 1_000 + i);
            rolled.push(log.append(&mut bytes, 0, 0).await.unwrap().rolled);
        }
        // Batch 1 fills the time index (12 of 16 bytes), so batch 2 starts a new segment.
        assert_eq!(rolled, vec![None, None, Some(RollReason::IndexFull), None]);
        assert_eq!(mem.bytes(INDEX).len(), 8);
        // The final time index entry holds the segment's largest timestamp.
        let segment = log.segment(0).unwrap();
        assert_eq!(segment.time_index().last_entry().timestamp, 1_001);
    })
}

#[test]
fn indexes_get_an_entry_every_index_interval_bytes() {
    run(async {
        let (mem, disk) = disk();
        let config = LogConfig {
            index_interval_bytes: 150,
            ..LogConfig::default()
        };
        let (mut log, _) = open_with(&disk, config).await;
        let mut positions = Vec::new();
        for i in 0..10 {
            positions.push(mem.bytes(SEGMENT).len() as u64);
            log.append(&mut batch_at("x", 2, 1_000 + i), 0, 0)
                .await
                .unwrap();
        }
        let len = positions[1]; // every batch is the same size
        assert!(len < 150 && 2 * len > 150, "batches of {len} bytes");
        // An entry for a batch that starts more than 150 bytes after the last entry's: every
        // second batch, holding the batch's last offset.
        let index = log.segment(0).unwrap().offset_index();
        let entries: Vec<(i64, u64)> = index.entries().map(|e| (e.offset, e.position)).collect();
        let expected: Vec<(i64, u64)> = [2, 4, 6, 8]
            .iter()
            .map(|&b| (2 * b + 1, positions[b as usize]))
            .collect();
        assert_eq!(entries, expected);
        assert_eq!(mem.bytes(INDEX), index.to_bytes());
        let times = log.segment(0).unwrap().time_index();
        let times: Vec<(i64, i64)> = times.entries().map(|e| (e.timestamp, e.offset)).collect();
        assert_eq!(
            times,
            vec![(1_003, 5), (1_005, 9), (1_007, 13), (1_009, 17)]
        );
    })
}

/// A producer's batch compressed with `codec`.
fn compressed_batch(tag: &str, count: i32, codec: Compression) -> Vec<u8> {
    batch::recompress(&producer_batch(tag, count), codec).unwrap()
}

#[test]
fn a_compressed_batch_is_stored_as_the_producer_compressed_it() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        log.append(&mut producer_batch("a", 2), 0, 0).await.unwrap();
        let mut zstd = compressed_batch("z", 3, Compression::Zstd);
        let sent = zstd.clone();
        let info = log.append(&mut zstd, 4, 0).await.unwrap();
        assert_eq!((info.first_offset, info.last_offset), (2, 4));
        // Offsets and the epoch are assigned in the header: the compressed records untouched.
        assert_eq!(zstd.len(), sent.len());
        assert_eq!(zstd[BATCH_HEADER_LEN..], sent[BATCH_HEADER_LEN..]);
        assert_eq!(zstd[17..21], sent[17..21], "the CRC does not cover offsets");
        let header = batch::validate(&zstd).unwrap();
        assert_eq!(header.compression(), Ok(Compression::Zstd));
        assert!(mem.bytes(SEGMENT).ends_with(&zstd));
        let values: Vec<_> = log
            .read_all_records()
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.offset, r.value.unwrap()))
            .collect();
        assert_eq!(
            values,
            [(0, "a-0"), (1, "a-1"), (2, "z-0"), (3, "z-1"), (4, "z-2")]
                .map(|(o, v)| (o, bytes::Bytes::from(v)))
        );
        // A fetch returns the whole compressed batch holding the offset asked for.
        let read = log.read(3, 1 << 20).await.unwrap();
        assert_eq!(&read.records[..], &zstd[..]);
    })
}

#[test]
fn a_topic_compression_type_makes_the_leader_recompress() {
    run(async {
        let (_, gzip_disk) = disk();
        let config = LogConfig {
            compression_type: BrokerCompression::Codec(Compression::Gzip),
            ..LogConfig::default()
        };
        let (mut log, _) = open_with(&gzip_disk, config).await;
        for (i, codec) in Compression::ALL.into_iter().enumerate() {
            let mut bytes = compressed_batch(&format!("{i}"), 2, codec);
            log.append(&mut bytes, 0, 0).await.unwrap();
            let header = batch::validate(&bytes).unwrap();
            assert_eq!(
                header.compression(),
                Ok(Compression::Gzip),
                "from {codec:?}"
            );
            assert_eq!(header.base_offset, 2 * i as i64);
        }
        assert_eq!(log.read_all_records().await.unwrap().len(), 10);

        let (_, plain_disk) = disk();
        let config = LogConfig {
            compression_type: BrokerCompression::Codec(Compression::None),
            ..LogConfig::default()
        };
        let (mut log, _) = open_with(&plain_disk, config).await;
        let mut bytes = compressed_batch("s", 4, Compression::Snappy);
        log.append(&mut bytes, 0, 0).await.unwrap();
        let mut plain = producer_batch("s", 4);
        batch::set_partition_leader_epoch(&mut plain, 0);
        assert_eq!(bytes, plain, "`uncompressed`: as if sent plain");
    })
}

#[test]
fn a_compressed_batch_whose_records_are_inconsistent_is_refused() {
    run(async {
        let (_, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        // recordsCount and lastOffsetDelta say 3, the compressed records hold 2.
        let two = compressed_batch("x", 2, Compression::Lz4);
        let mut three = two.clone();
        three[23..27].copy_from_slice(&2i32.to_be_bytes());
        three[57..61].copy_from_slice(&3i32.to_be_bytes());
        let crc = crc32c::crc32c(&three[21..]);
        three[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            log.append(&mut three, 0, 0).await,
            Err(LogError::Corrupt(BatchError::Corrupt(_)))
        ));
        assert_eq!(log.log_end_offset(), 0);
    })
}

#[test]
fn log_append_time_stamps_the_brokers_clock() {
    run(async {
        let (_, disk) = disk();
        let config = LogConfig {
            message_timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        };
        let (mut log, _) = open_with(&disk, config).await;
        let mut bytes = producer_batch("a", 2);
        let info = log.append(&mut bytes, 0, 77_000).await.unwrap();
        assert_eq!(info.log_append_time_ms, 77_000);
        let header = batch::validate(&bytes).unwrap(); // the CRC was recomputed
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
        let records = log.read_all_records().await.unwrap();
        assert!(records.iter().all(|r| r.timestamp == 77_000));
        let found = log
            .fetch_offset_by_timestamp(77_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found.offset, found.timestamp), (0, 77_000));
    })
}

#[test]
fn list_offsets_by_time_finds_the_first_record_at_or_after() {
    run(async {
        let (_, disk) = disk();
        let config = LogConfig {
            segment_bytes: 300,
            ..small_config()
        };
        let (mut log, _) = open_with(&disk, config).await;
        // Timestamps go back and forth, across segments.
        let bases = [100, 300, 200, 500, 400, 800, 50, 900, 700, 1_000];
        for (i, &ts) in bases.iter().enumerate() {
            log.append(&mut batch_at(&format!("b{i}"), 3, ts), i as i32, 0)
                .await
                .unwrap();
        }
        assert!(log.segments().len() > 1);
        let records = log.read_all_records().await.unwrap();
        for target in [0, 100, 101, 250, 302, 499, 801, 900, 1_002] {
            let expected = records.iter().find(|r| r.timestamp >= target);
            let found = log.fetch_offset_by_timestamp(target).await.unwrap();
            assert_eq!(
                found.map(|f| (f.offset, f.timestamp)),
                expected.map(|r| (r.offset, r.timestamp)),
                "target {target}"
            );
            if let (Some(found), Some(r)) = (found, expected) {
                assert_eq!(found.leader_epoch, Some((r.offset / 3) as i32));
            }
        }
        assert_eq!(log.fetch_offset_by_timestamp(1_003).await.unwrap(), None);
        log.advance_log_start_offset(8).await.unwrap();
        let found = log.fetch_offset_by_timestamp(0).await.unwrap().unwrap();
        assert_eq!((found.offset, found.timestamp), (8, 202));
    })
}

#[test]
fn truncate_to_drops_whole_batches_at_and_above_the_offset() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open(&disk, u64::MAX).await;
        let written = append_n(&mut log, 3, 2).await;
        log.truncate_to(10).await.unwrap(); // above the log end: nothing to do
        assert_eq!(log.log_end_offset(), 6);
        log.truncate_to(3).await.unwrap(); // inside batch 2-3: it goes whole
        assert_eq!(log.log_end_offset(), 2);
        assert_eq!(mem.bytes(SEGMENT), written[0]);
        assert_eq!(values(&log.read_all_records().await.unwrap()).len(), 2);
        assert!(log.truncate_to(-1).await.is_err());

        let info = log.append(&mut producer_batch("e", 1), 7, 0).await.unwrap();
        assert_eq!((info.first_offset, info.log_end_offset), (2, 3));
        let (_, report) = open(&disk, u64::MAX).await;
        assert_eq!((report.truncated_bytes, report.log_end_offset), (0, 3));
    })
}

#[test]
fn truncate_to_deletes_later_segments_and_cuts_the_epochs() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open_with(&disk, small_config()).await;
        for i in 0..30 {
            log.append(&mut producer_batch("x", 2), i / 3, 0)
                .await
                .unwrap();
        }
        let before: Vec<i64> = log.segments().iter().map(|s| s.base_offset).collect();
        assert!(before.len() >= 3, "{before:?}");
        let target = before[1] + 1; // inside the second segment's first batch
        log.truncate_to(target).await.unwrap();
        assert_eq!(log.log_end_offset(), before[1]);
        let after: Vec<i64> = log.segments().iter().map(|s| s.base_offset).collect();
        assert_eq!(after, before[..2]);
        assert_eq!(log.segment(before[1]).unwrap().size_bytes(), 0);
        assert!(!mem
            .names()
            .iter()
            .any(|n| n.contains(&format!("{:020}", before[2]))));
        // Epoch 3 started at offset 18, at or past the new end: it is gone from the cache.
        let last_epoch = (before[1] / 2 - 1) / 3;
        assert_eq!(log.latest_epoch(), Some(last_epoch as i32));
        assert_eq!(
            log.end_offset_for_epoch(last_epoch as i32),
            (last_epoch as i32, before[1])
        );
        assert!(mem
            .text(EPOCHS)
            .ends_with(&format!("{last_epoch} {}\n", last_epoch * 6)));

        // Below the first segment: the log starts over there.
        log.truncate_to(0).await.unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
        assert_eq!(log.segments().len(), 1);
    })
}

#[test]
fn truncate_fully_and_start_at_moves_the_whole_log() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open_with(&disk, small_config()).await;
        append_n(&mut log, 12, 2).await;
        log.truncate_fully_and_start_at(500, 0).await.unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 500));
        assert!(log.leader_epochs().is_empty());
        let logs: Vec<String> = mem
            .names()
            .into_iter()
            .filter(|n| n.ends_with(".log"))
            .collect();
        assert_eq!(logs, vec![format!("{DIR}/00000000000000000500.log")]);
        let info = log.append(&mut producer_batch("y", 1), 9, 0).await.unwrap();
        assert_eq!(info.first_offset, 500);
        drop(log);
        let (log, _) = open_with(&disk, small_config()).await;
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 501));
    })
}

#[test]
fn the_log_start_offset_moves_and_is_checkpointed() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open_with(&disk, small_config()).await;
        for epoch in 0..30 {
            log.append(&mut producer_batch("x", 2), epoch, 0)
                .await
                .unwrap();
        }
        assert!(log.advance_log_start_offset(5).await.unwrap());
        assert!(!log.advance_log_start_offset(4).await.unwrap());
        assert!(log.advance_log_start_offset(61).await.is_err());
        assert!(matches!(
            log.read(4, 100).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.read_all_records().await.unwrap()[0].offset, 5);
        assert_eq!(
            mem.text("log-start-offset-checkpoint"),
            "0\n1\norders 0 5\n"
        );
        // The epoch in force at the start offset now starts there (Kafka's truncateFromStart).
        assert_eq!(log.leader_epochs()[0].epoch, 2);
        assert_eq!(log.leader_epochs()[0].start_offset, 5);
        drop(log);
        let (mut log, report) = open_with(&disk, small_config()).await;
        assert_eq!((log.log_start_offset(), report.log_start_offset), (5, 5));

        // Retention's deletions: whole segments, never the active one.
        let segments = log.segments();
        let deleted = log
            .delete_segments_below(segments[1].next_offset)
            .await
            .unwrap();
        assert_eq!(
            deleted,
            vec![segments[0].base_offset, segments[1].base_offset]
        );
        assert_eq!(log.log_start_offset(), segments[2].base_offset);
        let active = log.segments().last().unwrap().base_offset;
        assert!(log.delete_segment(active).await.is_err());
        log.delete_segments_below(i64::MAX).await.unwrap();
        assert_eq!(log.segments().len(), 1);
        assert_eq!(log.log_start_offset(), active);
    })
}

#[test]
fn flush_interval_counts_unflushed_messages() {
    run(async {
        let (mem, disk) = disk();
        let (mut log, _) = open(&disk, 1).await;
        append_n(&mut log, 3, 2).await;
        assert_eq!(mem.fsyncs(SEGMENT), 3);
        assert_eq!((log.recovery_point(), log.unflushed_messages()), (6, 0));
        assert_eq!(mem.text(RECOVERY_POINTS), "0\n1\norders 0 6\n");

        // 2 records a batch, interval 3: 4 unflushed after the 2nd and the 4th append.
        let (mem, disk) = self::disk();
        let (mut log, _) = open(&disk, 3).await;
        let mut fsyncs = Vec::new();
        for _ in 0..4 {
            log.append(&mut producer_batch("f", 2), 1, 0).await.unwrap();
            fsyncs.push(mem.fsyncs(SEGMENT));
        }
        assert_eq!(fsyncs, vec![0, 1, 1, 2]);

        let (mem, disk) = self::disk();
        let (mut log, _) = open(&disk, LogConfig::default().flush_interval_messages).await;
        append_n(&mut log, 3, 2).await;
        assert_eq!((mem.fsyncs(SEGMENT), log.unflushed_messages()), (0, 6));
        assert!(!mem.names().contains(&RECOVERY_POINTS.to_string()));
        log.flush().await.unwrap();
        assert_eq!((mem.fsyncs(SEGMENT), log.unflushed_messages()), (1, 0));
        log.flush().await.unwrap(); // nothing new: no fsync
        assert_eq!(mem.fsyncs(SEGMENT), 1);
    })
}

#[test]
fn flush_ms_flushes_on_the_clock() {
    run(async {
        let (mem, disk) = disk();
        let config = LogConfig {
            flush_interval_ms: 1_000,
            ..small_config()
        };
        let (mut log, _) = Log::open(disk.clone(), DIR, config, 10_000).await.unwrap();
        log.append(&mut producer_batch("a", 1), 0, 10_500)
            .await
            .unwrap();
        assert_eq!(mem.fsyncs(SEGMENT), 0);
        assert!(!log.flush_if_due(10_999).await.unwrap());
        assert!(log.flush_if_due(11_000).await.unwrap());
        assert_eq!((mem.fsyncs(SEGMENT), log.unflushed_messages()), (1, 0));
        log.append(&mut producer_batch("b", 1), 0, 11_500)
            .await
            .unwrap();
        assert_eq!(mem.fsyncs(SEGMENT), 1);
        log.append(&mut producer_batch("c", 1), 0, 12_000)
            .await
            .unwrap(); // due on append
        assert_eq!((mem.fsyncs(SEGMENT), log.unflushed_messages()), (2, 0));
    })
}

#[test]
fn the_recovery_point_checkpoint_is_shared_and_written_at_most_every_interval() {
    run(async {
        let (mem, disk) = disk();
        let config = LogConfig {
            flush_interval_messages: 1,
            recovery_point_checkpoint_interval_ms: 1_000,
            ..LogConfig::default()
        };
        let (mut orders, _) = Log::open(disk.clone(), "orders-0", config, 0)
            .await
            .unwrap();
        let (mut audit, _) = Log::open(disk.clone(), "audit-log-3", config, 0)
            .await
            .unwrap();
        orders
            .append(&mut producer_batch("a", 2), 0, 0)
            .await
            .unwrap();
        audit
            .append(&mut producer_batch("b", 1), 0, 0)
            .await
            .unwrap();
        assert_eq!(
            mem.text(RECOVERY_POINTS),
            "0\n2\naudit-log 3 1\norders 0 2\n"
        );
        orders
            .append(&mut producer_batch("c", 2), 0, 999)
            .await
            .unwrap();
        assert_eq!(orders.recovery_point(), 4);
        assert!(mem.text(RECOVERY_POINTS).contains("orders 0 2"), "not yet");
        orders
            .append(&mut producer_batch("d", 2), 0, 1_000)
            .await
            .unwrap();
        assert!(mem.text(RECOVERY_POINTS).contains("orders 0 6"));
        assert!(mem.text(RECOVERY_POINTS).contains("audit-log 3 1"));
        assert!(!mem.names().iter().any(|n| n.ends_with(".tmp")));
    })
}

#[test]
fn a_follower_appends_the_leaders_batches_as_they_are() {
    run(async {
        let (_, leader_disk) = disk();
        let (mut leader, _) = open(&leader_disk, u64::MAX).await;
        append_n(&mut leader, 3, 2).await;
        leader
            .append(&mut producer_batch("e7", 1), 7, 0)
            .await
            .unwrap();
        let fetched = leader.read(0, usize::MAX).await.unwrap().records;

        let (mem, disk) = disk();
        let (mut follower, _) = open(&disk, u64::MAX).await;
        let info = follower.append_as_follower(&fetched, 0).await.unwrap();
        assert_eq!(
            (info.first_offset, info.last_offset, info.log_end_offset),
            (0, 6, 7)
        );
        assert_eq!(mem.bytes(SEGMENT), fetched.to_vec());
        assert_eq!(follower.leader_epochs(), leader.leader_epochs());
        assert_eq!(follower.end_offset_for_epoch(5), (5, 6));

        let error = follower.append_as_follower(&fetched, 0).await.unwrap_err();
        assert!(matches!(
            error,
            LogError::UnexpectedAppendOffset {
                first_offset: 0,
                log_end_offset: 7
            }
        ));
        let info = follower.append_as_follower(&[], 0).await.unwrap();
        assert_eq!((info.first_offset, info.last_offset), (7, 6));
        let torn = &fetched[..fetched.len() - 1];
        follower.truncate_to(0).await.unwrap();
        assert!(matches!(
            follower.append_as_follower(torn, 0).await,
            Err(LogError::Corrupt(_))
        ));
        assert_eq!(follower.log_end_offset(), 0);
        assert!(follower.leader_epochs().is_empty());
    })
}

#[test]
fn a_follower_fetch_bigger_than_a_segment_is_split_across_segments() {
    run(async {
        let (_, leader_disk) = disk();
        let (mut leader, _) = open(&leader_disk, u64::MAX).await;
        append_n(&mut leader, 30, 2).await;
        let fetched = leader.read(0, usize::MAX).await.unwrap().records;
        assert!(fetched.len() > 2_000);

        let (_, disk) = disk();
        let (mut follower, _) = open_with(&disk, small_config()).await;
        let info = follower.append_as_follower(&fetched, 0).await.unwrap();
        assert_eq!(info.log_end_offset, 60);
        assert!(follower.segments().len() >= 3);
        assert!(follower.segments().iter().all(|s| s.size_bytes <= 1_000));
        assert_eq!(
            values(&follower.read_all_records().await.unwrap()),
            values(&leader.read_all_records().await.unwrap())
        );
    })
}
