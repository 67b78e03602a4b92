//! Clients that write: an op is sent over HTTP to a node and retried, with the same op id,
//! after a retryable refusal (`moved`, `busy`, `unavailable`, `rate_limited`) or a lost or
//! unanswered request, as PROTOCOL.md says, until it is answered for good or its deadline
//! passes. A request that is lost or unanswered moves the client to the next node. Every op is
//! recorded with each attempt, so the checkers can judge the answers and their latency.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;
use uuid::Uuid;

/// Codes a client retries with the same op id.
const RETRYABLE: [&str; 4] = ["moved", "busy", "unavailable", "rate_limited"];
/// Longest one request may take: the node's op timeout (3 s) plus a margin. A node that
/// runs and is not paused answers within its op timeout, so a longer wait is a stuck client.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest an op is retried before the client gives up on it.
pub(crate) const OP_DEADLINE: Duration = Duration::from_secs(40);

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Acknowledged at this seq.
    Acked(u64),
    /// Refused with this code.
    Refused(String),
    /// The connection failed or broke before an answer.
    Lost,
    /// No answer within [`ATTEMPT_TIMEOUT`].
    Silent,
}

/// One attempt of an op.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) node: usize,
    pub(crate) sent: Instant,
    pub(crate) answered: Instant,
    pub(crate) answer: Answer,
}

/// One op and everything that happened to it.
#[derive(Debug, Clone)]
pub(crate) struct OpRecord {
    pub(crate) op_id: Uuid,
    /// The list's index in the run.
    pub(crate) list: usize,
    /// A vote (its refusals with `conflict` are expected).
    pub(crate) vote: bool,
    pub(crate) attempts: Vec<Attempt>,
}

impl OpRecord {
    /// The final answer (the last attempt's), if any attempt was made.
    pub(crate) fn outcome(&self) -> Option<&Answer> {
        self.attempts.last().map(|attempt| &attempt.answer)
    }

    /// The acked seq, if the op was acked.
    pub(crate) fn acked(&self) -> Option<u64> {
        match self.outcome() {
            Some(Answer::Acked(seq)) => Some(*seq),
            _ => None,
        }
    }

    /// From the first send to the final answer.
    pub(crate) fn latency(&self) -> Duration {
        match (self.attempts.first(), self.attempts.last()) {
            (Some(first), Some(last)) => last.answered - first.sent,
            _ => Duration::ZERO,
        }
    }
}

/// HTTP to every node of the run.
#[derive(Clone)]
pub(crate) struct Nodes {
    client: reqwest::Client,
    urls: Vec<String>,
}

impl Nodes {
    pub(crate) fn new(urls: Vec<String>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        Self { client, urls }
    }

    pub(crate) fn count(&self) -> usize {
        self.urls.len()
    }

    /// The seq of `list` read through node `node` (as `token`), or `None` without an answer.
    pub(crate) async fn read_seq(&self, node: usize, token: &str, list: Uuid) -> Option<u64> {
        let response = self
            .client
            .get(format!("{}/v1/lists/{list}", self.urls[node]))
            .bearer_auth(token)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body: Value = response.json().await.ok()?;
        body["seq"].as_u64()
    }

    /// Sends `op` (as `token`) to `list` until answered for good or [`OP_DEADLINE`] passes,
    /// starting at node `node`; returns the record and the node the client ended on.
    pub(crate) async fn op(
        &self,
        token: &str,
        (list_index, list): (usize, Uuid),
        op: Value,
        mut node: usize,
    ) -> (OpRecord, usize) {
        let mut record = OpRecord {
            op_id: Uuid::new_v4(),
            list: list_index,
            vote: op["kind"] == "vote",
            attempts: Vec::new(),
        };
        let body = json!({"op_id": record.op_id, "op": op});
        let deadline = Instant::now() + OP_DEADLINE;
        let mut backoff = Duration::from_millis(50);
        node %= self.urls.len();
        loop {
            let sent = Instant::now();
            let used = node;
            let answer = self.attempt(used, token, list, &body).await;
            let answered = Instant::now();
            let retry = match &answer {
                Answer::Acked(_) => false,
                Answer::Refused(code) => RETRYABLE.contains(&code.as_str()),
                Answer::Lost | Answer::Silent => {
                    node = (node + 1) % self.urls.len();
                    true
                }
            };
            record.attempts.push(Attempt {
                node: used,
                sent,
                answered,
                answer,
            });
            if !retry || answered + backoff >= deadline {
                return (record, node);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(800));
        }
    }

    async fn attempt(&self, node: usize, token: &str, list: Uuid, body: &Value) -> Answer {
        let request = self
            .client
            .post(format!("{}/v1/lists/{list}/ops", self.urls[node]))
            .bearer_auth(token)
            .json(body)
            .send();
        let response = match request.await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return Answer::Silent,
            Err(_) => return Answer::Lost,
        };
        let value: Value = match response.json().await {
            Ok(value) => value,
            Err(error) if error.is_timeout() => return Answer::Silent,
            Err(_) => return Answer::Lost,
        };
        match value["seq"].as_u64() {
            Some(seq) => Answer::Acked(seq),
            None => Answer::Refused(value["code"].as_str().unwrap_or("unknown").to_owned()),
        }
    }

    /// Creates a list as `token` (retried like an op, by its op id); its id.
    pub(crate) async fn create_list(&self, token: &str, body: &Value) -> Option<Uuid> {
        let op_id = Uuid::new_v4();
        let mut body = body.clone();
        body["op_id"] = json!(op_id);
        let deadline = Instant::now() + OP_DEADLINE;
        let mut node = 0;
        while Instant::now() < deadline {
            let request = self
                .client
                .post(format!("{}/v1/lists", self.urls[node]))
                .bearer_auth(token)
                .json(&body)
                .send();
            if let Ok(response) = request.await {
                if let Ok(value) = response.json::<Value>().await {
                    if let Some(id) = value["list_id"].as_str() {
                        return id.parse().ok();
                    }
                }
            }
            node = (node + 1) % self.urls.len();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None
    }
}
