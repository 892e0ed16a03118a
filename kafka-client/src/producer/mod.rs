//! The producer: records are batched per partition in wire format by the
//! [`accumulator`], and sent by a background sender task.

pub mod accumulator;
