//! Shared set-up over HTTP: creating lists as simulated users, on the node a scenario means
//! them to live on.

use anyhow::Context;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::target::Target;

/// HTTP calls as simulated users.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    /// A client for `target`'s first node with a keep-alive pool.
    pub fn new(target: &Target) -> Self {
        Self::at(target, 0, false)
    }

    /// A client for the first node that speaks HTTP/2 without upgrade (h2c), multiplexing many
    /// requests over few connections, as a load balancer in front of listwire would.
    pub fn new_http2(target: &Target) -> Self {
        Self::at(target, 0, true)
    }

    /// A client for node `node`, over HTTP/2 (h2c) if `http2`, else HTTP/1.1 keep-alive.
    pub fn at(target: &Target, node: usize, http2: bool) -> Self {
        let builder = reqwest::Client::builder();
        let builder = if http2 {
            builder.http2_prior_knowledge()
        } else {
            builder.pool_max_idle_per_host(1024)
        };
        Self {
            client: builder.build().unwrap_or_default(),
            base: target.http_url_of(node).to_owned(),
        }
    }

    /// `POST /v1/lists` as `token`.
    pub async fn create_list(&self, token: &str, body: Value) -> anyhow::Result<Uuid> {
        let response = self
            .client
            .post(format!("{}/v1/lists", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let answer: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "create list: {status} {answer}");
        answer["list_id"]
            .as_str()
            .context("list_id")?
            .parse()
            .context("list id")
    }

    /// `POST /v1/lists/{id}/ops`; `Ok(Err(code))` for a protocol error.
    pub async fn op(
        &self,
        token: &str,
        list: Uuid,
        op_id: Uuid,
        op: Value,
    ) -> anyhow::Result<Result<u64, String>> {
        let response = self
            .client
            .post(format!("{}/v1/lists/{list}/ops", self.base))
            .bearer_auth(token)
            .json(&json!({"op_id": op_id, "op": op}))
            .send()
            .await?;
        let answer: Value = response.json().await?;
        Ok(match answer["seq"].as_u64() {
            Some(seq) => Ok(seq),
            None => Err(answer["code"].as_str().unwrap_or("unknown").to_owned()),
        })
    }

    /// `GET /v1/lists/{id}`.
    pub async fn get_list(&self, token: &str, list: Uuid) -> anyhow::Result<Value> {
        let response = self
            .client
            .get(format!("{}/v1/lists/{list}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        Ok(response.json().await?)
    }
}

/// Creates `count` lists; list `index` is owned by user `owner_of(index)`. Returns their ids in order.
pub async fn create_lists(
    target: &Target,
    count: usize,
    owner_of: impl Fn(usize) -> u64,
    body: Value,
) -> anyhow::Result<Vec<Uuid>> {
    create_lists_placed(target, count, |_| None, owner_of, body).await
}

/// Creates `count` lists as [`create_lists`] does, list `index` on node `node_of(index)` where
/// that is `Some`: its create carries an `op_id` chosen so that the list id the nodes derive
/// from it (a UUID v5 of the user id and the op id) is placed on that node.
pub async fn create_lists_placed(
    target: &Target,
    count: usize,
    node_of: impl Fn(usize) -> Option<usize>,
    owner_of: impl Fn(usize) -> u64,
    body: Value,
) -> anyhow::Result<Vec<Uuid>> {
    let http = Http::new(target);
    let requests = (0..count).map(|index| {
        let http = http.clone();
        let user = owner_of(index);
        let token = target.token(user);
        let mut body = body.clone();
        let expected = node_of(index).map(|node| {
            let (list, op_id) = list_id_on(target, target.user(user), node);
            body["op_id"] = json!(op_id);
            list
        });
        async move {
            let list = http.create_list(&token, body).await?;
            if let Some(expected) = expected {
                anyhow::ensure!(list == expected, "the node derived another list id");
            }
            Ok(list)
        }
    });
    stream::iter(requests).buffered(32).try_collect().await
}

/// A fresh `(list id, create op id)` for `user` whose list is placed on `node`.
fn list_id_on(target: &Target, user: Uuid, node: usize) -> (Uuid, Uuid) {
    assert!(
        node < target.node_count(),
        "no node {node} to place a list on"
    );
    // Each try lands on `node` with probability 1/nodes.
    loop {
        let op_id = Uuid::new_v4();
        let list = Uuid::new_v5(&user, op_id.as_bytes());
        if target.owner_of(list) == node {
            return (list, op_id);
        }
    }
}
