//! The SSYNC request body as the receiver reads it: protocol lines, and the exact byte
//! counts of PUT subrequest bodies, each read bounded by `client_timeout`. A read that
//! failed poisons the input, so no later reader mistakes a half-read stream for data.

use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use futures_util::StreamExt;

pub struct SsyncInput {
    stream: BodyDataStream,
    buffer: Vec<u8>,
    /// No more data will come (the sender ended the body).
    ended: bool,
    failed: Option<String>,
    timeout: Duration,
    max_line: usize,
}

impl SsyncInput {
    pub fn new(body: Body, timeout: Duration, max_line: usize) -> SsyncInput {
        SsyncInput {
            stream: body.into_data_stream(),
            buffer: Vec::new(),
            ended: false,
            failed: None,
            timeout,
            max_line,
        }
    }

    /// Pulls the next piece of body into the buffer; false at the end.
    async fn fill(&mut self, context: &str) -> Result<bool, String> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.ended {
            return Ok(false);
        }
        let next = tokio::time::timeout(self.timeout, self.stream.next()).await;
        let err = match next {
            Ok(Some(Ok(bytes))) => {
                self.buffer.extend_from_slice(&bytes);
                return Ok(true);
            }
            Ok(None) => {
                self.ended = true;
                return Ok(false);
            }
            Ok(Some(Err(e))) => format!("{context}: {e}"),
            Err(_) => format!("{} seconds: {context}", self.timeout.as_secs_f64()),
        };
        self.failed = Some(err.clone());
        Err(err)
    }

    /// The next line with its `\n` (at most `max_line` bytes, as Swift's `readline(size)`),
    /// or an empty line when the sender has hung up.
    pub async fn read_line(&mut self, context: &str) -> Result<Vec<u8>, String> {
        loop {
            if let Some(i) = self.buffer.iter().position(|&b| b == b'\n') {
                if i < self.max_line {
                    return Ok(self.buffer.drain(..=i).collect());
                }
            }
            if self.buffer.len() >= self.max_line {
                let e = format!("{context}: missing newline");
                self.failed = Some(e.clone());
                return Err(e);
            }
            if !self.fill(context).await? {
                if self.buffer.is_empty() {
                    return Ok(Vec::new());
                }
                let e = format!("{context}: missing newline");
                self.failed = Some(e.clone());
                return Err(e);
            }
        }
    }

    /// Up to `limit` (> 0) bytes of the body; an error if it ends first.
    pub async fn read_some(&mut self, limit: usize, context: &str) -> Result<Bytes, String> {
        if self.buffer.is_empty() && !self.fill(context).await? {
            let e = format!("Early termination for {context}");
            self.failed = Some(e.clone());
            return Err(e);
        }
        let n = limit.min(self.buffer.len());
        Ok(Bytes::from(self.buffer.drain(..n).collect::<Vec<u8>>()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(pieces: Vec<&'static [u8]>) -> SsyncInput {
        let stream = futures_util::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
        SsyncInput::new(Body::from_stream(stream), Duration::from_secs(1), 64)
    }

    #[tokio::test]
    async fn lines_and_counted_bytes_across_pieces() {
        let mut i = input(vec![b":MISSING", b"_CHECK: START\r\nab", b"cdef\r\n"]);
        assert_eq!(
            i.read_line("t").await.unwrap(),
            b":MISSING_CHECK: START\r\n"
        );
        // What is buffered comes first; then the next piece.
        assert_eq!(&i.read_some(3, "t").await.unwrap()[..], b"ab");
        assert_eq!(&i.read_some(1, "t").await.unwrap()[..], b"c");
        assert_eq!(i.read_line("t").await.unwrap(), b"def\r\n");
        assert_eq!(i.read_line("t").await.unwrap(), b"");
        assert!(i
            .read_some(1, "body")
            .await
            .unwrap_err()
            .contains("Early termination"));
        // Poisoned: the failure repeats.
        assert!(i.read_line("t").await.is_err());
    }

    #[tokio::test]
    async fn overlong_and_unterminated_lines_fail() {
        let mut i = input(vec![&[b'x'; 100]]);
        assert!(i
            .read_line("t")
            .await
            .unwrap_err()
            .contains("missing newline"));
        let mut i = input(vec![b"no newline"]);
        assert!(i.read_line("t").await.is_err());
    }
}
