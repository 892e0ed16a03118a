use bytes::Bytes;
use kafka_protocol::ErrorCode;
use kafka_protocol::records::{BatchBuilder, Batches, RecordBatch};

use super::{PartitionLog, ValidBatch};

fn batch(values: &[&str], producer: Option<(i64, i16, i32)>, transactional: bool) -> Bytes {
    let mut builder = BatchBuilder::new(1 << 20);
    if let Some((id, epoch, seq)) = producer {
        builder.set_producer(id, epoch, seq);
    }
    builder.set_transactional(transactional);
    for (i, v) in values.iter().enumerate() {
        builder
            .append(1_000 + i as i64, None, Some(v.as_bytes()), &[])
            .unwrap();
    }
    builder.finish().unwrap()
}

fn append(log: &mut PartitionLog, wire: &Bytes) -> Result<i64, ErrorCode> {
    let valid = ValidBatch::parse(wire, 1 << 20).map_err(|e| e.code)?;
    log.append(valid).map(|a| a.base_offset).map_err(|e| e.code)
}

fn values(chunks: &[Bytes]) -> Vec<String> {
    chunks
        .iter()
        .flat_map(|c| Batches::new(c.clone()))
        .flat_map(|b| b.unwrap().to_records().unwrap())
        .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
        .collect()
}

#[test]
fn appends_assign_offsets_and_reads_return_the_stored_bytes() {
    let mut log = PartitionLog::new(3);
    assert_eq!(append(&mut log, &batch(&["a", "b"], None, false)), Ok(0));
    assert_eq!(append(&mut log, &batch(&["c"], None, false)), Ok(2));
    assert_eq!(log.high_watermark(), 3);
    let read = log.read(1, 1 << 20, true, log.high_watermark()).unwrap();
    assert_eq!(values(&read.chunks), ["a", "b", "c"]);
    let first = RecordBatch::from_bytes(read.chunks[1].clone()).unwrap();
    assert_eq!(first.header().base_offset, 2);
    assert_eq!(first.header().partition_leader_epoch, 3);
    assert_eq!(
        log.read(4, 100, true, 3).unwrap_err(),
        ErrorCode::OffsetOutOfRange
    );
    assert!(log.read(3, 100, true, 3).unwrap().chunks.is_empty());
}

#[test]
fn reads_respect_max_bytes_but_return_at_least_one_batch() {
    let mut log = PartitionLog::new(0);
    let wire = batch(&["0123456789"; 10], None, false);
    append(&mut log, &wire).unwrap();
    append(&mut log, &wire).unwrap();
    assert_eq!(log.read(0, 10, true, 20).unwrap().chunks.len(), 1);
    assert!(log.read(0, 10, false, 20).unwrap().chunks.is_empty());
    assert_eq!(
        log.read(0, wire.len() * 2, false, 20).unwrap().chunks.len(),
        2
    );
}

#[test]
fn a_corrupt_or_oversized_batch_is_refused() {
    let wire = batch(&["x"], None, false);
    let mut corrupt = wire.to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        ValidBatch::parse(&Bytes::from(corrupt), 1 << 20)
            .err()
            .map(|e| e.code),
        Some(ErrorCode::CorruptMessage)
    );
    assert_eq!(
        ValidBatch::parse(&wire, 10).err().map(|e| e.code),
        Some(ErrorCode::MessageTooLarge)
    );
    assert_eq!(
        ValidBatch::parse(&wire.slice(..wire.len() - 1), 1 << 20)
            .err()
            .map(|e| e.code),
        Some(ErrorCode::CorruptMessage)
    );
}

#[test]
fn a_retried_idempotent_batch_gets_its_original_offset_and_is_stored_once() {
    let mut log = PartitionLog::new(0);
    let first = batch(&["a"], Some((5, 0, 0)), false);
    assert_eq!(append(&mut log, &first), Ok(0));
    assert_eq!(
        append(&mut log, &batch(&["b"], Some((5, 0, 1)), false)),
        Ok(1)
    );
    assert_eq!(append(&mut log, &first), Ok(0));
    assert_eq!(log.high_watermark(), 2);
    assert_eq!(
        append(&mut log, &batch(&["c"], Some((5, 0, 9)), false)),
        Err(ErrorCode::OutOfOrderSequenceNumber)
    );
}

#[test]
fn open_transactions_hold_back_the_last_stable_offset_and_aborts_are_listed() {
    let mut log = PartitionLog::new(0);
    append(&mut log, &batch(&["plain"], None, false)).unwrap();
    append(&mut log, &batch(&["t1", "t2"], Some((9, 0, 0)), true)).unwrap();
    assert_eq!(log.last_stable_offset(), 1);
    let committed_view = log
        .read(0, 1 << 20, true, log.last_stable_offset())
        .unwrap();
    assert_eq!(values(&committed_view.chunks), ["plain"]);
    let marker = log.write_marker(9, 0, false, 0, 2_000).unwrap();
    assert_eq!(marker, 3);
    assert_eq!(log.last_stable_offset(), 4);
    let read = log
        .read(0, 1 << 20, true, log.last_stable_offset())
        .unwrap();
    assert_eq!(read.chunks.len(), 3);
    assert_eq!(read.aborted.len(), 1);
    assert_eq!(
        (read.aborted[0].first_offset, read.aborted[0].last_offset),
        (1, 3)
    );
    // The producer goes on with its next transaction; its sequence continues.
    assert_eq!(
        append(&mut log, &batch(&["next"], Some((9, 0, 2)), true)),
        Ok(4)
    );
    assert_eq!(log.last_stable_offset(), 4);
}

#[test]
fn offsets_are_found_by_timestamp() {
    let mut log = PartitionLog::new(0);
    append(&mut log, &batch(&["a", "b", "c"], None, false)).unwrap();
    assert_eq!(log.offset_for(1_001, 3), Some((1_001, 1)));
    assert_eq!(log.offset_for(-2, 3), Some((-1, 0)));
    assert_eq!(log.offset_for(-1, 3), Some((-1, 3)));
    assert_eq!(log.offset_for(-3, 3), Some((1_002, 2)));
    assert_eq!(log.offset_for(5_000, 3), None);
}

#[test]
fn retention_drops_old_batches_and_moves_the_start_offset() {
    let mut log = PartitionLog::new(0);
    for _ in 0..3 {
        append(&mut log, &batch(&["v"], None, false)).unwrap();
    }
    assert_eq!(log.apply_retention(1_000_000, 10, -1), 2);
    assert_eq!(log.log_start_offset(), 2);
    assert_eq!(
        log.read(0, 100, true, 3).unwrap_err(),
        ErrorCode::OffsetOutOfRange
    );
    let size = log.size_bytes();
    append(&mut log, &batch(&["v"], None, false)).unwrap();
    assert_eq!(log.apply_retention(0, -1, size as i64), 1);
}

#[test]
fn delete_records_moves_the_start_inside_a_batch_and_drops_whole_batches_before_it() {
    let mut log = PartitionLog::new(0);
    append(&mut log, &batch(&["a", "b", "c"], None, false)).unwrap();
    append(&mut log, &batch(&["d", "e"], None, false)).unwrap();
    let full = log.size_bytes();
    // Inside the first batch: it stays (offset 1 and 2 are still stored).
    assert_eq!(log.delete_records(1), Ok(1));
    assert_eq!(log.size_bytes(), full);
    assert_eq!(
        log.read(0, 1 << 20, true, 5).unwrap_err(),
        ErrorCode::OffsetOutOfRange
    );
    assert_eq!(log.offset_for(-2, 5), Some((-1, 1)));
    // Past it: the first batch goes.
    assert_eq!(log.delete_records(4), Ok(4));
    assert!(log.size_bytes() < full);
    assert_eq!(
        values(&log.read(4, 1 << 20, true, 5).unwrap().chunks),
        ["d", "e"]
    );
    // Backwards is no change; beyond the high watermark is refused.
    assert_eq!(log.delete_records(2), Ok(4));
    assert_eq!(log.delete_records(6), Err(ErrorCode::OffsetOutOfRange));
    assert_eq!(log.delete_records(-5), Err(ErrorCode::OffsetOutOfRange));
    // -1 is the high watermark: everything goes, appends continue after it.
    assert_eq!(log.delete_records(-1), Ok(5));
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(append(&mut log, &batch(&["f"], None, false)), Ok(5));
    assert_eq!(
        values(&log.read(5, 1 << 20, true, 6).unwrap().chunks),
        ["f"]
    );
}

#[test]
fn deleting_the_start_of_an_open_transaction_keeps_the_last_stable_offset_at_the_start() {
    let mut log = PartitionLog::new(0);
    append(&mut log, &batch(&["t1", "t2"], Some((7, 0, 0)), true)).unwrap();
    append(&mut log, &batch(&["t3"], Some((7, 0, 2)), true)).unwrap();
    assert_eq!(log.last_stable_offset(), 0);
    assert_eq!(log.delete_records(2), Ok(2));
    assert_eq!(log.last_stable_offset(), 2);
}

#[test]
fn a_disk_log_starts_where_delete_records_left_it_after_a_restart() {
    let dir = std::env::temp_dir().join(format!("kafka-broker-logstart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut log = PartitionLog::open(dir.clone(), 0).unwrap();
    append(&mut log, &batch(&["a", "b", "c"], None, false)).unwrap();
    append(&mut log, &batch(&["d"], None, false)).unwrap();
    assert_eq!(log.delete_records(2), Ok(2));
    drop(log);
    let mut log = PartitionLog::open(dir.clone(), 0).unwrap();
    assert_eq!(log.log_start_offset(), 2);
    assert_eq!(log.high_watermark(), 4);
    assert_eq!(
        log.read(1, 1 << 20, true, 4).unwrap_err(),
        ErrorCode::OffsetOutOfRange
    );
    // Everything, then a restart: the log is empty and continues at 4.
    assert_eq!(log.delete_records(-1), Ok(4));
    drop(log);
    let mut log = PartitionLog::open(dir.clone(), 0).unwrap();
    assert_eq!((log.log_start_offset(), log.high_watermark()), (4, 4));
    assert_eq!(append(&mut log, &batch(&["e"], None, false)), Ok(4));
    drop(log);
    std::fs::remove_dir_all(&dir).unwrap();
}
