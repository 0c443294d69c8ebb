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
        let mut tasks = FuturesUnordered::new();
        for i in 0..replicas {
            let mut h = headers.clone();
            per_node(i, &mut h);
            let iter = iter.clone();
            let me = self.clone();
            let method = method.clone();
            let path = path.clone();
            let body = body.clone();
            tasks.push(async move {
                loop {
                    let node = iter.lock().expect("node iter").next_usable(&me.limiter);
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
                    match me.transport.request(&node, &method, &path, &h, out).await {
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
        let mut out = Vec::new();
        while let Some(a) = tasks.next().await {
            out.push(a);
        }
        out
    }

    /// Reads from the nodes of a partition in turn until one gives a usable answer.
    /// 404s go on to the next node (a replica may be missing), as do errors.
    pub(super) async fn read_one(
        self: &Arc<Self>,
        ring: Arc<Ring>,
        part: usize,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> BackendResponse {
        let limit = self.request_node_limit(&ring);
        let mut iter = NodeIter::new(ring, part, limit, true);
        let mut not_found: Option<BackendResponse> = None;
        while let Some(node) = iter.next_usable(&self.limiter) {
            match self
                .transport
                .request(&node, method, path, headers, OutBody::Empty)
                .await
            {
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
                    not_found = Some(r);
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
        let nodes = ring.part_nodes(part);
        let mut tasks = FuturesUnordered::new();
        for node in nodes {
            let me = self.clone();
            let (method, path, headers) = (method.clone(), path.to_string(), headers.clone());
            tasks.push(async move {
                if me.limiter.is_limited(&node) {
                    return None;
                }
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
        let mut best: Option<(f64, BackendResponse)> = None;
        let mut fallback: Option<BackendResponse> = None;
        while let Some(r) = tasks.next().await {
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
