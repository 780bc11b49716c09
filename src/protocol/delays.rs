//! Requests held on their way out: the `delay` fault. A node's `RequestDelays` names, per Kafka
//! API, how long each request of that API it sends is held before it is written to the wire, so
//! a late request lands after the world has moved on (the hanging transaction of KIP-890: a
//! `Produce` that arrives after its transaction was aborted).
//!
//! The caller's request timeout runs from the moment it sends, as it does while a real network
//! holds the bytes: a request held past it times out at the caller, which may retry or give up,
//! and the held bytes still arrive later on the old connection. Other requests on the same
//! connection are not held behind it (as through a proxy that holds one API's requests).
//!
//! The sending process holds them: if it exits, is killed or crashes meanwhile, what it held
//! is gone with it (a slow network stack, not a slow wire).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

/// Shared between the fault schedule (which sets and clears it) and every connection the node
/// opens. Empty everywhere outside a `delay` fault, and always in a real deployment.
#[derive(Clone, Debug, Default)]
pub struct RequestDelays(Arc<Mutex<BTreeMap<i16, u64>>>);

impl RequestDelays {
    /// Holds each request of `api` for `by_ms` from now on.
    pub fn hold(&self, api: ApiKey, by_ms: u64) {
        self.0
            .lock()
            .expect("delays lock")
            .insert(api as i16, by_ms);
    }

    /// Requests of `api` go out at once again (those already held stay held).
    pub fn release(&self, api: ApiKey) {
        self.0.lock().expect("delays lock").remove(&(api as i16));
    }

    /// Every API's requests go out at once again.
    pub fn release_all(&self) {
        self.0.lock().expect("delays lock").clear();
    }

    /// How long a request of `api` sent now is held.
    pub fn of(&self, api: ApiKey) -> Option<Duration> {
        self.0
            .lock()
            .expect("delays lock")
            .get(&(api as i16))
            .map(|&ms| Duration::from_millis(ms))
    }
}

/// The API a scenario's `api = "…"` names (the parser accepts only these names).
pub fn api_named(name: &str) -> Option<ApiKey> {
    ApiKey::iter().find(|k| format!("{k:?}") == name)
}
