//! Serving a router: logging setup, binding, graceful shutdown.
//!
//! Logs are structured `tracing` events on stderr (JSON when `log_format = json`), at the
//! level of Swift's `log_level` (`DEBUG`, `INFO`, `WARNING`, `ERROR`). On SIGTERM or
//! SIGINT the listener closes and in-flight requests get `graceful_shutdown_timeout`
//! seconds (default 30) to finish before the process exits. Each connection is served by
//! hyper's HTTP/1.1 server with a header read timeout (`client_timeout`), so a client
//! that trickles its request head cannot hold a connection forever; body reads are
//! bounded by the handlers (`client_timeout` per chunk).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

/// Installs the global tracing subscriber (once; later calls are ignored).
pub fn init_logging(log_level: &str, json: bool) {
    let level = match log_level.trim().to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "CRITICAL" => "error",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RINGSMITH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Resolves when the process gets SIGTERM, SIGINT or SIGHUP (Swift's "graceful
/// shutdown" signal).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = hup.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

/// Resolves when a server listening on `listen_fd` should stop accepting: on a
/// shutdown signal, or on SIGUSR1 once a replacement process that inherited the socket
/// is ready (see [`crate::common::handoff`]). A failed replacement leaves this process
/// serving.
pub async fn stop_or_handoff(name: String, listen_fd: std::os::fd::RawFd) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        shutdown_signal().await;
        return;
    };
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = usr1.recv() => {
                tracing::info!(server = %name, "SIGUSR1: starting a replacement to hand the socket to");
                let started = tokio::task::spawn_blocking(move || {
                    crate::common::handoff::spawn_replacement(listen_fd)
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                match started {
                    Ok(pid) => {
                        tracing::info!(server = %name, replacement = pid, "replacement ready; handing over");
                        return;
                    }
                    Err(e) => tracing::error!(server = %name, error = %e, "reload failed; still serving"),
                }
            }
        }
    }
}

/// The most request headers a server accepts; more get 431, as in Swift, whose servers
/// allow `1.6 * (max_meta_count + 36 + extra_header_count)` = 201 with default constraints.
/// (hyper's default of 100 is below what a request with 90 metadata items can carry.)
pub const MAX_REQUEST_HEADERS: usize = 201;
/// A request line this long or longer gets 414 (Swift's `MAX_REQUEST_LINE`).
pub const MAX_REQUEST_LINE: usize = 8192;
/// A header line (`name: value\r\n`) this long or longer gets 400 (Swift's
/// `max_header_size`, eventlet's `MAX_HEADER_LINE`).
pub const MAX_HEADER_LINE: usize = 8192;
/// All header lines together past this size get 400 (eventlet's `MAX_TOTAL_HEADER_SIZE`).
pub const MAX_TOTAL_HEADER_SIZE: usize = 65536;

/// Swift's answer for a request head past its limits, or `None` when it is within them.
/// Line lengths count the separator `: ` and the CRLF, as they were on the wire.
pub fn head_limit_error(
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
) -> Option<axum::response::Response> {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    // "METHOD SP target SP HTTP/1.1 CRLF"
    let request_line = method.as_str().len() + 1 + uri.to_string().len() + 1 + 8 + 2;
    if request_line >= MAX_REQUEST_LINE {
        return Some(StatusCode::URI_TOO_LONG.into_response());
    }
    let mut total = 0usize;
    for (name, value) in headers {
        let line = name.as_str().len() + 2 + value.len() + 2;
        if line >= MAX_HEADER_LINE {
            return Some(
                (
                    StatusCode::BAD_REQUEST,
                    [("content-type", "text/plain")],
                    "Header Line Too Long",
                )
                    .into_response(),
            );
        }
        total += line;
    }
    if total > MAX_TOTAL_HEADER_SIZE {
        return Some(
            (
                StatusCode::BAD_REQUEST,
                [("content-type", "text/plain")],
                "Headers Too Large",
            )
                .into_response(),
        );
    }
    None
}

/// `router` behind [`head_limit_error`].
pub fn with_head_limits(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(
        |req: axum::extract::Request, next: axum::middleware::Next| async move {
            match head_limit_error(req.method(), req.uri(), req.headers()) {
                Some(resp) => resp,
                None => next.run(req).await,
            }
        },
    ))
}

/// Timeouts of the connection loop.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// Time a client has to send a complete request head (slowloris guard).
    pub header_read_timeout: Duration,
    /// Time in-flight requests get to finish after SIGTERM/SIGINT.
    pub drain: Duration,
    /// Connections served at once; past it, new ones wait in the listen backlog.
    pub max_connections: usize,
}

/// Swift's `max_clients` (default 1024) is per worker process, and a Swift server runs
/// `workers` of them (`auto`, the default, meaning one per core); one Ringsmith process
/// does the work of all of them, so it serves `max_clients` × workers connections at once.
pub fn connection_cap(section: &ringsmith::swift::conf::Section) -> Result<usize, String> {
    let per_worker: usize = section
        .parse_or("max_clients", 1024usize)
        .map_err(|e| e.to_string())?;
    if per_worker == 0 {
        return Err("max_clients must be at least 1".into());
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = match section.str_or("workers", "auto").trim() {
        "auto" => cores,
        w => match w.parse::<usize>() {
            Ok(0) => 1,
            Ok(n) => n,
            Err(_) => return Err(format!("workers: {w:?} is neither a number nor auto")),
        },
    };
    Ok(per_worker.saturating_mul(workers))
}

/// Serves `router` on `addr` (or the socket inherited from the process this one
/// replaces) until a shutdown signal or a handoff, then stops accepting, asks every
/// connection to finish its current request, and waits at most `limits.drain`.
pub async fn serve(
    name: &str,
    addr: SocketAddr,
    router: Router,
    limits: ServeLimits,
) -> std::io::Result<()> {
    let listener = crate::common::handoff::listener(addr)?;
    let listen_fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    let listener = TcpListener::from_std(listener)?;
    tracing::info!(server = name, %addr, "listening");
    crate::common::handoff::notify_ready();
    let stop = stop_or_handoff(name.to_string(), listen_fd);
    serve_listener(name, listener, router, limits, stop).await
}

/// [`serve`] on an already bound listener, stopping when `shutdown` resolves.
pub async fn serve_listener(
    name: &str,
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        // At the cap, stop accepting: the kernel's backlog holds new clients until a
        // connection ends (as Swift's green pool does), instead of memory and descriptors
        // growing with every client.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("semaphore never closed"),
            _ = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(server = name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let accepted_at = tokio::time::Instant::now();
                let _ = stream.set_nodelay(true);
                let stop = stop_rx.clone();
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read_timeout)
                    .max_headers(MAX_REQUEST_HEADERS)
                    // Swift's servers send `X-Object-Meta-Color`, and clients that keep
                    // header names as sent (Python's http.client) see the difference.
                    .title_case_headers(true)
                    .keep_alive(true);
                // The client's address travels with each request (tempurl's IP ranges,
                // Swift's REMOTE_ADDR).
                let with_peer = move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    req
                };
                if name == "object-server" {
                    // EC's multiphase PUT needs interim responses hyper cannot send.
                    let (io, raw) = crate::common::continue_io::ContinueIo::new(stream);
                    let routed = tower::ServiceExt::map_request(
                        with_head_limits(router.clone().layer(axum::Extension(raw))),
                        with_peer,
                    );
                    let conn = builder
                        .serve_connection(TokioIo::new(io), TowerToHyperService::new(routed));
                    conns.spawn(async move {
                        drive(conn, stop, accepted_at).await;
                        drop(slot);
                    });
                } else {
                    // Clients (and Swift's tests) send UTF-8 names unquoted; the object
                    // server's connections come from proxies, which quote, and its
                    // multiphase PUT reads around hyper, which this framing cannot follow.
                    let io = crate::common::request_target_io::RequestTargetIo::new(stream);
                    let service = TowerToHyperService::new(tower::ServiceExt::map_request(
                        with_head_limits(router.clone()),
                        with_peer,
                    ));
                    let conn = builder.serve_connection(TokioIo::new(io), service);
                    conns.spawn(async move {
                        drive(conn, stop, accepted_at).await;
                        drop(slot);
                    });
                }
                while conns.try_join_next().is_some() {}
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(
        server = name,
        connections = conns.len(),
        "shutting down; draining in-flight requests"
    );
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.drain, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            server = name,
            "drain timeout; exiting with requests in flight"
        );
        conns.abort_all();
    }
    Ok(())
}

/// How long a connection accepted just before a shutdown may take to deliver its first
/// request. hyper closes a connection at once if no request has been parsed on it yet,
/// and a client that had already sent one (it cannot know the server was about to stop)
/// would lose it: during a seamless reload that was a failed request now and then.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// Runs one connection until it ends, or finishes its current request on shutdown.
async fn drive<I, S>(
    conn: hyper::server::conn::http1::Connection<I, S>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    accepted_at: tokio::time::Instant,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.changed() => {}
    }
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = tokio::time::sleep_until(accepted_at + FIRST_REQUEST_GRACE) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, Method, Uri};

    fn line_of(len: usize) -> HeaderMap {
        let mut h = HeaderMap::new();
        // "x-long: " + value + CRLF
        let value = "v".repeat(len - "x-long".len() - 4);
        h.insert("x-long", HeaderValue::from_str(&value).unwrap());
        h
    }

    #[test]
    fn header_lines_follow_swifts_limit() {
        let uri: Uri = "/v1/a".parse().unwrap();
        assert!(head_limit_error(&Method::GET, &uri, &line_of(8191)).is_none());
        let r = head_limit_error(&Method::GET, &uri, &line_of(8192)).unwrap();
        assert_eq!(r.status(), 400);
    }

    #[test]
    fn total_header_size_and_request_line() {
        let uri: Uri = "/v1/a".parse().unwrap();
        let mut h = HeaderMap::new();
        for i in 0..9 {
            let name = axum::http::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap();
            h.insert(name, HeaderValue::from_str(&"v".repeat(8000)).unwrap());
        }
        assert_eq!(
            head_limit_error(&Method::GET, &uri, &h).unwrap().status(),
            400
        );
        let fixed = "GET ".len() + " HTTP/1.1\r\n".len();
        let ok: Uri = format!("/{}", "a".repeat(8191 - fixed - 1))
            .parse()
            .unwrap();
        assert!(head_limit_error(&Method::GET, &ok, &HeaderMap::new()).is_none());
        let long: Uri = format!("/{}", "a".repeat(8192 - fixed - 1))
            .parse()
            .unwrap();
        assert_eq!(
            head_limit_error(&Method::GET, &long, &HeaderMap::new())
                .unwrap()
                .status(),
            414
        );
    }

    #[test]
    fn the_connection_cap_is_max_clients_per_worker() {
        let section = |text: &str| {
            let conf = ringsmith::swift::conf::Conf::parse(
                &format!("[app:x]\n{text}"),
                std::path::Path::new("x.conf"),
            )
            .unwrap();
            conf.section("app:x")
        };
        assert_eq!(connection_cap(&section("workers = 4")).unwrap(), 4096);
        assert_eq!(
            connection_cap(&section("workers = 2\nmax_clients = 10")).unwrap(),
            20
        );
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(connection_cap(&section("")).unwrap(), 1024 * cores);
        assert!(connection_cap(&section("max_clients = 0")).is_err());
        assert!(connection_cap(&section("workers = many")).is_err());
    }

    /// Past the cap a client waits in the backlog, and is served once a slot frees.
    #[tokio::test]
    async fn connections_past_the_cap_wait_for_a_free_slot() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let limits = ServeLimits {
            header_read_timeout: Duration::from_secs(30),
            drain: Duration::from_secs(1),
            max_connections: 1,
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_listener("test", listener, router, limits, async {
            let _ = stop_rx.await;
        }));
        let request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
        first
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        second.write_all(request).await.unwrap();
        let mut buf = vec![0u8; 256];
        let waited = tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await;
        assert!(
            waited.is_err(),
            "the second connection was served past the cap"
        );
        drop(first);
        let n = tokio::time::timeout(Duration::from_secs(10), second.read(&mut buf))
            .await
            .expect("served once the first connection closed")
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
