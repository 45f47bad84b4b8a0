//! Faults against real member processes: leader SIGKILL, restart and catch-up (by log
//! and by snapshot), lease expiry across a leader change, membership changes, kill -9
//! of every member during writes, a full disk, and data directories that must not be
//! used.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{connect, wait_for, Cluster};
use etcd_client::{Client, GetOptions, PutOptions, WatchOptions};

fn phase(what: &str) {
    eprintln!("--- {what}");
}

/// HashKV of every running member at `rev`, once each has applied it.
async fn hashes(cluster: &mut Cluster, rev: i64) -> Vec<u32> {
    let mut out = Vec::new();
    for i in 0..cluster.members.len() {
        if !cluster.members[i].is_running() {
            continue;
        }
        let url = cluster.members[i].client_url();
        let h = wait_for(
            &format!("hashkv at {rev} from {url}"),
            Duration::from_secs(30),
            || {
                let url = url.clone();
                async move {
                    let mut c = Client::connect([url], None).await.ok()?;
                    let s = c
                        .get("\0", Some(GetOptions::new().with_serializable()))
                        .await
                        .ok()?;
                    if s.header()?.revision() < rev {
                        return None;
                    }
                    c.hash_kv(rev).await.ok().map(|h| h.hash())
                }
            },
        )
        .await;
        out.push(h);
    }
    out
}

/// Writes keys `prefix{n}` from `clients` writers until `stop`; records acknowledged ones.
fn spawn_writers(
    endpoints: Vec<String>,
    prefix: &'static str,
    writers: usize,
    acked: Arc<Mutex<BTreeMap<String, i64>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..writers)
        .map(|w| {
            let endpoints = endpoints.clone();
            let acked = acked.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let opts = etcd_client::ConnectOptions::new()
                    .with_connect_timeout(Duration::from_millis(500))
                    .with_timeout(Duration::from_secs(1));
                let mut client = None;
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    if client.is_none() {
                        client = Client::connect(&endpoints, Some(opts.clone())).await.ok();
                        if client.is_none() {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    }
                    let key = format!("{prefix}{w}-{n}");
                    n += 1;
                    let Some(c) = client.as_mut() else { continue };
                    match c.put(key.clone(), "v", None).await {
                        Ok(r) => {
                            let rev = r.header().map(|h| h.revision()).unwrap_or(0);
                            acked.lock().expect("lock").insert(key, rev);
                        }
                        Err(_) => {
                            client = None;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            })
        })
        .collect()
}

async fn assert_all_present(endpoints: &[String], acked: &BTreeMap<String, i64>) {
    let mut c = connect(endpoints).await;
    let mut missing = Vec::new();
    for key in acked.keys() {
        let got = c.get(key.as_str(), None).await.expect("get");
        if got.kvs().is_empty() {
            missing.push(key.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_then_writes_resume_and_member_catches_up() {
    let mut cluster = Cluster::start(3).await;
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers = spawn_writers(cluster.endpoints(), "lk/", 8, acked.clone(), stop.clone());
    wait_for("some writes", Duration::from_secs(20), || {
        let n = acked.lock().expect("lock").len();
        async move { (n > 50).then_some(()) }
    })
    .await;

    phase("SIGKILL the leader; writes resume on a new leader");
    let leader = cluster.wait_leader().await;
    cluster.members[leader].kill();
    let killed_at = Instant::now();
    let before = acked.lock().expect("lock").len();
    wait_for(
        "writes after the leader died",
        Duration::from_secs(20),
        || {
            let n = acked.lock().expect("lock").len();
            async move { (n > before + 50).then_some(()) }
        },
    )
    .await;
    eprintln!("writes resumed within {:?}", killed_at.elapsed());
    let new_leader = cluster.wait_leader().await;
    assert_ne!(new_leader, leader);

    phase("restart the old leader: it catches up by log and hashes agree");
    cluster.spawn(leader, "new");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().expect("lock").clone();
    let c = connect(&cluster.endpoints()).await;
    // While the old leader rejoins, a write may meet "leader changed"; etcd's
    // clients retry such Unavailable answers, and so does this one.
    let rev = wait_for(
        "a write after the old leader rejoined",
        Duration::from_secs(10),
        || {
            let mut c = c.clone();
            async move {
                match c.put("final", "x", None).await {
                    Ok(r) => r.header().map(|h| h.revision()),
                    Err(e) => {
                        eprintln!("retrying the final put: {e}");
                        None
                    }
                }
            }
        },
    )
    .await;
    let h = hashes(&mut cluster, rev).await;
    assert_eq!(h.len(), 3);
    assert!(h.windows(2).all(|w| w[0] == w[1]), "hashes differ: {h:?}");
    assert_all_present(&cluster.endpoints(), &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_member_catches_up_by_snapshot() {
    let mut cluster = Cluster::start_with(
        3,
        &["--snapshot-count", "20", "--snapshot-catchup-entries", "5"],
    )
    .await;
    let leader = cluster.wait_leader().await;
    let follower = (leader + 1) % 3;
    cluster.members[follower].kill();

    phase("write far past the snapshot threshold while a follower is down");
    let others: Vec<String> = (0..3)
        .filter(|i| *i != follower)
        .map(|i| cluster.members[i].client_url())
        .collect();
    let mut c = connect(&others).await;
    for i in 0..300 {
        c.put(format!("s/{i}"), vec![b'v'; 512], None)
            .await
            .expect("put");
    }
    let now = c
        .get("s/0", None)
        .await
        .expect("get")
        .header()
        .expect("h")
        .revision();
    c.compact(now - 100, None).await.expect("compact");

    phase("linearizable reads while it is down: the leader's log is not flooded");
    for _ in 0..50 {
        c.get("s/0", None).await.expect("linearizable get");
    }
    let leader_log = std::fs::read_to_string(&cluster.members[leader].log).unwrap_or_default();
    assert!(
        leader_log.contains("unreachable"),
        "the leader's log does not report the down peer:\n{}",
        cluster.members[leader].log_tail()
    );
    let noise = leader_log
        .lines()
        .filter(|l| l.contains("timeout while confirming leadership"))
        .count();
    assert_eq!(noise, 0, "one ERROR line per read round and down peer");

    phase("restart it: it installs a snapshot and ends up identical");
    cluster.spawn(follower, "new");
    let rev = c
        .put("done", "1", None)
        .await
        .expect("put")
        .header()
        .expect("h")
        .revision();
    let h = hashes(&mut cluster, rev).await;
    assert!(h.windows(2).all(|w| w[0] == w[1]), "hashes differ: {h:?}");
    let log = std::fs::read_to_string(&cluster.members[follower].log).unwrap_or_default();
    assert!(
        log.contains("installed snapshot"),
        "follower did not catch up by snapshot"
    );
    let mut fc = cluster.members[follower].client().await;
    let got = fc
        .get(
            "s/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_count_only()
                    .with_serializable(),
            ),
        )
        .await
        .expect("count");
    assert_eq!(got.count(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_expires_after_a_leader_change() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_leader().await;
    let follower = (leader + 1) % 3;
    let mut c = cluster.members[follower].client().await;
    let lease = c.lease_grant(3, None).await.expect("grant");
    let rev = c
        .put(
            "lease/k",
            "v",
            Some(PutOptions::new().with_lease(lease.id())),
        )
        .await
        .expect("put")
        .header()
        .expect("h")
        .revision();
    let mut watch = c
        .watch(
            "lease/k",
            Some(WatchOptions::new().with_start_revision(rev + 1)),
        )
        .await
        .expect("watch");

    phase("kill the leader before the lease expires");
    cluster.members[leader].kill();
    cluster.wait_leader().await;

    phase("the new leader expires it: the key is deleted");
    let ev = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let resp = watch.message().await.expect("message").expect("open");
            if let Some(ev) = resp.events().first() {
                return ev.event_type();
            }
        }
    })
    .await
    .expect("expiry within 20 s");
    assert_eq!(ev, etcd_client::EventType::Delete);
    let ttl = c.lease_time_to_live(lease.id(), None).await.expect("ttl");
    assert_eq!(ttl.ttl(), -1);
}

/// Five voters: the hand-over needs one follower freed from the leader's lease (it
/// campaigns in the next term, the target above it), and reads on the leader go on.
/// They used to renew the lease (each read round is a heartbeat), so the target's
/// campaigns were refused until the transfer timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_leader_among_five_under_reads() {
    let mut cluster = Cluster::start(5).await;
    let leader = cluster.wait_leader().await;
    let mut c = connect(&[cluster.members[leader].client_url()]).await;
    c.put("moved", "v", None).await.expect("put");
    let before = c.status().await.expect("status");
    let term = before.raft_term();
    let target = c
        .member_list()
        .await
        .expect("member list")
        .members()
        .iter()
        .map(|m| m.id())
        .find(|id| *id != before.leader())
        .expect("a follower");

    phase("linearizable reads on the leader while leadership moves");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reads = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let (stop, reads) = (stop.clone(), reads.clone());
        let mut r = connect(&[cluster.members[leader].client_url()]).await;
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if r.get("moved", None).await.is_ok() {
                    reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        })
    };
    wait_for(
        "reads flowing on the leader",
        Duration::from_secs(10),
        || {
            let reads = reads.clone();
            async move { (reads.load(std::sync::atomic::Ordering::SeqCst) > 0).then_some(()) }
        },
    )
    .await;
    let before_move = reads.load(std::sync::atomic::Ordering::SeqCst);
    c.move_leader(target).await.expect("move-leader");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    reader.await.expect("reader");
    assert!(
        reads.load(std::sync::atomic::Ordering::SeqCst) > before_move,
        "no read went through while leadership moved"
    );
    let after = c.status().await.expect("status");
    assert_eq!(after.leader(), target);
    assert!(
        after.raft_term() >= term + 2,
        "term {} after the hand-over from term {term}: the target must campaign above \
         the helper's term",
        after.raft_term()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_add_join_promote_and_remove() {
    let mut cluster = Cluster::start(3).await;
    let mut c = connect(&cluster.endpoints()).await;
    for i in 0..50 {
        c.put(format!("pre/{i}"), "v", None).await.expect("put");
    }

    phase("member add (as a voter): it joins as a learner and is promoted once caught up");
    let idx = cluster.add_member_record("m3");
    let peer = cluster.members[idx].peer_url();
    let added = c
        .member_add([peer.as_str()], None)
        .await
        .expect("member add");
    let new_id = added.member().expect("member").id();
    cluster.spawn(idx, "existing");
    wait_for(
        "the new member to become a voter",
        Duration::from_secs(30),
        || {
            let mut c = c.clone();
            async move {
                let list = c.member_list().await.ok()?;
                list.members()
                    .iter()
                    .find(|m| m.id() == new_id && !m.is_learner() && m.name() == "m3")
                    .map(|_| ())
            }
        },
    )
    .await;
    let rev = c
        .put("after-add", "v", None)
        .await
        .expect("put")
        .header()
        .expect("h")
        .revision();
    let h = hashes(&mut cluster, rev).await;
    assert_eq!(h.len(), 4);
    assert!(h.windows(2).all(|w| w[0] == w[1]), "hashes differ: {h:?}");

    phase("a learner must be caught up to be promoted; duplicates are refused");
    let err = c
        .member_add([peer.as_str()], None)
        .await
        .expect_err("duplicate peer URL");
    assert!(
        err.to_string().contains("Peer URLs already exists"),
        "{err}"
    );
    let err = c.member_promote(new_id).await.expect_err("promote a voter");
    assert!(
        err.to_string()
            .contains("can only promote a learner member"),
        "{err}"
    );

    phase("member remove");
    c.member_remove(new_id).await.expect("remove");
    let list = c.member_list().await.expect("list");
    assert_eq!(list.members().len(), 3);
    assert!(c
        .member_remove(new_id)
        .await
        .expect_err("remove twice")
        .to_string()
        .contains("member not found"));
    cluster.members[idx].kill();
    c.put("after-remove", "v", None)
        .await
        .expect("the 3-member cluster still writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_all_members_during_writes_loses_nothing() {
    let mut cluster = Cluster::start(3).await;
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers = spawn_writers(cluster.endpoints(), "ka/", 16, acked.clone(), stop.clone());
    wait_for("writes under way", Duration::from_secs(20), || {
        let n = acked.lock().expect("lock").len();
        async move { (n > 300).then_some(()) }
    })
    .await;

    phase("SIGKILL every member at once, mid-write");
    for m in cluster.members.iter_mut() {
        m.kill();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().expect("lock").clone();
    eprintln!("{} writes acknowledged before the kill", acked.len());

    phase("restart all: every acknowledged write is there");
    for i in 0..3 {
        cluster.spawn(i, "new");
    }
    cluster.wait_leader().await;
    assert_all_present(&cluster.endpoints(), &acked).await;
    let mut c = connect(&cluster.endpoints()).await;
    let rev = c
        .put("post", "v", None)
        .await
        .expect("put")
        .header()
        .expect("h")
        .revision();
    let h = hashes(&mut cluster, rev).await;
    assert!(h.windows(2).all(|w| w[0] == w[1]), "hashes differ: {h:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_or_corrupt_data_dirs_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let run = |data: &std::path::Path, name: &str| {
        let port = common::free_port();
        let peer = common::free_port();
        std::process::Command::new(common::binary())
            .args(["serve", "--secure-port", "0", "--name", name, "--data-dir"])
            .arg(data)
            .args(["--listen-client-urls", &format!("http://127.0.0.1:{port}")])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .output()
            .expect("run kuberaft")
    };

    phase("a directory with foreign files in member/ is refused, untouched");
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(foreign.join("member")).expect("mkdir");
    std::fs::write(foreign.join("member/somefile"), b"not ours").expect("write");
    let out = run(&foreign, "default");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a kuberaft member directory"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(foreign.join("member/somefile")).expect("read"),
        b"not ours"
    );

    phase("a member whose WAL was damaged in the middle refuses to start");
    let mut cluster = Cluster::start(1).await;
    let mut c = cluster.members[0].client().await;
    for i in 0..50 {
        c.put(format!("c/{i}"), vec![b'x'; 200], None)
            .await
            .expect("put");
    }
    cluster.members[0].kill();
    let wal = cluster.members[0].data_dir.join("member/wal");
    let seg = std::fs::read_dir(&wal)
        .expect("wal dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .expect("a segment");
    let mut bytes = std::fs::read(&seg).expect("read segment");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&seg, &bytes).expect("write segment");
    let data = cluster.members[0].data_dir.clone();
    let out = run(&data, "m0");
    assert!(!out.status.success(), "started on a corrupt WAL");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.to_lowercase().contains("corrupt"), "{stderr}");
}

/// A small tmpfs mounted over a directory for the life of the guard: a disk that
/// really fills up. Needs root (`mount`); `None` with the reason when it cannot.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs(dir.to_owned()))
    }

    fn resize(&self, size: &str) {
        let out = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .expect("mount -o remount");
        assert!(
            out.status.success(),
            "remount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: the member may still hold files open; the cluster kills it afterwards.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_and_loses_nothing_acknowledged() {
    let mut cluster = Cluster::unstarted(1, &[]);
    let data_dir = cluster.members[0].data_dir.clone();
    // Declared after the cluster, so unmounted before the cluster is dropped.
    let disk = match Tmpfs::mount(&data_dir, "200m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED a_full_disk_fails_writes_and_loses_nothing_acknowledged: cannot mount a tmpfs here ({why}); it needs root");
            return;
        }
    };
    cluster.start_all().await;

    phase("write 90 KiB values until the 200 MiB disk is full");
    let mut c = connect(&cluster.endpoints()).await;
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let failure = loop {
        assert!(
            acked.len() < 5000,
            "no write failed after 5000 × 90 KiB on a 200 MiB disk"
        );
        let key = format!("full/{:05}", acked.len());
        // Pseudo-random bytes: nothing on the way can compress them away.
        let value: Vec<u8> = (0..90 * 1024)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        match tokio::time::timeout(
            Duration::from_secs(10),
            c.put(key.as_str(), value.clone(), None),
        )
        .await
        {
            Ok(Ok(_)) => acked.push((key, value)),
            Ok(Err(e)) => break e.to_string(),
            Err(_) => break "no answer within 10 s".to_owned(),
        }
    };
    eprintln!("{} writes acknowledged, then: {failure}", acked.len());
    assert!(
        acked.len() > 100,
        "the disk filled implausibly early: {failure}"
    );
    assert!(
        failure.contains("etcdserver: "),
        "a write on a full disk must fail with an etcd error, got: {failure}"
    );
    let again = c.put("full/after-failure", "v", None).await;
    assert!(
        again.is_err(),
        "writes must keep failing until the member is restarted with space"
    );

    phase("free space and restart: every acknowledged write is there, writes work");
    disk.resize("600m");
    cluster.members[0].kill();
    cluster.spawn(0, "new");
    cluster.wait_leader().await;
    let mut c = connect(&cluster.endpoints()).await;
    for (key, value) in &acked {
        let got = c.get(key.as_str(), None).await.expect("get after restart");
        match got.kvs().first() {
            Some(kv) => assert!(
                kv.value() == value.as_slice(),
                "{key}: value differs after restart"
            ),
            None => panic!("{key} was acknowledged before the disk filled and is gone"),
        }
    }
    c.put("full/after-restart", "v", None)
        .await
        .expect("a write after the restart with free space");
}
