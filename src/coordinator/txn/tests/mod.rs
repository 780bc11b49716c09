//! Tests of the transaction coordinator: exact outputs of request, append, marker and timer
//! sequences, the `__transaction_state` record fixtures, loading, and the wire mapping. All
//! pure; they run in the default (madsim) build and the real one alike.

mod fencing_tests;
mod load_tests;
mod record_fixtures;
mod support;
mod transaction_tests;
mod wire_tests;
