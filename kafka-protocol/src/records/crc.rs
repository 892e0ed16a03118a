//! The checksum of v2 record batches.

/// The CRC-32C (Castagnoli) of `data`: what a v2 batch header carries for
/// its bytes from the attributes on.
///
/// It runs on every batch a producer builds and every batch a broker or
/// consumer reads, so it uses the carry-less multiply folding of
/// [`crc_fast`], picked for the CPU at run time.
///
/// ```
/// assert_eq!(kafka_protocol::records::crc32c(b"123456789"), 0xe306_9283);
/// ```
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    // The 32-bit algorithms' results fit in the low half.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32
}
