//! The README's first command, `cargo run --release --example quickstart`,
//! run here on a smaller input: the example's source is compiled as a
//! module (examples are not dependencies of tests) and its `run` called.

#[allow(dead_code)] // the example's `main`
#[path = "../examples/quickstart.rs"]
mod quickstart;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_invoices_every_order_exactly_once_across_its_crash() {
    let report = quickstart::run(12_000).await.expect("the quickstart runs");
    assert_eq!(report.orders, 12_000);
    assert_eq!(report.seen, 12_000, "invoices read_committed");
    assert_eq!(report.duplicates, 0);
    assert_eq!(report.missing, 0);
    assert!(report.left_open > 0, "the crash left a transaction open");
    assert!(report.exactly_once());
    assert!(report.processing <= report.total);
}
