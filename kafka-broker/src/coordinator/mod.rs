//! The coordinators: consumer groups and transactions.

pub mod group;
