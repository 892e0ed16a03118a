//! On-disk partition logs: append-only segment files of raw batches.
//!
//! Each partition has a directory `<data dir>/<topic>-<partition>/` holding
//! segments named by their first offset (`00000000000000000000.log`). A
//! batch is written to the active segment before the produce request is
//! acknowledged, so it survives the broker process being killed (the
//! operating system keeps what was written). Recovery reads every segment,
//! checks each batch's CRC and cuts the log at the first torn or corrupt
//! batch, as Kafka does after an unclean shutdown.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::records::{Batches, DecodeOptions, RecordBatch};

/// A new segment is started once the active one reaches this size.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// The directory of a partition's log.
pub(crate) fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// The checkpoint of the log start offset, beside the segments.
const LOG_START_FILE: &str = "log-start-offset";

fn segment_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

#[derive(Debug)]
struct Segment {
    base_offset: i64,
    path: PathBuf,
    size: u64,
}

/// The files of one partition's log.
#[derive(Debug)]
pub(crate) struct DiskLog {
    dir: PathBuf,
    segments: Vec<Segment>,
    active: Option<File>,
}

/// What recovery found: the intact batches, in order, and how many bytes
/// of torn or corrupt tail were cut off.
pub(crate) struct Recovered {
    pub batches: Vec<RecordBatch>,
    pub truncated_bytes: u64,
}

impl DiskLog {
    /// Opens (creating if needed) a partition directory and recovers its
    /// segments.
    pub(crate) fn open(dir: PathBuf) -> io::Result<(Self, Recovered)> {
        fs::create_dir_all(&dir)?;
        let mut names: Vec<(i64, PathBuf)> = fs::read_dir(&dir)?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let path = entry.path();
                let stem = path.file_name()?.to_str()?.strip_suffix(".log")?;
                Some((stem.parse().ok()?, path))
            })
            .collect();
        names.sort();
        let mut segments = Vec::new();
        let mut batches = Vec::new();
        let mut truncated_bytes = 0;
        let mut corrupt = false;
        for (base_offset, path) in names {
            if corrupt {
                // Everything after a cut is unreachable: drop it.
                truncated_bytes += fs::metadata(&path).map_or(0, |m| m.len());
                fs::remove_file(&path)?;
                continue;
            }
            let data = Bytes::from(fs::read(&path)?);
            let options = DecodeOptions {
                reject_truncated: true,
                ..DecodeOptions::default()
            };
            let mut valid = 0u64;
            for batch in Batches::with_options(data.clone(), options) {
                match batch {
                    Ok(batch) if batch.magic() == 2 => {
                        valid += batch.as_bytes().len() as u64;
                        batches.push(batch);
                    }
                    _ => {
                        corrupt = true;
                        break;
                    }
                }
            }
            if valid < data.len() as u64 {
                corrupt = true;
                truncated_bytes += data.len() as u64 - valid;
                let file = OpenOptions::new().write(true).open(&path)?;
                file.set_len(valid)?;
                file.sync_all()?;
                tracing::warn!(path = %path.display(), kept = valid, cut = data.len() as u64 - valid, "recovery truncated a torn or corrupt log tail");
            }
            segments.push(Segment {
                base_offset,
                path,
                size: valid,
            });
        }
        Ok((
            Self {
                dir,
                segments,
                active: None,
            },
            Recovered {
                batches,
                truncated_bytes,
            },
        ))
    }

    /// Appends one batch whose first offset is `base_offset`.
    pub(crate) fn append(&mut self, base_offset: i64, batch: &[u8]) -> io::Result<()> {
        let roll = self
            .segments
            .last()
            .is_none_or(|s| s.size > 0 && s.size + batch.len() as u64 > SEGMENT_BYTES);
        if roll {
            let path = self.dir.join(segment_name(base_offset));
            self.segments.push(Segment {
                base_offset,
                path,
                size: 0,
            });
            self.active = None;
        }
        let Some(segment) = self.segments.last_mut() else {
            return Err(io::Error::other("no active segment"));
        };
        if self.active.is_none() {
            self.active = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&segment.path)?,
            );
        }
        let Some(file) = self.active.as_mut() else {
            return Err(io::Error::other("active segment not open"));
        };
        file.write_all(batch)?;
        segment.size += batch.len() as u64;
        Ok(())
    }

    /// Deletes whole segments that end before `log_start_offset`; `next_base`
    /// gives each segment's end (the next segment's base offset).
    pub(crate) fn delete_before(&mut self, log_start_offset: i64) -> io::Result<()> {
        while self.segments.len() > 1 && self.segments[1].base_offset <= log_start_offset {
            let segment = self.segments.remove(0);
            fs::remove_file(&segment.path)?;
        }
        Ok(())
    }

    /// The log start offset last checkpointed, if any: where the log
    /// starts when DeleteRecords or retention moved it (Kafka's
    /// `log-start-offset-checkpoint`). An unreadable file counts as none.
    pub(crate) fn saved_log_start(&self) -> Option<i64> {
        let text = fs::read_to_string(self.dir.join(LOG_START_FILE)).ok()?;
        text.trim().parse().ok().filter(|&offset: &i64| offset >= 0)
    }

    /// Checkpoints the log start offset (temporary file, then rename, so a
    /// crash leaves the old value or the new one).
    pub(crate) fn save_log_start(&self, offset: i64) -> io::Result<()> {
        let path = self.dir.join(LOG_START_FILE);
        let temp = path.with_extension("tmp");
        fs::write(&temp, offset.to_string())?;
        fs::rename(temp, path)
    }

    /// Removes the partition's files (topic deletion).
    pub(crate) fn delete_all(self) -> io::Result<()> {
        drop(self.active);
        fs::remove_dir_all(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::BatchBuilder;

    fn batch(value: &str) -> Bytes {
        let mut builder = BatchBuilder::new(1024);
        builder
            .append(1, None, Some(value.as_bytes()), &[])
            .unwrap();
        builder.finish().unwrap()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("kafka-broker-disk-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn appended_batches_are_recovered_and_a_torn_tail_is_cut() {
        let dir = temp_dir("torn");
        let (mut log, recovered) = DiskLog::open(dir.clone()).unwrap();
        assert!(recovered.batches.is_empty());
        log.append(0, &batch("a")).unwrap();
        log.append(1, &batch("b")).unwrap();
        drop(log);
        // A crash in the middle of a write leaves half a batch.
        let third = batch("c");
        let segment = dir.join(segment_name(0));
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(&third[..third.len() / 2]).unwrap();
        drop(file);
        let (_, recovered) = DiskLog::open(dir.clone()).unwrap();
        assert_eq!(recovered.batches.len(), 2);
        assert_eq!(recovered.truncated_bytes, (third.len() / 2) as u64);
        assert_eq!(
            fs::metadata(&segment).unwrap().len(),
            (batch("a").len() * 2) as u64
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_batch_ends_the_log_there() {
        let dir = temp_dir("corrupt");
        let (mut log, _) = DiskLog::open(dir.clone()).unwrap();
        log.append(0, &batch("a")).unwrap();
        let mut bad = batch("b").to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0x55;
        log.append(1, &bad).unwrap();
        log.append(2, &batch("c")).unwrap();
        drop(log);
        let (_, recovered) = DiskLog::open(dir.clone()).unwrap();
        assert_eq!(recovered.batches.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
