//! Maintenance: status, hashes, alarms, defragmentation and streamed snapshots, as
//! etcd's Maintenance service offers them.
//!
//! Invariant: a snapshot stream is a consistent MVCC dump followed by its SHA-256, as
//! etcd appends one, so a truncated download is detectable; it never blocks the
//! async runtime while dumping.

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Header, Store, StoreError};
use crate::mvcc::{AlarmAction, AlarmMember, HashKv, Request, Response, Revision};

/// The version this store reports as etcd (kube-apiserver and etcdctl check it).
pub const ETCD_VERSION: &str = "3.5.13";
/// The cluster version reported by /version.
pub const ETCD_CLUSTER_VERSION: &str = "3.5.0";

/// What Maintenance.Status reports.
#[derive(Clone, Debug)]
pub struct Status {
    pub header: Header,
    pub version: &'static str,
    pub db_size: i64,
    pub db_size_in_use: i64,
    pub leader: u64,
    pub raft_index: u64,
    pub raft_term: u64,
    pub raft_applied_index: u64,
    pub errors: Vec<String>,
    pub is_learner: bool,
}

impl Store {
    pub fn status(&self) -> Status {
        // Cloned: a metrics guard held across other calls can deadlock with Raft.
        let m = self.raft().metrics().borrow().clone();
        let is_learner = !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == self.member_id());
        let errors = self
            .mvcc()
            .alarms()
            .iter()
            .map(|a| format!("memberID:{} alarm:{:?}", a.member_id, a.alarm))
            .collect();
        Status {
            header: self.header_at(self.mvcc().current_revision()),
            version: ETCD_VERSION,
            db_size: self.mvcc().size_on_disk() as i64,
            db_size_in_use: self.mvcc().size_on_disk() as i64,
            leader: m.current_leader.unwrap_or(0),
            raft_index: m.last_log_index.unwrap_or(0),
            raft_term: m.current_term,
            raft_applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            errors,
            is_learner,
        }
    }

    /// etcd's HashKV at `revision` (0 = current).
    pub fn hash_kv(&self, revision: Revision) -> Result<(Header, HashKv), StoreError> {
        let hash = self.mvcc().hash_kv(revision)?;
        Ok((self.header(), hash))
    }

    /// etcd's Hash: the whole store.
    pub fn hash(&self) -> Result<(Header, u32), StoreError> {
        let hash = self.mvcc().hash()?;
        Ok((self.header(), hash))
    }

    pub fn alarms(&self) -> Vec<AlarmMember> {
        self.mvcc().alarms()
    }

    /// Activates or deactivates an alarm through Raft; returns the alarms now active.
    pub async fn alarm(
        &self,
        action: AlarmAction,
        alarm: AlarmMember,
    ) -> Result<(Header, Vec<AlarmMember>), StoreError> {
        let applied = self.propose(Request::Alarm { action, alarm }).await?;
        match applied.result? {
            Response::Alarm(active) => Ok((self.header_at(applied.revision), active)),
            other => Err(StoreError::Internal(format!(
                "unexpected alarm result {other:?}"
            ))),
        }
    }

    /// etcd's Defragment. sled reclaims space by itself; this makes the current state
    /// durable and reports success.
    pub async fn defragment(&self) -> Result<Header, StoreError> {
        let mvcc = self.mvcc().clone();
        tokio::task::spawn_blocking(move || mvcc.sync())
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))??;
        Ok(self.header())
    }

    /// Streams a consistent dump of the store followed by its SHA-256 (32 bytes).
    /// The dump goes to a scratch file first, so a slow client never holds up apply.
    pub fn snapshot(&self) -> mpsc::Receiver<Result<(Bytes, u64), StoreError>> {
        let (tx, rx) = mpsc::channel(8);
        let mvcc = self.mvcc().clone();
        let scratch = self.options().scratch_dir.join(format!(
            "snapshot-{}-{}.tmp",
            std::process::id(),
            SNAPSHOT_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        tokio::task::spawn_blocking(move || {
            let res = stream_snapshot(&mvcc, &scratch, &tx);
            let _ = std::fs::remove_file(&scratch);
            if let Err(e) = res {
                let _ = tx.blocking_send(Err(e));
            }
        });
        rx
    }
}

const CHUNK: usize = 64 * 1024;

static SNAPSHOT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn stream_snapshot(
    mvcc: &crate::mvcc::MvccStore,
    scratch: &std::path::Path,
    tx: &mpsc::Sender<Result<(Bytes, u64), StoreError>>,
) -> Result<(), StoreError> {
    use std::io::{Read, Write};
    let io = |e: std::io::Error| StoreError::Internal(format!("snapshot: {e}"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(scratch).map_err(io)?);
    mvcc.export(&mut file)?;
    file.flush().map_err(io)?;
    drop(file);
    let mut input = std::fs::File::open(scratch).map_err(io)?;
    let dump_len = input.metadata().map_err(io)?.len();
    let framed = SNAPSHOT_MAGIC.len() as u64 + 8 + dump_len;
    let padding = (512 - framed % 512) % 512;
    let mut remaining = framed + padding + 32;
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    let mut send = |chunk: Vec<u8>, sha: &mut ring::digest::Context| -> bool {
        sha.update(&chunk);
        remaining = remaining.saturating_sub(chunk.len() as u64);
        tx.blocking_send(Ok((Bytes::from(chunk), remaining)))
            .is_ok()
    };
    let mut head = SNAPSHOT_MAGIC.to_vec();
    head.extend_from_slice(&dump_len.to_be_bytes());
    if !send(head, &mut sha) {
        return Ok(());
    }
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = input.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        if !send(buf, &mut sha) {
            return Ok(());
        }
    }
    // etcdctl checks that the file is a whole number of 512-byte pages plus a SHA-256.
    if padding > 0 && !send(vec![0u8; padding as usize], &mut sha) {
        return Ok(());
    }
    let digest = sha.finish();
    let _ = tx.blocking_send(Ok((Bytes::copy_from_slice(digest.as_ref()), 0)));
    Ok(())
}

/// The first bytes of a snapshot file as `etcdctl snapshot save` stores it.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"KRSNAPDB";

/// Checks a snapshot file on disk (as [`verify_snapshot`]) without reading it into
/// memory; returns the offset and length of the MVCC dump inside it.
pub fn verify_snapshot_file(path: &std::path::Path) -> Result<(u64, u64), String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let total = f.metadata().map_err(|e| e.to_string())?.len();
    if total < SNAPSHOT_MAGIC.len() as u64 + 8 + 32 {
        return Err("not a kuberaft snapshot file (too short)".into());
    }
    let mut head = [0u8; 16];
    f.read_exact(&mut head).map_err(|e| e.to_string())?;
    if &head[..8] != SNAPSHOT_MAGIC {
        return Err("not a kuberaft snapshot file (bad magic)".into());
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[8..]);
    let len = u64::from_be_bytes(len);
    if 16 + len + 32 > total {
        return Err("snapshot file is shorter than its header says (truncated)".into());
    }
    f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    let mut left = total - 32;
    let mut buf = vec![0u8; CHUNK];
    while left > 0 {
        let n = (left as usize).min(CHUNK);
        f.read_exact(&mut buf[..n]).map_err(|e| e.to_string())?;
        sha.update(&buf[..n]);
        left -= n as u64;
    }
    let mut expected = [0u8; 32];
    f.read_exact(&mut expected).map_err(|e| e.to_string())?;
    if sha.finish().as_ref() != expected {
        return Err("snapshot file checksum mismatch (truncated or corrupted)".into());
    }
    Ok((16, len))
}

/// Checks a snapshot file saved from the Maintenance API (magic, length, padding,
/// SHA-256 trailer) and returns the MVCC dump inside it.
pub fn verify_snapshot(data: &[u8]) -> Result<&[u8], String> {
    if data.len() < SNAPSHOT_MAGIC.len() + 8 + 32 || &data[..8] != SNAPSHOT_MAGIC {
        return Err("not a kuberaft snapshot file".into());
    }
    let (body, sha) = data.split_at(data.len() - 32);
    let actual = ring::digest::digest(&ring::digest::SHA256, body);
    if actual.as_ref() != sha {
        return Err("snapshot file checksum mismatch (truncated or corrupted)".into());
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&body[8..16]);
    let len = u64::from_be_bytes(len) as usize;
    body.get(16..16 + len)
        .ok_or_else(|| "snapshot file is shorter than its header says".to_owned())
}
