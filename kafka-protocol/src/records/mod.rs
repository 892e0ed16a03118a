//! Record batches: the data inside Produce requests, Fetch responses and logs.
//!
//! - [`Batches`] frames the batches in a buffer (dispatching on the magic
//!   byte, skipping a partial trailing batch as Kafka clients do) and yields
//!   [`RecordBatch`]es whose header is parsed and CRC checked.
//! - [`RecordBatch::records`] decodes records lazily and zero-copy: keys,
//!   values and headers are [`bytes::Bytes`] slices of the input (or of the
//!   inflated records section); [`RecordBatch::to_records`] collects them.
//! - [`BatchBuilder`] writes v2 batches straight into wire bytes.
//! - [`Compression`] is the codec set (gzip, snappy in xerial framing, LZ4
//!   frames, zstd) with bounded decompression.
//! - [`control`] reads and writes transaction markers.
//! - Legacy magic 0/1 message sets are read (never written) through the same
//!   types, so a consumer can read old data.
//!
//! Nothing here trusts a length from the wire: a count or length beyond the
//! input is a [`DecodeError`](crate::DecodeError), never an allocation or a panic.
//!
//! ```
//! use bytes::Bytes;
//! use kafka_protocol::records::{BatchBuilder, Batches, Header};
//!
//! let mut builder = BatchBuilder::new(16 * 1024);
//! let headers = [Header::from_static("trace", Some(Bytes::from_static(b"1")))];
//! builder.append(1_700_000_000_000, Some(b"k"), Some(b"v"), &headers).unwrap();
//! let wire = builder.finish().unwrap();
//!
//! for batch in Batches::new(wire) {
//!     for record in batch.unwrap().records().unwrap() {
//!         let record = record.unwrap();
//!         assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
//!         assert_eq!(record.headers.iter().next().unwrap().key(), "trace");
//!     }
//! }
//! ```

mod batch;
mod builder;
mod compression;
pub mod control;
mod crc;
mod cursor;
mod legacy;
mod record;

pub use batch::{
    BatchHeader, Batches, DecodeOptions, RECORD_BATCH_OVERHEAD, RecordBatch, Records,
    TimestampType, set_base_offset, set_partition_leader_epoch, set_producer_state,
};
pub use builder::BatchBuilder;
pub use compression::{Compression, DEFAULT_DECOMPRESSION_LIMIT};
pub use control::{ControlRecordType, TransactionMarker};
pub use crc::crc32c;
pub use record::{Header, HeaderIter, Headers, Record};
