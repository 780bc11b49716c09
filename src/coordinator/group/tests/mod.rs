//! Tests of the classic group coordinator: exact outputs of request and timer sequences, the
//! `__consumer_offsets` record fixtures, loading, and the partition hash. All pure; they run in
//! the default (madsim) build and the real one alike.

mod load_tests;
mod membership_tests;
mod offset_tests;
mod rebalance_tests;
mod record_fixtures;
mod support;
mod txn_offset_tests;
mod wire_tests;
