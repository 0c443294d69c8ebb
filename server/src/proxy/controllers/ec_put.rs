//! Erasure-coded object PUT, as Swift's `ECObjectController` does it on the wire.
//!
//! The client body is cut into `ec_object_segment_size` segments; each segment is
//! encoded into `k + m` fragments and fragment `i` goes to the node holding fragment
//! index `i` (primary `n` holds index `n mod (k+m)`; a handoff takes the index of a
//! primary it stands in for). Only one segment is held at a time, so memory stays
//! bounded whatever the object size, chunked uploads included.
//!
//! Each backend PUT is Swift's multiphase MIME conversation, which hyper's client
//! cannot hold (it needs the headers of an interim `100 Continue`, a second `100`, and
//! body bytes after the chunked terminator), so it runs over a plain TCP connection:
//!
//! 1. headers with `Expect: 100-continue`, `X-Backend-Obj-Metadata-Footer`,
//!    `-Multiphase-Commit` and a MIME boundary; the node's `100 Continue` must echo both
//!    capabilities;
//! 2. chunked body: the `object body` document (the fragment archive), then the
//!    `object metadata` document (JSON footer with the EC sysmeta and the archive's
//!    md5 as `Etag`, plus its `Content-MD5`), then the chunked terminator;
//! 3. once a quorum (`k + 1`, times the duplication factor) has answered a second
//!    `100 Continue` (data and metadata safely written), the `put commit` document and
//!    another terminator; the nodes then mark their archive durable and answer.

use std::sync::Arc;

use md5::{Digest, Md5};

use super::object::{container_update_targets, ObjTarget};
use super::object_put::PreparedPut;
use super::write_slots::{fill_slots, Attempt};
use super::*;
use crate::proxy::continue_put::{ContinuePut, Handshake};
use crate::proxy::ec::EcPolicy;

/// One backend node's multiphase PUT connection.
struct Putter {
    conn: ContinuePut,
    boundary: String,
    /// Fragment index this node stores (assigned once all connections are made).
    frag_index: usize,
    started: bool,
    failed: bool,
}

impl Putter {
    fn node(&self) -> &Node {
        &self.conn.node
    }

    async fn connect(
        proxy: &Proxy,
        node: &Node,
        path: &str,
        headers: &HeaderMap,
        boundary: &str,
        if_none_match: bool,
    ) -> Attempt<Box<Putter>> {
        let (conn, resp_headers) =
            match ContinuePut::open(&proxy.transport, node, path, headers).await {
                Ok(Handshake::Continue(conn, h)) => (conn, h),
                Ok(Handshake::Final(status, _)) => {
                    return match status {
                        507 => {
                            proxy.limiter.limit(node, "Insufficient Storage");
                            Attempt::Next
                        }
                        412 if if_none_match => Attempt::Final(412, HeaderMap::new()),
                        409 => Attempt::Final(409, HeaderMap::new()),
                        s => {
                            if s >= 500 {
                                proxy.limiter.error(
                                    node,
                                    &format!("{s} Expect: 100-continue From Object Server"),
                                );
                            }
                            Attempt::Next
                        }
                    };
                }
                Err(e) => {
                    proxy.limiter.failed(node, &e);
                    return Attempt::Next;
                }
            };
        let yes = |n: &str| header(&resp_headers, n).is_some_and(ringsmith::swift::conf::is_true);
        if !yes("x-obj-metadata-footer") || !yes("x-obj-multiphase-commit") {
            proxy.limiter.error(
                node,
                "object server does not support metadata footers and multiphase commit",
            );
            return Attempt::Next;
        }
        Attempt::Ready(Box::new(Putter {
            conn,
            boundary: boundary.to_string(),
            frag_index: 0,
            started: false,
            failed: false,
        }))
    }

    async fn send_data(&mut self, data: &[u8]) -> std::io::Result<()> {
        if !self.started {
            self.started = true;
            let doc = format!("--{}\r\nX-Document: object body\r\n\r\n", self.boundary);
            self.conn.write_chunk(doc.as_bytes()).await?;
        }
        if !data.is_empty() {
            self.conn.write_chunk(data).await?;
        }
        self.conn.flush().await
    }

    /// The footer document, the boundary that leaves room for the commit, the terminator.
    async fn send_footer(&mut self, footer: &[u8]) -> std::io::Result<()> {
        self.send_data(&[]).await?;
        let md5 = hex::encode(Md5::digest(footer));
        let mut doc = format!(
            "\r\n--{b}\r\nX-Document: object metadata\r\nContent-MD5: {md5}\r\n\r\n",
            b = self.boundary
        )
        .into_bytes();
        doc.extend_from_slice(footer);
        doc.extend_from_slice(format!("\r\n--{}\r\n", self.boundary).as_bytes());
        self.conn.write_chunk(&doc).await?;
        self.conn.write_chunk(&[]).await?;
        self.conn.flush().await
    }

    async fn send_commit(&mut self) -> std::io::Result<()> {
        let doc = format!(
            "X-Document: put commit\r\n\r\nput_commit_confirmation\r\n--{}--",
            self.boundary
        );
        self.conn.write_chunk(doc.as_bytes()).await?;
        self.conn.write_chunk(&[]).await?;
        self.conn.flush().await
    }
}

/// Swift's `_determine_chunk_destinations`: given each putter's primary index (`None`
/// for a handoff), the fragment index it stores. Primaries store their own index mod
/// `k+m`; handoffs fill the holes, the indexes missing most often first (with
/// `ec_duplication_factor` > 1 an index can be missing more than once).
fn fragment_slots(
    primary_indexes: &[Option<usize>],
    unique: usize,
    duplication: usize,
) -> Vec<usize> {
    let mut present = vec![0usize; unique];
    let mut slots = vec![0usize; primary_indexes.len()];
    let mut handoffs = Vec::new();
    for (i, primary) in primary_indexes.iter().enumerate() {
        match primary {
            Some(p) => {
                slots[i] = p % unique;
                present[slots[i]] += 1;
            }
            None => handoffs.push(i),
        }
    }
    let mut tiers: Vec<Vec<usize>> = vec![Vec::new(); duplication];
    for (index, count) in present.iter().enumerate() {
        for tier in tiers.iter_mut().take(duplication.saturating_sub(*count)) {
            tier.push(index);
        }
    }
    for (hole, putter) in tiers.into_iter().rev().flatten().zip(handoffs) {
        slots[putter] = hole;
    }
    slots
}

fn assign_fragment_indexes(putters: &mut [Putter], ec: &EcPolicy) {
    let primaries: Vec<Option<usize>> = putters.iter().map(|p| p.node().index).collect();
    let slots = fragment_slots(&primaries, ec.unique_fragments(), ec.duplication_factor);
    for (p, slot) in putters.iter_mut().zip(slots) {
        p.frag_index = slot;
    }
}

/// What to send to every live putter in one step.
enum Step<'a> {
    /// One segment's fragments, by fragment index.
    Data(&'a [Vec<u8>]),
    /// The footer JSON, by fragment index.
    Footer(&'a [Vec<u8>]),
    Commit,
}

/// Runs `step` on every live putter at once, each within `node_timeout`; a putter that
/// fails is marked failed and its node counted an error. Gives the live count.
async fn on_all(proxy: &Proxy, putters: &mut [Putter], step: Step<'_>) -> usize {
    let timeout = proxy.transport.node_timeout;
    let step = &step;
    futures_util::future::join_all(
        putters
            .iter_mut()
            .filter(|p| !p.failed)
            .map(|p| async move {
                let sent = async {
                    match step {
                        Step::Data(frags) => p.send_data(&frags[p.frag_index]).await,
                        Step::Footer(footers) => p.send_footer(&footers[p.frag_index]).await,
                        Step::Commit => p.send_commit().await,
                    }
                };
                let ok = matches!(tokio::time::timeout(timeout, sent).await, Ok(Ok(())));
                if !ok {
                    p.failed = true;
                    proxy
                        .limiter
                        .error(p.node(), "writing an EC fragment archive");
                }
            }),
    )
    .await;
    putters.iter().filter(|p| !p.failed).count()
}

/// Reads the next response head of every live putter: all of them, except that once
/// `quorum` have answered `want`, the rest get only `post_quorum_timeout` (Swift's rule).
/// Putters that answer anything else, or nothing, are marked failed. Gives the statuses.
async fn collect_answers(
    proxy: &Proxy,
    putters: &mut [Putter],
    want: fn(u16) -> bool,
    quorum: usize,
    final_phase: bool,
) -> Vec<u16> {
    let node_timeout = proxy.transport.node_timeout;
    let mut pending: FuturesUnordered<_> = putters
        .iter_mut()
        .enumerate()
        .filter(|(_, p)| !p.failed)
        .map(|(i, p)| async move {
            let read = async {
                let (status, headers) = p.conn.read_head().await?;
                if final_phase || status >= 200 {
                    p.conn.drain_body(&headers).await;
                }
                Ok::<u16, String>(status)
            };
            let answer = match tokio::time::timeout(node_timeout, read).await {
                Ok(Ok(s)) => Some(s),
                _ => None,
            };
            (i, p, answer)
        })
        .collect();
    let mut answered = Vec::new();
    let mut statuses = Vec::new();
    let mut good = 0;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, pending.next()).await {
                Ok(n) => n,
                Err(_) => break,
            },
            None => pending.next().await,
        };
        let Some((i, p, answer)) = next else { break };
        answered.push(i);
        match answer {
            Some(s) => {
                statuses.push(s);
                if want(s) {
                    good += 1;
                } else {
                    p.failed = true;
                }
                if s == 507 {
                    proxy.limiter.limit(p.node(), "Insufficient Storage");
                } else if s >= 500 {
                    proxy.limiter.error(p.node(), &format!("status {s}"));
                }
            }
            None => {
                p.failed = true;
                proxy
                    .limiter
                    .error(p.node(), "no answer to an EC PUT phase");
            }
        }
        if deadline.is_none() && good >= quorum {
            deadline = Some(tokio::time::Instant::now() + proxy.post_quorum_timeout);
        }
    }
    // Those still pending after the post-quorum wait take no part in what follows
    // (their read was cut off mid-way, so their connection is in no known state).
    drop(pending);
    for (i, p) in putters.iter_mut().enumerate() {
        if !p.failed && !answered.contains(&i) {
            p.failed = true;
            proxy.limiter.error(
                p.node(),
                "no answer within post_quorum_timeout after a quorum",
            );
        }
    }
    statuses
}

/// The footer Swift's `trailing_metadata` builds for fragment archive `index`, plus the
/// archive's own md5 as `Etag`, in `json.dumps` form.
fn footer_json(ec: &EcPolicy, etag: &str, length: u64, index: usize, archive_md5: &str) -> Vec<u8> {
    let mut map = serde_json::Map::new();
    let mut put = |k: &str, v: String| {
        map.insert(k.to_string(), serde_json::Value::String(v));
    };
    put("X-Object-Sysmeta-Ec-Etag", etag.to_string());
    put("X-Object-Sysmeta-Ec-Content-Length", length.to_string());
    put("X-Backend-Container-Update-Override-Etag", etag.to_string());
    put(
        "X-Backend-Container-Update-Override-Size",
        length.to_string(),
    );
    put("X-Object-Sysmeta-Ec-Frag-Index", index.to_string());
    put("X-Object-Sysmeta-Ec-Scheme", ec.scheme());
    put(
        "X-Object-Sysmeta-Ec-Segment-Size",
        ec.segment_size.to_string(),
    );
    put("Etag", archive_md5.to_string());
    ringsmith::pyjson::dumps(&serde_json::Value::Object(map)).into_bytes()
}

pub(super) async fn put_ec_object(
    ctx: &mut Ctx,
    target: &ObjTarget,
    body: Body,
    prepared: PreparedPut,
    ec: Arc<EcPolicy>,
) -> Response {
    let proxy = ctx.proxy.clone();
    let container = ctx.container.clone().expect("object request");
    let PreparedPut {
        headers: mut h,
        length,
        timestamp,
    } = prepared;
    let max = proxy.constraints.max_file_size;
    // The object servers get fragment archives, not the client's bytes: its length and
    // etag do not apply (the proxy checks the etag itself).
    let client_etag = ctx
        .h("etag")
        .map(|e| e.trim().trim_matches('"').to_string());
    for name in ["content-length", "etag", "transfer-encoding", "content-md5"] {
        h.remove(name);
    }
    if let Some(l) = length {
        set(
            &mut h,
            "x-backend-obj-content-length",
            &ec.archive_length(l).to_string(),
        );
    }
    let boundary = format!("{:064x}", rand::random::<u128>());
    set(&mut h, "transfer-encoding", "chunked");
    set(&mut h, "expect", "100-continue");
    set(&mut h, "x-backend-obj-multipart-mime-boundary", &boundary);
    set(&mut h, "x-backend-obj-metadata-footer", "yes");
    set(&mut h, "x-backend-obj-multiphase-commit", "yes");
    let if_none_match = ctx.h("if-none-match").is_some();

    // Connect to one node per fragment slot: primaries in ring order, handoffs for
    // those that fail, all at once.
    let replicas = target.ring.part_nodes(target.part).len();
    let quorum = ec.quorum();
    let iter = NodeIter::new(
        target.ring.clone(),
        target.part,
        proxy.request_node_limit(&target.ring),
        false,
    );
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
        let (proxy, path) = (proxy.clone(), target.path.clone());
        move |slot: usize, node: Node| {
            let (proxy, path, boundary, slot_headers) = (
                proxy.clone(),
                path.clone(),
                boundary.clone(),
                slot_headers.clone(),
            );
            async move {
                let headers = &slot_headers[slot];
                Putter::connect(&proxy, &node, &path, headers, &boundary, if_none_match).await
            }
        }
    };
    let (ready, finals) = fill_slots(&proxy, iter, replicas, quorum, attempt).await;
    let mut putters: Vec<Putter> = ready.into_iter().map(|(_, p)| *p).collect();
    let finals: Vec<u16> = finals.into_iter().map(|(s, _)| s).collect();
    if if_none_match && finals.contains(&412) {
        return status_text(StatusCode::PRECONDITION_FAILED);
    }
    if finals.contains(&409) {
        return status_text(StatusCode::ACCEPTED);
    }
    if putters.len() < quorum {
        tracing::error!(trans_id = %ctx.trans_id, "EC object PUT: {}/{} required connections", putters.len(), quorum);
        return status_text(StatusCode::SERVICE_UNAVAILABLE);
    }
    assign_fragment_indexes(&mut putters, &ec);

    // Stream: segment by segment, fragment i to the putters holding index i.
    let segment = ec.segment_size as usize;
    let mut pending = bytes::BytesMut::with_capacity(segment);
    let mut frags: Vec<Vec<u8>> = Vec::new();
    let mut object_md5 = Md5::new();
    let mut archive_md5: Vec<Md5> = vec![Md5::new(); ec.unique_fragments()];
    let mut sent: u64 = 0;
    let mut body = body;
    let client_timeout = proxy.client_timeout;
    let mut finished = false;
    while !finished {
        let chunk = match tokio::time::timeout(client_timeout, body.frame()).await {
            Err(_) => return status_text(StatusCode::REQUEST_TIMEOUT),
            Ok(Some(Err(_))) => return client_disconnect(),
            Ok(None) => {
                finished = true;
                Bytes::new()
            }
            Ok(Some(Ok(f))) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
        };
        sent += chunk.len() as u64;
        if sent > max || length.is_some_and(|l| sent > l) {
            return status_text(StatusCode::PAYLOAD_TOO_LARGE);
        }
        object_md5.update(&chunk);
        pending.extend_from_slice(&chunk);
        while pending.len() >= segment || (finished && !pending.is_empty()) {
            let take = pending.len().min(segment);
            let seg = pending.split_to(take);
            ec.codec.encode_into(&seg, &mut frags);
            for (i, f) in frags.iter().enumerate() {
                archive_md5[i].update(f);
            }
            let live = on_all(&proxy, &mut putters, Step::Data(&frags)).await;
            if live < quorum {
                tracing::error!(trans_id = %ctx.trans_id, "EC object PUT: lost quorum while streaming ({live} left)");
                return status_text(StatusCode::SERVICE_UNAVAILABLE);
            }
        }
    }
    if length.is_some_and(|l| sent < l) {
        return client_disconnect();
    }
    let etag = hex::encode(object_md5.finalize());
    if client_etag.as_deref().is_some_and(|e| e != etag) {
        return status_text(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let footers: Vec<Vec<u8>> = archive_md5
        .into_iter()
        .enumerate()
        .map(|(i, m)| footer_json(&ec, &etag, sent, i, &hex::encode(m.finalize())))
        .collect();
    on_all(&proxy, &mut putters, Step::Footer(&footers)).await;

    // Phase one: a quorum of nodes must say (with a second 100 Continue) that the
    // archive and its metadata are on disk.
    let statuses = collect_answers(&proxy, &mut putters, |s| s == 100, quorum, false).await;
    let continued = statuses.iter().filter(|s| **s == 100).count();
    if continued < quorum {
        tracing::error!(trans_id = %ctx.trans_id, ?statuses, "EC object PUT: not enough object servers acknowledged");
        let finals: Vec<u16> = statuses.into_iter().filter(|s| *s >= 200).collect();
        return match best_status(&finals, quorum) {
            // A 4xx here is a broken conversation between proxy and object server.
            Some((s, _)) if s / 100 != 4 => {
                status_text(StatusCode::from_u16(s).unwrap_or(StatusCode::SERVICE_UNAVAILABLE))
            }
            _ => status_text(StatusCode::SERVICE_UNAVAILABLE),
        };
    }
    // Phase two: commit; the nodes make their archives durable and answer.
    on_all(&proxy, &mut putters, Step::Commit).await;
    let mut statuses = collect_answers(&proxy, &mut putters, |s| s / 100 == 2, quorum, true).await;
    for p in &putters {
        if !p.failed {
            proxy.limiter.success(p.node());
        }
    }
    while statuses.len() < replicas {
        statuses.push(503);
    }
    match best_status(&statuses, quorum) {
        Some((s, _)) if s / 100 == 2 => {
            let mut r = empty(StatusCode::CREATED);
            let hm = r.headers_mut();
            set(hm, "etag", &etag);
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

fn client_disconnect() -> Response {
    status_text(StatusCode::from_u16(499).expect("499"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handoffs_take_the_missing_indexes() {
        // 4+2: primaries 0, 1, 3, 5 answered; two handoffs stand in for 2 and 4.
        let got = fragment_slots(&[Some(0), Some(1), None, Some(3), None, Some(5)], 6, 1);
        assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
        // Duplication 2 (12 primaries): index 1 lost twice, index 4 once; the handoffs
        // fill the doubly missing one first, as Swift's lack tiers do.
        let mut prim: Vec<Option<usize>> = (0..12).map(Some).collect();
        prim[1] = None;
        prim[7] = None;
        prim[4] = None;
        let got = fragment_slots(&prim, 6, 2);
        assert_eq!((got[1], got[4], got[7]), (1, 1, 4));
        assert_eq!(got[10], 4, "primary 10 stores 10 mod 6");
    }

    #[test]
    fn footer_is_swifts_trailing_metadata() {
        let ec = EcPolicy::from_params(&ringsmith::swift::policy::EcParams {
            ec_type: "liberasurecode_rs_vand".into(),
            ndata: 4,
            nparity: 2,
            segment_size: 4096,
            duplication_factor: 1,
        })
        .unwrap();
        let f = footer_json(&ec, "abc", 17, 3, "def");
        let v: serde_json::Value = serde_json::from_slice(&f).unwrap();
        assert_eq!(v["X-Object-Sysmeta-Ec-Frag-Index"], "3");
        assert_eq!(
            v["X-Object-Sysmeta-Ec-Scheme"],
            "liberasurecode_rs_vand 4+2"
        );
        assert_eq!(v["X-Object-Sysmeta-Ec-Segment-Size"], "4096");
        assert_eq!(v["X-Backend-Container-Update-Override-Size"], "17");
        assert_eq!(v["Etag"], "def");
        assert!(std::str::from_utf8(&f).unwrap().contains("\": \""));
    }
}
