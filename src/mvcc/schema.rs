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
//! | key                                  | value                                   |
//! |--------------------------------------|-----------------------------------------|
//! | `0x01 "format"`                      | magic + format version                  |
//! | `0x01 "current"`                     | current revision, i64 BE                |
//! | `0x01 "compact"`                     | compacted revision, i64 BE              |
//! | `0x01 "meta"`                        | the caller's opaque blob                |
//! | `0x02 main:u64 BE sub:u64 BE`        | a revision record (put or tombstone)    |
//! | `0x03 lease id (i64, sign-flipped BE)` | lease TTL, i64 BE                     |
//! | `0x04 member:u64 BE alarm:u8`        | empty (an active alarm)                 |
//!
//! Revision record: `kind:u8 key_len:u32 BE key`, then for a put
//! `create_revision:i64 version:i64 lease:i64 value...` (BE, value to the end).

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
pub(crate) const PREFIX_REV: u8 = 0x02;
pub(crate) const PREFIX_LEASE: u8 = 0x03;
pub(crate) const PREFIX_ALARM: u8 = 0x04;

pub(crate) const KEY_FORMAT: &[u8] = b"\x01format";
pub(crate) const KEY_CURRENT: &[u8] = b"\x01current";
pub(crate) const KEY_COMPACT: &[u8] = b"\x01compact";
pub(crate) const KEY_META: &[u8] = b"\x01meta";

const KIND_PUT: u8 = 0;
const KIND_TOMBSTONE: u8 = 1;

/// Length of a revision record key.
pub(crate) const REV_KEY_LEN: usize = 17;

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

/// The key of the revision record at `rev`.
pub(crate) fn rev_key(rev: Rev) -> [u8; REV_KEY_LEN] {
    let mut k = [0u8; REV_KEY_LEN];
    k[0] = PREFIX_REV;
    k[1..9].copy_from_slice(&(rev.main as u64).to_be_bytes());
    k[9..].copy_from_slice(&u64::from(rev.sub).to_be_bytes());
    k
}

/// The first revision record key of main revision `main` (for scans).
pub(crate) fn rev_key_lower(main: Revision) -> [u8; REV_KEY_LEN] {
    rev_key(Rev::new(main.max(0), 0))
}

/// A key above every revision record key of main revision `main` (exclusive bound).
pub(crate) fn rev_key_upper(main: Revision) -> [u8; REV_KEY_LEN] {
    let mut k = [0xffu8; REV_KEY_LEN];
    k[0] = PREFIX_REV;
    k[1..9].copy_from_slice(&(main.max(0) as u64).to_be_bytes());
    k
}

pub(crate) fn decode_rev_key(key: &[u8]) -> Result<Rev, MvccError> {
    if key.len() != REV_KEY_LEN || key[0] != PREFIX_REV {
        return Err(MvccError::Corrupt(format!(
            "revision record key of {} bytes is malformed",
            key.len()
        )));
    }
    let main = u64::from_be_bytes(key[1..9].try_into().unwrap_or_default());
    let sub = u64::from_be_bytes(key[9..].try_into().unwrap_or_default());
    let main = i64::try_from(main)
        .map_err(|_| MvccError::Corrupt(format!("revision {main} out of range")))?;
    let sub = u32::try_from(sub)
        .map_err(|_| MvccError::Corrupt(format!("sub revision {sub} out of range")))?;
    if main <= 0 {
        return Err(MvccError::Corrupt(format!(
            "revision record at revision {main}"
        )));
    }
    Ok(Rev::new(main, sub))
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

/// Encodes a put record.
pub(crate) fn encode_put(
    key: &[u8],
    create_revision: Revision,
    version: i64,
    lease: LeaseId,
    value: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 4 + key.len() + 24 + value.len());
    out.push(KIND_PUT);
    out.extend_from_slice(&key_len_u32(key));
    out.extend_from_slice(key);
    out.extend_from_slice(&create_revision.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&lease.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// Encodes a tombstone record.
pub(crate) fn encode_tombstone(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 4 + key.len());
    out.push(KIND_TOMBSTONE);
    out.extend_from_slice(&key_len_u32(key));
    out.extend_from_slice(key);
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
// entries: TAG_ENTRY u8 | key_len u32 BE | key | value_len u32 BE | value   (data tree, key order)
// trailer: TAG_END u8 | entry count u64 BE | crc32 (IEEE) of every byte before it, u32 BE

/// Version of the dump framing (the entries themselves follow `FORMAT_VERSION`).
pub(crate) const DUMP_VERSION: u32 = 1;
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
    fn rev_keys_sort_by_revision() {
        let a = rev_key(Rev::new(2, 7));
        let b = rev_key(Rev::new(3, 0));
        let c = rev_key(Rev::new(256, 0));
        assert!(a < b && b < c);
        assert!(rev_key_lower(3) <= b && b < rev_key_upper(3));
        assert!(rev_key_upper(2) <= b);
        assert_eq!(decode_rev_key(&c).expect("valid"), Rev::new(256, 0));
        assert!(decode_rev_key(&c[..16]).is_err());
        assert!(decode_rev_key(&rev_key(Rev::new(0, 0))).is_err());
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
