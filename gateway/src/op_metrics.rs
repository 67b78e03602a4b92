//! An op's clock at the edge: its latency by kind (edit or vote) from arrival to answer, its
//! failures by code, and the debug line that names its list and op ids.

use metrics::{Counter, Histogram};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::ErrorCode;
use crate::metrics::{LABEL_CODE, LABEL_KIND, OP_ERRORS_TOTAL, OP_SECONDS};
use crate::router::OpOutcome;

/// An op's kind, for the [`LABEL_KIND`] label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    /// Anything but a vote.
    Edit,
    /// A vote or an unvote.
    Vote,
}

impl OpKind {
    pub(crate) const ALL: [OpKind; 2] = [OpKind::Edit, OpKind::Vote];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OpKind::Edit => "edit",
            OpKind::Vote => "vote",
        }
    }
}

/// The [`OP_SECONDS`] handles, one per kind.
pub(crate) struct OpSeconds {
    edit: Histogram,
    vote: Histogram,
}

impl OpSeconds {
    pub(crate) fn new() -> Self {
        Self {
            edit: metrics::histogram!(OP_SECONDS, LABEL_KIND => OpKind::Edit.as_str()),
            vote: metrics::histogram!(OP_SECONDS, LABEL_KIND => OpKind::Vote.as_str()),
        }
    }

    /// Starts timing `op` (its JSON body) of `list`, labelled by its kind.
    pub(crate) fn start(&self, list: Uuid, op_id: Uuid, op: &RawValue) -> OpTimer {
        let kind = OpKind::of(op);
        let histogram = match kind {
            OpKind::Edit => self.edit.clone(),
            OpKind::Vote => self.vote.clone(),
        };
        OpTimer {
            histogram,
            kind,
            list,
            op_id,
            started: std::time::Instant::now(),
            finished: false,
        }
    }
}

/// The [`OP_ERRORS_TOTAL`] counter of one kind and code.
pub(crate) fn op_errors(kind: OpKind, code: ErrorCode) -> Counter {
    metrics::counter!(OP_ERRORS_TOTAL, LABEL_KIND => kind.as_str(), LABEL_CODE => code.as_str())
}

/// A running op's clock; [`OpTimer::finish`] records it, and logs the answer, when the op is
/// answered.
pub(crate) struct OpTimer {
    histogram: Histogram,
    kind: OpKind,
    list: Uuid,
    op_id: Uuid,
    started: std::time::Instant,
    finished: bool,
}

impl Drop for OpTimer {
    /// An op whose answer nobody waits for any more (an HTTP client that hung up) still
    /// counts its time, so the slowest ops are not the ones left out.
    fn drop(&mut self) {
        if !self.finished {
            self.histogram.record(self.started.elapsed().as_secs_f64());
        }
    }
}

impl OpTimer {
    /// Records the op's latency, counts a failure by code, and logs the answer (at debug; an
    /// internal error at warn).
    pub(crate) fn finish(mut self, outcome: &OpOutcome) {
        self.finished = true;
        let elapsed = self.started.elapsed();
        self.histogram.record(elapsed.as_secs_f64());
        let (list_id, op_id, kind) = (self.list, self.op_id, self.kind.as_str());
        if let Err(error) = outcome {
            op_errors(self.kind, error.code).increment(1);
        }
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        match outcome {
            Ok(seq) => {
                tracing::debug!(%list_id, %op_id, kind, seq, elapsed_ms, "op acked");
            }
            Err(error) if error.code == ErrorCode::Internal => {
                tracing::warn!(%list_id, %op_id, kind, code = error.code.as_str(), elapsed_ms, "op failed");
            }
            Err(error) => {
                let code = error.code.as_str();
                tracing::debug!(%list_id, %op_id, kind, code, elapsed_ms, message = %error.message, "op refused");
            }
        }
    }
}

impl OpKind {
    /// The kind of an op body: its `kind` field says `vote` or `unvote`, or anything else.
    /// A body that starts with its kind, as clients write it, is read without a parse.
    fn of(op: &RawValue) -> Self {
        let text = op.get();
        let vote_first =
            text.starts_with(r#"{"kind":"vote""#) || text.starts_with(r#"{"kind":"unvote""#);
        // A second `kind` would win in the parser (the op is not a vote): parse those.
        if vote_first && text.matches(r#""kind""#).count() == 1 {
            return OpKind::Vote;
        }
        #[derive(serde::Deserialize)]
        struct Peek<'a> {
            #[serde(borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        match serde_json::from_str::<Peek<'_>>(op.get()) {
            Ok(peek) if peek.kind == "vote" || peek.kind == "unvote" => OpKind::Vote,
            _ => OpKind::Edit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: votes and unvotes are told from every other op by their `kind` alone, whatever
    // else the op says (an item's text may well be "vote").
    #[test]
    fn op_kind_reads_the_kind_field() {
        let kind = |json: &str| {
            let raw = RawValue::from_string(json.to_owned()).unwrap();
            OpKind::of(&raw)
        };
        assert_eq!(kind(r#"{"kind":"vote","item":"x"}"#), OpKind::Vote);
        assert_eq!(kind(r#"{"item":"x", "kind" : "unvote"}"#), OpKind::Vote);
        assert_eq!(kind(r#"{"kind":"add_item","text":"vote"}"#), OpKind::Edit);
        assert_eq!(kind(r#"{"text":"\"kind\":\"vote\""}"#), OpKind::Edit);
        assert_eq!(kind("[]"), OpKind::Edit);
        assert_eq!(kind(r#"{"kind":"unvote"}"#), OpKind::Vote);
        assert_eq!(
            kind(r#"{"kind":"voter"}"#),
            OpKind::Edit,
            "a prefix is not a kind"
        );
    }
}
