//! Unit tests of the connection logic, driven through channels instead of a socket.

use std::sync::Mutex as StdMutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::value::RawValue;

use super::*;
use crate::config::GatewayConfig;
use crate::gateway::Gateway;
use crate::router::{Account, Accounts, OpOutcome, Router};

/// Records calls; subscribe queues one snapshot frame, submit acks with seq 7 (or, for an op
/// whose JSON mentions "hang", keeps the reply unanswered).
#[derive(Default)]
struct RecordingRouter {
    sinks: StdMutex<Vec<FrameSink>>,
    unsubscribed: StdMutex<Vec<Uuid>>,
    held: StdMutex<Vec<Reply>>,
}

#[async_trait]
impl Router for RecordingRouter {
    async fn submit(
        &self,
        _principal: &Principal,
        _list: Uuid,
        _op_id: Uuid,
        op: Box<RawValue>,
        reply: Reply,
    ) {
        if op.get().contains("hang") {
            self.held.lock().unwrap().push(reply);
            return;
        }
        reply.send(OpOutcome::Ok(7));
    }
    async fn subscribe(
        &self,
        _principal: &Principal,
        list: Uuid,
        _since: Option<u64>,
        sink: FrameSink,
    ) -> Result<(), EdgeError> {
        let _ = sink.push(Bytes::from(format!(
            r#"{{"type":"snapshot","list":"{list}","seq":0,"state":{{}}}}"#
        )));
        self.sinks.lock().unwrap().push(sink);
        Ok(())
    }
    async fn unsubscribe(&self, list: Uuid, _connection_id: u64) {
        self.unsubscribed.lock().unwrap().push(list);
    }
    async fn snapshot(&self, _principal: &Principal, _list: Uuid) -> Result<Bytes, EdgeError> {
        Err(EdgeError::internal())
    }
    async fn create_list(
        &self,
        _principal: &Principal,
        _body: Box<RawValue>,
    ) -> Result<Uuid, EdgeError> {
        Err(EdgeError::internal())
    }
    async fn lists_of(&self, _principal: &Principal) -> Result<Bytes, EdgeError> {
        Err(EdgeError::internal())
    }
    async fn ready(&self) -> bool {
        true
    }
}

struct NoAccounts;

#[async_trait]
impl Accounts for NoAccounts {
    async fn create(&self, _account: Account) -> Result<(), EdgeError> {
        Err(EdgeError::internal())
    }
    async fn find(&self, _username: &str) -> Result<Option<Account>, EdgeError> {
        Ok(None)
    }
}

type ClientTx = flume::Sender<Result<Message, std::io::Error>>;

/// Starts a connection over channels; returns the client's sending end, the frames the
/// server writes, the router, and the connection task.
fn start() -> Started {
    start_with(GatewayConfig::default())
}

type Started = (
    ClientTx,
    flume::Receiver<Message>,
    Arc<RecordingRouter>,
    tokio::task::JoinHandle<()>,
);

fn start_with(config: GatewayConfig) -> Started {
    let router = Arc::new(RecordingRouter::default());
    let config = GatewayConfig {
        jwt_secret: vec![1; 32],
        argon2_memory_kib: 8,
        argon2_iterations: 1,
        ..config
    };
    let gateway = Gateway::new(config, router.clone(), Arc::new(NoAccounts), None, None).unwrap();
    let (client_tx, server_rx) = flume::bounded(16);
    let (server_tx, client_rx) = flume::bounded(16);
    let principal = Principal {
        user_id: Uuid::now_v7(),
        username: "alice".into(),
    };
    let task = tokio::spawn(run(
        gateway.inner.clone(),
        principal,
        server_tx.into_sink(),
        server_rx.into_stream(),
    ));
    (client_tx, client_rx, router, task)
}

async fn next_json(client_rx: &flume::Receiver<Message>) -> serde_json::Value {
    let message = tokio::time::timeout(Duration::from_secs(5), client_rx.recv_async())
        .await
        .unwrap()
        .unwrap();
    match message {
        Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

fn text(value: String) -> Result<Message, std::io::Error> {
    Ok(Message::Text(value.into()))
}

// Goal: subscribe, op and a malformed frame each get their answer, and the end of the
// connection unsubscribes from every list it still holds.
#[tokio::test]
async fn answers_frames_and_unsubscribes_at_the_end() {
    let (client_tx, client_rx, router, task) = start();
    let list = Uuid::now_v7();
    client_tx
        .send_async(text(format!(
            r#"{{"type":"subscribe","list":"{list}","since":null}}"#
        )))
        .await
        .unwrap();
    assert_eq!(next_json(&client_rx).await["type"], "snapshot");

    let op_id = Uuid::now_v7();
    client_tx
        .send_async(text(format!(r#"{{"type":"op","list":"{list}","op_id":"{op_id}","op":{{"kind":"rename","title":"t"}}}}"#)))
        .await
        .unwrap();
    let ack = next_json(&client_rx).await;
    assert_eq!(
        ack,
        serde_json::json!({"type":"ack","op_id":op_id,"list":list,"seq":7})
    );

    client_tx.send_async(text("{oops".into())).await.unwrap();
    assert_eq!(next_json(&client_rx).await["code"], "invalid");
    client_tx
        .send_async(Ok(Message::Binary(Bytes::from_static(b"\x00"))))
        .await
        .unwrap();
    assert_eq!(next_json(&client_rx).await["code"], "invalid");

    drop(client_tx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*router.unsubscribed.lock().unwrap(), vec![list]);
}

// Goal: a subscription the owner ends is forwarded and forgotten, so the connection's end
// does not unsubscribe it again.
#[tokio::test]
async fn owner_ended_subscriptions_are_forgotten() {
    let (client_tx, client_rx, router, task) = start();
    let list = Uuid::now_v7();
    client_tx
        .send_async(text(format!(
            r#"{{"type":"subscribe","list":"{list}","since":3}}"#
        )))
        .await
        .unwrap();
    assert_eq!(next_json(&client_rx).await["type"], "snapshot");
    let sink = router.sinks.lock().unwrap()[0].clone();
    let ended = frames::error_frame(
        &EdgeError::new(ErrorCode::Forbidden, "access revoked"),
        None,
        Some(list),
    );
    sink.end_subscription(list, ended).unwrap();
    assert_eq!(next_json(&client_rx).await["code"], "forbidden");

    drop(client_tx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(router.unsubscribed.lock().unwrap().is_empty());
}

// Goal: a silent client is pinged every `ping_interval`, then closed with 1008 once
// `idle_timeout` passes without anything received (short real timings, awaited, not slept).
#[tokio::test]
async fn pings_then_closes_an_idle_connection() {
    let config = GatewayConfig {
        ping_interval: Duration::from_millis(40),
        idle_timeout: Duration::from_millis(200),
        close_linger: Duration::from_millis(10),
        ..GatewayConfig::default()
    };
    let (client_tx, client_rx, _router, task) = start_with(config);
    let mut pings = 0;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), client_rx.recv_async())
            .await
            .unwrap()
            .unwrap()
        {
            Message::Ping(_) => pings += 1,
            Message::Close(close) => break close,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(pings >= 1);
    assert_eq!(close.map(|frame| frame.code), Some(1008));
    drop(client_tx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

// Goal: an op whose owner never answers is answered `unavailable` ("outcome unknown") once
// `op_timeout` passes, frees its in-flight place, and a late answer is never sent.
#[tokio::test]
async fn an_unanswered_op_times_out_as_outcome_unknown() {
    let config = GatewayConfig {
        op_timeout: Duration::from_millis(150),
        ops_in_flight_per_connection_max: 1,
        ..GatewayConfig::default()
    };
    let (client_tx, client_rx, router, task) = start_with(config);
    let list = Uuid::now_v7();
    let op = |op_id: Uuid, title: &str| {
        text(format!(
            r#"{{"type":"op","list":"{list}","op_id":"{op_id}","op":{{"kind":"rename","title":"{title}"}}}}"#
        ))
    };
    let stuck = Uuid::now_v7();
    client_tx.send_async(op(stuck, "hang")).await.unwrap();
    let error = next_json(&client_rx).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "unavailable");
    assert_eq!(error["op_id"], stuck.to_string());
    assert!(error["message"].as_str().unwrap().contains("unknown"));
    // The late answer is dropped, and the one in-flight place is free again.
    let late = router.held.lock().unwrap().pop().unwrap();
    late.send(OpOutcome::Ok(9));
    let next = Uuid::now_v7();
    client_tx.send_async(op(next, "fine")).await.unwrap();
    let ack = next_json(&client_rx).await;
    assert_eq!(ack["op_id"], next.to_string());
    assert_eq!(ack["seq"], 7);
    drop(client_tx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

// Goal: an op answered "outcome unknown" at its deadline counts as an `unavailable` op error
// at the time the client heard it, and its late answer counts nothing more (review: timeouts
// were invisible to the error ratio, and the late reply counted as a success).
#[tokio::test]
async fn a_timed_out_op_counts_once_as_unavailable() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let config = GatewayConfig {
        op_timeout: Duration::from_millis(100),
        ..GatewayConfig::default()
    };
    let (client_tx, client_rx, router, task) = start_with(config);
    let (list, op_id) = (Uuid::now_v7(), Uuid::now_v7());
    let frame = format!(
        r#"{{"type":"op","list":"{list}","op_id":"{op_id}","op":{{"kind":"vote","item":"hang"}}}}"#
    );
    client_tx.send_async(text(frame)).await.unwrap();
    assert_eq!(next_json(&client_rx).await["code"], "unavailable");
    router
        .held
        .lock()
        .unwrap()
        .pop()
        .unwrap()
        .send(OpOutcome::Ok(9));
    drop(client_tx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();

    let (mut errors, mut timed) = (Vec::new(), 0);
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let name = key.key().name().to_owned();
        let label = |wanted: &str| {
            key.key()
                .labels()
                .find(|label| label.key() == wanted)
                .map(|label| label.value().to_owned())
        };
        match value {
            DebugValue::Counter(n) if n > 0 && name == crate::metrics::OP_ERRORS_TOTAL => {
                errors.push((label("kind"), label("code"), n));
            }
            DebugValue::Histogram(values)
                if name == crate::metrics::OP_SECONDS && !values.is_empty() =>
            {
                assert_eq!(label("kind").as_deref(), Some("vote"));
                timed += values.len();
            }
            _ => {}
        }
    }
    let unavailable = (Some("vote".to_owned()), Some("unavailable".to_owned()), 1);
    assert_eq!(errors, vec![unavailable]);
    assert_eq!(timed, 1, "one latency sample, at the deadline");
}
