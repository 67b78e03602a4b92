//! Calling a node's gateway seam from a simulated client, the way a client calls a node over
//! a connection: the node may be down, the connection may drop, an answer may never come.

use std::time::Duration;

use listwire_gateway::{EdgeError, Principal};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::node::{Gateways, Request, OP_TIMEOUT};

/// Margin over the node's own op timeout before a client calls a wait "forever" (counting
/// only time the node was running).
pub const STUCK_MARGIN: Duration = Duration::from_secs(4);

/// Why a call got no answer from the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// The node is not running.
    Down,
    /// The node went away before answering (crash, drain).
    Dropped,
    /// No answer within the node's op timeout plus [`STUCK_MARGIN`].
    Timeout,
}

impl Lost {
    /// The code a client would log for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Lost::Down => "node_down",
            Lost::Dropped => "connection_lost",
            Lost::Timeout => "no_answer",
        }
    }
}

/// Sends one request to node `index` and waits for its answer.
pub async fn call<T>(
    gateways: &Gateways,
    index: usize,
    make: impl FnOnce(oneshot::Sender<T>) -> Request,
) -> Result<T, Lost> {
    let running = gateways.get(index).ok_or(Lost::Down)?;
    let (tx, mut rx) = oneshot::channel();
    running.tx.send(make(tx)).map_err(|_| Lost::Down)?;
    // Only time the node runs counts: a stopped process answers nothing, and a client's wait
    // across a pause is not the node's to answer for (the chaos checker excuses it the same way).
    let mut waited = Duration::ZERO;
    loop {
        tokio::select! {
            biased;
            answer = &mut rx => return answer.map_err(|_| Lost::Dropped),
            () = running.closed.cancelled() => return Err(Lost::Dropped),
            () = tokio::time::sleep(WAIT_TICK) => {
                if !running.is_paused() {
                    waited += WAIT_TICK;
                }
                if waited >= OP_TIMEOUT + STUCK_MARGIN {
                    return Err(Lost::Timeout);
                }
            }
        }
    }
}

/// How often a waiting client looks whether its node runs.
const WAIT_TICK: Duration = Duration::from_millis(100);

/// Submits `op` once at node `index`.
pub async fn submit_once(
    gateways: &Gateways,
    index: usize,
    (principal, list, op_id): (&Principal, Uuid, Uuid),
    op: &str,
) -> Result<Result<u64, EdgeError>, Lost> {
    call(gateways, index, |outcome| Request::Submit {
        principal: principal.clone(),
        list,
        op_id,
        op: op.to_owned(),
        outcome,
    })
    .await
}

/// Creates a list at node `index`.
pub async fn create_once(
    gateways: &Gateways,
    index: usize,
    principal: &Principal,
    body: &str,
) -> Result<Result<Uuid, EdgeError>, Lost> {
    call(gateways, index, |done| Request::Create {
        principal: principal.clone(),
        body: body.to_owned(),
        done,
    })
    .await
}

/// Reads a list's snapshot JSON at node `index`.
pub async fn snapshot_once(
    gateways: &Gateways,
    index: usize,
    principal: &Principal,
    list: Uuid,
) -> Result<Result<serde_json::Value, EdgeError>, Lost> {
    let answer = call(gateways, index, |done| Request::Snapshot {
        principal: principal.clone(),
        list,
        done,
    })
    .await?;
    Ok(answer.map(|bytes| serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)))
}
