//! Talking to the storage nodes: node iteration with handoffs, error limiting, quorum.
//!
//! Every backend request goes through [`NodeIter`]: the primaries of a partition in a
//! shuffled order (so load spreads over replicas), then handoffs in ring order, at most
//! `request_node_count` in all, skipping nodes the [`ErrorLimiter`] has benched. A node is
//! benched at once for `507 Insufficient Storage` and after `error_suppression_limit`
//! errors (connection failures, timeouts, 5xx) inside `error_suppression_interval`; it
//! comes back by itself when the interval passes, like Swift's.
//!
//! Writes fan out to as many nodes as there are replicas, each worker taking the next
//! usable node from a shared iterator when its own fails; the client's answer is
//! `best_response`: the highest status of the first class (2xx, 3xx, 4xx) that a quorum
//! (`(n + 1) / 2`) of nodes agree on, else 503.
//!
//! The [`Transport`] decides how a request reaches a node: HTTP (pooled keep-alive
//! connections, unlike Swift's one connection per request; object PUTs, which need
//! `100 Continue`, open their own in [`super::continue_put`]) or, for the nodes a
//! [`DirectNodes`] serves, a direct call: for PACO deployments the object server code in
//! this process ([`super::paco`]), in unit tests a scripted fake. The trait lives here and
//! its implementations elsewhere, so this module depends on none of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use rand::seq::SliceRandom;

use super::ring::{Node, Ring};

pub fn quorum_size(n: usize) -> usize {
    n.div_ceil(2).max(1)
}

/// Per-node error accounting shared by all requests of the proxy.
pub struct ErrorLimiter {
    limit: u32,
    interval: Duration,
    nodes: Mutex<HashMap<String, NodeErrors>>,
    /// Nodes that let a write's request head go unanswered past `concurrency_timeout`,
    /// with when. Until they answer something again (or the interval passes) they are
    /// offered writes only after every other node: a hung server would otherwise cost
    /// each write a hedge until its timeouts have benched it.
    silent: Mutex<HashMap<String, Instant>>,
}

struct NodeErrors {
    count: u32,
    last: Instant,
    /// Benched until this instant.
    until: Option<Instant>,
}

impl ErrorLimiter {
    pub fn new(limit: u32, interval: Duration) -> Self {
        ErrorLimiter {
            limit,
            interval,
            nodes: Mutex::new(HashMap::new()),
            silent: Mutex::new(HashMap::new()),
        }
    }

    /// Notes that `node` has not answered a request head in time.
    pub fn silent(&self, node: &Node) {
        let mut m = self.silent.lock().expect("error limiter lock");
        if m.insert(node.key(), Instant::now()).is_none() {
            tracing::info!(node = %node.key(), "backend silent: offered writes last");
        }
    }

    /// Whether `node` was found silent and has not answered since.
    pub fn is_silent(&self, node: &Node) -> bool {
        let mut m = self.silent.lock().expect("error limiter lock");
        match m.get(&node.key()) {
            Some(t) if t.elapsed() <= self.interval => true,
            Some(_) => {
                m.remove(&node.key());
                false
            }
            None => false,
        }
    }

    /// Counts a failed request: an error, and for a node that could not be reached or
    /// did not answer in time, silence too (it is offered writes last until it answers;
    /// a partitioned node would otherwise hold each write that meets it on a pooled
    /// connection for `node_timeout` until its errors bench it).
    pub fn failed(&self, node: &Node, e: &BackendError) {
        self.error(node, &e.to_string());
        if matches!(e, BackendError::Connect(_) | BackendError::Timeout) {
            self.silent(node);
        }
    }

    /// `node` answered (any answer at all): it is not silent.
    pub fn answered(&self, node: &Node) {
        let mut m = self.silent.lock().expect("error limiter lock");
        m.remove(&node.key());
    }

    pub fn is_limited(&self, node: &Node) -> bool {
        let mut m = self.nodes.lock().expect("error limiter lock");
        let Some(e) = m.get_mut(&node.key()) else {
            return false;
        };
        match e.until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                m.remove(&node.key());
                false
            }
            None => false,
        }
    }

    /// Counts one error; benches the node once it has `limit` of them in the interval.
    pub fn error(&self, node: &Node, why: &str) {
        let mut m = self.nodes.lock().expect("error limiter lock");
        let now = Instant::now();
        let e = m.entry(node.key()).or_insert(NodeErrors {
            count: 0,
            last: now,
            until: None,
        });
        if now.duration_since(e.last) > self.interval {
            e.count = 0;
        }
        e.count += 1;
        e.last = now;
        if e.count > self.limit && e.until.is_none() {
            e.until = Some(now + self.interval);
            tracing::warn!(node = %node.key(), error = why, interval = ?self.interval,
                "node error limited");
        } else {
            tracing::info!(node = %node.key(), error = why, "backend error");
        }
    }

    /// Benches a node at once (507: its disk is gone).
    pub fn limit(&self, node: &Node, why: &str) {
        let mut m = self.nodes.lock().expect("error limiter lock");
        let now = Instant::now();
        m.insert(
            node.key(),
            NodeErrors {
                count: self.limit + 1,
                last: now,
                until: Some(now + self.interval),
            },
        );
        tracing::warn!(node = %node.key(), error = why, interval = ?self.interval,
            "node error limited");
    }

    /// Whether the node failed recently (benched or not).
    pub fn has_errors(&self, node: &Node) -> bool {
        let m = self.nodes.lock().expect("error limiter lock");
        m.get(&node.key())
            .is_some_and(|e| e.last.elapsed() <= self.interval)
    }

    pub fn success(&self, node: &Node) {
        self.answered(node);
        let mut m = self.nodes.lock().expect("error limiter lock");
        if m.get(&node.key()).is_some_and(|e| e.until.is_none()) {
            m.remove(&node.key());
        }
    }
}

/// Primaries (shuffled), then handoffs, skipping benched nodes, at most `limit` yielded.
pub struct NodeIter {
    primaries: std::vec::IntoIter<Node>,
    handoffs: Option<(Arc<Ring>, usize)>,
    handoff_list: Option<std::vec::IntoIter<Node>>,
    remaining: usize,
    pub primary_count: usize,
    /// Benched nodes passed over, kept as a last resort: a benched node may still be the
    /// only one holding the data, and "404" or "503" is a worse answer than a slow one.
    benched: Vec<Node>,
}

impl NodeIter {
    pub fn new(ring: Arc<Ring>, part: usize, limit: usize, shuffle: bool) -> NodeIter {
        let mut primaries = ring.part_nodes(part);
        if shuffle {
            primaries.shuffle(&mut rand::thread_rng());
        }
        let primary_count = primaries.len();
        NodeIter {
            primaries: primaries.into_iter(),
            handoffs: Some((ring, part)),
            handoff_list: None,
            remaining: limit,
            primary_count,
            benched: Vec::new(),
        }
    }

    /// A benched node this iterator passed over (primaries first), once the usable ones
    /// are spent.
    pub fn next_benched(&mut self) -> Option<Node> {
        if self.benched.is_empty() {
            None
        } else {
            Some(self.benched.remove(0))
        }
    }

    pub fn next_usable(&mut self, limiter: &ErrorLimiter) -> Option<Node> {
        while self.remaining > 0 {
            let node = match self.primaries.next() {
                Some(n) => n,
                None => {
                    if self.handoff_list.is_none() {
                        let (ring, part) = self.handoffs.take()?;
                        self.handoff_list = Some(ring.more_nodes(part).into_iter());
                    }
                    self.handoff_list.as_mut()?.next()?
                }
            };
            if limiter.is_limited(&node) || limiter.is_silent(&node) {
                self.benched.push(node);
                continue;
            }
            self.remaining -= 1;
            return Some(node);
        }
        None
    }
}

/// A backend's answer with its body still unread.
pub struct BackendResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
}

impl BackendResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A request body for a backend: none, bytes, or a stream.
pub enum OutBody {
    Empty,
    Bytes(bytes::Bytes),
    Stream(Body),
}

/// The most response headers the proxy accepts from a backend. Swift's servers send up to
/// `max_meta_count` (90) metadata items plus their system headers, and Swift's own client
/// allows `1.6 * (max_meta_count + 36 + extra_header_count)`; hyper's default of 100 made
/// any account or container with 90 metadata items unreachable. Generous on purpose: the
/// backends are ours, and refusing their answer turns a full-but-valid entity into a 503.
pub const BACKEND_MAX_RESPONSE_HEADERS: usize = 1024;

type HttpClient =
    hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Body>;

/// Nodes answered without HTTP: a call takes the same method, path, headers and
/// streaming body an HTTP request would carry, and gives the same answer or error.
pub trait DirectNodes: Send + Sync {
    /// Whether requests for `node` go to this instead of over HTTP.
    fn serves(&self, node: &Node) -> bool;

    /// One request to one node it serves. `path` is already percent-encoded and starts
    /// with `/` (the device is not part of it, as in [`Transport::request`]).
    fn call<'a>(
        &'a self,
        node: &'a Node,
        method: &'a Method,
        path: &'a str,
        headers: &'a HeaderMap,
        body: Body,
    ) -> futures_util::future::BoxFuture<'a, Result<BackendResponse, BackendError>>;
}

/// How requests reach nodes. The direct handler, when set, serves the nodes it says it
/// serves (PACO: the object devices of this process); every other node gets HTTP.
#[derive(Clone)]
pub struct Transport {
    client: HttpClient,
    /// How long a connection to a node may take to open (`conn_timeout`).
    pub conn_timeout: Duration,
    pub node_timeout: Duration,
    pub in_process: Option<Arc<dyn DirectNodes>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("timeout")]
    Timeout,
    #[error("{0}")]
    Other(String),
}

impl Transport {
    /// Pooled keep-alive HTTP/1.1 to the storage nodes. hyper-util's client (rather than
    /// reqwest) because it lets us raise the response header limit.
    pub fn new(conn_timeout: Duration, node_timeout: Duration) -> Transport {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_connect_timeout(Some(conn_timeout));
        connector.set_nodelay(true);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .pool_max_idle_per_host(64)
                .http1_max_headers(BACKEND_MAX_RESPONSE_HEADERS)
                .build(connector);
        Transport {
            client,
            conn_timeout,
            node_timeout,
            in_process: None,
        }
    }

    /// One request to one node. `path` is already percent-encoded and starts with `/`.
    pub async fn request(
        &self,
        node: &Node,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: OutBody,
    ) -> Result<BackendResponse, BackendError> {
        let body = match body {
            OutBody::Empty => Body::empty(),
            OutBody::Bytes(b) => Body::from(b),
            OutBody::Stream(s) => s,
        };
        if let Some(ip) = self.in_process.as_ref().filter(|ip| ip.serves(node)) {
            return ip.call(node, method, path, headers, body).await;
        }
        let url = format!("http://{}/{}{}", node.host(), node.device, path);
        let mut req = axum::http::Request::builder()
            .method(method.clone())
            .uri(url)
            .body(body)
            .map_err(|e| BackendError::Other(format!("bad backend request: {e}")))?;
        *req.headers_mut() = headers.clone();
        // The header phase gets node_timeout; each body chunk gets node_timeout too.
        let resp = match tokio::time::timeout(self.node_timeout, self.client.request(req)).await {
            Err(_) => return Err(BackendError::Timeout),
            Ok(Err(e)) if e.is_connect() => return Err(BackendError::Connect(error_chain(&e))),
            Ok(Err(e)) => return Err(BackendError::Other(error_chain(&e))),
            Ok(Ok(r)) => r,
        };
        let (parts, incoming) = resp.into_parts();
        Ok(BackendResponse {
            status: parts.status,
            headers: parts.headers,
            body: Body::from_stream(chunks_with_timeout(incoming, self.node_timeout)),
        })
    }
}

/// An error with its sources, so a log line says why ("message head is too large"), not
/// only "client error (SendRequest)".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The data frames of a backend body, each awaited at most `per_chunk`: a node that stops
/// sending mid-body must not hold the client's download forever.
fn chunks_with_timeout(
    body: hyper::body::Incoming,
    per_chunk: Duration,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send {
    use http_body_util::BodyExt;
    futures_util::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        loop {
            match tokio::time::timeout(per_chunk, body.frame()).await {
                Err(_) => {
                    let e =
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "backend read timeout");
                    return Some((Err(e), None));
                }
                Ok(None) => return None,
                Ok(Some(Err(e))) => {
                    return Some((Err(std::io::Error::other(e)), None));
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Some((Ok(data), Some(body)));
                    }
                    // Trailers: nothing to forward.
                }
            }
        }
    })
}

/// Swift's `best_response` selection: `(status, index into responses)`.
pub fn best_status(statuses: &[u16], quorum: usize) -> Option<(u16, usize)> {
    for hundred in [200u16, 300, 400] {
        let members: Vec<(usize, u16)> = statuses
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, s)| *s >= hundred && *s < hundred + 100)
            .collect();
        if members.len() >= quorum {
            let (idx, s) = members
                .iter()
                .copied()
                .max_by_key(|(_, s)| *s)
                .expect("non-empty");
            return Some((s, idx));
        }
    }
    None
}

pub fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    headers.insert(HeaderName::from_static(name), header_value(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_matches_swift() {
        assert_eq!(quorum_size(1), 1);
        assert_eq!(quorum_size(2), 1);
        assert_eq!(quorum_size(3), 2);
        assert_eq!(quorum_size(4), 2);
        assert_eq!(quorum_size(5), 3);
    }

    #[test]
    fn best_status_picks_first_class_with_quorum() {
        assert_eq!(best_status(&[201, 201, 503], 2).map(|x| x.0), Some(201));
        assert_eq!(best_status(&[201, 404, 503], 2), None);
        assert_eq!(best_status(&[404, 404, 201], 2).map(|x| x.0), Some(404));
        assert_eq!(best_status(&[204, 202, 503], 2).map(|x| x.0), Some(204));
    }

    #[test]
    fn limiter_benches_after_limit_and_on_507() {
        let l = ErrorLimiter::new(2, Duration::from_secs(60));
        let n = Node {
            id: 0,
            region: 1,
            zone: 1,
            ip: "127.0.0.1".into(),
            port: 1,
            device: "d1".into(),
            index: None,
        };
        l.error(&n, "x");
        l.error(&n, "x");
        assert!(!l.is_limited(&n));
        l.error(&n, "x");
        assert!(l.is_limited(&n));
        let mut m = n.clone();
        m.device = "d2".into();
        l.limit(&m, "507");
        assert!(l.is_limited(&m));
    }
}
