//! Committed group offsets in disk mode: a snapshot file written whenever
//! they change and read back at start-up, so consumers resume where they
//! committed after a broker restart.
//!
//! The snapshot is taken through the coordinator's own API (ListGroups,
//! then OffsetFetch for every group) and restored with OffsetCommit at
//! generation -1, which an empty group accepts. It is written to a
//! temporary file and renamed, so a crash leaves the old or the new one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest};

use crate::coordinator::group::GroupCoordinator;

const FILE: &str = "__consumer_offsets.snapshot";

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    group: String,
    topic: String,
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: Option<String>,
}

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

fn snapshot(groups: &GroupCoordinator) -> Vec<Entry> {
    let listed = groups.list_groups(ListGroupsRequest::default(), 4);
    let mut entries = Vec::new();
    for group in listed.groups {
        let fetched = groups.offset_fetch(
            OffsetFetchRequest {
                groups: vec![OffsetFetchRequestGroup {
                    group_id: group.group_id.clone(),
                    topics: None,
                    ..Default::default()
                }],
                ..Default::default()
            },
            8,
        );
        for g in fetched.groups {
            for topic in g.topics {
                for p in topic.partitions {
                    if p.error_code == 0 && p.committed_offset >= 0 {
                        entries.push(Entry {
                            group: g.group_id.clone(),
                            topic: topic.name.clone(),
                            partition: p.partition_index,
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p.metadata,
                        });
                    }
                }
            }
        }
    }
    entries
}

/// Writes the current committed offsets of every group.
pub(crate) fn save(dir: &Path, groups: &GroupCoordinator) -> std::io::Result<()> {
    let mut text = String::new();
    for e in snapshot(groups) {
        let metadata = e.metadata.as_deref().map_or_else(|| "-".to_owned(), hex);
        let _ = writeln!(
            text,
            "{} {} {} {} {} {}",
            hex(&e.group),
            hex(&e.topic),
            e.partition,
            e.offset,
            e.leader_epoch,
            metadata
        );
    }
    let target = path(dir);
    let temp = target.with_extension("tmp");
    std::fs::write(&temp, text)?;
    std::fs::rename(temp, target)
}

fn parse(line: &str) -> Option<Entry> {
    let mut fields = line.split(' ');
    let entry = Entry {
        group: unhex(fields.next()?)?,
        topic: unhex(fields.next()?)?,
        partition: fields.next()?.parse().ok()?,
        offset: fields.next()?.parse().ok()?,
        leader_epoch: fields.next()?.parse().ok()?,
        metadata: match fields.next()? {
            "-" => None,
            hexed => Some(unhex(hexed)?),
        },
    };
    fields.next().is_none().then_some(entry)
}

/// Restores the snapshot into a fresh coordinator; returns how many offsets
/// were restored. Unreadable lines are skipped with a warning.
pub(crate) fn restore(dir: &Path, groups: &GroupCoordinator) -> std::io::Result<usize> {
    let text = match std::fs::read_to_string(path(dir)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut restored = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let Some(e) = parse(line) else {
            tracing::warn!(line, "unreadable committed-offset line skipped");
            continue;
        };
        let response = groups.offset_commit(
            OffsetCommitRequest {
                group_id: e.group,
                generation_id_or_member_epoch: -1,
                topics: vec![OffsetCommitRequestTopic {
                    name: e.topic,
                    partitions: vec![OffsetCommitRequestPartition {
                        partition_index: e.partition,
                        committed_offset: e.offset,
                        committed_leader_epoch: e.leader_epoch,
                        committed_metadata: e.metadata,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            8,
        );
        let ok = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .all(|p| p.error_code == 0);
        if ok {
            restored += 1;
        }
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::group::GroupConfig;

    #[test]
    fn lines_round_trip_whatever_the_names_and_metadata_contain() {
        let entry = Entry {
            group: "group with spaces\nand a newline".into(),
            topic: "orders".into(),
            partition: 3,
            offset: 42,
            leader_epoch: 7,
            metadata: Some("meta data".into()),
        };
        let line = format!(
            "{} {} 3 42 7 {}",
            hex(&entry.group),
            hex(&entry.topic),
            hex("meta data")
        );
        assert_eq!(parse(&line), Some(entry));
        assert_eq!(parse("zz 00 1 2 3 -"), None);
        assert_eq!(parse("00 00 1 2 3 - extra"), None);
    }

    #[tokio::test]
    async fn committed_offsets_survive_a_new_coordinator() {
        let dir = std::env::temp_dir().join(format!("kafka-broker-offsets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = GroupCoordinator::new(GroupConfig::default());
        let commit = |offset: i64| OffsetCommitRequest {
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
        };
        first.offset_commit(commit(17), 8);
        save(&dir, &first).unwrap();
        let second = GroupCoordinator::new(GroupConfig::default());
        assert_eq!(restore(&dir, &second).unwrap(), 1);
        let committed = second.committed("g", "t", 0).expect("restored");
        assert_eq!(
            (committed.offset, committed.metadata.as_deref()),
            (17, Some("m"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
