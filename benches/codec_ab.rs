//! The record batch cases of `benches/codec.rs`, ours and the peer crate's
//! interleaved: rounds of a few milliseconds alternate between the two, so
//! a burst of noise on a shared machine lands on both sides alike. Prints
//! each side's median time per batch and the median of the per-round
//! ratios.
//!
//! A second table bounds what any codec could reach against the peer: the
//! peer's time over the least work its case needs, timed the same way.
//! Encoding zstd needs libzstd's compression of the records; decoding needs
//! the CRC, the decompression, and one `Bytes` per value, which both
//! codecs' records hold. Each least-work case is the fastest way we know:
//! a reused libzstd context writing into a reused buffer, and our own
//! decompression (which the decode case above includes too).
//!
//! `cargo bench --features bench --bench codec_ab [-- ROUNDS]`

use std::hint::black_box;
use std::ops::Range;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::records::{Compression, Headers, Record, RecordBatch, crc32c};
use peer::records::RecordBatchDecoder;
use peer_kafka_protocol as peer;

mod support;
use support::{RECORDS, ours_batch, peer_batch, peer_records, values};

/// Each round runs a side for about this long.
const ROUND: Duration = Duration::from_millis(20);

/// Times `f` over one round: the time per call.
fn round(iterations: u32, f: &mut dyn FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..iterations {
        f();
    }
    started.elapsed() / iterations
}

/// How many calls of `f` fill a round.
fn calibrate(f: &mut dyn FnMut()) -> u32 {
    let once = round(10, f).max(Duration::from_nanos(1));
    (ROUND.as_nanos() / once.as_nanos()).clamp(1, 1_000_000) as u32
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Runs `rounds` alternating rounds; returns (ours µs, peer µs, ratio).
fn compare(rounds: usize, ours: &mut dyn FnMut(), peer: &mut dyn FnMut()) -> (f64, f64, f64) {
    let (n_ours, n_peer) = (calibrate(ours), calibrate(peer));
    let (mut t_ours, mut t_peer, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        // Alternate which side goes first, so neither always follows the other.
        let (a, b) = if i % 2 == 0 {
            let a = round(n_ours, ours);
            (a, round(n_peer, peer))
        } else {
            let b = round(n_peer, peer);
            (round(n_ours, ours), b)
        };
        let (a, b) = (a.as_secs_f64() * 1e6, b.as_secs_f64() * 1e6);
        t_ours.push(a);
        t_peer.push(b);
        ratios.push(b / a);
    }
    (median(t_ours), median(t_peer), median(ratios))
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(101);
    let values = values();
    let records = peer_records(&values);
    println!("{rounds} alternating rounds of ~{ROUND:?} per side; medians per batch");
    println!("| case | ours µs | peer µs | peer/ours, median of rounds |");
    println!("|---|---:|---:|---:|");
    for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let name = compression.name();
        let (o, p, r) = compare(
            rounds,
            &mut || {
                black_box(ours_batch(black_box(&values), compression));
            },
            &mut || {
                black_box(peer_batch(black_box(&records), compression));
            },
        );
        println!("| encode {name} | {o:.1} | {p:.1} | {r:.2}x |");
        let ours = ours_batch(&values, compression);
        let theirs = peer_batch(&records, compression);
        let (o, p, r) = compare(
            rounds,
            &mut || {
                let batch = RecordBatch::from_bytes(black_box(ours.clone())).expect("batch");
                let decoded = batch.to_records().expect("records");
                assert_eq!(decoded.len(), RECORDS);
                black_box(decoded);
            },
            &mut || {
                let set =
                    RecordBatchDecoder::decode(&mut black_box(theirs.clone())).expect("decode");
                assert_eq!(set.records.len(), RECORDS);
                black_box(set);
            },
        );
        println!("| decode {name} | {o:.1} | {p:.1} | {r:.2}x |");
    }
    bounds(rounds, &values, &records);
}

/// The bytes of a v2 batch header before the records.
const BATCH_HEADER: usize = 61;
/// Where the CRC-covered part of a v2 batch starts.
const CRC_FROM: usize = 21;

/// Prints the bounds table (see the crate docs).
fn bounds(rounds: usize, values: &[Vec<u8>], records: &[peer::records::Record]) {
    let plain = ours_batch(values, Compression::None);
    let section = plain.slice(BATCH_HEADER..);
    let ranges = value_ranges(&plain, &section);
    let mut compressor =
        zstd::bulk::Compressor::new(zstd::DEFAULT_COMPRESSION_LEVEL).expect("zstd context");
    let mut frame = Vec::with_capacity(zstd::zstd_safe::compress_bound(section.len()));
    let peer_plain = peer_batch(records, Compression::None);
    let peer_zstd = peer_batch(records, Compression::Zstd);
    let zstd_batch = ours_batch(values, Compression::Zstd);
    let peer_decode = |batch: &Bytes| {
        let set = RecordBatchDecoder::decode(&mut black_box(batch.clone())).expect("decode");
        assert_eq!(set.records.len(), RECORDS);
        black_box(set);
    };
    println!();
    println!("| least work | least µs | peer µs | peer/least: the most any codec could reach |");
    println!("|---|---:|---:|---:|");
    let (l, p, r) = compare(
        rounds,
        &mut || {
            frame.clear();
            let written = compressor.compress_to_buffer(black_box(&section[..]), &mut frame);
            black_box(written.expect("zstd"));
        },
        &mut || {
            black_box(peer_batch(black_box(records), Compression::Zstd));
        },
    );
    println!("| encode zstd: libzstd alone | {l:.1} | {p:.1} | {r:.2}x |");
    let (l, p, r) = compare(
        rounds,
        &mut || {
            assert_ne!(crc32c(&black_box(&plain)[CRC_FROM..]), 0);
            black_box(value_records(&section, &ranges));
        },
        &mut || peer_decode(&peer_plain),
    );
    println!("| decode none: CRC, a `Bytes` per value | {l:.1} | {p:.1} | {r:.2}x |");
    let (l, p, r) = compare(
        rounds,
        &mut || {
            assert_ne!(crc32c(&black_box(&zstd_batch)[CRC_FROM..]), 0);
            // Our decompression: the fastest way into libzstd we know.
            let inflated = Compression::Zstd
                .decompress(&black_box(&zstd_batch)[BATCH_HEADER..], section.len())
                .expect("zstd");
            black_box(value_records(&inflated, &ranges));
        },
        &mut || peer_decode(&peer_zstd),
    );
    println!("| decode zstd: CRC, libzstd, a `Bytes` per value | {l:.1} | {p:.1} | {r:.2}x |");
}

/// Where each record's value lies in the records section of `batch`.
fn value_ranges(batch: &Bytes, section: &Bytes) -> Vec<Range<usize>> {
    let decoded = RecordBatch::from_bytes(batch.clone())
        .and_then(|batch| batch.to_records())
        .expect("records");
    decoded
        .iter()
        .map(|record| {
            let value = record.value.as_ref().expect("value");
            let start = value.as_ptr() as usize - section.as_ptr() as usize;
            start..start + value.len()
        })
        .collect()
}

/// The records a decoder hands out, without parsing anything: only the
/// `Vec` and the value slices.
fn value_records(section: &Bytes, ranges: &[Range<usize>]) -> Vec<Record> {
    ranges
        .iter()
        .enumerate()
        .map(|(i, range)| Record {
            offset: i as i64,
            timestamp: i as i64,
            key: None,
            value: Some(section.slice(range.clone())),
            headers: Headers::default(),
        })
        .collect()
}
