//! Row encoding and decoding, bucketing math and the reading of conditional results.
//!
//! Values reuse the versioned encodings of [`crate::record`]; seqs are stored as CQL `bigint`
//! (i64), so every conversion is checked: a seq above `i64::MAX` is refused on the way in, a
//! negative one is corrupt on the way out.

use scylla::value::{CqlValue, Row};

use crate::record;
use crate::{Batch, Error};

/// Seqs per bucket: a batch lives in partition `(list_id, first_seq / BUCKET_EVENTS)`.
///
/// 4096 events at a typical 100-500 bytes per encoded event make 0.4-2 MB and at most 4096 rows
/// per partition, far below ScyllaDB's large-partition thresholds (100 MB / 100k rows), while a
/// page of reads still touches one or two partitions. See `storage/SCHEMA.md`.
pub const BUCKET_EVENTS: u64 = 4096;

/// The largest batch body the store accepts (4 MiB).
///
/// A batch is written twice as one mutation each: into the head row by the conditional append
/// (whose Paxos round also keeps a copy in `system.paxos`) and into its `batches` row.
/// ScyllaDB refuses a mutation over half a commitlog segment (`commitlog_segment_size_in_mb`:
/// 32, so 16 MiB), with an error that says nothing about batches. At 4 MiB such a mutation is
/// about a quarter of that limit (room for the Paxos bookkeeping around it), and still within
/// the 8 MiB limit of 16 MiB segments. The list actor caps a batch at 1 MiB by default, so this
/// refusal only fires when that cap is raised past it.
/// See `storage/SCHEMA.md`, "Record sizes".
pub const BATCH_BODY_BYTES_MAX: usize = 4 << 20;

/// Refuses a batch too large for the head-row mutation with [`Error::InvalidArgument`], before
/// anything is sent, so an oversized batch fails loudly and the same way every time.
pub fn check_batch_size(batch: &Batch) -> Result<(), Error> {
    if batch.body.len() > BATCH_BODY_BYTES_MAX {
        return Err(Error::InvalidArgument(format!(
            "batch {}..={} has {} body bytes, more than the {BATCH_BODY_BYTES_MAX} a ScyllaDB \
             head-row mutation can safely carry; cap batches smaller",
            batch.first_seq,
            batch.last_seq,
            batch.body.len()
        )));
    }
    Ok(())
}

/// The bucket holding the batch that starts at `first_seq`.
pub fn bucket_of(first_seq: u64) -> u64 {
    first_seq / BUCKET_EVENTS
}

/// The first seq that falls in `bucket`.
pub fn bucket_start(bucket: u64) -> u64 {
    bucket.saturating_mul(BUCKET_EVENTS)
}

/// A seq as a CQL bigint. Seqs above `i64::MAX` cannot be stored.
pub fn to_i64(value: u64, what: &str) -> Result<i64, Error> {
    i64::try_from(value)
        .map_err(|_| Error::InvalidArgument(format!("{what} {value} exceeds the bigint range")))
}

/// A stored bigint as a seq; negative values are corrupt.
pub fn to_u64(value: i64, what: &str) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::Corrupt(format!("{what} is negative: {value}")))
}

/// Write timestamps of index entries start here: 2026-12-02T00:00:00Z in microseconds, so
/// versioned writes order among themselves by list seq alone, and beat every entry written with
/// a server timestamp before that instant (entries from before versioning existed).
///
/// It cannot sit far in the future (the earlier `2^60` did): ScyllaDB's
/// `restrict_future_timestamp` (on by default) refuses `USING TIMESTAMP` more than 3 days ahead
/// of its clock, which refused every index write. With a clock at or past the base, every
/// version below 2.59e11 (3 days in microseconds) is accepted, and the headroom grows by one
/// per microsecond that passes.
pub const MEMBERSHIP_TIMESTAMP_BASE: i64 = 1_796_169_600_000_000;

/// The CQL write timestamp of an index entry (or its deletion) at list seq `version`. ScyllaDB
/// keeps the cell with the highest timestamp, so a late write from a stopped owner, carrying an
/// older seq, can never undo a newer one. A deletion wins a tie with a put, which cannot
/// happen: one list state gives one answer per user.
pub fn membership_timestamp(version: u64) -> Result<i64, Error> {
    let version = to_i64(version, "membership version")?;
    MEMBERSHIP_TIMESTAMP_BASE
        .checked_add(version)
        .ok_or_else(|| Error::InvalidArgument(format!("membership version {version} is too large")))
}

/// Decodes a stored batch row `(first_seq, record)`.
pub fn decode_batch_row(first_seq: i64, record: &[u8]) -> Result<Batch, Error> {
    record::decode_batch(to_u64(first_seq, "batch first_seq")?, record)
}

/// The outcome of a conditional statement on the `heads` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LwtOutcome {
    /// Whether the condition held and the write applied.
    pub applied: bool,
    /// The `head` column of the row the condition was checked against (0 when there was none
    /// or the server did not return it).
    pub head: u64,
}

/// The `[applied]` column of a conditional result: always the first, read positionally.
pub fn lwt_applied(row: &Row) -> Result<bool, Error> {
    match row.columns.first() {
        Some(Some(CqlValue::Boolean(applied))) => Ok(*applied),
        other => Err(Error::Corrupt(format!(
            "conditional result: first column is not [applied]: {other:?}"
        ))),
    }
}

/// Reads a conditional result: `[applied]` is the first column, read positionally as a
/// boolean; ScyllaDB also returns the old row's columns, among which we look `head` up by name.
pub fn lwt_outcome(names: &[&str], row: &Row) -> Result<LwtOutcome, Error> {
    let applied = lwt_applied(row)?;
    let head = match names.iter().position(|n| *n == "head") {
        Some(i) => match row.columns.get(i) {
            Some(Some(CqlValue::BigInt(head))) => to_u64(*head, "head")?,
            Some(None) | None => 0,
            Some(Some(other)) => {
                return Err(Error::Corrupt(format!("head column has type {other:?}")));
            }
        },
        None => 0,
    };
    Ok(LwtOutcome { applied, head })
}

/// The `record` blob of the row a conditional insert found in its way (`None` when there was
/// none, or the server did not return it).
pub fn lwt_record(names: &[&str], row: &Row) -> Result<Option<Vec<u8>>, Error> {
    let Some(i) = names.iter().position(|n| *n == "record") else {
        return Ok(None);
    };
    match row.columns.get(i) {
        Some(Some(CqlValue::Blob(record))) => Ok(Some(record.clone())),
        Some(None) | None => Ok(None),
        Some(Some(other)) => Err(Error::Corrupt(format!("record column has type {other:?}"))),
    }
}

/// The `user_id` returned by a losing `INSERT INTO usernames … IF NOT EXISTS`, if any.
pub fn lwt_user_id(names: &[&str], row: &Row) -> Option<uuid::Uuid> {
    let i = names.iter().position(|n| *n == "user_id")?;
    match row.columns.get(i) {
        Some(Some(CqlValue::Uuid(id))) => Some(*id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn buckets() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(BUCKET_EVENTS - 1), 0);
        assert_eq!(bucket_of(BUCKET_EVENTS), 1);
        assert_eq!(bucket_of(3 * BUCKET_EVENTS + 7), 3);
        assert_eq!(bucket_start(2), 2 * BUCKET_EVENTS);
        assert_eq!(bucket_start(u64::MAX), u64::MAX);
        for seq in [1, 4095, 4096, 4097, 1 << 40] {
            let b = bucket_of(seq);
            assert!(bucket_start(b) <= seq && seq < bucket_start(b + 1));
        }
    }

    #[test]
    fn seq_conversions() {
        assert_eq!(to_i64(5, "seq").ok(), Some(5));
        assert!(matches!(
            to_i64(u64::MAX, "seq"),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(to_u64(5, "seq").ok(), Some(5));
        assert!(matches!(to_u64(-1, "seq"), Err(Error::Corrupt(_))));
    }

    /// Index write timestamps order by version, beat the server timestamps of entries written
    /// before versioning (up to the base), and stay within the 3 days into the future that
    /// ScyllaDB's `restrict_future_timestamp` accepts, which `2^60 + version` did not.
    #[test]
    fn membership_timestamps() {
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let three_days_us: i64 = 3 * 24 * 3600 * 1_000_000;
        let legacy_write_us: i64 = 1_796_083_200_000_000; // 2026-12-01T00:00:00Z
        let mut previous = i64::MIN;
        for version in [0, 1, 2, 1_000, 1_000_000_000] {
            let Ok(timestamp) = membership_timestamp(version) else {
                panic!("version {version} has a timestamp");
            };
            assert!(timestamp > previous, "timestamps grow with the version");
            assert!(
                timestamp > legacy_write_us,
                "versioned writes beat legacy entries"
            );
            assert!(
                timestamp <= now_us + three_days_us,
                "version {version}: {timestamp} is more than 3 days ahead of {now_us}"
            );
            previous = timestamp;
        }
        assert!(matches!(
            membership_timestamp(u64::MAX),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            membership_timestamp(i64::MAX as u64),
            Err(Error::InvalidArgument(_))
        ));
    }

    /// The batch-size refusal fires one byte past the bound, not at it, and says why.
    #[test]
    fn batch_size_bound() {
        let sized = |len: usize| Batch {
            first_seq: 1,
            last_seq: 1,
            body: Bytes::from(vec![0u8; len]),
        };
        assert!(check_batch_size(&sized(0)).is_ok());
        assert!(
            check_batch_size(&sized(1 << 20)).is_ok(),
            "the actor's default cap fits"
        );
        assert!(check_batch_size(&sized(BATCH_BODY_BYTES_MAX)).is_ok());
        let refused = check_batch_size(&sized(BATCH_BODY_BYTES_MAX + 1));
        assert!(
            matches!(&refused, Err(Error::InvalidArgument(m)) if m.contains("head-row mutation")),
            "{refused:?}"
        );
        let encoded = record::encode_batch(&sized(BATCH_BODY_BYTES_MAX)).len();
        assert!(
            encoded * 3 < 16 << 20,
            "room for three copies in a 16 MiB mutation"
        );
        assert!(encoded < 8 << 20, "within the limit of 16 MiB segments");
    }

    #[test]
    fn batch_round_trip() {
        let batch = Batch {
            first_seq: 7,
            last_seq: 9,
            body: Bytes::from_static(b"events"),
        };
        let stored = record::encode_batch(&batch);
        assert_eq!(decode_batch_row(7, &stored).ok(), Some(batch));
        assert!(matches!(
            decode_batch_row(10, &stored),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            decode_batch_row(-1, &stored),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            decode_batch_row(7, &[9, 9]),
            Err(Error::Corrupt(_))
        ));
    }

    fn row(values: Vec<Option<CqlValue>>) -> Row {
        Row { columns: values }
    }

    #[test]
    fn conditional_results() {
        let names = ["[applied]", "list_id", "head", "tail_first", "tail"];
        let won = row(vec![Some(CqlValue::Boolean(true)), None, None, None, None]);
        let outcome = lwt_outcome(&names, &won).ok();
        assert_eq!(
            outcome,
            Some(LwtOutcome {
                applied: true,
                head: 0
            })
        );
        let lost = row(vec![
            Some(CqlValue::Boolean(false)),
            None,
            Some(CqlValue::BigInt(42)),
        ]);
        let outcome = lwt_outcome(&names, &lost).ok();
        assert_eq!(
            outcome,
            Some(LwtOutcome {
                applied: false,
                head: 42
            })
        );
        let update_names = ["[applied]", "head"];
        let lost = row(vec![
            Some(CqlValue::Boolean(false)),
            Some(CqlValue::BigInt(4)),
        ]);
        assert_eq!(
            lwt_outcome(&update_names, &lost).map(|o| o.head).ok(),
            Some(4)
        );
        let garbage = row(vec![Some(CqlValue::BigInt(1))]);
        assert!(matches!(
            lwt_outcome(&names, &garbage),
            Err(Error::Corrupt(_))
        ));
        let negative = row(vec![
            Some(CqlValue::Boolean(false)),
            Some(CqlValue::BigInt(-3)),
        ]);
        assert!(lwt_outcome(&update_names, &negative).is_err());
        let snapshot_names = ["[applied]", "list_id", "seq", "record"];
        let found = row(vec![
            Some(CqlValue::Boolean(false)),
            None,
            Some(CqlValue::BigInt(3)),
            Some(CqlValue::Blob(vec![1, 2])),
        ]);
        assert_eq!(lwt_applied(&found).ok(), Some(false));
        assert_eq!(
            lwt_record(&snapshot_names, &found).ok(),
            Some(Some(vec![1, 2]))
        );
        let empty = row(vec![Some(CqlValue::Boolean(true)), None, None, None]);
        assert_eq!(lwt_record(&snapshot_names, &empty).ok(), Some(None));
        let mistyped = row(vec![
            Some(CqlValue::Boolean(false)),
            None,
            None,
            Some(CqlValue::Int(1)),
        ]);
        assert!(lwt_record(&snapshot_names, &mistyped).is_err());
        let id = uuid::Uuid::new_v4();
        let taken = row(vec![
            Some(CqlValue::Boolean(false)),
            None,
            Some(CqlValue::Uuid(id)),
        ]);
        assert_eq!(
            lwt_user_id(&["[applied]", "username", "user_id"], &taken),
            Some(id)
        );
    }
}
