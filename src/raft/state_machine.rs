//! openraft's state machine over the MVCC store, and the snapshots built from it.
//!
//! Invariants: every `apply` call is one atomic MVCC batch that also records the last
//! applied log id and membership, so a crash never separates data from its position in
//! the log; with a `Durability` set, no entry is applied before it is synced in the
//! local log (the leader appends without waiting, see `log_store`); events reach the
//! observer (the watch hub) only after that batch landed; a snapshot file is complete
//! and fsynced before openraft learns of it, and holds the state at its log id although
//! apply runs on while it is written (the store's export point).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{EntryPayload, RaftSnapshotBuilder, StorageIOError, StoredMembership};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::log_store::Durability;
use super::{LogId, Member, NodeId, ProposalResult, StorageError, TypeConfig};
use crate::mvcc::{Event, ExportPoint, MvccStore, Revision};

/// Told about every applied batch, after it is durable in the MVCC store.
pub trait ApplyObserver: Send + Sync + 'static {
    /// `events` are in revision order; `revision` is the store revision after the batch.
    fn applied(&self, events: &[Event], revision: Revision);
    /// The whole state was replaced by a snapshot; the store is now at `revision`.
    fn restored(&self, revision: Revision);
}

/// The Raft position stored atomically with every MVCC batch.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct AppliedState {
    last_applied: Option<LogId>,
    last_membership: StoredMembership<NodeId, Member>,
}

type Membership = StoredMembership<NodeId, Member>;

const SNAPSHOT_MAGIC: &[u8; 8] = b"KRSNAP1\n";

fn sm_write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_state_machine(&e).into()
}

fn sm_read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_state_machine(&e).into()
}

fn snap_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_snapshot(None, &e).into()
}

fn invalid(message: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.into())
}

/// The state machine handed to openraft.
pub struct StateMachine {
    store: MvccStore,
    observer: Arc<dyn ApplyObserver>,
    snap_dir: PathBuf,
    state: AppliedState,
    applied_tx: watch::Sender<u64>,
    receiving: Option<PathBuf>,
    durability: Option<Durability>,
}

impl StateMachine {
    /// Opens the state machine over `store`, keeping snapshots in `snap_dir`.
    pub fn new(
        store: MvccStore,
        observer: Arc<dyn ApplyObserver>,
        snap_dir: &Path,
    ) -> Result<Self, std::io::Error> {
        std::fs::create_dir_all(snap_dir)?;
        let state = match store.meta().map_err(|e| invalid(e.to_string()))? {
            Some(bytes) => decode_state(&bytes)?,
            None => AppliedState::default(),
        };
        let applied = state.last_applied.map(|l| l.index).unwrap_or(0);
        let (applied_tx, _) = watch::channel(applied);
        // Leftovers of a snapshot transfer interrupted by a crash.
        for entry in std::fs::read_dir(snap_dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(StateMachine {
            store,
            observer,
            snap_dir: snap_dir.to_owned(),
            state,
            applied_tx,
            receiving: None,
            durability: None,
        })
    }

    /// Applies an entry only once it is synced in the local log: required when the
    /// log store acknowledges the leader's own entries before syncing them.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = Some(durability);
        self
    }

    /// The index of the last applied entry, as it changes.
    pub fn applied_index(&self) -> watch::Receiver<u64> {
        self.applied_tx.subscribe()
    }

    fn latest_snapshot_file(&self) -> Result<Option<PathBuf>, std::io::Error> {
        latest_snapshot(&self.snap_dir)
    }
}

fn decode_state(bytes: &[u8]) -> Result<AppliedState, std::io::Error> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(s, _)| s)
        .map_err(|e| invalid(format!("applied state: {e}")))
}

fn encode_state(state: &AppliedState) -> Result<Vec<u8>, std::io::Error> {
    bincode::serde::encode_to_vec(state, bincode::config::standard())
        .map_err(|e| invalid(e.to_string()))
}

/// Marks a store as holding data that no Raft log produced (a restored snapshot):
/// nothing applied, no membership. The member then bootstraps a new cluster on it.
pub fn reset_applied_state(store: &MvccStore) -> Result<(), std::io::Error> {
    let bytes = encode_state(&AppliedState::default())?;
    store
        .apply(std::iter::empty(), Some(&bytes))
        .map_err(|e| invalid(e.to_string()))?;
    Ok(())
}

/// The newest complete snapshot file in `dir`, by the (term, index) in its name.
fn latest_snapshot(dir: &Path) -> Result<Option<PathBuf>, std::io::Error> {
    let mut best: Option<((u64, u64), PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "snap") {
            continue;
        }
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let mut parts = stem.split('-');
        let (Some(term), Some(index)) = (
            parts.next().and_then(|t| u64::from_str_radix(t, 16).ok()),
            parts.next().and_then(|i| u64::from_str_radix(i, 16).ok()),
        ) else {
            continue;
        };
        if best.as_ref().is_none_or(|(k, _)| (term, index) > *k) {
            best = Some(((term, index), path));
        }
    }
    Ok(best.map(|(_, p)| p))
}

/// Removes every snapshot file in `dir` except `keep`.
fn remove_other_snapshots(dir: &Path, keep: &Path) -> Result<(), std::io::Error> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path != keep && path.extension().is_some_and(|e| e == "snap") {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn snapshot_file_name(meta: &SnapshotMeta<NodeId, Member>) -> String {
    let (term, index) = meta
        .last_log_id
        .map(|l| (l.leader_id.term, l.index))
        .unwrap_or((0, 0));
    format!("{term:016x}-{index:016x}.snap")
}

/// Writes the snapshot header: magic, then the length-prefixed bincode meta.
fn write_header(
    out: &mut impl Write,
    meta: &SnapshotMeta<NodeId, Member>,
) -> Result<(), std::io::Error> {
    let bytes = bincode::serde::encode_to_vec(meta, bincode::config::standard())
        .map_err(|e| invalid(e.to_string()))?;
    out.write_all(SNAPSHOT_MAGIC)?;
    out.write_all(&(bytes.len() as u32).to_be_bytes())?;
    out.write_all(&bytes)
}

/// Reads and checks a snapshot header, leaving `input` at the MVCC dump.
pub fn read_header(input: &mut impl Read) -> Result<SnapshotMeta<NodeId, Member>, std::io::Error> {
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic)?;
    if &magic != SNAPSHOT_MAGIC {
        return Err(invalid("not a kuberaft snapshot (bad magic)"));
    }
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > 64 << 20 {
        return Err(invalid("snapshot header too large"));
    }
    let mut bytes = vec![0u8; len];
    input.read_exact(&mut bytes)?;
    bincode::serde::decode_from_slice(&bytes, bincode::config::standard())
        .map(|(m, _)| m)
        .map_err(|e| invalid(format!("snapshot header: {e}")))
}

fn sync_dir(dir: &Path) -> Result<(), std::io::Error> {
    std::fs::File::open(dir)?.sync_all()
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        Ok((self.state.last_applied, self.state.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ProposalResult>, StorageError>
    where
        I: IntoIterator<Item = super::Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<super::Entry> = entries.into_iter().collect();
        if let (Some(d), Some(last)) = (&self.durability, entries.last()) {
            d.wait(last.log_id.index).await.map_err(sm_write_err)?;
        }
        let mut state = self.state.clone();
        let mut counts = Vec::with_capacity(entries.len());
        for entry in &entries {
            state.last_applied = Some(entry.log_id);
            match &entry.payload {
                EntryPayload::Blank => counts.push(0),
                EntryPayload::Normal(p) => counts.push(p.requests.len()),
                EntryPayload::Membership(m) => {
                    state.last_membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    counts.push(0);
                }
            }
        }
        let requests = entries.iter().flat_map(|e| match &e.payload {
            EntryPayload::Normal(p) => p.requests.as_slice(),
            _ => &[],
        });
        let meta = encode_state(&state).map_err(sm_write_err)?;
        let started = std::time::Instant::now();
        let out = self
            .store
            .apply(requests, Some(&meta))
            .map_err(sm_write_err)?;
        crate::metrics::observe_seconds(
            "etcd_disk_backend_commit_duration_seconds",
            started.elapsed(),
        );
        self.state = state;
        self.observer.applied(&out.events, out.revision);
        let mut applied = out.applied.into_iter();
        let results = counts
            .into_iter()
            .zip(&entries)
            .map(|(n, entry)| ProposalResult {
                applied: applied.by_ref().take(n).collect(),
                index: entry.log_id.index,
            })
            .collect();
        if let Some(last) = self.state.last_applied {
            self.applied_tx.send_replace(last.index);
        }
        metrics::counter!("etcd_server_proposals_applied_total").increment(entries.len() as u64);
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        // Fix the store's state now, while apply waits for us: the point and the meta
        // then describe the same position in the log. Taking the point copies only the
        // small records and the last batch blob; the dump itself runs in the builder,
        // after apply resumed.
        let meta = SnapshotMeta {
            last_log_id: self.state.last_applied,
            last_membership: self.state.last_membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                self.state
                    .last_applied
                    .map(|l| l.leader_id.term)
                    .unwrap_or(0),
                self.state.last_applied.map(|l| l.index).unwrap_or(0)
            ),
        };
        let started = std::time::Instant::now();
        let point = tokio::task::block_in_place(|| self.store.export_point());
        SnapshotBuilder {
            store: self.store.clone(),
            snap_dir: self.snap_dir.clone(),
            meta,
            point: point.map_err(|e| e.to_string()).map(Some),
            started,
            paused: started.elapsed(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.snap_dir.join("receiving.snap.tmp");
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .await
            .map_err(snap_err)?;
        self.receiving = Some(path);
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Member>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let received = self
            .receiving
            .take()
            .ok_or_else(|| snap_err(invalid("no snapshot is being received")))?;
        let mut file = snapshot.into_std().await;
        let store = self.store.clone();
        let final_path = self.snap_dir.join(snapshot_file_name(meta));
        let expected = meta.clone();
        let started = std::time::Instant::now();
        tokio::task::block_in_place(|| -> Result<(), std::io::Error> {
            use std::io::Seek;
            file.sync_all()?;
            file.seek(std::io::SeekFrom::Start(0))?;
            let mut input = std::io::BufReader::with_capacity(1 << 20, &mut file);
            let header = read_header(&mut input)?;
            if header.last_log_id != expected.last_log_id {
                return Err(invalid(format!(
                    "snapshot header says {:?}, openraft says {:?}",
                    header.last_log_id, expected.last_log_id
                )));
            }
            store
                .import(&mut input)
                .map_err(|e| invalid(e.to_string()))?;
            std::fs::rename(&received, &final_path)?;
            remove_other_snapshots(final_path.parent().unwrap_or(Path::new(".")), &final_path)?;
            sync_dir(final_path.parent().unwrap_or(Path::new(".")))
        })
        .map_err(snap_err)?;
        crate::metrics::observe_seconds(
            "etcd_snap_db_save_total_duration_seconds",
            started.elapsed(),
        );
        // The dump carries the applied state of the sender at the snapshot's log id.
        self.state = AppliedState {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
        };
        let stored = self
            .store
            .meta()
            .map_err(sm_read_err)?
            .map(|b| decode_state(&b))
            .transpose()
            .map_err(sm_read_err)?;
        if stored.as_ref().map(|s| s.last_applied) != Some(meta.last_log_id) {
            // Record the position explicitly so a restart sees the installed state.
            let bytes = encode_state(&self.state).map_err(sm_write_err)?;
            self.store
                .apply(std::iter::empty(), Some(&bytes))
                .map_err(sm_write_err)?;
        }
        self.observer.restored(self.store.current_revision());
        if let Some(last) = meta.last_log_id {
            self.applied_tx.send_replace(last.index);
        }
        tracing::info!(snapshot = %meta.snapshot_id, revision = self.store.current_revision(), "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let Some(path) = self.latest_snapshot_file().map_err(sm_read_err)? else {
            return Ok(None);
        };
        let mut file = std::fs::File::open(&path).map_err(sm_read_err)?;
        let meta = read_header(&mut file).map_err(sm_read_err)?;
        let file = tokio::fs::File::open(&path).await.map_err(sm_read_err)?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(file),
        }))
    }
}

/// Writes the snapshot of the point `get_snapshot_builder` fixed: dump, fsync, rename,
/// prune.
pub struct SnapshotBuilder {
    store: MvccStore,
    snap_dir: PathBuf,
    meta: SnapshotMeta<NodeId, Member>,
    /// `None` once a build took it.
    point: Result<Option<ExportPoint>, String>,
    /// When the builder was made (for `etcd_debugging_snap_save_total_duration_seconds`).
    started: std::time::Instant,
    /// How long apply waited for the export point.
    paused: std::time::Duration,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let point = match &mut self.point {
            Ok(point) => point
                .take()
                .ok_or_else(|| snap_err(invalid("this snapshot was already built")))?,
            Err(e) => {
                return Err(snap_err(invalid(format!(
                    "fixing the state machine's state: {e}"
                ))))
            }
        };
        let tmp = self
            .snap_dir
            .join(format!("{}.tmp", snapshot_file_name(&self.meta)));
        let final_path = self.snap_dir.join(snapshot_file_name(&self.meta));
        let store = self.store.clone();
        let dir = self.snap_dir.clone();
        let path = final_path.clone();
        let meta = self.meta.clone();
        let dump = tmp.clone();
        let written = tokio::task::spawn_blocking(move || -> Result<(), std::io::Error> {
            let file = WriteBehind::new(std::fs::File::create(&dump)?);
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            write_header(&mut out, &meta)?;
            point.write(&mut out).map_err(|e| invalid(e.to_string()))?;
            let file = out.into_inner().map_err(|e| e.into_error())?.file;
            // Logs up to the snapshot may be purged once we return: make the state they
            // produced, and the dump, durable first.
            file.sync_all()?;
            store.sync().map_err(|e| invalid(e.to_string()))?;
            std::fs::rename(&dump, &path)?;
            sync_dir(&dir)?;
            remove_other_snapshots(&dir, &path)
        })
        .await
        .map_err(|e| snap_err(invalid(e.to_string())))?;
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(snap_err(e));
        }
        metrics::counter!("etcd_debugging_snap_save_total_num").increment(1);
        crate::metrics::observe_seconds(
            "etcd_debugging_snap_save_total_duration_seconds",
            self.started.elapsed(),
        );
        let file = tokio::fs::File::open(&final_path).await.map_err(snap_err)?;
        tracing::info!(
            snapshot = %self.meta.snapshot_id,
            apply_paused_ms = self.paused.as_millis() as u64,
            total_ms = self.started.elapsed().as_millis() as u64,
            "built snapshot"
        );
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(file),
        })
    }
}

/// Bytes of a snapshot dump written between two fdatasyncs of it.
const DUMP_SYNC_BYTES: usize = 4 << 20;

/// The snapshot dump's file, fdatasynced every `DUMP_SYNC_BYTES` as it is written.
///
/// Why: a dump is the whole store (hundreds of MB), written while the members go on
/// committing. Left in the page cache until the final fsync (or the kernel's own
/// writeback), all of it queues on the disk ahead of the WAL's fdatasyncs, and a
/// commit can wait behind all of it. Synced as it goes, at most a few MB are ahead of
/// a commit: three members of 360 MB, snapshotting every 5 s under the watch fan-out
/// bench, saw a worst event latency of 11–22 ms instead of 42–62 ms (the p99, 7–9
/// ms, is the same: the disk is as busy either way).
struct WriteBehind {
    file: std::fs::File,
    /// Bytes written since the last fdatasync.
    unsynced: usize,
}

impl WriteBehind {
    fn new(file: std::fs::File) -> WriteBehind {
        WriteBehind { file, unsynced: 0 }
    }
}

impl Write for WriteBehind {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n;
        if self.unsynced >= DUMP_SYNC_BYTES {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl ApplyObserver for crate::mvcc::WatchHub {
    fn applied(&self, events: &[Event], revision: Revision) {
        self.publish(events, revision);
    }

    fn restored(&self, revision: Revision) {
        crate::mvcc::WatchHub::restored(self, revision);
    }
}
