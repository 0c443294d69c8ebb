//! PACO: the object server inside the proxy process.
//!
//! The 2015 swift-specs proposal "PACO Single Process deployments" observed that when the
//! proxy, account, container and object services share a node — typical for one-replica
//! rings over third-party storage (GlusterFS, GPFS), where the storage system provides the
//! durability — the proxy-to-object HTTP hop is pure overhead. Swift never merged it; its
//! open questions were how to load the object app inside the proxy and how to handle
//! several policies.
//!
//! Here both are straightforward: the object server is an axum `Router`, a
//! `tower::Service`, so the proxy builds one from the object server's own config and calls
//! it with `oneshot` — the same request, headers and streaming body it would have sent over
//! the socket, minus the socket, the HTTP encoding and the loopback round trip. Policies
//! need nothing special because the policy index travels in the same
//! `X-Backend-Storage-Policy-Index` header. A request goes in-process when the ring node's
//! `ip:port` is one the object config says this process serves (its `bind_ip`/`bind_port`),
//! so the ring stays the single source of truth: a node elsewhere in the ring is still
//! reached over HTTP, and a ring without local nodes makes this a no-op.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request};
use tower::ServiceExt;

use super::backend::{BackendError, BackendResponse, DirectNodes};
use super::ring::Node;
use super::StartError;

#[derive(Clone)]
pub struct InProcess {
    service: axum::Router,
    /// `(ip, port)` pairs this process answers for.
    local: Arc<HashSet<(String, u16)>>,
}

impl InProcess {
    pub fn new(service: axum::Router, local: HashSet<(String, u16)>) -> InProcess {
        InProcess {
            service,
            local: Arc::new(local),
        }
    }

    /// Builds the object server from its config file, as `ringsmith-server object -c`
    /// would, without binding its port.
    pub fn load(object_conf: &Path) -> Result<InProcess, StartError> {
        let conf = ringsmith::swift::conf::Conf::load(object_conf)?;
        let sec = conf.section("app:object-server");
        let ip = sec.str_or("bind_ip", "127.0.0.1");
        let port: u16 = sec.parse_or("bind_port", 6200u16)?;
        let service = object_service(&conf)?;
        let mut local = HashSet::new();
        local.insert((ip, port));
        Ok(InProcess::new(service, local))
    }

    async fn call_router(
        &self,
        node: &Node,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<BackendResponse, BackendError> {
        let uri = format!("/{}{}", node.device, path);
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(body)
            .map_err(|e| BackendError::Other(e.to_string()))?;
        *req.headers_mut() = headers.clone();
        let resp = self
            .service
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| BackendError::Other(e.to_string()))?;
        let (parts, body) = resp.into_parts();
        Ok(BackendResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

impl DirectNodes for InProcess {
    fn serves(&self, node: &Node) -> bool {
        self.local.contains(&(node.ip.clone(), node.port))
    }

    fn call<'a>(
        &'a self,
        node: &'a Node,
        method: &'a Method,
        path: &'a str,
        headers: &'a HeaderMap,
        body: Body,
    ) -> futures_util::future::BoxFuture<'a, Result<BackendResponse, BackendError>> {
        Box::pin(self.call_router(node, method, path, headers, body))
    }
}

/// The object server's router for an object-server config: the same code and state
/// `ringsmith-server object` serves.
fn object_service(conf: &ringsmith::swift::conf::Conf) -> Result<axum::Router, StartError> {
    let cfg = crate::object::ObjectConfig::from_conf(conf)
        .map_err(|e| StartError::Other(format!("{}: {e}", conf.path.display())))?;
    Ok(crate::object::object_router(
        crate::object::ObjectState::new(cfg),
    ))
}
