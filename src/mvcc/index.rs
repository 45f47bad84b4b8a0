//! The in-memory key index (etcd's `treeIndex`): for every key, its generations of
//! revisions, so a read at any kept revision finds the revision record to fetch without
//! touching the backend. Values never live here.
//!
//! Invariants: within a key, revisions strictly increase across and inside generations;
//! every generation but the last ends with the tombstone that closed it; the last
//! generation is the open one (empty while the key is deleted). Lookups take a read
//! revision `at` and ignore revisions above it, so revisions added by an apply that has
//! not been published yet are invisible to readers.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use super::types::{KeyRange, LeaseId, Revision};

/// A revision record's address: the main revision of the write transaction and the
/// position of the write inside it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Rev {
    pub main: Revision,
    pub sub: u32,
}

impl Rev {
    pub(crate) fn new(main: Revision, sub: u32) -> Self {
        Rev { main, sub }
    }
}

/// What the index knows about a key's live version at some revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    /// The revision record holding this version (its `main` is the mod revision).
    pub rev: Rev,
    pub create_revision: Revision,
    pub version: i64,
}

/// Why a record read at open does not fit the history before it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RestoreError {
    /// A revision not above the key's previous one.
    OutOfOrder,
    /// A tombstone for a key that is not live.
    TombstoneOfDeadKey,
    /// Create revision or version does not continue the generation.
    BadVersion,
}

/// One life of a key: from the put that created it to the tombstone that ended it.
#[derive(Clone, Debug)]
struct Generation {
    /// Main revision of the put that created this generation (kept after compaction).
    created: Revision,
    /// Version of `revs[0]`; the version of `revs[i]` is `first_version + i`.
    first_version: i64,
    revs: Vec<Rev>,
}

/// All generations of one key, plus the lease of its newest revision.
#[derive(Clone, Debug)]
pub(crate) struct KeyIndex {
    generations: Vec<Generation>,
    /// Lease of the newest revision (0 when none or when the key is deleted). Only the
    /// applier reads it; readers take the lease from the revision record.
    lease: LeaseId,
}

/// The outcome of recording a put.
pub(crate) struct PutOutcome {
    /// The index's own copy of the key (share it instead of the request's bytes).
    pub key: Bytes,
    pub old_lease: LeaseId,
    pub create_revision: Revision,
    pub version: i64,
}

/// The outcome of recording a tombstone.
pub(crate) struct DeleteOutcome {
    pub key: Bytes,
    pub old_lease: LeaseId,
}

/// The index of every key the store has kept history for.
#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    keys: BTreeMap<Bytes, KeyIndex>,
}

impl KeyIndex {
    fn new() -> Self {
        KeyIndex {
            generations: vec![Generation {
                created: 0,
                first_version: 0,
                revs: Vec::new(),
            }],
            lease: 0,
        }
    }

    /// True when no revision is recorded (the key can leave the index).
    fn is_empty(&self) -> bool {
        self.generations.iter().all(|g| g.revs.is_empty())
    }

    fn open_generation(&mut self) -> &mut Generation {
        if self.generations.is_empty() {
            self.generations.push(Generation {
                created: 0,
                first_version: 0,
                revs: Vec::new(),
            });
        }
        let last = self.generations.len() - 1;
        &mut self.generations[last]
    }

    /// The live version at read revision `at`, if the key existed then.
    fn get(&self, at: Revision) -> Option<Found> {
        let last = self.generations.len().checked_sub(1)?;
        for (i, g) in self.generations.iter().enumerate().rev() {
            let first = match g.revs.first() {
                Some(first) => first,
                None => continue,
            };
            if first.main > at {
                continue;
            }
            let n = g.revs.partition_point(|r| r.main <= at) - 1;
            if i < last && n == g.revs.len() - 1 {
                // The newest revision at `at` is the tombstone that closed this generation.
                return None;
            }
            return Some(Found {
                rev: g.revs[n],
                create_revision: g.created,
                version: g.first_version + n as i64,
            });
        }
        None
    }

    /// The revision just before `rev` in the same generation, if still kept.
    fn prev_of(&self, rev: Rev) -> Option<Rev> {
        for g in self.generations.iter().rev() {
            match g.revs.first() {
                Some(first) if *first <= rev => {
                    return match g.revs.binary_search(&rev) {
                        Ok(i) if i > 0 => Some(g.revs[i - 1]),
                        _ => None,
                    };
                }
                _ => continue,
            }
        }
        None
    }

    /// The newest recorded revision.
    fn newest(&self) -> Option<Rev> {
        self.generations
            .iter()
            .rev()
            .find_map(|g| g.revs.last().copied())
    }

    /// Appends a put at `rev` (above every recorded revision) and returns its create
    /// revision and version.
    fn put(&mut self, rev: Rev) -> (Revision, i64) {
        let g = self.open_generation();
        if g.revs.is_empty() {
            g.created = rev.main;
            g.first_version = 1;
        }
        g.revs.push(rev);
        (g.created, g.first_version + g.revs.len() as i64 - 1)
    }

    /// Closes the open generation with a tombstone at `rev`.
    fn tombstone(&mut self, rev: Rev) {
        self.open_generation().revs.push(rev);
        self.generations.push(Generation {
            created: 0,
            first_version: 0,
            revs: Vec::new(),
        });
    }

    /// Removes every revision with main revision `>= main`, reopening a generation whose
    /// tombstone is removed.
    fn rollback(&mut self, main: Revision) {
        loop {
            let len = self.generations.len();
            let Some(last) = self.generations.last_mut() else {
                return;
            };
            while last.revs.last().is_some_and(|r| r.main >= main) {
                last.revs.pop();
            }
            if last.revs.is_empty() && len > 1 {
                let closing = self.generations[len - 2].revs.last().copied();
                if closing.is_some_and(|r| r.main >= main) {
                    self.generations.pop();
                    continue;
                }
            }
            break;
        }
    }

    /// Where compaction at `at` cuts this key: the number of whole generations to drop
    /// and how many leading revisions of the next one go too.
    fn compaction_cut(&self, at: Revision) -> Option<(usize, usize)> {
        let gi = self
            .generations
            .iter()
            .rposition(|g| g.revs.first().is_some_and(|r| r.main <= at))?;
        let g = &self.generations[gi];
        let n = g.revs.partition_point(|r| r.main <= at) - 1;
        let closed = gi + 1 < self.generations.len();
        if closed && n == g.revs.len() - 1 {
            // The newest revision at `at` is a tombstone: the whole generation goes.
            Some((gi + 1, 0))
        } else {
            Some((gi, n))
        }
    }

    /// Appends to `out` the revisions compaction at `at` removes: per key, everything at
    /// or below `at` except the newest such revision, which goes too if it is a tombstone.
    fn compaction_victims(&self, at: Revision, out: &mut Vec<Rev>) -> bool {
        let Some((whole, partial)) = self.compaction_cut(at) else {
            return false;
        };
        let before = out.len();
        for g in &self.generations[..whole] {
            out.extend_from_slice(&g.revs);
        }
        if partial > 0 {
            out.extend_from_slice(&self.generations[whole].revs[..partial]);
        }
        out.len() > before
    }

    /// Drops what `compaction_victims` listed.
    fn compact(&mut self, at: Revision) {
        let Some((whole, partial)) = self.compaction_cut(at) else {
            return;
        };
        self.generations.drain(..whole);
        if partial > 0 {
            if let Some(g) = self.generations.first_mut() {
                g.revs.drain(..partial);
                g.first_version += partial as i64;
            }
        }
        if self.generations.is_empty() {
            self.generations.push(Generation {
                created: 0,
                first_version: 0,
                revs: Vec::new(),
            });
        }
    }
}

impl Index {
    pub(crate) fn new() -> Self {
        Index::default()
    }

    /// Number of keys with any recorded revision.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Total number of recorded revisions.
    #[cfg(test)]
    pub(crate) fn revision_count(&self) -> usize {
        self.keys
            .values()
            .flat_map(|k| k.generations.iter())
            .map(|g| g.revs.len())
            .sum()
    }

    pub(crate) fn get(&self, key: &[u8], at: Revision) -> Option<Found> {
        self.keys.get(key)?.get(at)
    }

    /// The index's copy of `key`, if the key is indexed.
    #[cfg(test)]
    pub(crate) fn key(&self, key: &[u8]) -> Option<Bytes> {
        self.keys.get_key_value(key).map(|(k, _)| k.clone())
    }

    /// Calls `f` for each key in `range` that is live at `at`, in key order, until it
    /// returns false.
    pub(crate) fn for_each_live(
        &self,
        range: &KeyRange,
        at: Revision,
        mut f: impl FnMut(&Bytes, Found) -> bool,
    ) {
        if range.is_single_key() {
            if let Some((k, ki)) = self.keys.get_key_value(range.key.as_ref()) {
                if let Some(found) = ki.get(at) {
                    f(k, found);
                }
            }
            return;
        }
        let start = Bound::Included(range.key.as_ref());
        let end = match range.end_bound() {
            None => Bound::Unbounded,
            Some(end) if end <= range.key.as_ref() => return,
            Some(end) => Bound::Excluded(end),
        };
        for (k, ki) in self.keys.range::<[u8], _>((start, end)) {
            if let Some(found) = ki.get(at) {
                if !f(k, found) {
                    return;
                }
            }
        }
    }

    /// The revision before `rev` of `key` in the same generation, if still kept.
    pub(crate) fn prev_of(&self, key: &[u8], rev: Rev) -> Option<Rev> {
        self.keys.get(key)?.prev_of(rev)
    }

    /// The key's own bytes (shared) and its mutable index entry.
    fn entry_mut(&mut self, key: &[u8]) -> Option<(Bytes, &mut KeyIndex)> {
        self.keys
            .range_mut::<[u8], _>((Bound::Included(key), Bound::Included(key)))
            .next()
            .map(|(k, ki)| (k.clone(), ki))
    }

    /// Records a put of `key` at `rev` with `lease`. `rev` must be above every revision
    /// already recorded for the key.
    pub(crate) fn put(&mut self, key: &[u8], rev: Rev, lease: LeaseId) -> PutOutcome {
        if !self.keys.contains_key(key) {
            // A fresh copy, so the index never pins a larger request buffer.
            self.keys
                .insert(Bytes::copy_from_slice(key), KeyIndex::new());
        }
        let Some((k, ki)) = self.entry_mut(key) else {
            unreachable!("inserted above");
        };
        let old_lease = ki.lease;
        let (create_revision, version) = ki.put(rev);
        ki.lease = lease;
        PutOutcome {
            key: k,
            old_lease,
            create_revision,
            version,
        }
    }

    /// Records a tombstone of `key` at `rev`; `None` (and no change) if the key is not
    /// live at `rev.main`.
    pub(crate) fn tombstone(&mut self, key: &[u8], rev: Rev) -> Option<DeleteOutcome> {
        let (k, ki) = self.entry_mut(key)?;
        ki.get(rev.main)?;
        let old_lease = ki.lease;
        ki.tombstone(rev);
        ki.lease = 0;
        Some(DeleteOutcome { key: k, old_lease })
    }

    /// Undoes every change to `key` at main revision `>= main` and restores its lease;
    /// the key leaves the index if nothing is left.
    pub(crate) fn rollback(&mut self, key: &[u8], main: Revision, lease: LeaseId) {
        let Some(ki) = self.keys.get_mut(key) else {
            return;
        };
        ki.rollback(main);
        ki.lease = lease;
        if ki.is_empty() {
            self.keys.remove(key);
        }
    }

    /// Lists the revisions a compaction at `at` removes and the keys they belong to.
    pub(crate) fn compaction_victims(
        &self,
        at: Revision,
        revs: &mut Vec<Rev>,
        keys: &mut Vec<Bytes>,
    ) {
        for (k, ki) in &self.keys {
            if ki.compaction_victims(at, revs) {
                keys.push(k.clone());
            }
        }
    }

    /// Applies a compaction at `at` to `keys` (those `compaction_victims` named).
    pub(crate) fn compact_keys(&mut self, at: Revision, keys: &[Bytes]) {
        for k in keys {
            let Some(ki) = self.keys.get_mut(k.as_ref()) else {
                continue;
            };
            ki.compact(at);
            if ki.is_empty() {
                self.keys.remove(k.as_ref());
            }
        }
    }

    /// Replays a put record read at open. Records must come in revision order.
    pub(crate) fn restore_put(
        &mut self,
        key: &[u8],
        rev: Rev,
        create_revision: Revision,
        version: i64,
        lease: LeaseId,
    ) -> Result<(), RestoreError> {
        let ki = match self.keys.get_mut(key) {
            Some(ki) => ki,
            None => self
                .keys
                .entry(Bytes::copy_from_slice(key))
                .or_insert_with(KeyIndex::new),
        };
        if ki.newest().is_some_and(|n| n >= rev) {
            return Err(RestoreError::OutOfOrder);
        }
        if create_revision <= 0 || create_revision > rev.main || version <= 0 {
            return Err(RestoreError::BadVersion);
        }
        let g = ki.open_generation();
        if g.revs.is_empty() {
            // The first kept revision of the generation: older ones may be compacted.
            g.created = create_revision;
            g.first_version = version;
        } else if g.created != create_revision || g.first_version + g.revs.len() as i64 != version {
            return Err(RestoreError::BadVersion);
        }
        g.revs.push(rev);
        ki.lease = lease;
        Ok(())
    }

    /// Replays a tombstone record read at open.
    pub(crate) fn restore_tombstone(&mut self, key: &[u8], rev: Rev) -> Result<(), RestoreError> {
        let ki = self
            .keys
            .get_mut(key)
            .ok_or(RestoreError::TombstoneOfDeadKey)?;
        if ki.newest().is_some_and(|n| n >= rev) {
            return Err(RestoreError::OutOfOrder);
        }
        if ki.open_generation().revs.is_empty() {
            return Err(RestoreError::TombstoneOfDeadKey);
        }
        ki.tombstone(rev);
        ki.lease = 0;
        Ok(())
    }

    /// Every live key (at `at`) with its lease, for rebuilding lease attachments.
    pub(crate) fn live_leases(&self, at: Revision) -> impl Iterator<Item = (&Bytes, LeaseId)> {
        self.keys
            .iter()
            .filter(move |(_, ki)| ki.lease != 0 && ki.get(at).is_some())
            .map(|(k, ki)| (k, ki.lease))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(main: Revision) -> Rev {
        Rev::new(main, 0)
    }

    fn all() -> KeyRange {
        KeyRange::new(&b"\0"[..], &b"\0"[..])
    }

    #[test]
    fn get_follows_generations() {
        let mut ix = Index::new();
        ix.put(b"a", r(2), 0);
        ix.put(b"a", r(3), 0);
        ix.tombstone(b"a", r(4)).expect("live");
        ix.put(b"a", r(6), 0);
        assert_eq!(ix.get(b"a", 1), None);
        let f = ix.get(b"a", 3).expect("live at 3");
        assert_eq!((f.rev, f.create_revision, f.version), (r(3), 2, 2));
        assert_eq!(ix.get(b"a", 4), None);
        assert_eq!(ix.get(b"a", 5), None);
        let f = ix.get(b"a", 9).expect("live at 9");
        assert_eq!((f.rev, f.create_revision, f.version), (r(6), 6, 1));
        assert_eq!(ix.prev_of(b"a", r(3)), Some(r(2)));
        assert_eq!(ix.prev_of(b"a", r(4)), Some(r(3)));
        assert_eq!(ix.prev_of(b"a", r(6)), None);
        assert_eq!(ix.prev_of(b"a", r(2)), None);
    }

    #[test]
    fn tombstone_of_dead_key_is_refused() {
        let mut ix = Index::new();
        assert!(ix.tombstone(b"a", r(2)).is_none());
        ix.put(b"a", r(2), 0);
        assert!(ix.tombstone(b"a", r(3)).is_some());
        assert!(ix.tombstone(b"a", r(4)).is_none());
        assert_eq!(ix.revision_count(), 2);
    }

    #[test]
    fn rollback_reopens_generation_and_restores_lease() {
        let mut ix = Index::new();
        ix.put(b"a", r(2), 7);
        ix.tombstone(b"a", r(3)).expect("live");
        ix.put(b"a", Rev::new(3, 1), 9);
        ix.rollback(b"a", 3, 7);
        let f = ix.get(b"a", 10).expect("live again");
        assert_eq!(f.rev, r(2));
        assert_eq!(ix.put(b"a", r(5), 0).old_lease, 7);
        ix.rollback(b"a", 5, 7);
        ix.put(b"b", r(3), 0);
        ix.rollback(b"b", 3, 0);
        assert_eq!(ix.len(), 1, "a key with nothing left leaves the index");
        let out = ix.put(b"a", r(3), 0);
        assert_eq!((out.create_revision, out.version), (2, 2));
    }

    #[test]
    fn compaction_keeps_newest_non_tombstone() {
        let mut ix = Index::new();
        // a: put 2, put 3, put 5 ; b: put 2, del 4 ; c: put 2, del 3, put 4
        ix.put(b"a", r(2), 0);
        ix.put(b"b", Rev::new(2, 1), 0);
        ix.put(b"c", Rev::new(2, 2), 0);
        ix.put(b"a", r(3), 0);
        ix.tombstone(b"c", Rev::new(3, 1)).expect("live");
        ix.tombstone(b"b", r(4)).expect("live");
        ix.put(b"c", Rev::new(4, 1), 0);
        ix.put(b"a", r(5), 0);

        let (mut revs, mut keys) = (Vec::new(), Vec::new());
        ix.compaction_victims(4, &mut revs, &mut keys);
        revs.sort();
        assert_eq!(
            revs,
            vec![r(2), Rev::new(2, 1), Rev::new(2, 2), Rev::new(3, 1), r(4)]
        );
        assert_eq!(keys.len(), 3);
        ix.compact_keys(4, &keys);
        assert_eq!(ix.get(b"b", 4), None);
        assert!(ix.key(b"b").is_none(), "b's history is gone");
        let a = ix.get(b"a", 4).expect("a at 4");
        assert_eq!((a.rev, a.version, a.create_revision), (r(3), 2, 2));
        let c = ix.get(b"c", 4).expect("c at 4");
        assert_eq!((c.version, c.create_revision), (1, 4));
        assert_eq!(ix.revision_count(), 3);
        // Puts after compaction continue the version count.
        let out = ix.put(b"a", r(6), 0);
        assert_eq!(out.version, 4);
    }

    #[test]
    fn for_each_live_respects_bounds_and_bad_ranges() {
        let mut ix = Index::new();
        for (i, k) in [&b"a"[..], b"b", b"c"].iter().enumerate() {
            ix.put(k, r(2 + i as i64), 0);
        }
        let mut seen = Vec::new();
        ix.for_each_live(&KeyRange::new(&b"b"[..], &b"a"[..]), 9, |k, _| {
            seen.push(k.clone());
            true
        });
        assert!(seen.is_empty(), "range_end below key is empty, not a panic");
        ix.for_each_live(&all(), 3, |k, _| {
            seen.push(k.clone());
            true
        });
        assert_eq!(
            seen,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
    }

    #[test]
    fn restore_checks_order_and_versions() {
        let mut ix = Index::new();
        assert_eq!(
            ix.restore_tombstone(b"a", r(2)),
            Err(RestoreError::TombstoneOfDeadKey)
        );
        ix.restore_put(b"a", r(3), 2, 2, 0)
            .expect("first kept revision");
        assert_eq!(
            ix.restore_put(b"a", r(3), 2, 3, 0),
            Err(RestoreError::OutOfOrder)
        );
        assert_eq!(
            ix.restore_put(b"a", r(4), 2, 9, 0),
            Err(RestoreError::BadVersion)
        );
        ix.restore_put(b"a", r(4), 2, 3, 5).expect("continues");
        assert_eq!(ix.live_leases(4).count(), 1);
        ix.restore_tombstone(b"a", r(5)).expect("live");
        assert_eq!(ix.get(b"a", 5), None);
    }
}
