//! Metric names of the PostgreSQL backend, their descriptions, and the handles it records into.
//!
//! Handles are resolved once, when the store connects. Labels are low-cardinality: the
//! operation (a fixed set) and the outcome; never a list or user id.

use ::metrics::{describe_counter, describe_histogram, Counter, Histogram, Unit};

/// Histogram, label `op`: wall time of one request, from asking the pool for a connection to
/// the answer (an append includes its commit and any in-doubt resolution).
pub const REQUEST_SECONDS: &str = "listwire_storage_postgres_request_seconds";
/// Counter, labels `op` and `kind` (`unavailable`, `backend`, `corrupt`): failed requests.
pub const ERRORS_TOTAL: &str = "listwire_storage_postgres_errors_total";
/// Counter, label `outcome` (`applied`, `not_applied`, `conflict`, `unknown`): commits whose
/// answer was lost, and what reading the head back decided.
pub const COMMITS_IN_DOUBT_TOTAL: &str = "listwire_storage_postgres_commits_in_doubt_total";

/// Registers help text and units with the installed recorder. Call once at startup.
pub fn describe_metrics() {
    describe_histogram!(
        REQUEST_SECONDS,
        Unit::Seconds,
        "Duration of one PostgreSQL store request, including the wait for a pooled connection."
    );
    describe_counter!(
        ERRORS_TOTAL,
        Unit::Count,
        "PostgreSQL store requests that failed, by operation and error kind."
    );
    describe_counter!(
        COMMITS_IN_DOUBT_TOTAL,
        Unit::Count,
        "Appends whose commit answer was lost, by the outcome read back from the database."
    );
}

/// The operations, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Append,
    Head,
    ReadBatches,
    WriteSnapshot,
    ReadSnapshot,
    Prune,
    CreateUser,
    ReadUser,
    PutMembership,
    ReadMemberships,
}

const OPS: [Op; 10] = [
    Op::Append,
    Op::Head,
    Op::ReadBatches,
    Op::WriteSnapshot,
    Op::ReadSnapshot,
    Op::Prune,
    Op::CreateUser,
    Op::ReadUser,
    Op::PutMembership,
    Op::ReadMemberships,
];

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Append => "append",
            Op::Head => "head",
            Op::ReadBatches => "read_batches",
            Op::WriteSnapshot => "write_snapshot",
            Op::ReadSnapshot => "read_snapshot",
            Op::Prune => "prune",
            Op::CreateUser => "create_user",
            Op::ReadUser => "read_user",
            Op::PutMembership => "put_membership",
            Op::ReadMemberships => "read_memberships",
        }
    }

    fn index(self) -> usize {
        OPS.iter().position(|op| *op == self).unwrap_or(0)
    }
}

/// What an in-doubt commit turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InDoubt {
    Applied,
    NotApplied,
    Conflict,
    Unknown,
}

struct OpHandles {
    seconds: Histogram,
    unavailable: Counter,
    backend: Counter,
    corrupt: Counter,
}

/// Every handle the store records into.
pub(crate) struct StoreMetrics {
    ops: Vec<OpHandles>,
    in_doubt: [Counter; 4],
    /// The counter every backend shares (`listwire_storage_append_conflicts_total`).
    pub(crate) append_conflicts: Counter,
}

impl StoreMetrics {
    /// Resolves every handle against the recorder installed now.
    pub(crate) fn new() -> Self {
        let ops = OPS
            .iter()
            .map(|op| {
                let errors = |kind: &'static str| {
                    ::metrics::counter!(ERRORS_TOTAL, "op" => op.label(), "kind" => kind)
                };
                OpHandles {
                    seconds: ::metrics::histogram!(REQUEST_SECONDS, "op" => op.label()),
                    unavailable: errors("unavailable"),
                    backend: errors("backend"),
                    corrupt: errors("corrupt"),
                }
            })
            .collect();
        let outcome =
            |label: &'static str| ::metrics::counter!(COMMITS_IN_DOUBT_TOTAL, "outcome" => label);
        Self {
            ops,
            in_doubt: [
                outcome("applied"),
                outcome("not_applied"),
                outcome("conflict"),
                outcome("unknown"),
            ],
            append_conflicts: ::metrics::counter!(crate::embedded::metrics::APPEND_CONFLICTS_TOTAL),
        }
    }

    /// Records one finished request.
    pub(crate) fn request<T>(
        &self,
        op: Op,
        started: std::time::Instant,
        result: &Result<T, crate::Error>,
    ) {
        let Some(handles) = self.ops.get(op.index()) else {
            return;
        };
        handles.seconds.record(started.elapsed().as_secs_f64());
        match result {
            Err(crate::Error::Unavailable(_)) => handles.unavailable.increment(1),
            Err(crate::Error::Backend(_)) => handles.backend.increment(1),
            Err(crate::Error::Corrupt(_)) => handles.corrupt.increment(1),
            _ => {}
        }
    }

    /// Records how an in-doubt commit was resolved.
    pub(crate) fn in_doubt(&self, outcome: InDoubt) {
        let index = match outcome {
            InDoubt::Applied => 0,
            InDoubt::NotApplied => 1,
            InDoubt::Conflict => 2,
            InDoubt::Unknown => 3,
        };
        if let Some(counter) = self.in_doubt.get(index) {
            counter.increment(1);
        }
    }
}
