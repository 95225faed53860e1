//! InitProducerId for idempotent producers: a fresh producer id with epoch 0, as Kafka gives
//! a producer without a `transactional.id`. Ids come from blocks the controller hands out and
//! persists, so they never repeat across shards or restarts.

use std::cell::Cell;

use shardlog_net::kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use shardlog_net::KafkaError;

use crate::controller::{ControlReply, ControlRequest, ControlResponse};
use crate::shard::Shard;

thread_local! {
    /// This shard's current block: `(next id, end exclusive)`. Thread-local = shard-local.
    static BLOCK: Cell<(i64, i64)> = const { Cell::new((0, 0)) };
}

pub async fn handle(shard: &Shard, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        // Transactions are a later issue; refusing is honest, and clients report it.
        return response.with_error_code(KafkaError::InvalidRequest.code());
    }
    match next_producer_id(shard).await {
        Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => response.with_error_code(e.code()),
    }
}

async fn next_producer_id(shard: &Shard) -> Result<i64, KafkaError> {
    let (next, end) = BLOCK.with(Cell::get);
    if next < end {
        BLOCK.with(|b| b.set((next + 1, end)));
        return Ok(next);
    }
    let request = ControlRequest::AllocateProducerIds { broker_id: shard.spec.node_id };
    match shard.control.request(request).await {
        Ok(ControlReply { response: ControlResponse::AllocateProducerIds(Ok(block)), .. }) => {
            let first = block.first_producer_id;
            let end = first + block.size as i64;
            // Another task on this shard may have refilled the block meanwhile; take the newer.
            BLOCK.with(|b| b.set((first + 1, end)));
            Ok(first)
        }
        Ok(_) => Err(KafkaError::UnknownServerError),
        Err(_) => Err(KafkaError::CoordinatorNotAvailable),
    }
}
