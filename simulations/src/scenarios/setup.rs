//! Shared set-up over HTTP: creating lists as simulated users.

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
    /// A client for `target` with a keep-alive pool.
    pub fn new(target: &Target) -> Self {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .unwrap_or_default();
        Self {
            client,
            base: target.http_url().to_owned(),
        }
    }

    /// A client that speaks HTTP/2 without upgrade (h2c), multiplexing many requests over few
    /// connections, as a load balancer in front of listwire would.
    pub fn new_http2(target: &Target) -> Self {
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap_or_default();
        Self {
            client,
            base: target.http_url().to_owned(),
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
    let http = Http::new(target);
    let requests = (0..count).map(|index| {
        let http = http.clone();
        let token = target.token(owner_of(index));
        let body = body.clone();
        async move { http.create_list(&token, body).await }
    });
    stream::iter(requests).buffered(32).try_collect().await
}
