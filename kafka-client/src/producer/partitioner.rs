//! Choosing a record's partition.
//!
//! - Keyed records: `to_positive(murmur2(key)) % partitions`, bit for bit the
//!   Java client's default, so this client and Java producers put the same
//!   key on the same partition.
//! - Records without a key (or all records with `partitioner.ignore.keys`):
//!   uniform sticky partitioning (KIP-794, Java's built-in partitioner with
//!   `partitioner.adaptive.partitioning.enable=false`): every such record
//!   goes to one partition until `batch.size` bytes were produced to it and
//!   its batch is full, or twice `batch.size` whatever the batches, then to
//!   another available partition picked at random. Batches fill up instead
//!   of being spread one record each, and a stream whose batches leave on
//!   `linger.ms` before they fill still moves on (KIP-480's switch on a new
//!   batch never did).
//! - A record with an explicit partition bypasses the partitioner.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::hash::FxHashMap;

/// Java's `Utils.murmur2`: MurmurHash2, seed `0x9747b28c`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // Java reads the tail as signed bytes and masks each with 0xff, which
    // is the unsigned byte value.
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit.
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Java's default partitioner picks for `key`.
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    (to_positive(murmur2(key)) as usize % partitions.max(1)) as i32
}

/// What a partitioner knows of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions<'a> {
    /// How many partitions the topic has.
    pub count: usize,
    /// The partitions that have a leader now.
    pub available: &'a [i32],
}

/// Chooses partitions for records without an explicit one.
pub trait Partitioner: Send + Sync + std::fmt::Debug + 'static {
    /// The partition for a record with this key and value.
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partitions: &TopicPartitions<'_>,
    ) -> i32;

    /// Called when the producer starts a new batch for `partition`, which a
    /// KIP-480 sticky partitioner takes as the cue to move on.
    fn on_new_batch(&self, _topic: &str, _partition: i32, _partitions: &TopicPartitions<'_>) {}

    /// Whether the producer should offer [`on_new_batch`](Self::on_new_batch)
    /// before starting a batch, and ask for the partition again after it.
    fn switches_on_new_batch(&self) -> bool {
        true
    }

    /// Called after a record with `key` and `bytes` of wire size was
    /// appended to `partition` by this partitioner's choice; `batch_full`
    /// says whether the batch it went into is now full.
    fn on_append(
        &self,
        _topic: &str,
        _key: Option<&[u8]>,
        _partition: i32,
        _bytes: usize,
        _batch_full: bool,
        _partitions: &TopicPartitions<'_>,
    ) {
    }
}

/// Java's default: murmur2 for keys, uniform sticky for the rest.
#[derive(Debug, Default)]
pub struct DefaultPartitioner {
    ignore_keys: bool,
    /// `batch.size`: the bytes after which the sticky partition moves on.
    batch_size: usize,
    /// Per topic: the sticky partition and the bytes produced to it.
    sticky: Mutex<FxHashMap<String, (i32, usize)>>,
    seed: AtomicU64,
}

/// Java's default `batch.size`.
const DEFAULT_BATCH_SIZE: usize = 16_384;

impl DefaultPartitioner {
    /// The default partitioner; `ignore_keys` is `partitioner.ignore.keys`,
    /// switching after Java's default `batch.size`.
    pub fn new(ignore_keys: bool) -> Self {
        Self::with_batch_size(ignore_keys, DEFAULT_BATCH_SIZE)
    }

    /// The default partitioner switching keyless records to another
    /// partition after `batch_size` bytes (the producer's `batch.size`).
    pub fn with_batch_size(ignore_keys: bool, batch_size: usize) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x2545_f491, |d| d.as_nanos() as u64)
            | 1;
        Self {
            ignore_keys,
            batch_size: batch_size.max(1),
            sticky: Mutex::new(FxHashMap::default()),
            seed: AtomicU64::new(seed),
        }
    }

    fn random(&self) -> u64 {
        // xorshift64*; contention only costs a retry of the update.
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A random available partition other than `previous` when possible.
    fn pick(&self, partitions: &TopicPartitions<'_>, previous: Option<i32>) -> i32 {
        let choices: Vec<i32> = if partitions.available.is_empty() {
            (0..partitions.count as i32).collect()
        } else {
            partitions.available.to_vec()
        };
        if choices.is_empty() {
            return 0;
        }
        let others: Vec<i32> = choices
            .iter()
            .copied()
            .filter(|p| Some(*p) != previous)
            .collect();
        let from = if others.is_empty() { &choices } else { &others };
        from[(self.random() % from.len() as u64) as usize]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<String, (i32, usize)>> {
        self.sticky.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Partitioner for DefaultPartitioner {
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        _value: Option<&[u8]>,
        partitions: &TopicPartitions<'_>,
    ) -> i32 {
        if let Some(key) = key.filter(|_| !self.ignore_keys) {
            return partition_for_key(key, partitions.count);
        }
        let mut sticky = self.lock();
        if let Some(&(p, _)) = sticky.get(topic)
            && (p as usize) < partitions.count
        {
            return p;
        }
        let p = self.pick(partitions, None);
        sticky.insert(topic.to_owned(), (p, 0));
        p
    }

    fn switches_on_new_batch(&self) -> bool {
        false
    }

    fn on_append(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        partition: i32,
        bytes: usize,
        batch_full: bool,
        partitions: &TopicPartitions<'_>,
    ) {
        if key.is_some() && !self.ignore_keys {
            return;
        }
        let mut sticky = self.lock();
        let Some((current, produced)) = sticky.get_mut(topic) else {
            return;
        };
        if *current != partition {
            return;
        }
        *produced += bytes;
        if (*produced >= self.batch_size && batch_full) || *produced >= 2 * self.batch_size {
            *current = self.pick(partitions, Some(partition));
            *produced = 0;
        }
    }
}

/// Java's `RoundRobinPartitioner`: every record to the next partition,
/// keys ignored.
#[derive(Debug, Default)]
pub struct RoundRobinPartitioner {
    next: AtomicUsize,
}

impl Partitioner for RoundRobinPartitioner {
    fn partition(
        &self,
        _topic: &str,
        _key: Option<&[u8]>,
        _value: Option<&[u8]>,
        partitions: &TopicPartitions<'_>,
    ) -> i32 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        if partitions.available.is_empty() {
            (n % partitions.count.max(1)) as i32
        } else {
            partitions.available[n % partitions.available.len()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `UtilsTest.testMurmur2` vectors.
    #[test]
    fn murmur2_matches_the_java_client() {
        let vectors: [(&[u8], i32); 7] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
            (b"", 275_646_681),
        ];
        for (input, expected) in vectors {
            assert_eq!(
                murmur2(input),
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn keys_map_as_in_java() {
        // to_positive(-790332482) = 1357151166; 1357151166 % 50 = 16.
        assert_eq!(partition_for_key(b"foobar", 50), 16);
        // to_positive(479470107) = 479470107; % 7 = 3.
        assert_eq!(partition_for_key(b"abc", 7), 479_470_107 % 7);
        let partitioner = DefaultPartitioner::new(false);
        let all = TopicPartitions {
            count: 50,
            available: &[],
        };
        assert_eq!(partitioner.partition("t", Some(b"foobar"), None, &all), 16);
    }

    #[test]
    fn keyless_records_stick_for_batch_size_bytes_then_move() {
        let partitioner = DefaultPartitioner::with_batch_size(false, 16_384);
        let available = [0, 1, 2, 3];
        let info = TopicPartitions {
            count: 4,
            available: &available,
        };
        let first = partitioner.partition("t", None, None, &info);
        // Full batches: 16 records of 1 KB, the 16th fills the batch.
        for i in 1..=16 {
            assert_eq!(partitioner.partition("t", None, None, &info), first);
            partitioner.on_append("t", None, first, 1024, i % 16 == 0, &info);
        }
        let second = partitioner.partition("t", None, None, &info);
        assert_ne!(
            second, first,
            "moved after batch.size bytes in a full batch"
        );
        // Batches that leave on linger.ms before they fill: twice batch.size.
        for _ in 1..32 {
            partitioner.on_append("t", None, second, 1024, false, &info);
            assert_eq!(partitioner.partition("t", None, None, &info), second);
        }
        partitioner.on_append("t", None, second, 1024, false, &info);
        assert_ne!(partitioner.partition("t", None, None, &info), second);
        // Keyed records and other partitions' appends do not count, nor does
        // a new batch (KIP-480's cue) any more.
        let third = partitioner.partition("t", None, None, &info);
        for _ in 0..100 {
            partitioner.on_append("t", Some(b"k"), third, 1024, true, &info);
            partitioner.on_append("t", None, (third + 1) % 4, 1024, true, &info);
            partitioner.on_new_batch("t", third, &info);
        }
        assert_eq!(partitioner.partition("t", None, None, &info), third);
    }

    #[test]
    fn unavailable_partitions_are_avoided_and_keys_can_be_ignored() {
        let partitioner = DefaultPartitioner::new(true);
        let available = [2];
        let info = TopicPartitions {
            count: 4,
            available: &available,
        };
        for _ in 0..20 {
            assert_eq!(partitioner.partition("t", Some(b"foobar"), None, &info), 2);
            partitioner.on_append("t", Some(b"foobar"), 2, 1 << 20, true, &info);
        }
    }

    #[test]
    fn round_robin_cycles() {
        let partitioner = RoundRobinPartitioner::default();
        let info = TopicPartitions {
            count: 3,
            available: &[],
        };
        let picks: Vec<i32> = (0..6)
            .map(|_| partitioner.partition("t", None, None, &info))
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn concurrent_use_is_safe() {
        let partitioner = std::sync::Arc::new(DefaultPartitioner::new(false));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let p = partitioner.clone();
                std::thread::spawn(move || {
                    let info = TopicPartitions {
                        count: 8,
                        available: &[],
                    };
                    for i in 0..1000 {
                        let chosen = p.partition("t", None, None, &info);
                        assert!((0..8).contains(&chosen));
                        p.on_append("t", None, chosen, 100, i % 10 == 0, &info);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
    }
}
