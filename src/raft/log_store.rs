//! The Raft log store: openraft's storage-v2 `RaftLogStorage` and `RaftLogReader`
//! over our write-ahead log (`wal`). Entries are bincode-encoded `Entry`s in WAL entry
//! records; the vote and the committed log id travel together as the WAL's hard state;
//! the last purged log id is the WAL's purge marker.
//!
//! Invariant: `append`'s callback reports success only after its entries are
//! fdatasynced — except, when enabled, for the leader's own new entries (below) —
//! and `save_vote` returns only after the vote is fdatasynced; every write reaches
//! the disk in call order through the WAL's single writer, and no blocking I/O runs
//! on the async worker threads.
//!
//! # The leader syncs in parallel with replication
//!
//! openraft 0.9 runs `append` inside its core task and waits for the callback before
//! it sends the entries to the followers, so the leader's fdatasync and the
//! followers' would run one after the other. Raft allows the leader to write its own
//! log in parallel with replicating it (Raft thesis §10.2.1; etcd does so), as long
//! as nothing acts on a commit before the entry is durable on a quorum. Here the
//! leader's callback runs as soon as the entries are queued, and the commit is then
//! made safe by two waits on [`Durability`]: the state machine applies an entry (so
//! no client sees it and no reply is sent) only once it is synced locally, and the
//! leader tells followers a commit index only once the entries up to it are synced
//! locally. An entry that
//! anyone applies is therefore durable on the leader and on the followers whose
//! acknowledgements (sent only after their own fdatasync) committed it: a quorum.
//! Only entries that carry the leader's own committed vote (term and id) are
//! acknowledged early; entries received from another leader never are.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, Range, RangeBounds};
use std::path::Path;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, OptionalSend, RaftLogReader, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::wal::{Batch, Wal, WalReader};
pub use super::wal::{WalError, WalOptions};
use super::{Entry, LogId, NodeId, StorageError, TypeConfig, Vote};

/// The Raft log, vote and committed log id of one member, in one WAL directory.
///
/// The committed log id is saved without an fdatasync of its own: it reaches the disk
/// with the next append or vote, or when the store is dropped. Dropping the store
/// waits for the WAL's writer thread to finish what is queued.
pub struct LogStore {
    wal: Wal,
    reader: LogReader,
    hard: HardState,
    last_purged: Option<LogId>,
    /// Set by `sync_in_parallel_as`: this member's id, whose own entries as leader
    /// are acknowledged to openraft before they are synced.
    leader_self: Option<NodeId>,
}

/// Waits for entries to be durable in this member's log (see the module docs).
#[derive(Clone)]
pub struct Durability {
    wal: WalReader,
}

impl Durability {
    /// Returns once the entry at `index` (and every one before it) is fdatasynced.
    pub async fn wait(&self, index: u64) -> Result<(), WalError> {
        self.wal.wait_synced(index).await
    }
}

/// Reads entries for replication; clones share the store's index and cache.
#[derive(Clone)]
pub struct LogReader {
    wal: WalReader,
}

/// What the WAL keeps as the caller's hard state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct HardState {
    vote: Option<Vote>,
    committed: Option<LogId>,
}

impl LogStore {
    /// Opens the log in `dir` (created if absent), recovering it from its segments.
    /// Blocks on disk I/O; call it before the runtime starts or in `spawn_blocking`.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<LogStore, WalError> {
        let wal = Wal::open(dir, opts)?;
        let hard = match wal.state() {
            Some(blob) => decode::<HardState>(&blob, "hard state")?,
            None => HardState::default(),
        };
        let last_purged = match wal.purged() {
            Some((_, marker)) => Some(decode::<LogId>(&marker, "last purged log id")?),
            None => None,
        };
        let reader = LogReader { wal: wal.reader() };
        Ok(LogStore {
            wal,
            reader,
            hard,
            last_purged,
            leader_self: None,
        })
    }

    /// Acknowledges this member's own entries, while it leads, as soon as they are
    /// queued. Whoever enables it must make the state machine and the commit index
    /// sent to followers wait on [`LogStore::durability`] (see the module docs).
    ///
    /// It also keeps this member from resuming leadership in the term it led before a
    /// restart (openraft 0.9 restores a member whose saved vote is its own committed
    /// one as leader at once). That member may have lost entries it had queued but
    /// not synced, while a follower stored them: appending anew in the same term would
    /// put a different entry under the same term and index, which the follower takes
    /// for a match and applies. The saved vote is read back as an uncommitted vote for
    /// itself (it still votes for no one else in that term), so leadership comes
    /// from a new election in a higher term, whose entries replace the stale ones.
    pub fn sync_in_parallel_as(mut self, id: NodeId) -> LogStore {
        self.leader_self = Some(id);
        if let Some(vote) = self
            .hard
            .vote
            .filter(|v| v.committed && v.leader_id.node_id == id)
        {
            tracing::info!(
                term = vote.leader_id.term,
                "led before the restart: standing for election instead of resuming"
            );
            self.hard.vote = Some(Vote::new(vote.leader_id.term, id));
        }
        self
    }

    /// A reader of this log's entries, for use outside openraft.
    pub fn reader(&self) -> LogReader {
        self.reader.clone()
    }

    /// A handle that waits for entries of this log to be durable.
    pub fn durability(&self) -> Durability {
        Durability {
            wal: self.reader.wal.clone(),
        }
    }

    /// Whether an entry with `log_id` is this member's own, appended while it leads
    /// under the vote saved last.
    fn own_as_leader(&self, log_id: &LogId) -> bool {
        match (self.leader_self, &self.hard.vote) {
            (Some(me), Some(vote)) => {
                vote.committed && vote.leader_id.node_id == me && log_id.leader_id == vote.leader_id
            }
            _ => false,
        }
    }

    /// Waits until everything written so far, including the committed log id, is on disk.
    pub async fn flush(&mut self) -> Result<(), WalError> {
        let (tx, rx) = oneshot::channel();
        self.wal.flush(Box::new(move |r| {
            let _ = tx.send(r);
        }))?;
        rx.await.map_err(|_| WalError::Stopped)?
    }

    /// The last log id present, or the last purged one when the log is empty.
    async fn last_log_id(&self) -> Result<Option<LogId>, WalError> {
        let Some(last) = self.reader.wal.last_index() else {
            return Ok(self.last_purged);
        };
        let entries = self.reader.entries(last..last + 1).await?;
        match entries.last() {
            Some(e) => Ok(Some(e.log_id)),
            None => Err(WalError::Internal(format!(
                "last entry {last} vanished while read"
            ))),
        }
    }

    async fn save_hard_state(&mut self, hard: HardState) -> Result<(), WalError> {
        let blob = encode(&hard, "hard state")?;
        let (tx, rx) = oneshot::channel();
        self.wal.save_state_synced(
            blob,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.await.map_err(|_| WalError::Stopped)??;
        self.hard = hard;
        Ok(())
    }
}

impl LogReader {
    /// The id of the last entry in the log (None when the log holds no entry).
    pub async fn last_log_id(&self) -> Result<Option<LogId>, WalError> {
        let Some(last) = self.wal.last_index() else {
            return Ok(None);
        };
        Ok(self.entries(last..last + 1).await?.last().map(|e| e.log_id))
    }

    /// The entries of `range` that are in the log, in order. Reads that miss the
    /// cache run on the blocking pool.
    pub async fn entries(&self, range: Range<u64>) -> Result<Vec<Entry>, WalError> {
        let plan = self.wal.plan(range);
        let raw = if plan.needs_io() {
            tokio::task::spawn_blocking(move || plan.execute())
                .await
                .map_err(|e| WalError::Internal(format!("read task failed: {e}")))??
        } else {
            plan.execute()?
        };
        let mut out = Vec::with_capacity(raw.len());
        for (index, bytes) in raw {
            let entry: Entry = decode(&bytes, "log entry")?;
            if entry.log_id.index != index {
                return Err(WalError::Decode {
                    what: "log entry",
                    reason: format!("record for index {index} holds entry {}", entry.log_id),
                });
            }
            out.push(entry);
        }
        Ok(out)
    }
}

fn encode<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>, WalError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| {
        WalError::Encode {
            what,
            reason: e.to_string(),
        }
    })
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, WalError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| WalError::Decode {
            what,
            reason: e.to_string(),
        })?;
    if used != bytes.len() {
        return Err(WalError::Decode {
            what,
            reason: format!("{} trailing bytes", bytes.len() - used),
        });
    }
    Ok(value)
}

fn to_range<RB: RangeBounds<u64>>(range: &RB) -> Range<u64> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    start..end.max(start)
}

fn read_err(e: WalError) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err(e: WalError) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.entries(to_range(&range)).await.map_err(read_err)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.reader
            .entries(to_range(&range))
            .await
            .map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_log_id = self.last_log_id().await.map_err(read_err)?;
        Ok(LogState {
            last_purged_log_id: self.last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let hard = HardState {
            vote: Some(*vote),
            committed: self.hard.committed,
        };
        self.save_hard_state(hard)
            .await
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.hard.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let hard = HardState {
            vote: self.hard.vote,
            committed,
        };
        let blob = encode(&hard, "hard state").map_err(write_err)?;
        self.wal.save_state(blob).map_err(write_err)?;
        self.hard = hard;
        metrics::gauge!("kuberaft_raft_commit_index")
            .set(committed.map(|c| c.index).unwrap_or(0) as f64);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.hard.committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = Batch::new();
        let mut own = true;
        for entry in entries {
            let id = entry.log_id;
            own &= self.own_as_leader(&id);
            batch
                .push(id.index, id.leader_id.term, |buf| {
                    bincode::serde::encode_into_std_write(&entry, buf, bincode::config::standard())
                        .map(|_| ())
                        .map_err(|e| WalError::Encode {
                            what: "log entry",
                            reason: e.to_string(),
                        })
                })
                .map_err(|e| {
                    StorageError::from(StorageIOError::write_log_entry(id, AnyError::new(&e)))
                })?;
        }
        if !own || batch.is_empty() {
            return self
                .wal
                .append(
                    batch,
                    Box::new(move |r| callback.log_io_completed(r.map_err(io::Error::other))),
                )
                .map_err(write_err);
        }
        // The leader's own entries: acknowledged once queued; a failed sync is
        // recorded by the WAL, which then fails every `Durability::wait`, so the
        // state machine stops with a storage error and nothing unsynced is applied.
        self.wal
            .append(
                batch,
                Box::new(|r| {
                    if let Err(e) = r {
                        tracing::error!(error = %e, "WAL: syncing the leader's entries failed");
                    }
                }),
            )
            .map_err(write_err)?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.wal.truncate(log_id.index).map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        if self.last_purged.is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        let marker = encode(&log_id, "last purged log id").map_err(write_err)?;
        let (tx, rx) = oneshot::channel();
        self.wal
            .purge(
                log_id.index,
                marker,
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            )
            .map_err(write_err)?;
        self.last_purged = Some(log_id);
        rx.await
            .map_err(|_| WalError::Stopped)
            .and_then(|r| r)
            .map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use openraft::storage::{RaftLogStorageExt, RaftStateMachine, Snapshot};
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::{
        CommittedLeaderId, EntryPayload, Membership, RaftLogId, RaftSnapshotBuilder, SnapshotMeta,
        StoredMembership,
    };
    use tempfile::TempDir;
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

    use super::*;
    use crate::mvcc::{PutRequest, Request};
    use crate::raft::{Member, NodeId, Proposal, ProposalResult};

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn proposal_entry(term: u64, index: u64, value_len: usize) -> Entry {
        let put = PutRequest {
            key: format!("/registry/configmaps/default/cm-{index}")
                .into_bytes()
                .into(),
            value: vec![b'v'; value_len].into(),
            ..Default::default()
        };
        Entry {
            log_id: log_id(term, index),
            payload: EntryPayload::Normal(Proposal {
                requests: vec![Request::Put(put)],
            }),
        }
    }

    fn small_opts() -> WalOptions {
        WalOptions {
            segment_bytes: 8 << 10,
            preallocate: false,
            cache_entries: 2,
            cache_bytes: 1 << 20,
        }
    }

    fn storage_err(e: impl std::error::Error + 'static) -> StorageError {
        StorageIOError::read_logs(AnyError::new(&e)).into()
    }

    fn open(dir: &Path, opts: WalOptions) -> Result<LogStore, Box<StorageError>> {
        LogStore::open(dir, opts).map_err(|e| Box::new(storage_err(e)))
    }

    /// Test results box openraft's large error.
    type TestResult = Result<(), Box<StorageError>>;

    /// A state machine in memory, with snapshots in files: just enough for the suite.
    #[derive(Clone)]
    struct MemStateMachine {
        inner: Arc<Mutex<SmInner>>,
    }

    struct SmInner {
        dir: PathBuf,
        last_applied: Option<LogId>,
        membership: StoredMembership<NodeId, Member>,
        current: Option<(SnapshotMeta<NodeId, Member>, PathBuf)>,
        files: u64,
    }

    type SmState = (Option<LogId>, StoredMembership<NodeId, Member>);

    impl MemStateMachine {
        fn new(dir: PathBuf) -> MemStateMachine {
            MemStateMachine {
                inner: Arc::new(Mutex::new(SmInner {
                    dir,
                    last_applied: None,
                    membership: StoredMembership::default(),
                    current: None,
                    files: 0,
                })),
            }
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, SmInner> {
            self.inner.lock().expect("state machine lock")
        }

        fn next_path(&self, what: &str) -> PathBuf {
            let mut inner = self.lock();
            inner.files += 1;
            inner.dir.join(format!("{what}-{}", inner.files))
        }
    }

    impl RaftSnapshotBuilder<TypeConfig> for MemStateMachine {
        async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
            let (state, meta) = {
                let inner = self.lock();
                let state: SmState = (inner.last_applied, inner.membership.clone());
                let meta = SnapshotMeta {
                    last_log_id: inner.last_applied,
                    last_membership: inner.membership.clone(),
                    snapshot_id: format!("snapshot-{}", inner.files),
                };
                (state, meta)
            };
            let bytes = encode(&state, "snapshot").map_err(storage_err)?;
            let path = self.next_path("snapshot");
            tokio::fs::write(&path, &bytes).await.map_err(storage_err)?;
            self.lock().current = Some((meta.clone(), path.clone()));
            let file = tokio::fs::File::open(&path).await.map_err(storage_err)?;
            Ok(Snapshot {
                meta,
                snapshot: Box::new(file),
            })
        }
    }

    impl RaftStateMachine<TypeConfig> for MemStateMachine {
        type SnapshotBuilder = MemStateMachine;

        async fn applied_state(&mut self) -> Result<SmState, StorageError> {
            let inner = self.lock();
            Ok((inner.last_applied, inner.membership.clone()))
        }

        async fn apply<I>(&mut self, entries: I) -> Result<Vec<ProposalResult>, StorageError>
        where
            I: IntoIterator<Item = Entry> + OptionalSend,
            I::IntoIter: OptionalSend,
        {
            let mut inner = self.lock();
            let mut out = Vec::new();
            for entry in entries {
                inner.last_applied = Some(entry.log_id);
                if let EntryPayload::Membership(m) = entry.payload {
                    inner.membership = StoredMembership::new(Some(entry.log_id), m);
                }
                out.push(ProposalResult::default());
            }
            Ok(out)
        }

        async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
            self.clone()
        }

        async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
            let path = self.next_path("receiving");
            let file = tokio::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .await
                .map_err(storage_err)?;
            Ok(Box::new(file))
        }

        async fn install_snapshot(
            &mut self,
            meta: &SnapshotMeta<NodeId, Member>,
            mut snapshot: Box<tokio::fs::File>,
        ) -> Result<(), StorageError> {
            let mut bytes = Vec::new();
            snapshot
                .seek(std::io::SeekFrom::Start(0))
                .await
                .map_err(storage_err)?;
            snapshot
                .read_to_end(&mut bytes)
                .await
                .map_err(storage_err)?;
            let (last_applied, membership): SmState =
                decode(&bytes, "snapshot").map_err(storage_err)?;
            let path = self.next_path("snapshot");
            let mut file = tokio::fs::File::create(&path).await.map_err(storage_err)?;
            file.write_all(&bytes).await.map_err(storage_err)?;
            let mut inner = self.lock();
            inner.last_applied = last_applied;
            inner.membership = membership;
            inner.current = Some((meta.clone(), path));
            Ok(())
        }

        async fn get_current_snapshot(
            &mut self,
        ) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
            let current = self.lock().current.clone();
            let Some((meta, path)) = current else {
                return Ok(None);
            };
            let file = tokio::fs::File::open(&path).await.map_err(storage_err)?;
            Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(file),
            }))
        }
    }

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, MemStateMachine, TempDir> for Builder {
        async fn build(&self) -> Result<(TempDir, LogStore, MemStateMachine), StorageError> {
            let dir = tempfile::tempdir().map_err(storage_err)?;
            let store = open(&dir.path().join("wal"), small_opts()).map_err(|e| *e)?;
            let sm = MemStateMachine::new(dir.path().to_path_buf());
            Ok((dir, store, sm))
        }
    }

    type S = Suite<TypeConfig, LogStore, MemStateMachine, Builder, TempDir>;

    fn run_case<F, Fut>(name: &str, case: F) -> TestResult
    where
        F: FnOnce(LogStore, MemStateMachine) -> Fut,
        Fut: Future<Output = Result<(), StorageError>>,
    {
        tracing::info!("suite case {name}: expect it to pass");
        let rt = tokio::runtime::Runtime::new().map_err(storage_err)?;
        rt.block_on(async {
            let (_dir, store, sm) = Builder.build().await?;
            case(store, sm).await
        })?;
        Ok(())
    }

    /// openraft's storage conformance suite, case by case. One case is left out:
    /// `get_initial_state_membership_from_log_and_sm` has `get_initial_state` purge the
    /// log up to the state machine's last applied index 2, then appends index 1 and
    /// later index 3 after it. openraft never appends below its purge point, and this
    /// store rejects such an append (recovery would refuse the hole it leaves).
    #[test]
    fn openraft_storage_suite() -> TestResult {
        run_case(
            "last_membership_in_log_initial",
            S::last_membership_in_log_initial,
        )?;
        run_case("last_membership_in_log", S::last_membership_in_log)?;
        run_case(
            "last_membership_in_log_multi_step",
            S::last_membership_in_log_multi_step,
        )?;
        run_case("get_membership_initial", S::get_membership_initial)?;
        run_case(
            "get_membership_from_log_and_empty_sm",
            S::get_membership_from_log_and_empty_sm,
        )?;
        run_case(
            "get_membership_from_empty_log_and_sm",
            S::get_membership_from_empty_log_and_sm,
        )?;
        run_case(
            "get_membership_from_log_le_sm_last_applied",
            S::get_membership_from_log_le_sm_last_applied,
        )?;
        run_case(
            "get_membership_from_log_gt_sm_last_applied_1",
            S::get_membership_from_log_gt_sm_last_applied_1,
        )?;
        run_case(
            "get_membership_from_log_gt_sm_last_applied_2",
            S::get_membership_from_log_gt_sm_last_applied_2,
        )?;
        run_case(
            "get_initial_state_without_init",
            S::get_initial_state_without_init,
        )?;
        run_case(
            "get_initial_state_with_state",
            S::get_initial_state_with_state,
        )?;
        run_case(
            "get_initial_state_last_log_gt_sm",
            S::get_initial_state_last_log_gt_sm,
        )?;
        run_case(
            "get_initial_state_last_log_lt_sm",
            S::get_initial_state_last_log_lt_sm,
        )?;
        run_case("get_initial_state_log_ids", S::get_initial_state_log_ids)?;
        run_case(
            "get_initial_state_re_apply_committed",
            S::get_initial_state_re_apply_committed,
        )?;
        run_case("save_vote", S::save_vote)?;
        run_case("get_log_entries", S::get_log_entries)?;
        run_case("limited_get_log_entries", S::limited_get_log_entries)?;
        run_case("try_get_log_entry", S::try_get_log_entry)?;
        run_case("initial_logs", S::initial_logs)?;
        run_case("get_log_state", S::get_log_state)?;
        run_case("get_log_id", S::get_log_id)?;
        run_case("last_id_in_log", S::last_id_in_log)?;
        run_case("last_applied_state", S::last_applied_state)?;
        run_case("purge_logs_upto_0", S::purge_logs_upto_0)?;
        run_case("purge_logs_upto_5", S::purge_logs_upto_5)?;
        run_case("purge_logs_upto_20", S::purge_logs_upto_20)?;
        run_case("delete_logs_since_11", S::delete_logs_since_11)?;
        run_case("delete_logs_since_0", S::delete_logs_since_0)?;
        run_case("append_to_log", S::append_to_log)?;
        run_case("snapshot_meta", S::snapshot_meta)?;
        run_case("apply_single", S::apply_single)?;
        run_case("apply_multiple", S::apply_multiple)?;
        let rt = tokio::runtime::Runtime::new().map_err(storage_err)?;
        rt.block_on(S::transfer_snapshot(&Builder))?;
        Ok(())
    }

    #[tokio::test]
    async fn appends_below_the_purge_point_or_past_the_end_are_rejected() -> TestResult {
        let dir = tempfile::tempdir().map_err(storage_err)?;
        let mut store = open(dir.path(), small_opts())?;
        store.purge(log_id(1, 2)).await?;
        tracing::info!("expect index 1 below the purge point to be rejected, and index 3 accepted");
        assert!(store
            .blocking_append([proposal_entry(1, 1, 8)])
            .await
            .is_err());
        store.blocking_append([proposal_entry(1, 3, 8)]).await?;
        tracing::info!("expect index 5 after index 3 to be rejected, and index 4 accepted");
        assert!(store
            .blocking_append([proposal_entry(1, 5, 8)])
            .await
            .is_err());
        store.blocking_append([proposal_entry(1, 4, 8)]).await?;
        assert_eq!(store.get_log_state().await?.last_log_id, Some(log_id(1, 4)));
        Ok(())
    }

    #[tokio::test]
    async fn entries_vote_and_committed_survive_reopen() -> TestResult {
        let dir = tempfile::tempdir().map_err(storage_err)?;
        let vote = Vote::new_committed(3, 2);
        let membership = Entry {
            log_id: log_id(3, 0),
            payload: EntryPayload::Membership(Membership::new(vec![[1u64, 2, 3].into()], None)),
        };
        let mut written = vec![membership];
        written.extend((1..=40).map(|i| proposal_entry(3, i, 300)));
        {
            let mut store = open(dir.path(), small_opts())?;
            store.save_vote(&vote).await?;
            for chunk in written.chunks(7) {
                store.blocking_append(chunk.to_vec()).await?;
            }
            store.save_committed(Some(log_id(3, 35))).await?;
            assert_eq!(store.try_get_log_entries(..).await?, written);
        }
        let mut store = open(dir.path(), small_opts())?;
        assert_eq!(store.read_vote().await?, Some(vote));
        assert_eq!(store.read_committed().await?, Some(log_id(3, 35)));
        let state = store.get_log_state().await?;
        assert_eq!(
            (state.last_purged_log_id, state.last_log_id),
            (None, Some(log_id(3, 40)))
        );
        assert_eq!(store.try_get_log_entries(..).await?, written);
        let mut reader = store.get_log_reader().await;
        assert_eq!(
            reader.try_get_log_entries(10..=12).await?,
            written[10..13].to_vec()
        );
        Ok(())
    }

    #[tokio::test]
    async fn only_the_leaders_own_entries_are_acknowledged_before_the_sync() -> TestResult {
        let dir = tempfile::tempdir().map_err(storage_err)?;
        let mut store = open(dir.path(), small_opts())?.sync_in_parallel_as(1);
        let durability = store.durability();
        store.save_vote(&Vote::new_committed(3, 1)).await?;
        store
            .blocking_append((1..=3).map(|i| proposal_entry(3, i, 64)))
            .await?;
        durability.wait(3).await.map_err(storage_err)?;

        tracing::info!("expect the leader's append to be acknowledged though its write fails");
        store.wal.fail_next_write();
        store.blocking_append([proposal_entry(3, 4, 64)]).await?;
        let waited = durability.wait(4).await;
        assert!(
            matches!(waited, Err(WalError::Failed(_))),
            "an unsynced entry must never count as durable: {waited:?}"
        );
        drop(store);
        let mut store = open(dir.path(), small_opts())?;
        assert_eq!(store.get_log_state().await?.last_log_id, Some(log_id(3, 3)));

        tracing::info!("expect entries of another leader to wait for their sync, and fail with it");
        store = store.sync_in_parallel_as(1);
        store.save_vote(&Vote::new_committed(4, 2)).await?;
        store.wal.fail_next_write();
        let from_other = Entry {
            log_id: LogId::new(CommittedLeaderId::new(4, 2), 4),
            payload: EntryPayload::Blank,
        };
        assert!(store.blocking_append([from_other]).await.is_err());
        Ok(())
    }

    #[tokio::test]
    async fn a_leader_restarts_standing_for_election_not_leading() -> TestResult {
        let dir = tempfile::tempdir().map_err(storage_err)?;
        {
            let mut store = open(dir.path(), small_opts())?.sync_in_parallel_as(1);
            store.save_vote(&Vote::new_committed(9, 1)).await?;
        }
        let mut store = open(dir.path(), small_opts())?;
        assert_eq!(store.read_vote().await?, Some(Vote::new_committed(9, 1)));
        let mut store = store.sync_in_parallel_as(1);
        let vote = store.read_vote().await?;
        assert_eq!(
            vote,
            Some(Vote::new(9, 1)),
            "its own vote, no longer committed"
        );
        assert!(vote.is_some_and(|v| !v.is_committed()));

        tracing::info!("expect another member's leadership to be read back as saved");
        store.save_vote(&Vote::new_committed(10, 2)).await?;
        drop(store);
        let mut store = open(dir.path(), small_opts())?.sync_in_parallel_as(1);
        assert_eq!(store.read_vote().await?, Some(Vote::new_committed(10, 2)));
        Ok(())
    }

    #[tokio::test]
    async fn truncate_and_purge_survive_reopen() -> TestResult {
        let dir = tempfile::tempdir().map_err(storage_err)?;
        {
            let mut store = open(dir.path(), small_opts())?;
            store
                .blocking_append((1..=30).map(|i| proposal_entry(1, i, 200)))
                .await?;
            store.truncate(log_id(1, 25)).await?;
            store
                .blocking_append((25..=27).map(|i| proposal_entry(2, i, 200)))
                .await?;
            store.purge(log_id(1, 10)).await?;
            let state = store.get_log_state().await?;
            assert_eq!(state.last_purged_log_id, Some(log_id(1, 10)));
            assert_eq!(state.last_log_id, Some(log_id(2, 27)));
        }
        let mut store = open(dir.path(), small_opts())?;
        let state = store.get_log_state().await?;
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 10)));
        assert_eq!(state.last_log_id, Some(log_id(2, 27)));
        let ids: Vec<LogId> = store
            .try_get_log_entries(0..100)
            .await?
            .iter()
            .map(|e| *e.get_log_id())
            .collect();
        let want: Vec<LogId> = (11..=24)
            .map(|i| log_id(1, i))
            .chain((25..=27).map(|i| log_id(2, i)))
            .collect();
        assert_eq!(ids, want);
        Ok(())
    }

    #[tokio::test]
    async fn corrupt_entry_bytes_are_an_error_not_an_entry() -> TestResult {
        let dir = tempfile::tempdir().map_err(storage_err)?;
        let mut store = open(dir.path(), small_opts())?;
        let mut batch = Batch::new();
        batch
            .push(1, 1, |buf| {
                buf.extend_from_slice(b"\xff\xff not bincode");
                Ok(())
            })
            .map_err(storage_err)?;
        let (tx, rx) = oneshot::channel();
        store
            .wal
            .append(
                batch,
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            )
            .map_err(storage_err)?;
        rx.await.map_err(storage_err)?.map_err(storage_err)?;
        assert!(store.try_get_log_entries(1..2).await.is_err());
        Ok(())
    }

    fn quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }

    /// Collects every value recorded in the fdatasync histogram.
    struct FsyncRecorder(Arc<FsyncSamples>);

    #[derive(Default)]
    struct FsyncSamples(Mutex<Vec<f64>>);

    impl metrics::HistogramFn for FsyncSamples {
        fn record(&self, value: f64) {
            self.0.lock().expect("samples lock").push(value);
        }
    }

    impl metrics::Recorder for FsyncRecorder {
        fn describe_counter(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_gauge(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_histogram(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn register_counter(
            &self,
            _: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Counter {
            metrics::Counter::noop()
        }
        fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
            metrics::Gauge::noop()
        }
        fn register_histogram(
            &self,
            key: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Histogram {
            if key.name() == crate::raft::wal::FSYNC_HISTOGRAM {
                metrics::Histogram::from_arc(self.0.clone())
            } else {
                metrics::Histogram::noop()
            }
        }
    }

    /// Measures appends of 1 KiB entries (encode, one write, one fdatasync, callback)
    /// and the fdatasyncs themselves. Segments are 1 MiB so that a run crosses many
    /// of them and, with preallocation, pays for zero-filling as it goes. Run:
    /// `cargo test --release --lib raft::log_store::tests::bench -- --ignored --nocapture`
    /// (`WAL_BENCH_DIR` picks the directory, default /tmp).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark; prints figures"]
    async fn bench_append_fsync() -> TestResult {
        let samples = Arc::new(FsyncSamples::default());
        let installed = metrics::set_global_recorder(FsyncRecorder(samples.clone())).is_ok();
        let base = std::env::var("WAL_BENCH_DIR").unwrap_or_else(|_| "/tmp".into());
        for (per_append, appends) in [(1usize, 5000u64), (64, 300)] {
            for preallocate in [false, true] {
                let dir = tempfile::tempdir_in(&base).map_err(storage_err)?;
                let opts = WalOptions {
                    preallocate,
                    segment_bytes: 1 << 20,
                    ..WalOptions::default()
                };
                let mut store = open(dir.path(), opts)?;
                samples.0.lock().expect("samples lock").clear();
                let mut latencies = Vec::with_capacity(appends as usize);
                let started = Instant::now();
                let mut index = 0;
                for _ in 0..appends {
                    let entries: Vec<Entry> = (0..per_append)
                        .map(|k| proposal_entry(1, index + k as u64, 1024))
                        .collect();
                    index += per_append as u64;
                    let t = Instant::now();
                    store.blocking_append(entries).await?;
                    latencies.push(t.elapsed().as_secs_f64());
                }
                let elapsed = started.elapsed().as_secs_f64();
                latencies.sort_by(f64::total_cmp);
                let mut fsyncs = samples.0.lock().expect("samples lock").clone();
                fsyncs.sort_by(f64::total_cmp);
                let segments = std::fs::read_dir(dir.path()).map_err(storage_err)?.count();
                print!(
                    "entries/append={per_append:<3} preallocate={preallocate:<5} appends={appends} segments={segments:<3} \
                     appends/s={:>6.0} entries/s={:>6.0} append p50={:.3}ms p99={:.3}ms max={:.3}ms",
                    appends as f64 / elapsed,
                    (appends * per_append as u64) as f64 / elapsed,
                    quantile(&latencies, 0.5) * 1e3,
                    quantile(&latencies, 0.99) * 1e3,
                    quantile(&latencies, 1.0) * 1e3,
                );
                if installed && !fsyncs.is_empty() {
                    print!(
                        " | fdatasync n={} p50={:.3}ms p99={:.3}ms",
                        fsyncs.len(),
                        quantile(&fsyncs, 0.5) * 1e3,
                        quantile(&fsyncs, 0.99) * 1e3
                    );
                }
                println!();
                assert_eq!(
                    store.get_log_state().await?.last_log_id,
                    Some(log_id(1, index - 1))
                );
            }
        }
        Ok(())
    }
}
