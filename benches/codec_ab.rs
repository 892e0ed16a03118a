//! The record batch cases of `benches/codec.rs`, ours and the peer crate's
//! interleaved: rounds of a few milliseconds alternate between the two, so
//! a burst of noise on a shared machine lands on both sides alike. Prints
//! each side's median time per batch and the median of the per-round
//! ratios.
//!
//! `cargo bench --features bench --bench codec_ab [-- ROUNDS]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use kafka_protocol::records::{Compression, RecordBatch};
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
}
