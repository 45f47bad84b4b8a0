//! Benchmark key names: `count` fixed-width keys `<prefix><zero-padded index>` held in
//! one shared buffer, so handing a key to a request is a reference-count bump, not an
//! allocation.
//!
//! Invariant: every key of a set has the same length, at least `key_size`, and keys
//! sort in index order, so `[prefix, prefix_end(prefix))` covers exactly the set.

use bytes::{Bytes, BytesMut};

use super::error::BenchError;

/// Largest key buffer a run may allocate (256 MiB).
const MAX_KEY_BYTES: u64 = 256 << 20;

/// A set of `count` keys sharing one prefix.
#[derive(Clone, Debug)]
pub struct KeySet {
    buf: Bytes,
    key_len: usize,
    count: u64,
    prefix_len: usize,
}

impl KeySet {
    /// Builds keys `prefix` + index zero-padded so the key is at least `key_size` bytes
    /// long (longer when `count` needs more digits).
    pub fn new(prefix: &str, count: u64, key_size: usize) -> Result<Self, BenchError> {
        if count == 0 {
            return Err(BenchError::InvalidArgs(
                "a key space must hold at least one key".into(),
            ));
        }
        let digits = (count - 1).to_string().len();
        let width = digits.max(key_size.saturating_sub(prefix.len()));
        let key_len = prefix.len() + width;
        if (key_len as u64).saturating_mul(count) > MAX_KEY_BYTES {
            return Err(BenchError::InvalidArgs(format!(
                "{count} keys of {key_len} bytes exceed the {MAX_KEY_BYTES}-byte key buffer"
            )));
        }
        let mut buf = BytesMut::with_capacity(key_len * count as usize);
        for i in 0..count {
            buf.extend_from_slice(prefix.as_bytes());
            buf.extend_from_slice(format!("{i:0width$}").as_bytes());
        }
        Ok(KeySet {
            buf: buf.freeze(),
            key_len,
            count,
            prefix_len: prefix.len(),
        })
    }

    /// The key of `index` (taken modulo the set size).
    pub fn key(&self, index: u64) -> Bytes {
        let start = (index % self.count) as usize * self.key_len;
        self.buf.slice(start..start + self.key_len)
    }

    /// Number of keys.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Length of every key, in bytes.
    pub fn key_len(&self) -> usize {
        self.key_len
    }

    /// The common prefix, and the etcd `range_end` that covers exactly the set.
    pub fn prefix_range(&self) -> (Bytes, Bytes) {
        let prefix = self.buf.slice(0..self.prefix_len);
        let end = prefix_end(&prefix);
        (prefix, end)
    }
}

/// etcd's prefix range end: the prefix with its last byte below 0xff incremented and
/// everything after it dropped; `\0` (all keys) when no such byte exists.
pub fn prefix_end(prefix: &[u8]) -> Bytes {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Bytes::from(end);
        }
    }
    Bytes::from_static(b"\0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fixed_width_and_ordered() {
        let set = KeySet::new("p", 1000, 8).expect("valid");
        assert_eq!(set.key_len(), 8);
        assert_eq!(&set.key(0)[..], b"p0000000");
        assert_eq!(&set.key(999)[..], b"p0000999");
        assert_eq!(&set.key(1000)[..], b"p0000000");
        let wide = KeySet::new("/bench/list/", 500, 8).expect("valid");
        assert_eq!(&wide.key(7)[..], b"/bench/list/007");
        let (prefix, end) = wide.prefix_range();
        assert_eq!(&prefix[..], b"/bench/list/");
        assert_eq!(&end[..], b"/bench/list0");
        assert!(wide.key(499) < end && wide.key(0) >= prefix);
    }

    #[test]
    fn prefix_end_carries() {
        assert_eq!(&prefix_end(b"a\xff")[..], b"b");
        assert_eq!(&prefix_end(b"\xff")[..], b"\0");
    }
}
