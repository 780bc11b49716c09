//! Producer ids for `InitProducerId`: Kafka's `RPCProducerIdManager`. The broker asks the
//! active controller for a block of ids (`AllocateProducerIds`, KIP-730), hands them out one by
//! one, and fetches the next block when this one is used up. The controller records every block
//! in the metadata log (`ProducerIdsRecord`), so no id is handed out twice, whatever fails.
//!
//! Kafka prefetches the next block once 90% of the current one is used and answers
//! `COORDINATOR_LOAD_IN_PROGRESS` while none is there; here the request that finds the block
//! empty waits for the next one (one attempt per known controller), and answers that code if it
//! cannot get one.

use kafka_protocol::messages::{AllocateProducerIdsRequest, BrokerId, RequestKind, ResponseKind};

use super::Broker;

/// Kafka's `Errors.COORDINATOR_LOAD_IN_PROGRESS`.
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
/// Kafka's `Errors.NOT_CONTROLLER`.
const NOT_CONTROLLER: i16 = 41;

/// The ids left in the current block: `[next, end)`.
#[derive(Debug, Default)]
pub(super) struct ProducerIdBlock {
    next: i64,
    end: i64,
}

impl Broker {
    /// The next unused producer id, fetching a new block from the controller when needed.
    pub(super) async fn next_producer_id(&self) -> Result<i64, i16> {
        let mut block = self.producer_ids.lock().await;
        if block.next >= block.end {
            *block = self.allocate_producer_ids().await?;
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }

    async fn allocate_producer_ids(&self) -> Result<ProducerIdBlock, i16> {
        let Some(epoch) = self.lifecycle.broker_epoch() else {
            return Err(COORDINATOR_LOAD_IN_PROGRESS);
        };
        for _ in 0..self.ctx.controllers.len() {
            let request = AllocateProducerIdsRequest::default()
                .with_broker_id(BrokerId(self.ctx.id))
                .with_broker_epoch(epoch);
            match self
                .controllers
                .send(RequestKind::AllocateProducerIds(request))
                .await
            {
                Ok(ResponseKind::AllocateProducerIds(r)) if r.error_code == NOT_CONTROLLER => {
                    self.controllers.rotate_from(self.controllers.active());
                }
                Ok(ResponseKind::AllocateProducerIds(r))
                    if r.error_code == 0 && r.producer_id_len > 0 =>
                {
                    let start = r.producer_id_start.0;
                    self.event(
                        "producer-id-block",
                        serde_json::json!({ "start": start, "len": r.producer_id_len }),
                    );
                    return Ok(ProducerIdBlock {
                        next: start,
                        end: start + i64::from(r.producer_id_len),
                    });
                }
                _ => return Err(COORDINATOR_LOAD_IN_PROGRESS),
            }
        }
        Err(COORDINATOR_LOAD_IN_PROGRESS)
    }
}
