//! A backend PUT on a connection of its own that waits for `100 Continue` before a byte
//! of the body is sent, as Swift's proxy does.
//!
//! The wait is how a write learns, cheaply and early, that a node cannot take its
//! replica: a node whose process is hung, or whose accept queue is full, still completes
//! the TCP handshake (the kernel does it), and would only be found out `node_timeout`
//! after the body was sent, too late to give the replica to a handoff. With the interim
//! answer, a node that does not say `100 Continue` within `node_timeout` (or answers 507,
//! or a 5xx) is passed over before the upload starts, and the next node takes its place.
//!
//! hyper's client cannot hold this conversation: it sends the body at once and never
//! shows an interim response. So the request goes over a plain TCP stream: the head with
//! `Expect: 100-continue`, then (after the `100`) the body in the framing the head
//! declared, then the final response. The connection is closed after one request, as
//! Swift's are; object PUTs cost a disk sync each, against which a loopback connect is
//! small.

use axum::http::HeaderMap;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::backend::{header_value, BackendError, Transport};
use super::ring::Node;
use ringsmith::swift::escape::quote;

/// The most a response head may take; a backend that sends more is broken.
const MAX_HEAD: usize = 64 * 1024;

/// One backend PUT connection past its `100 Continue`, ready for the body.
pub struct ContinuePut {
    pub node: Node,
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
}

/// What a node said to the request head.
pub enum Handshake {
    /// `100 Continue` (with its headers): send the body.
    Continue(ContinuePut, HeaderMap),
    /// A final answer instead (its body already read): 507, 409, 412, a 5xx...
    Final(u16, HeaderMap),
}

impl ContinuePut {
    /// Connects to `node` within `conn_timeout`, sends the head of `PUT /<device><path>`
    /// with `headers` (which should carry `Expect: 100-continue` and the body's framing)
    /// and waits up to `node_timeout` for the first answer.
    pub async fn open(
        transport: &Transport,
        node: &Node,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Handshake, BackendError> {
        let addr = node.host();
        let stream = match tokio::time::timeout(
            transport.conn_timeout,
            tokio::net::TcpStream::connect(&addr),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(BackendError::Connect(e.to_string())),
            Err(_) => return Err(BackendError::Connect("connect timeout".into())),
        };
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let mut conn = ContinuePut {
            node: node.clone(),
            reader: BufReader::new(rd),
            writer: BufWriter::with_capacity(256 * 1024, wr),
        };
        let mut head = format!(
            "PUT /{}{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n",
            quote(&node.device),
            path
        )
        .into_bytes();
        for (name, value) in headers {
            if name == "connection" || name == "host" {
                continue;
            }
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let exchange = async {
            conn.writer
                .write_all(&head)
                .await
                .map_err(|e| e.to_string())?;
            conn.writer.flush().await.map_err(|e| e.to_string())?;
            conn.read_head().await
        };
        let (status, resp_headers) = match tokio::time::timeout(transport.node_timeout, exchange)
            .await
        {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return Err(BackendError::Other(format!("Expect: 100-continue: {e}"))),
            Err(_) => return Err(BackendError::Timeout),
        };
        if status == 100 {
            return Ok(Handshake::Continue(conn, resp_headers));
        }
        let _ = tokio::time::timeout(transport.node_timeout, conn.drain_body(&resp_headers)).await;
        Ok(Handshake::Final(status, resp_headers))
    }

    /// Writes one chunk of a chunked body; empty `data` is the terminator.
    pub async fn write_chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.writer
            .write_all(format!("{:x}\r\n", data.len()).as_bytes())
            .await?;
        self.writer.write_all(data).await?;
        self.writer.write_all(b"\r\n").await
    }

    /// Writes body bytes as they are (a body framed by `Content-Length`).
    pub async fn write_raw(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(data).await
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush().await
    }

    /// Reads the next response head, through its blank line.
    pub async fn read_head(&mut self) -> Result<(u16, HeaderMap), String> {
        let mut head = Vec::new();
        loop {
            let n = self
                .reader
                .read_until(b'\n', &mut head)
                .await
                .map_err(|e| format!("reading a response: {e}"))?;
            if n == 0 {
                return Err("connection closed before a response".into());
            }
            if head.ends_with(b"\r\n\r\n") || head == b"\r\n" {
                break;
            }
            if head.len() > MAX_HEAD {
                return Err("response head too large".into());
            }
        }
        parse_response_head(&head)
    }

    /// Reads (and drops) a response body: object servers answer PUTs with short ones.
    pub async fn drain_body(&mut self, headers: &HeaderMap) {
        let length = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(len) = length {
            let mut sink = Vec::new();
            let _ = (&mut self.reader)
                .take(len.min(1 << 20))
                .read_to_end(&mut sink)
                .await;
        }
    }
}

/// Parses an HTTP/1.1 response head (status line and headers, up to the blank line).
pub fn parse_response_head(head: &[u8]) -> Result<(u16, HeaderMap), String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = HeaderMap::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        let name = axum::http::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("bad header name {name:?}"))?;
        headers.append(name, header_value(value.trim()));
    }
    Ok((status, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_heads_parse() {
        let (s, h) = parse_response_head(
            b"HTTP/1.1 100 Continue\r\nX-Obj-Metadata-Footer: yes\r\nX-Obj-Multiphase-Commit: yes\r\n\r\n",
        )
        .unwrap();
        assert_eq!(s, 100);
        assert_eq!(h["x-obj-multiphase-commit"], "yes");
        assert!(parse_response_head(b"garbage\r\n\r\n").is_err());
    }
}
