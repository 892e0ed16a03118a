//! No memory or task is left behind by producers that were opened, used
//! and closed. Its own test binary, so that the counting allocator sees
//! this test alone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use kafka_broker::{BrokerConfig, Cluster};
use kafka_client::producer::{Producer, ProducerRecord, ProducerSettings};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only
// counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as is.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

async fn churn(cluster: &Cluster, producers: usize) {
    for i in 0..producers {
        let mut settings = ProducerSettings::new(&cluster.bootstrap_servers());
        settings.retry_backoff = Duration::from_millis(20);
        let producer = Producer::new(settings).expect("producer");
        let mut deliveries = Vec::new();
        for j in 0..100 {
            deliveries.push(
                producer
                    .send(
                        ProducerRecord::new("churn")
                            .partition(0)
                            .value(format!("{i}-{j}")),
                    )
                    .await
                    .expect("queued"),
            );
        }
        for delivery in deliveries {
            delivery.await.expect("delivered");
        }
        producer.close(Duration::from_secs(5)).await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_opened_and_closed_leave_no_memory_or_tasks_behind() {
    let cluster = Cluster::start(BrokerConfig::default())
        .await
        .expect("cluster");
    cluster.create_topic("churn", 1).expect("topic");
    let metrics = tokio::runtime::Handle::current().metrics();
    // Warm up: the broker's log, the runtime's and the allocator's own
    // structures reach their steady size.
    churn(&cluster, 5).await;
    let tasks_before = metrics.num_alive_tasks();
    let live_before = LIVE.load(Ordering::Relaxed);
    churn(&cluster, 40).await;
    // Connection tasks on both sides wind down after close.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut tasks = metrics.num_alive_tasks();
    while tasks > tasks_before && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        tasks = metrics.num_alive_tasks();
    }
    let grown = LIVE.load(Ordering::Relaxed) - live_before;
    // What may stay is the broker's copy of the 4,000 records (some 60 KB
    // as measured); a producer that leaked one 16 KB batch buffer, or its
    // connection's 64 KB of buffers, would pass 512 KB over 40 of them.
    println!(
        "40 producers opened and closed: heap grew by {grown} bytes, tasks {tasks_before} -> {tasks}"
    );
    assert!(
        tasks <= tasks_before,
        "{tasks} tasks alive, {tasks_before} before"
    );
    assert!(
        grown < 512 << 10,
        "heap grew by {grown} bytes over 40 closed producers"
    );
}
