//! A client's connection to one broker, as Kafka's `NetworkClient` keeps it: many requests in
//! flight, matched to responses by correlation id; a request that times out closes the
//! connection (its outcome, and that of every other request in flight, is then unknown).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::codec::{decode_response, encode_request, response_correlation_id};
use super::delays::RequestDelays;
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

/// A request written, its response to come (`Connection::wait`).
pub struct Sent(oneshot::Receiver<Result<ResponseKind, ClientError>>);

#[derive(Default)]
struct InFlight {
    closed: bool,
    next_correlation_id: i32,
    waiting: BTreeMap<i32, (ApiKey, i16, Reply)>,
}

impl InFlight {
    fn close(&mut self) {
        self.closed = true;
        for (_, (_, _, reply)) in std::mem::take(&mut self.waiting) {
            let _ = reply.send(Err(ClientError::Disconnected));
        }
    }
}

pub struct Connection {
    client_id: String,
    /// Frames to write, in order, by the connection's writer task (Kafka's `Selector` writes a
    /// connection's requests in the order they were sent, without blocking the sender).
    outbound: tokio::sync::mpsc::UnboundedSender<Bytes>,
    /// Shared with the writer task and a held request's task, which keeps the stream open
    /// until it has written.
    writer: Arc<tokio::sync::Mutex<WriteHalf<TcpStream>>>,
    in_flight: Arc<Mutex<InFlight>>,
    reader: tokio::task::JoinHandle<()>,
    delays: RequestDelays,
    held: Arc<Mutex<Held>>,
}

/// Frames the `delay` fault holds, each with when it goes out, and whether a task is writing
/// them.
#[derive(Default)]
struct Held {
    frames: std::collections::VecDeque<(tokio::time::Instant, Bytes)>,
    writing: bool,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    pub async fn connect(addr: SocketAddr, client_id: &str) -> Result<Connection, ClientError> {
        Self::connect_with(addr, client_id, RequestDelays::default()).await
    }

    /// A connection whose requests are held as `delays` says (the `delay` fault).
    pub async fn connect_with(
        addr: SocketAddr,
        client_id: &str,
        delays: RequestDelays,
    ) -> Result<Connection, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError::NotSent(format!("connect to {addr}: {e}")))?;
        let (read_half, write_half) = tokio::io::split(stream);
        let in_flight = Arc::new(Mutex::new(InFlight::default()));
        let reader = tokio::spawn(read_responses(read_half, in_flight.clone()));
        let writer = Arc::new(tokio::sync::Mutex::new(write_half));
        let (outbound, frames) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(write_frames(frames, writer.clone(), in_flight.clone()));
        Ok(Connection {
            client_id: client_id.to_string(),
            outbound,
            writer,
            in_flight,
            reader,
            delays,
            held: Arc::default(),
        })
    }

    pub fn is_closed(&self) -> bool {
        self.in_flight.lock().expect("in-flight lock").closed
    }

    pub fn close(&self) {
        self.in_flight.lock().expect("in-flight lock").close();
    }

    /// Sends a request and waits for its response, up to `timeout`.
    pub async fn send(
        &self,
        api: ApiKey,
        version: i16,
        request: &RequestKind,
        timeout: Duration,
    ) -> Result<ResponseKind, ClientError> {
        let sent = self.start(api, version, request)?;
        self.wait(sent, timeout).await
    }

    /// Sends a request without waiting: requests started one after the other reach the broker
    /// in that order, as on Kafka's connections. `wait` then waits for its response.
    pub fn start(
        &self,
        api: ApiKey,
        version: i16,
        request: &RequestKind,
    ) -> Result<Sent, ClientError> {
        let (tx, rx) = oneshot::channel();
        let correlation_id = self.next_correlation_id(Some((api, version, tx)))?;
        let frame = encode_request(api, version, correlation_id, &self.client_id, request)
            .map_err(|e| ClientError::NotSent(e.to_string()))?;
        self.write(frame, api)?;
        Ok(Sent(rx))
    }

    /// The response to a request `start` wrote, up to `timeout` from now.
    pub async fn wait(&self, sent: Sent, timeout: Duration) -> Result<ResponseKind, ClientError> {
        match tokio::time::timeout(timeout, sent.0).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::Disconnected),
            Err(_) => {
                self.close();
                Err(ClientError::Timeout)
            }
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
        self.write(frame, api)
    }

    /// A fresh correlation id, registering the waiter for its response (if one is expected).
    fn next_correlation_id(
        &self,
        waiter: Option<(ApiKey, i16, Reply)>,
    ) -> Result<i32, ClientError> {
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
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

    /// Writes `frame` after `by`, whatever the caller has done meanwhile (timed out, closed the
    /// connection): the held bytes were already on their way. Held frames keep their order on
    /// the wire (one task writes them, each at its time), as a stream's bytes do.
    fn write_later(&self, frame: Bytes, by: Duration) {
        let mut held = self.held.lock().expect("held lock");
        held.frames
            .push_back((tokio::time::Instant::now() + by, frame));
        if held.writing {
            return;
        }
        held.writing = true;
        let (queue, writer) = (self.held.clone(), self.writer.clone());
        tokio::spawn(async move {
            loop {
                let due = {
                    let mut held = queue.lock().expect("held lock");
                    match held.frames.front() {
                        Some((due, _)) => *due,
                        None => {
                            held.writing = false;
                            return;
                        }
                    }
                };
                tokio::time::sleep_until(due).await;
                let frame = queue.lock().expect("held lock").frames.pop_front();
                if let Some((_, frame)) = frame {
                    let mut writer = writer.lock().await;
                    let _ = write_frame(&mut *writer, &frame).await;
                }
            }
        });
    }

    /// Queues `frame` for the writer task, or holds it (the `delay` fault).
    fn write(&self, frame: Bytes, api: ApiKey) -> Result<(), ClientError> {
        if let Some(by) = self.delays.of(api) {
            self.write_later(frame, by);
            return Ok(());
        }
        self.outbound.send(frame).map_err(|_| {
            self.close();
            ClientError::NotSent("connection closed".into())
        })
    }
}

/// The connection's writer: each frame in turn; a failed write closes the connection (what was
/// in flight may or may not have reached the broker).
async fn write_frames(
    mut frames: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
    writer: Arc<tokio::sync::Mutex<WriteHalf<TcpStream>>>,
    in_flight: Arc<Mutex<InFlight>>,
) {
    while let Some(frame) = frames.recv().await {
        let mut writer = writer.lock().await;
        if write_frame(&mut *writer, &frame).await.is_err() {
            in_flight.lock().expect("in-flight lock").close();
            return;
        }
    }
}

async fn read_responses(mut reader: ReadHalf<TcpStream>, in_flight: Arc<Mutex<InFlight>>) {
    loop {
        let frame = match read_frame(&mut reader).await {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => break,
        };
        let Ok(correlation_id) = response_correlation_id(&frame) else {
            break;
        };
        let waiting = in_flight
            .lock()
            .expect("in-flight lock")
            .waiting
            .remove(&correlation_id);
        // A response nobody waits for (its request timed out) is dropped, as Kafka's client does.
        if let Some((api, version, reply)) = waiting {
            let decoded =
                decode_response(api, version, frame).map_err(|e| ClientError::Protocol(e.0));
            let _ = reply.send(decoded);
        }
    }
    in_flight.lock().expect("in-flight lock").close();
}
