//! A byte-stream shim in front of hyper's HTTP/2 server that repairs one client
//! habit: etcdctl 3.4 sends `:authority: http://host:port` on the connections it
//! opens per endpoint (endpoint status, hashkv, defrag, move-leader). grpc-go servers
//! accept that; hyper's h2 rejects it with PROTOCOL_ERROR. The shim decodes each
//! inbound header block (HPACK, RFC 7541) and, when an authority carries a scheme,
//! re-encodes the block with the scheme removed.
//!
//! Invariants: only the first header block of a connection is decided on: if its
//! authority is clean, the connection passes through untouched from then on (clients
//! keep one authority per connection); if not, every header block from then on is
//! re-encoded as literals without indexing, so the server's HPACK dynamic table stays
//! empty and consistent. HTTP/1 connections and anything the shim cannot parse pass
//! through unchanged.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADERS: u8 = 0x1;
const FRAME_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;
/// The frame size every HTTP/2 peer must accept.
const MAX_FRAME: usize = 16_384;

enum Mode {
    /// Waiting for enough bytes to tell HTTP/2 from HTTP/1.
    Sniffing,
    /// HTTP/1 or unparsable: bytes pass through.
    Passthrough,
    /// HTTP/2 after the preface.
    Frames,
}

/// A header block being collected (HEADERS then CONTINUATIONs).
struct PendingBlock {
    stream_id: u32,
    flags: u8,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// The frames as received, for passing them on unchanged.
    raw: Vec<u8>,
}

pub struct AuthorityFix<S> {
    inner: S,
    mode: Mode,
    input: BytesMut,
    output: BytesMut,
    decoder: fluke_hpack::Decoder<'static>,
    pending: Option<PendingBlock>,
    /// Set once a block was rewritten: every later block is re-encoded.
    rewriting: bool,
    eof: bool,
}

impl<S> AuthorityFix<S> {
    pub fn new(inner: S) -> Self {
        AuthorityFix {
            inner,
            mode: Mode::Sniffing,
            input: BytesMut::with_capacity(8192),
            output: BytesMut::with_capacity(8192),
            decoder: fluke_hpack::Decoder::new(),
            pending: None,
            rewriting: false,
            eof: false,
        }
    }

    /// Moves whatever can be processed from `input` to `output`.
    fn process(&mut self) {
        loop {
            match self.mode {
                Mode::Sniffing => {
                    let n = self.input.len().min(PREFACE.len());
                    if self.input[..n] != PREFACE[..n] {
                        self.mode = Mode::Passthrough;
                        continue;
                    }
                    if n < PREFACE.len() {
                        if self.eof {
                            self.mode = Mode::Passthrough;
                            continue;
                        }
                        return;
                    }
                    let preface = self.input.split_to(PREFACE.len());
                    self.output.extend_from_slice(&preface);
                    self.mode = Mode::Frames;
                }
                Mode::Passthrough => {
                    if let Some(p) = self.pending.take() {
                        self.output.extend_from_slice(&p.raw);
                    }
                    let all = self.input.split();
                    self.output.extend_from_slice(&all);
                    return;
                }
                Mode::Frames => {
                    if self.input.len() < 9 {
                        return;
                    }
                    let len = (usize::from(self.input[0]) << 16)
                        | (usize::from(self.input[1]) << 8)
                        | usize::from(self.input[2]);
                    if self.input.len() < 9 + len {
                        return;
                    }
                    let frame = self.input.split_to(9 + len);
                    self.frame(&frame);
                }
            }
        }
    }

    fn frame(&mut self, frame: &[u8]) {
        let kind = frame[3];
        let flags = frame[4];
        let stream_id = u32::from_be_bytes([frame[5] & 0x7f, frame[6], frame[7], frame[8]]);
        let payload = &frame[9..];
        match (kind, self.pending.is_some()) {
            (FRAME_HEADERS, false) => {
                let mut body = payload;
                let mut pad = 0usize;
                if flags & FLAG_PADDED != 0 {
                    let Some((&p, rest)) = body.split_first() else {
                        return self.give_up(frame);
                    };
                    pad = usize::from(p);
                    body = rest;
                }
                let mut priority = None;
                if flags & FLAG_PRIORITY != 0 {
                    if body.len() < 5 {
                        return self.give_up(frame);
                    }
                    let mut p = [0u8; 5];
                    p.copy_from_slice(&body[..5]);
                    priority = Some(p);
                    body = &body[5..];
                }
                if body.len() < pad {
                    return self.give_up(frame);
                }
                let fragment = body[..body.len() - pad].to_vec();
                self.pending = Some(PendingBlock {
                    stream_id,
                    flags,
                    priority,
                    fragment,
                    raw: frame.to_vec(),
                });
                if flags & FLAG_END_HEADERS != 0 {
                    self.finish_block();
                }
            }
            (FRAME_CONTINUATION, true) => {
                let done = flags & FLAG_END_HEADERS != 0;
                if let Some(p) = self.pending.as_mut() {
                    p.fragment.extend_from_slice(payload);
                    p.raw.extend_from_slice(frame);
                }
                if done {
                    self.finish_block();
                }
            }
            (_, true) => {
                // Anything but CONTINUATION inside a header block is a protocol error:
                // let the server see it as it is.
                self.give_up(frame)
            }
            _ => self.output.extend_from_slice(frame),
        }
    }

    fn give_up(&mut self, frame: &[u8]) {
        if let Some(p) = self.pending.take() {
            self.output.extend_from_slice(&p.raw);
        }
        self.output.extend_from_slice(frame);
        self.mode = Mode::Passthrough;
    }

    fn finish_block(&mut self) {
        let Some(block) = self.pending.take() else {
            return;
        };
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let decoder = &mut self.decoder;
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decoder.decode_with_cb(&block.fragment, |n, v| {
                headers.push((n.into_owned(), v.into_owned()))
            })
        }));
        if !matches!(decoded, Ok(Ok(()))) {
            self.output.extend_from_slice(&block.raw);
            self.mode = Mode::Passthrough;
            return;
        }
        let mut changed = false;
        for (name, value) in headers.iter_mut() {
            if name.as_slice() == b":authority" {
                if let Some(pos) = value.windows(3).position(|w| w == b"://") {
                    value.drain(..pos + 3);
                    changed = true;
                }
            }
        }
        if !changed && !self.rewriting {
            // A client keeps one authority per connection (gRPC always does): the
            // first clean request means the rest need no decoding.
            self.output.extend_from_slice(&block.raw);
            self.mode = Mode::Passthrough;
            return;
        }
        self.rewriting = true;
        let mut encoded = Vec::with_capacity(block.fragment.len() + 64);
        for (name, value) in &headers {
            // Literal header field without indexing, new name (RFC 7541 6.2.2).
            encoded.push(0x00);
            encode_string(&mut encoded, name);
            encode_string(&mut encoded, value);
        }
        let mut first = true;
        let mut rest: &[u8] = &encoded;
        loop {
            let room = if first && block.priority.is_some() {
                MAX_FRAME - 5
            } else {
                MAX_FRAME
            };
            let take = rest.len().min(room);
            let (chunk, tail) = rest.split_at(take);
            let last = tail.is_empty();
            let mut flags = if last { FLAG_END_HEADERS } else { 0 };
            let (kind, prio) = if first {
                flags |= block.flags & (FLAG_END_STREAM | FLAG_PRIORITY);
                (FRAME_HEADERS, block.priority)
            } else {
                (FRAME_CONTINUATION, None)
            };
            let len = chunk.len() + prio.map_or(0, |_| 5);
            self.output.extend_from_slice(&[
                (len >> 16) as u8,
                (len >> 8) as u8,
                len as u8,
                kind,
                flags,
            ]);
            self.output
                .extend_from_slice(&block.stream_id.to_be_bytes());
            if let Some(p) = prio {
                self.output.extend_from_slice(&p);
            }
            self.output.extend_from_slice(chunk);
            first = false;
            rest = tail;
            if last {
                break;
            }
        }
    }
}

/// An HPACK integer with an `prefix`-bit prefix, first octet's high bits `flags`.
fn encode_integer(out: &mut Vec<u8>, value: usize, prefix: u8, flags: u8) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A string literal without Huffman coding.
fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    encode_integer(out, s.len(), 7, 0);
    out.extend_from_slice(s);
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.output.is_empty() {
                let n = this.output.len().min(buf.remaining());
                buf.put_slice(&this.output[..n]);
                this.output.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                // Whatever is left (an incomplete frame) goes through as it is.
                if !this.input.is_empty() || this.pending.is_some() {
                    this.mode = Mode::Passthrough;
                    this.process();
                    continue;
                }
                return Poll::Ready(Ok(()));
            }
            let mut tmp = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut tmp);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    if rb.filled().is_empty() {
                        this.eof = true;
                    } else {
                        this.input.extend_from_slice(rb.filled());
                    }
                    this.process();
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn literal_block(headers: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in headers {
            out.push(0x00);
            encode_string(&mut out, n.as_bytes());
            encode_string(&mut out, v.as_bytes());
        }
        out
    }

    async fn run(input: Vec<u8>) -> Vec<u8> {
        let mut fix = AuthorityFix::new(std::io::Cursor::new(input));
        let mut out = Vec::new();
        fix.read_to_end(&mut out).await.expect("read");
        out
    }

    fn decode_headers(bytes: &[u8]) -> Vec<(String, String)> {
        // Skip the preface and decode the first frame's block.
        let f = &bytes[PREFACE.len()..];
        let len = (usize::from(f[0]) << 16) | (usize::from(f[1]) << 8) | usize::from(f[2]);
        let mut d = fluke_hpack::Decoder::new();
        d.decode(&f[9..9 + len])
            .expect("decodes")
            .into_iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(&n).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn http1_passes_through_untouched() {
        let req = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        assert_eq!(run(req.clone()).await, req);
    }

    #[tokio::test]
    async fn clean_http2_passes_through_untouched() {
        let mut input = PREFACE.to_vec();
        input.extend(frame(4, 0, 0, &[]));
        let block = literal_block(&[(":method", "POST"), (":authority", "127.0.0.1:2379")]);
        input.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, &block));
        assert_eq!(run(input.clone()).await, input);
    }

    #[tokio::test]
    async fn authority_with_a_scheme_is_repaired() {
        let mut input = PREFACE.to_vec();
        let block = literal_block(&[
            (":method", "POST"),
            (":authority", "http://127.0.0.1:2379"),
            ("te", "trailers"),
        ]);
        input.extend(frame(
            FRAME_HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            1,
            &block,
        ));
        let out = run(input).await;
        let headers = decode_headers(&out);
        assert!(
            headers.contains(&(":authority".into(), "127.0.0.1:2379".into())),
            "{headers:?}"
        );
        assert!(headers.contains(&("te".into(), "trailers".into())));
        // END_STREAM survives the rewrite.
        assert_eq!(out[PREFACE.len() + 4] & FLAG_END_STREAM, FLAG_END_STREAM);
    }

    #[tokio::test]
    async fn continuation_frames_are_joined_before_decoding() {
        let mut input = PREFACE.to_vec();
        let block = literal_block(&[(":authority", "https://example:1"), (":path", "/x")]);
        let (a, b) = block.split_at(5);
        input.extend(frame(FRAME_HEADERS, 0, 3, a));
        input.extend(frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 3, b));
        let headers = decode_headers(&run(input).await);
        assert_eq!(headers[0], (":authority".into(), "example:1".into()));
    }
}
