//! Batch blobs in memory: `BatchBlob`, a checked handle on one stored blob that hands
//! out records without copying, and `RecordCache`, the bounded cache of the newest
//! blobs apply wrote, so that loading a key's previous version (for `prev_kv` and
//! events) and reading recent history rarely reach sled.
//!
//! Invariants: the cache holds whole blobs in key order, at most `budget` bytes of them,
//! and they are the newest blobs that hold records: every record at or above the first
//! cached blob's key is in the cache. A record never changes once written, so a cached
//! blob answers correctly for every record it has; one a compaction has since removed
//! may still be answered, and readers retry reads that overlapped a compaction anyway.

use std::collections::VecDeque;

use sled::IVec;

use super::error::MvccError;
use super::index::Rev;
use super::schema::{BatchLayout, BatchState};
use super::types::Revision;

/// One batch blob as stored, with its layout parsed. Cheap to clone (shares the bytes).
#[derive(Clone, Debug)]
pub(crate) struct BatchBlob {
    first: Revision,
    raw: IVec,
    layout: BatchLayout,
}

impl BatchBlob {
    /// Parses the blob stored under the batch key of `first`; the index entries are
    /// checked by `check`, every access checks what it reads.
    pub(crate) fn parse(first: Revision, raw: IVec) -> Result<Self, MvccError> {
        let layout = BatchLayout::parse(&raw)
            .map_err(|e| MvccError::Corrupt(format!("batch blob at {first}: {e}")))?;
        Ok(BatchBlob { first, raw, layout })
    }

    /// Checks every index entry (done once, when the store opens).
    pub(crate) fn check(&self) -> Result<(), MvccError> {
        self.layout.check(&self.raw, self.first)
    }

    /// The first revision the blob's call could write (its key).
    pub(crate) fn first(&self) -> Revision {
        self.first
    }

    pub(crate) fn raw(&self) -> &IVec {
        &self.raw
    }

    /// Records in the blob.
    pub(crate) fn len(&self) -> usize {
        self.layout.len()
    }

    pub(crate) fn state(&self) -> BatchState<'_> {
        self.layout.state(&self.raw)
    }

    /// The revision of record `i` (`i < len()`).
    pub(crate) fn rev(&self, i: usize) -> Rev {
        self.layout.rev(&self.raw, i)
    }

    /// The bytes of record `i` (`i < len()`).
    pub(crate) fn record_bytes(&self, i: usize) -> Result<&[u8], MvccError> {
        Ok(&self.raw[self.layout.span(&self.raw, i)?])
    }

    /// Record `i` (`i < len()`), sharing the blob's buffer.
    pub(crate) fn record(&self, i: usize) -> Result<IVec, MvccError> {
        let span = self.layout.span(&self.raw, i)?;
        Ok(self.raw.subslice(span.start, span.len()))
    }

    /// The index of the record at `rev`, if the blob holds it.
    pub(crate) fn find(&self, rev: Rev) -> Option<usize> {
        self.layout.find(&self.raw, rev)
    }

    /// The index of the first record with main revision `>= main`.
    pub(crate) fn lower_bound(&self, main: Revision) -> usize {
        self.layout.lower_bound(&self.raw, main)
    }
}

/// The newest batch blobs, up to a byte budget; the oldest go first.
#[derive(Debug)]
pub(crate) struct RecordCache {
    budget: usize,
    bytes: usize,
    /// Ascending by `first`.
    blobs: VecDeque<BatchBlob>,
}

impl RecordCache {
    pub(crate) fn new(budget: usize) -> Self {
        RecordCache {
            budget,
            bytes: 0,
            blobs: VecDeque::new(),
        }
    }

    /// Bytes of blobs held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The position of the blob that would hold main revision `main`.
    fn position(&self, main: Revision) -> Option<usize> {
        self.blobs
            .partition_point(|b| b.first <= main)
            .checked_sub(1)
    }

    /// The record at `rev`, if a cached blob holds it.
    pub(crate) fn record(&self, rev: Rev) -> Option<IVec> {
        let blob = &self.blobs[self.position(rev.main)?];
        blob.record(blob.find(rev)?).ok()
    }

    /// Every cached blob that may hold records at or above `from`, in order, if the
    /// cache holds all of them (i.e. `from` is not below the oldest cached blob).
    pub(crate) fn blobs_from(&self, from: Revision) -> Option<Vec<BatchBlob>> {
        let front = self.blobs.front()?;
        if from < front.first {
            return None;
        }
        let start = self.position(from).unwrap_or(0);
        Some(self.blobs.range(start..).cloned().collect())
    }

    /// Adds the blob apply just wrote, which is newer than every cached one (a cached
    /// blob at the same or a later key is replaced), then evicts the oldest blobs until
    /// the budget holds. A blob without records is not kept.
    pub(crate) fn push(&mut self, blob: BatchBlob) {
        while self.blobs.back().is_some_and(|b| b.first >= blob.first) {
            if let Some(old) = self.blobs.pop_back() {
                self.bytes -= old.raw.len();
            }
        }
        if blob.len() == 0 {
            return;
        }
        self.bytes += blob.raw.len();
        self.blobs.push_back(blob);
        while self.bytes > self.budget {
            match self.blobs.pop_front() {
                Some(old) => self.bytes -= old.raw.len(),
                None => break,
            }
        }
    }

    /// Replaces the cached blob at `first` with its rewritten version (compaction), or
    /// drops it (`None`: compaction deleted it). Blobs not cached stay uncached.
    pub(crate) fn replace(&mut self, first: Revision, new: Option<BatchBlob>) {
        let Some(at) = self
            .position(first)
            .filter(|&i| self.blobs[i].first == first)
        else {
            return;
        };
        self.bytes -= self.blobs[at].raw.len();
        match new {
            Some(blob) if blob.len() > 0 => {
                self.bytes += blob.raw.len();
                self.blobs[at] = blob;
            }
            _ => {
                self.blobs.remove(at);
            }
        }
        // A rewrite only shrinks a blob, so the budget still holds.
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::{encode_put, BatchBuilder};
    use super::*;

    /// A blob keyed at `first` with one put of `len` value bytes at each of `mains`.
    fn blob(first: Revision, mains: &[Revision], len: usize) -> BatchBlob {
        let mut b = BatchBuilder::default();
        for &m in mains {
            b.push_put(Rev::new(m, 0), b"k", 1, m, 0, &vec![m as u8; len])
                .expect("push");
        }
        let raw = b
            .finish(&BatchState {
                current: mains.last().copied().unwrap_or(first - 1),
                compact: 0,
                meta: None,
            })
            .expect("finish");
        let blob = BatchBlob::parse(first, IVec::from(raw)).expect("parse");
        blob.check().expect("check");
        blob
    }

    #[test]
    fn records_are_found_at_blob_boundaries() {
        let mut c = RecordCache::new(1 << 20);
        c.push(blob(2, &[2, 3, 4], 10));
        c.push(blob(5, &[5], 10));
        c.push(blob(6, &[7, 8], 10));
        for m in [2, 3, 4, 5, 7, 8] {
            let raw = c.record(Rev::new(m, 0)).expect("cached");
            assert_eq!(&raw[..], &encode_put(b"k", 1, m, 0, &[m as u8; 10])[..]);
        }
        for missing in [
            Rev::new(1, 0),
            Rev::new(2, 1),
            Rev::new(6, 0),
            Rev::new(9, 0),
        ] {
            assert!(c.record(missing).is_none(), "{missing:?}");
        }
        let from = |r| {
            c.blobs_from(r)
                .map(|v| v.iter().map(BatchBlob::first).collect::<Vec<_>>())
        };
        assert_eq!(from(1), None, "below the oldest cached blob");
        assert_eq!(from(2), Some(vec![2, 5, 6]));
        assert_eq!(from(4), Some(vec![2, 5, 6]));
        assert_eq!(from(6), Some(vec![6]));
        assert_eq!(from(99), Some(vec![6]));
    }

    #[test]
    fn eviction_drops_oldest_and_keeps_the_budget() {
        let one = blob(2, &[2], 100).raw().len();
        let mut c = RecordCache::new(3 * one);
        for m in 2..=6 {
            c.push(blob(m, &[m], 100));
            assert!(c.bytes() <= 3 * one);
        }
        assert_eq!(c.bytes(), 3 * one);
        for m in 2..=3 {
            assert!(c.record(Rev::new(m, 0)).is_none(), "{m} evicted");
        }
        for m in 4..=6 {
            assert!(c.record(Rev::new(m, 0)).is_some(), "{m} kept");
        }
        assert!(c.blobs_from(3).is_none());
        // A blob larger than the budget empties the cache: what is left is still the
        // newest blobs, so `blobs_from` stays truthful.
        c.push(blob(7, &[7, 8, 9, 10], 100));
        assert_eq!((c.bytes(), c.blobs_from(7).map(|v| v.len())), (0, None));
        c.push(blob(11, &[11], 100));
        assert_eq!(c.blobs_from(11).map(|v| v.len()), Some(1));
        assert!(c.record(Rev::new(11, 0)).is_some());
    }

    #[test]
    fn push_replaces_same_key_and_skips_empty_blobs() {
        let mut c = RecordCache::new(1 << 20);
        c.push(blob(2, &[2], 10));
        c.push(blob(3, &[], 10));
        assert_eq!(
            c.blobs_from(2).map(|v| v.len()),
            Some(1),
            "no records, not kept"
        );
        let before = c.bytes();
        c.push(blob(2, &[2, 3], 10));
        assert!(c.bytes() > before);
        assert_eq!(c.blobs_from(2).map(|v| v.len()), Some(1));
        assert!(c.record(Rev::new(3, 0)).is_some());
    }

    #[test]
    fn compaction_rewrites_and_drops_cached_blobs() {
        let mut c = RecordCache::new(1 << 20);
        c.push(blob(2, &[2, 3, 4], 50));
        c.push(blob(5, &[5, 6], 50));
        c.push(blob(7, &[7], 50));
        let before = c.bytes();
        c.replace(2, Some(blob(2, &[4], 50)));
        c.replace(5, None);
        c.replace(99, None);
        assert!(c.bytes() < before);
        assert!(c.record(Rev::new(2, 0)).is_none());
        assert!(c.record(Rev::new(4, 0)).is_some());
        assert!(c.record(Rev::new(5, 0)).is_none());
        assert!(c.record(Rev::new(7, 0)).is_some());
        let firsts: Vec<_> = c
            .blobs_from(2)
            .expect("covered")
            .iter()
            .map(BatchBlob::first)
            .collect();
        assert_eq!(firsts, vec![2, 7]);
        let total: usize = [blob(2, &[4], 50), blob(7, &[7], 50)]
            .iter()
            .map(|b| b.raw().len())
            .sum();
        assert_eq!(c.bytes(), total);
    }
}
