//! The broker's request path in-process: any bytes as one request frame get
//! a response, no response, or a reason to close the connection; never a
//! panic, a hang or an unbounded allocation.
#![no_main]

use std::sync::OnceLock;

use kafka_broker::{BrokerConfig, Cluster};
use libfuzzer_sys::fuzz_target;

struct Harness {
    runtime: tokio::runtime::Runtime,
    cluster: Cluster,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // Paused time: long polls and rebalance waits complete at once.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime");
        let cluster = runtime.block_on(async {
            let cluster = Cluster::start(BrokerConfig::default())
                .await
                .expect("cluster");
            cluster.create_topic("fuzz", 2).expect("topic");
            cluster
        });
        Harness { runtime, cluster }
    })
}

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    let frame = bytes::Bytes::copy_from_slice(data);
    let _ = harness
        .runtime
        .block_on(harness.cluster.handle_frame(frame));
});
