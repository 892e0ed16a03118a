//! The transaction coordinator's state in disk mode: a snapshot file of
//! every transactional id, written before each change is answered and read
//! back at start-up, as Kafka keeps it in `__transaction_state`.
//!
//! What must survive a crash is the decision: once EndTxn(commit) is
//! answered, the commit happens, even if the broker dies before its markers
//! are written. Recovery writes the markers of a transaction found in a
//! Prepare state. An ongoing one is aborted as if it had timed out, so
//! that its partitions' last stable offset moves on at once rather than
//! after its timeout (Kafka would keep it open until then), and its
//! producer learns so on its next call, as after a timeout. Like the offsets snapshot, the file
//! is written to a temporary name and renamed, so a crash leaves the old
//! or the new one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::coordinator::txn::TxnState;
use crate::offsets_store::{hex, unhex};

const FILE: &str = "__transaction_state.snapshot";

/// One transactional id's state, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredTxn {
    pub(crate) transactional_id: String,
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) timed_out_epoch: Option<i16>,
    pub(crate) timeout_ms: u64,
    pub(crate) state: TxnState,
    pub(crate) marker_epoch: i16,
    pub(crate) partitions: Vec<(String, i32)>,
    pub(crate) groups: Vec<String>,
}

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

fn state_name(state: TxnState) -> &'static str {
    match state {
        TxnState::Empty => "empty",
        TxnState::Ongoing => "ongoing",
        TxnState::PrepareCommit => "prepare-commit",
        TxnState::PrepareAbort => "prepare-abort",
        TxnState::CompleteCommit => "complete-commit",
        TxnState::CompleteAbort => "complete-abort",
    }
}

fn parse_state(name: &str) -> Option<TxnState> {
    Some(match name {
        "empty" => TxnState::Empty,
        "ongoing" => TxnState::Ongoing,
        "prepare-commit" => TxnState::PrepareCommit,
        "prepare-abort" => TxnState::PrepareAbort,
        "complete-commit" => TxnState::CompleteCommit,
        "complete-abort" => TxnState::CompleteAbort,
        _ => return None,
    })
}

/// `-` for an empty list, else the items joined by commas.
fn list<T>(items: &[T], item: impl Fn(&T) -> String) -> String {
    if items.is_empty() {
        return "-".to_owned();
    }
    items.iter().map(item).collect::<Vec<_>>().join(",")
}

fn parse_list<T>(field: &str, item: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    if field == "-" {
        return Some(Vec::new());
    }
    field.split(',').map(item).collect()
}

fn line(txn: &StoredTxn) -> String {
    format!(
        "{} {} {} {} {} {} {} {} {}",
        hex(&txn.transactional_id),
        txn.producer_id,
        txn.epoch,
        txn.timed_out_epoch.map_or(-1, i32::from),
        txn.timeout_ms,
        state_name(txn.state),
        txn.marker_epoch,
        list(&txn.partitions, |(topic, p)| format!("{}:{p}", hex(topic))),
        list(&txn.groups, |g| hex(g)),
    )
}

fn parse(line: &str) -> Option<StoredTxn> {
    let mut fields = line.split(' ');
    let txn = StoredTxn {
        transactional_id: unhex(fields.next()?)?,
        producer_id: fields.next()?.parse().ok()?,
        epoch: fields.next()?.parse().ok()?,
        timed_out_epoch: match fields.next()?.parse::<i32>().ok()? {
            -1 => None,
            epoch => Some(i16::try_from(epoch).ok()?),
        },
        timeout_ms: fields.next()?.parse().ok()?,
        state: parse_state(fields.next()?)?,
        marker_epoch: fields.next()?.parse().ok()?,
        partitions: parse_list(fields.next()?, |item| {
            let (topic, partition) = item.split_once(':')?;
            Some((unhex(topic)?, partition.parse().ok()?))
        })?,
        groups: parse_list(fields.next()?, unhex)?,
    };
    fields.next().is_none().then_some(txn)
}

/// Writes the state of every transactional id.
pub(crate) fn save(dir: &Path, txns: &[StoredTxn]) -> std::io::Result<()> {
    let mut text = String::new();
    for txn in txns {
        let _ = writeln!(text, "{}", line(txn));
    }
    let target = path(dir);
    let temp = target.with_extension("tmp");
    std::fs::write(&temp, text)?;
    std::fs::rename(temp, target)
}

/// Reads the stored state; nothing when there is no file yet. Unreadable
/// lines are skipped with a warning.
pub(crate) fn load(dir: &Path) -> std::io::Result<Vec<StoredTxn>> {
    let text = match std::fs::read_to_string(path(dir)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut txns = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        match parse(line) {
            Some(txn) => txns.push(txn),
            None => tracing::warn!(line, "unreadable transaction-state line skipped"),
        }
    }
    Ok(txns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(state: TxnState) -> StoredTxn {
        StoredTxn {
            transactional_id: "id with spaces, a comma: and a colon".into(),
            producer_id: 1_700_000_000_000_123,
            epoch: 4,
            timed_out_epoch: Some(3),
            timeout_ms: 60_000,
            state,
            marker_epoch: 4,
            partitions: vec![("orders".into(), 0), ("a:b,c".into(), 12)],
            groups: vec!["group one".into(), "g2".into()],
        }
    }

    #[test]
    fn every_state_round_trips_whatever_the_names_contain() {
        for state in [
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::PrepareAbort,
            TxnState::CompleteCommit,
            TxnState::CompleteAbort,
        ] {
            let txn = stored(state);
            assert_eq!(parse(&line(&txn)), Some(txn));
        }
        let bare = StoredTxn {
            timed_out_epoch: None,
            partitions: Vec::new(),
            groups: Vec::new(),
            ..stored(TxnState::Empty)
        };
        assert_eq!(parse(&line(&bare)), Some(bare));
    }

    #[test]
    fn damaged_lines_are_refused() {
        let good = line(&stored(TxnState::Ongoing));
        assert!(parse(&good).is_some());
        for bad in [
            String::new(),
            good.replace("ongoing", "running"),
            format!("{good} extra"),
            good.replacen(' ', "  ", 1),
            "zz 1 0 -1 1000 empty 0 - -".to_owned(),
            "00 1 0 70000 1000 empty 0 - -".to_owned(),
            "00 1 0 -1 1000 empty 0 0000 -".to_owned(),
        ] {
            assert_eq!(parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn saved_state_loads_back_and_a_missing_file_is_empty() {
        let dir = std::env::temp_dir().join(format!("kafka-broker-txns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(path(&dir));
        assert_eq!(load(&dir).unwrap(), Vec::new());
        let txns = vec![stored(TxnState::PrepareCommit), stored(TxnState::Empty)];
        save(&dir, &txns).unwrap();
        assert_eq!(load(&dir).unwrap(), txns);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
