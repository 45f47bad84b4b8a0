//! Member and cluster ids, derived as etcd does from what the operator configures, so
//! every member computes the same ids from the same `--initial-cluster`.
//!
//! Invariant: ids are never 0 (0 means "none" in Raft and in etcd's API).

use ring::digest::{digest, SHA256};

fn hash64(parts: &[&[u8]]) -> u64 {
    let mut input = Vec::new();
    for part in parts {
        input.extend_from_slice(&(part.len() as u64).to_be_bytes());
        input.extend_from_slice(part);
    }
    let d = digest(&SHA256, &input);
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&d.as_ref()[..8]);
    u64::from_be_bytes(bytes).max(1)
}

/// The id of a member of the initial cluster: its sorted peer URLs and the cluster
/// token (`--initial-cluster-token`).
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
    urls.sort_unstable();
    let joined = urls.join(",");
    hash64(&[b"member", joined.as_bytes(), token.as_bytes()])
}

/// The cluster id: the initial members' ids and the token.
pub fn cluster_id(member_ids: &[u64], token: &str) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let bytes: Vec<u8> = ids.iter().flat_map(|i| i.to_be_bytes()).collect();
    hash64(&[b"cluster", &bytes, token.as_bytes()])
}

/// The id of a member added through the Cluster API: its sorted peer URLs within
/// this cluster. The joining member computes the same id from its own
/// `--initial-advertise-peer-urls` and the cluster id it learns from a peer.
pub fn added_member_id(peer_urls: &[String], cluster_id: u64) -> u64 {
    let mut urls: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
    urls.sort_unstable();
    let joined = urls.join(",");
    hash64(&[b"added", joined.as_bytes(), &cluster_id.to_be_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_ignore_url_order_and_depend_on_the_token() {
        let a = vec![
            "http://127.0.0.1:2380".to_owned(),
            "http://[::1]:2380".to_owned(),
        ];
        let b = vec![
            "http://[::1]:2380".to_owned(),
            "http://127.0.0.1:2380".to_owned(),
        ];
        assert_eq!(member_id(&a, "t"), member_id(&b, "t"));
        assert_ne!(member_id(&a, "t"), member_id(&a, "u"));
        assert_ne!(cluster_id(&[1, 2, 3], "t"), cluster_id(&[1, 2], "t"));
        assert_eq!(cluster_id(&[3, 1, 2], "t"), cluster_id(&[1, 2, 3], "t"));
        assert_ne!(added_member_id(&a, 1), added_member_id(&a, 2));
    }
}
