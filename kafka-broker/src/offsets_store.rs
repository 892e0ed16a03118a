//! Group offsets in disk mode: a snapshot file written whenever they
//! change and read back at start-up, so consumers resume where they
//! committed after a broker restart.
//!
//! It holds the offsets that transactions sent to groups too, still
//! pending: a transaction whose commit was decided before a crash commits
//! them on restart, as Kafka replays them from `__consumer_offsets`. Each
//! group's entries are written in the order they were stored, which decides
//! whether a pending offset or a later plain commit for the same partition
//! wins. The file is written to a temporary name and renamed, so a crash
//! leaves the old or the new one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::coordinator::group::{CommittedOffset, GroupCoordinator, OffsetEntry};

const FILE: &str = "__consumer_offsets.snapshot";

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

pub(crate) fn hex(s: &str) -> String {
    s.bytes()
        .fold(String::with_capacity(s.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

pub(crate) fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// One entry as a line: group, topic, partition, offset, leader epoch,
/// metadata, commit time, and the producer id of the transaction holding
/// it or `-`. Names and metadata are hex, so no field holds a space.
fn line(e: &OffsetEntry) -> String {
    let metadata = e
        .offset
        .metadata
        .as_deref()
        .map_or_else(|| "-".to_owned(), hex);
    let transaction = e
        .producer_id
        .map_or_else(|| "-".to_owned(), |id| id.to_string());
    format!(
        "{} {} {} {} {} {} {} {}",
        hex(&e.group),
        hex(&e.topic),
        e.partition,
        e.offset.offset,
        e.offset.leader_epoch,
        metadata,
        e.offset.commit_timestamp_ms,
        transaction
    )
}

/// Writes every group's committed and pending offsets.
pub(crate) fn save(dir: &Path, groups: &GroupCoordinator) -> std::io::Result<()> {
    let mut text = String::new();
    for entry in groups.offset_entries() {
        text.push_str(&line(&entry));
        text.push('\n');
    }
    let target = path(dir);
    let temp = target.with_extension("tmp");
    std::fs::write(&temp, text)?;
    std::fs::rename(temp, target)
}

/// Reads a line of [`line`], or of the six-field form of earlier versions
/// (committed offsets only, without their commit time: `now_ms` stands in).
fn parse(line: &str, now_ms: i64) -> Option<OffsetEntry> {
    let mut fields = line.split(' ');
    let group = unhex(fields.next()?)?;
    let topic = unhex(fields.next()?)?;
    let partition = fields.next()?.parse().ok()?;
    let offset = fields.next()?.parse().ok()?;
    let leader_epoch = fields.next()?.parse().ok()?;
    let metadata = match fields.next()? {
        "-" => None,
        hexed => Some(unhex(hexed)?),
    };
    let (commit_timestamp_ms, producer_id) = match fields.next() {
        None => (now_ms, None),
        Some(time) => {
            let time = time.parse().ok()?;
            let producer_id = match fields.next()? {
                "-" => None,
                id => Some(id.parse().ok()?),
            };
            (time, producer_id)
        }
    };
    fields.next().is_none().then_some(OffsetEntry {
        group,
        producer_id,
        topic,
        partition,
        offset: CommittedOffset {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
        },
    })
}

/// Restores the snapshot into a fresh coordinator; returns how many offsets
/// were restored. Unreadable lines are skipped with a warning.
pub(crate) fn restore(dir: &Path, groups: &GroupCoordinator) -> std::io::Result<usize> {
    let text = match std::fs::read_to_string(path(dir)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut restored = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let Some(entry) = parse(line, now_ms) else {
            tracing::warn!(line, "unreadable group offset line skipped");
            continue;
        };
        groups.restore_offset(entry);
        restored += 1;
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::group::GroupConfig;
    use kafka_protocol::messages::OffsetCommitRequest;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };

    fn entry(producer_id: Option<i64>, metadata: Option<&str>) -> OffsetEntry {
        OffsetEntry {
            group: "group with spaces\nand a newline".into(),
            producer_id,
            topic: "orders".into(),
            partition: 3,
            offset: CommittedOffset {
                offset: 42,
                leader_epoch: 7,
                metadata: metadata.map(str::to_owned),
                commit_timestamp_ms: 1_700_000_000_000,
            },
        }
    }

    #[test]
    fn lines_round_trip_whatever_the_names_and_metadata_contain() {
        for e in [entry(None, Some("meta data")), entry(Some(12), None)] {
            assert_eq!(parse(&line(&e), 5), Some(e));
        }
        // The six-field lines of earlier versions: committed, stamped now.
        let old = format!(
            "{} {} 3 42 7 {}",
            hex("group with spaces\nand a newline"),
            hex("orders"),
            hex("meta data")
        );
        let mut expected = entry(None, Some("meta data"));
        expected.offset.commit_timestamp_ms = 5;
        assert_eq!(parse(&old, 5), Some(expected));
        assert_eq!(parse("zz 00 1 2 3 -", 5), None);
        assert_eq!(
            parse("00 00 1 2 3 - 9", 5),
            None,
            "a time without a transaction"
        );
        assert_eq!(parse("00 00 1 2 3 - 9 x", 5), None);
        assert_eq!(parse("00 00 1 2 3 - 9 - extra", 5), None);
    }

    fn commit(groups: &GroupCoordinator, offset: i64) {
        groups.offset_commit(
            OffsetCommitRequest {
                group_id: "g".into(),
                generation_id_or_member_epoch: -1,
                topics: vec![OffsetCommitRequestTopic {
                    name: "t".into(),
                    partitions: vec![OffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: offset,
                        committed_metadata: Some("m".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            8,
        );
    }

    fn pending(groups: &GroupCoordinator, producer_id: i64, offset: i64) {
        let offset = CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp_ms: 0,
        };
        groups.add_pending_txn_offsets("g", producer_id, vec![("t".into(), 0, offset)]);
    }

    /// Saves `first`, restores it into a new coordinator and returns that.
    fn reloaded(dir: &Path, first: &GroupCoordinator) -> std::sync::Arc<GroupCoordinator> {
        save(dir, first).unwrap();
        let second = GroupCoordinator::new(GroupConfig::default());
        restore(dir, &second).unwrap();
        second
    }

    fn committed(groups: &GroupCoordinator) -> Option<i64> {
        groups.committed("g", "t", 0).map(|c| c.offset)
    }

    #[tokio::test]
    async fn committed_and_pending_offsets_survive_a_new_coordinator() {
        let dir = std::env::temp_dir().join(format!("kafka-broker-offsets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = GroupCoordinator::new(GroupConfig::default());
        commit(&first, 17);
        pending(&first, 9, 30);
        pending(&first, 10, 31);
        let second = reloaded(&dir, &first);
        let restored = second.committed("g", "t", 0).expect("restored");
        assert_eq!(
            (restored.offset, restored.metadata.as_deref()),
            (17, Some("m"))
        );
        // The pending offsets came back with their transactions.
        second.complete_txn("g", 10, false);
        assert_eq!(committed(&second), Some(17), "an abort drops its offsets");
        second.complete_txn("g", 9, true);
        assert_eq!(committed(&second), Some(30), "a commit applies its offsets");

        // A plain commit after a pending offset still wins over it.
        let first = GroupCoordinator::new(GroupConfig::default());
        pending(&first, 9, 50);
        commit(&first, 40);
        let second = reloaded(&dir, &first);
        second.complete_txn("g", 9, true);
        assert_eq!(committed(&second), Some(40));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
