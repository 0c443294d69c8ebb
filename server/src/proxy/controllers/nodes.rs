//! How the proxy app talks to the storage nodes of one partition: a write fanned out to
//! every replica (handoffs for failures) and answered by quorum, a read walked node by
//! node, an `X-Newest` read asked of every primary.

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

    /// Sends the same small request to `replicas` nodes in parallel, each replacing a
    /// failed node with the next usable one (handoffs included). `per_node` adds the
    /// headers that differ by replica index (account/container update targets).
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
        let iter = Arc::new(Mutex::new(NodeIter::new(ring.clone(), part, limit, false)));
        let replicas = ring.part_nodes(part).len();
        let quorum = quorum_size(replicas);
        let mut tasks = FuturesUnordered::new();
        // The node each worker is waiting on, so stragglers can be counted against it.
        let waiting_on: Arc<Mutex<Vec<Option<Node>>>> = Arc::new(Mutex::new(vec![None; replicas]));
        for i in 0..replicas {
            let mut h = headers.clone();
            per_node(i, &mut h);
            let iter = iter.clone();
            let waiting_on = waiting_on.clone();
            let me = self.clone();
            let method = method.clone();
            let path = path.clone();
            let body = body.clone();
            tasks.push(async move {
                loop {
                    // Benched nodes only make up a quorum (as for an object PUT): past
                    // it, one would only hold the answer for post_quorum_timeout.
                    let node = {
                        let mut it = iter.lock().expect("node iter");
                        match it.next_usable(&me.limiter) {
                            None if i < quorum => it.next_benched(),
                            n => n,
                        }
                    };
                    let Some(node) = node else {
                        return Answer {
                            status: 503,
                            headers: HeaderMap::new(),
                            body: Bytes::new(),
                        };
                    };
                    let out = if body.is_empty() {
                        OutBody::Empty
                    } else {
                        OutBody::Bytes(body.clone())
                    };
                    waiting_on.lock().expect("waiting_on")[i] = Some(node.clone());
                    let result = me.transport.request(&node, &method, &path, &h, out).await;
                    waiting_on.lock().expect("waiting_on")[i] = None;
                    match result {
                        Err(e) => me.limiter.error(&node, &e.to_string()),
                        Ok(r) if r.status == StatusCode::INSUFFICIENT_STORAGE => {
                            me.limiter.limit(&node, "Insufficient Storage")
                        }
                        Ok(r) if r.status.is_server_error() => {
                            me.limiter.error(&node, &format!("status {}", r.status))
                        }
                        Ok(r) => {
                            me.limiter.success(&node);
                            let status = r.status.as_u16();
                            let headers = r.headers;
                            let body = read_small(r.body, 1 << 20).await.unwrap_or_default();
                            return Answer {
                                status,
                                headers,
                                body,
                            };
                        }
                    }
                }
            });
        }
        // Once a quorum agrees, the rest get only post_quorum_timeout (Swift's rule): a
        // hung replica must not hold every write for node_timeout.
        let mut out: Vec<Answer> = Vec::new();
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            if deadline.is_none() && has_quorum(&out, quorum) {
                deadline = Some(tokio::time::Instant::now() + self.post_quorum_timeout);
            }
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, tasks.next()).await {
                    Ok(n) => n,
                    Err(_) => break,
                },
                None => tasks.next().await,
            };
            match next {
                Some(a) => out.push(a),
                None => break,
            }
        }
        for node in waiting_on.lock().expect("waiting_on").iter().flatten() {
            self.limiter
                .error(node, "no answer within post_quorum_timeout after a quorum");
        }
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
        let mut asking_benched = false;
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
            } else {
                inflight.next().await
            };
            let Some((node, result)) = next else {
                continue;
            };
            match result {
                Err(e) => self.limiter.error(&node, &e.to_string()),
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
fn has_quorum(answers: &[Answer], quorum: usize) -> bool {
    (1..5u16).any(|class| answers.iter().filter(|a| a.status / 100 == class).count() >= quorum)
}
