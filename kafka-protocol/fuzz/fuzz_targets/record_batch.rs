//! A consumer's view: a fetched records blob from the network goes through
//! batch iteration, CRC verification, bounded decompression and record
//! decoding. Nothing may panic, and decompression may never exceed its limit.
#![no_main]

use bytes::Bytes;
use kafka_protocol::records::{Batches, DecodeOptions};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    // Half the inputs skip the CRC check so the fuzzer reaches the record
    // decoder and the decompressors without having to forge checksums.
    let verify_crc = data.first().is_some_and(|b| b & 1 == 0);
    let options = DecodeOptions {
        decompression_limit: LIMIT,
        verify_crc,
        ..DecodeOptions::default()
    };
    for batch in Batches::with_options(Bytes::copy_from_slice(data), options).take(64) {
        let Ok(batch) = batch else { break };
        let _ = batch.transaction_marker();
        if let Ok(records) = batch.records() {
            for record in records.take(10_000) {
                let Ok(record) = record else { break };
                for header in record.headers.iter() {
                    let _ = header.key();
                }
            }
        }
    }
});
