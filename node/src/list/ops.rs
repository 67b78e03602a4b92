//! The op path of a list actor: one op, or a forwarded batch of ops, applied to `head` and
//! queued for the next append.

use listwire_gateway::{EdgeError, ErrorCode};

use super::actor_state::ListActorState;
use super::batching::{acked_early_if_mutant, digest_of, Waiter};
use super::{rejection_to_edge, OpBatch, OpKind, OpRequest};
use crate::domain::{apply, create, is_retry, Event};
use crate::host::Admitted;
use crate::metrics as m;

impl ListActorState {
    /// Applies a forwarded batch's ops in order, exactly as if each had come alone: each gets
    /// its own outcome and its own share of the batch's admission (freed when it is answered).
    pub(super) fn on_batch(&mut self, batch: OpBatch) {
        let OpBatch {
            ops,
            mut admitted,
            received,
        } = batch;
        for op in ops {
            let request = OpRequest {
                kind: op.kind,
                reply: op.answer.into(),
                admitted: admitted.as_mut().and_then(Admitted::take_one),
                received,
            };
            self.on_op(request);
        }
    }

    /// Applies one op to `head` and queues its event, or answers it at once (a duplicate of a
    /// durable op, a rejection, a list that is stopping).
    pub(super) fn on_op(&mut self, request: OpRequest) {
        let OpRequest {
            mut kind,
            reply,
            admitted,
            received,
        } = request;
        if self.aborted {
            // The rest of a batch whose earlier op stopped the list: `head` is not to be trusted.
            reply.send(Err(EdgeError::unavailable("list restarted; retry")));
            return;
        }
        if let Some(stopping) = &self.stopping {
            let refusal = if stopping.handoff {
                EdgeError::new(ErrorCode::Moved, "list moved to another node; retry")
            } else {
                EdgeError::unavailable("list is shutting down; retry")
            };
            reply.send(Err(refusal));
            return;
        }
        // The owner stamps the time (never the gateway, whose clock may be another node's);
        // the domain keeps it from going below the list's previous event.
        let now_ms = self.context.config.clock.now_ms();
        let now = tokio::time::Instant::now();
        let op_id = match &mut kind {
            OpKind::Apply(command) => {
                command.at_ms = now_ms;
                // Real time since this actor's previous event; unknown for its first.
                command.elapsed_ms = self.last_event_at.map(|at| {
                    u64::try_from(now.duration_since(at).as_millis()).unwrap_or(u64::MAX)
                });
                command.op_id
            }
            OpKind::Create { op_id, at_ms, .. } => {
                *at_ms = now_ms;
                *op_id
            }
        };
        if let Some(applied) = self.head.applied_op(op_id) {
            if !is_retry(applied.digest, digest_of(&kind)) {
                m::ops_rejected("conflict").increment(1);
                reply.send(Err(EdgeError::new(
                    ErrorCode::Conflict,
                    format!("op_id {op_id} was already used for a different op; use a new op_id"),
                )));
                return;
            }
            let seq = applied.seq;
            self.context.metrics.duplicate_ops.increment(1);
            let waiter = Waiter {
                seq,
                reply,
                _admitted: admitted,
                received,
            };
            if seq <= self.durable.seq() {
                waiter.reply.send(Ok(seq));
            } else {
                self.parked.push(waiter);
            }
            return;
        }
        let limits = &self.context.config.limits;
        let outcome = match &kind {
            OpKind::Apply(command) => apply(&mut self.head, command, limits),
            OpKind::Create {
                op_id,
                by,
                at_ms,
                create: body,
            } => create(&mut self.head, *op_id, by, *at_ms, body, limits),
        };
        match outcome {
            Ok(event) => {
                self.last_event_at = Some(now);
                let waiter = Waiter {
                    seq: 0,
                    reply: acked_early_if_mutant(reply, event.seq),
                    _admitted: admitted,
                    received,
                };
                self.push_pending(event, waiter);
            }
            Err(rejection) => {
                m::ops_rejected(rejection.code.as_str()).increment(1);
                reply.send(Err(rejection_to_edge(rejection)));
            }
        }
    }

    fn push_pending(&mut self, event: Event, mut waiter: Waiter) {
        let encoded = match self.encoder.encode(&event) {
            Ok(encoded) => encoded,
            Err(error) => {
                // Events are plain data; failing to encode one is a bug. `head` already holds the
                // event, so this actor cannot go on: stop it (not the node); the next request
                // reloads the list from storage.
                tracing::error!(list_id = %self.list, %error, "event failed to encode; stopping the list");
                waiter.reply.send(Err(EdgeError::internal()));
                self.abort(EdgeError::unavailable("list restarted; retry"));
                return;
            }
        };
        waiter.seq = event.seq;
        self.pending.events.push(event);
        self.pending.encoded.push(encoded);
        self.pending.waiters.push(waiter);
    }
}
