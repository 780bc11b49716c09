//! A client's connection to one broker, as Kafka's `NetworkClient` keeps it: many requests in
//! flight, matched to responses by correlation id; a request that times out closes the
//! connection (its outcome, and that of every other request in flight, is then unknown).
//!
//! Timeouts are swept per connection, as `NetworkClient.handleTimedOutRequests` does on each
//! poll: one task sleeps until the earliest deadline in flight, rather than one timer per
//! request (under the simulator every timer is an entry in one heap, kept until it fires).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::codec::{decode_response, encode_request, response_correlation_id};
use super::frame::{read_frame, write_frame};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The request was never sent: it certainly did not happen.
    NotSent(String),
    /// The connection closed with the request in flight: it may or may not have happened.
    Disconnected,
    /// No response within the request timeout: it may or may not have happened.
    Timeout,
    /// The response could not be decoded.
    Protocol(String),
}

impl ClientError {
    /// Whether the request may have taken effect (Jepsen's `info` rather than `fail`).
    pub fn outcome_unknown(&self) -> bool {
        !matches!(self, ClientError::NotSent(_))
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NotSent(why) => write!(f, "not sent: {why}"),
            ClientError::Disconnected => f.write_str("disconnected"),
            ClientError::Timeout => f.write_str("timeout"),
            ClientError::Protocol(why) => write!(f, "protocol error: {why}"),
        }
    }
}

type Reply = oneshot::Sender<Result<ResponseKind, ClientError>>;

/// A request waiting for its response.
struct Waiter {
    api: ApiKey,
    version: i16,
    reply: Reply,
    /// When it times out; `None` until the request is written.
    deadline: Option<Instant>,
}

#[derive(Default)]
struct InFlight {
    closed: bool,
    next_correlation_id: i32,
    waiting: BTreeMap<i32, Waiter>,
    /// The deadline the sweeper sleeps until, if it sleeps until one.
    armed: Option<Instant>,
}

impl InFlight {
    fn close(&mut self) {
        self.closed = true;
        for (_, waiter) in std::mem::take(&mut self.waiting) {
            let _ = waiter.reply.send(Err(ClientError::Disconnected));
        }
    }

    fn earliest_deadline(&self) -> Option<Instant> {
        self.waiting.values().filter_map(|w| w.deadline).min()
    }
}

/// What the connection's tasks share.
#[derive(Default)]
struct Shared {
    in_flight: Mutex<InFlight>,
    /// Wakes the sweeper: a deadline earlier than the one it sleeps until, or the close.
    sweep: Notify,
}

pub struct Connection {
    client_id: String,
    writer: tokio::sync::Mutex<WriteHalf<TcpStream>>,
    shared: Arc<Shared>,
    reader: tokio::task::JoinHandle<()>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.sweeper.abort();
    }
}

impl Connection {
    pub async fn connect(addr: SocketAddr, client_id: &str) -> Result<Connection, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError::NotSent(format!("connect to {addr}: {e}")))?;
        let (read_half, write_half) = tokio::io::split(stream);
        let shared = Arc::new(Shared::default());
        let reader = tokio::spawn(read_responses(read_half, shared.clone()));
        let sweeper = tokio::spawn(sweep_timeouts(shared.clone()));
        Ok(Connection {
            client_id: client_id.to_string(),
            writer: tokio::sync::Mutex::new(write_half),
            shared,
            reader,
            sweeper,
        })
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.shared.in_flight.lock().expect("in-flight lock")
    }

    pub fn is_closed(&self) -> bool {
        self.in_flight().closed
    }

    pub fn close(&self) {
        self.in_flight().close();
        self.shared.sweep.notify_one();
    }

    /// Sends a request and waits for its response, up to `timeout`.
    pub async fn send(
        &self,
        api: ApiKey,
        version: i16,
        request: &RequestKind,
        timeout: Duration,
    ) -> Result<ResponseKind, ClientError> {
        let (tx, rx) = oneshot::channel();
        let waiter = Waiter {
            api,
            version,
            reply: tx,
            deadline: None,
        };
        let correlation_id = self.next_correlation_id(Some(waiter))?;
        let frame = encode_request(api, version, correlation_id, &self.client_id, request)
            .map_err(|e| ClientError::NotSent(e.to_string()))?;
        self.write(&frame).await?;
        self.set_deadline(correlation_id, timeout);
        match rx.await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Disconnected),
        }
    }

    /// Starts the request's timeout (as `tokio::time::timeout` would, at least 1 ms), waking the
    /// sweeper if it sleeps until later.
    fn set_deadline(&self, correlation_id: i32, timeout: Duration) {
        let deadline = Instant::now() + timeout.max(Duration::from_millis(1));
        let mut in_flight = self.in_flight();
        let Some(waiter) = in_flight.waiting.get_mut(&correlation_id) else {
            return; // answered or closed already
        };
        waiter.deadline = Some(deadline);
        if in_flight.armed.is_none_or(|armed| deadline < armed) {
            in_flight.armed = Some(deadline);
            drop(in_flight);
            self.shared.sweep.notify_one();
        }
    }

    /// Sends a request that gets no response (`Produce` with `acks=0`).
    pub async fn send_oneway(
        &self,
        api: ApiKey,
        version: i16,
        request: &RequestKind,
    ) -> Result<(), ClientError> {
        let correlation_id = self.next_correlation_id(None)?;
        let frame = encode_request(api, version, correlation_id, &self.client_id, request)
            .map_err(|e| ClientError::NotSent(e.to_string()))?;
        self.write(&frame).await
    }

    /// A fresh correlation id, registering the waiter for its response (if one is expected).
    fn next_correlation_id(&self, waiter: Option<Waiter>) -> Result<i32, ClientError> {
        let mut in_flight = self.in_flight();
        if in_flight.closed {
            return Err(ClientError::NotSent("connection closed".into()));
        }
        let id = in_flight.next_correlation_id;
        in_flight.next_correlation_id = id.wrapping_add(1);
        if let Some(waiter) = waiter {
            in_flight.waiting.insert(id, waiter);
        }
        Ok(id)
    }

    async fn write(&self, frame: &Bytes) -> Result<(), ClientError> {
        let mut writer = self.writer.lock().await;
        if let Err(e) = write_frame(&mut *writer, frame).await {
            self.close();
            return Err(ClientError::NotSent(format!("write: {e}")));
        }
        Ok(())
    }
}

async fn read_responses(mut reader: ReadHalf<TcpStream>, shared: Arc<Shared>) {
    loop {
        let frame = match read_frame(&mut reader).await {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => break,
        };
        let Ok(correlation_id) = response_correlation_id(&frame) else {
            break;
        };
        let waiting = shared
            .in_flight
            .lock()
            .expect("in-flight lock")
            .waiting
            .remove(&correlation_id);
        // A response nobody waits for (its request timed out) is dropped, as Kafka's client does.
        if let Some(waiter) = waiting {
            let decoded = decode_response(waiter.api, waiter.version, frame)
                .map_err(|e| ClientError::Protocol(e.0));
            let _ = waiter.reply.send(decoded);
        }
    }
    shared.in_flight.lock().expect("in-flight lock").close();
    shared.sweep.notify_one();
}

/// Times out the requests in flight: sleeps until the earliest deadline it knows of (a
/// request answered before then leaves the sleep to run out, then the next earliest is
/// found), fails what is due with `Timeout` and closes the connection, which fails every
/// other request in flight (`Disconnected`). Ends when the connection closes.
async fn sweep_timeouts(shared: Arc<Shared>) {
    loop {
        let armed = {
            let mut in_flight = shared.in_flight.lock().expect("in-flight lock");
            if in_flight.closed {
                return;
            }
            let now = Instant::now();
            let due: Vec<i32> = in_flight
                .waiting
                .iter()
                .filter(|(_, w)| w.deadline.is_some_and(|d| d <= now))
                .map(|(&id, _)| id)
                .collect();
            if !due.is_empty() {
                for id in due {
                    if let Some(waiter) = in_flight.waiting.remove(&id) {
                        let _ = waiter.reply.send(Err(ClientError::Timeout));
                    }
                }
                in_flight.close();
                return;
            }
            in_flight.armed = in_flight.earliest_deadline();
            in_flight.armed
        };
        match armed {
            Some(deadline) => {
                tokio::select! {
                    biased;
                    _ = shared.sweep.notified() => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                }
            }
            None => shared.sweep.notified().await,
        }
    }
}
