//! What integration suites need besides a cluster: names that do not
//! collide between parallel tests, bounded polling, and collecting records.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kafka_client::consumer::{Consumer, ConsumerRecord};
use tokio::time::Instant;

use crate::error::{Error, Result};

/// The longest pause between two checks of a condition.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A name no other call in this process (nor, with the process id in it, a
/// concurrent test process on a shared cluster) returns: `prefix` with
/// characters Kafka refuses in topic names replaced by `_`, then the pid
/// and a counter.
///
/// ```
/// let a = kafka_testcontainers::unique_name("orders");
/// let b = kafka_testcontainers::unique_name("orders");
/// assert_ne!(a, b);
/// assert!(a.starts_with("orders-"));
/// assert_eq!(kafka_testcontainers::unique_name("a b/c").split('-').next(), Some("a_b_c"));
/// ```
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    format!("{clean}-{}-{n}", std::process::id())
}

/// A topic name for one test: [`unique_name`] with a `topic` hint.
///
/// ```
/// let topic = kafka_testcontainers::unique_topic("orders");
/// assert!(topic.starts_with("orders-"));
/// ```
pub fn unique_topic(prefix: &str) -> String {
    unique_name(prefix)
}

/// A consumer group id for one test: [`unique_name`], so that tests sharing
/// a cluster never join each other's groups.
///
/// ```
/// let group = kafka_testcontainers::unique_group("invoicer");
/// assert_ne!(group, kafka_testcontainers::unique_group("invoicer"));
/// ```
pub fn unique_group(prefix: &str) -> String {
    unique_name(prefix)
}

/// Checks `condition` until it returns true, at most until `timeout`
/// passes: first at once, then at growing intervals (1 ms doubling up to
/// 50 ms). The error names `what` and how long it waited.
///
/// Use it instead of a fixed sleep: the test goes on as soon as the
/// condition holds, and fails with a message when it never does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kafka_testcontainers::Error> {
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use kafka_testcontainers::wait_for;
///
/// let calls = AtomicU32::new(0);
/// wait_for("the third call", Duration::from_secs(5), || async {
///     calls.fetch_add(1, Ordering::Relaxed) >= 2
/// })
/// .await?;
///
/// let err = wait_for("never", Duration::from_millis(20), || async { false })
///     .await
///     .unwrap_err();
/// assert!(err.to_string().contains("waiting for never"));
/// # Ok(())
/// # }
/// ```
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut condition: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for_value(what, timeout, || {
        let check = condition();
        async move { check.await.then_some(()) }
    })
    .await
}

/// Like [`wait_for`], for a condition that produces a value when it holds:
/// returns the first `Some`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kafka_testcontainers::Error> {
/// use std::time::Duration;
///
/// let mut attempts = 0;
/// let value = kafka_testcontainers::wait_for_value("a value", Duration::from_secs(5), || {
///     attempts += 1;
///     let ready = attempts >= 3;
///     async move { ready.then_some(42) }
/// })
/// .await?;
/// assert_eq!(value, 42);
/// # Ok(())
/// # }
/// ```
pub async fn wait_for_value<T, F, Fut>(what: &str, timeout: Duration, mut condition: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    let deadline = start + timeout;
    let mut interval = Duration::from_millis(1);
    loop {
        // The condition itself is bounded too: a check that hangs (a
        // request to a stopped broker) must not outlive the deadline.
        match tokio::time::timeout_at(deadline, condition()).await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(_) => break,
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 2).min(MAX_POLL_INTERVAL);
    }
    Err(Error::Timeout {
        what: what.to_owned(),
        waited: start.elapsed(),
    })
}

/// Polls `consumer` until it has handed out `count` records, at most for
/// `timeout`; returns them in the order received. More than `count` may be
/// returned when the last poll brought several.
///
/// On time-out the error lists what did arrive (`topic-partition@offset`,
/// key and value) against the count expected, and the last poll error if
/// polling failed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use kafka_client::producer::{Producer, ProducerRecord};
/// use kafka_client::consumer::Consumer;
/// use kafka_testcontainers::{KafkaCluster, collect_records, unique_group};
///
/// let cluster = KafkaCluster::new().topic("events", 1).start().await?;
/// let producer = Producer::new(cluster.producer_config()?.build()?)?;
/// producer.send_and_wait(ProducerRecord::new("events").value("one")).await?;
///
/// let mut consumer = Consumer::new(cluster.consumer_config(&unique_group("reader"))?.build()?)?;
/// consumer.subscribe(&["events"])?;
/// let records = collect_records(&mut consumer, 1, Duration::from_secs(10)).await?;
/// assert_eq!(records[0].value.as_deref(), Some(&b"one"[..]));
///
/// // Asking for more than there is fails with what arrived.
/// let err = collect_records(&mut consumer, 1, Duration::from_millis(200)).await.unwrap_err();
/// assert!(err.to_string().contains("expected 1 records"), "{err}");
/// # Ok(())
/// # }
/// ```
pub async fn collect_records(
    consumer: &mut Consumer,
    count: usize,
    timeout: Duration,
) -> Result<Vec<ConsumerRecord>> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut records = Vec::with_capacity(count);
    let mut last_error = None;
    while records.len() < count {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let slice = (deadline - now).min(Duration::from_millis(200));
        match tokio::time::timeout_at(deadline, consumer.poll(slice)).await {
            Ok(Ok(batch)) => {
                last_error = None;
                records.extend(batch);
            }
            Ok(Err(e)) => {
                // Retriable errors (a leader moving, a rebalance) are part
                // of what tests provoke: keep polling until the deadline.
                let fatal = !e.retriable();
                last_error = Some(e.to_string());
                if fatal {
                    break;
                }
                tokio::time::sleep_until(
                    (Instant::now() + Duration::from_millis(10)).min(deadline),
                )
                .await;
            }
            Err(_) => break,
        }
    }
    if records.len() >= count {
        return Ok(records);
    }
    Err(Error::MissingRecords {
        expected: count,
        received: records.iter().map(describe).collect(),
        waited: start.elapsed(),
        last_error,
    })
}

/// `topic-partition@offset key=… value=…`, bytes shown as text when they
/// are UTF-8 and short.
pub(crate) fn describe(record: &ConsumerRecord) -> String {
    fn show(bytes: Option<&[u8]>) -> String {
        match bytes {
            None => "null".to_owned(),
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) if s.len() <= 80 => format!("{s:?}"),
                Ok(s) => format!(
                    "{:?}... ({} bytes)",
                    s.chars().take(80).collect::<String>(),
                    b.len()
                ),
                Err(_) => format!("<{} bytes>", b.len()),
            },
        }
    }
    format!(
        "{}-{}@{} key={} value={}",
        record.topic,
        record.partition,
        record.offset,
        show(record.key.as_deref()),
        show(record.value.as_deref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_topic_names_and_distinct() {
        let names: std::collections::HashSet<String> =
            (0..1000).map(|_| unique_name("t/é x")).collect();
        assert_eq!(names.len(), 1000);
        for name in &names {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
                "{name}"
            );
            assert!(name.len() < 249, "{name}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_gives_up_at_the_deadline_with_the_condition_named() {
        let mut checks = 0u32;
        let err = wait_for("the moon", Duration::from_secs(2), || {
            checks += 1;
            async { false }
        })
        .await
        .expect_err("never true");
        match err {
            Error::Timeout { what, waited } => {
                assert_eq!(what, "the moon");
                assert!(waited >= Duration::from_secs(2), "{waited:?}");
                assert!(waited < Duration::from_secs(3), "{waited:?}");
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        // 1, 2, 4, ... 50 ms: about 45 checks in 2 s, not thousands.
        assert!((10..100).contains(&checks), "{checks} checks");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_condition_is_cut_off_at_the_deadline() {
        let err = wait_for("a hang", Duration::from_millis(300), || {
            std::future::pending::<bool>()
        })
        .await
        .expect_err("never completes");
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    }
}
