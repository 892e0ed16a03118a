//! A tour of the codec: build a compressed record batch, wrap it in a
//! ProduceRequest frame exactly as a producer sends it, then read it back the
//! way a broker does (cut the frame, decode header and body, verify the
//! batch CRC, decompress, decode the records), and print what happened.
//!
//! `cargo run --release --example codec_tour`

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::frame::{FrameDecoder, decode_request, encode_request};
use kafka_protocol::messages::RequestKind;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest};
use kafka_protocol::records::{BatchBuilder, Batches, Compression, Header};

const RECORDS: usize = 1_000;
const PRODUCE_VERSION: i16 = 9;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;

    // 1. A producer's batch: records go straight into wire bytes.
    let mut builder = BatchBuilder::new(1024 * 1024);
    builder
        .set_compression(Compression::Zstd)
        .set_producer(4_000, 0, 0);
    let trace = [Header::from_static(
        "trace-id",
        Some(Bytes::from_static(b"tour-1")),
    )];
    let mut raw_bytes = 0;
    for i in 0..RECORDS {
        let key = format!("order-{}", i % 10);
        let value = format!(
            "{{\"order\":{i},\"amount\":{},\"currency\":\"EUR\"}}",
            100 + i % 37
        );
        raw_bytes += key.len() + value.len();
        builder.append(
            now_ms + i as i64,
            Some(key.as_bytes()),
            Some(value.as_bytes()),
            &trace,
        )?;
    }
    let batch = builder.finish()?;
    println!(
        "built a zstd record batch: {RECORDS} records, {raw_bytes} bytes of keys+values -> {} bytes on the wire",
        batch.len()
    );

    // 2. The ProduceRequest frame a producer writes to the socket.
    let request = ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "orders".into(),
            partition_data: vec![PartitionProduceData {
                index: 3,
                records: Some(batch),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut socket = BytesMut::new();
    encode_request(
        &mut socket,
        17,
        Some("codec-tour"),
        PRODUCE_VERSION,
        &request,
    )?;
    println!(
        "encoded ProduceRequest v{PRODUCE_VERSION} (request header v{}): {} bytes including the size prefix",
        ApiKey::Produce.request_header_version(PRODUCE_VERSION),
        socket.len()
    );

    // 3. The broker side: cut the frame, decode header and body.
    let frame = FrameDecoder::default()
        .decode(&mut socket)?
        .ok_or("the frame should be complete")?;
    let (header, body) = decode_request(frame)?;
    let RequestKind::Produce(decoded) = body else {
        return Err(format!(
            "expected a Produce request, got {:?}",
            header.request_api_key
        )
        .into());
    };
    assert_eq!(decoded, request, "the request survives the round trip");
    println!(
        "decoded: api {} v{}, correlation id {}, client id {:?}, acks {}",
        ApiKey::try_from(header.request_api_key)?.name(),
        header.request_api_version,
        header.correlation_id,
        header.client_id.as_deref().unwrap_or(""),
        decoded.acks
    );

    // 4. The records: CRC checked, decompressed (bounded), decoded zero-copy.
    let mut seen = 0;
    for topic in &decoded.topic_data {
        for partition in &topic.partition_data {
            let records = partition.records.clone().unwrap_or_default();
            for batch in Batches::new(records) {
                let batch = batch?;
                let header = batch.header();
                println!(
                    "batch for {}-{}: CRC ok, compression {}, producer id {} epoch {}, offsets {}..={}",
                    topic.name,
                    partition.index,
                    header.compression()?.name(),
                    header.producer_id,
                    header.producer_epoch,
                    batch.base_offset(),
                    batch.last_offset()
                );
                for record in batch.records()? {
                    let record = record?;
                    if seen < 2 || seen == RECORDS - 1 {
                        println!(
                            "  offset {:>4}: key {:?} value {:?} headers {}",
                            record.offset,
                            String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()),
                            String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()),
                            record.headers.len()
                        );
                    } else if seen == 2 {
                        println!("  ...");
                    }
                    seen += 1;
                }
            }
        }
    }
    assert_eq!(seen, RECORDS, "every record comes back");
    println!(
        "done: {seen} of {RECORDS} records read back intact in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
