//! Serving a router: logging setup, binding, graceful shutdown.
//!
//! Logs are structured `tracing` events on stderr (JSON when `log_format = json`), at the
//! level of Swift's `log_level` (`DEBUG`, `INFO`, `WARNING`, `ERROR`). On SIGTERM or
//! SIGINT the listener closes and in-flight requests get `graceful_shutdown_timeout`
//! seconds (default 30) to finish before the process exits.

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

/// Serves `router` on `addr` until a shutdown signal, then drains for at most `drain`.
pub async fn serve(
    name: &str,
    addr: SocketAddr,
    router: Router,
    drain: Duration,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot bind {addr}: {e}"))
    })?;
    tracing::info!(server = name, %addr, "listening");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    let mut server = server;
    tokio::select! {
        res = &mut server => {
            return res.map_err(std::io::Error::other)?;
        }
        _ = rx => {
            tracing::info!(server = name, "shutting down; draining in-flight requests");
        }
    }
    match tokio::time::timeout(drain, server).await {
        Ok(res) => res.map_err(std::io::Error::other)?,
        Err(_) => {
            tracing::warn!(server = name, "drain timeout; exiting with requests in flight");
            Ok(())
        }
    }
}
