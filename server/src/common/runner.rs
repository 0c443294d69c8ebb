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

/// Resolves when the process gets SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

/// Timeouts of the connection loop.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// Time a client has to send a complete request head (slowloris guard).
    pub header_read_timeout: Duration,
    /// Time in-flight requests get to finish after SIGTERM/SIGINT.
    pub drain: Duration,
}

/// Serves `router` on `addr` until a shutdown signal, then stops accepting, asks every
/// connection to finish its current request, and waits at most `limits.drain`.
pub async fn serve(
    name: &str,
    addr: SocketAddr,
    router: Router,
    limits: ServeLimits,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
    tracing::info!(server = name, %addr, "listening");
    serve_listener(name, listener, router, limits, shutdown_signal()).await
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
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(server = name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone());
                let mut stop = stop_rx.clone();
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read_timeout)
                    .keep_alive(true);
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                conns.spawn(async move {
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
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
