//! A streaming `multipart/form-data` reader, reading a request body the way Swift's
//! `iter_multipart_mime_documents` does: blank lines before the first boundary are
//! skipped, that boundary must be there, each part is headers then data up to
//! `\r\n--<boundary>`, and `--` after a boundary ends the form. Part data is handed out in
//! bounded chunks as it arrives, so a file part of any size streams straight into its
//! upload without being held in memory; the reader never buffers more than one chunk
//! plus a boundary.

use std::collections::BTreeMap;

use axum::body::{Body, BodyDataStream};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;

/// The form's first line is not its boundary (Swift's `MimeInvalid`).
#[derive(Debug)]
pub struct MimeInvalid;

/// The client's body broke off (a read error, not the end of the form).
#[derive(Debug)]
pub struct ReadError(pub String);

pub struct MultipartReader {
    body: BodyDataStream,
    buf: BytesMut,
    input_done: bool,
    /// `\r\n--<boundary>`: what ends a part's data.
    delimiter: Vec<u8>,
    part_done: bool,
    no_more_parts: bool,
}

impl MultipartReader {
    pub fn new(body: Body, boundary: &[u8]) -> MultipartReader {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary);
        MultipartReader {
            body: body.into_data_stream(),
            buf: BytesMut::new(),
            input_done: false,
            delimiter,
            part_done: true,
            no_more_parts: false,
        }
    }

    /// Reads one more chunk of the body into the buffer; false at its end.
    async fn fill(&mut self) -> Result<bool, ReadError> {
        if self.input_done {
            return Ok(false);
        }
        match self.body.next().await {
            Some(Ok(chunk)) => {
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
            Some(Err(e)) => Err(ReadError(e.to_string())),
            None => {
                self.input_done = true;
                Ok(false)
            }
        }
    }

    /// Up to `limit` bytes through the first `\n` of the raw body (Python's
    /// `readline(limit)`).
    async fn raw_line(&mut self, limit: usize) -> Result<Bytes, ReadError> {
        loop {
            let window = &self.buf[..self.buf.len().min(limit)];
            if let Some(nl) = window.iter().position(|&b| b == b'\n') {
                return Ok(self.buf.split_to(nl + 1).freeze());
            }
            if self.buf.len() >= limit || !self.fill().await? {
                let n = self.buf.len().min(limit);
                return Ok(self.buf.split_to(n).freeze());
            }
        }
    }

    /// Checks the opening boundary line; the first part starts after it.
    pub async fn start(&mut self) -> Result<Result<(), MimeInvalid>, ReadError> {
        // `--<boundary>` plus its CRLF.
        let line_limit = self.delimiter.len();
        let mut line = self.raw_line(line_limit).await?;
        while line.as_ref() == b"\r\n" {
            line = self.raw_line(line_limit).await?;
        }
        if line.trim_ascii() != &self.delimiter[2..] {
            return Ok(Err(MimeInvalid));
        }
        Ok(Ok(()))
    }

    /// Whether the form has another part (after the current one is read or skipped).
    pub async fn next_part(&mut self) -> Result<Option<BTreeMap<String, String>>, ReadError> {
        // Whatever the caller left of the current part is skipped.
        while !self.part_done {
            self.read(64 * 1024).await?;
        }
        if self.no_more_parts {
            return Ok(None);
        }
        self.part_done = false;
        let mut lines = Vec::new();
        loop {
            let line = self.read_line().await?;
            let done = matches!(line.as_ref(), b"\r\n" | b"\n" | b"");
            if done {
                break;
            }
            lines.push(match std::str::from_utf8(&line) {
                Ok(s) => s.to_string(),
                // Swift falls back to Latin-1.
                Err(_) => line.iter().map(|&b| b as char).collect(),
            });
        }
        Ok(Some(parse_headers(&lines)))
    }

    /// The next bytes of the current part's data, at most `max`; empty at its end.
    pub async fn read(&mut self, max: usize) -> Result<Bytes, ReadError> {
        if self.part_done {
            return Ok(Bytes::new());
        }
        let want = max + self.delimiter.len() + 2;
        while self.buf.len() < want && self.fill().await? {}
        match find(&self.buf, &self.delimiter) {
            Some(pos) if pos <= max => {
                let data = self.buf.split_to(pos).freeze();
                self.buf.advance(self.delimiter.len());
                while self.buf.len() < 2 && self.fill().await? {}
                self.no_more_parts = self.buf.starts_with(b"--");
                let skip = self.buf.len().min(2);
                self.buf.advance(skip);
                self.part_done = true;
                Ok(data)
            }
            _ => {
                if self.buf.is_empty() && self.input_done {
                    // The body ended without a closing boundary.
                    self.part_done = true;
                    self.no_more_parts = true;
                    return Ok(Bytes::new());
                }
                let n = self.buf.len().min(max);
                Ok(self.buf.split_to(n).freeze())
            }
        }
    }

    /// One header line of the current part (through its CRLF), or what is left of the
    /// part when no CRLF comes before its end.
    async fn read_line(&mut self) -> Result<Bytes, ReadError> {
        loop {
            let newline = find(&self.buf, b"\r\n");
            let boundary = find(&self.buf, &self.delimiter);
            match (newline, boundary) {
                (Some(n), b) if b.is_none_or(|b| n < b) => {
                    return Ok(self.buf.split_to(n + 2).freeze());
                }
                (_, Some(_)) => return self.read(self.buf.len()).await,
                _ => {
                    if !self.fill().await? {
                        let rest = self.buf.len();
                        return self.read(rest).await;
                    }
                }
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// MIME header lines as `email.parser` reads them: `Name: value`, continuation lines
/// folded in, names case-insensitive (lower-cased here), the last of a name winning.
fn parse_headers(lines: &[String]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for raw in lines {
        let line = raw.trim_end_matches(['\r', '\n']);
        if line.starts_with([' ', '\t']) {
            if let Some(v) = last.as_ref().and_then(|k| out.get_mut(k)) {
                v.push_str(line);
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        out.insert(name.clone(), value.trim().to_string());
        last = Some(name);
    }
    out
}

/// Swift's `parse_content_disposition`: the value before the first `;`, and the
/// `name=value` / `name="value"` attributes after it (parsing stops at the first that
/// does not fit; quotes are stripped from the ends of a value).
pub fn parse_content_disposition(header: &str) -> (String, BTreeMap<String, String>) {
    let mut attributes = BTreeMap::new();
    let (value, mut attrs) = match header.split_once(';') {
        Some((v, a)) => (v.trim(), a.trim()),
        None => (header, ""),
    };
    while let Some((name, val, rest)) = next_attribute(attrs) {
        attributes.insert(name.to_string(), val.trim_matches('"').to_string());
        attrs = rest;
    }
    (value.to_string(), attributes)
}

/// One `(\w+)=(".*?"|[^";]+)(; ?|$)` match at the start of `s`.
fn next_attribute(s: &str) -> Option<(&str, &str, &str)> {
    let name_len = s
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(s.len(), |(i, _)| i);
    if name_len == 0 || !s[name_len..].starts_with('=') {
        return None;
    }
    let name = &s[..name_len];
    let rest = &s[name_len + 1..];
    // What may follow a value: `;`, `; `, or the end.
    let after = |tail: &str| -> Option<usize> {
        if tail.is_empty() {
            Some(0)
        } else if tail.starts_with("; ") {
            Some(2)
        } else if tail.starts_with(';') {
            Some(1)
        } else {
            None
        }
    };
    if let Some(quoted) = rest.strip_prefix('"') {
        // The shortest quoted value that a separator or the end follows.
        for (i, _) in quoted.match_indices('"') {
            let end = 1 + i + 1;
            if let Some(sep) = after(&rest[end..]) {
                return Some((name, &rest[..end], &rest[end + sep..]));
            }
        }
        return None;
    }
    let run = rest.find(['"', ';']).unwrap_or(rest.len());
    if run == 0 {
        return None;
    }
    let sep = after(&rest[run..])?;
    Some((name, &rest[..run], &rest[run + sep..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body_in_chunks(data: &[u8], chunk: usize) -> Body {
        let chunks: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(chunk.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Body::from_stream(futures_util::stream::iter(chunks))
    }

    /// Every part as (headers, data), or None for an invalid start.
    async fn parts(data: &[u8], chunk: usize) -> Option<Vec<(BTreeMap<String, String>, Vec<u8>)>> {
        let mut r = MultipartReader::new(body_in_chunks(data, chunk), b"XyZ");
        if r.start().await.unwrap().is_err() {
            return None;
        }
        let mut out = Vec::new();
        while let Some(h) = r.next_part().await.unwrap() {
            let mut d = Vec::new();
            loop {
                let c = r.read(7).await.unwrap();
                if c.is_empty() {
                    break;
                }
                assert!(c.len() <= 7);
                d.extend_from_slice(&c);
            }
            out.push((h, d));
        }
        Some(out)
    }

    const FORM: &[u8] = b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"redirect\"\r\n\r\nhttp://x/\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file1\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nline one\r\nline two with --XyZ inside\r\n--XyZ--\r\n";

    #[tokio::test]
    async fn parts_and_data_whatever_the_chunking() {
        for chunk in [1, 2, 3, 5, 8, 13, 64, 4096] {
            let p = parts(FORM, chunk).await.unwrap();
            assert_eq!(p.len(), 2, "chunk {chunk}");
            assert_eq!(
                p[0].0["content-disposition"],
                "form-data; name=\"redirect\""
            );
            assert_eq!(p[0].1, b"http://x/");
            assert_eq!(p[1].0["content-type"], "text/plain");
            assert_eq!(p[1].1, b"line one\r\nline two with --XyZ inside");
        }
    }

    #[tokio::test]
    async fn bad_starts_and_truncated_forms() {
        assert!(parts(b"--Other\r\n\r\nx", 4).await.is_none());
        assert!(parts(b"", 4).await.is_none());
        // No closing boundary: the last part runs to the end of the body.
        let p = parts(b"--XyZ\r\nA: b\r\n\r\ntail", 3).await.unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].1, b"tail");
    }

    #[test]
    fn content_dispositions_as_swift_reads_them() {
        let (v, a) = parse_content_disposition("form-data; name=\"f\"; filename=\"a b.txt\"");
        assert_eq!(v, "form-data");
        assert_eq!(a["name"], "f");
        assert_eq!(a["filename"], "a b.txt");
        let (v, a) = parse_content_disposition("multipart/form-data; boundary=----abc");
        assert_eq!(
            (v.as_str(), a["boundary"].as_str()),
            ("multipart/form-data", "----abc")
        );
        let (_, a) = parse_content_disposition("form-data; name=\"a\"b\"; x=1");
        assert_eq!(a["name"], "a\"b");
        assert_eq!(a["x"], "1");
        let (_, a) = parse_content_disposition("form-data; =bad; name=x");
        assert!(a.is_empty());
        let (v, a) = parse_content_disposition("text/plain");
        assert_eq!(v, "text/plain");
        assert!(a.is_empty());
    }

    proptest! {
        // Any bytes, chunked any way: the reader answers and never panics, and every
        // chunk it hands out respects the size asked for.
        #[test]
        fn reader_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300), chunk in 1usize..20) {
            let mut framed = b"--XyZ\r\n".to_vec();
            framed.extend_from_slice(&data);
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let _ = parts(&data, chunk).await;
                let _ = parts(&framed, chunk).await;
            });
        }

        #[test]
        fn dispositions_never_panic(s in ".{0,80}") {
            let _ = parse_content_disposition(&s);
        }
    }
}
