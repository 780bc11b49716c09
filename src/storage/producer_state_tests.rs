use super::*;

const PID: i64 = 7;

/// Appends a data batch of `count` records at `first_offset` as `origin` would, and applies it.
fn append(
    m: &mut ProducerStateManager,
    origin: AppendOrigin,
    epoch: i16,
    first_seq: i32,
    count: i32,
    first_offset: i64,
    transactional: bool,
) -> Result<(), ProducerError> {
    let mut info = m.prepare_update(PID, origin);
    let last_seq = increment_sequence(first_seq, count - 1);
    info.append_data_batch(
        epoch,
        first_seq,
        last_seq,
        1_000 + first_offset,
        first_offset,
        first_offset + i64::from(count) - 1,
        transactional,
    )?;
    m.update(info);
    m.update_map_end_offset(first_offset + i64::from(count));
    Ok(())
}

fn client(
    m: &mut ProducerStateManager,
    epoch: i16,
    seq: i32,
    count: i32,
    at: i64,
) -> Result<(), ProducerError> {
    append(m, AppendOrigin::Client, epoch, seq, count, at, false)
}

fn marker(
    m: &mut ProducerStateManager,
    origin: AppendOrigin,
    epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
    offset: i64,
) -> Result<Option<CompletedTxn>, ProducerError> {
    let mut info = m.prepare_update(PID, origin);
    let marker = EndTxnMarker {
        commit,
        coordinator_epoch,
    };
    let completed = info.append_end_txn_marker(marker, epoch, offset, 5_000)?;
    m.update(info);
    if let Some(c) = &completed {
        m.complete_txn(c);
    }
    m.update_map_end_offset(offset + 1);
    Ok(completed)
}

#[test]
fn a_retried_batch_is_found_among_the_last_five_with_its_original_offsets() {
    let mut m = ProducerStateManager::default();
    for i in 0..6 {
        client(&mut m, 0, i * 3, 3, i64::from(i) * 10).unwrap();
    }
    let entry = m.last_entry(PID).unwrap();
    assert_eq!(entry.batches().count(), NUM_BATCHES_TO_RETAIN);
    // The second batch (seq 3..=5 at offsets 10..=12) is still retained; the first is not.
    let dup = entry.find_duplicate(0, 3, 5).unwrap();
    assert_eq!((dup.first_offset(), dup.last_offset), (10, 12));
    assert_eq!(entry.find_duplicate(0, 0, 2), None);
    // Another epoch, or another range, is no duplicate.
    assert_eq!(entry.find_duplicate(1, 3, 5), None);
    assert_eq!(entry.find_duplicate(0, 3, 4), None);
}

#[test]
fn a_sequence_gap_is_out_of_order() {
    let mut m = ProducerStateManager::default();
    client(&mut m, 0, 0, 2, 0).unwrap();
    let err = client(&mut m, 0, 3, 1, 2).unwrap_err();
    assert_eq!(
        err,
        ProducerError::OutOfOrderSequence {
            producer_id: PID,
            epoch: 0,
            first_sequence: 3,
            last_sequence: 1
        }
    );
    assert_eq!(err.code(), 45);
    // Nothing changed: the next in sequence is still accepted.
    client(&mut m, 0, 2, 1, 2).unwrap();
}

#[test]
fn an_older_epoch_is_fenced_and_a_new_one_starts_at_sequence_zero() {
    let mut m = ProducerStateManager::default();
    client(&mut m, 3, 0, 1, 0).unwrap();
    let err = client(&mut m, 2, 1, 1, 1).unwrap_err();
    assert!(matches!(
        err,
        ProducerError::InvalidProducerEpoch {
            epoch: 2,
            current_epoch: 3,
            ..
        }
    ));
    assert_eq!(err.code(), 47);
    let err = client(&mut m, 4, 5, 1, 1).unwrap_err();
    assert!(matches!(
        err,
        ProducerError::OutOfOrderSequence { epoch: 4, .. }
    ));
    client(&mut m, 4, 0, 1, 1).unwrap();
    let entry = m.last_entry(PID).unwrap();
    assert_eq!((entry.producer_epoch, entry.last_seq()), (4, 0));
    // The new epoch forgot the old one's batches.
    assert_eq!(entry.batches().count(), 1);
}

#[test]
fn a_producer_without_state_may_continue_at_any_sequence() {
    let mut m = ProducerStateManager::default();
    client(&mut m, 2, 41, 2, 100).unwrap();
    assert_eq!(m.last_entry(PID).unwrap().last_seq(), 42);
    client(&mut m, 2, 43, 1, 102).unwrap();
}

#[test]
fn sequences_wrap_at_i32_max() {
    let mut m = ProducerStateManager::default();
    client(&mut m, 0, i32::MAX - 1, 3, 0).unwrap();
    let entry = m.last_entry(PID).unwrap();
    assert_eq!(entry.last_seq(), 0);
    assert_eq!(entry.first_seq(), i32::MAX - 1);
    client(&mut m, 0, 1, 1, 3).unwrap();
    assert_eq!(increment_sequence(i32::MAX, 1), 0);
    assert_eq!(decrement_sequence(0, 1), i32::MAX);
}

#[test]
fn a_follower_takes_what_its_leader_wrote() {
    let mut m = ProducerStateManager::default();
    client(&mut m, 5, 0, 1, 0).unwrap();
    // An older epoch and a gap: a replica copies them anyway.
    append(&mut m, AppendOrigin::Replication, 4, 9, 1, 1, false).unwrap();
    assert_eq!(m.last_entry(PID).unwrap().producer_epoch, 4);
}

#[test]
fn markers_check_producer_and_coordinator_epochs() {
    let mut m = ProducerStateManager::default();
    append(&mut m, AppendOrigin::Client, 1, 0, 2, 10, true).unwrap();
    assert_eq!(m.first_unstable_offset(), Some(10));
    let err = marker(&mut m, AppendOrigin::Coordinator, 0, 3, true, 12).unwrap_err();
    assert_eq!(err.code(), 47);
    let completed = marker(&mut m, AppendOrigin::Coordinator, 1, 3, false, 12).unwrap();
    assert_eq!(
        completed,
        Some(CompletedTxn {
            producer_id: PID,
            first_offset: 10,
            last_offset: 12,
            is_aborted: true
        })
    );
    let err = marker(&mut m, AppendOrigin::Coordinator, 1, 2, true, 13).unwrap_err();
    assert_eq!(
        err,
        ProducerError::TransactionCoordinatorFenced {
            producer_id: PID,
            coordinator_epoch: 2,
            current_coordinator_epoch: 3
        }
    );
    assert_eq!(err.code(), 52);
    // A marker with no open transaction ends nothing.
    assert_eq!(
        marker(&mut m, AppendOrigin::Coordinator, 1, 3, true, 13),
        Ok(None)
    );
}

#[test]
fn a_plain_batch_inside_a_transaction_is_refused() {
    let mut m = ProducerStateManager::default();
    append(&mut m, AppendOrigin::Client, 0, 0, 1, 0, true).unwrap();
    let err = client(&mut m, 0, 1, 1, 1).unwrap_err();
    assert_eq!(err, ProducerError::InvalidTxnState { producer_id: PID });
    assert_eq!(err.code(), 48);
}

#[test]
fn a_decided_transaction_is_unstable_until_the_high_watermark_passes_its_marker() {
    let mut m = ProducerStateManager::default();
    append(&mut m, AppendOrigin::Client, 0, 0, 3, 4, true).unwrap();
    assert_eq!(m.first_unstable_offset(), Some(4));
    assert_eq!(m.first_undecided_offset(), Some(4));
    marker(&mut m, AppendOrigin::Coordinator, 0, 0, true, 7).unwrap();
    assert_eq!(m.first_undecided_offset(), None);
    assert_eq!(m.first_unstable_offset(), Some(4));
    m.on_high_watermark_updated(7);
    assert_eq!(m.first_unstable_offset(), Some(4));
    m.on_high_watermark_updated(8);
    assert_eq!(m.first_unstable_offset(), None);
}

#[test]
fn the_lso_of_an_abort_is_the_next_open_transaction_of_another_producer() {
    let mut m = ProducerStateManager::default();
    append(&mut m, AppendOrigin::Client, 0, 0, 1, 0, true).unwrap();
    let mut other = m.prepare_update(8, AppendOrigin::Client);
    other.append_data_batch(0, 0, 0, 0, 1, 1, true).unwrap();
    m.update(other);
    let abort = CompletedTxn {
        producer_id: PID,
        first_offset: 0,
        last_offset: 2,
        is_aborted: true,
    };
    assert_eq!(m.last_stable_offset(&abort), 1);
    let alone = CompletedTxn {
        producer_id: 8,
        first_offset: 1,
        last_offset: 3,
        is_aborted: true,
    };
    // Its own transaction does not count; producer 7's (at 0) does.
    assert_eq!(m.last_stable_offset(&alone), 0);
}

#[test]
fn a_snapshot_is_kafkas_version_1_layout_and_round_trips() {
    let mut m = ProducerStateManager::default();
    append(&mut m, AppendOrigin::Client, 2, 10, 3, 100, true).unwrap();
    let bytes = encode_snapshot(m.producers().values());
    assert_eq!(bytes.len(), 2 + 4 + 4 + SNAPSHOT_ENTRY_LEN);
    let mut expected = Vec::new();
    expected.extend_from_slice(&1i16.to_be_bytes()); // version
    expected.extend_from_slice(&[0; 4]); // crc, below
    expected.extend_from_slice(&1i32.to_be_bytes()); // one entry
    expected.extend_from_slice(&PID.to_be_bytes());
    expected.extend_from_slice(&2i16.to_be_bytes()); // epoch
    expected.extend_from_slice(&12i32.to_be_bytes()); // last sequence
    expected.extend_from_slice(&102i64.to_be_bytes()); // last offset
    expected.extend_from_slice(&2i32.to_be_bytes()); // offset delta
    expected.extend_from_slice(&1_100i64.to_be_bytes()); // timestamp
    expected.extend_from_slice(&(-1i32).to_be_bytes()); // coordinator epoch
    expected.extend_from_slice(&100i64.to_be_bytes()); // current txn first offset
    let crc = crc32c::crc32c(&expected[6..]);
    expected[2..6].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(bytes, expected);

    let entries = decode_snapshot(&bytes).unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry, m.last_entry(PID).unwrap());
    let dup = entry.find_duplicate(2, 10, 12).unwrap();
    assert_eq!((dup.first_offset(), dup.last_offset), (100, 102));

    let mut corrupt = bytes.clone();
    corrupt[20] ^= 1;
    assert!(decode_snapshot(&corrupt).unwrap_err().contains("CRC"));
    assert!(decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
    let mut v2 = bytes;
    v2[1] = 2;
    assert!(decode_snapshot(&v2).unwrap_err().contains("version"));
}

#[test]
fn an_empty_producer_table_snapshot() {
    let bytes = encode_snapshot(std::iter::empty());
    assert_eq!(bytes.len(), 10);
    assert_eq!(&bytes[..2], &[0, 1]);
    assert_eq!(&bytes[6..], &[0, 0, 0, 0]);
    assert_eq!(decode_snapshot(&bytes).unwrap(), vec![]);
}
