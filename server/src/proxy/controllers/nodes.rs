//! How the proxy app talks to the storage nodes of one partition: a write fanned out to
//! every replica (handoffs for failures) and answered by quorum, a read walked node by
//! node, an `X-Newest` read asked of every primary.

use super::write_slots::{fill_slots_until, Attempt};
use super::*;

/// The result of a write to one node: status, headers, (small) body.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
}

impl Proxy {
    pub(super) fn request_node_limit(&self, ring: &Ring) -> usize {
        ring.replica_count() * self.node_count_factor
    }

    /// Sends the same small request to `replicas` nodes in parallel, one slot each: a
    /// slot whose node fails goes to the next usable one (handoffs included), and one
    /// whose node stays silent past `concurrency_timeout` asks the next one too (see
    /// `write_slots`). `per_node` adds the headers that differ by slot (account/container
    /// update targets). Once a quorum agrees, stragglers get a hedge delay and
    /// `post_quorum_timeout` more.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn make_requests(
        self: &Arc<Self>,
        ring: Arc<Ring>,
        part: usize,
        method: Method,
        path: String,
        headers: HeaderMap,
        body: Bytes,
        per_node: impl Fn(usize, &mut HeaderMap),
    ) -> Vec<Answer> {
        let limit = self.request_node_limit(&ring);
        let iter = NodeIter::new(ring.clone(), part, limit, false);
        let replicas = ring.part_nodes(part).len();
        let quorum = quorum_size(replicas);
        let slot_headers: Arc<Vec<HeaderMap>> = Arc::new(
            (0..replicas)
                .map(|i| {
                    let mut h = headers.clone();
                    per_node(i, &mut h);
                    h
                })
                .collect(),
        );
        let attempt = {
            let me = self.clone();
            move |slot: usize, node: Node| {
                let (me, method, path, body, slot_headers) = (
                    me.clone(),
                    method.clone(),
                    path.clone(),
                    body.clone(),
                    slot_headers.clone(),
                );
                async move {
                    let out = if body.is_empty() {
                        OutBody::Empty
                    } else {
                        OutBody::Bytes(body)
                    };
                    let result = me
                        .transport
                        .request(&node, &method, &path, &slot_headers[slot], out)
                        .await;
                    match result {
                        Err(e) => {
                            me.limiter.failed(&node, &e);
                            Attempt::Next
                        }
                        Ok(r) if r.status == StatusCode::INSUFFICIENT_STORAGE => {
                            me.limiter.limit(&node, "Insufficient Storage");
                            Attempt::Next
                        }
                        Ok(r) if r.status.is_server_error() => {
                            me.limiter.error(&node, &format!("status {}", r.status));
                            Attempt::Next
                        }
                        Ok(r) => {
                            me.limiter.success(&node);
                            let status = r.status.as_u16();
                            let headers = r.headers;
                            let body = read_small(r.body, 1 << 20).await.unwrap_or_default();
                            Attempt::Ready(Answer {
                                status,
                                headers,
                                body,
                            })
                        }
                    }
                }
            }
        };
        let enough = |ready: &[(usize, Answer)]| {
            let statuses: Vec<u16> = ready.iter().map(|(_, a)| a.status).collect();
            has_quorum(&statuses, quorum)
        };
        let (ready, _) = fill_slots_until(self, iter, replicas, enough, attempt).await;
        let mut out: Vec<Answer> = ready.into_iter().map(|(_, a)| a).collect();
        while out.len() < replicas {
            out.push(Answer {
                status: 503,
                headers: HeaderMap::new(),
                body: Bytes::new(),
            });
        }
        out
    }

    /// Reads from the nodes of a partition in turn until one gives a usable answer.
    /// 404s go on to the next node (a replica may be missing), as do errors. With
    /// `concurrent_gets`, a node that has not answered within `concurrency_timeout` gets
    /// company: the next node is asked too (up to one per replica) and the first usable
    /// answer wins, so a hung node costs a read `concurrency_timeout`, not `node_timeout`.
    pub(super) async fn read_one(
        self: &Arc<Self>,
        ring: Arc<Ring>,
        part: usize,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> BackendResponse {
        let limit = self.request_node_limit(&ring);
        let concurrency = if self.concurrent_gets {
            ring.replica_count().max(1)
        } else {
            1
        };
        let mut iter = NodeIter::new(ring, part, limit, true);
        let quorum = quorum_size(iter.primary_count);
        let mut not_found: Option<BackendResponse> = None;
        let mut primary_404s = 0usize;
        // 404s that are knowledge, not absence: from a primary, or a tombstone (a
        // handoff's stands in for a primary that missed the DELETE).
        let mut settled_404s = 0usize;
        let mut asking_benched = false;
        // Once a quorum of settled 404s is in, benched nodes are asked only briefly:
        // an alive one (benched for an old error) can still show a newer write, a hung
        // one must not add its node_timeout to a 404 already known.
        let mut benched_deadline: Option<tokio::time::Instant> = None;
        let mut inflight = FuturesUnordered::new();
        let mut exhausted = false;
        let attempt = |node: Node| {
            let me = self.clone();
            let (method, path, headers) = (method.clone(), path.to_string(), headers.clone());
            async move {
                let r = me
                    .transport
                    .request(&node, &method, &path, &headers, OutBody::Empty)
                    .await;
                (node, r)
            }
        };
        loop {
            if inflight.is_empty() {
                // Benched nodes are the last resort, unless a quorum of primaries has
                // already said 404: then a hung benched one would only add its
                // node_timeout to the same answer. (With fewer primary 404s, the benched
                // ones may be the only holders of an acknowledged write.) They are asked
                // all at once, so one that is hung does not hold up one that is not.
                match iter.next_usable(&self.limiter) {
                    Some(n) => inflight.push(attempt(n)),
                    None => {
                        if primary_404s < quorum {
                            while let Some(n) = iter.next_benched() {
                                inflight.push(attempt(n));
                                asking_benched = true;
                            }
                            if settled_404s >= quorum {
                                benched_deadline =
                                    Some(tokio::time::Instant::now() + self.concurrency_timeout);
                            }
                        }
                        if inflight.is_empty() {
                            break;
                        }
                        exhausted = true;
                    }
                }
            }
            let next = if !exhausted && inflight.len() < concurrency {
                match tokio::time::timeout(self.concurrency_timeout, inflight.next()).await {
                    Ok(n) => n,
                    Err(_) => {
                        match iter.next_usable(&self.limiter) {
                            Some(n) => inflight.push(attempt(n)),
                            None => exhausted = true,
                        }
                        continue;
                    }
                }
            } else if let Some(deadline) = benched_deadline {
                match tokio::time::timeout_at(deadline, inflight.next()).await {
                    Ok(n) => n,
                    Err(_) => break,
                }
            } else {
                inflight.next().await
            };
            let Some((node, result)) = next else {
                continue;
            };
            match result {
                Err(e) => self.limiter.failed(&node, &e),
                Ok(r) if r.status == StatusCode::INSUFFICIENT_STORAGE => {
                    self.limiter.limit(&node, "Insufficient Storage")
                }
                Ok(r) if r.status.is_server_error() => {
                    self.limiter.error(&node, &format!("status {}", r.status))
                }
                Ok(r) if r.status == StatusCode::NOT_FOUND => {
                    // A replica may be missing here and present elsewhere: keep looking.
                    self.limiter.success(&node);
                    primary_404s += usize::from(node.index.is_some());
                    settled_404s += usize::from(
                        node.index.is_some() || r.headers.contains_key("x-backend-timestamp"),
                    );
                    not_found = Some(r);
                    if asking_benched && primary_404s >= quorum {
                        break;
                    }
                }
                Ok(r) => {
                    self.limiter.success(&node);
                    return r;
                }
            }
        }
        not_found.unwrap_or(BackendResponse {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: HeaderMap::new(),
            body: Body::from("Service Unavailable\n"),
        })
    }

    /// `X-Newest`: ask every primary, keep the newest successful answer.
    pub(super) async fn read_newest(
        self: &Arc<Self>,
        ring: Arc<Ring>,
        part: usize,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> BackendResponse {
        // Benched primaries are asked only when no other primary has a successful answer
        // and fewer than a quorum of them said 404: "503" or a wrong 404 is worse than a
        // slow answer, but a hung node would only add its node_timeout to a settled 404.
        let (benched, usable): (Vec<Node>, Vec<Node>) = ring
            .part_nodes(part)
            .into_iter()
            .partition(|n| self.limiter.is_limited(n));
        let ask = |nodes: Vec<Node>| {
            let tasks = FuturesUnordered::new();
            for node in nodes {
                let me = self.clone();
                let (method, path, headers) = (method.clone(), path.to_string(), headers.clone());
                tasks.push(async move {
                    match me
                        .transport
                        .request(&node, &method, &path, &headers, OutBody::Empty)
                        .await
                    {
                        Ok(r) if r.status.is_server_error() => {
                            me.limiter.error(&node, &format!("status {}", r.status));
                            None
                        }
                        Ok(r) => Some(r),
                        Err(e) => {
                            me.limiter.error(&node, &e.to_string());
                            None
                        }
                    }
                });
            }
            tasks
        };
        let quorum = quorum_size(ring.part_nodes(part).len());
        let mut not_found = 0usize;
        let mut tasks = ask(usable);
        let mut benched = Some(benched);
        let mut best: Option<(f64, BackendResponse)> = None;
        let mut fallback: Option<BackendResponse> = None;
        loop {
            let Some(r) = tasks.next().await else {
                match benched.take() {
                    Some(b) if best.is_none() && not_found < quorum && !b.is_empty() => {
                        tasks = ask(b);
                        continue;
                    }
                    _ => break,
                }
            };
            let Some(r) = r else { continue };
            if r.status.is_success() {
                let ts = ["x-backend-timestamp", "x-timestamp", "x-put-timestamp"]
                    .iter()
                    .find_map(|k| r.header(k).and_then(|v| v.split('_').next()?.parse().ok()))
                    .unwrap_or(0.0f64);
                if best.as_ref().is_none_or(|(b, _)| ts > *b) {
                    best = Some((ts, r));
                }
            } else {
                not_found += usize::from(r.status == StatusCode::NOT_FOUND);
                fallback = Some(r);
            }
        }
        if let Some((_, r)) = best {
            return r;
        }
        fallback.unwrap_or(BackendResponse {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: HeaderMap::new(),
            body: Body::from("Service Unavailable\n"),
        })
    }
}

/// Whether a quorum of answers fall in one status class (2xx, 3xx or 4xx), Swift's
/// `have_quorum`: then the write's outcome is decided.
/// Whether `quorum` of the statuses are of one class (2xx, 3xx, 4xx).
fn has_quorum(statuses: &[u16], quorum: usize) -> bool {
    (1..5u16).any(|class| statuses.iter().filter(|s| *s / 100 == class).count() >= quorum)
}
