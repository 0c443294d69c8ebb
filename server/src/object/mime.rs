//! A streaming reader of the multipart MIME body of Swift's multiphase PUT: parts
//! separated by `--<boundary>`, each with a header block, ending at `--<boundary>--`.
//! The object body part is streamed (bounded memory whatever its size); the footer
//! and commit parts are small and read whole.

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};

/// Why a MIME body could not be read.
#[derive(Debug)]
pub enum MimeError {
    Timeout,
    Disconnect(String),
    /// Not the MIME document the proxy sends.
    Malformed(&'static str),
}

/// Header blocks of the footer and commit parts are small; refuse runaway ones.
const MAX_PART_HEADERS: usize = 64 * 1024;

/// Where a [`MimeReader`]'s bytes come from (replaceable mid-document: the commit
/// phase arrives after the chunked body has formally ended).
pub type ByteStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

pub struct MimeReader {
    stream: ByteStream,
    /// Unconsumed bytes; starts with a synthetic CRLF so that every delimiter,
    /// the first included, reads as `\r\n--<boundary>`.
    buf: Vec<u8>,
    delimiter: Vec<u8>,
    /// Whether the current part's data is exhausted (the delimiter is next in `buf`).
    part_done: bool,
    finished: bool,
    chunk_timeout: std::time::Duration,
}

impl MimeReader {
    pub fn new<S, E>(stream: S, boundary: &str, chunk_timeout: std::time::Duration) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        MimeReader {
            stream: Box::pin(stream.map(|r| r.map_err(|e| e.to_string()))),
            buf: b"\r\n".to_vec(),
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            part_done: true,
            finished: false,
            chunk_timeout,
        }
    }

    /// Continues the document from another source of bytes.
    pub fn set_stream(&mut self, stream: ByteStream) {
        self.stream = stream;
    }

    /// Reads more of the body into `buf`; false at its end.
    async fn fill(&mut self) -> Result<bool, MimeError> {
        match tokio::time::timeout(self.chunk_timeout, self.stream.next()).await {
            Err(_) => Err(MimeError::Timeout),
            Ok(None) => Ok(false),
            Ok(Some(Err(e))) => Err(MimeError::Disconnect(e.to_string())),
            Ok(Some(Ok(c))) => {
                self.buf.extend_from_slice(&c);
                Ok(true)
            }
        }
    }

    /// Skips what is left of the current part and reads the next part's headers;
    /// `None` after the closing delimiter.
    pub async fn next_part(&mut self) -> Result<Option<Vec<(String, String)>>, MimeError> {
        while !self.part_done {
            self.read_chunk().await?;
        }
        if self.finished {
            return Ok(None);
        }
        // buf starts with the delimiter; then `--` (the end) or CRLF and headers.
        loop {
            if self.buf.len() >= self.delimiter.len() + 2 {
                break;
            }
            if !self.fill().await? {
                return Err(MimeError::Malformed("MIME body ends inside a delimiter"));
            }
        }
        if !self.buf.starts_with(&self.delimiter) {
            return Err(MimeError::Malformed(
                "MIME part does not start with the boundary",
            ));
        }
        let after = &self.buf[self.delimiter.len()..self.delimiter.len() + 2];
        if after == b"--" {
            self.finished = true;
            self.buf.clear();
            return Ok(None);
        }
        if after != b"\r\n" {
            return Err(MimeError::Malformed("bad MIME delimiter line"));
        }
        self.buf.drain(..self.delimiter.len() + 2);
        // The header block ends at an empty line (directly, when there are no headers).
        let end = loop {
            if self.buf.starts_with(b"\r\n") {
                break 0;
            }
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 2;
            }
            if self.buf.len() > MAX_PART_HEADERS {
                return Err(MimeError::Malformed("MIME part headers too long"));
            }
            if !self.fill().await? {
                return Err(MimeError::Malformed("MIME body ends inside part headers"));
            }
        };
        let block = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 2);
        let headers = block
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        self.part_done = false;
        Ok(Some(headers))
    }

    /// The next bytes of the current part; `None` at its end.
    pub async fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, MimeError> {
        if self.part_done {
            return Ok(None);
        }
        loop {
            if let Some(p) = find(&self.buf, &self.delimiter) {
                self.part_done = true;
                let data: Vec<u8> = self.buf.drain(..p).collect();
                return Ok(if data.is_empty() { None } else { Some(data) });
            }
            // Everything but a possible delimiter prefix at the end is part data.
            let safe = self.buf.len().saturating_sub(self.delimiter.len() - 1);
            if safe >= 64 * 1024 {
                return Ok(Some(self.buf.drain(..safe).collect()));
            }
            if !self.fill().await? {
                if safe > 0 {
                    return Ok(Some(self.buf.drain(..safe).collect()));
                }
                return Err(MimeError::Malformed("MIME body ends inside a part"));
            }
        }
    }

    /// The whole current part, refused beyond `limit` bytes.
    pub async fn read_part(&mut self, limit: usize) -> Result<Vec<u8>, MimeError> {
        let mut out = Vec::new();
        while let Some(c) = self.read_chunk().await? {
            out.extend_from_slice(&c);
            if out.len() > limit {
                return Err(MimeError::Malformed("MIME part too large"));
            }
        }
        Ok(out)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A header of a part, by case-insensitive name.
pub fn part_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One step of HTTP/1.1 chunked decoding over the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub enum ChunkStep {
    /// Nothing can be decoded before more bytes arrive.
    NeedMore,
    /// Body bytes, taken off the front of the buffer.
    Data(Vec<u8>),
    /// The zero-size chunk and its (ignored) trailers were taken off the buffer.
    End,
}

/// Size lines and trailer lines longer than this are refused.
const MAX_CHUNK_LINE: usize = 4096;

/// The line starting at `from`, without its CRLF, and where the next one starts;
/// `None` when its end has not arrived yet. A line is refused as too long the same
/// whether its end arrives with it or later.
fn chunk_line(buf: &[u8], from: usize) -> Result<Option<(&[u8], usize)>, String> {
    let too_long = || "chunk size line too long".to_string();
    match find(&buf[from..], b"\r\n") {
        Some(p) if p > MAX_CHUNK_LINE => Err(too_long()),
        Some(p) => Ok(Some((&buf[from..from + p], from + p + 2))),
        // The last byte may be the CR of a line of exactly the limit.
        None if buf.len() - from > MAX_CHUNK_LINE + 1 => Err(too_long()),
        None => Ok(None),
    }
}

/// A chunk size line: hex digits, then optional `;extensions`.
fn chunk_size(line: &[u8]) -> Result<u64, String> {
    let text = String::from_utf8_lossy(line);
    let bad = || format!("bad chunk size {text:?}");
    let hex = text.split(';').next().unwrap_or("").trim();
    if hex.is_empty() {
        return Err(bad());
    }
    hex.chars().try_fold(0u64, |size, c| {
        let digit = c.to_digit(16).ok_or_else(bad)?;
        size.checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(digit)))
            .ok_or_else(bad)
    })
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    /// Inside a chunk, with this many of its bytes still to come.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    Trailers,
    Done,
}

/// HTTP/1.1 chunked decoding, fed bytes as they arrive (kept apart from the socket so that
/// it can be tested and fuzzed on its own). A chunk's data is handed on as it arrives, so
/// memory stays bounded by one read whatever size a chunk claims.
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    state: ChunkState,
}

impl ChunkDecoder {
    /// Decodes from the front of `buf`, taking off what it consumed.
    pub fn decode(&mut self, buf: &mut Vec<u8>) -> Result<ChunkStep, String> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some((line, next)) = chunk_line(buf, 0)? else {
                        return Ok(ChunkStep::NeedMore);
                    };
                    let size = chunk_size(line)?;
                    buf.drain(..next);
                    self.state = match size {
                        0 => ChunkState::Trailers,
                        n => ChunkState::Data(n),
                    };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(ChunkStep::NeedMore);
                    }
                    let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    self.state = match left - n as u64 {
                        0 => ChunkState::DataEnd,
                        rest => ChunkState::Data(rest),
                    };
                    return Ok(ChunkStep::Data(buf.drain(..n).collect()));
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(ChunkStep::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("chunk not followed by CRLF".into());
                    }
                    buf.drain(..2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some((line, next)) = chunk_line(buf, 0)? else {
                        return Ok(ChunkStep::NeedMore);
                    };
                    let last = line.is_empty();
                    buf.drain(..next);
                    if last {
                        self.state = ChunkState::Done;
                    }
                }
                ChunkState::Done => return Ok(ChunkStep::End),
            }
        }
    }
}

/// Decodes HTTP/1.1 chunked framing from raw connection bytes, up to and including
/// the terminating zero-size chunk and its (ignored) trailers.
pub fn dechunk(reads: crate::common::continue_io::DivertedReads) -> ByteStream {
    struct St {
        reads: crate::common::continue_io::DivertedReads,
        buf: Vec<u8>,
        decoder: ChunkDecoder,
        done: bool,
    }
    async fn more(st: &mut St) -> Result<(), String> {
        let mut tmp = vec![0u8; 64 * 1024];
        let n = st.reads.read(&mut tmp).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed inside the chunked body".into());
        }
        st.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }
    let st = St {
        reads,
        buf: Vec::new(),
        decoder: ChunkDecoder::default(),
        done: false,
    };
    Box::pin(futures_util::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        let step: Result<Option<Vec<u8>>, String> = async {
            loop {
                match st.decoder.decode(&mut st.buf)? {
                    ChunkStep::NeedMore => more(&mut st).await?,
                    ChunkStep::Data(d) => return Ok(Some(d)),
                    ChunkStep::End => return Ok(None),
                }
            }
        }
        .await;
        match step {
            Ok(Some(d)) => Some((Ok(Bytes::from(d)), st)),
            Ok(None) => None,
            Err(e) => {
                st.done = true;
                Some((Err(e), st))
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(chunks: Vec<&'static [u8]>) -> MimeReader {
        let s = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, String>(Bytes::from_static(c))),
        );
        MimeReader::new(s, "bnd", std::time::Duration::from_secs(5))
    }

    #[tokio::test]
    async fn reads_the_proxy_document_split_anywhere() {
        let doc: &[u8] = b"--bnd\r\nX-Document: object body\r\n\r\nhello\r\n--bn world\r\n--bnd\r\nX-Document: object metadata\r\nContent-MD5: x\r\n\r\n{}\r\n--bnd\r\nX-Document: put commit\r\n\r\nput_commit_confirmation\r\n--bnd--";
        for split in 1..doc.len() {
            let (a, b) = doc.split_at(split);
            let a: &'static [u8] = Box::leak(a.to_vec().into_boxed_slice());
            let b: &'static [u8] = Box::leak(b.to_vec().into_boxed_slice());
            let mut r = reader(vec![a, b]);
            let h = r.next_part().await.unwrap().unwrap();
            assert_eq!(part_header(&h, "x-document"), Some("object body"));
            assert_eq!(r.read_part(1000).await.unwrap(), b"hello\r\n--bn world");
            let h = r.next_part().await.unwrap().unwrap();
            assert_eq!(part_header(&h, "content-md5"), Some("x"));
            assert_eq!(r.read_part(1000).await.unwrap(), b"{}");
            let h = r.next_part().await.unwrap().unwrap();
            assert_eq!(part_header(&h, "X-Document"), Some("put commit"));
            assert_eq!(r.read_part(1000).await.unwrap(), b"put_commit_confirmation");
            assert!(r.next_part().await.unwrap().is_none());
        }
    }

    /// Seen while writing the `chunked_body` fuzz target: a size line of 16 `f`s overflowed the
    /// "have we got the whole chunk" sum and panicked, and any size made the decoder wait
    /// to buffer the whole chunk in memory.
    #[test]
    fn huge_chunk_sizes_are_streamed_or_refused() {
        let mut d = ChunkDecoder::default();
        let mut buf = b"ffffffffffffffff\r\nabc".to_vec();
        assert_eq!(d.decode(&mut buf), Ok(ChunkStep::Data(b"abc".to_vec())));
        assert_eq!(d.decode(&mut buf), Ok(ChunkStep::NeedMore));
        let mut buf = b"10000000000000000\r\n".to_vec();
        assert!(ChunkDecoder::default().decode(&mut buf).is_err());
        let mut buf = b"+5\r\nhello\r\n".to_vec();
        assert!(ChunkDecoder::default().decode(&mut buf).is_err());
    }

    #[test]
    fn chunks_decode_however_the_bytes_arrive() {
        let body = b"5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: t\r\n\r\n";
        for split in 0..=body.len() {
            let mut d = ChunkDecoder::default();
            let (mut buf, mut got) = (body[..split].to_vec(), Vec::new());
            let mut rest = Some(&body[split..]);
            loop {
                match d.decode(&mut buf).unwrap() {
                    ChunkStep::Data(c) => got.extend(c),
                    ChunkStep::NeedMore => buf.extend(rest.take().expect("the body ends")),
                    ChunkStep::End => break,
                }
            }
            assert_eq!(got, b"hello!", "split at {split}");
        }
    }

    /// Also seen while writing `chunked_body`: a line of exactly the limit whose CRLF arrived
    /// later was refused, though it was read when the CRLF came with it.
    #[test]
    fn line_limit_is_the_same_however_the_bytes_arrive() {
        let mut line = vec![b'0'; MAX_CHUNK_LINE - 1];
        line.push(b'1');
        let mut d = ChunkDecoder::default();
        let mut buf = line.clone();
        buf.push(b'\r');
        assert_eq!(d.decode(&mut buf), Ok(ChunkStep::NeedMore));
        buf.extend_from_slice(b"\nx");
        assert_eq!(d.decode(&mut buf), Ok(ChunkStep::Data(b"x".to_vec())));
        line.push(b'0');
        line.extend_from_slice(b"\r\n");
        assert!(ChunkDecoder::default().decode(&mut line).is_err());
    }

    #[tokio::test]
    async fn truncated_body_is_an_error() {
        let mut r = reader(vec![b"--bnd\r\nX-Document: object body\r\n\r\nhel"]);
        r.next_part().await.unwrap().unwrap();
        let mut got = Vec::new();
        let err = loop {
            match r.read_chunk().await {
                Ok(Some(c)) => got.extend(c),
                Ok(None) => panic!("truncated part read as complete"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, MimeError::Malformed(_)));
    }
}
