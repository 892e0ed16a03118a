//! Start-up time and memory of an in-process 3-broker cluster, the cost a
//! test pays for its own cluster (target: under 50 ms and under 20 MB).
//!
//! ```text
//! cargo bench -p kafka-testcontainers --bench startup [-- ROUNDS]
//! ```
//!
//! Time: `KafkaCluster::new().brokers(3).topic(..).start()` until it
//! returns (listeners bound, topic created), over ROUNDS rounds (default
//! 200) after a warm-up; each cluster is shut down before the next.
//! Memory: heap bytes live while one cluster is held (a counting
//! allocator), the peak during its start, and the resident-set growth per
//! cluster with 20 clusters held at once (Linux `/proc/self/statm`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kafka_testcontainers::{KafkaCluster, RunningCluster};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

async fn start() -> RunningCluster {
    KafkaCluster::new()
        .brokers(3)
        .topic("orders", 6)
        .start()
        .await
        .expect("cluster starts")
}

/// Resident set size in bytes (Linux), or `None`.
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; a number is the round count.
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for _ in 0..20 {
            start().await.shutdown().await.expect("shutdown");
        }

        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let begun = Instant::now();
            let cluster = start().await;
            times.push(begun.elapsed());
            cluster.shutdown().await.expect("shutdown");
        }
        times.sort();
        let mean = times.iter().sum::<Duration>() / rounds as u32;
        println!("in-process 3-broker cluster start-up, {rounds} rounds:");
        println!(
            "  min {:?}  median {:?}  mean {:?}  p90 {:?}  p99 {:?}  max {:?}",
            times[0],
            percentile(&times, 0.5),
            mean,
            percentile(&times, 0.9),
            percentile(&times, 0.99),
            times[rounds - 1]
        );

        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let cluster = start().await;
        let held = LIVE.load(Ordering::Relaxed).saturating_sub(before);
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
        println!(
            "  heap held by one cluster: {:.3} MiB ({held} bytes), peak during start {:.3} MiB",
            mib(held),
            mib(peak)
        );
        cluster.shutdown().await.expect("shutdown");

        const HELD: usize = 20;
        if let Some(rss_before) = rss() {
            let mut clusters = Vec::with_capacity(HELD);
            for _ in 0..HELD {
                clusters.push(start().await);
            }
            let grown = rss().unwrap_or(rss_before).saturating_sub(rss_before);
            println!(
                "  resident set growth with {HELD} clusters held: {:.2} MiB, {:.3} MiB per cluster",
                mib(grown),
                mib(grown) / HELD as f64
            );
            for cluster in clusters {
                cluster.shutdown().await.expect("shutdown");
            }
        }
    });
}
