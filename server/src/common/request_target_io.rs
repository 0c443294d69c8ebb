//! Raw non-ASCII bytes in a request target, written as `%XX` before hyper reads them.
//!
//! Swift's servers (eventlet) take a request line whose path holds raw bytes of 0x80 and
//! above: a UTF-8 name sent without quoting is stored under that name, and bytes that are
//! not UTF-8 get `412 Invalid UTF8 or contains NULL`. hyper refuses such a request line
//! itself, with a bare 400, because the `http` crate's URI parser takes only ASCII. A raw
//! byte and its `%XX` form decode to the same path (the proxy %-decodes the path as
//! Swift's WSGI layer does), so writing each such byte as `%XX` lets the handlers answer
//! exactly as Swift does.
//!
//! Only request lines may change, and on a keep-alive connection the next request line
//! is found only by following the framing of the message before it: its head up to the
//! empty line, then a body of `Content-Length` bytes or a chunked body (chunk sizes,
//! data, trailers). Body bytes are never touched, whatever they look like. Anything this
//! reader does not follow as hyper would (a framing header in an unusual form, a chunk
//! size it cannot read, `CONNECT`, a head line past 64 KiB) turns the connection
//! into a plain pass-through for good: hyper then sees exactly the bytes it would have
//! seen without this layer and gives its own answer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest head line (request line, header, chunk size, trailer) followed; hyper's
/// own limits refuse far shorter heads.
const MAX_LINE: usize = 64 * 1024;

/// How much of a request line is kept: enough to tell a `CONNECT`.
const METHOD_PREFIX: usize = 8;

/// Where the reader is in the byte stream of requests.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Framing {
    /// Between requests or inside a request line; `started` once past any blank lines
    /// that precede it (which HTTP/1.1 lets a client send).
    RequestLine { started: bool, len: usize },
    /// Inside the header block.
    Headers,
    /// Inside a body with this many bytes left.
    Body(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Inside a chunk with this many bytes left.
    ChunkData(u64),
    /// After a chunk's data, before its CRLF.
    ChunkEnd,
    /// Reading the trailer lines after the last chunk.
    Trailers,
    /// Not followed any more: bytes pass untouched.
    Passthrough,
}

/// The framing state of one connection and the head line being read.
#[derive(Debug)]
struct Framer {
    state: Framing,
    /// The current header, chunk-size or trailer line without its `\n`, or the start of
    /// the request line.
    line: Vec<u8>,
    content_length: Option<u64>,
    chunked: bool,
}

impl Framer {
    fn new() -> Framer {
        Framer {
            state: Framing::RequestLine {
                started: false,
                len: 0,
            },
            line: Vec::new(),
            content_length: None,
            chunked: false,
        }
    }

    /// Follows `input` and returns the bytes hyper should read instead, when they
    /// differ: the index of the first changed byte and everything from it on, rewritten.
    fn rewrite(&mut self, input: &[u8]) -> Option<(usize, Vec<u8>)> {
        let mut out: Option<(usize, Vec<u8>)> = None;
        let mut i = 0;
        while i < input.len() {
            match self.state {
                Framing::Passthrough => {
                    if let Some((_, bytes)) = out.as_mut() {
                        bytes.extend_from_slice(&input[i..]);
                    }
                    return out;
                }
                Framing::Body(left) | Framing::ChunkData(left) => {
                    let take = left.min((input.len() - i) as u64) as usize;
                    if let Some((_, bytes)) = out.as_mut() {
                        bytes.extend_from_slice(&input[i..i + take]);
                    }
                    i += take;
                    let left = left - take as u64;
                    self.state = match (&self.state, left) {
                        (Framing::Body(_), 0) => Framing::request_line(),
                        (Framing::Body(_), n) => Framing::Body(n),
                        (_, 0) => Framing::ChunkEnd,
                        (_, n) => Framing::ChunkData(n),
                    };
                }
                Framing::RequestLine { started, len } => {
                    let byte = input[i];
                    if byte >= 0x80 {
                        let (_, bytes) = out.get_or_insert_with(|| (i, Vec::new()));
                        bytes.extend_from_slice(&percent_encoded(byte));
                    } else if let Some((_, bytes)) = out.as_mut() {
                        bytes.push(byte);
                    }
                    i += 1;
                    self.state = if !started && (byte == b'\r' || byte == b'\n') {
                        Framing::request_line()
                    } else if byte == b'\n' {
                        self.content_length = None;
                        self.chunked = false;
                        // After a CONNECT the bytes are not HTTP (and Swift has none).
                        let connect = self.line.starts_with(b"CONNECT ");
                        self.line.clear();
                        if connect {
                            Framing::Passthrough
                        } else {
                            Framing::Headers
                        }
                    } else if len >= MAX_LINE {
                        Framing::Passthrough
                    } else {
                        if self.line.len() < METHOD_PREFIX {
                            self.line.push(byte);
                        }
                        Framing::RequestLine {
                            started: true,
                            len: len + 1,
                        }
                    };
                }
                Framing::Headers | Framing::ChunkSize | Framing::ChunkEnd | Framing::Trailers => {
                    let byte = input[i];
                    if let Some((_, bytes)) = out.as_mut() {
                        bytes.push(byte);
                    }
                    i += 1;
                    if byte != b'\n' {
                        self.line.push(byte);
                        if self.line.len() > MAX_LINE {
                            self.state = Framing::Passthrough;
                        }
                        continue;
                    }
                    let mut line = std::mem::take(&mut self.line);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    self.state = self.after_line(&line);
                }
            }
        }
        out
    }

    /// The state after a complete head line (without its line ending).
    fn after_line(&mut self, line: &[u8]) -> Framing {
        match self.state {
            Framing::Headers if line.is_empty() => {
                if self.chunked {
                    Framing::ChunkSize
                } else {
                    match self.content_length {
                        Some(n) if n > 0 => Framing::Body(n),
                        _ => Framing::request_line(),
                    }
                }
            }
            Framing::Headers => match self.note_header(line) {
                Some(()) => Framing::Headers,
                None => Framing::Passthrough,
            },
            Framing::ChunkSize => match chunk_size(line) {
                Some(0) => Framing::Trailers,
                Some(n) => Framing::ChunkData(n),
                None => Framing::Passthrough,
            },
            Framing::ChunkEnd if line.is_empty() => Framing::ChunkSize,
            Framing::Trailers if line.is_empty() => Framing::request_line(),
            Framing::Trailers => Framing::Trailers,
            _ => Framing::Passthrough,
        }
    }

    /// Takes note of a framing header; `None` for a head this reader does not follow.
    fn note_header(&mut self, line: &[u8]) -> Option<()> {
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return None; // a folded header line: hyper refuses it
        }
        let colon = line.iter().position(|b| *b == b':')?;
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
            if self.content_length.is_some_and(|seen| seen != n) {
                return None;
            }
            self.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(|b| *b == b',').next().map(trim)?;
            if !last.eq_ignore_ascii_case(b"chunked") {
                return None;
            }
            self.chunked = true;
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            return None;
        }
        Some(())
    }
}

impl Framing {
    fn request_line() -> Framing {
        Framing::RequestLine {
            started: false,
            len: 0,
        }
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => &bytes[s..=e],
        _ => &[],
    }
}

/// A chunk-size line's size: hex digits, then nothing, whitespace or `;` extensions.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return None;
    }
    let rest = &line[digits..];
    if !rest.is_empty() && !matches!(rest[0], b';' | b' ' | b'\t') {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(&line[..digits]).ok()?, 16).ok()
}

fn percent_encoded(byte: u8) -> [u8; 3] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [
        b'%',
        HEX[usize::from(byte >> 4)],
        HEX[usize::from(byte & 0xf)],
    ]
}

/// A connection whose request targets reach hyper with raw non-ASCII bytes `%`-encoded.
pub struct RequestTargetIo<T> {
    inner: T,
    framer: Framer,
    /// Rewritten bytes that did not fit the caller's buffer, and how many of them have
    /// been read.
    pending: Vec<u8>,
    pending_read: usize,
}

impl<T> RequestTargetIo<T> {
    pub fn new(inner: T) -> RequestTargetIo<T> {
        RequestTargetIo {
            inner,
            framer: Framer::new(),
            pending: Vec::new(),
            pending_read: 0,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for RequestTargetIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending_read < this.pending.len() {
            let n = buf.remaining().min(this.pending.len() - this.pending_read);
            buf.put_slice(&this.pending[this.pending_read..this.pending_read + n]);
            this.pending_read += n;
            if this.pending_read == this.pending.len() {
                this.pending.clear();
                this.pending_read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        // The common case (body bytes, ASCII request lines) leaves the bytes in place.
        if let Some((at, rewritten)) = this.framer.rewrite(&buf.filled()[before..]) {
            buf.set_filled(before + at);
            let n = buf.remaining().min(rewritten.len());
            buf.put_slice(&rewritten[..n]);
            this.pending = rewritten;
            this.pending_read = n;
            if n == this.pending.len() {
                this.pending.clear();
                this.pending_read = 0;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for RequestTargetIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// What hyper reads through [`RequestTargetIo`] when a client sends `input` at most
/// `piece` bytes at a time and each read asks for `window` bytes; for the unit tests and
/// the `request_target` fuzz target.
#[doc(hidden)]
pub async fn read_in_pieces(input: &[u8], piece: usize, window: usize) -> Vec<u8> {
    use tokio::io::AsyncReadExt;

    /// A client that sends its input at most `piece` bytes per read.
    struct Pieces<'a> {
        input: &'a [u8],
        piece: usize,
    }

    impl AsyncRead for Pieces<'_> {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let n = this.piece.max(1).min(buf.remaining()).min(this.input.len());
            buf.put_slice(&this.input[..n]);
            this.input = &this.input[n..];
            Poll::Ready(Ok(()))
        }
    }

    let mut io = RequestTargetIo::new(Pieces { input, piece });
    let mut got = Vec::new();
    let mut chunk = vec![0u8; window.max(1)];
    loop {
        let n = io.read(&mut chunk).await.expect("an in-memory read");
        if n == 0 {
            return got;
        }
        got.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(input: &[u8], piece: usize, window: usize) -> Vec<u8> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(read_in_pieces(input, piece, window))
    }

    fn every_split(input: &[u8], want: &[u8]) {
        for piece in [1, 2, 3, 7, 64, input.len()] {
            for window in [1, 2, 5, 4096] {
                assert_eq!(
                    through(input, piece, window),
                    want,
                    "pieces of {piece}, window {window}"
                );
            }
        }
    }

    #[test]
    fn raw_bytes_in_request_lines_are_percent_encoded() {
        every_split(
            b"PUT /v1/a/\xc3\xa9\xff HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/\xe2\x82\xac HTTP/1.1\r\n\r\n",
            b"PUT /v1/a/%C3%A9%FF HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/%E2%82%AC HTTP/1.1\r\n\r\n",
        );
    }

    #[test]
    fn ascii_requests_pass_unchanged() {
        let input = b"\r\nGET /v1/a%20b HTTP/1.1\r\nX-Meta: caf\xc3\xa9\r\n\r\n";
        every_split(input, input);
    }

    #[test]
    fn a_content_length_body_is_never_touched() {
        let body = b"GET /\xff HTTP/1.1\r\n\r\n\xc3\xa9";
        let mut input = format!(
            "PUT /o HTTP/1.1\r\ncontent-length:  {} \r\n\r\n",
            body.len()
        )
        .into_bytes();
        input.extend_from_slice(body);
        let mut want = input.clone();
        input.extend_from_slice(b"HEAD /\xc3\xa9 HTTP/1.1\r\n\r\n");
        want.extend_from_slice(b"HEAD /%C3%A9 HTTP/1.1\r\n\r\n");
        every_split(&input, &want);
    }

    #[test]
    fn a_chunked_body_and_its_trailers_are_never_touched() {
        let input: &[u8] = b"PUT /o HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            15;ext=1\r\nGET /\xff HTTP/1.1\r\n\r\n\xc3\xa9\r\n\
            0\r\nX-Trailer: \xff\r\n\r\n";
        let mut want = input.to_vec();
        let mut input = input.to_vec();
        input.extend_from_slice(b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n");
        want.extend_from_slice(b"GET /%C3%A9 HTTP/1.1\r\n\r\n");
        every_split(&input, &want);
    }

    #[test]
    fn framing_it_does_not_follow_turns_to_pass_through() {
        for head in [
            "PUT /o HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n",
            "PUT /o HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 3\r\n\r\n",
            "PUT /o HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "PUT /o HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",
            "PUT /o HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
            "CONNECT /o HTTP/1.1\r\n\r\n",
        ] {
            let mut input = head.as_bytes().to_vec();
            input.extend_from_slice(b"GET /\xff HTTP/1.1\r\n\r\n");
            assert_eq!(through(&input, input.len(), 4096), input, "{head}");
        }
    }

    #[test]
    fn a_bad_chunk_size_turns_to_pass_through() {
        let input: &[u8] =
            b"PUT /o HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /\xff HTTP/1.1\r\n\r\n";
        every_split(input, input);
    }
}
