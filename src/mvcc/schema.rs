//! The MVCC store's on-disk schema, all of it: sled tree names, key prefixes, record
//! encodings, the format version and its marker, and the dump (export) format.
//!
//! Invariant: every byte the store writes is produced by an encoder here and every byte
//! it reads is checked by the matching decoder; anything that does not parse is
//! `MvccError::Corrupt`, never a default. Changing an encoding means a new
//! `FORMAT_VERSION` and a migration.
//!
//! Layout. Next to sled's files, `MARKER_FILE` says the directory is ours (written
//! before sled starts, so a foreign directory is refused untouched). The sled default
//! tree holds only `MARKER_KEY` (magic + format version) and
//! `ACTIVE_TREE_KEY` (the name of the data tree in use). The data tree holds, under
//! one-byte prefixes so one sled batch covers every kind:
//!
//! | key                                    | value                                 |
//! |----------------------------------------|---------------------------------------|
//! | `0x01 "format"`                        | magic + format version                |
//! | `0x03 lease id (i64, sign-flipped BE)` | lease TTL, i64 BE                     |
//! | `0x04 member:u64 BE alarm:u8`          | empty (an active alarm)               |
//! | `0x05 first:u64 BE`                    | a batch blob                          |
//!
//! A batch blob holds the revision records one `apply` call wrote, so a call costs sled
//! one insert however many keys it writes. A call writing more than `BATCH_CHUNK_BYTES`
//! of records cuts them, between main revisions, into several blobs of about that size,
//! all in one sled batch: sled keeps up to 17 values in a leaf, rewrites whole leaves,
//! and writes one larger than 128 KiB to a file of its own. A blob's key is the main
//! revision of its first record; blobs therefore cover disjoint, increasing revision
//! ranges, and the blob holding revision `r` is the last one keyed at or below `r`.
//! Batch keys sort after every other kind so that apply appends to the rightmost sled
//! leaf alone.
//!
//! The last blob also carries the store's state after its call: current revision,
//! compacted revision and the caller's `meta`. Every apply that changes anything writes
//! its blobs in the same sled batch, so the state is always that of the last call. A
//! call that leaves no record (a compaction, a lease grant, a meta update, or a call
//! whose compaction removed what it wrote) writes a blob with no records keyed at its
//! current revision plus one, where the next call's first blob goes and replaces it (the
//! next call deletes it when it keys nothing there). Only the last blob may hold no
//! record; the state in the others is stale and ignored (and their meta left out).
//! Compaction rewrites the blobs it removes records from, and deletes those left empty.
//!
//! Batch blob: `record... | index | meta | current:i64 | compact:i64 | meta_len:u32 |
//! count:u32` (BE), the index being `count` entries `main:u64 sub:u32 end:u32`, sorted
//! by revision, `end` the offset just past the entry's record (records are contiguous
//! from offset 0), `meta_len` `u32::MAX` when there is no meta.
//!
//! Revision record: `kind:u8 key_len:u32 BE key`, then for a put
//! `create_revision:i64 version:i64 lease:i64 value...` (BE, value to the end).
//!
//! Hashes name a record by its 17-byte revision name `0x02 main:u64 BE sub:u64 BE`, so
//! they do not depend on how records are grouped into blobs (members group differently).

use super::error::MvccError;
use super::index::Rev;
use super::types::{AlarmMember, AlarmType, LeaseId, Revision};

/// Raised whenever an encoding below changes.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Eight bytes that open the marker and the dump header.
pub(crate) const MAGIC: &[u8; 8] = b"KRMVCC\x00\x01";

/// A file next to sled's, written before sled creates anything: a directory that is
/// not empty and lacks it is not ours and is never touched.
pub(crate) const MARKER_FILE: &str = "KUBERAFT_MVCC";

/// The state a marker file records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MarkerState {
    /// sled is being set up; an empty sled database may be initialised (again).
    Initializing,
    /// The store is complete; sled must hold the marker key.
    Ready,
}

pub(crate) fn marker_file_contents(state: MarkerState) -> String {
    let state = match state {
        MarkerState::Initializing => "initializing",
        MarkerState::Ready => "ready",
    };
    format!("kuberaft mvcc store\nformat {FORMAT_VERSION}\nstate {state}\n")
}

pub(crate) fn parse_marker_file(contents: &[u8], what: &str) -> Result<MarkerState, MvccError> {
    let bad = || MvccError::Corrupt(format!("{what}: not a kuberaft MVCC marker file"));
    let text = std::str::from_utf8(contents).map_err(|_| bad())?;
    let mut lines = text.lines();
    if lines.next() != Some("kuberaft mvcc store") {
        return Err(bad());
    }
    let version: u32 = lines
        .next()
        .and_then(|l| l.strip_prefix("format "))
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    if version != FORMAT_VERSION {
        return Err(MvccError::Corrupt(format!(
            "{what}: on-disk format version {version}, this build reads version {FORMAT_VERSION}"
        )));
    }
    match lines.next() {
        Some("state initializing") => Ok(MarkerState::Initializing),
        Some("state ready") => Ok(MarkerState::Ready),
        _ => Err(bad()),
    }
}

/// In the sled default tree: present once the directory was initialised by us.
pub(crate) const MARKER_KEY: &[u8] = b"kuberaft/mvcc/format";
/// In the sled default tree: the name of the data tree in use.
pub(crate) const ACTIVE_TREE_KEY: &[u8] = b"kuberaft/mvcc/active";
/// The two data tree names; import fills the unused one, then flips `ACTIVE_TREE_KEY`.
pub(crate) const DATA_TREES: [&[u8]; 2] = [b"kuberaft/mvcc/data-a", b"kuberaft/mvcc/data-b"];

pub(crate) const PREFIX_SINGLETON: u8 = 0x01;
pub(crate) const PREFIX_LEASE: u8 = 0x03;
pub(crate) const PREFIX_ALARM: u8 = 0x04;
pub(crate) const PREFIX_BATCH: u8 = 0x05;

pub(crate) const KEY_FORMAT: &[u8] = b"\x01format";

const KIND_PUT: u8 = 0;
const KIND_TOMBSTONE: u8 = 1;

/// Length of a revision's name in hashes.
pub(crate) const REV_NAME_LEN: usize = 17;
/// Length of a batch blob key.
pub(crate) const BATCH_KEY_LEN: usize = 9;
/// Length of one index entry of a batch blob.
const BATCH_ENTRY_LEN: usize = 16;
/// Length of the fixed trailer of a batch blob.
const BATCH_TRAILER_LEN: usize = 24;
/// `meta_len` of a blob without meta.
const NO_META: u32 = u32::MAX;
/// About the most record bytes one blob holds, unless one revision alone is larger.
/// Measured (`store_tests::write_cost_*`): 6 KiB cost more sled inserts and splits per
/// put for 1 KiB values than 16 KiB, which keeps a batch of 14 such puts in one blob.
pub(crate) const BATCH_CHUNK_BYTES: usize = 16 << 10;

/// The marker value: magic followed by the format version.
pub(crate) fn format_value() -> [u8; 12] {
    let mut v = [0u8; 12];
    v[..8].copy_from_slice(MAGIC);
    v[8..].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    v
}

/// Checks a marker (or in-tree format record) value.
pub(crate) fn check_format(value: &[u8], what: &str) -> Result<(), MvccError> {
    if value.len() != 12 || &value[..8] != MAGIC {
        return Err(MvccError::Corrupt(format!(
            "{what}: not a kuberaft MVCC format marker"
        )));
    }
    let version = u32::from_be_bytes([value[8], value[9], value[10], value[11]]);
    if version != FORMAT_VERSION {
        return Err(MvccError::Corrupt(format!(
            "{what}: on-disk format version {version}, this build reads version {FORMAT_VERSION}"
        )));
    }
    Ok(())
}

pub(crate) fn encode_i64(v: i64) -> [u8; 8] {
    v.to_be_bytes()
}

pub(crate) fn decode_i64(value: &[u8], what: &str) -> Result<i64, MvccError> {
    let arr: [u8; 8] = value.try_into().map_err(|_| {
        MvccError::Corrupt(format!("{what}: expected 8 bytes, got {}", value.len()))
    })?;
    Ok(i64::from_be_bytes(arr))
}

/// The name of revision `rev` in hashes (the revision record key of format 1).
pub(crate) fn rev_name(rev: Rev) -> [u8; REV_NAME_LEN] {
    let mut k = [0u8; REV_NAME_LEN];
    k[0] = 0x02;
    k[1..9].copy_from_slice(&(rev.main as u64).to_be_bytes());
    k[9..].copy_from_slice(&u64::from(rev.sub).to_be_bytes());
    k
}

/// The key of the batch blob whose first revision is `main` (clamped to 0).
pub(crate) fn batch_key(main: Revision) -> [u8; BATCH_KEY_LEN] {
    let mut k = [0u8; BATCH_KEY_LEN];
    k[0] = PREFIX_BATCH;
    k[1..].copy_from_slice(&(main.max(0) as u64).to_be_bytes());
    k
}

pub(crate) fn decode_batch_key(key: &[u8]) -> Result<Revision, MvccError> {
    if key.len() != BATCH_KEY_LEN || key[0] != PREFIX_BATCH {
        return Err(MvccError::Corrupt(format!(
            "batch key of {} bytes is malformed",
            key.len()
        )));
    }
    let main = u64::from_be_bytes(key[1..].try_into().unwrap_or_default());
    match i64::try_from(main) {
        Ok(main) if main > 0 => Ok(main),
        _ => Err(MvccError::Corrupt(format!("batch key at revision {main}"))),
    }
}

/// A decoded revision record, borrowing from the stored bytes. `value_offset` locates
/// the value inside the record so callers can share the buffer instead of copying.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    Put {
        key: &'a [u8],
        create_revision: Revision,
        version: i64,
        lease: LeaseId,
        value_offset: usize,
    },
    Tombstone {
        key: &'a [u8],
    },
}

impl<'a> Record<'a> {
    pub(crate) fn key(&self) -> &'a [u8] {
        match self {
            Record::Put { key, .. } | Record::Tombstone { key } => key,
        }
    }
}

fn key_len_u32(key: &[u8]) -> [u8; 4] {
    // Keys are bounded far below 4 GiB by the request size limit; saturate rather than wrap.
    u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes()
}

/// Appends a put record to `out`.
pub(crate) fn encode_put_into(
    out: &mut Vec<u8>,
    key: &[u8],
    create_revision: Revision,
    version: i64,
    lease: LeaseId,
    value: &[u8],
) {
    out.reserve(1 + 4 + key.len() + 24 + value.len());
    out.push(KIND_PUT);
    out.extend_from_slice(&key_len_u32(key));
    out.extend_from_slice(key);
    out.extend_from_slice(&create_revision.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&lease.to_be_bytes());
    out.extend_from_slice(value);
}

/// Appends a tombstone record to `out`.
pub(crate) fn encode_tombstone_into(out: &mut Vec<u8>, key: &[u8]) {
    out.reserve(1 + 4 + key.len());
    out.push(KIND_TOMBSTONE);
    out.extend_from_slice(&key_len_u32(key));
    out.extend_from_slice(key);
}

/// Encodes a put record.
#[cfg(test)]
pub(crate) fn encode_put(
    key: &[u8],
    create_revision: Revision,
    version: i64,
    lease: LeaseId,
    value: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    encode_put_into(&mut out, key, create_revision, version, lease, value);
    out
}

/// Encodes a tombstone record.
#[cfg(test)]
pub(crate) fn encode_tombstone(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_tombstone_into(&mut out, key);
    out
}

pub(crate) fn decode_record(bytes: &[u8]) -> Result<Record<'_>, MvccError> {
    let bad = |why: &str| MvccError::Corrupt(format!("revision record: {why}"));
    let (&kind, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
    if rest.len() < 4 {
        return Err(bad("truncated key length"));
    }
    let key_len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let rest = &rest[4..];
    if rest.len() < key_len {
        return Err(bad("truncated key"));
    }
    let (key, rest) = rest.split_at(key_len);
    match kind {
        KIND_TOMBSTONE if rest.is_empty() => Ok(Record::Tombstone { key }),
        KIND_TOMBSTONE => Err(bad("trailing bytes after tombstone")),
        KIND_PUT => {
            if rest.len() < 24 {
                return Err(bad("truncated put header"));
            }
            let num = |i: usize| i64::from_be_bytes(rest[i..i + 8].try_into().unwrap_or_default());
            Ok(Record::Put {
                key,
                create_revision: num(0),
                version: num(8),
                lease: num(16),
                value_offset: 1 + 4 + key_len + 24,
            })
        }
        other => Err(bad(&format!("unknown kind {other}"))),
    }
}

/// The store's state as the last batch blob records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchState<'a> {
    pub current: Revision,
    pub compact: Revision,
    pub meta: Option<&'a [u8]>,
}

/// The records of one batch blob being built, in revision order.
#[derive(Clone, Debug, Default)]
pub(crate) struct BatchBuilder {
    records: Vec<u8>,
    /// Each record's revision and the offset just past it in `records`.
    entries: Vec<(Rev, u32)>,
}

fn too_large() -> MvccError {
    MvccError::Storage("one apply call writes more than 4 GiB of records".into())
}

impl BatchBuilder {
    /// Records so far.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of records so far.
    #[cfg(test)]
    pub(crate) fn records_len(&self) -> usize {
        self.records.len()
    }

    /// Appends a record with `encode`; `rev` must be above every revision added so far.
    fn push_with(&mut self, rev: Rev, encode: impl FnOnce(&mut Vec<u8>)) -> Result<(), MvccError> {
        debug_assert!(self.entries.last().is_none_or(|(r, _)| *r < rev));
        let start = self.records.len();
        encode(&mut self.records);
        match u32::try_from(self.records.len()) {
            Ok(end) => {
                self.entries.push((rev, end));
                Ok(())
            }
            Err(_) => {
                self.records.truncate(start);
                Err(too_large())
            }
        }
    }

    pub(crate) fn push_put(
        &mut self,
        rev: Rev,
        key: &[u8],
        create_revision: Revision,
        version: i64,
        lease: LeaseId,
        value: &[u8],
    ) -> Result<(), MvccError> {
        self.push_with(rev, |out| {
            encode_put_into(out, key, create_revision, version, lease, value)
        })
    }

    pub(crate) fn push_tombstone(&mut self, rev: Rev, key: &[u8]) -> Result<(), MvccError> {
        self.push_with(rev, |out| encode_tombstone_into(out, key))
    }

    /// Appends an already encoded record.
    pub(crate) fn push_raw(&mut self, rev: Rev, record: &[u8]) -> Result<(), MvccError> {
        self.push_with(rev, |out| out.extend_from_slice(record))
    }

    /// The record at `rev`, if added.
    pub(crate) fn record(&self, rev: Rev) -> Option<&[u8]> {
        let i = self.entries.binary_search_by_key(&rev, |(r, _)| *r).ok()?;
        let start = if i == 0 {
            0
        } else {
            self.entries[i - 1].1 as usize
        };
        self.records.get(start..self.entries[i].1 as usize)
    }

    /// Drops every record but the first `len`.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.entries.truncate(len);
        let end = self.entries.last().map_or(0, |(_, end)| *end as usize);
        self.records.truncate(end);
    }

    /// Drops the records whose revision `remove` says.
    pub(crate) fn remove(&mut self, mut remove: impl FnMut(Rev) -> bool) -> Result<(), MvccError> {
        let old = std::mem::take(self);
        let mut start = 0usize;
        for (rev, end) in old.entries {
            let end = end as usize;
            if !remove(rev) {
                self.push_raw(rev, &old.records[start..end])?;
            }
            start = end;
        }
        Ok(())
    }

    /// Cuts the records into consecutive builders of about `target` bytes each (more
    /// when one revision alone is larger), never splitting a main revision, each with
    /// the main revision of its first record. No records give no builder.
    pub(crate) fn split(self, target: usize) -> Result<Vec<(Revision, BatchBuilder)>, MvccError> {
        if self.records.len() <= target {
            return Ok(match self.entries.first() {
                Some((rev, _)) => vec![(rev.main, self)],
                None => Vec::new(),
            });
        }
        let mut out: Vec<(Revision, BatchBuilder)> = Vec::new();
        let mut start = 0usize;
        for (rev, end) in &self.entries {
            let end = *end as usize;
            let cut = match out.last() {
                None => true,
                Some((_, chunk)) => {
                    chunk.records.len() >= target
                        && chunk
                            .entries
                            .last()
                            .is_some_and(|(r, _)| r.main != rev.main)
                }
            };
            if cut {
                let mut chunk = BatchBuilder::default();
                chunk.records.reserve(target + target / 4);
                out.push((rev.main, chunk));
            }
            if let Some((_, chunk)) = out.last_mut() {
                chunk.push_raw(*rev, &self.records[start..end])?;
            }
            start = end;
        }
        Ok(out)
    }

    /// The blob: records, index and `state`.
    pub(crate) fn finish(self, state: &BatchState<'_>) -> Result<Vec<u8>, MvccError> {
        let meta = state.meta.unwrap_or_default();
        let meta_len = match state.meta {
            None => NO_META,
            Some(m) => u32::try_from(m.len())
                .ok()
                .filter(|l| *l != NO_META)
                .ok_or_else(too_large)?,
        };
        let count = u32::try_from(self.entries.len()).map_err(|_| too_large())?;
        let mut out = self.records;
        out.reserve(self.entries.len() * BATCH_ENTRY_LEN + meta.len() + BATCH_TRAILER_LEN);
        for (rev, end) in &self.entries {
            out.extend_from_slice(&(rev.main as u64).to_be_bytes());
            out.extend_from_slice(&rev.sub.to_be_bytes());
            out.extend_from_slice(&end.to_be_bytes());
        }
        out.extend_from_slice(meta);
        out.extend_from_slice(&state.current.to_be_bytes());
        out.extend_from_slice(&state.compact.to_be_bytes());
        out.extend_from_slice(&meta_len.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        Ok(out)
    }
}

/// Where the parts of a batch blob are. `parse` checks the trailer and that the parts
/// fit; `check` checks every index entry. Accessors take the blob `parse` saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchLayout {
    count: usize,
    index_start: usize,
    meta_start: usize,
    meta_len: Option<usize>,
    current: Revision,
    compact: Revision,
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap_or_default())
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

impl BatchLayout {
    pub(crate) fn parse(blob: &[u8]) -> Result<Self, MvccError> {
        let bad = |why: &str| MvccError::Corrupt(format!("batch blob: {why}"));
        let trailer = blob
            .len()
            .checked_sub(BATCH_TRAILER_LEN)
            .ok_or_else(|| bad("shorter than its trailer"))?;
        let current = be_u64(blob, trailer) as i64;
        let compact = be_u64(blob, trailer + 8) as i64;
        let meta_len = match be_u32(blob, trailer + 16) {
            NO_META => None,
            len => Some(len as usize),
        };
        let count = be_u32(blob, trailer + 20) as usize;
        let meta_start = trailer
            .checked_sub(meta_len.unwrap_or(0))
            .ok_or_else(|| bad("meta longer than the blob"))?;
        let index_start = count
            .checked_mul(BATCH_ENTRY_LEN)
            .and_then(|len| meta_start.checked_sub(len))
            .ok_or_else(|| bad("index longer than the blob"))?;
        let layout = BatchLayout {
            count,
            index_start,
            meta_start,
            meta_len,
            current,
            compact,
        };
        let records_end = match count {
            0 => 0,
            n => layout.end(blob, n - 1),
        };
        if records_end != index_start {
            return Err(bad("records do not end where the index starts"));
        }
        Ok(layout)
    }

    /// Checks every index entry: revisions valid, strictly increasing and not below
    /// `first` (the blob's key); records contiguous and not empty.
    pub(crate) fn check(&self, blob: &[u8], first: Revision) -> Result<(), MvccError> {
        let mut prev: Option<Rev> = None;
        let mut start = 0usize;
        for i in 0..self.count {
            let at = self.index_start + i * BATCH_ENTRY_LEN;
            let main = be_u64(blob, at);
            let rev = match i64::try_from(main) {
                Ok(main) if main >= first => Rev::new(main, be_u32(blob, at + 8)),
                _ => {
                    return Err(MvccError::Corrupt(format!(
                        "batch blob at {first} holds revision {main}"
                    )));
                }
            };
            if prev.is_some_and(|p| p >= rev) {
                return Err(MvccError::Corrupt(format!(
                    "batch blob at {first}: revisions out of order at {}/{}",
                    rev.main, rev.sub
                )));
            }
            let end = self.end(blob, i);
            if end <= start {
                return Err(MvccError::Corrupt(format!(
                    "batch blob at {first}: record {}/{} is empty or out of place",
                    rev.main, rev.sub
                )));
            }
            prev = Some(rev);
            start = end;
        }
        Ok(())
    }

    /// Records in the blob.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The state after the blob's call.
    pub(crate) fn state<'a>(&self, blob: &'a [u8]) -> BatchState<'a> {
        BatchState {
            current: self.current,
            compact: self.compact,
            meta: self
                .meta_len
                .map(|len| &blob[self.meta_start..self.meta_start + len]),
        }
    }

    /// The revision of record `i` (`i < len()`).
    pub(crate) fn rev(&self, blob: &[u8], i: usize) -> Rev {
        let at = self.index_start + i * BATCH_ENTRY_LEN;
        Rev::new(be_u64(blob, at) as i64, be_u32(blob, at + 8))
    }

    fn end(&self, blob: &[u8], i: usize) -> usize {
        be_u32(blob, self.index_start + i * BATCH_ENTRY_LEN + 12) as usize
    }

    /// Where record `i` is (`i < len()`), checked to lie within the records.
    pub(crate) fn span(&self, blob: &[u8], i: usize) -> Result<std::ops::Range<usize>, MvccError> {
        let start = if i == 0 { 0 } else { self.end(blob, i - 1) };
        let end = self.end(blob, i);
        if start >= end || end > self.index_start {
            return Err(MvccError::Corrupt(format!(
                "batch blob: record {i} spans {start}..{end} of {}",
                self.index_start
            )));
        }
        Ok(start..end)
    }

    /// The index of the record at `rev`, if the blob holds it.
    pub(crate) fn find(&self, blob: &[u8], rev: Rev) -> Option<usize> {
        let want = (rev.main as u64, rev.sub);
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = self.index_start + mid * BATCH_ENTRY_LEN;
            match (be_u64(blob, at), be_u32(blob, at + 8)).cmp(&want) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The index of the first record with main revision `>= main`.
    pub(crate) fn lower_bound(&self, blob: &[u8], main: Revision) -> usize {
        let want = main.max(0) as u64;
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if be_u64(blob, self.index_start + mid * BATCH_ENTRY_LEN) < want {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// Lease ids are signed; flipping the sign bit makes the big-endian bytes sort by id.
pub(crate) fn lease_key(id: LeaseId) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = PREFIX_LEASE;
    k[1..].copy_from_slice(&((id as u64) ^ (1 << 63)).to_be_bytes());
    k
}

pub(crate) fn decode_lease_key(key: &[u8]) -> Result<LeaseId, MvccError> {
    if key.len() != 9 || key[0] != PREFIX_LEASE {
        return Err(MvccError::Corrupt("lease record key is malformed".into()));
    }
    let raw = u64::from_be_bytes(key[1..].try_into().unwrap_or_default());
    Ok((raw ^ (1 << 63)) as i64)
}

fn alarm_code(a: AlarmType) -> u8 {
    // etcd's AlarmType numbers.
    match a {
        AlarmType::NoSpace => 1,
        AlarmType::Corrupt => 2,
    }
}

pub(crate) fn alarm_key(a: &AlarmMember) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = PREFIX_ALARM;
    k[1..9].copy_from_slice(&a.member_id.to_be_bytes());
    k[9] = alarm_code(a.alarm);
    k
}

pub(crate) fn decode_alarm_key(key: &[u8]) -> Result<AlarmMember, MvccError> {
    if key.len() != 10 || key[0] != PREFIX_ALARM {
        return Err(MvccError::Corrupt("alarm record key is malformed".into()));
    }
    let member_id = u64::from_be_bytes(key[1..9].try_into().unwrap_or_default());
    let alarm = match key[9] {
        1 => AlarmType::NoSpace,
        2 => AlarmType::Corrupt,
        other => {
            return Err(MvccError::Corrupt(format!("unknown alarm type {other}")));
        }
    };
    Ok(AlarmMember { member_id, alarm })
}

// ---- Dump format (export / import) ----
//
// header:  MAGIC (8) | FORMAT_VERSION u32 BE | DUMP_VERSION u32 BE
// entries: TAG_ENTRY u8 | key_len u32 BE | key | value_len u32 BE | value   (data tree, key order;
//          version 2: batch blobs as stored)
// trailer: TAG_END u8 | entry count u64 BE | crc32 (IEEE) of every byte before it, u32 BE

/// Version of the dump framing (the entries themselves follow `FORMAT_VERSION`).
pub(crate) const DUMP_VERSION: u32 = 2;
pub(crate) const DUMP_HEADER_LEN: usize = 16;
pub(crate) const DUMP_TAG_ENTRY: u8 = 1;
pub(crate) const DUMP_TAG_END: u8 = 0;

pub(crate) fn dump_header() -> [u8; DUMP_HEADER_LEN] {
    let mut h = [0u8; DUMP_HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    h[12..].copy_from_slice(&DUMP_VERSION.to_be_bytes());
    h
}

pub(crate) fn check_dump_header(h: &[u8; DUMP_HEADER_LEN]) -> Result<(), MvccError> {
    if &h[..8] != MAGIC {
        return Err(MvccError::Corrupt("dump: not a kuberaft MVCC dump".into()));
    }
    let format = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
    let dump = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    if format != FORMAT_VERSION || dump != DUMP_VERSION {
        return Err(MvccError::Corrupt(format!(
            "dump: format {format}/{dump}, this build reads {FORMAT_VERSION}/{DUMP_VERSION}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_keys_sort_by_revision() {
        let a = batch_key(2);
        let b = batch_key(3);
        let c = batch_key(256);
        assert!(a < b && b < c);
        assert!(lease_key(i64::MAX)[..] < a[..], "batches sort after leases");
        assert_eq!(decode_batch_key(&c).expect("valid"), 256);
        assert!(decode_batch_key(&c[..8]).is_err());
        assert!(decode_batch_key(&batch_key(0)).is_err());
        assert!(rev_name(Rev::new(2, 7)) < rev_name(Rev::new(3, 0)));
    }

    fn sample_batch() -> (BatchBuilder, Vec<Vec<u8>>) {
        let mut b = BatchBuilder::default();
        let recs = vec![
            encode_put(b"a", 5, 1, 0, b"one"),
            encode_tombstone(b"b"),
            encode_put(b"c", 2, 4, 9, &[7u8; 300]),
            encode_put(b"a", 5, 2, 0, b""),
        ];
        b.push_put(Rev::new(5, 0), b"a", 5, 1, 0, b"one")
            .expect("push");
        b.push_tombstone(Rev::new(5, 1), b"b").expect("push");
        b.push_put(Rev::new(6, 0), b"c", 2, 4, 9, &[7u8; 300])
            .expect("push");
        b.push_raw(Rev::new(8, 0), &recs[3]).expect("push");
        (b, recs)
    }

    #[test]
    fn batch_blobs_round_trip() {
        let (b, recs) = sample_batch();
        let revs = [
            Rev::new(5, 0),
            Rev::new(5, 1),
            Rev::new(6, 0),
            Rev::new(8, 0),
        ];
        assert_eq!(b.record(Rev::new(6, 0)), Some(&recs[2][..]));
        assert_eq!(b.record(Rev::new(7, 0)), None);
        let state = BatchState {
            current: 8,
            compact: 3,
            meta: Some(b"meta"),
        };
        let blob = b.finish(&state).expect("finish");
        let l = BatchLayout::parse(&blob).expect("parse");
        l.check(&blob, 5).expect("check");
        assert!(l.check(&blob, 6).is_err(), "a record below the blob's key");
        assert_eq!(l.len(), 4);
        assert_eq!(l.state(&blob), state);
        for (i, rev) in revs.iter().enumerate() {
            assert_eq!(l.rev(&blob, i), *rev);
            assert_eq!(l.find(&blob, *rev), Some(i));
            assert_eq!(&blob[l.span(&blob, i).expect("span")], &recs[i][..]);
            decode_record(&recs[i]).expect("decodes");
        }
        for missing in [
            Rev::new(4, 0),
            Rev::new(5, 2),
            Rev::new(7, 0),
            Rev::new(9, 0),
        ] {
            assert_eq!(l.find(&blob, missing), None, "{missing:?}");
        }
        assert_eq!(l.lower_bound(&blob, 1), 0);
        assert_eq!(l.lower_bound(&blob, 6), 2);
        assert_eq!(l.lower_bound(&blob, 7), 3);
        assert_eq!(l.lower_bound(&blob, 9), 4);

        // No records, no meta.
        let empty = BatchBuilder::default()
            .finish(&BatchState {
                current: 1,
                compact: 0,
                meta: None,
            })
            .expect("finish");
        let l = BatchLayout::parse(&empty).expect("parse");
        assert_eq!((l.len(), l.state(&empty).meta), (0, None));
        l.check(&empty, 2).expect("check");
    }

    #[test]
    fn batch_builder_truncates_and_removes() {
        let (mut b, recs) = sample_batch();
        b.remove(|r| r.sub == 1 || r.main == 8).expect("remove");
        assert_eq!(b.len(), 2);
        assert_eq!(b.record(Rev::new(5, 1)), None);
        assert_eq!(b.record(Rev::new(6, 0)), Some(&recs[2][..]));
        b.truncate(1);
        assert_eq!((b.len(), b.records_len()), (1, recs[0].len()));
        assert_eq!(b.record(Rev::new(5, 0)), Some(&recs[0][..]));
        assert_eq!(b.record(Rev::new(6, 0)), None);
        b.truncate(0);
        assert!(b.is_empty() && b.records_len() == 0);
    }

    #[test]
    fn batch_builder_splits_between_revisions() {
        let (b, recs) = sample_batch();
        let whole = b.clone().split(1 << 20).expect("split");
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].0, 5);
        assert!(BatchBuilder::default().split(10).expect("split").is_empty());
        // A tiny target: one chunk per main revision; 5/0 and 5/1 stay together.
        let chunks = b.clone().split(1).expect("split");
        let firsts: Vec<_> = chunks.iter().map(|(f, c)| (*f, c.len())).collect();
        assert_eq!(firsts, vec![(5, 2), (6, 1), (8, 1)]);
        assert_eq!(chunks[1].1.record(Rev::new(6, 0)), Some(&recs[2][..]));
        // A chunk grows past the target by whole revisions, then the next one starts.
        let chunks = b.split(recs[2].len() + 1).expect("split");
        let firsts: Vec<_> = chunks.iter().map(|(f, c)| (*f, c.len())).collect();
        assert_eq!(firsts, vec![(5, 3), (8, 1)]);
        assert_eq!(chunks[1].1.record(Rev::new(8, 0)), Some(&recs[3][..]));
    }

    #[test]
    fn damaged_batch_blobs_are_refused() {
        let (b, _) = sample_batch();
        let state = BatchState {
            current: 8,
            compact: 0,
            meta: Some(b"m"),
        };
        let blob = b.finish(&state).expect("finish");
        for cut in [0, 1, 23, blob.len() - 1] {
            assert!(BatchLayout::parse(&blob[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = vec![0u8];
        extra.extend_from_slice(&blob);
        assert!(BatchLayout::parse(&extra).is_err(), "leading garbage");
        // A count that does not fit.
        let mut bad = blob.clone();
        let n = bad.len();
        bad[n - 4..].copy_from_slice(&1000u32.to_be_bytes());
        assert!(BatchLayout::parse(&bad).is_err());
        // Revisions out of order.
        let mut bad = blob.clone();
        let l = BatchLayout::parse(&bad).expect("parse");
        let at = l.index_start + BATCH_ENTRY_LEN; // second entry: 5/1 -> 4/1
        bad[at..at + 8].copy_from_slice(&4u64.to_be_bytes());
        let l = BatchLayout::parse(&bad).expect("trailer still fits");
        assert!(l.check(&bad, 1).is_err());
        // A record end pointing outside the records.
        let mut bad = blob;
        let at = l.index_start + 12;
        bad[at..at + 4].copy_from_slice(&0u32.to_be_bytes());
        let l = BatchLayout::parse(&bad).expect("trailer still fits");
        assert!(l.check(&bad, 1).is_err());
        assert!(l.span(&bad, 0).is_err());
    }

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let put = encode_put(b"k", 3, 2, -5, b"value");
        match decode_record(&put).expect("valid put") {
            Record::Put {
                key,
                create_revision,
                version,
                lease,
                value_offset,
            } => {
                assert_eq!(
                    (key, create_revision, version, lease),
                    (&b"k"[..], 3, 2, -5)
                );
                assert_eq!(&put[value_offset..], b"value");
            }
            other => panic!("decoded {other:?}"),
        }
        let tomb = encode_tombstone(b"key");
        assert_eq!(
            decode_record(&tomb).expect("valid"),
            Record::Tombstone { key: b"key" }
        );
        assert!(decode_record(&[]).is_err());
        assert!(decode_record(&put[..10]).is_err());
        assert!(decode_record(&[9, 0, 0, 0, 0]).is_err());
        let mut long = tomb.clone();
        long.push(0);
        assert!(decode_record(&long).is_err());
    }

    #[test]
    fn lease_keys_sort_by_signed_id() {
        assert!(lease_key(-1) < lease_key(0) && lease_key(0) < lease_key(1));
        assert!(lease_key(1) < lease_key(i64::MAX));
        assert_eq!(decode_lease_key(&lease_key(-42)).expect("valid"), -42);
    }

    #[test]
    fn markers_check_version() {
        check_format(&format_value(), "marker").expect("own marker");
        let mut other = format_value();
        other[11] = other[11].wrapping_add(1);
        let err = check_format(&other, "marker").expect_err("other version");
        assert!(err.to_string().contains("format version"), "{err}");
        assert!(check_format(b"something else", "marker").is_err());
        check_dump_header(&dump_header()).expect("own header");
        for state in [MarkerState::Initializing, MarkerState::Ready] {
            let text = marker_file_contents(state);
            assert_eq!(parse_marker_file(text.as_bytes(), "f").expect("own"), state);
        }
        let other = marker_file_contents(MarkerState::Ready).replace(
            &format!("format {FORMAT_VERSION}"),
            &format!("format {}", FORMAT_VERSION + 1),
        );
        let err = parse_marker_file(other.as_bytes(), "f").expect_err("other version");
        assert!(err.to_string().contains("format version"), "{err}");
        assert!(parse_marker_file(b"hello", "f").is_err());
        let alarm = AlarmMember {
            member_id: 9,
            alarm: AlarmType::NoSpace,
        };
        assert_eq!(decode_alarm_key(&alarm_key(&alarm)).expect("valid"), alarm);
    }
}
