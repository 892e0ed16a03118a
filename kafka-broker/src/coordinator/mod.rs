//! The coordinators: consumer groups and transactions.

pub mod group;
pub(crate) mod txn;
