//! The write-ahead log under the Raft log store: numbered segment files of framed,
//! checksummed records; one writer thread that issues one `write` and one
//! `fdatasync` per synced batch; positional reads through an in-memory index; and
//! recovery that rebuilds that index on open. It knows nothing of openraft: an entry
//! is an index, a term and opaque bytes, and the caller's hard state and purge marker
//! are opaque blobs.
//!
//! Invariant: a completion reports success only once its records, and every record
//! queued before them, are on disk; recovery accepts exactly the record sequences the
//! live methods write, cuts away only a torn tail of the last segment (with a
//! warning), and refuses to open on anything else.
//!
//! # On-disk format, version 1
//!
//! The directory belongs to the WAL. It holds segment files named
//! `<seq:016x>-<first index:016x>.wal` (sequence number, then the log index the
//! segment's first entry was expected to have, both hex) and, transiently, `*.tmp`
//! files (a segment being created, or a zero-filled spare). Any other file makes
//! `open` refuse the directory.
//!
//! A segment starts with the magic `KRFTWAL\0` and the format version (u32 LE), then
//! holds records framed as `[len u32 LE][crc32 u32 LE][kind u8][payload: len bytes]`,
//! the crc covering kind and payload. Kinds:
//!
//! | kind | payload |
//! |---|---|
//! | 1 header | bincode `SegmentHeader`: seq, next index, purge marker and hard state when the segment was created; always the first record |
//! | 2 entry | index u64 LE, term u64 LE, entry bytes |
//! | 3 state | the caller's hard state (vote, committed), latest wins |
//! | 4 truncate | index u64 LE: entries at and after it are gone |
//! | 5 purge | index u64 LE, marker bytes: entries at and before it are gone |
//!
//! Replaying the records in order gives the log: each entry must carry the next index
//! (a truncate record moves "next" back, a purge record may move it forward), and
//! terms never decrease. A segment's header must agree with the replay of the
//! segments before it. A zero-filled remainder (preallocation) ends a segment.
//!
//! # Durability
//!
//! Entry batches and hard-state saves with a completion are written with one
//! `pwrite` and made durable with one `fdatasync` before the completion runs; writes
//! that queued up while the writer was busy share one `pwrite` and one `fdatasync`
//! (group commit).
//! Truncate records and unsynced hard state wait in memory and go out with the next
//! synced write. A new segment is created as a `.tmp` file (or from a zero-filled
//! spare), its header synced, renamed into place and the directory synced before any
//! record goes into it; the previous segment is synced and trimmed first. A purge
//! record is synced before the segment files it frees are deleted. After any I/O
//! error the WAL refuses further writes: nothing more is acknowledged, and reopening
//! recovers a consistent log from disk.
//!
//! Besides the per-call completions, `WalReader::wait_synced` waits until the entry
//! now at an index is durable: every entry remembers the op that wrote it, and the
//! writer publishes the last op it fdatasynced (entries recovered on open count as
//! durable). The leader uses it to append without waiting (see `log_store`).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The first eight bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"KRFTWAL\0";
/// The segment format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The largest record payload written or accepted on recovery.
pub const MAX_RECORD_BYTES: usize = 1 << 30;
/// The smallest segment size `WalOptions` accepts.
pub const MIN_SEGMENT_BYTES: u64 = 4096;

const PREFIX_LEN: u64 = 12;
const FRAME_LEN: usize = 9;
const ENTRY_HEAD_LEN: usize = 16;
const SECTOR: u64 = 512;
const ZERO_CHUNK: usize = 1 << 20;
const SCAN_CHUNK: usize = 64 << 10;
const MAX_READ_SPAN: u64 = 4 << 20;

const KIND_HEADER: u8 = 1;
const KIND_ENTRY: u8 = 2;
const KIND_STATE: u8 = 3;
const KIND_TRUNCATE: u8 = 4;
const KIND_PURGE: u8 = 5;

/// The histogram every `fdatasync` of a segment is recorded in, in seconds (etcd's name).
pub const FSYNC_HISTOGRAM: &str = "etcd_disk_wal_fsync_duration_seconds";
/// The counter of bytes written to segments (etcd's name).
pub const WRITE_BYTES_COUNTER: &str = "etcd_disk_wal_write_bytes_total";

/// Most writes one group commit takes from the queue, and the byte count after which
/// it takes no more.
const GROUP_MAX_OPS: usize = 256;
const GROUP_MAX_BYTES: usize = 8 << 20;

/// How the WAL lays out and caches its data.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// A segment that would grow past this size is closed and a new one started
    /// before the next entry batch (one batch never spans two segments).
    pub segment_bytes: u64,
    /// Zero-fill the next segment on a background thread, so appends overwrite
    /// allocated blocks and `fdatasync` has no file size to journal.
    pub preallocate: bool,
    /// At most this many recent entries are kept in memory for reads (entries not yet
    /// written are kept regardless).
    pub cache_entries: usize,
    /// At most this many bytes of recent entries are kept in memory for reads.
    pub cache_bytes: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 64 << 20,
            preallocate: true,
            cache_entries: 4096,
            cache_bytes: 16 << 20,
        }
    }
}

/// Everything that can go wrong in the log store and its WAL.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("invalid WAL options: {0}")]
    Options(String),
    #[error("WAL {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a kuberaft WAL file; refusing to open a directory holding foreign files", path.display())]
    UnknownFile { path: PathBuf },
    #[error("{}: bad magic, not a kuberaft WAL segment", path.display())]
    BadMagic { path: PathBuf },
    #[error("{}: WAL format version {found}, this build reads version {FORMAT_VERSION}", path.display())]
    UnsupportedVersion { path: PathBuf, found: u32 },
    #[error("{} at offset {offset}: corrupt record ({reason}); refusing to open", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{} at offset {offset}: {reason}; refusing to open", path.display())]
    Inconsistent {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("WAL segments are not consecutive: {} is followed by {}", before.display(), after.display())]
    MissingSegment { before: PathBuf, after: PathBuf },
    #[error("rejected: {0}")]
    Rejected(String),
    #[error("record of {0} bytes exceeds the limit of {MAX_RECORD_BYTES} bytes")]
    TooLarge(usize),
    #[error("encoding {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    #[error("decoding {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("the WAL failed earlier and accepts no more writes until reopened: {0}")]
    Failed(String),
    #[error("the WAL writer thread has stopped")]
    Stopped,
    #[error("WAL internal error: {0}")]
    Internal(String),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |source| WalError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Called once with the outcome of a queued write, on the writer thread.
pub type Done = Box<dyn FnOnce(Result<(), WalError>) + Send + 'static>;

/// Entry records for one `Wal::append`, framed into one buffer so the writer issues
/// one write for all of them.
#[derive(Default)]
pub struct Batch {
    buf: Vec<u8>,
    items: Vec<BatchItem>,
}

struct BatchItem {
    index: u64,
    term: u64,
    frame: Range<usize>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds an entry whose bytes `encode` appends to the buffer it is given.
    pub fn push(
        &mut self,
        index: u64,
        term: u64,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), WalError>,
    ) -> Result<(), WalError> {
        let start = begin_frame(&mut self.buf, KIND_ENTRY);
        self.buf.extend_from_slice(&index.to_le_bytes());
        self.buf.extend_from_slice(&term.to_le_bytes());
        if let Err(e) = encode(&mut self.buf) {
            self.buf.truncate(start);
            return Err(e);
        }
        finish_frame(&mut self.buf, start)?;
        self.items.push(BatchItem {
            index,
            term,
            frame: start..self.buf.len(),
        });
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The writing half of the WAL. One owner issues every write, so writes reach the
/// disk in call order.
pub struct Wal {
    shared: Arc<Shared>,
    tx: Option<Sender<Op>>,
    writer: Option<JoinHandle<()>>,
    preparer: Option<Preparer>,
}

/// A cheap, cloneable read handle sharing the WAL's index and cache.
#[derive(Clone)]
pub struct WalReader {
    shared: Arc<Shared>,
}

/// Entries to return for a read: cached bytes, or places in segment files.
pub struct ReadPlan {
    items: Vec<(u64, Source)>,
}

impl Wal {
    /// Opens (creating if absent) the WAL in `dir`, recovering its index from the
    /// segments found there. Blocks on disk I/O.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal, WalError> {
        if opts.segment_bytes < MIN_SEGMENT_BYTES {
            return Err(WalError::Options(format!(
                "segment_bytes {} is below the minimum of {MIN_SEGMENT_BYTES}",
                opts.segment_bytes
            )));
        }
        fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        let Recovered { log, tail } = recover(dir)?;
        let tail = match tail {
            Some(t) => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&t.path)
                    .map_err(io_err("open", &t.path))?;
                // What a crashed process wrote may still be only in the page cache;
                // recovered entries count as durable, so make them so.
                file.sync_data().map_err(io_err("fdatasync", &t.path))?;
                Some((file, t))
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            opts: opts.clone(),
            log: Mutex::new(log),
            written_op: AtomicU64::new(0),
            synced: tokio::sync::watch::Sender::new(Synced::default()),
            #[cfg(test)]
            fail_next_write: AtomicBool::new(false),
        });

        let (spares, preparer) = if opts.preallocate {
            let (spare_tx, spare_rx) = mpsc::sync_channel(0);
            let stop = Arc::new(AtomicBool::new(false));
            let (d, s, size) = (dir.to_path_buf(), stop.clone(), opts.segment_bytes);
            let handle = thread::Builder::new()
                .name("wal-prealloc".into())
                .spawn(move || run_preparer(d, size, spare_tx, s))
                .map_err(io_err("spawn preallocation thread for", dir))?;
            (Some(spare_rx), Some(Preparer { stop, handle }))
        } else {
            (None, None)
        };

        let mut writer = Writer {
            shared: shared.clone(),
            file: None,
            path: PathBuf::new(),
            write_pos: 0,
            file_len: 0,
            pending: Vec::new(),
            unsynced: false,
            spares,
            failed: None,
        };
        if let Some((file, t)) = tail {
            writer.file = Some(file);
            writer.path = t.path;
            writer.write_pos = t.end;
            writer.file_len = t.file_len;
        }
        let (tx, rx) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err("spawn writer thread for", dir))?;
        Ok(Wal {
            shared,
            tx: Some(tx),
            writer: Some(handle),
            preparer,
        })
    }

    /// Makes the writer's next write stop half way with ENOSPC.
    #[cfg(test)]
    pub fn fail_next_write(&self) {
        self.shared.fail_next_write.store(true, Ordering::SeqCst);
    }

    pub fn reader(&self) -> WalReader {
        WalReader {
            shared: self.shared.clone(),
        }
    }

    /// The latest hard state saved (synced or not), as recovered or last saved.
    pub fn state(&self) -> Option<Vec<u8>> {
        self.shared.lock().state.clone()
    }

    /// The last purge: index and the caller's marker.
    pub fn purged(&self) -> Option<(u64, Vec<u8>)> {
        self.shared
            .lock()
            .purged
            .as_ref()
            .map(|p| (p.index, p.marker.clone()))
    }

    /// The segment files in order (including ones still being created).
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        let log = self.shared.lock();
        log.segments.iter().map(|s| s.file.path.clone()).collect()
    }

    /// Appends the batch. On return the entries are readable; `done` runs once they
    /// are written with one write and made durable with one `fdatasync`.
    ///
    /// The first index must be the log's next index (any index on a log that never
    /// held an entry), indexes consecutive and terms non-decreasing.
    pub fn append(&mut self, batch: Batch, done: Done) -> Result<(), WalError> {
        if batch.is_empty() {
            return self.flush(done);
        }
        let mut ops = Vec::with_capacity(2);
        {
            let mut log = self.shared.lock();
            log.check_writable()?;
            let first = batch.items[0].index;
            let mut term = batch.items[0].term;
            for (i, item) in batch.items.iter().enumerate() {
                if item.index != first + i as u64 || item.term < term {
                    return Err(WalError::Rejected(format!(
                        "batch entry {i} has index {} term {}: indexes must be consecutive from {first} and terms non-decreasing",
                        item.index, item.term
                    )));
                }
                term = item.term;
            }
            log.check_entry(first, batch.items[0].term)
                .map_err(WalError::Rejected)?;
            if log.next_index.is_none() {
                log.next_index = Some(first);
            }
            let size = batch.buf.len() as u64;
            self.roll_if_needed(&mut log, size, &mut ops)?;
            let (seq, base) = log.reserve(size)?;
            let op = log.next_op();
            let bytes = Bytes::from(batch.buf);
            for item in &batch.items {
                let data = item.frame.start + FRAME_LEN + ENTRY_HEAD_LEN..item.frame.end;
                log.push_slot(
                    item.index,
                    Slot {
                        term: item.term,
                        seq,
                        offset: base + item.frame.start as u64,
                        len: data.len() as u32,
                        op,
                    },
                );
                log.cache_push(op, bytes.slice(data));
            }
            let written = self.shared.written_op.load(Ordering::Acquire);
            log.evict(written, &self.shared.opts);
            ops.push(Op::Write {
                offset: base,
                bytes,
                sync: true,
                op,
                done: Some(done),
            });
        }
        self.send(ops)
    }

    /// Saves the caller's hard state durably: `done` runs after its `fdatasync`.
    pub fn save_state_synced(&mut self, blob: Vec<u8>, done: Done) -> Result<(), WalError> {
        self.write_state(blob, Some(done))
    }

    /// Saves the caller's hard state without waiting: it reaches the disk with the
    /// next synced write (or when the WAL is closed).
    pub fn save_state(&mut self, blob: Vec<u8>) -> Result<(), WalError> {
        self.write_state(blob, None)
    }

    fn write_state(&mut self, blob: Vec<u8>, done: Option<Done>) -> Result<(), WalError> {
        let mut ops = Vec::with_capacity(2);
        {
            let mut log = self.shared.lock();
            log.check_writable()?;
            let record = encode_record(KIND_STATE, &blob)?;
            log.state = Some(blob);
            self.roll_if_needed(&mut log, 0, &mut ops)?;
            let (_, offset) = log.reserve(record.len() as u64)?;
            let op = log.next_op();
            ops.push(Op::Write {
                offset,
                bytes: Bytes::from(record),
                sync: done.is_some(),
                op,
                done,
            });
        }
        self.send(ops)
    }

    /// Removes entries at and after `index`. Effective for readers at once; the
    /// record reaches the disk with the next synced write.
    pub fn truncate(&mut self, index: u64) -> Result<(), WalError> {
        let mut ops = Vec::with_capacity(2);
        {
            let mut log = self.shared.lock();
            log.check_writable()?;
            if !log.truncate_from(index).map_err(WalError::Rejected)? {
                return Ok(());
            }
            self.roll_if_needed(&mut log, 0, &mut ops)?;
            let record = encode_record(KIND_TRUNCATE, &index.to_le_bytes())?;
            let (_, offset) = log.reserve(record.len() as u64)?;
            let op = log.next_op();
            ops.push(Op::Write {
                offset,
                bytes: Bytes::from(record),
                sync: false,
                op,
                done: None,
            });
        }
        self.send(ops)
    }

    /// Removes entries at and before `index`, remembering `marker` as the last purge.
    /// `done` runs once the purge record is durable and the segment files holding
    /// only purged entries are deleted. A purge at or below the last one is a no-op.
    pub fn purge(&mut self, index: u64, marker: Vec<u8>, done: Done) -> Result<(), WalError> {
        let mut ops = Vec::with_capacity(3);
        {
            let mut log = self.shared.lock();
            log.check_writable()?;
            let mut payload = index.to_le_bytes().to_vec();
            payload.extend_from_slice(&marker);
            let record = encode_record(KIND_PURGE, &payload)?;
            if !log.purge_upto(index, marker) {
                drop(log);
                done(Ok(()));
                return Ok(());
            }
            self.roll_if_needed(&mut log, 0, &mut ops)?;
            let (tail_seq, offset) = log.reserve(record.len() as u64)?;
            let op = log.next_op();
            ops.push(Op::Write {
                offset,
                bytes: Bytes::from(record),
                sync: true,
                op,
                done: None,
            });
            let keep_from = log.slots.front().map_or(tail_seq, |s| s.seq);
            let mut paths = Vec::new();
            while log.segments.front().is_some_and(|s| s.seq < keep_from) {
                if let Some(seg) = log.segments.pop_front() {
                    paths.push(seg.file.path.clone());
                }
            }
            ops.push(Op::Delete { paths, done });
        }
        self.send(ops)
    }

    /// `done` runs once everything queued before it is durable.
    pub fn flush(&mut self, done: Done) -> Result<(), WalError> {
        self.shared.lock().check_writable()?;
        self.send(vec![Op::Flush { done }])
    }

    /// Starts a new segment when there is none, or when `incoming` bytes of entries
    /// would push a non-empty tail past the segment size.
    fn roll_if_needed(
        &self,
        log: &mut Log,
        incoming: u64,
        ops: &mut Vec<Op>,
    ) -> Result<(), WalError> {
        let need = match log.segments.back() {
            None => true,
            Some(t) => {
                incoming > 0
                    && t.end > t.data_start
                    && t.end + incoming > self.shared.opts.segment_bytes
            }
        };
        if !need {
            return Ok(());
        }
        let seq = log.segments.back().map_or(0, |t| t.seq + 1);
        let first_index = log.next_index.unwrap_or(0);
        let header = SegmentHeader {
            seq,
            next_index: log.next_index,
            purged: log.purged.clone(),
            state: log.state.clone(),
        };
        let header = encode_header(&header)?;
        let path = self.shared.dir.join(segment_name(seq, first_index));
        log.segments.push_back(SegmentMeta {
            seq,
            data_start: header.len() as u64,
            end: header.len() as u64,
            file: Arc::new(SegFile::new(path.clone())),
        });
        ops.push(Op::Create { path, header });
        Ok(())
    }

    fn send(&self, ops: Vec<Op>) -> Result<(), WalError> {
        let Some(tx) = &self.tx else {
            return Err(WalError::Stopped);
        };
        for op in ops {
            if tx.send(op).is_err() {
                let mut log = self.shared.lock();
                log.failed
                    .get_or_insert_with(|| "the writer thread stopped".into());
                return Err(WalError::Stopped);
            }
        }
        Ok(())
    }
}

impl Drop for Wal {
    /// Waits for the writer to finish what is queued (hard state still in memory is
    /// written and synced), then stops the preallocation thread.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(handle) = self.writer.take() {
            if handle.join().is_err() {
                tracing::error!("WAL writer thread panicked");
            }
        }
        if let Some(p) = self.preparer.take() {
            p.stop.store(true, Ordering::Relaxed);
            if p.handle.join().is_err() {
                tracing::error!("WAL preallocation thread panicked");
            }
        }
    }
}

impl WalReader {
    /// Waits until the entry now at `index` is fdatasynced. Entries already purged
    /// count as durable; an index past the end of the log is an error, as is a
    /// writer that failed before syncing it.
    pub async fn wait_synced(&self, index: u64) -> Result<(), WalError> {
        let op = {
            let log = self.shared.lock();
            if index < log.first {
                return Ok(());
            }
            match log.slots.get((index - log.first) as usize) {
                Some(slot) => slot.op,
                None => {
                    return Err(WalError::Internal(format!(
                        "waiting for entry {index}, which is not in the log"
                    )))
                }
            }
        };
        let mut rx = self.shared.synced.subscribe();
        let got = *rx
            .wait_for(|s| s.op >= op || s.failed)
            .await
            .map_err(|_| WalError::Stopped)?;
        if got.op >= op {
            return Ok(());
        }
        let reason = self.shared.lock().failed.clone().unwrap_or_default();
        Err(WalError::Failed(reason))
    }

    /// The index of the first entry still in the log, if any.
    pub fn first_index(&self) -> Option<u64> {
        let log = self.shared.lock();
        (!log.slots.is_empty()).then_some(log.first)
    }

    /// The index of the last entry in the log, if any.
    pub fn last_index(&self) -> Option<u64> {
        self.shared.lock().last_index()
    }

    /// Plans reading the entries of `range` that are in the log, in index order.
    pub fn plan(&self, range: Range<u64>) -> ReadPlan {
        let log = self.shared.lock();
        let live_end = log.first + log.slots.len() as u64;
        let start = range.start.max(log.first);
        let end = range.end.min(live_end);
        let cache_start = live_end - log.cache.len() as u64;
        let mut items = Vec::with_capacity(end.saturating_sub(start).min(1 << 16) as usize);
        let base_seq = log.segments.front().map_or(0, |s| s.seq);
        for index in start..end {
            if index >= cache_start {
                let cached = &log.cache[(index - cache_start) as usize];
                items.push((index, Source::Cached(cached.data.clone())));
                continue;
            }
            let slot = &log.slots[(index - log.first) as usize];
            let seg = slot
                .seq
                .checked_sub(base_seq)
                .and_then(|i| log.segments.get(i as usize))
                .map(|s| s.file.clone());
            items.push((
                index,
                match seg {
                    Some(seg) => Source::Disk {
                        seg,
                        offset: slot.offset,
                        len: slot.len,
                    },
                    None => Source::Missing { seq: slot.seq },
                },
            ));
        }
        ReadPlan { items }
    }
}

impl ReadPlan {
    /// True if executing the plan reads from disk.
    pub fn needs_io(&self) -> bool {
        self.items
            .iter()
            .any(|(_, s)| !matches!(s, Source::Cached(_)))
    }

    /// Returns `(index, entry bytes)` in index order, reading what is not cached
    /// with positional reads (adjacent records in one read) and checking each
    /// record's checksum and index. Blocks on disk I/O when `needs_io`.
    pub fn execute(self) -> Result<Vec<(u64, Bytes)>, WalError> {
        let items = self.items;
        let mut out = Vec::with_capacity(items.len());
        let mut i = 0;
        while i < items.len() {
            let (index, source) = &items[i];
            let (seg, offset, len) = match source {
                Source::Cached(b) => {
                    out.push((*index, b.clone()));
                    i += 1;
                    continue;
                }
                Source::Missing { seq } => {
                    return Err(WalError::Internal(format!(
                        "entry {index} points at segment {seq}, which is not in the index"
                    )))
                }
                Source::Disk { seg, offset, len } => (seg, *offset, *len),
            };
            let start = offset;
            let mut end = offset + entry_frame_len(len);
            let mut j = i + 1;
            while let Some((
                _,
                Source::Disk {
                    seg: s,
                    offset: o,
                    len: l,
                },
            )) = items.get(j)
            {
                let next_end = *o + entry_frame_len(*l);
                if !Arc::ptr_eq(s, seg) || *o != end || next_end - start > MAX_READ_SPAN {
                    break;
                }
                end = next_end;
                j += 1;
            }
            let file = seg.open()?;
            let mut buf = vec![0u8; (end - start) as usize];
            file.read_exact_at(&mut buf, start)
                .map_err(io_err("read", &seg.path))?;
            let buf = Bytes::from(buf);
            let mut at = 0usize;
            for (index, source) in &items[i..j] {
                if let Source::Disk { offset, len, .. } = source {
                    let frame_len = entry_frame_len(*len) as usize;
                    let data =
                        check_entry_frame(&buf[at..at + frame_len], *index).map_err(|reason| {
                            WalError::Corrupt {
                                path: seg.path.clone(),
                                offset: *offset,
                                reason,
                            }
                        })?;
                    out.push((*index, buf.slice(at + data.start..at + data.end)));
                    at += frame_len;
                }
            }
            i = j;
        }
        Ok(out)
    }
}

enum Source {
    Cached(Bytes),
    Disk {
        seg: Arc<SegFile>,
        offset: u64,
        len: u32,
    },
    Missing {
        seq: u64,
    },
}

fn entry_frame_len(len: u32) -> u64 {
    (FRAME_LEN + ENTRY_HEAD_LEN) as u64 + u64::from(len)
}

/// Checks a whole entry frame read back from disk; returns the range of its entry bytes.
fn check_entry_frame(frame: &[u8], index: u64) -> Result<Range<usize>, String> {
    let (len, crc, kind) = parse_frame_head(&frame[..FRAME_LEN]);
    if FRAME_LEN + len as usize != frame.len() || kind != KIND_ENTRY {
        return Err(format!(
            "expected entry {index}, found a kind {kind} record of {len} bytes"
        ));
    }
    if crc32(kind, &frame[FRAME_LEN..]) != crc {
        return Err(format!("checksum mismatch reading entry {index}"));
    }
    let found = u64_at(frame, FRAME_LEN);
    if found != index {
        return Err(format!("expected entry {index}, found entry {found}"));
    }
    Ok(FRAME_LEN + ENTRY_HEAD_LEN..frame.len())
}

// ---------------------------------------------------------------------------------
// In-memory index.

struct Shared {
    dir: PathBuf,
    opts: WalOptions,
    log: Mutex<Log>,
    /// The highest op whose bytes are in a segment file (not necessarily synced).
    written_op: AtomicU64,
    /// The highest entry-writing op that is fdatasynced, and whether the writer failed.
    synced: tokio::sync::watch::Sender<Synced>,
    /// Makes the writer's next write stop half way with ENOSPC.
    #[cfg(test)]
    fail_next_write: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().expect("WAL index lock poisoned by a panic")
    }
}

/// The log as the records written so far describe it (including queued ones).
#[derive(Default)]
struct Log {
    segments: VecDeque<SegmentMeta>,
    /// Index of `slots[0]`; when `slots` is empty, the next index (or 0).
    first: u64,
    slots: VecDeque<Slot>,
    /// Bytes of the last `cache.len()` entries.
    cache: VecDeque<Cached>,
    cache_bytes: usize,
    /// The index the next entry must have; `None` while the log has never held an
    /// entry nor been purged.
    next_index: Option<u64>,
    purged: Option<Purged>,
    state: Option<Vec<u8>>,
    last_op: u64,
    failed: Option<String>,
}

struct SegmentMeta {
    seq: u64,
    data_start: u64,
    /// Where the next record goes (counting records queued but not yet written).
    end: u64,
    file: Arc<SegFile>,
}

#[derive(Clone, Copy)]
struct Slot {
    term: u64,
    seq: u64,
    offset: u64,
    len: u32,
    /// The op that wrote the entry; 0 for entries recovered from disk.
    op: u64,
}

/// What the writer has made durable.
#[derive(Clone, Copy, Debug, Default)]
struct Synced {
    op: u64,
    failed: bool,
}

struct Cached {
    op: u64,
    data: Bytes,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Purged {
    index: u64,
    marker: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SegmentHeader {
    seq: u64,
    next_index: Option<u64>,
    purged: Option<Purged>,
    state: Option<Vec<u8>>,
}

/// A segment's read handle, opened on first use.
struct SegFile {
    path: PathBuf,
    file: Mutex<Option<Arc<File>>>,
}

impl SegFile {
    fn new(path: PathBuf) -> SegFile {
        SegFile {
            path,
            file: Mutex::new(None),
        }
    }

    fn open(&self) -> Result<Arc<File>, WalError> {
        let mut slot = self
            .file
            .lock()
            .expect("segment handle lock poisoned by a panic");
        if let Some(f) = &*slot {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(&self.path).map_err(io_err("open", &self.path))?);
        *slot = Some(f.clone());
        Ok(f)
    }
}

impl Log {
    fn check_writable(&self) -> Result<(), WalError> {
        match &self.failed {
            Some(reason) => Err(WalError::Failed(reason.clone())),
            None => Ok(()),
        }
    }

    fn last_index(&self) -> Option<u64> {
        (!self.slots.is_empty()).then(|| self.first + self.slots.len() as u64 - 1)
    }

    fn next_op(&mut self) -> u64 {
        self.last_op += 1;
        self.last_op
    }

    /// Takes `len` bytes at the end of the tail segment: `(seq, offset)`.
    fn reserve(&mut self, len: u64) -> Result<(u64, u64), WalError> {
        let tail = self
            .segments
            .back_mut()
            .ok_or_else(|| WalError::Internal("no tail segment".into()))?;
        let at = tail.end;
        tail.end += len;
        Ok((tail.seq, at))
    }

    /// Whether an entry `(index, term)` may follow the log as it stands.
    fn check_entry(&self, index: u64, term: u64) -> Result<(), String> {
        if let Some(next) = self.next_index {
            if index != next {
                return Err(format!("entry index {index} where {next} is next"));
            }
        }
        if let Some(last) = self.slots.back() {
            if term < last.term {
                return Err(format!(
                    "entry {index} has term {term}, below the term {} of the entry before it",
                    last.term
                ));
            }
        }
        Ok(())
    }

    fn push_slot(&mut self, index: u64, slot: Slot) {
        if self.slots.is_empty() {
            self.first = index;
        }
        self.slots.push_back(slot);
        self.next_index = Some(index + 1);
    }

    fn cache_push(&mut self, op: u64, data: Bytes) {
        self.cache_bytes += data.len();
        self.cache.push_back(Cached { op, data });
    }

    fn cache_pop_front(&mut self) {
        if let Some(c) = self.cache.pop_front() {
            self.cache_bytes -= c.data.len();
        }
    }

    fn cache_pop_back(&mut self) {
        if let Some(c) = self.cache.pop_back() {
            self.cache_bytes -= c.data.len();
        }
    }

    /// Drops the oldest cached entries beyond the limits, never one not yet written.
    fn evict(&mut self, written_op: u64, opts: &WalOptions) {
        while let Some(front) = self.cache.front() {
            let over = self.cache.len() > opts.cache_entries || self.cache_bytes > opts.cache_bytes;
            if !over || front.op > written_op {
                break;
            }
            self.cache_pop_front();
        }
    }

    /// Applies "entries at and after `index` are gone". `Ok(false)`: nothing to do.
    fn truncate_from(&mut self, index: u64) -> Result<bool, String> {
        let Some(next) = self.next_index else {
            return Ok(false);
        };
        if index >= next {
            return Ok(false);
        }
        if let Some(p) = &self.purged {
            if index <= p.index {
                return Err(format!(
                    "truncating at {index} would cut into the purged prefix (purged up to {})",
                    p.index
                ));
            }
        }
        let keep = if index <= self.first {
            0
        } else {
            ((index - self.first) as usize).min(self.slots.len())
        };
        let removed = self.slots.len() - keep;
        for _ in 0..removed.min(self.cache.len()) {
            self.cache_pop_back();
        }
        self.slots.truncate(keep);
        self.next_index = Some(index);
        if self.slots.is_empty() {
            self.first = index;
        }
        Ok(true)
    }

    /// Applies "entries at and before `index` are gone". `false`: already purged.
    fn purge_upto(&mut self, index: u64, marker: Vec<u8>) -> bool {
        if self.purged.as_ref().is_some_and(|p| index <= p.index) {
            return false;
        }
        let len = self.slots.len();
        let drop_n = if len == 0 || index < self.first {
            0
        } else {
            ((index - self.first + 1) as usize).min(len)
        };
        let uncached = len - self.cache.len();
        for _ in 0..drop_n.saturating_sub(uncached) {
            self.cache_pop_front();
        }
        self.slots.drain(..drop_n);
        self.first += drop_n as u64;
        let next = self.next_index.map_or(index + 1, |n| n.max(index + 1));
        self.next_index = Some(next);
        if self.slots.is_empty() {
            self.first = next;
        }
        self.purged = Some(Purged { index, marker });
        true
    }
}

// ---------------------------------------------------------------------------------
// Framing.

fn crc32(kind: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(payload);
    h.finalize()
}

fn begin_frame(buf: &mut Vec<u8>, kind: u8) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 8]);
    buf.push(kind);
    start
}

fn finish_frame(buf: &mut Vec<u8>, start: usize) -> Result<(), WalError> {
    let len = buf.len() - start - FRAME_LEN;
    if len > MAX_RECORD_BYTES {
        buf.truncate(start);
        return Err(WalError::TooLarge(len));
    }
    let crc = crc32(buf[start + 8], &buf[start + FRAME_LEN..]);
    buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn encode_record(kind: u8, payload: &[u8]) -> Result<Vec<u8>, WalError> {
    let mut buf = Vec::with_capacity(FRAME_LEN + payload.len());
    let start = begin_frame(&mut buf, kind);
    buf.extend_from_slice(payload);
    finish_frame(&mut buf, start)?;
    Ok(buf)
}

fn encode_header(header: &SegmentHeader) -> Result<Vec<u8>, WalError> {
    let payload =
        bincode::serde::encode_to_vec(header, bincode::config::standard()).map_err(|e| {
            WalError::Encode {
                what: "segment header",
                reason: e.to_string(),
            }
        })?;
    let mut buf = MAGIC.to_vec();
    buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    buf.extend_from_slice(&encode_record(KIND_HEADER, &payload)?);
    Ok(buf)
}

fn parse_frame_head(head: &[u8]) -> (u32, u32, u8) {
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    (len, crc, head[8])
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

fn segment_name(seq: u64, first_index: u64) -> String {
    format!("{seq:016x}-{first_index:016x}.wal")
}

enum FileName {
    Segment { seq: u64, first_index: u64 },
    Temp,
    Unknown,
}

fn classify(name: &str) -> FileName {
    fn hex16(s: &str) -> Option<u64> {
        if s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            u64::from_str_radix(s, 16).ok()
        } else {
            None
        }
    }
    fn segment(name: &str) -> Option<(u64, u64)> {
        let stem = name.strip_suffix(".wal")?;
        let (seq, first) = stem.split_once('-')?;
        Some((hex16(seq)?, hex16(first)?))
    }
    if let Some((seq, first_index)) = segment(name) {
        return FileName::Segment { seq, first_index };
    }
    if let Some(stem) = name.strip_suffix(".tmp") {
        let prealloc = stem
            .strip_prefix("prealloc-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if prealloc || segment(stem).is_some() {
            return FileName::Temp;
        }
    }
    FileName::Unknown
}

fn fsync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

// ---------------------------------------------------------------------------------
// Recovery.

struct Recovered {
    log: Log,
    tail: Option<TailState>,
}

struct TailState {
    path: PathBuf,
    end: u64,
    file_len: u64,
}

fn recover(dir: &Path) -> Result<Recovered, WalError> {
    let mut segments = Vec::new();
    let mut removed = false;
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let path = entry.path();
        let is_file = entry.file_type().map_err(io_err("stat", &path))?.is_file();
        let name = entry.file_name();
        let kind = name.to_str().map_or(FileName::Unknown, classify);
        match kind {
            FileName::Segment { seq, first_index } if is_file => {
                segments.push((seq, first_index, path))
            }
            FileName::Temp if is_file => {
                tracing::info!(file = %path.display(), "WAL: removing a leftover temporary file");
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                removed = true;
            }
            _ => return Err(WalError::UnknownFile { path }),
        }
    }
    segments.sort_by_key(|s| s.0);
    for w in segments.windows(2) {
        if w[1].0 != w[0].0 + 1 {
            return Err(WalError::MissingSegment {
                before: w[0].2.clone(),
                after: w[1].2.clone(),
            });
        }
    }
    let mut log = Log::default();
    let mut tail = None;
    let count = segments.len();
    for (i, (seq, first_index, path)) in segments.into_iter().enumerate() {
        let is_last = i + 1 == count;
        let scan = scan_segment(&path, seq, first_index, i == 0, is_last, &mut log)?;
        removed |= scan.cut;
        log.segments.push_back(SegmentMeta {
            seq,
            data_start: scan.data_start,
            end: scan.end,
            file: Arc::new(SegFile::new(path.clone())),
        });
        if is_last {
            tail = Some(TailState {
                path,
                end: scan.end,
                file_len: scan.file_len,
            });
        }
    }
    if removed {
        fsync_dir(dir)?;
    }
    Ok(Recovered { log, tail })
}

struct Scan {
    data_start: u64,
    end: u64,
    file_len: u64,
    cut: bool,
}

enum Frame {
    End,
    Record {
        kind: u8,
        payload: Vec<u8>,
    },
    /// A record that does not check out; `end` is where its length field says it
    /// ends (past the end of the file when that is unknown or beyond it).
    Bad {
        reason: String,
        end: u64,
        zeroed: bool,
    },
}

/// Reads framed records sequentially from a segment.
struct RecordReader<'a> {
    inner: BufReader<&'a File>,
    pos: u64,
    file_len: u64,
}

impl RecordReader<'_> {
    fn next_frame(&mut self) -> io::Result<Frame> {
        let at = self.pos;
        if at == self.file_len {
            return Ok(Frame::End);
        }
        if self.file_len - at < FRAME_LEN as u64 {
            return Ok(Frame::Bad {
                reason: "incomplete record frame at the end of the file".into(),
                end: u64::MAX,
                zeroed: false,
            });
        }
        let mut head = [0u8; FRAME_LEN];
        self.inner.read_exact(&mut head)?;
        self.pos += FRAME_LEN as u64;
        if head == [0u8; FRAME_LEN] {
            return Ok(Frame::Bad {
                reason: "zeroed record frame".into(),
                end: at + FRAME_LEN as u64,
                zeroed: true,
            });
        }
        let (len, crc, kind) = parse_frame_head(&head);
        if len as usize > MAX_RECORD_BYTES {
            return Ok(Frame::Bad {
                reason: format!("record length {len} out of range"),
                end: u64::MAX,
                zeroed: false,
            });
        }
        let end = at + FRAME_LEN as u64 + u64::from(len);
        if end > self.file_len {
            return Ok(Frame::Bad {
                reason: format!("record of {len} bytes runs past the end of the file"),
                end,
                zeroed: false,
            });
        }
        let mut payload = vec![0u8; len as usize];
        self.inner.read_exact(&mut payload)?;
        self.pos = end;
        if crc32(kind, &payload) != crc {
            return Ok(Frame::Bad {
                reason: "checksum mismatch".into(),
                end,
                zeroed: false,
            });
        }
        Ok(Frame::Record { kind, payload })
    }
}

fn scan_segment(
    path: &Path,
    seq: u64,
    first_index: u64,
    is_first: bool,
    is_last: bool,
    log: &mut Log,
) -> Result<Scan, WalError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let file_len = file.metadata().map_err(io_err("stat", path))?.len();
    let corrupt = |offset: u64, reason: String| WalError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if file_len < PREFIX_LEN {
        if file_len < MAGIC.len() as u64 {
            return Err(WalError::BadMagic {
                path: path.to_path_buf(),
            });
        }
        return Err(corrupt(0, "file ends inside the segment prefix".into()));
    }
    let mut reader = RecordReader {
        inner: BufReader::with_capacity(256 << 10, &file),
        pos: 0,
        file_len,
    };
    let mut prefix = [0u8; PREFIX_LEN as usize];
    reader
        .inner
        .read_exact(&mut prefix)
        .map_err(io_err("read", path))?;
    reader.pos = PREFIX_LEN;
    if prefix[..8] != MAGIC {
        return Err(WalError::BadMagic {
            path: path.to_path_buf(),
        });
    }
    let version = u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
    if version != FORMAT_VERSION {
        return Err(WalError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let header: SegmentHeader = match reader.next_frame().map_err(io_err("read", path))? {
        Frame::Record {
            kind: KIND_HEADER,
            payload,
        } => bincode::serde::decode_from_slice(&payload, bincode::config::standard())
            .map(|(h, _)| h)
            .map_err(|e| corrupt(PREFIX_LEN, format!("undecodable segment header: {e}")))?,
        Frame::Record { kind, .. } => {
            return Err(corrupt(
                PREFIX_LEN,
                format!("expected the segment header, found kind {kind}"),
            ))
        }
        Frame::Bad { reason, .. } => {
            return Err(corrupt(PREFIX_LEN, format!("segment header: {reason}")))
        }
        Frame::End => return Err(corrupt(PREFIX_LEN, "segment has no header record".into())),
    };
    let inconsistent = |offset: u64, reason: String| WalError::Inconsistent {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if header.seq != seq || header.next_index.unwrap_or(0) != first_index {
        return Err(inconsistent(
            PREFIX_LEN,
            format!(
                "header says segment {} starting at index {:?}, the file name says segment {seq} starting at {first_index}",
                header.seq, header.next_index
            ),
        ));
    }
    if is_first {
        log.next_index = header.next_index;
        log.first = header.next_index.unwrap_or(0);
        log.purged = header.purged;
        log.state = header.state;
    } else {
        let purged = header.purged.as_ref().map(|p| p.index);
        let replayed = log.purged.as_ref().map(|p| p.index);
        if header.next_index != log.next_index || purged != replayed {
            return Err(inconsistent(
                PREFIX_LEN,
                format!(
                    "header says next index {:?} and purged {purged:?}, the segments before it end with next index {:?} and purged {replayed:?}",
                    header.next_index, log.next_index
                ),
            ));
        }
    }
    let data_start = reader.pos;
    loop {
        let at = reader.pos;
        match reader.next_frame().map_err(io_err("read", path))? {
            Frame::End => {
                return Ok(Scan {
                    data_start,
                    end: at,
                    file_len,
                    cut: false,
                })
            }
            Frame::Record { kind, payload } => apply_record(log, path, seq, at, kind, &payload)?,
            Frame::Bad {
                reason,
                end,
                zeroed,
            } => {
                if zero_from(&file, at, file_len).map_err(io_err("read", path))? {
                    tracing::debug!(
                        file = %path.display(),
                        offset = at,
                        zero_bytes = file_len - at,
                        "WAL: segment data ends where its zero-filled remainder starts"
                    );
                    return Ok(Scan {
                        data_start,
                        end: at,
                        file_len,
                        cut: false,
                    });
                }
                if !is_last {
                    return Err(corrupt(at, reason));
                }
                let torn = end > file_len
                    || zeroed
                    || zero_from(&file, end, file_len).map_err(io_err("read", path))?
                    || has_zero_sector(&file, at, end.min(file_len))
                        .map_err(io_err("read", path))?;
                if !torn {
                    return Err(corrupt(
                        at,
                        format!(
                            "{reason}; written data follows it, so it is not a torn final write"
                        ),
                    ));
                }
                tracing::warn!(
                    file = %path.display(),
                    offset = at,
                    discarded_bytes = file_len - at,
                    reason = %reason,
                    "WAL: cutting a torn write off the end of the last segment; it was never acknowledged"
                );
                drop(reader);
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err("open", path))?;
                f.set_len(at).map_err(io_err("truncate", path))?;
                f.sync_all().map_err(io_err("fsync", path))?;
                return Ok(Scan {
                    data_start,
                    end: at,
                    file_len: at,
                    cut: true,
                });
            }
        }
    }
}

fn apply_record(
    log: &mut Log,
    path: &Path,
    seq: u64,
    at: u64,
    kind: u8,
    payload: &[u8],
) -> Result<(), WalError> {
    let corrupt = |reason: String| WalError::Corrupt {
        path: path.to_path_buf(),
        offset: at,
        reason,
    };
    let inconsistent = |reason: String| WalError::Inconsistent {
        path: path.to_path_buf(),
        offset: at,
        reason,
    };
    match kind {
        KIND_ENTRY => {
            if payload.len() < ENTRY_HEAD_LEN {
                return Err(corrupt(
                    "entry record shorter than its index and term".into(),
                ));
            }
            let (index, term) = (u64_at(payload, 0), u64_at(payload, 8));
            log.check_entry(index, term).map_err(inconsistent)?;
            log.push_slot(
                index,
                Slot {
                    term,
                    seq,
                    offset: at,
                    len: (payload.len() - ENTRY_HEAD_LEN) as u32,
                    op: 0,
                },
            );
        }
        KIND_STATE => log.state = Some(payload.to_vec()),
        KIND_TRUNCATE => {
            if payload.len() != 8 {
                return Err(corrupt("truncate record of the wrong size".into()));
            }
            log.truncate_from(u64_at(payload, 0))
                .map_err(inconsistent)?;
        }
        KIND_PURGE => {
            if payload.len() < 8 {
                return Err(corrupt("purge record shorter than its index".into()));
            }
            log.purge_upto(u64_at(payload, 0), payload[8..].to_vec());
        }
        KIND_HEADER => return Err(corrupt("a second segment header".into())),
        other => return Err(corrupt(format!("unknown record kind {other}"))),
    }
    Ok(())
}

/// True if every byte of `[from, to)` is zero.
fn zero_from(file: &File, from: u64, to: u64) -> io::Result<bool> {
    let mut buf = vec![0u8; SCAN_CHUNK];
    let mut at = from;
    while at < to {
        let n = (to - at).min(SCAN_CHUNK as u64) as usize;
        file.read_exact_at(&mut buf[..n], at)?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// True if a 512-byte-aligned sector inside `[from, to)` is all zero: the mark of
/// a write whose pages did not all reach the disk.
fn has_zero_sector(file: &File, from: u64, to: u64) -> io::Result<bool> {
    let mut sector = from.div_ceil(SECTOR) * SECTOR;
    let mut buf = [0u8; SECTOR as usize];
    while sector + SECTOR <= to {
        file.read_exact_at(&mut buf, sector)?;
        if buf.iter().all(|&b| b == 0) {
            return Ok(true);
        }
        sector += SECTOR;
    }
    Ok(false)
}

// ---------------------------------------------------------------------------------
// Writer thread.

enum Op {
    /// Sync and trim the current tail, then create the segment at `path`.
    Create { path: PathBuf, header: Vec<u8> },
    /// Records for `offset` in the tail; `sync` writes them (with anything held)
    /// and fdatasyncs, otherwise they are held for the next synced write.
    Write {
        offset: u64,
        bytes: Bytes,
        sync: bool,
        op: u64,
        done: Option<Done>,
    },
    /// Delete segment files (their entries are purged and the purge is durable).
    Delete { paths: Vec<PathBuf>, done: Done },
    /// Write what is held and fdatasync.
    Flush { done: Done },
}

impl Op {
    fn into_done(self) -> Option<Done> {
        match self {
            Op::Create { .. } => None,
            Op::Write { done, .. } => done,
            Op::Delete { done, .. } | Op::Flush { done } => Some(done),
        }
    }
}

struct Writer {
    shared: Arc<Shared>,
    file: Option<File>,
    path: PathBuf,
    /// Where the next byte goes; the held bytes belong here.
    write_pos: u64,
    file_len: u64,
    /// Records queued without sync, written with the next synced write.
    pending: Vec<u8>,
    /// Bytes written since the last fdatasync.
    unsynced: bool,
    spares: Option<Receiver<Spare>>,
    failed: Option<String>,
}

struct Spare {
    path: PathBuf,
    file: File,
    len: u64,
}

struct Preparer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Op>) {
        let mut next = None;
        loop {
            let op = match next.take() {
                Some(op) => op,
                None => match rx.recv() {
                    Ok(op) => op,
                    Err(_) => break,
                },
            };
            match op {
                Op::Write { sync: true, .. } => next = self.write_group(op, &rx),
                other => self.handle(other),
            }
        }
        if self.failed.is_none() {
            if let Err(e) = self.sync_tail() {
                tracing::error!(error = %e, "WAL: syncing held records at close failed");
            }
        }
    }

    fn handle(&mut self, op: Op) {
        if let Some(reason) = &self.failed {
            if let Some(done) = op.into_done() {
                done(Err(WalError::Failed(reason.clone())));
            }
            return;
        }
        match op {
            Op::Create { path, header } => {
                let r = self.create(path, &header);
                self.finish(r, None);
            }
            Op::Write {
                offset,
                bytes,
                sync,
                op,
                done,
            } => {
                let r = self.write(offset, &bytes, sync, op);
                self.finish(r, done);
            }
            Op::Delete { paths, done } => {
                let r = self.delete(&paths);
                self.finish(r, Some(done));
            }
            Op::Flush { done } => {
                let r = self.sync_tail();
                self.finish(r, Some(done));
            }
        }
    }

    /// Group commit: writes `first` and every write already queued behind it with
    /// one `pwrite` and one `fdatasync`, then completes them all. Returns the op that
    /// ended the group, to be handled next.
    fn write_group(&mut self, first: Op, rx: &Receiver<Op>) -> Option<Op> {
        let mut group = vec![first];
        let mut size = 0;
        let mut stop = None;
        while group.len() < GROUP_MAX_OPS && size < GROUP_MAX_BYTES {
            match rx.try_recv() {
                Ok(op @ Op::Write { .. }) => {
                    if let Op::Write { bytes, .. } = &op {
                        size += bytes.len();
                    }
                    group.push(op);
                }
                Ok(other) => {
                    stop = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        if group.len() == 1 || self.failed.is_some() {
            for op in group {
                self.handle(op);
            }
            return stop;
        }
        let mut dones = Vec::with_capacity(group.len());
        let mut last_op = 0;
        let mut r = Ok(());
        for op in group {
            if let Op::Write {
                offset,
                bytes,
                op,
                done,
                ..
            } = op
            {
                if r.is_ok() {
                    r = self.write(offset, &bytes, false, op);
                }
                last_op = last_op.max(op);
                dones.extend(done);
            }
        }
        let r = r.and_then(|()| self.sync_tail());
        match r {
            Ok(()) => {
                self.shared.written_op.store(last_op, Ordering::Release);
                self.shared.synced.send_modify(|s| s.op = last_op);
                for done in dones {
                    done(Ok(()));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                self.finish(Err(e), None);
                for done in dones {
                    done(Err(WalError::Failed(reason.clone())));
                }
            }
        }
        stop
    }

    fn finish(&mut self, r: Result<(), WalError>, done: Option<Done>) {
        if let Err(e) = &r {
            let reason = e.to_string();
            tracing::error!(error = %reason, "WAL write failed; no further writes are accepted until reopened");
            self.shared
                .lock()
                .failed
                .get_or_insert_with(|| reason.clone());
            self.shared.synced.send_modify(|s| s.failed = true);
            self.failed = Some(reason);
        }
        if let Some(done) = done {
            done(r);
        }
    }

    fn file(&self) -> Result<&File, WalError> {
        self.file
            .as_ref()
            .ok_or_else(|| WalError::Internal("write with no open segment".into()))
    }

    fn write(&mut self, offset: u64, bytes: &[u8], sync: bool, op: u64) -> Result<(), WalError> {
        let expected = self.write_pos + self.pending.len() as u64;
        if offset != expected {
            return Err(WalError::Internal(format!(
                "{}: record for offset {offset} arrived where {expected} is next",
                self.path.display()
            )));
        }
        if !sync {
            self.pending.extend_from_slice(bytes);
            return Ok(());
        }
        let n = if self.pending.is_empty() {
            self.write_at(bytes)?;
            bytes.len()
        } else {
            self.pending.extend_from_slice(bytes);
            let held = std::mem::take(&mut self.pending);
            self.write_at(&held)?;
            held.len()
        };
        self.advance(n as u64);
        self.shared.written_op.store(op, Ordering::Release);
        self.sync_data()?;
        self.shared.synced.send_modify(|s| s.op = op);
        Ok(())
    }

    /// Writes `buf` at the write position with one positional write.
    fn write_at(&self, buf: &[u8]) -> Result<(), WalError> {
        let file = self.file()?;
        #[cfg(test)]
        if self.shared.fail_next_write.swap(false, Ordering::SeqCst) {
            // A disk that fills up half way through the write.
            file.write_all_at(&buf[..buf.len() / 2], self.write_pos)
                .map_err(io_err("write", &self.path))?;
            return Err(io_err("write", &self.path)(io::Error::from_raw_os_error(
                28,
            )));
        }
        file.write_all_at(buf, self.write_pos)
            .map_err(io_err("write", &self.path))
    }

    fn advance(&mut self, n: u64) {
        self.write_pos += n;
        self.file_len = self.file_len.max(self.write_pos);
        self.unsynced = true;
        metrics::counter!(WRITE_BYTES_COUNTER).increment(n);
    }

    fn sync_data(&mut self) -> Result<(), WalError> {
        let started = Instant::now();
        self.file()?
            .sync_data()
            .map_err(io_err("fdatasync", &self.path))?;
        metrics::histogram!(FSYNC_HISTOGRAM).record(started.elapsed().as_secs_f64());
        self.unsynced = false;
        Ok(())
    }

    /// Writes held records and fdatasyncs if anything is unsynced.
    fn sync_tail(&mut self) -> Result<(), WalError> {
        if !self.pending.is_empty() {
            let held = std::mem::take(&mut self.pending);
            self.write_at(&held)?;
            self.advance(held.len() as u64);
        }
        if self.unsynced {
            self.sync_data()?;
        }
        Ok(())
    }

    fn create(&mut self, path: PathBuf, header: &[u8]) -> Result<(), WalError> {
        if self.file.is_some() {
            self.sync_tail()?;
            if self.file_len > self.write_pos {
                let file = self.file()?;
                file.set_len(self.write_pos)
                    .map_err(io_err("trim", &self.path))?;
                file.sync_all().map_err(io_err("fsync", &self.path))?;
                self.file_len = self.write_pos;
            }
        }
        let spare = self.spares.as_ref().and_then(|rx| rx.try_recv().ok());
        let (file, file_len) = match spare {
            Some(spare) => {
                spare
                    .file
                    .write_all_at(header, 0)
                    .map_err(io_err("write", &spare.path))?;
                spare
                    .file
                    .sync_data()
                    .map_err(io_err("fdatasync", &spare.path))?;
                fs::rename(&spare.path, &path).map_err(io_err("rename spare to", &path))?;
                (spare.file, spare.len.max(header.len() as u64))
            }
            None => {
                let mut tmp = path.clone().into_os_string();
                tmp.push(".tmp");
                let tmp = PathBuf::from(tmp);
                let file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                    .map_err(io_err("create", &tmp))?;
                file.write_all_at(header, 0)
                    .map_err(io_err("write", &tmp))?;
                file.sync_all().map_err(io_err("fsync", &tmp))?;
                fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
                (file, header.len() as u64)
            }
        };
        fsync_dir(&self.shared.dir)?;
        tracing::debug!(file = %path.display(), preallocated = file_len > header.len() as u64, "WAL: new segment");
        self.file = Some(file);
        self.path = path;
        self.write_pos = header.len() as u64;
        self.file_len = file_len;
        self.unsynced = false;
        Ok(())
    }

    fn delete(&mut self, paths: &[PathBuf]) -> Result<(), WalError> {
        if paths.is_empty() {
            return Ok(());
        }
        for p in paths {
            match fs::remove_file(p) {
                Ok(()) => tracing::debug!(file = %p.display(), "WAL: deleted purged segment"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %p.display(), error = %e, "WAL: cannot delete a purged segment; it is skipped on recovery and deleted by a later purge")
                }
            }
        }
        fsync_dir(&self.shared.dir)
    }
}

/// Keeps one zero-filled spare segment ready for the writer.
fn run_preparer(dir: PathBuf, size: u64, tx: SyncSender<Spare>, stop: Arc<AtomicBool>) {
    for n in 0u64.. {
        let path = dir.join(format!("prealloc-{n}.tmp"));
        match zero_fill(&path, size, &stop) {
            Ok(Some(file)) => {
                if let Err(mpsc::SendError(spare)) = tx.send(Spare {
                    path,
                    file,
                    len: size,
                }) {
                    let _ = fs::remove_file(&spare.path);
                    return;
                }
            }
            Ok(None) => {
                let _ = fs::remove_file(&path);
                return;
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "WAL: cannot preallocate segments; new segments grow as written");
                let _ = fs::remove_file(&path);
                return;
            }
        }
    }
}

/// Writes `size` zero bytes to a new file and syncs it; `None` if told to stop.
/// Each chunk is synced before the next is written, so the fill never holds more
/// than one chunk of dirty data for a journal commit to flush ahead of a WAL sync.
fn zero_fill(path: &Path, size: u64, stop: &AtomicBool) -> io::Result<Option<File>> {
    let file = OpenOptions::new().write(true).create_new(true).open(path)?;
    let zeros = vec![0u8; ZERO_CHUNK];
    let mut at = 0u64;
    while at < size {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let n = (size - at).min(ZERO_CHUNK as u64);
        file.write_all_at(&zeros[..n as usize], at)?;
        file.sync_data()?;
        at += n;
    }
    file.sync_all()?;
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn opts(segment_bytes: u64, preallocate: bool) -> WalOptions {
        WalOptions {
            segment_bytes,
            preallocate,
            cache_entries: 4,
            cache_bytes: 1 << 20,
        }
    }

    /// Runs `f` with a completion and waits for it.
    fn wait(f: impl FnOnce(Done) -> Result<(), WalError>) -> Result<(), WalError> {
        let (tx, rx) = mpsc::channel();
        f(Box::new(move |r| {
            let _ = tx.send(r);
        }))?;
        rx.recv().map_err(|_| WalError::Stopped)?
    }

    /// Entry bytes that name their index and term and hold no zero byte.
    fn data(index: u64, term: u64) -> Vec<u8> {
        format!("entry {index} of term {term}; ")
            .repeat(4)
            .into_bytes()
    }

    fn append(wal: &mut Wal, term: u64, indexes: Range<u64>) -> Result<(), WalError> {
        append_sized(wal, term, indexes, None)
    }

    fn append_sized(
        wal: &mut Wal,
        term: u64,
        indexes: Range<u64>,
        size: Option<usize>,
    ) -> Result<(), WalError> {
        let mut batch = Batch::new();
        for i in indexes {
            batch.push(i, term, |buf| {
                let mut d = data(i, term);
                if let Some(size) = size {
                    d = d.iter().copied().cycle().take(size).collect();
                }
                buf.extend_from_slice(&d);
                Ok(())
            })?;
        }
        wait(|done| wal.append(batch, done))
    }

    fn read_all(wal: &Wal) -> Result<Vec<(u64, Vec<u8>)>, WalError> {
        Ok(wal
            .reader()
            .plan(0..u64::MAX)
            .execute()?
            .into_iter()
            .map(|(i, b)| (i, b.to_vec()))
            .collect())
    }

    fn expected(parts: &[(u64, Range<u64>)]) -> Vec<(u64, Vec<u8>)> {
        parts
            .iter()
            .flat_map(|(term, r)| r.clone().map(move |i| (i, data(i, *term))))
            .collect()
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wal"))
            .collect();
        v.sort();
        v
    }

    fn name_of(p: &Path) -> (u64, u64) {
        match p.file_name().and_then(|n| n.to_str()).map(classify) {
            Some(FileName::Segment { seq, first_index }) => (seq, first_index),
            _ => panic!("{} is not a segment name", p.display()),
        }
    }

    /// `(offset, kind, payload)` of every record after the prefix, read without
    /// the recovery code.
    fn records(path: &Path) -> Vec<(u64, u8, Vec<u8>)> {
        let bytes = fs::read(path).unwrap_or_default();
        let mut out = Vec::new();
        let mut at = PREFIX_LEN as usize;
        while at + FRAME_LEN <= bytes.len() {
            let (len, _, kind) = parse_frame_head(&bytes[at..at + FRAME_LEN]);
            let end = at + FRAME_LEN + len as usize;
            if kind == 0 || end > bytes.len() {
                break;
            }
            out.push((at as u64, kind, bytes[at + FRAME_LEN..end].to_vec()));
            at = end;
        }
        out
    }

    fn entry_offsets(path: &Path) -> Vec<(u64, u64)> {
        records(path)
            .into_iter()
            .filter(|r| r.1 == KIND_ENTRY)
            .map(|(at, _, p)| (u64_at(&p, 0), at))
            .collect()
    }

    fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = fs::read(path).expect("read segment");
        f(&mut bytes);
        fs::write(path, bytes).expect("write segment");
    }

    #[test]
    fn append_read_back_and_reopen() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        {
            let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
            for start in (1..=50).step_by(5) {
                append(&mut wal, 1, start..start + 5)?;
            }
            tracing::info!("expect 50 entries, all but the last 4 read from disk");
            assert_eq!(read_all(&wal)?, expected(&[(1, 1..51)]));
            assert!(wal.reader().plan(1..10).needs_io());
            assert!(!wal.reader().plan(47..51).needs_io());
            assert_eq!(wal.reader().plan(20..23).execute()?.len(), 3);
        }
        let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
        assert_eq!(read_all(&wal)?, expected(&[(1, 1..51)]));
        assert_eq!(wal.reader().first_index(), Some(1));
        assert_eq!(wal.reader().last_index(), Some(50));
        let files = segment_files(dir.path());
        assert_eq!(files.len(), 1);
        assert_eq!(name_of(&files[0]), (0, 1));

        tracing::info!("expect a gap, a repeat and a lower term to be rejected");
        assert!(matches!(
            append(&mut wal, 1, 52..53),
            Err(WalError::Rejected(_))
        ));
        assert!(matches!(
            append(&mut wal, 1, 50..51),
            Err(WalError::Rejected(_))
        ));
        assert!(matches!(
            append(&mut wal, 0, 51..52),
            Err(WalError::Rejected(_))
        ));
        append(&mut wal, 2, 51..52)?;
        assert_eq!(wal.reader().last_index(), Some(51));
        Ok(())
    }

    #[test]
    fn appended_entries_are_readable_before_they_are_durable() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
        let mut batch = Batch::new();
        for i in 0..3 {
            batch.push(i, 1, |buf| {
                buf.extend_from_slice(&data(i, 1));
                Ok(())
            })?;
        }
        let (tx, rx) = mpsc::channel();
        wal.append(
            batch,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        let plan = wal.reader().plan(0..3);
        assert!(!plan.needs_io());
        let got: Vec<_> = plan
            .execute()?
            .into_iter()
            .map(|(i, b)| (i, b.to_vec()))
            .collect();
        assert_eq!(got, expected(&[(1, 0..3)]));
        rx.recv().map_err(|_| WalError::Stopped)??;
        Ok(())
    }

    #[test]
    fn writes_queued_together_complete_in_order_and_survive_reopen() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        let (tx, rx) = mpsc::channel();
        {
            // Small segments: the group commits meet segment rolls on the way.
            let mut wal = Wal::open(dir.path(), opts(16 << 10, false))?;
            for i in 0..300u64 {
                let mut batch = Batch::new();
                batch.push(i, 1, |buf| {
                    buf.extend_from_slice(&data(i, 1));
                    Ok(())
                })?;
                let tx = tx.clone();
                wal.append(
                    batch,
                    Box::new(move |r| {
                        let _ = tx.send((i, r.is_ok()));
                    }),
                )?;
                if i % 7 == 0 {
                    wal.save_state(format!("state {i}").into_bytes())?;
                }
            }
            drop(tx);
            let done: Vec<(u64, bool)> = rx.iter().collect();
            assert_eq!(done, (0..300).map(|i| (i, true)).collect::<Vec<_>>());
            let reader = wal.reader();
            let synced = futures::executor::block_on(reader.wait_synced(299));
            assert!(synced.is_ok(), "{synced:?}");
        }
        let wal = Wal::open(dir.path(), opts(16 << 10, false))?;
        assert_eq!(read_all(&wal)?, expected(&[(1, 0..300)]));
        assert_eq!(wal.state(), Some(b"state 294".to_vec()));
        Ok(())
    }

    #[test]
    fn truncate_survives_reopen() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        {
            let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
            append(&mut wal, 1, 1..11)?;
            wal.truncate(6)?;
            assert_eq!(wal.reader().last_index(), Some(5));
            assert_eq!(read_all(&wal)?, expected(&[(1, 1..6)]));
            append(&mut wal, 2, 6..9)?;
            tracing::info!(
                "a truncate below the last purge is rejected, one past the end is a no-op"
            );
            wal.truncate(100)?;
            assert_eq!(wal.reader().last_index(), Some(8));
        }
        {
            let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
            assert_eq!(read_all(&wal)?, expected(&[(1, 1..6), (2, 6..9)]));
            tracing::info!("an unsynced truncate record is written when the WAL closes");
            wal.truncate(4)?;
        }
        let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
        assert_eq!(read_all(&wal)?, expected(&[(1, 1..4)]));
        wait(|done| wal.purge(2, b"p2".to_vec(), done))?;
        assert!(matches!(wal.truncate(2), Err(WalError::Rejected(_))));
        wal.truncate(3)?;
        assert_eq!(wal.reader().last_index(), None);
        append(&mut wal, 3, 3..5)?;
        drop(wal);
        let wal = Wal::open(dir.path(), opts(1 << 20, false))?;
        assert_eq!(read_all(&wal)?, expected(&[(3, 3..5)]));
        Ok(())
    }

    #[test]
    fn purge_deletes_whole_segments_and_survives_reopen() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        let seg = MIN_SEGMENT_BYTES;
        {
            let mut wal = Wal::open(dir.path(), opts(seg, false))?;
            for i in 1..=200 {
                append(&mut wal, 1, i..i + 1)?;
            }
            let before = segment_files(dir.path());
            assert!(
                before.len() >= 5,
                "expected several segments, got {}",
                before.len()
            );
            wait(|done| wal.purge(100, b"marker 100".to_vec(), done))?;
            let after = segment_files(dir.path());
            tracing::info!("expect the files holding only entries <= 100 to be gone");
            assert!(after.len() < before.len());
            assert_eq!(segment_files(dir.path()), wal.segment_paths());
            let holding_101 = after
                .iter()
                .position(|p| entry_offsets(p).iter().any(|(i, _)| *i == 101))
                .expect("a segment holds entry 101");
            assert_eq!(
                holding_101, 0,
                "the first remaining segment holds entry 101"
            );
            assert!(
                entry_offsets(&after[0]).iter().any(|(i, _)| *i <= 100)
                    || name_of(&after[0]).1 == 101
            );
            assert_eq!(read_all(&wal)?, expected(&[(1, 101..201)]));
            wait(|done| wal.purge(50, b"older".to_vec(), done))?;
            assert_eq!(wal.purged(), Some((100, b"marker 100".to_vec())));
        }
        {
            let mut wal = Wal::open(dir.path(), opts(seg, false))?;
            assert_eq!(read_all(&wal)?, expected(&[(1, 101..201)]));
            assert_eq!(wal.purged(), Some((100, b"marker 100".to_vec())));
            tracing::info!("a purge past the end empties the log and moves the next index");
            wait(|done| wal.purge(300, b"marker 300".to_vec(), done))?;
            assert_eq!(wal.reader().last_index(), None);
            assert_eq!(segment_files(dir.path()).len(), 1);
            assert!(matches!(
                append(&mut wal, 1, 201..202),
                Err(WalError::Rejected(_))
            ));
            append(&mut wal, 2, 301..303)?;
        }
        let wal = Wal::open(dir.path(), opts(seg, false))?;
        assert_eq!(read_all(&wal)?, expected(&[(2, 301..303)]));
        assert_eq!(wal.purged(), Some((300, b"marker 300".to_vec())));
        Ok(())
    }

    #[test]
    fn state_survives_reopen() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        {
            let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
            assert_eq!(wal.state(), None);
            wait(|done| wal.save_state_synced(b"vote 1".to_vec(), done))?;
            tracing::info!("the first segment is named for index 0 when no entry is known yet");
            assert_eq!(name_of(&segment_files(dir.path())[0]), (0, 0));
            append(&mut wal, 1, 7..9)?;
            wal.save_state(b"vote 1, committed 8".to_vec())?;
        }
        let wal = Wal::open(dir.path(), opts(1 << 20, false))?;
        assert_eq!(wal.state(), Some(b"vote 1, committed 8".to_vec()));
        assert_eq!(read_all(&wal)?, expected(&[(1, 7..9)]));
        Ok(())
    }

    #[test]
    fn rollover_names_segments_by_seq_and_first_index() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        let seg = 8192;
        {
            let mut wal = Wal::open(dir.path(), opts(seg, false))?;
            wait(|done| wal.save_state_synced(b"vote".to_vec(), done))?;
            for start in (0..300).step_by(3) {
                append(&mut wal, 1 + start / 100, start..start + 3)?;
            }
            assert_eq!(read_all(&wal)?.len(), 300);
        }
        let files = segment_files(dir.path());
        assert!(
            files.len() > 3,
            "expected rollover, got {} files",
            files.len()
        );
        for (i, f) in files.iter().enumerate() {
            let (seq, first) = name_of(f);
            assert_eq!(seq, i as u64);
            let entries = entry_offsets(f);
            if let Some((index, _)) = entries.first() {
                assert_eq!(*index, first, "{} starts with entry {index}", f.display());
            }
            if i + 1 < files.len() {
                let len = fs::metadata(f).map_err(io_err("stat", f))?.len();
                assert!(len <= seg, "{} has {len} bytes", f.display());
            }
        }
        let wal = Wal::open(dir.path(), opts(seg, false))?;
        let want: Vec<_> = (0..300)
            .map(|i| (i, data(i, 1 + (i - i % 3) / 100)))
            .collect();
        assert_eq!(read_all(&wal)?, want);
        assert_eq!(wal.state(), Some(b"vote".to_vec()));
        Ok(())
    }

    #[test]
    fn preallocated_segments_roll_and_recover() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        let seg = 8 << 10;
        {
            let mut wal = Wal::open(dir.path(), opts(seg, true))?;
            for i in 0..400 {
                append(&mut wal, 1, i..i + 1)?;
            }
        }
        let files = segment_files(dir.path());
        assert!(
            files.len() > 3,
            "expected rollover, got {} files",
            files.len()
        );
        tracing::info!("expect no spare files left after close");
        let tmp = fs::read_dir(dir.path())
            .map_err(io_err("list", dir.path()))?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(tmp, 0);
        tracing::info!("a zero-filled remainder after the last record is the end of the log");
        let last = files.last().expect("segments").clone();
        let len = fs::metadata(&last).map_err(io_err("stat", &last))?.len();
        OpenOptions::new()
            .write(true)
            .open(&last)
            .and_then(|f| f.set_len(len + 3 * seg))
            .map_err(io_err("extend", &last))?;
        {
            let mut wal = Wal::open(dir.path(), opts(seg, true))?;
            assert_eq!(read_all(&wal)?, expected(&[(1, 0..400)]));
            append(&mut wal, 1, 400..410)?;
        }
        let wal = Wal::open(dir.path(), opts(seg, true))?;
        assert_eq!(read_all(&wal)?, expected(&[(1, 0..410)]));
        Ok(())
    }

    #[test]
    fn torn_tail_chopped_is_cut_and_the_rest_kept() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        {
            let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
            for i in 1..=10 {
                append(&mut wal, 1, i..i + 1)?;
            }
        }
        let seg = segment_files(dir.path())[0].clone();
        let offsets = entry_offsets(&seg);
        let tenth = offsets[9].1;
        edit(&seg, |b| b.truncate(b.len() - 7));
        {
            let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
            tracing::info!("expect entry 10 cut away at offset {tenth}, 1..=9 intact");
            assert_eq!(read_all(&wal)?, expected(&[(1, 1..10)]));
            assert_eq!(
                fs::metadata(&seg).map_err(io_err("stat", &seg))?.len(),
                tenth
            );
            append(&mut wal, 2, 10..11)?;
        }
        let wal = Wal::open(dir.path(), opts(1 << 20, false))?;
        assert_eq!(read_all(&wal)?, expected(&[(1, 1..10), (2, 10..11)]));
        Ok(())
    }

    #[test]
    fn garbage_after_the_last_record_is_cut() -> Result<(), WalError> {
        for garbage in [
            b"\xde\xad\xbe\xef not a record at all".to_vec(),
            // A frame that fits the file exactly but whose checksum is wrong.
            [
                5u32.to_le_bytes().as_slice(),
                &[1, 2, 3, 4, KIND_ENTRY],
                b"hello",
            ]
            .concat(),
            b"short".to_vec(),
        ] {
            let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
            {
                let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
                append(&mut wal, 1, 1..6)?;
            }
            let seg = segment_files(dir.path())[0].clone();
            let good_len = fs::metadata(&seg).map_err(io_err("stat", &seg))?.len();
            edit(&seg, |b| b.extend_from_slice(&garbage));
            let wal = Wal::open(dir.path(), opts(1 << 20, false))?;
            assert_eq!(read_all(&wal)?, expected(&[(1, 1..6)]));
            assert_eq!(
                fs::metadata(&seg).map_err(io_err("stat", &seg))?.len(),
                good_len
            );
        }
        Ok(())
    }

    #[test]
    fn lost_sectors_in_the_last_write_are_a_torn_tail() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        {
            let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
            append(&mut wal, 1, 1..2)?;
            append_sized(&mut wal, 1, 2..5, Some(3000))?;
        }
        let seg = segment_files(dir.path())[0].clone();
        let offsets = entry_offsets(&seg);
        let second = offsets[1].1;
        tracing::info!(
            "zero one sector inside entry 2; entries 3 and 4 of the same write follow intact"
        );
        let sector = (second + FRAME_LEN as u64 + 600).div_ceil(SECTOR) * SECTOR;
        edit(&seg, |b| {
            b[sector as usize..(sector + SECTOR) as usize].fill(0)
        });
        let wal = Wal::open(dir.path(), opts(1 << 20, false))?;
        assert_eq!(read_all(&wal)?, expected(&[(1, 1..2)]));
        assert_eq!(wal.reader().last_index(), Some(1));
        Ok(())
    }

    #[test]
    fn corruption_before_the_tail_refuses_to_open() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        {
            let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
            for i in 1..=10 {
                append(&mut wal, 1, i..i + 1)?;
            }
        }
        let seg = segment_files(dir.path())[0].clone();
        let third = entry_offsets(&seg)[2].1;
        edit(&seg, |b| {
            b[third as usize + FRAME_LEN + ENTRY_HEAD_LEN + 3] ^= 0x01
        });
        let before = fs::read(&seg).map_err(io_err("read", &seg))?;
        match Wal::open(dir.path(), opts(1 << 20, false)) {
            Err(e @ WalError::Corrupt { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&seg.display().to_string()), "{msg}");
                assert!(msg.contains(&format!("offset {third}")), "{msg}");
            }
            Err(e) => panic!("expected a corrupt-record error, got {e}"),
            Ok(_) => panic!("opened a WAL with a corrupt record"),
        }
        assert_eq!(
            fs::read(&seg).map_err(io_err("read", &seg))?,
            before,
            "refusing must not modify the file"
        );
        Ok(())
    }

    #[test]
    fn corruption_in_an_earlier_segment_refuses_to_open() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        {
            let mut wal = Wal::open(dir.path(), opts(MIN_SEGMENT_BYTES, false))?;
            for i in 1..=100 {
                append(&mut wal, 1, i..i + 1)?;
            }
        }
        let files = segment_files(dir.path());
        assert!(files.len() > 2);
        tracing::info!(
            "damage the last record of the first segment: a torn tail there is still corruption"
        );
        let last = entry_offsets(&files[0])
            .last()
            .map(|e| e.1)
            .unwrap_or_default();
        edit(&files[0], |b| {
            let n = b.len();
            b[n - 1] ^= 0x80;
        });
        match Wal::open(dir.path(), opts(MIN_SEGMENT_BYTES, false)) {
            Err(WalError::Corrupt { path, offset, .. }) => {
                assert_eq!(path, files[0]);
                assert_eq!(offset, last);
            }
            Err(e) => panic!("expected a corrupt-record error, got {e}"),
            Ok(_) => panic!("opened a WAL with a corrupt record"),
        }
        Ok(())
    }

    #[test]
    fn index_discontinuity_refuses_to_open() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        {
            let mut wal = Wal::open(dir.path(), opts(MIN_SEGMENT_BYTES, false))?;
            for i in 1..=100 {
                append(&mut wal, 1, i..i + 1)?;
            }
        }
        let files = segment_files(dir.path());
        tracing::info!("a missing segment in the middle is refused");
        let moved = dir.path().join("aside");
        fs::rename(&files[1], &moved).map_err(io_err("rename", &files[1]))?;
        assert!(matches!(
            Wal::open(dir.path(), opts(MIN_SEGMENT_BYTES, false)),
            Err(WalError::MissingSegment { .. }) | Err(WalError::UnknownFile { .. })
        ));
        fs::remove_file(&moved).map_err(io_err("remove", &moved))?;
        match Wal::open(dir.path(), opts(MIN_SEGMENT_BYTES, false)) {
            Err(WalError::MissingSegment { before, after }) => {
                assert_eq!((before, after), (files[0].clone(), files[2].clone()));
            }
            Err(e) => panic!("expected a missing-segment error, got {e}"),
            Ok(_) => panic!("opened a WAL with a missing segment"),
        }
        tracing::info!("a segment whose name disagrees with its header is refused");
        let (seq, first) = name_of(&files[2]);
        let renamed = dir.path().join(segment_name(seq - 1, first));
        fs::rename(&files[2], &renamed).map_err(io_err("rename", &files[2]))?;
        assert!(matches!(
            Wal::open(dir.path(), opts(MIN_SEGMENT_BYTES, false)),
            Err(WalError::Inconsistent { .. })
        ));
        Ok(())
    }

    #[test]
    fn index_gap_inside_a_segment_refuses_to_open() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        {
            let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
            append(&mut wal, 1, 1..6)?;
        }
        let seg = segment_files(dir.path())[0].clone();
        tracing::info!("rewrite entry 3 as a valid record claiming index 4");
        let third = entry_offsets(&seg)[2].1 as usize;
        edit(&seg, |b| {
            let (len, _, _) = parse_frame_head(&b[third..third + FRAME_LEN]);
            let end = third + FRAME_LEN + len as usize;
            b[third + FRAME_LEN..third + FRAME_LEN + 8].copy_from_slice(&4u64.to_le_bytes());
            let crc = crc32(KIND_ENTRY, &b[third + FRAME_LEN..end]);
            b[third + 4..third + 8].copy_from_slice(&crc.to_le_bytes());
        });
        match Wal::open(dir.path(), opts(1 << 20, false)) {
            Err(WalError::Inconsistent {
                path,
                offset,
                reason,
            }) => {
                assert_eq!((path, offset), (seg, third as u64));
                assert!(reason.contains("index 4 where 3 is next"), "{reason}");
            }
            Err(e) => panic!("expected an inconsistency error, got {e}"),
            Ok(_) => panic!("opened a WAL with an index gap"),
        }
        Ok(())
    }

    #[test]
    fn foreign_directory_refuses_to_open() -> Result<(), WalError> {
        let tmp = io_err("tempdir", Path::new("/tmp"));
        let dir = tempfile::tempdir().map_err(tmp)?;
        let notes = dir.path().join("notes.txt");
        fs::write(&notes, b"not ours").map_err(io_err("write", &notes))?;
        match Wal::open(dir.path(), opts(1 << 20, false)) {
            Err(WalError::UnknownFile { path }) => assert_eq!(path, notes),
            Err(e) => panic!("expected an unknown-file error, got {e}"),
            Ok(_) => panic!("opened a foreign directory"),
        }
        assert_eq!(
            fs::read_dir(dir.path())
                .map_err(io_err("list", dir.path()))?
                .count(),
            1
        );

        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        let sub = dir.path().join(segment_name(0, 0));
        fs::create_dir(&sub).map_err(io_err("mkdir", &sub))?;
        assert!(matches!(
            Wal::open(dir.path(), opts(1 << 20, false)),
            Err(WalError::UnknownFile { .. })
        ));

        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        let fake = dir.path().join(segment_name(0, 0));
        fs::write(&fake, b"PK\x03\x04 a zip file, not a segment")
            .map_err(io_err("write", &fake))?;
        assert!(matches!(
            Wal::open(dir.path(), opts(1 << 20, false)),
            Err(WalError::BadMagic { .. })
        ));

        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        {
            let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
            append(&mut wal, 1, 1..3)?;
        }
        let seg = segment_files(dir.path())[0].clone();
        edit(&seg, |b| b[8..12].copy_from_slice(&2u32.to_le_bytes()));
        assert!(matches!(
            Wal::open(dir.path(), opts(1 << 20, false)),
            Err(WalError::UnsupportedVersion { found: 2, .. })
        ));
        Ok(())
    }

    #[test]
    fn leftover_temporary_files_are_removed() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        {
            let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
            append(&mut wal, 1, 1..3)?;
        }
        let spare = dir.path().join("prealloc-7.tmp");
        let creating = dir.path().join(format!("{}.tmp", segment_name(1, 3)));
        for p in [&spare, &creating] {
            fs::write(p, [0u8; 100]).map_err(io_err("write", p))?;
        }
        let wal = Wal::open(dir.path(), opts(1 << 20, false))?;
        assert!(!spare.exists() && !creating.exists());
        assert_eq!(read_all(&wal)?, expected(&[(1, 1..3)]));
        Ok(())
    }

    #[test]
    fn a_failed_write_acknowledges_nothing_and_reopen_recovers() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        {
            let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
            append(&mut wal, 1, 1..6)?;
            wal.truncate(5)?;
            wal.shared.fail_next_write.store(true, Ordering::SeqCst);
            tracing::info!(
                "expect the batch to fail with ENOSPC and every later write to be refused"
            );
            match append(&mut wal, 2, 5..9) {
                Err(WalError::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(28)),
                other => panic!("expected ENOSPC, got {other:?}"),
            }
            assert!(matches!(
                append(&mut wal, 1, 9..10),
                Err(WalError::Failed(_))
            ));
            assert!(matches!(
                wal.save_state(b"vote".to_vec()),
                Err(WalError::Failed(_))
            ));
            assert!(matches!(
                wait(|done| wal.flush(done)),
                Err(WalError::Failed(_))
            ));
        }
        // The failed write held the truncate record and entries 5..=8 (421 bytes); its
        // first 210 bytes reached the file: the truncate record, all of entry 5 and
        // part of entry 6. Whole records survive (never acknowledged, which Raft
        // allows); the partial one is a torn tail.
        tracing::info!(
            "expect entries 1..=4 of term 1 and 5 of term 2, the rest cut as a torn tail"
        );
        let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
        assert_eq!(read_all(&wal)?, expected(&[(1, 1..5), (2, 5..6)]));
        append(&mut wal, 3, 6..8)?;
        drop(wal);
        let wal = Wal::open(dir.path(), opts(1 << 20, false))?;
        assert_eq!(
            read_all(&wal)?,
            expected(&[(1, 1..5), (2, 5..6), (3, 6..8)])
        );
        Ok(())
    }

    #[test]
    fn cache_keeps_recent_entries_within_limits() -> Result<(), WalError> {
        let dir = tempfile::tempdir().map_err(io_err("tempdir", Path::new("/tmp")))?;
        let mut wal = Wal::open(dir.path(), opts(1 << 20, false))?;
        for i in 0..20 {
            append(&mut wal, 1, i..i + 1)?;
        }
        let log = wal.shared.lock();
        assert!(
            log.cache.len() <= 5,
            "cache holds {} entries",
            log.cache.len()
        );
        assert_eq!(
            log.cache_bytes,
            log.cache.iter().map(|c| c.data.len()).sum::<usize>()
        );
        Ok(())
    }
}
