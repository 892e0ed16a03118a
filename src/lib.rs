#![doc = include_str!("../README.md")]
//!
//! This facade re-exports the workspace crates so that applications depend on
//! one crate: [`protocol`] is the wire codec and [`client`] the async client.

pub use kafka_client as client;
pub use kafka_protocol as protocol;
