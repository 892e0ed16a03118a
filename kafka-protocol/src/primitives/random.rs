//! Random field values for property tests and fuzzing (feature `test-support`).
//!
//! Generated messages have a `random(&mut Random, version)` constructor that
//! fills only the fields the version carries, so every value it makes must
//! survive an encode -> decode round trip at that version.

use bytes::Bytes;
use uuid::Uuid;

/// A small deterministic generator (SplitMix64), seeded by the test.
#[derive(Debug, Clone)]
pub struct Random {
    state: u64,
}

impl Random {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability 1/`n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next_u64().is_multiple_of(n)
    }

    /// A random boolean.
    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// A random `i8`.
    pub fn i8(&mut self) -> i8 {
        self.next_u64() as i8
    }

    /// A random `i16`.
    pub fn i16(&mut self) -> i16 {
        self.next_u64() as i16
    }

    /// A random `u16`.
    pub fn u16(&mut self) -> u16 {
        self.next_u64() as u16
    }

    /// A random `i32`.
    pub fn i32(&mut self) -> i32 {
        self.next_u64() as i32
    }

    /// A random `u32`.
    pub fn u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    /// A random `i64`.
    pub fn i64(&mut self) -> i64 {
        self.next_u64() as i64
    }

    /// A random finite `f64` (NaN would not compare equal after a round trip).
    pub fn f64(&mut self) -> f64 {
        let value = f64::from_bits(self.next_u64());
        if value.is_finite() { value } else { 0.5 }
    }

    /// A random UUID.
    pub fn uuid(&mut self) -> Uuid {
        Uuid::from_u64_pair(self.next_u64(), self.next_u64())
    }

    /// A short collection length.
    pub fn count(&mut self) -> usize {
        (self.next_u64() % 4) as usize
    }

    /// A short string, sometimes with multi-byte characters.
    pub fn string(&mut self) -> String {
        const ALPHABET: [&str; 8] = ["a", "b", "z", "0", "-", "_", "é", "🦀"];
        let len = (self.next_u64() % 12) as usize;
        (0..len)
            .map(|_| ALPHABET[(self.next_u64() % 8) as usize])
            .collect()
    }

    /// Short random bytes.
    pub fn bytes(&mut self) -> Bytes {
        let len = (self.next_u64() % 16) as usize;
        (0..len)
            .map(|_| self.next_u64() as u8)
            .collect::<Vec<u8>>()
            .into()
    }
}

/// A value that can be made at random for a given version.
pub trait RandomValue {
    /// A value with random contents in every field that `version` carries
    /// (and defaults elsewhere), so that it survives a round trip at `version`.
    fn random(r: &mut Random, version: i16) -> Self;
}
