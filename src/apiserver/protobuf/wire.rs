//! The protobuf wire format at the byte level: varints, keys, length-delimited
//! fields, and skipping fields a message does not know.
//!
//! Invariant: a `Reader` never reads past its slice; every malformed input (truncated
//! varint or field, overlong varint, group or reserved wire types) is an error.

use super::Error;

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

/// A cursor over an encoded message.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn varint(&mut self) -> Result<u64, Error> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(Error::malformed("truncated varint"));
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(Error::malformed("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Error::malformed("varint longer than 10 bytes"))
    }

    /// The next field's (number, wire type), or None at the end of the message.
    pub fn key(&mut self) -> Result<Option<(u32, u8)>, Error> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let k = self.varint()?;
        let tag =
            u32::try_from(k >> 3).map_err(|_| Error::malformed("field number out of range"))?;
        if tag == 0 {
            return Err(Error::malformed("field number 0"));
        }
        Ok(Some((tag, (k & 7) as u8)))
    }

    /// A length-delimited field's bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let len =
            usize::try_from(self.varint()?).map_err(|_| Error::malformed("length out of range"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| Error::malformed("truncated length-delimited field"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn fixed64(&mut self) -> Result<u64, Error> {
        let b = self
            .buf
            .get(self.pos..self.pos + 8)
            .ok_or_else(|| Error::malformed("truncated fixed64"))?;
        self.pos += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Skips a field of a number the message does not define.
    pub fn skip(&mut self, wire: u8) -> Result<(), Error> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => {
                if self.pos + 4 > self.buf.len() {
                    return Err(Error::malformed("truncated fixed32"));
                }
                self.pos += 4;
                Ok(())
            }
            w => Err(Error::malformed(format!("unsupported wire type {w}"))),
        }
    }
}

pub fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub fn put_key(buf: &mut Vec<u8>, tag: u32, wire: u8) {
    put_varint(buf, (u64::from(tag) << 3) | u64::from(wire));
}

pub fn put_bytes(buf: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_key(buf, tag, LEN);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// Writes a length-delimited field whose contents `body` appends to the buffer: one
/// byte is reserved for the length, and the contents move when the length needs more.
pub fn put_nested<E>(
    buf: &mut Vec<u8>,
    tag: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    put_key(buf, tag, LEN);
    let at = buf.len();
    buf.push(0);
    body(buf)?;
    let len = buf.len() - at - 1;
    if len < 0x80 {
        buf[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        put_varint(&mut prefix, len as u64);
        buf.splice(at..at + 1, prefix);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_garbage() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX,
            (-1i64) as u64,
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(Reader::new(&b).varint().expect("varint"), v);
        }
        assert!(Reader::new(&[0x80, 0x80]).varint().is_err());
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        assert!(Reader::new(&[0x0a, 0x05, b'a'])
            .key()
            .and_then(|_| Reader::new(&[0x05, b'a']).bytes())
            .is_err());
    }

    #[test]
    fn nested_lengths_grow_past_one_byte() {
        for n in [0usize, 5, 127, 128, 20_000] {
            let mut b = Vec::new();
            put_nested::<()>(&mut b, 2, |b| {
                b.extend(std::iter::repeat_n(7u8, n));
                Ok(())
            })
            .expect("nested");
            let mut r = Reader::new(&b);
            assert_eq!(r.key().expect("key"), Some((2, LEN)));
            assert_eq!(r.bytes().expect("bytes").len(), n);
            assert_eq!(r.key().expect("end"), None);
        }
    }
}
