//! A connection wrapper for the object server's multiphase PUT.
//!
//! Swift's EC PUT needs two things hyper's server cannot do: headers on the
//! `100 Continue` interim response (`X-Obj-Multiphase-Commit: yes`,
//! `X-Obj-Metadata-Footer: yes`, which tell the proxy the server reads MIME footers and
//! commits in two phases), and a *second* `100 Continue` sent in the middle of the
//! request body, after the data and footer parts, to say "fragment stored, send the
//! commit". So the object server's connections go through [`ContinueIo`]: it rewrites
//! hyper's bare `100 Continue` to carry those headers, and hands handlers a
//! [`RawConnection`] (a request extension) through which they write the second interim
//! response directly. Hyper writes nothing between its first `100 Continue` and the
//! final response head, so the raw write cannot interleave with its output.
//!
//! Swift's proxy also ends the chunked body (`0\r\n\r\n`) after the footer and then,
//! after that second `100 Continue`, sends the commit part as *more chunks* on the same
//! connection: hyper would read those as a new request. So the handler takes the
//! reads over ([`RawConnection::divert_reads`]) for the commit phase.
//!
//! The headers go on every `100 Continue`, asked for or not: clients that did not ask
//! (replicated PUTs) ignore interim headers. docs/differences.md records this.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

const BARE_CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
const CONTINUE_WITH_HEADERS: &[u8] =
    b"HTTP/1.1 100 Continue\r\nX-Obj-Multiphase-Commit: yes\r\nX-Obj-Metadata-Footer: yes\r\n\r\n";

/// The connection under hyper, for a handler's interim responses and for the body
/// bytes Swift's proxy sends after the chunked terminator (the commit phase).
#[derive(Clone)]
pub struct RawConnection {
    write: Arc<Mutex<OwnedWriteHalf>>,
    reads: Arc<SharedReads>,
}

/// The read half, which hyper reads unless a handler has taken it over.
struct SharedReads {
    half: Mutex<OwnedReadHalf>,
    diverted: AtomicBool,
    /// Hyper's task, parked while a handler reads; woken when it gives the reads back.
    parked: Mutex<Option<Waker>>,
}

/// Reads taken from hyper; given back when dropped.
pub struct DivertedReads {
    reads: Arc<SharedReads>,
}

impl DivertedReads {
    /// Reads raw bytes from the client; 0 at its end.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| {
            let mut half = self.reads.half.lock().unwrap_or_else(|p| p.into_inner());
            let mut rb = ReadBuf::new(buf);
            match Pin::new(&mut *half).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

impl Drop for DivertedReads {
    fn drop(&mut self) {
        self.reads.diverted.store(false, Ordering::SeqCst);
        if let Some(w) = self
            .reads
            .parked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            w.wake();
        }
    }
}

impl RawConnection {
    /// Takes the connection's reads from hyper. Only sound once hyper has read the whole
    /// request body and the client sends nothing before the handler's next interim
    /// response: then hyper has nothing buffered that the handler would miss.
    pub fn divert_reads(&self) -> DivertedReads {
        self.reads.diverted.store(true, Ordering::SeqCst);
        DivertedReads {
            reads: self.reads.clone(),
        }
    }

    /// Writes `HTTP/1.1 100 Continue` now, in the middle of reading the request body.
    pub async fn send_continue(&self) -> io::Result<()> {
        let mut written = 0;
        while written < BARE_CONTINUE.len() {
            let n = std::future::poll_fn(|cx| {
                let mut w = self.write.lock().unwrap_or_else(|p| p.into_inner());
                Pin::new(&mut *w).poll_write(cx, &BARE_CONTINUE[written..])
            })
            .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            written += n;
        }
        std::future::poll_fn(|cx| {
            let mut w = self.write.lock().unwrap_or_else(|p| p.into_inner());
            Pin::new(&mut *w).poll_flush(cx)
        })
        .await
    }
}

/// A TCP connection whose `100 Continue` responses carry the multiphase headers.
pub struct ContinueIo {
    reads: Arc<SharedReads>,
    write: Arc<Mutex<OwnedWriteHalf>>,
    /// Bytes of [`CONTINUE_WITH_HEADERS`] already written, while one is in progress.
    continue_progress: Option<usize>,
}

impl ContinueIo {
    pub fn new(stream: TcpStream) -> (ContinueIo, RawConnection) {
        let (read, write) = stream.into_split();
        let write = Arc::new(Mutex::new(write));
        let reads = Arc::new(SharedReads {
            half: Mutex::new(read),
            diverted: AtomicBool::new(false),
            parked: Mutex::new(None),
        });
        (
            ContinueIo {
                reads: reads.clone(),
                write: write.clone(),
                continue_progress: None,
            },
            RawConnection { write, reads },
        )
    }
}

impl AsyncRead for ContinueIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.reads.diverted.load(Ordering::SeqCst) {
            *self.reads.parked.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
            // Re-check: the handler may have given the reads back meanwhile.
            if self.reads.diverted.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
        let mut half = self.reads.half.lock().unwrap_or_else(|p| p.into_inner());
        Pin::new(&mut *half).poll_read(cx, buf)
    }
}

impl AsyncWrite for ContinueIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.continue_progress.is_none() && buf.starts_with(BARE_CONTINUE) {
            this.continue_progress = Some(0);
        }
        let mut w = this.write.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut done) = this.continue_progress else {
            return Pin::new(&mut *w).poll_write(cx, buf);
        };
        // Hyper retries with the same buffer after Pending, so progress is kept here
        // and the caller is told the bare response was consumed only when all is out.
        while done < CONTINUE_WITH_HEADERS.len() {
            match Pin::new(&mut *w).poll_write(cx, &CONTINUE_WITH_HEADERS[done..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    done += n;
                    this.continue_progress = Some(done);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        this.continue_progress = None;
        Poll::Ready(Ok(BARE_CONTINUE.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        Pin::new(&mut *w).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        Pin::new(&mut *w).poll_shutdown(cx)
    }
}
