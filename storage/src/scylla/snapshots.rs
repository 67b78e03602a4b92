//! Writing and reading snapshots: inline when small, otherwise chunks plus a pointer row
//! written last (`chunks.rs` has the format, `storage/SCHEMA.md` "Snapshots" the reasoning).

use uuid::Uuid;

use super::chunks::{self, Chunking, Reassembly, SnapshotPointer, StoredSnapshot};
use super::errors;
use super::rows::{self, to_i64, to_u64};
use super::ScyllaStore;
use crate::record;
use crate::{Error, Snapshot};

/// How many times a read restarts because a newer snapshot replaced the one it was reading.
const READ_ATTEMPTS: u32 = 4;

/// The outcome of `INSERT INTO snapshots … IF NOT EXISTS`.
enum Insert {
    /// Our row is stored.
    Applied,
    /// A row was there: its record, when the server returned one.
    Found(Option<Vec<u8>>),
}

/// The outcome of reading one pointer's chunks.
enum ChunkRead {
    /// Every chunk was there and the checksum matched.
    Complete(Snapshot),
    /// A chunk is gone: a newer snapshot's cleanup deleted it, or the store is damaged.
    Missing(u32),
}

impl ScyllaStore {
    /// Stores `snapshot` unless a snapshot at its seq or newer is stored. A small body goes
    /// inline in one `INSERT … IF NOT EXISTS`; a large one is written as chunks under a fresh
    /// write id, then the pointer row is inserted the same way, so it becomes visible at once
    /// and whole. Then every older snapshot row and chunk is dropped (never anything at or
    /// above this seq, so never the newest snapshot's chunks).
    pub(super) async fn put_snapshot(&self, list: Uuid, snapshot: Snapshot) -> Result<(), Error> {
        let seq = to_i64(snapshot.seq, "snapshot seq")?;
        let stored = self.retry(|| self.latest_snapshot_seq(list)).await?;
        if stored.is_some_and(|stored| stored >= snapshot.seq) {
            return Ok(());
        }
        let (record, write_id) = if snapshot.body.len() <= chunks::INLINE_SNAPSHOT_BYTES_MAX {
            (record::encode_snapshot(&snapshot), None)
        } else {
            let write_id = Uuid::new_v4();
            let pointer = self.write_chunks(list, &snapshot, write_id).await?;
            (pointer.encode(), Some(write_id))
        };
        // Re-running the insert is harmless: if an earlier attempt applied, it finds our row.
        let found = self
            .retry(|| self.insert_snapshot_row(list, seq, &record))
            .await?;
        if let (Insert::Found(found), Some(write_id)) = (found, write_id) {
            self.drop_lost_write(list, snapshot.seq, write_id, found.as_deref())
                .await;
        }
        let st = &self.inner.st;
        for (stmt, what) in [
            (&st.snapshot_delete_below, "drop older snapshots"),
            (&st.chunk_delete_below, "drop older snapshot chunks"),
        ] {
            self.retry(|| async {
                self.inner
                    .session
                    .execute_unpaged(stmt, (list, seq))
                    .await
                    .map(|_| ())
                    .map_err(errors::exec(what))
            })
            .await?;
        }
        Ok(())
    }

    /// Writes the chunks of `snapshot` one by one (each is checksummed as it goes, so no await
    /// waits behind a whole-body pass) and returns the pointer that describes them. A failure
    /// leaves orphan chunks under an unused write id: never read, dropped by a later snapshot.
    async fn write_chunks(
        &self,
        list: Uuid,
        snapshot: &Snapshot,
        write_id: Uuid,
    ) -> Result<SnapshotPointer, Error> {
        let seq = to_i64(snapshot.seq, "snapshot seq")?;
        let mut chunking = Chunking::new(&snapshot.body, chunks::CHUNK_BYTES)?;
        for (index, chunk) in chunking.by_ref() {
            let index = i32::try_from(index)
                .map_err(|_| Error::InvalidArgument(format!("snapshot chunk {index}")))?;
            self.retry(|| async {
                let values = (list, seq, write_id, index, chunk);
                self.inner
                    .session
                    .execute_unpaged(&self.inner.st.chunk_insert, values)
                    .await
                    .map(|_| ())
                    .map_err(errors::exec("write snapshot chunk"))
            })
            .await?;
        }
        chunking.finish(snapshot.seq, write_id)
    }

    /// `INSERT INTO snapshots … IF NOT EXISTS` at `(list, seq)`.
    async fn insert_snapshot_row(
        &self,
        list: Uuid,
        seq: i64,
        record: &[u8],
    ) -> Result<Insert, Error> {
        let result = self
            .inner
            .session
            .execute_unpaged(&self.inner.st.snapshot_insert, (list, seq, record))
            .await
            .map_err(errors::exec("write snapshot"))?;
        let rows = result
            .into_rows_result()
            .map_err(errors::rows_shape("write snapshot"))?;
        let names: Vec<&str> = rows.column_specs().iter().map(|c| c.name()).collect();
        let row = rows
            .first_row::<scylla::value::Row>()
            .map_err(|e| Error::Corrupt(format!("write snapshot: {e}")))?;
        if rows::lwt_applied(&row)? {
            return Ok(Insert::Applied);
        }
        Ok(Insert::Found(rows::lwt_record(&names, &row)?))
    }

    /// Our pointer found a row at its seq. If that row is certainly another write's (another
    /// writer of the same seq won), our chunks are unreachable: drop them now rather than at
    /// the next snapshot. Only our own write id is deleted, so the winner's chunks are
    /// untouched; a row we cannot read (or our own, from an earlier attempt that applied) keeps
    /// our chunks, which at worst are an orphan. Best effort.
    async fn drop_lost_write(&self, list: Uuid, seq: u64, write_id: Uuid, found: Option<&[u8]>) {
        let theirs = match found.map(|record| chunks::decode_stored(seq, record)) {
            Some(Ok(StoredSnapshot::Inline(_))) => true,
            Some(Ok(StoredSnapshot::Chunked(pointer))) => pointer.write_id != write_id,
            Some(Err(_)) | None => false,
        };
        if !theirs {
            return;
        }
        let dropped = async {
            let seq = to_i64(seq, "snapshot seq")?;
            self.retry(|| async {
                self.inner
                    .session
                    .execute_unpaged(&self.inner.st.chunk_delete_write, (list, seq, write_id))
                    .await
                    .map(|_| ())
                    .map_err(errors::exec("drop lost snapshot chunks"))
            })
            .await
        };
        if let Err(err) = dropped.await {
            tracing::warn!(%list, seq, %err, "scylla: could not drop the chunks of a snapshot that lost to an equal seq");
        }
    }

    /// The newest snapshot. A chunked one is read chunk by chunk and verified; a chunk that is
    /// missing because a newer snapshot replaced this one mid-read restarts the read with the
    /// newer pointer, and only a chunk missing under a pointer that is still the newest is
    /// corruption.
    pub(super) async fn get_snapshot(&self, list: Uuid) -> Result<Option<Snapshot>, Error> {
        let mut newest = self.latest_snapshot_row(list).await?;
        for _ in 0..READ_ATTEMPTS {
            let pointer = match newest {
                None => return Ok(None),
                Some(StoredSnapshot::Inline(snapshot)) => return Ok(Some(snapshot)),
                Some(StoredSnapshot::Chunked(pointer)) => pointer,
            };
            let index = match self.read_chunks(list, pointer).await? {
                ChunkRead::Complete(snapshot) => return Ok(Some(snapshot)),
                ChunkRead::Missing(index) => index,
            };
            newest = self.latest_snapshot_row(list).await?;
            if matches!(&newest, Some(StoredSnapshot::Chunked(now)) if *now == pointer) {
                return Err(Error::Corrupt(format!(
                    "list {list}: chunk {index} of snapshot seq {} is missing",
                    pointer.seq
                )));
            }
        }
        Err(Error::Unavailable(format!(
            "list {list}: the snapshot was replaced during {READ_ATTEMPTS} reads in a row; retry"
        )))
    }

    async fn read_chunks(&self, list: Uuid, pointer: SnapshotPointer) -> Result<ChunkRead, Error> {
        let seq = to_i64(pointer.seq, "snapshot seq")?;
        let mut reassembly = Reassembly::new(pointer)?;
        for index in 0..pointer.chunk_count {
            let chunk = i32::try_from(index)
                .map_err(|_| Error::Corrupt(format!("snapshot chunk index {index}")))?;
            let values = (list, seq, pointer.write_id, chunk);
            let result = self
                .inner
                .session
                .execute_unpaged(&self.inner.st.chunk_select, values)
                .await
                .map_err(errors::exec("read snapshot chunk"))?;
            let rows = result
                .into_rows_result()
                .map_err(errors::rows_shape("read snapshot chunk"))?;
            let row = rows
                .maybe_first_row::<(&[u8],)>()
                .map_err(|e| Error::Corrupt(format!("snapshot chunk: {e}")))?;
            match row {
                Some((bytes,)) => reassembly.push(index, bytes)?,
                None => return Ok(ChunkRead::Missing(index)),
            }
        }
        reassembly.finish().map(ChunkRead::Complete)
    }

    /// The newest `snapshots` row, decoded (clustering order is seq descending).
    async fn latest_snapshot_row(&self, list: Uuid) -> Result<Option<StoredSnapshot>, Error> {
        let result = self
            .inner
            .session
            .execute_unpaged(&self.inner.st.snapshot_latest, (list,))
            .await
            .map_err(errors::exec("read snapshot"))?;
        let rows = result
            .into_rows_result()
            .map_err(errors::rows_shape("read snapshot"))?;
        let row = rows
            .maybe_first_row::<(i64, &[u8])>()
            .map_err(|e| Error::Corrupt(format!("snapshot row: {e}")))?;
        let Some((seq, record)) = row else {
            return Ok(None);
        };
        chunks::decode_stored(to_u64(seq, "snapshot seq")?, record).map(Some)
    }

    async fn latest_snapshot_seq(&self, list: Uuid) -> Result<Option<u64>, Error> {
        let result = self
            .inner
            .session
            .execute_unpaged(&self.inner.st.snapshot_latest_seq, (list,))
            .await
            .map_err(errors::exec("read snapshot seq"))?;
        let rows = result
            .into_rows_result()
            .map_err(errors::rows_shape("read snapshot seq"))?;
        let row = rows
            .maybe_first_row::<(i64,)>()
            .map_err(|e| Error::Corrupt(format!("snapshot seq: {e}")))?;
        row.map(|(seq,)| to_u64(seq, "snapshot seq")).transpose()
    }
}
