//! The way to the active controller from outside the quorum: a broker's
//! `NodeToControllerChannelManager` (registration, heartbeats, `AlterPartition`, forwarded admin
//! requests) and an admin client bootstrapped with the controllers (KIP-919's
//! `bootstrap.controllers`).
//!
//! It keeps one connection per controller and a guess of which one is active. The guess moves
//! when a caller learns the leader (a fetch response names it) or when a controller does not
//! answer or answers `NOT_CONTROLLER` (`rotate`); a controller that is not active closes the
//! connection of a request it cannot serve, so a dead guess costs one round trip.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use super::versions::controller_version;
use super::{ClientError, Connection};

/// `controller.quorum.request.timeout.ms` (2000): a request to a controller unanswered this
/// long is abandoned.
pub const CONTROLLER_REQUEST_TIMEOUT_MS: u64 = 2000;

pub struct ControllerChannel {
    /// Every controller's listener, by node id (`controller.quorum.voters`).
    voters: Vec<(i32, SocketAddr)>,
    client_id: String,
    /// Index into `voters` of the controller believed active.
    guess: Mutex<usize>,
    connections: Mutex<BTreeMap<i32, Arc<Connection>>>,
    delays: super::RequestDelays,
}

impl ControllerChannel {
    pub fn new(voters: &BTreeMap<i32, SocketAddr>, client_id: &str) -> Self {
        assert!(!voters.is_empty(), "a cluster has at least one controller");
        ControllerChannel {
            voters: voters.iter().map(|(&id, &addr)| (id, addr)).collect(),
            client_id: client_id.to_string(),
            guess: Mutex::new(0),
            connections: Mutex::new(BTreeMap::new()),
            delays: super::RequestDelays::default(),
        }
    }

    /// Its requests are held as `delays` says (a broker's `delay` fault on `AlterPartition`).
    pub fn with_delays(mut self, delays: super::RequestDelays) -> Self {
        self.delays = delays;
        self
    }

    /// The controller believed active.
    pub fn active(&self) -> i32 {
        self.voters[*self.guess.lock().expect("guess lock")].0
    }

    /// Learned from elsewhere (a fetch response): `leader` is active.
    pub fn set_active(&self, leader: i32) {
        if let Some(index) = self.voters.iter().position(|(id, _)| *id == leader) {
            *self.guess.lock().expect("guess lock") = index;
        }
    }

    /// The guess was wrong: try the next controller.
    pub fn rotate(&self) {
        let mut guess = self.guess.lock().expect("guess lock");
        *guess = (*guess + 1) % self.voters.len();
    }

    /// `to` turned out not to be active: try the next controller, unless the guess has moved
    /// on meanwhile (someone learned the leader).
    pub fn rotate_from(&self, to: i32) {
        let mut guess = self.guess.lock().expect("guess lock");
        if self.voters[*guess].0 == to {
            *guess = (*guess + 1) % self.voters.len();
        }
    }

    /// Sends to the controller believed active; a transport failure moves the guess on.
    pub async fn send(&self, request: RequestKind) -> Result<ResponseKind, ClientError> {
        let to = self.active();
        let result = self.send_to(to, request).await;
        if result.is_err() {
            self.rotate_from(to);
        }
        result
    }

    /// Sends to one controller, at the newest version the controllers serve.
    pub async fn send_to(
        &self,
        to: i32,
        request: RequestKind,
    ) -> Result<ResponseKind, ClientError> {
        let version = controller_version(api_of(&request));
        self.send_at(to, version, request).await
    }

    /// Sends to one controller at `version`.
    pub async fn send_at(
        &self,
        to: i32,
        version: i16,
        request: RequestKind,
    ) -> Result<ResponseKind, ClientError> {
        let api = api_of(&request);
        let connection = self.connection(to).await?;
        let timeout = Duration::from_millis(CONTROLLER_REQUEST_TIMEOUT_MS);
        let result = connection.send(api, version, &request, timeout).await;
        if result.is_err() {
            self.connections
                .lock()
                .expect("connections lock")
                .remove(&to);
        }
        result
    }

    async fn connection(&self, to: i32) -> Result<Arc<Connection>, ClientError> {
        let open = self
            .connections
            .lock()
            .expect("connections lock")
            .get(&to)
            .filter(|c| !c.is_closed())
            .cloned();
        if let Some(open) = open {
            return Ok(open);
        }
        let addr = self
            .voters
            .iter()
            .find(|(id, _)| *id == to)
            .map(|(_, addr)| *addr)
            .ok_or_else(|| ClientError::NotSent(format!("no controller {to}")))?;
        let timeout = Duration::from_millis(CONTROLLER_REQUEST_TIMEOUT_MS);
        let connection = match tokio::time::timeout(
            timeout,
            Connection::connect_with(addr, &self.client_id, self.delays.clone()),
        )
        .await
        {
            Ok(connected) => Arc::new(connected?),
            Err(_) => return Err(ClientError::Timeout),
        };
        self.connections
            .lock()
            .expect("connections lock")
            .insert(to, connection.clone());
        Ok(connection)
    }
}

/// The API of a request.
pub fn api_of(request: &RequestKind) -> ApiKey {
    match request {
        RequestKind::Fetch(_) => ApiKey::Fetch,
        RequestKind::FetchSnapshot(_) => ApiKey::FetchSnapshot,
        RequestKind::BrokerRegistration(_) => ApiKey::BrokerRegistration,
        RequestKind::BrokerHeartbeat(_) => ApiKey::BrokerHeartbeat,
        RequestKind::AlterPartition(_) => ApiKey::AlterPartition,
        RequestKind::CreateTopics(_) => ApiKey::CreateTopics,
        RequestKind::DeleteTopics(_) => ApiKey::DeleteTopics,
        RequestKind::CreatePartitions(_) => ApiKey::CreatePartitions,
        RequestKind::ElectLeaders(_) => ApiKey::ElectLeaders,
        RequestKind::AlterPartitionReassignments(_) => ApiKey::AlterPartitionReassignments,
        RequestKind::AllocateProducerIds(_) => ApiKey::AllocateProducerIds,
        RequestKind::ApiVersions(_) => ApiKey::ApiVersions,
        other => panic!("not a request for a controller: {other:?}"),
    }
}
