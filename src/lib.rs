//! Samsa: a deterministic simulation of a full Kafka cluster.
//!
//! The cluster (storage, broker, clients) reaches the world only through `world`: the disk, the
//! clock and connections. Under `--cfg madsim` those are simulated; without it they are real.

pub mod broker;
pub mod client;
pub mod controller;
pub mod coordinator;
pub mod dump;
pub mod explore;
pub mod metadata;
pub mod output;
pub mod protocol;
pub mod raft;
#[cfg(madsim)]
pub mod runner;
pub mod scenario;
pub mod storage;
pub mod world;
