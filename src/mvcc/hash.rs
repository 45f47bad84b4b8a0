//! Checksums of stored state: the hash of the revision history (etcd's HashKV), the hash
//! of the whole store (Maintenance.Hash), and the checksummed stream wrappers the dump
//! (export/import) format uses.
//!
//! Invariant: a hash depends only on the stored bytes fed to it, in order, with lengths
//! framed in; two members holding the same records produce the same value.

use std::io::{self, Read, Write};

/// CRC-32 (IEEE) over a sequence of (key, value) records, each framed by its lengths
/// so that record boundaries count.
pub(crate) struct KvHasher(crc32fast::Hasher);

impl KvHasher {
    pub(crate) fn new() -> Self {
        KvHasher(crc32fast::Hasher::new())
    }

    pub(crate) fn update(&mut self, key: &[u8], value: &[u8]) {
        self.0.update(&(key.len() as u64).to_be_bytes());
        self.0.update(key);
        self.0.update(&(value.len() as u64).to_be_bytes());
        self.0.update(value);
    }

    pub(crate) fn finish(self) -> u32 {
        self.0.finalize()
    }
}

/// A writer that counts and checksums every byte it passes on.
pub(crate) struct CrcWriter<'a> {
    inner: &'a mut dyn Write,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<'a> CrcWriter<'a> {
    pub(crate) fn new(inner: &'a mut dyn Write) -> Self {
        CrcWriter {
            inner,
            crc: crc32fast::Hasher::new(),
            written: 0,
        }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.crc.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Writes the checksum of everything so far (not itself checksummed) and returns the
    /// total number of bytes written.
    pub(crate) fn finish(self) -> io::Result<u64> {
        let crc = self.crc.finalize();
        self.inner.write_all(&crc.to_be_bytes())?;
        self.inner.flush()?;
        Ok(self.written + 4)
    }
}

/// A reader that checksums every byte it hands out.
pub(crate) struct CrcReader<'a> {
    inner: &'a mut dyn Read,
    crc: crc32fast::Hasher,
}

impl<'a> CrcReader<'a> {
    pub(crate) fn new(inner: &'a mut dyn Read) -> Self {
        CrcReader {
            inner,
            crc: crc32fast::Hasher::new(),
        }
    }

    pub(crate) fn exact<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.inner.read_exact(&mut buf)?;
        self.crc.update(&buf);
        Ok(buf)
    }

    /// Reads `len` bytes, growing the buffer as data arrives so a corrupt length cannot
    /// make us allocate more than the stream holds.
    pub(crate) fn bytes(&mut self, len: u32) -> io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity((len as usize).min(1 << 16));
        let got = (&mut self.inner)
            .take(u64::from(len))
            .read_to_end(&mut buf)?;
        if got != len as usize {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "dump ends inside an entry",
            ));
        }
        self.crc.update(&buf);
        Ok(buf)
    }

    /// The checksum of everything read so far, and the next 4 bytes (the stored checksum).
    pub(crate) fn finish(self) -> io::Result<(u32, u32)> {
        let computed = self.crc.finalize();
        let mut stored = [0u8; 4];
        self.inner.read_exact(&mut stored)?;
        Ok((computed, u32::from_be_bytes(stored)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_hash_frames_records() {
        let mut a = KvHasher::new();
        a.update(b"ab", b"c");
        let mut b = KvHasher::new();
        b.update(b"a", b"bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn crc_stream_round_trip_detects_change() {
        let mut buf = Vec::new();
        let mut w = CrcWriter::new(&mut buf);
        w.put(b"hello").expect("write");
        assert_eq!(w.finish().expect("finish"), 9);
        let mut r: &[u8] = &buf;
        let mut cr = CrcReader::new(&mut r);
        assert_eq!(cr.bytes(5).expect("read"), b"hello");
        let (computed, stored) = cr.finish().expect("finish");
        assert_eq!(computed, stored);

        buf[1] ^= 1;
        let mut r: &[u8] = &buf;
        let mut cr = CrcReader::new(&mut r);
        cr.bytes(5).expect("read");
        let (computed, stored) = cr.finish().expect("finish");
        assert_ne!(computed, stored);
        let mut short: &[u8] = &buf[..3];
        assert!(CrcReader::new(&mut short).bytes(5).is_err());
    }
}
