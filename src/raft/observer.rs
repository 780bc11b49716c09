//! A broker's side of the metadata log: an observer (KIP-595), a replica that fetches the log
//! from the leader as a voter does but never votes, and whose position the leader counts neither
//! toward the high watermark nor toward check-quorum. Kafka's broker runs `KafkaRaftClient` in
//! observer mode, whose `FollowerState` this is; a pure state machine like `RaftCore`: the caller
//! sends what `poll` returns, hands back the answer (or its failure), and replays the entries
//! below the high watermark into its metadata image.
//!
//! An observer behind the leader's log start is sent the leader's snapshot id and fetches the
//! snapshot with `FetchSnapshot` (KIP-630), keeping its bytes in memory until they are whole;
//! its log then starts, empty, at the snapshot's end offset.

use std::collections::BTreeSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use bytes::Bytes;

use super::core::end_offset_for_epoch;
use super::messages::{Entry, Epoch, FetchBody, Message, NodeId, SnapshotBody, SnapshotId};

/// `controller.quorum.request.timeout.ms` (2000): a fetch unanswered this long is abandoned (its
/// late answer, if any, is ignored).
pub const REQUEST_TIMEOUT_MS: u64 = 2000;
/// `controller.quorum.fetch.timeout.ms` (2000): a leader that answers no fetch this long is
/// forgotten, and the observer asks a random voter who leads, as Kafka's observer goes back to
/// its bootstrap voters.
pub const FETCH_TIMEOUT_MS: u64 = 2000;
/// `controller.quorum.retry.backoff.ms` (20): the wait after a failed or refused fetch.
pub const RETRY_BACKOFF_MS: u64 = 20;
/// The wait of a caught-up observer between fetches; a stand-in for the leader's long poll
/// (`fetch.max.wait.ms`), the same as a voter's.
pub const FETCH_IDLE_MS: u64 = 50;

/// What an answer changed in the observer's log, for the caller to act on, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObserverEvent {
    /// `count` entries were appended from `from_offset`.
    Appended { from_offset: i64, count: usize },
    /// The entries at and above `end_offset` were removed. None was committed: an observer never
    /// truncates below its high watermark (it panics first, that would be a raft safety bug).
    Truncated { end_offset: i64 },
    /// The high watermark moved up to this offset: the entries below it are committed.
    HighWatermark(i64),
    /// A whole snapshot was fetched: the state below its end offset is in `bytes` (the file's
    /// content), and the log starts, empty, at its end.
    SnapshotLoaded { snapshot: SnapshotId, bytes: Bytes },
}

/// The one fetch in flight.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    to: NodeId,
    sent_ms: u64,
    fetch_offset: i64,
    /// A `FetchSnapshot` of this snapshot from this position, rather than a `Fetch`.
    snapshot: Option<(SnapshotId, i64)>,
}

pub struct ObserverCore {
    id: NodeId,
    /// `controller.quorum.voters`, in order, to pick a random one from.
    voters: Vec<NodeId>,
    epoch: Epoch,
    leader: Option<NodeId>,
    /// The offset of `log[0]`; the state below it came in the snapshot `start_snapshot`.
    log_start: i64,
    start_snapshot: Option<SnapshotId>,
    log: Vec<Entry>,
    /// The snapshot being fetched from the leader and its bytes so far.
    fetching: Option<(SnapshotId, Vec<u8>)>,
    high_watermark: i64,
    in_flight: Option<InFlight>,
    next_fetch_ms: u64,
    /// When the known leader is forgotten, unless it answers a fetch before.
    leader_deadline_ms: u64,
    rng: ChaCha8Rng,
}

impl ObserverCore {
    /// An observer with an empty log, knowing no leader yet. `seed` drives its choice of voters.
    pub fn new(id: NodeId, voters: BTreeSet<NodeId>, seed: u64) -> Self {
        assert!(!voters.is_empty(), "observer {id}: no voters to fetch from");
        assert!(
            !voters.contains(&id),
            "observer {id} is one of the voters {voters:?}: a voter runs RaftCore"
        );
        ObserverCore {
            id,
            voters: voters.into_iter().collect(),
            epoch: 0,
            leader: None,
            log_start: 0,
            start_snapshot: None,
            log: Vec::new(),
            fetching: None,
            high_watermark: 0,
            in_flight: None,
            next_fetch_ms: 0,
            leader_deadline_ms: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The entries from `log_start()`.
    pub fn log(&self) -> &[Entry] {
        &self.log
    }

    pub fn log_start(&self) -> i64 {
        self.log_start
    }

    /// The entries below it are committed.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn log_end(&self) -> i64 {
        self.log_start + self.log.len() as i64
    }

    fn last_epoch(&self) -> Epoch {
        match (self.log.last(), self.start_snapshot) {
            (Some(e), _) => e.epoch,
            (None, Some(s)) => s.epoch,
            (None, None) => 0,
        }
    }

    /// The fetch to send now, if any: to the leader, or to a random voter when no leader is
    /// known. At most one is in flight; one unanswered for `REQUEST_TIMEOUT_MS` is abandoned.
    pub fn poll(&mut self, now_ms: u64) -> Option<(NodeId, Message)> {
        if let Some(fetch) = self.in_flight {
            if now_ms < fetch.sent_ms + REQUEST_TIMEOUT_MS {
                return None;
            }
            self.in_flight = None;
            self.back_off(now_ms);
        }
        if self.leader.is_some() && now_ms >= self.leader_deadline_ms {
            self.leader = None;
        }
        if now_ms < self.next_fetch_ms {
            return None;
        }
        let to = match self.leader {
            Some(leader) => leader,
            None => {
                // A snapshot is fetched from the leader that named it, or not at all.
                self.fetching = None;
                self.voters[self.rng.gen_range(0..self.voters.len())]
            }
        };
        let fetch_offset = self.log_end();
        let snapshot = self
            .fetching
            .as_ref()
            .map(|(id, bytes)| (*id, bytes.len() as i64));
        self.in_flight = Some(InFlight {
            to,
            sent_ms: now_ms,
            fetch_offset,
            snapshot,
        });
        let request = match snapshot {
            Some((snapshot, position)) => Message::FetchSnapshotRequest {
                epoch: self.epoch,
                snapshot,
                position,
            },
            None => Message::FetchRequest {
                epoch: self.epoch,
                fetch_offset,
                last_fetched_epoch: self.last_epoch(),
            },
        };
        Some((to, request))
    }

    /// The answer from `from` to the fetch in flight, or `None` when the request failed at the
    /// transport. Anything but the answer to the fetch in flight is ignored.
    pub fn on_response(
        &mut self,
        now_ms: u64,
        from: NodeId,
        response: Option<Message>,
    ) -> Vec<ObserverEvent> {
        let Some(fetch) = self.in_flight.filter(|f| f.to == from) else {
            return Vec::new();
        };
        self.in_flight = None;
        match response {
            Some(Message::FetchResponse {
                epoch,
                leader,
                body,
            }) if fetch.snapshot.is_none() => {
                self.on_fetch_response(now_ms, from, fetch, epoch, leader, body)
            }
            Some(Message::FetchSnapshotResponse {
                epoch,
                leader,
                body,
            }) if fetch.snapshot.is_some() => {
                self.on_fetch_snapshot_response(now_ms, from, fetch, epoch, leader, body)
            }
            _ => {
                self.back_off(now_ms);
                Vec::new()
            }
        }
    }

    fn on_fetch_response(
        &mut self,
        now_ms: u64,
        from: NodeId,
        fetch: InFlight,
        epoch: Epoch,
        leader: Option<NodeId>,
        body: FetchBody,
    ) -> Vec<ObserverEvent> {
        let news = self.learn_leader(now_ms, epoch, leader);
        let from_leader = epoch == self.epoch && self.leader == Some(from);
        match body {
            FetchBody::Records {
                from_offset,
                entries,
                high_watermark,
            } if from_leader => {
                self.leader_deadline_ms = now_ms + FETCH_TIMEOUT_MS;
                self.on_records(now_ms, fetch, from_offset, entries, high_watermark)
            }
            FetchBody::Diverging { epoch, end_offset } if from_leader => {
                self.leader_deadline_ms = now_ms + FETCH_TIMEOUT_MS;
                self.next_fetch_ms = now_ms;
                // KIP-595 / KIP-279, as a voter does: truncate to where both logs agree on the
                // end of that epoch; the next fetch checks again from there.
                let (_, own_end) =
                    end_offset_for_epoch(self.log_start, self.start_snapshot, &self.log, epoch);
                self.truncate(end_offset.min(own_end))
            }
            FetchBody::Snapshot { snapshot } if from_leader => {
                // KIP-630: our log is behind the leader's start; fetch its snapshot first.
                self.leader_deadline_ms = now_ms + FETCH_TIMEOUT_MS;
                self.next_fetch_ms = now_ms;
                if snapshot.end_offset >= self.high_watermark && snapshot.end_offset > 0 {
                    self.fetching = Some((snapshot, Vec::new()));
                }
                Vec::new()
            }
            // Refused, but pointed at a newer epoch or a leader: ask there at once.
            FetchBody::Fenced if news => {
                self.next_fetch_ms = now_ms;
                Vec::new()
            }
            // Our leader refuses in its own epoch: it resigned. Ask a random voter who leads.
            FetchBody::Fenced if from_leader => {
                self.leader = None;
                self.back_off(now_ms);
                Vec::new()
            }
            // Refused with nothing new, or an answer from an older epoch.
            _ => {
                self.back_off(now_ms);
                Vec::new()
            }
        }
    }

    fn on_fetch_snapshot_response(
        &mut self,
        now_ms: u64,
        from: NodeId,
        fetch: InFlight,
        epoch: Epoch,
        leader: Option<NodeId>,
        body: SnapshotBody,
    ) -> Vec<ObserverEvent> {
        let news = self.learn_leader(now_ms, epoch, leader);
        let from_leader = epoch == self.epoch && self.leader == Some(from);
        let (Some((asked, position)), true) = (fetch.snapshot, from_leader) else {
            self.fetching = None;
            if news {
                self.next_fetch_ms = now_ms;
            } else {
                self.back_off(now_ms);
            }
            return Vec::new();
        };
        self.leader_deadline_ms = now_ms + FETCH_TIMEOUT_MS;
        self.next_fetch_ms = now_ms;
        let SnapshotBody::Chunk {
            snapshot,
            size,
            position: at,
            bytes,
        } = body
        else {
            // Not found (the leader moved to a newer one) or refused: fetch the log again,
            // which names the snapshot to fetch now.
            self.fetching = None;
            return Vec::new();
        };
        let Some((id, have)) = self.fetching.as_mut() else {
            return Vec::new();
        };
        if snapshot != asked || *id != asked || at != position || have.len() as i64 != at {
            return Vec::new(); // stale: the next poll asks from where we are
        }
        if bytes.is_empty() && (have.len() as i64) < size {
            self.back_off(now_ms);
            return Vec::new();
        }
        have.extend_from_slice(&bytes);
        if (have.len() as i64) < size {
            return Vec::new();
        }
        let (snapshot, bytes) = self.fetching.take().expect("fetching");
        self.log.clear();
        self.log_start = snapshot.end_offset;
        self.start_snapshot = Some(snapshot);
        let mut events = vec![ObserverEvent::SnapshotLoaded {
            snapshot,
            bytes: Bytes::from(bytes),
        }];
        if snapshot.end_offset > self.high_watermark {
            self.high_watermark = snapshot.end_offset;
            events.push(ObserverEvent::HighWatermark(snapshot.end_offset));
        }
        events
    }

    /// Adopts a newer epoch with its leader (or none), or the leader of the current epoch when
    /// none was known; says whether anything changed. Only a voter can lead.
    fn learn_leader(&mut self, now_ms: u64, epoch: Epoch, leader: Option<NodeId>) -> bool {
        let leader = leader.filter(|l| self.voters.contains(l));
        let newer = epoch > self.epoch;
        if !newer && (epoch < self.epoch || self.leader.is_some() || leader.is_none()) {
            return false;
        }
        self.epoch = epoch;
        self.leader = leader;
        self.leader_deadline_ms = now_ms + FETCH_TIMEOUT_MS;
        true
    }

    fn on_records(
        &mut self,
        now_ms: u64,
        fetch: InFlight,
        from_offset: i64,
        entries: Vec<Entry>,
        high_watermark: i64,
    ) -> Vec<ObserverEvent> {
        // Records for another position than the one asked for are stale: ask again.
        if from_offset != fetch.fetch_offset || from_offset != self.log_end() {
            self.next_fetch_ms = now_ms;
            return Vec::new();
        }
        let mut events = Vec::new();
        let count = entries.len();
        if count > 0 {
            self.log.extend(entries);
            events.push(ObserverEvent::Appended { from_offset, count });
        }
        // The leader checked that our log matches its own up to `from_offset`, so every entry
        // we hold below its high watermark is committed.
        let hw = high_watermark.min(self.log_end());
        if hw > self.high_watermark {
            self.high_watermark = hw;
            events.push(ObserverEvent::HighWatermark(hw));
        }
        self.next_fetch_ms = if count > 0 {
            now_ms
        } else {
            now_ms + FETCH_IDLE_MS
        };
        events
    }

    /// A fetch failed, timed out or was refused. The leader stays known until its deadline
    /// (`poll` forgets it then), so a fetch it left unanswered for `REQUEST_TIMEOUT_MS`, which is
    /// `FETCH_TIMEOUT_MS`, sends the next one to a random voter.
    fn back_off(&mut self, now_ms: u64) {
        self.next_fetch_ms = now_ms + RETRY_BACKOFF_MS;
    }

    fn truncate(&mut self, end_offset: i64) -> Vec<ObserverEvent> {
        if end_offset >= self.log_end() {
            return Vec::new();
        }
        assert!(
            end_offset >= self.high_watermark,
            "observer {} would truncate committed entries: to {end_offset} below its high \
             watermark {} (a raft safety bug: the leader lacks a committed entry)",
            self.id,
            self.high_watermark
        );
        assert!(
            end_offset >= self.log_start,
            "observer {} would truncate below its log start {}",
            self.id,
            self.log_start
        );
        self.log.truncate((end_offset - self.log_start) as usize);
        vec![ObserverEvent::Truncated { end_offset }]
    }
}
