//! Object PUT: one node per replica, the body streamed to all of them at once, the answer
//! by quorum.

use super::object::{
    check_content_type, container_update_targets, expiry_headers, guess_content_type,
    transfer_coding, ObjTarget,
};
use super::write_slots::{fill_slots, Attempt};
use super::*;
use crate::proxy::continue_put::{ContinuePut, Handshake};

/// A backend request body fed chunk by chunk from the client-reading loop. Once `abort`
/// is set the body fails instead of ending: a replica the proxy gives up on must see an
/// error, never a clean (and, for a chunked upload, committable) end of a short body.
pub(super) struct ChanBody {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    abort: Arc<std::sync::atomic::AtomicBool>,
}

impl futures_util::Stream for ChanBody {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.abort.load(std::sync::atomic::Ordering::Acquire) {
            return Poll::Ready(Some(Err(std::io::Error::other(
                "upload abandoned by the proxy",
            ))));
        }
        self.rx.poll_recv(cx)
    }
}

/// A spawned backend request that is cancelled with the client's request.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The proxy's end of one replica's body.
struct Feed {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    abort: Arc<std::sync::atomic::AtomicBool>,
    node: Node,
}

impl Feed {
    fn abandon(&self) {
        self.abort.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Hands `chunk` to every live replica at once. Once a quorum has taken it, the others
/// get `post_quorum_timeout` more (`node_timeout` in all); a replica that has not taken
/// it by then is abandoned (its upload fails, its node counts an error) so one stalled
/// disk or host does not hold the upload. Gives the number still live.
async fn feed_chunk(
    proxy: &Proxy,
    feeds: &mut [Option<Feed>],
    chunk: &Bytes,
    quorum: usize,
) -> usize {
    let mut sends = FuturesUnordered::new();
    for (i, f) in feeds.iter().enumerate() {
        if let Some(f) = f {
            let (tx, chunk) = (f.tx.clone(), chunk.clone());
            sends.push(async move { (i, tx.send(Ok(chunk)).await.is_ok()) });
        }
    }
    let all_by = tokio::time::Instant::now() + proxy.transport.node_timeout;
    let mut quorum_by: Option<tokio::time::Instant> = None;
    let mut taken = vec![false; feeds.len()];
    let mut count = 0;
    loop {
        let until = quorum_by.map_or(all_by, |q| q.min(all_by));
        match tokio::time::timeout_at(until, sends.next()).await {
            Ok(Some((i, ok))) => {
                taken[i] = ok;
                count += usize::from(ok);
                if quorum_by.is_none() && count >= quorum {
                    quorum_by = Some(tokio::time::Instant::now() + proxy.post_quorum_timeout);
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    for (i, slot) in feeds.iter_mut().enumerate() {
        if !taken[i] {
            if let Some(f) = slot.take() {
                f.abandon();
                proxy
                    .limiter
                    .error(&f.node, "stalled taking an upload's body");
            }
        }
    }
    count
}

/// What both kinds of object PUT start from: the validated request as backend headers,
/// the declared length (`None` for a chunked upload) and the write's timestamp.
pub(super) struct PreparedPut {
    pub(super) headers: HeaderMap,
    pub(super) length: Option<u64>,
    pub(super) timestamp: String,
}

/// The checks and headers every object PUT shares, replicated or erasure-coded.
fn prepare_put(ctx: &Ctx, target: &ObjTarget, object: &str) -> Result<PreparedPut, Response> {
    let proxy = &ctx.proxy;
    check_meta(ctx, MetaTarget::Object)?;
    check_content_type(ctx)?;
    if let Some(inm) = ctx.h("if-none-match") {
        // A conditional PUT can only mean "create if absent".
        if !inm.split(',').any(|t| t.trim() == "*") {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "If-None-Match only supports *",
            ));
        }
    }
    let te_chunked = match ctx.h("transfer-encoding").map(transfer_coding) {
        None => None,
        Some(Ok(chunked)) => Some(chunked),
        Some(Err(resp)) => return Err(resp),
    };
    let length = match ctx.h("content-length") {
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return Err(text(StatusCode::BAD_REQUEST, "Invalid Content-Length")),
        },
        None if te_chunked == Some(true) => None,
        None => return Err(status_text(StatusCode::LENGTH_REQUIRED)),
    };
    if length.is_some_and(|l| l > proxy.constraints.max_file_size) {
        return Err(status_text(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let timestamp = ctx.write_timestamp();
    let mut h = ctx.backend_headers(Some(&timestamp));
    expiry_headers(ctx, &mut h)?;
    set(
        &mut h,
        "x-backend-storage-policy-index",
        &target.policy_index.to_string(),
    );
    let detect = ctx
        .h("x-detect-content-type")
        .is_some_and(ringsmith::swift::conf::is_true);
    if detect || !h.contains_key("content-type") {
        set(&mut h, "content-type", guess_content_type(object));
    }
    h.remove("x-detect-content-type");
    match length {
        Some(l) => set(&mut h, "content-length", &l.to_string()),
        None => set(&mut h, "transfer-encoding", "chunked"),
    }
    h.remove("x-copy-from");
    Ok(PreparedPut {
        headers: h,
        length,
        timestamp,
    })
}

/// A replica's way to its node: a connection past `100 Continue`, or (PACO) the object
/// server code in this process.
enum Replica {
    Connected(ContinuePut),
    InProcess(Node),
}

impl Replica {
    fn node(&self) -> &Node {
        match self {
            Replica::Connected(conn) => &conn.node,
            Replica::InProcess(node) => node,
        }
    }
}

/// Offers one replica to `node`: Swift's `_connect_put_node` for one node.
async fn connect_replica(
    proxy: &Proxy,
    node: Node,
    path: &str,
    headers: &HeaderMap,
) -> Attempt<Replica> {
    if proxy
        .transport
        .in_process
        .as_ref()
        .is_some_and(|ip| ip.serves(&node))
    {
        return Attempt::Ready(Replica::InProcess(node));
    }
    match ContinuePut::open(&proxy.transport, &node, path, headers).await {
        Ok(Handshake::Continue(conn, _)) => Attempt::Ready(Replica::Connected(conn)),
        Ok(Handshake::Final(507, _)) => {
            proxy.limiter.limit(&node, "Insufficient Storage");
            Attempt::Next
        }
        Ok(Handshake::Final(status, _)) if status >= 500 => {
            let why = format!("{status} Expect: 100-continue From Object Server");
            proxy.limiter.error(&node, &why);
            Attempt::Next
        }
        Ok(Handshake::Final(status, headers)) => Attempt::Final(status, headers),
        Err(e) => {
            proxy.limiter.failed(&node, &e);
            Attempt::Next
        }
    }
}

/// Sends one replica's body (each write within `node_timeout`) and reads the answer.
/// A body that ends in an error is not finished: the node sees the connection close
/// short of the declared length or the chunked terminator, and stores nothing.
async fn send_body(
    mut conn: ContinuePut,
    mut body: ChanBody,
    chunked: bool,
    node_timeout: Duration,
) -> Result<BackendResponse, BackendError> {
    let timed = |r: Result<std::io::Result<()>, tokio::time::error::Elapsed>| match r {
        Err(_) => Err(BackendError::Timeout),
        Ok(Err(e)) => Err(BackendError::Other(format!("sending the body: {e}"))),
        Ok(Ok(())) => Ok(()),
    };
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| BackendError::Other(e.to_string()))?;
        let write = async {
            if chunked {
                conn.write_chunk(&chunk).await?;
            } else {
                conn.write_raw(&chunk).await?;
            }
            conn.flush().await
        };
        timed(tokio::time::timeout(node_timeout, write).await)?;
    }
    let finish = async {
        if chunked {
            conn.write_chunk(&[]).await?;
        }
        conn.flush().await
    };
    timed(tokio::time::timeout(node_timeout, finish).await)?;
    let (status, headers) = match tokio::time::timeout(node_timeout, conn.read_head()).await {
        Err(_) => return Err(BackendError::Timeout),
        Ok(Err(e)) => return Err(BackendError::Other(e)),
        Ok(Ok(x)) => x,
    };
    let _ = tokio::time::timeout(node_timeout, conn.drain_body(&headers)).await;
    let status = StatusCode::from_u16(status)
        .map_err(|_| BackendError::Other(format!("bad status {status}")))?;
    Ok(BackendResponse {
        status,
        headers,
        body: Body::empty(),
    })
}

/// PUT: choose one node per replica (handoffs for nodes known to be down), stream the
/// body to all of them at once, answer by quorum. Erasure-coded policies go to
/// [`super::ec_put`].
pub(super) async fn put_object(ctx: &mut Ctx, target: &ObjTarget, body: Body) -> Response {
    let proxy = ctx.proxy.clone();
    let container = ctx.container.clone().expect("object request");
    let object = ctx.object.clone().expect("object request");
    let prepared = tri!(prepare_put(ctx, target, &object));
    if let Some(ec) = proxy.ec_policies.get(&target.policy_index).cloned() {
        return super::ec_put::put_ec_object(ctx, target, body, prepared, ec).await;
    }
    let PreparedPut {
        headers: h,
        length,
        timestamp,
    } = prepared;
    let max = proxy.constraints.max_file_size;

    // Node selection: one slot per replica, each given to the first node that accepts
    // the request head with `100 Continue` (see `write_slots`).
    let replicas = target.ring.part_nodes(target.part).len();
    let quorum = quorum_size(replicas);
    let iter = NodeIter::new(
        target.ring.clone(),
        target.part,
        proxy.request_node_limit(&target.ring),
        false,
    );
    let mut h = h;
    if length == Some(0) {
        // `100 Continue` is for requests with a body: an empty object goes as an empty
        // chunked body, as Swift sends it.
        h.remove("content-length");
        set(&mut h, "transfer-encoding", "chunked");
    }
    set(&mut h, "expect", "100-continue");
    let chunked = length.is_none_or(|l| l == 0);
    let cheaders = container_update_targets(&proxy, &ctx.account, &container);
    let slot_headers: Arc<Vec<HeaderMap>> = Arc::new(
        (0..replicas)
            .map(|slot| {
                let mut nh = h.clone();
                cheaders(slot, &mut nh);
                nh
            })
            .collect(),
    );
    let attempt = {
        let (proxy, path, slot_headers) =
            (proxy.clone(), target.path.clone(), slot_headers.clone());
        move |slot: usize, node: Node| {
            let (proxy, path, slot_headers) = (proxy.clone(), path.clone(), slot_headers.clone());
            async move { connect_replica(&proxy, node, &path, &slot_headers[slot]).await }
        }
    };
    let (ready, finals) = fill_slots(&proxy, iter, replicas, quorum, attempt).await;
    if ctx.h("if-none-match").is_some() && finals.iter().any(|(s, _)| *s == 412) {
        return status_text(StatusCode::PRECONDITION_FAILED);
    }
    if finals.iter().any(|(s, _)| *s == 409) {
        // A newer write is already there: Swift answers 202 (the request "happened", and
        // lost to the newer one).
        return status_text(StatusCode::ACCEPTED);
    }
    if ready.len() + finals.len() < quorum {
        tracing::error!(trans_id = %ctx.trans_id, "object PUT: {}/{} required connections", ready.len() + finals.len(), quorum);
        return status_text(StatusCode::SERVICE_UNAVAILABLE);
    }
    let mut senders = Vec::new();
    let mut putters = FuturesUnordered::new();
    // Nodes still owing an answer: those left when the post-quorum wait ends count an
    // error, so a hung node is benched instead of costing every write the wait.
    let mut outstanding: Vec<Node> = ready.iter().map(|(_, r)| r.node().clone()).collect();
    let node_timeout = proxy.transport.node_timeout;
    for (slot, replica) in ready {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let abort = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let node = replica.node().clone();
        senders.push(Some(Feed {
            tx,
            abort: abort.clone(),
            node: node.clone(),
        }));
        let body = ChanBody { rx, abort };
        let (p, path, nh) = (
            proxy.clone(),
            target.path.clone(),
            slot_headers[slot].clone(),
        );
        // Each backend request runs as a task of its own: it must make progress (send,
        // drain its channel) while the pump below waits on a full channel. Dropping the
        // handle (the client went away) cancels it, so nothing goes on to commit.
        let task = AbortOnDrop(tokio::spawn(async move {
            match replica {
                Replica::Connected(conn) => send_body(conn, body, chunked, node_timeout).await,
                Replica::InProcess(node) => {
                    let mut nh = nh;
                    nh.remove("expect");
                    p.transport
                        .request(
                            &node,
                            &Method::PUT,
                            &path,
                            &nh,
                            OutBody::Stream(Body::from_stream(body)),
                        )
                        .await
                }
            }
        }));
        putters.push(async move {
            let mut task = task;
            let r = (&mut task.0).await.unwrap_or_else(|e| {
                Err(BackendError::Other(format!("backend PUT task failed: {e}")))
            });
            (node, r)
        });
    }

    // Pump client bytes to every live putter while also watching for early answers.
    let mut body = body;
    let mut sent: u64 = 0;
    let mut early: Vec<(Node, Result<BackendResponse, BackendError>)> = Vec::new();
    let client_timeout = proxy.client_timeout;
    let mut client_error: Option<StatusCode> = None;
    loop {
        let frame = tokio::select! {
            biased;
            Some(done) = putters.next(), if !putters.is_empty() => {
                early.push(done);
                continue;
            }
            f = tokio::time::timeout(client_timeout, body.frame()) => f,
        };
        let chunk = match frame {
            Err(_) => {
                client_error = Some(StatusCode::REQUEST_TIMEOUT);
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                client_error = Some(StatusCode::from_u16(499).expect("499"));
                break;
            }
            Ok(Some(Ok(f))) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
        };
        sent += chunk.len() as u64;
        if sent > max || length.is_some_and(|l| sent > l) {
            client_error = Some(StatusCode::PAYLOAD_TOO_LARGE);
            break;
        }
        let live = feed_chunk(&proxy, &mut senders, &chunk, quorum).await;
        if live < quorum {
            tracing::error!(trans_id = %ctx.trans_id, "object PUT: lost quorum while streaming ({live} left)");
            client_error = Some(StatusCode::SERVICE_UNAVAILABLE);
            break;
        }
    }
    if client_error.is_none() && length.is_some_and(|l| sent < l) {
        client_error = Some(StatusCode::from_u16(499).expect("499"));
    }
    if let Some(status) = client_error {
        // Poison every body so no backend commits a partial object.
        for f in senders.iter().flatten() {
            f.abandon();
            let _ =
                f.tx.try_send(Err(std::io::Error::other("client request aborted")));
        }
        drop(senders);
        while putters.next().await.is_some() {}
        return status_text(status);
    }
    drop(senders);

    // Collect answers; once a quorum agrees, wait only post_quorum_timeout for the rest.
    let mut answers: Vec<(u16, HeaderMap)> = finals;
    let handle = |proxy: &Proxy,
                  (node, r): (Node, Result<BackendResponse, BackendError>),
                  answers: &mut Vec<(u16, HeaderMap)>,
                  outstanding: &mut Vec<Node>| {
        outstanding.retain(|n| n.key() != node.key());
        match r {
            Err(e) => {
                proxy.limiter.error(&node, &e.to_string());
                answers.push((503, HeaderMap::new()));
            }
            Ok(r) => {
                if r.status == StatusCode::INSUFFICIENT_STORAGE {
                    proxy.limiter.limit(&node, "Insufficient Storage");
                } else if r.status.is_server_error() {
                    proxy.limiter.error(&node, &format!("status {}", r.status));
                } else {
                    proxy.limiter.success(&node);
                }
                answers.push((r.status.as_u16(), r.headers));
            }
        }
    };
    for e in early {
        handle(&proxy, e, &mut answers, &mut outstanding);
    }
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let good = answers.iter().filter(|(s, _)| s / 100 == 2).count();
        if good >= quorum && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + proxy.post_quorum_timeout);
        }
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, putters.next()).await {
                Ok(n) => n,
                Err(_) => break,
            },
            None => putters.next().await,
        };
        match next {
            Some(done) => handle(&proxy, done, &mut answers, &mut outstanding),
            None => break,
        }
    }
    for node in &outstanding {
        proxy
            .limiter
            .error(node, "no answer within post_quorum_timeout after a quorum");
    }
    while answers.len() < replicas {
        answers.push((503, HeaderMap::new()));
    }
    let etags: std::collections::HashSet<String> = answers
        .iter()
        .filter(|(s, _)| s / 100 == 2)
        .filter_map(|(_, h)| header(h, "etag").map(|e| e.trim_matches('"').to_string()))
        .collect();
    if etags.len() > 1 {
        tracing::error!(trans_id = %ctx.trans_id, ?etags, "object PUT: replicas disagree on the etag");
        return status_text(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    match best_status(&statuses, quorum) {
        Some((s, idx)) if s / 100 == 2 => {
            let mut r = empty(StatusCode::CREATED);
            let hm = r.headers_mut();
            if let Some(e) = header(&answers[idx].1, "etag") {
                set(hm, "etag", e.trim_matches('"'));
            }
            if let Some(lm) = last_modified(&timestamp) {
                set(hm, "last-modified", &lm);
            }
            set(hm, "content-type", "text/html; charset=UTF-8");
            set(hm, "content-length", "0");
            r
        }
        Some((s, _)) => {
            status_text(StatusCode::from_u16(s).unwrap_or(StatusCode::SERVICE_UNAVAILABLE))
        }
        None => status_text(StatusCode::SERVICE_UNAVAILABLE),
    }
}
