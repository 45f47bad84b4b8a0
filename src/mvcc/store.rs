//! `MvccStore`: etcd's multi-version key-value store on sled. The revision records of
//! one `apply` call live in one sled value, a batch blob keyed by the call's first
//! revision, which also carries the store's state (current and compacted revision, the
//! caller's `meta`); the key index lives in memory and is rebuilt at open; leases and
//! alarms share the same sled tree. The newest blobs are also kept in a bounded memory
//! cache, so loading a previous version rarely reaches sled.
//!
//! Invariants:
//! - Deterministic: the same requests applied in the same order give the same records
//!   and hashes, however they are grouped into `apply` calls.
//! - One `apply` call is one atomic sled write (one insert, or one batch when it also
//!   changes leases, alarms or compacted blobs); nothing of it is visible to readers
//!   before it has landed and the new current revision is published.
//! - Readers run concurrently with apply. Every read is bounded by a read revision, and
//!   a read that overlapped a compaction is retried, so it never returns data a
//!   compaction removed: it answers from the kept history or fails with `Compacted`.
//! - A request that fails deterministically writes nothing; a local fault (`Storage`,
//!   `Corrupt`) fails the whole call, writes nothing, and stops the store applying.
//! - A dump holds exactly the state of its export point, while apply goes on: apply
//!   appends blobs after the last one and replaces only that one, and a compaction's
//!   rewrites of older blobs wait until no export point is alive.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
use std::sync::{
    Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sled::IVec;

use super::cache::{BatchBlob, RecordCache};
use super::error::MvccError;
use super::hash::{CrcReader, CrcWriter, KvHasher};
use super::index::{Found, Index, Rev};
use super::request::{Applied, Request, Response};
use super::schema::{self, BatchBuilder, BatchState, MarkerState, Record};
use super::types::*;

/// How long `open` waits for the directory lock a closing store still holds.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Tuning of the storage engine.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Memory for caches: `1 / RECORD_CACHE_SHARE` of it holds the newest batch blobs
    /// (so apply finds previous versions without sled), the rest is sled's page cache.
    pub cache_capacity_bytes: u64,
}

/// The record cache gets this fraction of `StoreOptions::cache_capacity_bytes`.
const RECORD_CACHE_SHARE: u64 = 8;

impl StoreOptions {
    fn record_cache_bytes(&self) -> usize {
        usize::try_from(self.cache_capacity_bytes / RECORD_CACHE_SHARE).unwrap_or(usize::MAX)
    }

    fn sled_cache_bytes(&self) -> u64 {
        self.cache_capacity_bytes - self.cache_capacity_bytes / RECORD_CACHE_SHARE
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_capacity_bytes: 64 << 20,
        }
    }
}

/// What one `apply` call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyOutput {
    /// One entry per request, in order.
    pub applied: Vec<Applied>,
    /// One event per key written, in (revision, sub revision) order.
    pub events: Vec<Event>,
    /// The store revision after the call.
    pub revision: Revision,
}

/// etcd's HashKV answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashKv {
    pub hash: u32,
    pub compact_revision: Revision,
    pub hash_revision: Revision,
}

/// The MVCC store. Cheap to clone; all clones share one store.
#[derive(Clone)]
pub struct MvccStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    dir: PathBuf,
    /// Budget of each view's record cache.
    record_cache_bytes: usize,
    /// The state readers use; replaced as a whole by `import`.
    view: RwLock<Arc<View>>,
    /// Serialises apply, import, taking an export point, and `hash`.
    writer: Mutex<WriterState>,
    /// Export points alive; compaction's rewrites of batch blobs wait for none.
    fence: Arc<FenceState>,
    /// Blob files already fsynced by `sync`.
    synced_blobs: Mutex<HashSet<OsString>>,
    /// The database size on disk and when it was measured: measuring walks sled's
    /// directory, too costly for every request.
    size: Mutex<Option<(std::time::Instant, u64)>>,
}

struct WriterState {
    /// Set after a local fault; the store then refuses to apply.
    fault: Option<String>,
    /// A data tree replaced by `import` that readers may still hold; dropped once they
    /// let go of it.
    retired: Option<(Weak<View>, &'static [u8])>,
}

/// One data tree and the in-memory state derived from it.
struct View {
    tree: sled::Tree,
    tree_name: &'static [u8],
    index: RwLock<Index>,
    /// The newest batch blobs; only apply changes it, after its write landed.
    cache: RwLock<RecordCache>,
    /// The `meta` of the last blob; only apply changes it, after its write landed.
    meta: RwLock<Option<IVec>>,
    leases: RwLock<BTreeMap<LeaseId, LeaseEntry>>,
    /// Active alarms, sorted.
    alarms: RwLock<Vec<AlarmMember>>,
    /// The newest revision whose writes have all landed.
    current: AtomicI64,
    /// Revisions below this are compacted. Raised before the compaction's batch lands.
    compact: AtomicI64,
}

#[derive(Clone, Debug)]
struct LeaseEntry {
    ttl: i64,
    keys: BTreeSet<Bytes>,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn io_err(what: &str, e: std::io::Error) -> MvccError {
    MvccError::Storage(format!("{what}: {e}"))
}

impl MvccStore {
    /// Opens the store in `dir`, creating it if `dir` is missing or empty. A non-empty
    /// directory must hold a store of this format, else `Corrupt` (it is never reset).
    pub fn open(dir: &Path, opts: &StoreOptions) -> Result<Self, MvccError> {
        let marker = read_marker_file(dir)?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(opts.sled_cache_bytes());
        // sled's background threads release the directory lock a little after the last
        // handle of a previous open in this process drops; another live process keeps it.
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(sled::Error::Io(e)) => {
                    return Err(io_err(
                        &format!(
                            "opening sled in {} (in use by another process?)",
                            dir.display()
                        ),
                        e,
                    ));
                }
                Err(other) => {
                    return Err(MvccError::Corrupt(format!(
                        "{}: sled refused to open: {other}",
                        dir.display()
                    )));
                }
            }
        };
        let active = match (db.get(schema::MARKER_KEY)?, marker) {
            (Some(value), _) => {
                schema::check_format(&value, &format!("{}", dir.display()))?;
                let name = db.get(schema::ACTIVE_TREE_KEY)?.ok_or_else(|| {
                    MvccError::Corrupt(format!("{}: marker without an active tree", dir.display()))
                })?;
                data_tree_name(&name)?
            }
            (None, MarkerState::Initializing) => init(&db, dir)?,
            (None, MarkerState::Ready) => {
                return Err(MvccError::Corrupt(format!(
                    "{}: the marker file says the store is complete but sled holds no store",
                    dir.display()
                )));
            }
        };
        if marker == MarkerState::Initializing {
            write_marker_file(dir, MarkerState::Ready)?;
        }
        for name in db.tree_names() {
            if name.as_ref() == b"__sled__default" || name.as_ref() == active {
                continue;
            }
            if schema::DATA_TREES.contains(&name.as_ref()) {
                // Left over from an import that was interrupted or whose readers lingered.
                db.drop_tree(&name)?;
            } else {
                return Err(MvccError::Corrupt(format!(
                    "{}: unexpected sled tree {:?}",
                    dir.display(),
                    String::from_utf8_lossy(&name)
                )));
            }
        }
        let tree = db.open_tree(active)?;
        let record_cache_bytes = opts.record_cache_bytes();
        let view = load_view(tree, active, record_cache_bytes)?;
        Ok(MvccStore {
            inner: Arc::new(Inner {
                db,
                dir: dir.to_path_buf(),
                record_cache_bytes,
                view: RwLock::new(Arc::new(view)),
                writer: Mutex::new(WriterState {
                    fault: None,
                    retired: None,
                }),
                fence: Arc::default(),
                synced_blobs: Mutex::new(HashSet::new()),
                size: Mutex::new(None),
            }),
        })
    }

    fn view(&self) -> Arc<View> {
        read(&self.inner.view).clone()
    }

    /// The newest revision; 1 for a fresh store, as etcd.
    pub fn current_revision(&self) -> Revision {
        self.view().current.load(SeqCst)
    }

    /// The compacted revision; 0 if never compacted.
    pub fn compact_revision(&self) -> Revision {
        self.view().compact.load(SeqCst)
    }

    /// Runs a read against one consistent state: `f` gets the view, the current
    /// revision and the compacted revision. If a compaction was published while `f` ran,
    /// its answer may rest on removed history, so it runs again.
    fn read_loop<T>(
        &self,
        mut f: impl FnMut(&View, Revision, Revision) -> Result<T, MvccError>,
    ) -> Result<T, MvccError> {
        loop {
            let view = self.view();
            let compact = view.compact.load(SeqCst);
            let current = view.current.load(SeqCst);
            if current < compact {
                // A compaction to a revision of the batch now landing: that batch
                // publishes its revision next.
                std::thread::yield_now();
                continue;
            }
            let result = f(&view, current, compact);
            if view.compact.load(SeqCst) == compact {
                return result;
            }
        }
    }

    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, MvccError> {
        self.read_loop(|view, current, compact| {
            let at = read_revision(req.revision, current, compact)?;
            eval_range(&ViewSource(view), req, at)
        })
    }

    /// Evaluates a read-only txn (no Put/Delete in any branch) at the current revision.
    pub fn read_txn(&self, req: &TxnRequest) -> Result<(Revision, TxnResponse), MvccError> {
        if !req.is_read_only() {
            return Err(MvccError::Storage(
                "read_txn got a txn that writes; writes must go through apply".into(),
            ));
        }
        self.read_loop(|view, current, compact| {
            let src = ViewSource(view);
            let mut path = Vec::new();
            compare_to_path(&src, req, current, &mut path)?;
            check_ops(req, &path, &mut 0, &mut |op| {
                check_range(op, current, compact)
            })?;
            let resp = exec_read_only(&src, req, &path, &mut 0, current)?;
            Ok((current, resp))
        })
    }

    /// Applies requests in order as ONE atomic sled batch, storing `meta` with it.
    /// `Err` only for local faults (`Storage`/`Corrupt`); per-request errors go in
    /// `Applied::result`.
    pub fn apply<'a>(
        &self,
        requests: impl IntoIterator<Item = &'a Request>,
        meta: Option<&[u8]>,
    ) -> Result<ApplyOutput, MvccError> {
        let mut w = lock(&self.inner.writer);
        if let Some(fault) = &w.fault {
            return Err(MvccError::Storage(format!(
                "store stopped applying after an earlier fault: {fault}"
            )));
        }
        self.reap_retired(&mut w);
        let view = self.view();
        let mut ctx = ApplyCtx::new(&view);
        let start = ctx.savepoint();
        let mut applied = Vec::new();
        for req in requests {
            let save = ctx.savepoint();
            match ctx.apply_one(req) {
                Ok(resp) => applied.push(Applied {
                    revision: ctx.rev,
                    result: Ok(resp),
                }),
                Err(e) if e.is_local_fault() => {
                    ctx.rollback(&start);
                    w.fault = Some(e.to_string());
                    return Err(e);
                }
                Err(e) => {
                    ctx.rollback(&save);
                    applied.push(Applied {
                        revision: ctx.rev,
                        result: Err(e),
                    });
                }
            }
        }
        if ctx.rewrites_history() {
            HistoryFence::wait_clear(&self.inner.fence);
        }
        match ctx.commit(meta, &start) {
            Ok(output) => Ok(ApplyOutput { applied, ..output }),
            Err(e) => {
                w.fault = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// The blob stored by the last `apply` that passed one.
    pub fn meta(&self) -> Result<Option<Vec<u8>>, MvccError> {
        Ok(read(&self.view().meta).as_ref().map(|v| v.to_vec()))
    }

    /// History for watch catch-up: events with `from <= mod_revision <= to` in `range`,
    /// in revision order, `prev_kv` filled when still available. At most about `limit`
    /// events (0 = no limit), but never splits one revision. `Compacted` if
    /// `from < compact_revision`; `to` beyond the current revision reads to the current.
    pub fn events(
        &self,
        range: &KeyRange,
        from: Revision,
        to: Revision,
        limit: usize,
    ) -> Result<Vec<Event>, MvccError> {
        self.read_loop(|view, current, compact| {
            if from < compact {
                return Err(MvccError::Compacted {
                    compact_revision: compact,
                });
            }
            let to = to.min(current);
            let from = from.max(1);
            if from > to {
                return Ok(Vec::new());
            }
            let mut found: Vec<(Rev, Event)> = Vec::new();
            let cached = read(&view.cache).blobs_from(from);
            match cached {
                Some(blobs) => {
                    for blob in &blobs {
                        if !collect_events(blob, from, to, range, limit, &mut found)? {
                            break;
                        }
                    }
                }
                None => {
                    // From the blob holding `from` (the last keyed at or below it).
                    let start = match view.tree.get_lt(schema::batch_key(from + 1))? {
                        Some((k, _)) if k.first() == Some(&schema::PREFIX_BATCH) => k,
                        _ => IVec::from(&schema::batch_key(from)[..]),
                    };
                    let upper = schema::batch_key(to + 1);
                    for item in view.tree.range(start..IVec::from(&upper[..])) {
                        let (k, v) = item?;
                        let blob = BatchBlob::parse(schema::decode_batch_key(&k)?, v)?;
                        if !collect_events(&blob, from, to, range, limit, &mut found)? {
                            break;
                        }
                    }
                }
            }
            let prevs: Vec<Option<Rev>> = {
                let index = read(&view.index);
                found
                    .iter()
                    .map(|(rev, e)| index.prev_of(&e.kv.key, *rev))
                    .collect()
            };
            let mut events = Vec::with_capacity(found.len());
            for ((_, mut event), prev) in found.into_iter().zip(prevs) {
                if let Some(prev) = prev {
                    if let Some(raw) = fetch(view, prev)? {
                        event.prev_kv = Some(kv_from_record(&event.kv.key, prev, raw)?);
                    }
                }
                events.push(event);
            }
            Ok(events)
        })
    }

    pub fn lease(&self, id: LeaseId) -> Option<Lease> {
        let view = self.view();
        let leases = read(&view.leases);
        leases.get(&id).map(|l| Lease { id, ttl: l.ttl })
    }

    /// Every granted lease, sorted by id.
    pub fn leases(&self) -> Vec<Lease> {
        let view = self.view();
        let leases = read(&view.leases);
        leases
            .iter()
            .map(|(id, l)| Lease {
                id: *id,
                ttl: l.ttl,
            })
            .collect()
    }

    /// The keys attached to lease `id`, sorted.
    pub fn lease_keys(&self, id: LeaseId) -> Vec<Bytes> {
        let view = self.view();
        let leases = read(&view.leases);
        leases
            .get(&id)
            .map(|l| l.keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The active alarms, sorted.
    pub fn alarms(&self) -> Vec<AlarmMember> {
        read(&self.view().alarms).clone()
    }

    /// CRC-32 over the kept revision records with main revision `<= revision`
    /// (0 = current), in revision order.
    pub fn hash_kv(&self, revision: Revision) -> Result<HashKv, MvccError> {
        self.read_loop(|view, current, compact| {
            let at = if revision > 0 { revision } else { current };
            if at > current {
                return Err(MvccError::FutureRevision);
            }
            if at < compact {
                return Err(MvccError::Compacted {
                    compact_revision: compact,
                });
            }
            let mut h = KvHasher::new();
            let upper = schema::batch_key(at + 1);
            'blobs: for item in view.tree.range(&schema::batch_key(1)[..]..&upper[..]) {
                let (k, v) = item?;
                let blob = BatchBlob::parse(schema::decode_batch_key(&k)?, v)?;
                for i in 0..blob.len() {
                    let rev = blob.rev(i);
                    if rev.main > at {
                        break 'blobs;
                    }
                    h.update(&schema::rev_name(rev), blob.record_bytes(i)?);
                }
            }
            Ok(HashKv {
                hash: h.finish(),
                compact_revision: compact,
                hash_revision: at,
            })
        })
    }

    /// CRC-32 over every record of the store: the format record, leases and alarms as
    /// stored, each revision record under its revision name (as `hash_kv`), then the
    /// current and compacted revisions and the meta; blocks apply while it runs.
    pub fn hash(&self) -> Result<u32, MvccError> {
        let _w = lock(&self.inner.writer);
        let view = self.view();
        let mut h = KvHasher::new();
        for item in view.tree.iter() {
            let (k, v) = item?;
            if k.first() == Some(&schema::PREFIX_BATCH) {
                let blob = BatchBlob::parse(schema::decode_batch_key(&k)?, v)?;
                for i in 0..blob.len() {
                    h.update(&schema::rev_name(blob.rev(i)), blob.record_bytes(i)?);
                }
            } else {
                h.update(&k, &v);
            }
        }
        let mut state = Vec::with_capacity(16);
        state.extend_from_slice(&view.current.load(SeqCst).to_be_bytes());
        state.extend_from_slice(&view.compact.load(SeqCst).to_be_bytes());
        h.update(b"state", &state);
        if let Some(meta) = read(&view.meta).as_deref() {
            h.update(b"meta", meta);
        }
        Ok(h.finish())
    }

    /// Bytes sled uses on disk.
    /// The database size on disk, measured at most once a second.
    pub fn size_on_disk(&self) -> u64 {
        let mut cached = lock(&self.inner.size);
        match *cached {
            Some((at, size)) if at.elapsed() < std::time::Duration::from_secs(1) => size,
            _ => {
                let size = self.inner.db.size_on_disk().unwrap_or(0);
                *cached = Some((std::time::Instant::now(), size));
                size
            }
        }
    }

    /// Makes every applied batch durable: sled's flush (which on Linux only issues
    /// `sync_file_range`), then a real fsync of sled's log file, of blob files not synced
    /// before, and of the directories.
    pub fn sync(&self) -> Result<(), MvccError> {
        self.inner.db.flush()?;
        let dir = &self.inner.dir;
        fsync_path(&dir.join("db"))?;
        let blobs = dir.join("blobs");
        let mut synced = lock(&self.inner.synced_blobs);
        let mut new_blob = false;
        if let Ok(entries) = std::fs::read_dir(&blobs) {
            for entry in entries {
                let entry = entry.map_err(|e| io_err("listing blobs", e))?;
                let name = entry.file_name();
                if !synced.contains(&name) {
                    match File::open(entry.path()) {
                        Ok(f) => f.sync_all().map_err(|e| io_err("fsync blob", e))?,
                        // sled collects blobs concurrently.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io_err("open blob", e)),
                    }
                    synced.insert(name);
                    new_blob = true;
                }
            }
        }
        if new_blob {
            fsync_path(&blobs)?;
        }
        fsync_path(dir)
    }

    /// Writes a consistent point-in-time dump: `export_point`, then `ExportPoint::write`.
    /// Returns the number of bytes written.
    pub fn export(&self, out: &mut dyn std::io::Write) -> Result<u64, MvccError> {
        self.export_point()?.write(out)
    }

    /// Fixes the state a dump will hold, the state after the last `apply`, holding
    /// apply off only while it copies the small records (format, leases, alarms) and
    /// the last batch blob. Every other blob stays as it is until the point is dropped:
    /// apply only appends blobs after the last one and replaces or deletes that last
    /// one, except a compaction's rewrites, which wait for the point (see `HistoryFence`).
    pub fn export_point(&self) -> Result<ExportPoint, MvccError> {
        let _w = lock(&self.inner.writer);
        let view = self.view();
        let fence = HistoryFence::hold(&self.inner.fence);
        let mut head = Vec::new();
        for item in view.tree.range(..&[schema::PREFIX_BATCH][..]) {
            head.push(item?);
        }
        let last = view
            .tree
            .last()?
            .filter(|(k, _)| k.first() == Some(&schema::PREFIX_BATCH));
        Ok(ExportPoint {
            view,
            head,
            last,
            _fence: fence,
        })
    }

    /// How many applies wait for export points to go (a test's view of the fence).
    #[cfg(test)]
    pub(crate) fn applies_waiting_for_exports(&self) -> usize {
        lock(&self.inner.fence.counts).1
    }

    /// Replaces the whole state with a dump from `export`. The dump goes into the
    /// unused data tree, is checked (checksum, then every record, as at open), and only
    /// then becomes active by one marker write; on any error the old state stays.
    pub fn import(&self, input: &mut dyn std::io::Read) -> Result<(), MvccError> {
        let mut w = lock(&self.inner.writer);
        let db = &self.inner.db;
        let old = self.view();
        let staging_name = if old.tree_name == schema::DATA_TREES[0] {
            schema::DATA_TREES[1]
        } else {
            schema::DATA_TREES[0]
        };
        // The staging tree may be the one a previous import retired: wait for its
        // readers (reads are short) before reusing the name.
        while w
            .retired
            .as_ref()
            .is_some_and(|(v, _)| v.strong_count() > 0)
        {
            drop(w);
            std::thread::sleep(std::time::Duration::from_millis(1));
            w = lock(&self.inner.writer);
        }
        self.reap_retired(&mut w);
        db.drop_tree(staging_name)?;
        let staging = db.open_tree(staging_name)?;
        let loaded = fill_from_dump(&staging, input).and_then(|()| {
            let view = load_view(staging.clone(), staging_name, self.inner.record_cache_bytes)?;
            staging.flush()?;
            Ok(view)
        });
        let view = match loaded {
            Ok(view) => view,
            Err(e) => {
                drop(staging);
                if let Err(drop_err) = db.drop_tree(staging_name) {
                    tracing::warn!(error = %drop_err, "dropping a rejected import");
                }
                return Err(e);
            }
        };
        db.insert(schema::ACTIVE_TREE_KEY, staging_name)?;
        db.flush()?;
        let new = Arc::new(view);
        *write(&self.inner.view) = new;
        w.retired = Some((Arc::downgrade(&old), old.tree_name));
        drop(old);
        self.reap_retired(&mut w);
        Ok(())
    }

    /// Drops the data tree `import` replaced once no reader holds it.
    fn reap_retired(&self, w: &mut WriterState) {
        if let Some((weak, name)) = &w.retired {
            if weak.strong_count() == 0 {
                if let Err(e) = self.inner.db.drop_tree(name) {
                    tracing::warn!(error = %e, "dropping the data tree an import replaced");
                }
                w.retired = None;
            }
        }
    }
}

/// A point-in-time state of the store for a dump, taken by `MvccStore::export_point`.
/// Holding it delays compactions that rewrite history, nothing else.
pub struct ExportPoint {
    view: Arc<View>,
    /// The records sorting before the batch blobs, as they were at the point.
    head: Vec<(IVec, IVec)>,
    /// The last batch blob at the point (it carries the state); `None` in a store
    /// that never applied anything.
    last: Option<(IVec, IVec)>,
    _fence: HistoryFence,
}

impl ExportPoint {
    /// Writes the dump: a header, every record of the data tree as it was at the point,
    /// in key order, and a trailer with the record count and a CRC-32 of all preceding
    /// bytes. Apply runs meanwhile. Returns the number of bytes written.
    pub fn write(self, out: &mut dyn std::io::Write) -> Result<u64, MvccError> {
        let io = |e| io_err("writing dump", e);
        let mut w = CrcWriter::new(out);
        w.put(&schema::dump_header()).map_err(io)?;
        let mut count: u64 = 0;
        let mut put = |w: &mut CrcWriter<'_>, k: &[u8], v: &[u8]| -> Result<(), MvccError> {
            let too_big = |_| MvccError::Storage("record too large for a dump".into());
            let klen = u32::try_from(k.len()).map_err(too_big)?;
            let vlen = u32::try_from(v.len()).map_err(too_big)?;
            w.put(&[schema::DUMP_TAG_ENTRY]).map_err(io)?;
            w.put(&klen.to_be_bytes()).map_err(io)?;
            w.put(k).map_err(io)?;
            w.put(&vlen.to_be_bytes()).map_err(io)?;
            w.put(v).map_err(io)?;
            count += 1;
            Ok(())
        };
        for (k, v) in &self.head {
            put(&mut w, k, v)?;
        }
        if let Some((last_key, last)) = &self.last {
            // Blobs keyed below the last one are not changed while the fence holds.
            let first = schema::batch_key(0);
            for item in self.view.tree.range(&first[..]..last_key) {
                let (k, v) = item?;
                put(&mut w, &k, &v)?;
            }
            put(&mut w, last_key, last)?;
        }
        w.put(&[schema::DUMP_TAG_END]).map_err(io)?;
        w.put(&count.to_be_bytes()).map_err(io)?;
        w.finish().map_err(io)
    }
}

/// Counts the export points alive; a compaction that rewrites or deletes batch blobs
/// waits until there are none, so a dump in progress reads the blobs of its point.
struct HistoryFence {
    state: Arc<FenceState>,
}

#[derive(Default)]
struct FenceState {
    /// (export points alive, applies waiting for none)
    counts: Mutex<(usize, usize)>,
    cleared: Condvar,
}

impl HistoryFence {
    fn hold(state: &Arc<FenceState>) -> Self {
        lock(&state.counts).0 += 1;
        HistoryFence {
            state: Arc::clone(state),
        }
    }

    /// Blocks while any export point is alive (called with the writer lock held, so
    /// none can be taken meanwhile). The wait can last as long as a snapshot's dump:
    /// on a tokio worker, the worker's other tasks move elsewhere while it blocks.
    fn wait_clear(state: &FenceState) {
        if lock(&state.counts).0 == 0 {
            return;
        }
        may_block(|| {
            let mut counts = lock(&state.counts);
            counts.1 += 1;
            while counts.0 > 0 {
                counts = state
                    .cleared
                    .wait(counts)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            counts.1 -= 1;
        });
    }
}

impl Drop for HistoryFence {
    fn drop(&mut self) {
        let mut counts = lock(&self.state.counts);
        counts.0 = counts.0.saturating_sub(1);
        if counts.0 == 0 {
            self.state.cleared.notify_all();
        }
    }
}

/// Runs `f`, which may block for a while, without holding up the tasks queued on this
/// tokio worker (outside a multi-thread runtime, as in tests, just runs it).
fn may_block<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn fsync_path(path: &Path) -> Result<(), MvccError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(&format!("fsync {}", path.display()), e))
}

/// Reads the marker file; an empty or missing directory gets one (`Initializing`), a
/// non-empty directory without one is refused before anything touches it.
fn read_marker_file(dir: &Path) -> Result<MarkerState, MvccError> {
    let path = dir.join(schema::MARKER_FILE);
    match std::fs::read(&path) {
        Ok(contents) => return schema::parse_marker_file(&contents, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&format!("reading {}", path.display()), e)),
    }
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(MvccError::Corrupt(format!(
                    "{} is not empty and holds no MVCC store (no {} file)",
                    dir.display(),
                    schema::MARKER_FILE
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .map_err(|e| io_err(&format!("creating {}", dir.display()), e))?;
        }
        Err(e) => return Err(io_err(&format!("reading {}", dir.display()), e)),
    }
    write_marker_file(dir, MarkerState::Initializing)?;
    Ok(MarkerState::Initializing)
}

/// Replaces the marker file atomically and durably.
fn write_marker_file(dir: &Path, state: MarkerState) -> Result<(), MvccError> {
    let path = dir.join(schema::MARKER_FILE);
    let tmp = dir.join(format!("{}.tmp", schema::MARKER_FILE));
    let io = |e| io_err(&format!("writing {}", path.display()), e);
    {
        let mut f = File::create(&tmp).map_err(io)?;
        std::io::Write::write_all(&mut f, schema::marker_file_contents(state).as_bytes())
            .map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)?;
    fsync_path(dir)
}

fn data_tree_name(name: &[u8]) -> Result<&'static [u8], MvccError> {
    schema::DATA_TREES
        .iter()
        .find(|t| **t == name)
        .copied()
        .ok_or_else(|| {
            MvccError::Corrupt(format!(
                "active tree {:?} is not a data tree",
                String::from_utf8_lossy(name)
            ))
        })
}

/// Initialises a sled database that holds nothing of ours; refuses one holding anything
/// else.
fn init(db: &sled::Db, dir: &Path) -> Result<&'static [u8], MvccError> {
    let foreign = !db.is_empty()
        || db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() != b"__sled__default" && !schema::DATA_TREES.contains(&n.as_ref()));
    if foreign {
        return Err(MvccError::Corrupt(format!(
            "{}: sled database without the kuberaft MVCC marker",
            dir.display()
        )));
    }
    // Left over only from an initialisation that did not finish.
    for name in schema::DATA_TREES {
        db.drop_tree(name)?;
    }
    let name = schema::DATA_TREES[0];
    let tree = db.open_tree(name)?;
    // No batch blob yet: revision 1, never compacted, no meta.
    tree.insert(schema::KEY_FORMAT, &schema::format_value()[..])?;
    let mut marker = sled::Batch::default();
    marker.insert(schema::ACTIVE_TREE_KEY, name);
    marker.insert(schema::MARKER_KEY, &schema::format_value()[..]);
    db.apply_batch(marker)?;
    db.flush()?;
    fsync_path(&dir.join("db"))?;
    Ok(name)
}

/// Reads a data tree completely, checking every record, and rebuilds the in-memory state;
/// the newest blobs fill the record cache.
fn load_view(
    tree: sled::Tree,
    name: &'static [u8],
    record_cache_bytes: usize,
) -> Result<View, MvccError> {
    let corrupt = |what: String| MvccError::Corrupt(what);
    let format = tree
        .get(schema::KEY_FORMAT)?
        .ok_or_else(|| corrupt("data tree has no format record".into()))?;
    schema::check_format(&format, "data tree")?;
    // The state is the last blob's; a store without blobs never applied anything.
    let last = match tree.scan_prefix([schema::PREFIX_BATCH]).next_back() {
        Some(item) => {
            let (k, v) = item?;
            Some(BatchBlob::parse(schema::decode_batch_key(&k)?, v)?)
        }
        None => None,
    };
    let (current, compact, meta) = match &last {
        Some(blob) => {
            let state = blob.state();
            if blob.first() > state.current.saturating_add(1) {
                return Err(corrupt(format!(
                    "the last batch blob, at {}, is beyond its current revision {}",
                    blob.first(),
                    state.current
                )));
            }
            (state.current, state.compact, state.meta.map(IVec::from))
        }
        None => (1, 0, None),
    };
    if current < 1 || compact < 0 || compact > current {
        return Err(corrupt(format!(
            "current revision {current} and compacted revision {compact} do not fit"
        )));
    }
    let last_first = last.as_ref().map(BatchBlob::first);
    let mut index = Index::new();
    let mut cache = RecordCache::new(record_cache_bytes);
    let mut leases: BTreeMap<LeaseId, LeaseEntry> = BTreeMap::new();
    let mut alarms = Vec::new();
    // The newest revision of the blobs read so far.
    let mut newest: Revision = 0;
    for item in tree.iter() {
        let (k, v) = item?;
        match k.first() {
            Some(&schema::PREFIX_SINGLETON) => {
                if k.as_ref() != schema::KEY_FORMAT {
                    return Err(corrupt(format!(
                        "unknown record {:?}",
                        String::from_utf8_lossy(&k)
                    )));
                }
            }
            Some(&schema::PREFIX_BATCH) => {
                let blob = BatchBlob::parse(schema::decode_batch_key(&k)?, v)?;
                blob.check()?;
                let first = blob.first();
                if first <= newest {
                    return Err(corrupt(format!(
                        "batch blob at {first} overlaps the one before (up to {newest})"
                    )));
                }
                if blob.len() == 0 && Some(first) != last_first {
                    return Err(corrupt(format!(
                        "batch blob at {first} holds no record and is not the last"
                    )));
                }
                for i in 0..blob.len() {
                    let rev = blob.rev(i);
                    if rev.main > current {
                        return Err(corrupt(format!(
                            "revision record at {} beyond the current revision {current}",
                            rev.main
                        )));
                    }
                    let restored = match schema::decode_record(blob.record_bytes(i)?)? {
                        Record::Put {
                            key,
                            create_revision,
                            version,
                            lease,
                            ..
                        } => index.restore_put(key, rev, create_revision, version, lease),
                        Record::Tombstone { key } => index.restore_tombstone(key, rev),
                    };
                    restored.map_err(|e| {
                        corrupt(format!(
                            "revision record at {}/{}: {e:?}",
                            rev.main, rev.sub
                        ))
                    })?;
                    newest = rev.main;
                }
                newest = newest.max(first);
                cache.push(blob);
            }
            Some(&schema::PREFIX_LEASE) => {
                let id = schema::decode_lease_key(&k)?;
                let ttl = schema::decode_i64(&v, "lease ttl")?;
                leases.insert(
                    id,
                    LeaseEntry {
                        ttl,
                        keys: BTreeSet::new(),
                    },
                );
            }
            Some(&schema::PREFIX_ALARM) => alarms.push(schema::decode_alarm_key(&k)?),
            _ => return Err(corrupt(format!("unknown record key {:?}", k.as_ref()))),
        }
    }
    for (key, lease) in index.live_leases(current) {
        leases
            .get_mut(&lease)
            .ok_or_else(|| corrupt(format!("key attached to unknown lease {lease}")))?
            .keys
            .insert(key.clone());
    }
    alarms.sort();
    Ok(View {
        tree,
        tree_name: name,
        index: RwLock::new(index),
        cache: RwLock::new(cache),
        meta: RwLock::new(meta),
        leases: RwLock::new(leases),
        alarms: RwLock::new(alarms),
        current: AtomicI64::new(current),
        compact: AtomicI64::new(compact),
    })
}

/// Streams a dump into `tree` (which must be empty), verifying framing and checksum.
fn fill_from_dump(tree: &sled::Tree, input: &mut dyn std::io::Read) -> Result<(), MvccError> {
    let bad = |e: std::io::Error| MvccError::Corrupt(format!("dump: {e}"));
    let mut r = CrcReader::new(input);
    schema::check_dump_header(&r.exact::<{ schema::DUMP_HEADER_LEN }>().map_err(bad)?)?;
    let mut batch = sled::Batch::default();
    let (mut in_batch, mut batch_bytes) = (0usize, 0usize);
    let mut count: u64 = 0;
    loop {
        let [tag] = r.exact::<1>().map_err(bad)?;
        match tag {
            schema::DUMP_TAG_ENTRY => {
                let klen = u32::from_be_bytes(r.exact::<4>().map_err(bad)?);
                let k = r.bytes(klen).map_err(bad)?;
                let vlen = u32::from_be_bytes(r.exact::<4>().map_err(bad)?);
                let v = r.bytes(vlen).map_err(bad)?;
                batch_bytes += k.len() + v.len();
                batch.insert(k, v);
                in_batch += 1;
                count += 1;
                if in_batch == 4096 || batch_bytes >= 16 << 20 {
                    tree.apply_batch(std::mem::take(&mut batch))?;
                    (in_batch, batch_bytes) = (0, 0);
                }
            }
            schema::DUMP_TAG_END => break,
            other => return Err(MvccError::Corrupt(format!("dump: unknown tag {other}"))),
        }
    }
    let claimed = u64::from_be_bytes(r.exact::<8>().map_err(bad)?);
    let (computed, stored) = r.finish().map_err(bad)?;
    if computed != stored {
        return Err(MvccError::Corrupt(format!(
            "dump: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        )));
    }
    if claimed != count {
        return Err(MvccError::Corrupt(format!(
            "dump: trailer counts {claimed} entries, found {count}"
        )));
    }
    tree.apply_batch(batch)?;
    Ok(())
}

/// Builds a `KeyValue` from a put record stored at `rev`; `key` is the key the caller
/// expects, checked against the record. A long value shares `raw`'s buffer.
fn kv_from_record<T>(key: &Bytes, rev: Rev, raw: T) -> Result<KeyValue, MvccError>
where
    T: AsRef<[u8]> + Send + 'static,
{
    let (create_revision, version, lease, value_offset) = match schema::decode_record(raw.as_ref())?
    {
        Record::Put {
            key: k,
            create_revision,
            version,
            lease,
            value_offset,
        } => {
            if k != key.as_ref() {
                return Err(MvccError::Corrupt(format!(
                    "revision {}/{} holds another key than the index says",
                    rev.main, rev.sub
                )));
            }
            (create_revision, version, lease, value_offset)
        }
        Record::Tombstone { .. } => {
            return Err(MvccError::Corrupt(format!(
                "revision {}/{} is a tombstone where a value was expected",
                rev.main, rev.sub
            )));
        }
    };
    let value_len = raw.as_ref().len() - value_offset;
    let value = if value_len == 0 {
        Bytes::new()
    } else if value_len <= 64 {
        Bytes::copy_from_slice(&raw.as_ref()[value_offset..])
    } else {
        // Share the buffer instead of copying the value.
        Bytes::from_owner(raw).slice(value_offset..)
    };
    Ok(KeyValue {
        key: key.clone(),
        create_revision,
        mod_revision: rev.main,
        version,
        value,
        lease,
    })
}

/// The stored blob whose revision range holds main revision `main`, if any: the last
/// one keyed at or below it.
fn blob_at(tree: &sled::Tree, main: Revision) -> Result<Option<BatchBlob>, MvccError> {
    match tree.get_lt(schema::batch_key(main.saturating_add(1)))? {
        Some((k, v)) if k.first() == Some(&schema::PREFIX_BATCH) => {
            Ok(Some(BatchBlob::parse(schema::decode_batch_key(&k)?, v)?))
        }
        _ => Ok(None),
    }
}

/// The published record at `rev`: from the record cache, else from sled.
fn fetch(view: &View, rev: Rev) -> Result<Option<IVec>, MvccError> {
    if let Some(raw) = read(&view.cache).record(rev) {
        return Ok(Some(raw));
    }
    match blob_at(&view.tree, rev.main)? {
        Some(blob) => match blob.find(rev) {
            Some(i) => Ok(Some(blob.record(i)?)),
            None => Ok(None),
        },
        None => Ok(None),
    }
}

/// Adds the events of `blob`'s records with `from <= main <= to` whose key is in
/// `range` to `found`; false once `to` or the limit (never splitting a revision) is
/// reached, so the caller stops.
fn collect_events(
    blob: &BatchBlob,
    from: Revision,
    to: Revision,
    range: &KeyRange,
    limit: usize,
    found: &mut Vec<(Rev, Event)>,
) -> Result<bool, MvccError> {
    for i in blob.lower_bound(from)..blob.len() {
        let rev = blob.rev(i);
        if rev.main > to {
            return Ok(false);
        }
        if limit > 0
            && found.len() >= limit
            && found.last().is_some_and(|(r, _)| r.main != rev.main)
        {
            return Ok(false);
        }
        let raw = blob.record(i)?;
        let record = schema::decode_record(&raw)?;
        if !range.contains(record.key()) {
            continue;
        }
        let key = Bytes::copy_from_slice(record.key());
        let event = match record {
            Record::Put { .. } => Event {
                kind: EventKind::Put,
                kv: kv_from_record(&key, rev, raw)?,
                prev_kv: None,
            },
            Record::Tombstone { .. } => Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key,
                    mod_revision: rev.main,
                    ..KeyValue::default()
                },
                prev_kv: None,
            },
        };
        found.push((rev, event));
    }
    Ok(true)
}

/// The read revision of a range: `requested` if positive, else the current revision.
fn read_revision(
    requested: Revision,
    current: Revision,
    compact: Revision,
) -> Result<Revision, MvccError> {
    let at = if requested > 0 { requested } else { current };
    if at > current {
        return Err(MvccError::FutureRevision);
    }
    if at < compact {
        return Err(MvccError::Compacted {
            compact_revision: compact,
        });
    }
    Ok(at)
}

/// Where reads find the index and the revision records.
trait Source {
    fn index(&self) -> RwLockReadGuard<'_, Index>;
    /// The put record of `key` at `rev`.
    fn load(&self, key: &Bytes, rev: Rev) -> Result<KeyValue, MvccError>;
}

/// Reads of published state.
struct ViewSource<'a>(&'a View);

impl Source for ViewSource<'_> {
    fn index(&self) -> RwLockReadGuard<'_, Index> {
        read(&self.0.index)
    }

    fn load(&self, key: &Bytes, rev: Rev) -> Result<KeyValue, MvccError> {
        match fetch(self.0, rev)? {
            Some(raw) => kv_from_record(key, rev, raw),
            // The caller retries if a compaction removed it meanwhile.
            None => Err(MvccError::Corrupt(format!(
                "revision record {}/{} of an indexed key is missing",
                rev.main, rev.sub
            ))),
        }
    }
}

/// etcd's sort defaults: a target other than KEY with no order sorts ascending; KEY
/// ascending is the natural order.
fn effective_order(req: &RangeRequest) -> SortOrder {
    match (req.sort_target, req.sort_order) {
        (SortTarget::Key, SortOrder::Ascend) => SortOrder::None,
        (SortTarget::Key, order) => order,
        (_, SortOrder::None) => SortOrder::Ascend,
        (_, order) => order,
    }
}

fn passes_filters(req: &RangeRequest, f: &Found) -> bool {
    let m = f.rev.main;
    let c = f.create_revision;
    !((req.min_mod_revision != 0 && m < req.min_mod_revision)
        || (req.max_mod_revision != 0 && m > req.max_mod_revision)
        || (req.min_create_revision != 0 && c < req.min_create_revision)
        || (req.max_create_revision != 0 && c > req.max_create_revision))
}

/// A range at read revision `at`, with etcd's semantics: `count` is every live key in
/// the range (before the revision filters, as etcd's mvcc layer counts), `more` says
/// the kvs left after filters exceeded `limit`.
fn eval_range<S: Source>(
    src: &S,
    req: &RangeRequest,
    at: Revision,
) -> Result<RangeResponse, MvccError> {
    let order = effective_order(req);
    let filtered = req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0;
    let limit = if req.limit > 0 {
        usize::try_from(req.limit).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    let mut count: i64 = 0;
    let mut hits: Vec<(Bytes, Found)> = Vec::new();
    {
        let index = src.index();
        if req.count_only {
            index.for_each_live(&req.range, at, |_, _| {
                count += 1;
                true
            });
            return Ok(RangeResponse {
                kvs: Vec::new(),
                more: false,
                count,
            });
        }
        // In key order with no filter, keys past limit + 1 are only counted.
        let keep_all = order != SortOrder::None || filtered;
        index.for_each_live(&req.range, at, |k, f| {
            count += 1;
            if (keep_all || hits.len() <= limit) && passes_filters(req, &f) {
                hits.push((k.clone(), f));
            }
            true
        });
    }
    let mut kvs: Option<Vec<KeyValue>> = None;
    let descend = order == SortOrder::Descend;
    match (order, req.sort_target) {
        (SortOrder::None, _) => {}
        (_, SortTarget::Key) => {
            if descend {
                hits.reverse();
            }
        }
        (_, SortTarget::Value) => {
            let mut loaded = Vec::with_capacity(hits.len());
            for (k, f) in &hits {
                loaded.push(src.load(k, f.rev)?);
            }
            if descend {
                loaded.sort_by(|a, b| b.value.cmp(&a.value));
            } else {
                loaded.sort_by(|a, b| a.value.cmp(&b.value));
            }
            kvs = Some(loaded);
        }
        (_, target) => {
            let field = |f: &Found| match target {
                SortTarget::Version => f.version,
                SortTarget::Create => f.create_revision,
                _ => f.rev.main,
            };
            if descend {
                hits.sort_by_key(|h| std::cmp::Reverse(field(&h.1)));
            } else {
                hits.sort_by_key(|h| field(&h.1));
            }
        }
    }
    let more = hits.len() > limit;
    let mut kvs = match kvs {
        Some(mut kvs) => {
            kvs.truncate(limit);
            kvs
        }
        None => {
            let take = hits.len().min(limit);
            let mut out = Vec::with_capacity(take);
            for (k, f) in &hits[..take] {
                out.push(src.load(k, f.rev)?);
            }
            out
        }
    };
    if req.keys_only {
        for kv in &mut kvs {
            kv.value = Bytes::new();
        }
    }
    Ok(RangeResponse { kvs, more, count })
}

fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    use std::cmp::Ordering;
    let ord = match &c.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Create(r) => kv.create_revision.cmp(r),
        CompareTarget::Mod(r) => kv.mod_revision.cmp(r),
        CompareTarget::Value(v) => kv.value.as_ref().cmp(v.as_ref()),
        CompareTarget::Lease(l) => kv.lease.cmp(l),
    };
    match c.result {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::NotEqual => ord != Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
    }
}

/// etcd's applyCompare: every key in the range must pass; an empty range compares as a
/// zero KeyValue, except that a VALUE compare on it fails.
fn eval_compare<S: Source>(src: &S, c: &Compare, at: Revision) -> Result<bool, MvccError> {
    let needs_record = matches!(c.target, CompareTarget::Value(_) | CompareTarget::Lease(_));
    let mut any = false;
    let mut ok = true;
    let mut hits: Vec<(Bytes, Found)> = Vec::new();
    src.index().for_each_live(&c.range, at, |k, f| {
        any = true;
        if needs_record {
            hits.push((k.clone(), f));
            true
        } else {
            let kv = KeyValue {
                create_revision: f.create_revision,
                mod_revision: f.rev.main,
                version: f.version,
                ..KeyValue::default()
            };
            ok = compare_kv(c, &kv);
            ok
        }
    });
    if !any {
        return Ok(
            !matches!(c.target, CompareTarget::Value(_)) && compare_kv(c, &KeyValue::default())
        );
    }
    for (k, f) in &hits {
        if !compare_kv(c, &src.load(k, f.rev)?) {
            return Ok(false);
        }
    }
    Ok(ok)
}

/// etcd's compareToPath: the outcome of this txn's compares, then, depth first, of every
/// nested txn on the chosen branch, all evaluated at `at` (the state before the txn).
fn compare_to_path<S: Source>(
    src: &S,
    t: &TxnRequest,
    at: Revision,
    path: &mut Vec<bool>,
) -> Result<(), MvccError> {
    let mut succeeded = true;
    for c in &t.compare {
        if !eval_compare(src, c, at)? {
            succeeded = false;
            break;
        }
    }
    path.push(succeeded);
    let ops = if succeeded { &t.success } else { &t.failure };
    for op in ops {
        if let RequestOp::Txn(nested) = op {
            compare_to_path(src, nested, at, path)?;
        }
    }
    Ok(())
}

/// The branch a txn takes on `path` at `cursor`, advancing the cursor.
fn take_branch<'t>(
    t: &'t TxnRequest,
    path: &[bool],
    cursor: &mut usize,
) -> (bool, &'t [RequestOp]) {
    let succeeded = path.get(*cursor).copied().unwrap_or(false);
    *cursor += 1;
    (succeeded, if succeeded { &t.success } else { &t.failure })
}

/// etcd's checkRequests: runs `f` on every non-txn op along the chosen path.
fn check_ops(
    t: &TxnRequest,
    path: &[bool],
    cursor: &mut usize,
    f: &mut dyn FnMut(&RequestOp) -> Result<(), MvccError>,
) -> Result<(), MvccError> {
    let (_, ops) = take_branch(t, path, cursor);
    for op in ops {
        match op {
            RequestOp::Txn(nested) => check_ops(nested, path, cursor, f)?,
            other => f(other)?,
        }
    }
    Ok(())
}

/// etcd's checkRequestRange, against the state before the txn.
fn check_range(op: &RequestOp, current: Revision, compact: Revision) -> Result<(), MvccError> {
    if let RequestOp::Range(r) = op {
        if r.revision > 0 {
            read_revision(r.revision, current, compact)?;
        }
    }
    Ok(())
}

/// Executes a read-only txn whose path and checks are done.
fn exec_read_only<S: Source>(
    src: &S,
    t: &TxnRequest,
    path: &[bool],
    cursor: &mut usize,
    at: Revision,
) -> Result<TxnResponse, MvccError> {
    let (succeeded, ops) = take_branch(t, path, cursor);
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        responses.push(match op {
            RequestOp::Range(r) => {
                let rev = if r.revision > 0 { r.revision } else { at };
                ResponseOp::Range(eval_range(src, r, rev)?)
            }
            RequestOp::Txn(nested) => {
                ResponseOp::Txn(exec_read_only(src, nested, path, cursor, at)?)
            }
            RequestOp::Put(_) | RequestOp::DeleteRange(_) => {
                return Err(MvccError::Storage("write in a read-only txn".into()));
            }
        });
    }
    Ok(TxnResponse {
        succeeded,
        responses,
    })
}

/// A change to lease state made by the batch being applied.
#[derive(Clone, Debug)]
enum LeaseOp {
    Grant(LeaseId, i64),
    Revoke(LeaseId),
    Attach(LeaseId, Bytes),
    Detach(LeaseId, Bytes),
}

/// How far an apply call had got; rolling back to it undoes everything after.
#[derive(Clone)]
struct Savepoint {
    rev: Revision,
    compact: Revision,
    pending: usize,
    removals: usize,
    compact_keys: usize,
    touched: usize,
    lease_log: usize,
    lease_status: usize,
    events: usize,
    alarms: Option<Vec<AlarmMember>>,
}

/// The state of one `apply` call. Index changes are made in place at revisions above
/// the published one (invisible to readers) and undone on failure; everything else is
/// collected here and published by `commit`.
struct ApplyCtx<'v> {
    view: &'v View,
    /// Published revisions when the call started.
    base_rev: Revision,
    base_compact: Revision,
    /// Revisions after the requests applied so far.
    rev: Revision,
    compact: Revision,
    /// The revision the request being applied writes at, and its next sub revision.
    main: Revision,
    sub: u32,
    /// Records written by this call, in revision order.
    pending: BatchBuilder,
    /// Records compaction removes.
    removals: Vec<Rev>,
    /// Keys whose index entries compaction changes (applied after the batch lands).
    compact_keys: Vec<Bytes>,
    /// Index undo log: each key changed, with its lease before the change.
    touched: Vec<(Bytes, LeaseId)>,
    lease_log: Vec<LeaseOp>,
    /// Grants (`Some(ttl)`) and revokes (`None`) in order.
    lease_status: Vec<(LeaseId, Option<i64>)>,
    /// The alarm set, once a request of this call changed it.
    alarms: Option<Vec<AlarmMember>>,
    events: Vec<Event>,
}

impl Source for ApplyCtx<'_> {
    fn index(&self) -> RwLockReadGuard<'_, Index> {
        read(&self.view.index)
    }

    fn load(&self, key: &Bytes, rev: Rev) -> Result<KeyValue, MvccError> {
        if rev.main > self.base_rev {
            let raw = self.pending.record(rev).ok_or_else(|| {
                MvccError::Corrupt(format!(
                    "record {}/{} written by this batch is missing",
                    rev.main, rev.sub
                ))
            })?;
            return kv_from_record(key, rev, raw.to_vec());
        }
        ViewSource(self.view).load(key, rev)
    }
}

impl<'v> ApplyCtx<'v> {
    fn new(view: &'v View) -> Self {
        let rev = view.current.load(SeqCst);
        let compact = view.compact.load(SeqCst);
        ApplyCtx {
            view,
            base_rev: rev,
            base_compact: compact,
            rev,
            compact,
            main: rev + 1,
            sub: 0,
            pending: BatchBuilder::default(),
            removals: Vec::new(),
            compact_keys: Vec::new(),
            touched: Vec::new(),
            lease_log: Vec::new(),
            lease_status: Vec::new(),
            alarms: None,
            events: Vec::new(),
        }
    }

    fn savepoint(&self) -> Savepoint {
        Savepoint {
            rev: self.rev,
            compact: self.compact,
            pending: self.pending.len(),
            removals: self.removals.len(),
            compact_keys: self.compact_keys.len(),
            touched: self.touched.len(),
            lease_log: self.lease_log.len(),
            lease_status: self.lease_status.len(),
            events: self.events.len(),
            alarms: self.alarms.clone(),
        }
    }

    fn rollback(&mut self, sp: &Savepoint) {
        if self.touched.len() > sp.touched {
            let mut index = write(&self.view.index);
            for (key, lease) in self.touched[sp.touched..].iter().rev() {
                index.rollback(key, sp.rev + 1, *lease);
            }
        }
        self.rev = sp.rev;
        self.compact = sp.compact;
        self.pending.truncate(sp.pending);
        self.removals.truncate(sp.removals);
        self.compact_keys.truncate(sp.compact_keys);
        self.touched.truncate(sp.touched);
        self.lease_log.truncate(sp.lease_log);
        self.lease_status.truncate(sp.lease_status);
        self.events.truncate(sp.events);
        self.alarms = sp.alarms.clone();
    }

    fn next_rev(&mut self) -> Result<Rev, MvccError> {
        let rev = Rev::new(self.main, self.sub);
        self.sub = self
            .sub
            .checked_add(1)
            .ok_or_else(|| MvccError::Storage("too many writes in one revision".into()))?;
        Ok(rev)
    }

    fn nospace(&self) -> bool {
        let is_nospace = |a: &AlarmMember| a.alarm == AlarmType::NoSpace;
        match &self.alarms {
            Some(alarms) => alarms.iter().any(is_nospace),
            None => read(&self.view.alarms).iter().any(is_nospace),
        }
    }

    fn lease_exists(&self, id: LeaseId) -> bool {
        if let Some((_, status)) = self.lease_status.iter().rev().find(|(i, _)| *i == id) {
            return status.is_some();
        }
        read(&self.view.leases).contains_key(&id)
    }

    /// The keys attached to `id` now, including this call's changes, sorted.
    fn lease_keys(&self, id: LeaseId) -> BTreeSet<Bytes> {
        let mut keys = read(&self.view.leases)
            .get(&id)
            .map(|l| l.keys.clone())
            .unwrap_or_default();
        for op in &self.lease_log {
            match op {
                LeaseOp::Grant(i, _) | LeaseOp::Revoke(i) if *i == id => keys.clear(),
                LeaseOp::Attach(i, k) if *i == id => {
                    keys.insert(k.clone());
                }
                LeaseOp::Detach(i, k) if *i == id => {
                    keys.remove(k);
                }
                _ => {}
            }
        }
        keys
    }

    fn apply_one(&mut self, req: &Request) -> Result<Response, MvccError> {
        if req.may_grow() && self.nospace() {
            return Err(MvccError::NoSpace);
        }
        self.main = self.rev + 1;
        self.sub = 0;
        let resp = match req {
            Request::Put(p) => {
                if p.lease != 0 && !self.lease_exists(p.lease) {
                    return Err(MvccError::LeaseNotFound);
                }
                Response::Put(self.put(p)?)
            }
            Request::DeleteRange(d) => Response::DeleteRange(self.delete_range(d)?),
            Request::Txn(t) => Response::Txn(self.txn(t)?),
            Request::Compact { revision } => {
                self.compact_to(*revision)?;
                Response::Compact
            }
            Request::LeaseGrant { id, ttl } => {
                if *id == 0 {
                    return Err(MvccError::LeaseNotFound);
                }
                if self.lease_exists(*id) {
                    return Err(MvccError::LeaseExists);
                }
                self.lease_log.push(LeaseOp::Grant(*id, *ttl));
                self.lease_status.push((*id, Some(*ttl)));
                Response::LeaseGrant { id: *id, ttl: *ttl }
            }
            Request::LeaseRevoke { id } => {
                self.revoke(*id)?;
                Response::LeaseRevoke
            }
            Request::Alarm { action, alarm } => {
                let alarms = self
                    .alarms
                    .get_or_insert_with(|| read(&self.view.alarms).clone());
                match action {
                    AlarmAction::Activate => {
                        if let Err(at) = alarms.binary_search(alarm) {
                            alarms.insert(at, *alarm);
                        }
                    }
                    AlarmAction::Deactivate => alarms.retain(|a| a != alarm),
                }
                Response::Alarm(alarms.clone())
            }
        };
        if self.sub > 0 {
            self.rev = self.main;
        }
        Ok(resp)
    }

    /// A put whose checks are done (lease exists). Reads at the working state.
    fn put(&mut self, p: &PutRequest) -> Result<PutResponse, MvccError> {
        let live = self.index().get(&p.key, self.main);
        if (p.ignore_value || p.ignore_lease) && live.is_none() {
            return Err(MvccError::KeyNotFound);
        }
        let prev = match live {
            Some(f) => Some(self.load(&p.key, f.rev)?),
            None => None,
        };
        let value = match (&prev, p.ignore_value) {
            (Some(prev), true) => prev.value.clone(),
            _ => p.value.clone(),
        };
        let lease = match (&prev, p.ignore_lease) {
            (Some(prev), true) => prev.lease,
            _ => p.lease,
        };
        let rev = self.next_rev()?;
        let out = write(&self.view.index).put(&p.key, rev, lease);
        self.touched.push((out.key.clone(), out.old_lease));
        if out.old_lease != lease {
            if out.old_lease != 0 {
                self.lease_log
                    .push(LeaseOp::Detach(out.old_lease, out.key.clone()));
            }
            if lease != 0 {
                self.lease_log.push(LeaseOp::Attach(lease, out.key.clone()));
            }
        }
        self.pending.push_put(
            rev,
            &out.key,
            out.create_revision,
            out.version,
            lease,
            &value,
        )?;
        let kv = KeyValue {
            key: out.key,
            create_revision: out.create_revision,
            mod_revision: rev.main,
            version: out.version,
            value,
            lease,
        };
        let resp = PutResponse {
            prev_kv: if p.prev_kv { prev.clone() } else { None },
        };
        self.events.push(Event {
            kind: EventKind::Put,
            kv,
            prev_kv: prev,
        });
        Ok(resp)
    }

    fn delete_range(&mut self, d: &DeleteRangeRequest) -> Result<DeleteRangeResponse, MvccError> {
        let mut live: Vec<(Bytes, Found)> = Vec::new();
        self.index().for_each_live(&d.range, self.main, |k, f| {
            live.push((k.clone(), f));
            true
        });
        let mut resp = DeleteRangeResponse {
            deleted: live.len() as i64,
            prev_kvs: Vec::new(),
        };
        for (key, f) in live {
            let prev = self.load(&key, f.rev)?;
            if d.prev_kv {
                resp.prev_kvs.push(prev.clone());
            }
            self.delete_key(&key, prev)?;
        }
        Ok(resp)
    }

    /// Writes a tombstone for a key live at the working state; `prev` is its version.
    fn delete_key(&mut self, key: &Bytes, prev: KeyValue) -> Result<(), MvccError> {
        let rev = self.next_rev()?;
        let out = write(&self.view.index)
            .tombstone(key, rev)
            .ok_or_else(|| MvccError::Corrupt("deleting a key the index has not live".into()))?;
        self.touched.push((out.key.clone(), out.old_lease));
        if out.old_lease != 0 {
            self.lease_log
                .push(LeaseOp::Detach(out.old_lease, out.key.clone()));
        }
        self.pending.push_tombstone(rev, key)?;
        self.events.push(Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: out.key,
                mod_revision: rev.main,
                ..KeyValue::default()
            },
            prev_kv: Some(prev),
        });
        Ok(())
    }

    fn revoke(&mut self, id: LeaseId) -> Result<(), MvccError> {
        if id == 0 || !self.lease_exists(id) {
            return Err(MvccError::LeaseNotFound);
        }
        for key in self.lease_keys(id) {
            let live = self.index().get(&key, self.main);
            if let Some(f) = live {
                let prev = self.load(&key, f.rev)?;
                self.delete_key(&key, prev)?;
            }
        }
        self.lease_log.push(LeaseOp::Revoke(id));
        self.lease_status.push((id, None));
        Ok(())
    }

    fn compact_to(&mut self, revision: Revision) -> Result<(), MvccError> {
        if revision <= self.compact {
            return Err(MvccError::Compacted {
                compact_revision: self.compact,
            });
        }
        if revision > self.rev {
            return Err(MvccError::FutureRevision);
        }
        let view = self.view;
        read(&view.index).compaction_victims(revision, &mut self.removals, &mut self.compact_keys);
        self.compact = revision;
        Ok(())
    }

    fn txn(&mut self, t: &TxnRequest) -> Result<TxnResponse, MvccError> {
        let mut path = Vec::new();
        compare_to_path(&*self, t, self.rev, &mut path)?;
        if !t.is_read_only() {
            check_ops(t, &path, &mut 0, &mut |op| self.check_put(op))?;
        }
        let (current, compact) = (self.rev, self.compact);
        check_ops(t, &path, &mut 0, &mut |op| {
            check_range(op, current, compact)
        })?;
        self.exec_txn(t, &path, &mut 0)
    }

    /// etcd's checkRequestPut, against the state before the txn.
    fn check_put(&self, op: &RequestOp) -> Result<(), MvccError> {
        if let RequestOp::Put(p) = op {
            if (p.ignore_value || p.ignore_lease) && self.index().get(&p.key, self.rev).is_none() {
                return Err(MvccError::KeyNotFound);
            }
            if p.lease != 0 && !self.lease_exists(p.lease) {
                return Err(MvccError::LeaseNotFound);
            }
        }
        Ok(())
    }

    fn exec_txn(
        &mut self,
        t: &TxnRequest,
        path: &[bool],
        cursor: &mut usize,
    ) -> Result<TxnResponse, MvccError> {
        let (succeeded, ops) = take_branch(t, path, cursor);
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            responses.push(match op {
                RequestOp::Range(r) => {
                    let at = if r.revision > 0 {
                        r.revision
                    } else {
                        self.main
                    };
                    ResponseOp::Range(eval_range(&*self, r, at)?)
                }
                RequestOp::Put(p) => ResponseOp::Put(self.put(p)?),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.delete_range(d)?),
                RequestOp::Txn(nested) => ResponseOp::Txn(self.exec_txn(nested, path, cursor)?),
            });
        }
        Ok(TxnResponse {
            succeeded,
            responses,
        })
    }

    /// Whether committing rewrites or deletes blobs of earlier calls (a compaction
    /// removing records they hold).
    fn rewrites_history(&self) -> bool {
        self.removals.iter().any(|r| r.main <= self.base_rev)
    }

    /// The blobs compaction rewrites (see `compact_blobs`) and the blobs of this call,
    /// in key order, the last carrying the state.
    fn prepare(&mut self, meta: Option<&[u8]>) -> Result<(Rewrites, Vec<BatchBlob>), MvccError> {
        // Records this call wrote and its compaction removed never reach the disk.
        let (own, mut old): (Vec<Rev>, Vec<Rev>) =
            self.removals.iter().partition(|r| r.main > self.base_rev);
        if !own.is_empty() {
            let own: HashSet<Rev> = own.into_iter().collect();
            self.pending.remove(|r| own.contains(&r))?;
        }
        // Two compactions in one call may name a revision twice.
        old.sort_unstable();
        old.dedup();
        let rewrites = compact_blobs(&self.view.tree, &old)?;
        let mut chunks = std::mem::take(&mut self.pending).split(schema::BATCH_CHUNK_BYTES)?;
        match chunks.first_mut() {
            // The first blob goes where the previous call may have left one without
            // records, replacing it.
            Some((first, _)) => *first = self.base_rev + 1,
            // A blob without records goes where the next call's first blob will.
            None => chunks.push((self.rev + 1, BatchBuilder::default())),
        }
        let last = chunks.len() - 1;
        let mut blobs = Vec::with_capacity(chunks.len());
        for (i, (first, chunk)) in chunks.into_iter().enumerate() {
            let raw = chunk.finish(&BatchState {
                current: self.rev,
                compact: self.compact,
                meta: if i == last { meta } else { None },
            })?;
            blobs.push(BatchBlob::parse(first, IVec::from(raw))?);
        }
        Ok((rewrites, blobs))
    }

    /// Writes everything as one sled insert or batch, then publishes: record cache, meta,
    /// index compaction, leases, alarms, and last the current revision.
    fn commit(mut self, meta: Option<&[u8]>, start: &Savepoint) -> Result<ApplyOutput, MvccError> {
        let view = self.view;
        let rev_changed = self.rev != self.base_rev;
        let compact_changed = self.compact != self.base_compact;
        let alarms_changed = self
            .alarms
            .as_ref()
            .is_some_and(|a| *a != *read(&view.alarms));
        let nothing = self.pending.is_empty()
            && self.removals.is_empty()
            && self.lease_status.is_empty()
            && self.lease_log.is_empty()
            && !alarms_changed
            && meta.is_none()
            && !rev_changed
            && !compact_changed;
        if nothing {
            return Ok(ApplyOutput {
                applied: Vec::new(),
                events: Vec::new(),
                revision: self.rev,
            });
        }
        let new_meta = match meta {
            Some(m) => Some(IVec::from(m)),
            None => read(&view.meta).clone(),
        };
        let (rewrites, blobs) = match self.prepare(new_meta.as_deref()) {
            Ok(prepared) => prepared,
            Err(e) => {
                self.rollback(start);
                return Err(e);
            }
        };
        let mut batch = sled::Batch::default();
        let mut writes = blobs.len();
        if blobs
            .first()
            .is_some_and(|b| b.first() != self.base_rev + 1)
        {
            // The blob without records the previous call may have left at the revision
            // after it: only the last blob may hold no record. (A blob with records is
            // keyed at or below its records, so nothing else is stored there.)
            batch.remove(&schema::batch_key(self.base_rev + 1)[..]);
            writes += 1;
        }
        for (first, blob) in &rewrites {
            let key = &schema::batch_key(*first)[..];
            match blob {
                Some(blob) => batch.insert(key, blob.raw().clone()),
                None => batch.remove(key),
            }
            writes += 1;
        }
        for (id, status) in &self.lease_status {
            match status {
                Some(ttl) => {
                    batch.insert(&schema::lease_key(*id)[..], &schema::encode_i64(*ttl)[..])
                }
                None => batch.remove(&schema::lease_key(*id)[..]),
            }
            writes += 1;
        }
        if alarms_changed {
            if let Some(new) = &self.alarms {
                for old in read(&view.alarms).iter() {
                    if !new.contains(old) {
                        batch.remove(&schema::alarm_key(old)[..]);
                        writes += 1;
                    }
                }
                for a in new {
                    batch.insert(&schema::alarm_key(a)[..], &[][..]);
                    writes += 1;
                }
            }
        }
        if compact_changed {
            // Readers that might miss removed records see this first and retry.
            view.compact.store(self.compact, SeqCst);
        }
        let landed = match blobs.as_slice() {
            // The common case: one insert, atomic by itself and cheaper than a batch.
            [blob] if writes == 1 => view
                .tree
                .insert(&schema::batch_key(blob.first())[..], blob.raw().clone())
                .map(|_| ()),
            _ => {
                for blob in &blobs {
                    batch.insert(&schema::batch_key(blob.first())[..], blob.raw().clone());
                }
                view.tree.apply_batch(batch)
            }
        };
        if let Err(e) = landed {
            view.compact.store(self.base_compact, SeqCst);
            self.rollback(start);
            return Err(e.into());
        }
        {
            let mut cache = write(&view.cache);
            for (first, blob) in rewrites {
                cache.replace(first, blob);
            }
            for blob in blobs {
                cache.push(blob);
            }
        }
        if meta.is_some() {
            *write(&view.meta) = new_meta;
        }
        if compact_changed {
            write(&view.index).compact_keys(self.compact, &self.compact_keys);
        }
        if !self.lease_log.is_empty() {
            let mut leases = write(&view.leases);
            for op in self.lease_log.drain(..) {
                match op {
                    LeaseOp::Grant(id, ttl) => {
                        leases.insert(
                            id,
                            LeaseEntry {
                                ttl,
                                keys: BTreeSet::new(),
                            },
                        );
                    }
                    LeaseOp::Revoke(id) => {
                        leases.remove(&id);
                    }
                    LeaseOp::Attach(id, key) => {
                        if let Some(l) = leases.get_mut(&id) {
                            l.keys.insert(key);
                        }
                    }
                    LeaseOp::Detach(id, key) => {
                        if let Some(l) = leases.get_mut(&id) {
                            l.keys.remove(&key);
                        }
                    }
                }
            }
        }
        if alarms_changed {
            if let Some(new) = self.alarms.take() {
                *write(&view.alarms) = new;
            }
        }
        view.current.store(self.rev, SeqCst);
        Ok(ApplyOutput {
            applied: Vec::new(),
            events: self.events,
            revision: self.rev,
        })
    }
}

/// Blobs compaction changes, by key: the rewrite, or `None` to delete the blob.
type Rewrites = Vec<(Revision, Option<BatchBlob>)>;

/// The blobs compaction changes: for each stored blob holding a revision of `removals`
/// (sorted, every one stored), its key and its rewrite without them, `None` when
/// nothing is left. Reads the blobs from the first to the last removal in one scan.
fn compact_blobs(tree: &sled::Tree, removals: &[Rev]) -> Result<Rewrites, MvccError> {
    let mut out = Vec::new();
    let (Some(first), Some(last)) = (removals.first(), removals.last()) else {
        return Ok(out);
    };
    let missing = |r: Rev| {
        MvccError::Corrupt(format!(
            "revision record {}/{} to compact is missing",
            r.main, r.sub
        ))
    };
    let start = blob_at(tree, first.main)?
        .ok_or_else(|| missing(*first))?
        .first();
    let upper = schema::batch_key(last.main + 1);
    let mut next = 0usize;
    for item in tree.range(&schema::batch_key(start)[..]..&upper[..]) {
        let (k, v) = item?;
        let blob = BatchBlob::parse(schema::decode_batch_key(&k)?, v)?;
        if next == removals.len() {
            break;
        }
        if removals[next].main < blob.first() {
            return Err(missing(removals[next]));
        }
        let touched = blob.len() > 0 && blob.rev(blob.len() - 1) >= removals[next];
        if !touched {
            continue;
        }
        let mut kept = BatchBuilder::default();
        for i in 0..blob.len() {
            let rev = blob.rev(i);
            if next < removals.len() && removals[next] < rev {
                return Err(missing(removals[next]));
            }
            if next < removals.len() && removals[next] == rev {
                next += 1;
            } else {
                kept.push_raw(rev, blob.record_bytes(i)?)?;
            }
        }
        let rewrite = if kept.is_empty() {
            None
        } else {
            // The state of a blob that is not the last is never read: drop its meta.
            let state = BatchState {
                meta: None,
                ..blob.state()
            };
            Some(BatchBlob::parse(
                blob.first(),
                IVec::from(kept.finish(&state)?),
            )?)
        };
        out.push((blob.first(), rewrite));
    }
    match removals.get(next) {
        Some(r) => Err(missing(*r)),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    //! Tests that write to sled directly, which only this file may name.
    use super::*;

    fn reopen_after(edit: impl FnOnce(&sled::Db, &sled::Tree)) -> MvccError {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MvccStore::open(dir.path(), &StoreOptions::default()).expect("open");
        let put = Request::Put(PutRequest {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"v"),
            ..PutRequest::default()
        });
        store.apply([&put], None).expect("apply");
        let db = store.inner.db.clone();
        let tree = store.view().tree.clone();
        edit(&db, &tree);
        db.flush().expect("flush");
        drop((store, tree, db));
        MvccStore::open(dir.path(), &StoreOptions::default())
            .err()
            .expect("refused")
    }

    /// A blob holding `records`, recording `current` as the state after it.
    fn blob(records: &[(Rev, Vec<u8>)], current: Revision) -> Vec<u8> {
        let mut b = BatchBuilder::default();
        for (rev, record) in records {
            b.push_raw(*rev, record).expect("push");
        }
        b.finish(&BatchState {
            current,
            compact: 0,
            meta: None,
        })
        .expect("finish")
    }

    fn put_k(key: &str, create: Revision, version: i64) -> Vec<u8> {
        schema::encode_put(key.as_bytes(), create, version, 0, b"v")
    }

    #[test]
    fn unparsable_records_refuse_to_open() {
        let e = reopen_after(|_, t| {
            t.insert(&schema::batch_key(2)[..], &b"\x07junk"[..])
                .expect("insert");
        });
        assert!(matches!(e, MvccError::Corrupt(_)), "{e}");
        let e = reopen_after(|_, t| {
            t.insert(&b"\x09what"[..], &b""[..]).expect("insert");
        });
        assert!(matches!(e, MvccError::Corrupt(_)), "{e}");
        let e = reopen_after(|_, t| {
            // A singleton of format 1.
            t.insert(&b"\x01current"[..], &b"\x01"[..]).expect("insert");
        });
        assert!(e.to_string().contains("unknown record"), "{e}");
        let e = reopen_after(|_, t| {
            // A record beyond the current revision: half a batch that never was.
            let b = blob(&[(Rev::new(9, 0), put_k("k", 2, 2))], 2);
            t.insert(&schema::batch_key(9)[..], b).expect("insert");
        });
        assert!(e.to_string().contains("beyond"), "{e}");
        let e = reopen_after(|_, t| {
            // A blob without records that is not the last.
            t.insert(&schema::batch_key(2)[..], blob(&[], 2))
                .expect("insert");
            let b = blob(&[(Rev::new(3, 0), put_k("j", 3, 1))], 3);
            t.insert(&schema::batch_key(3)[..], b).expect("insert");
        });
        assert!(e.to_string().contains("holds no record"), "{e}");
        let e = reopen_after(|_, t| {
            // Two blobs whose revision ranges overlap.
            let b = blob(
                &[
                    (Rev::new(2, 0), put_k("k", 2, 1)),
                    (Rev::new(4, 0), put_k("k", 2, 2)),
                ],
                4,
            );
            t.insert(&schema::batch_key(2)[..], b).expect("insert");
            let b = blob(&[(Rev::new(3, 0), put_k("j", 3, 1))], 4);
            t.insert(&schema::batch_key(3)[..], b).expect("insert");
        });
        assert!(e.to_string().contains("overlaps"), "{e}");
        let e = reopen_after(|_, t| {
            // Out of order inside a blob.
            let b = blob(&[(Rev::new(2, 0), put_k("k", 2, 1))], 2);
            let mut raw = b.clone();
            // Point the only record's revision below the blob's key.
            let l = schema::BatchLayout::parse(&raw).expect("parse");
            let at = l.state(&b).meta.map_or(0, <[u8]>::len); // no meta
            assert_eq!(at, 0);
            let index = raw.len() - 24 - 16;
            raw[index..index + 8].copy_from_slice(&1u64.to_be_bytes());
            t.insert(&schema::batch_key(2)[..], raw).expect("insert");
        });
        assert!(matches!(e, MvccError::Corrupt(_)), "{e}");
        let e = reopen_after(|db, _| {
            let mut v = schema::format_value();
            v[11] += 1;
            db.insert(schema::MARKER_KEY, &v[..]).expect("insert");
        });
        assert!(e.to_string().contains("format version"), "{e}");
    }

    /// Every batch blob in the store's data tree: key and number of records.
    fn blobs(store: &MvccStore) -> Vec<(Revision, usize)> {
        store
            .view()
            .tree
            .scan_prefix([schema::PREFIX_BATCH])
            .map(|item| {
                let (k, v) = item.expect("read");
                let first = schema::decode_batch_key(&k).expect("key");
                (first, BatchBlob::parse(first, v).expect("blob").len())
            })
            .collect()
    }

    fn put(k: &str, v: &str) -> Request {
        Request::Put(PutRequest {
            key: Bytes::copy_from_slice(k.as_bytes()),
            value: Bytes::copy_from_slice(v.as_bytes()),
            ..PutRequest::default()
        })
    }

    fn get(store: &MvccStore, k: &str, at: Revision) -> Option<KeyValue> {
        store
            .range(&RangeRequest {
                range: KeyRange::new(Bytes::copy_from_slice(k.as_bytes()), Bytes::new()),
                revision: at,
                ..RangeRequest::default()
            })
            .expect("range")
            .kvs
            .into_iter()
            .next()
    }

    #[test]
    fn one_apply_call_is_one_blob_and_state_rides_on_the_last() {
        tracing::info!("a call writes one blob; a call without records leaves one at the next revision, which the next call replaces");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MvccStore::open(dir.path(), &StoreOptions::default()).expect("open");
        assert!(blobs(&store).is_empty());
        store
            .apply(
                [&put("a", "1"), &put("b", "1"), &put("a", "2")],
                Some(b"m1"),
            )
            .expect("apply");
        assert_eq!(blobs(&store), vec![(2, 3)]);
        store.apply([], Some(b"m2")).expect("meta only");
        assert_eq!(blobs(&store), vec![(2, 3), (5, 0)]);
        store
            .apply([&Request::LeaseGrant { id: 7, ttl: 10 }], None)
            .expect("grant");
        assert_eq!(blobs(&store), vec![(2, 3), (5, 0)]);
        store.apply([&put("c", "1")], None).expect("apply");
        assert_eq!(blobs(&store), vec![(2, 3), (5, 1)]);
        assert_eq!(store.meta().expect("meta").as_deref(), Some(&b"m2"[..]));
        drop(store);
        let store = MvccStore::open(dir.path(), &StoreOptions::default()).expect("reopen");
        assert_eq!(store.current_revision(), 5);
        assert_eq!(store.meta().expect("meta").as_deref(), Some(&b"m2"[..]));
        assert_eq!(store.lease(7).map(|l| l.ttl), Some(10));
        assert_eq!(get(&store, "a", 0).map(|kv| kv.version), Some(2));

        // A large call is cut into blobs of about BATCH_CHUNK_BYTES between revisions;
        // the last carries the state.
        let value = "v".repeat(1000);
        let reqs: Vec<Request> = (0..40).map(|i| put(&format!("big{i}"), &value)).collect();
        let out = store.apply(reqs.iter(), Some(b"m3")).expect("apply");
        assert_eq!(out.revision, 45);
        let stored = blobs(&store);
        let big = &stored[2..];
        assert!(big.len() >= 3, "{stored:?}");
        assert_eq!(big[0].0, 6);
        assert_eq!(big.iter().map(|(_, n)| n).sum::<usize>(), 40);
        drop(store);
        let store = MvccStore::open(dir.path(), &StoreOptions::default()).expect("reopen");
        assert_eq!(store.current_revision(), 45);
        assert_eq!(store.meta().expect("meta").as_deref(), Some(&b"m3"[..]));
        for i in 0..40 {
            let kv = get(&store, &format!("big{i}"), 0).expect("big");
            assert_eq!(kv.mod_revision, 6 + i);
        }
        let all = KeyRange::new(&b"big"[..], &b"bih"[..]);
        assert_eq!(
            store
                .events(&all, 1, Revision::MAX, 0)
                .expect("events")
                .len(),
            40
        );
        assert_eq!(
            store
                .events(&all, 1, Revision::MAX, 7)
                .expect("events")
                .len(),
            7
        );
    }

    #[test]
    fn compaction_rewrites_and_deletes_blobs() {
        tracing::info!(
            "compaction rewrites a blob without the removed records and deletes blobs it empties"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MvccStore::open(dir.path(), &StoreOptions::default()).expect("open");
        // Blob 2: a@2 b@3 a@4. Blob 5: c@5 c@6. Blob 7: a@7.
        store
            .apply([&put("a", "1"), &put("b", "1"), &put("a", "2")], None)
            .expect("apply");
        store
            .apply([&put("c", "1"), &put("c", "2")], None)
            .expect("apply");
        store.apply([&put("a", "3")], None).expect("apply");
        let h = store.hash_kv(7).expect("hash");
        store
            .apply([&Request::Compact { revision: 4 }], None)
            .expect("compact");
        assert_eq!(blobs(&store), vec![(2, 2), (5, 2), (7, 1), (8, 0)]);
        assert_eq!(get(&store, "a", 4).map(|kv| kv.mod_revision), Some(4));
        assert_eq!(get(&store, "b", 4).map(|kv| kv.mod_revision), Some(3));
        assert_ne!(store.hash_kv(7).expect("hash"), h, "fewer records");
        // Compacting at 7 removes a@4, c@5: blob 2 keeps b@3, blob 5 keeps c@6.
        // The compaction's own blob (at 8, no records) is replaced by the next call's.
        store
            .apply([&Request::Compact { revision: 7 }, &put("d", "1")], None)
            .expect("compact");
        assert_eq!(blobs(&store), vec![(2, 1), (5, 1), (7, 1), (8, 1)]);
        // A compaction that empties blobs deletes them; one that removes records written
        // by the same call never writes them.
        store
            .apply(
                [
                    &Request::DeleteRange(DeleteRangeRequest {
                        range: KeyRange::new(&b"b"[..], &b"d"[..]),
                        prev_kv: false,
                    }),
                    &put("d", "2"),
                    &Request::Compact { revision: 10 },
                ],
                None,
            )
            .expect("delete and compact");
        // b@3 c@6 d@8 are gone (deleted, tombstones compacted); blob 9 keeps d@10 only.
        assert_eq!(blobs(&store), vec![(7, 1), (9, 1)]);
        assert_eq!(get(&store, "d", 0).map(|kv| kv.mod_revision), Some(10));
        assert_eq!(get(&store, "a", 0).map(|kv| kv.mod_revision), Some(7));
        let hash = store.hash().expect("hash");
        let kv_hash = store.hash_kv(0).expect("hash_kv");
        drop(store);
        let store = MvccStore::open(dir.path(), &StoreOptions::default()).expect("reopen");
        assert_eq!(
            (store.current_revision(), store.compact_revision()),
            (10, 10)
        );
        assert_eq!(store.hash().expect("hash"), hash);
        assert_eq!(store.hash_kv(0).expect("hash_kv"), kv_hash);
    }

    #[test]
    fn hashes_do_not_depend_on_grouping() {
        tracing::info!("the same requests in different apply calls give the same hashes");
        let reqs: Vec<Request> = (0..40)
            .map(|i| put(&format!("k{}", i % 7), &format!("v{i}")))
            .chain([Request::Compact { revision: 20 }])
            .chain((40..50).map(|i| put(&format!("k{}", i % 7), &format!("v{i}"))))
            .collect();
        let (_d1, one) = {
            let d = tempfile::tempdir().expect("tempdir");
            let s = MvccStore::open(d.path(), &StoreOptions::default()).expect("open");
            (d, s)
        };
        let (_d2, many) = {
            let d = tempfile::tempdir().expect("tempdir");
            let s = MvccStore::open(d.path(), &StoreOptions::default()).expect("open");
            (d, s)
        };
        one.apply(reqs.iter(), Some(b"m")).expect("apply");
        for chunk in reqs.chunks(3) {
            many.apply(chunk.iter(), Some(b"m")).expect("apply");
        }
        assert_ne!(blobs(&one).len(), blobs(&many).len());
        assert_eq!(one.hash_kv(0).expect("h"), many.hash_kv(0).expect("h"));
        assert_eq!(one.hash_kv(30).expect("h"), many.hash_kv(30).expect("h"));
        assert_eq!(one.hash().expect("h"), many.hash().expect("h"));
        let all = KeyRange::new(&b"\0"[..], &b"\0"[..]);
        assert_eq!(
            one.events(&all, 20, Revision::MAX, 0).expect("events"),
            many.events(&all, 20, Revision::MAX, 0).expect("events")
        );
    }

    #[test]
    fn reads_find_records_past_the_cache() {
        tracing::info!(
            "with a record cache far smaller than the history, reads and prev_kv come from sled"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = StoreOptions {
            cache_capacity_bytes: 8 * 1024,
        };
        let store = MvccStore::open(dir.path(), &opts).expect("open");
        let value = "x".repeat(200);
        for round in 0..20 {
            let reqs: Vec<Request> = (0..5)
                .map(|k| put(&format!("k{k}"), &format!("{round}{value}")))
                .collect();
            let out = store.apply(reqs.iter(), None).expect("apply");
            for e in &out.events {
                let prev = e.prev_kv.as_ref().map(|p| p.value.clone());
                if round == 0 {
                    assert_eq!(prev, None);
                } else {
                    assert_eq!(prev, Some(Bytes::from(format!("{}{value}", round - 1))));
                }
            }
        }
        assert!(read(&store.view().cache).bytes() <= 1024);
        let all = KeyRange::new(&b"\0"[..], &b"\0"[..]);
        let events = store.events(&all, 2, Revision::MAX, 0).expect("events");
        assert_eq!(events.len(), 100);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.kv.mod_revision, 2 + i as i64);
            assert_eq!(e.kv.version, 1 + i as i64 / 5);
            assert_eq!(e.prev_kv.is_some(), i >= 5);
        }
        for at in [2, 7, 50, 101] {
            let kv = get(&store, "k0", at).expect("k0");
            assert_eq!(kv.mod_revision, 2 + 5 * ((at - 2) / 5));
        }
    }
}

#[cfg(test)]
mod baseline {
    //! What sled alone costs for the work `store_tests::perf` measures, so the store's
    //! own overhead can be read off. Run with
    //! `cargo test --release --lib mvcc::store::baseline -- --ignored --nocapture`.
    use super::*;

    #[test]
    #[ignore = "benchmark; prints figures"]
    fn sled_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::Config::new()
            .path(dir.path())
            .cache_capacity(64 << 20)
            .open()
            .expect("open");
        let tree = db.open_tree("t").expect("tree");
        let value = vec![7u8; 1024 + 29];
        let mut best = Duration::MAX;
        let mut main = 0i64;
        for _round in 0..5 {
            let start = Instant::now();
            for _ in 0..100 {
                let mut batch = sled::Batch::default();
                for _ in 0..64 {
                    main += 1;
                    batch.insert(&schema::rev_name(Rev::new(main, 0))[..], &value[..]);
                }
                tree.apply_batch(batch).expect("batch");
            }
            best = best.min(start.elapsed() / 100);
        }
        println!("sled alone: batch of 64 x 1 KiB inserts: {best:?} (best of 5 x 100)");
        let mut best = Duration::MAX;
        for _round in 0..5 {
            let start = Instant::now();
            for i in 0..500i64 {
                let main = 1 + (i * 7919) % main;
                let got = tree.get(schema::rev_name(Rev::new(main, 0))).expect("get");
                assert!(got.is_some());
            }
            best = best.min(start.elapsed());
        }
        println!("sled alone: 500 point gets: {best:?} (best of 5)");
    }
}
