//! Kafka's coordinators as pure state machines: `group` is the classic consumer-group
//! coordinator (Kafka's `group-coordinator` module). A driver on the broker that leads a
//! `__consumer_offsets` partition feeds it requests and ticks, appends the records it returns and
//! sends its responses once those records are committed.

pub mod group;
pub mod txn;
