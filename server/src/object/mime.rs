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

/// Decodes HTTP/1.1 chunked framing from raw connection bytes, up to and including
/// the terminating zero-size chunk and its (ignored) trailers.
pub fn dechunk(reads: crate::common::continue_io::DivertedReads) -> ByteStream {
    struct St {
        reads: crate::common::continue_io::DivertedReads,
        buf: Vec<u8>,
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
    async fn line(st: &mut St) -> Result<String, String> {
        loop {
            if let Some(p) = find(&st.buf, b"\r\n") {
                let l = String::from_utf8_lossy(&st.buf[..p]).into_owned();
                st.buf.drain(..p + 2);
                return Ok(l);
            }
            if st.buf.len() > 4096 {
                return Err("chunk size line too long".into());
            }
            more(st).await?;
        }
    }
    let st = St {
        reads,
        buf: Vec::new(),
        done: false,
    };
    Box::pin(futures_util::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        let step: Result<Option<Vec<u8>>, String> = async {
            let size_line = line(&mut st).await?;
            let hex = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .map_err(|_| format!("bad chunk size {size_line:?}"))?;
            if size == 0 {
                while !line(&mut st).await?.is_empty() {}
                return Ok(None);
            }
            while st.buf.len() < size + 2 {
                more(&mut st).await?;
            }
            let data: Vec<u8> = st.buf.drain(..size).collect();
            if st.buf.drain(..2).as_slice() != b"\r\n" {
                return Err("chunk not followed by CRLF".into());
            }
            Ok(Some(data))
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
