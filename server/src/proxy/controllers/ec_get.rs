//! Erasure-coded object GET and HEAD.
//!
//! A HEAD asks one node: every fragment archive carries the object's metadata, and the
//! answer is fixed up to describe the object (its length and etag from the EC sysmeta).
//!
//! A GET asks `k` nodes at once for their fragment archives, then more nodes as answers
//! fail or repeat an index, at most twice the replica count in all (Swift's
//! `ECGetResponseCollection`): answers are grouped by the archive's data timestamp, and
//! every request carries `X-Backend-Fragment-Preferences` (the timestamps seen so far
//! with the indexes already held) so a node that holds several fragments hands over one
//! the proxy lacks. A timestamp is served once `k` distinct indexes are in hand and some
//! node has said it is durable. The archives are then read one fragment at a time, each
//! segment decoded and sent before the next is read, so memory stays one segment per
//! source whatever the object size.
//!
//! Ranges are mapped to whole segments and to the matching fragment ranges of the
//! archives (Swift's `client_range_to_segment_range` and
//! `segment_range_to_fragment_range`); the decoded segments are trimmed to the client's
//! bytes. Unlike Swift, a ranged GET first learns the object's length with a HEAD, so
//! each range maps to exact segments (suffix ranges included) and an unsatisfiable range
//! is a 416 before any fragment moves. Conditional headers travel to the object servers
//! with `X-Backend-Etag-Is-At: X-Object-Sysmeta-Ec-Etag`, which compare against the
//! object's etag, not the archive's.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::object::ObjTarget;
use super::*;
use crate::object::range::{parse_range, RangeOutcome};
use crate::proxy::ec::{EcPolicy, FragmentReader, SegmentPlan};

const EC_ETAG: &str = "x-object-sysmeta-ec-etag";
const EC_LENGTH: &str = "x-object-sysmeta-ec-content-length";

/// One node's fragment archive, its body unread.
struct Source {
    node: Node,
    headers: HeaderMap,
    body: Body,
}

#[derive(Default)]
struct Bucket {
    sources: BTreeMap<usize, Source>,
    durable: bool,
}

/// The answers of one GET, grouped by data timestamp.
#[derive(Default)]
struct Collection {
    buckets: BTreeMap<String, Bucket>,
    /// Answers that are not fragments (404, 304, 412, 5xx...), with their headers.
    bad: Vec<(u16, HeaderMap)>,
}

impl Collection {
    /// Buckets best first: durable, then complete, then fuller, then newer.
    fn sorted(&self, k: usize) -> Vec<(&String, &Bucket)> {
        let mut v: Vec<(&String, &Bucket)> = self.buckets.iter().collect();
        v.sort_by(|a, b| {
            let key = |(ts, bk): &(&String, &Bucket)| {
                (
                    bk.durable,
                    bk.sources.len() >= k,
                    bk.sources.len(),
                    (*ts).clone(),
                )
            };
            key(b).cmp(&key(a))
        });
        v
    }

    /// What the next request should prefer: Swift's frag_prefs list.
    fn preferences(&self, k: usize, wanted: Option<&str>) -> String {
        let mut prefs: Vec<serde_json::Value> = self
            .sorted(k)
            .into_iter()
            .map(|(ts, b)| {
                serde_json::json!({
                    "timestamp": ts,
                    "exclude": b.sources.keys().collect::<Vec<_>>(),
                })
            })
            .collect();
        if let Some(w) = wanted {
            if !self.buckets.contains_key(w) {
                prefs.insert(0, serde_json::json!({"timestamp": w, "exclude": []}));
            }
        }
        serde_json::Value::Array(prefs).to_string()
    }

    fn complete(&self, k: usize) -> Option<String> {
        self.sorted(k)
            .into_iter()
            .find(|(_, b)| b.durable && b.sources.len() >= k)
            .map(|(ts, _)| ts.clone())
    }

    /// How many more fragments the best bucket needs (at least one while no node has
    /// said it is durable).
    fn shortfall(&self, k: usize) -> usize {
        match self.sorted(k).first() {
            None => k,
            Some((_, b)) if b.durable => k.saturating_sub(b.sources.len()),
            Some((_, b)) => k.saturating_sub(b.sources.len()).max(1),
        }
    }

    fn add(&mut self, node: Node, status: u16, headers: HeaderMap, body: Body) {
        if !(200..300).contains(&status) {
            self.bad.push((status, headers));
            return;
        }
        let index = header(&headers, "x-object-sysmeta-ec-frag-index")
            .and_then(|v| v.trim().parse::<usize>().ok());
        let data_ts = header(&headers, "x-backend-data-timestamp").map(str::to_string);
        let ts = data_ts
            .clone()
            .or_else(|| header(&headers, "x-backend-timestamp").map(str::to_string))
            .or_else(|| header(&headers, "x-timestamp").map(str::to_string));
        let (Some(index), Some(ts)) = (index, ts) else {
            // Not a fragment archive: no use for decoding.
            self.bad.push((503, headers));
            return;
        };
        // An object server too old to say which set is durable serves durable data only.
        let durable = header(&headers, "x-backend-durable-timestamp")
            .map(str::to_string)
            .or(if data_ts.is_none() {
                Some(ts.clone())
            } else {
                None
            });
        if let Some(d) = durable {
            self.buckets.entry(d).or_default().durable = true;
        }
        let bucket = self.buckets.entry(ts).or_default();
        bucket.sources.entry(index).or_insert(Source {
            node,
            headers,
            body,
        });
    }
}

fn timestamp_value(h: &HeaderMap) -> Option<String> {
    [
        "x-backend-data-timestamp",
        "x-backend-timestamp",
        "x-timestamp",
    ]
    .iter()
    .find_map(|n| header(h, n).map(str::to_string))
}

/// The client's answer when no timestamp could be served: Swift's rules, simplified.
/// Fragments were found but too few: 503, unless a newer tombstone or the like says the
/// object is gone. Nothing found: the answer most nodes agree on (404, 304, 412...).
fn failure_response(c: &Collection, k: usize, owner: bool) -> Response {
    let best = c
        .sorted(k)
        .first()
        .map(|(ts, b)| ((*ts).clone(), b.durable));
    let bad: Vec<&(u16, HeaderMap)> = match &best {
        Some((ts, true)) => c
            .bad
            .iter()
            .filter(|(_, h)| timestamp_value(h).is_some_and(|t| t > *ts))
            .collect(),
        _ => c.bad.iter().collect(),
    };
    if bad.is_empty() {
        return if matches!(best, Some((_, false))) {
            // Only non-durable fragments: as if absent.
            status_text(StatusCode::NOT_FOUND)
        } else {
            status_text(StatusCode::SERVICE_UNAVAILABLE)
        };
    }
    let statuses: Vec<u16> = bad.iter().map(|(s, _)| *s).collect();
    match best_status(&statuses, quorum_size(statuses.len())) {
        Some((s, i)) => {
            let status = StatusCode::from_u16(s).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut r = status_text(status);
            let mut hm = HeaderMap::new();
            copy_client_headers(&bad[i].1, &mut hm, owner);
            for name in ["content-length", "content-type", "transfer-encoding"] {
                hm.remove(name);
            }
            for (name, value) in hm.iter() {
                r.headers_mut().insert(name.clone(), value.clone());
            }
            fix_headers(r.headers_mut());
            r
        }
        None => status_text(StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// The object's etag and length instead of the archive's; EC sysmeta stays inside.
fn fix_headers(h: &mut HeaderMap) {
    if let Some(etag) = header(h, EC_ETAG).map(str::to_string) {
        set(h, "etag", &etag);
    }
    let ec: Vec<HeaderName> = h
        .keys()
        .filter(|n| n.as_str().starts_with("x-object-sysmeta-ec-"))
        .cloned()
        .collect();
    for n in ec {
        h.remove(n);
    }
}

/// Fetches `k` fragment archives (or `range` of each) of one durable timestamp, `wanted`
/// first if given. Gives that timestamp and the sources, by fragment index.
async fn fetch_fragments(
    proxy: &Arc<Proxy>,
    target: &ObjTarget,
    headers: &HeaderMap,
    ec: &EcPolicy,
    range: Option<(u64, u64)>,
    wanted: Option<&str>,
    owner: bool,
) -> Result<(String, Vec<Source>), Response> {
    let k = ec.k;
    let replicas = target.ring.part_nodes(target.part).len();
    let mut iter = NodeIter::new(
        target.ring.clone(),
        target.part,
        proxy.request_node_limit(&target.ring),
        true,
    );
    let mut collection = Collection::default();
    let mut inflight = FuturesUnordered::new();
    let attempt = |node: Node, prefs: String| {
        let proxy = proxy.clone();
        let mut h = headers.clone();
        set(&mut h, "x-backend-fragment-preferences", &prefs);
        if let Some((a, b)) = range {
            set(&mut h, "range", &format!("bytes={a}-{b}"));
        }
        let path = target.path.clone();
        async move {
            let r = proxy
                .transport
                .request(&node, &Method::GET, &path, &h, OutBody::Empty)
                .await;
            (node, r)
        }
    };
    let next_node = |iter: &mut NodeIter| {
        iter.next_usable(&proxy.limiter)
            .or_else(|| iter.next_benched())
    };
    for _ in 0..k {
        match next_node(&mut iter) {
            Some(n) => inflight.push(attempt(n, collection.preferences(k, wanted))),
            None => break,
        }
    }
    let mut extra_left = (replicas * 2).saturating_sub(k);
    while let Some((node, result)) = inflight.next().await {
        match result {
            Err(e) => proxy.limiter.error(&node, &e.to_string()),
            Ok(r) => {
                let status = r.status.as_u16();
                if status == 507 {
                    proxy.limiter.limit(&node, "Insufficient Storage");
                } else if r.status.is_server_error() {
                    proxy.limiter.error(&node, &format!("status {status}"));
                    collection.bad.push((status, r.headers));
                } else {
                    proxy.limiter.success(&node);
                    collection.add(node, status, r.headers, r.body);
                }
            }
        }
        if collection.complete(k).is_some() {
            break;
        }
        while inflight.len() < collection.shortfall(k) && extra_left > 0 {
            let Some(n) = next_node(&mut iter) else { break };
            extra_left -= 1;
            inflight.push(attempt(n, collection.preferences(k, wanted)));
        }
    }
    drop(inflight);
    let Some(ts) = collection.complete(k) else {
        return Err(failure_response(&collection, k, owner));
    };
    let bucket = collection.buckets.remove(&ts).expect("complete bucket");
    Ok((ts, bucket.sources.into_values().take(k).collect()))
}

/// Where to find a replacement when a fragment source fails mid-body or hands over a
/// fragment whose header is damaged: other nodes, asked for the same timestamp from the
/// current segment on, any index the decode does not already have.
struct Refetch {
    proxy: Arc<Proxy>,
    target: ObjTarget,
    headers: HeaderMap,
    timestamp: String,
    /// Nodes already used (their sources, good or failed).
    used: Vec<String>,
    /// Archive byte just past the last fragment the plan needs.
    end: u64,
}

impl Refetch {
    fn new(
        proxy: &Arc<Proxy>,
        target: &ObjTarget,
        headers: &HeaderMap,
        ts: &str,
        end: u64,
    ) -> Refetch {
        Refetch {
            proxy: proxy.clone(),
            target: ObjTarget {
                ring: target.ring.clone(),
                part: target.part,
                path: target.path.clone(),
                policy_index: target.policy_index,
            },
            headers: headers.clone(),
            timestamp: ts.to_string(),
            used: Vec::new(),
            end,
        }
    }

    async fn replacement(
        &mut self,
        ec: &EcPolicy,
        segment: u64,
        held: &[usize],
    ) -> Option<(usize, FragmentReader)> {
        let start = segment * ec.fragment_size;
        let mut h = self.headers.clone();
        let prefs = serde_json::json!([{"timestamp": self.timestamp, "exclude": held}]);
        set(&mut h, "x-backend-fragment-preferences", &prefs.to_string());
        set(&mut h, "range", &format!("bytes={start}-{}", self.end - 1));
        let ring = &self.target.ring;
        let mut iter = NodeIter::new(
            ring.clone(),
            self.target.part,
            self.proxy.request_node_limit(ring),
            true,
        );
        while let Some(node) = iter.next_usable(&self.proxy.limiter) {
            if self.used.contains(&node.key()) {
                continue;
            }
            self.used.push(node.key());
            let r = self
                .proxy
                .transport
                .request(&node, &Method::GET, &self.target.path, &h, OutBody::Empty)
                .await;
            let Ok(r) = r else { continue };
            let index = header(&r.headers, "x-object-sysmeta-ec-frag-index")
                .and_then(|v| v.trim().parse::<usize>().ok());
            let starts_right = match r.status.as_u16() {
                206 => header(&r.headers, "content-range")
                    .is_some_and(|cr| cr.starts_with(&format!("bytes {start}-"))),
                200 => start == 0,
                _ => false,
            };
            let same_time =
                header(&r.headers, "x-backend-data-timestamp") == Some(self.timestamp.as_str());
            match index {
                Some(i) if starts_right && same_time && !held.contains(&i) => {
                    tracing::info!(node = %node.key(), segment, index = i,
                        "EC GET: replacing a fragment source");
                    return Some((i, FragmentReader::new(r.body, ec.fragment_size as usize)));
                }
                _ => {}
            }
        }
        None
    }
}

/// The archive byte just past the last fragment `plan` needs.
fn plan_end(ec: &EcPolicy, plan: &SegmentPlan, length: u64) -> u64 {
    ((plan.first_segment + plan.segment_count) * ec.fragment_size).min(ec.archive_length(length))
}

/// Decodes the segments `plan` names from `sources` and sends the client's bytes. A
/// source that fails, ends early or gives a fragment with a damaged header is replaced
/// (from `refetch`) and the segment decoded again; when no replacement is left the body
/// ends with an error.
async fn stream_segments(
    ec: &EcPolicy,
    sources: Vec<Source>,
    plan: SegmentPlan,
    object_length: u64,
    refetch: &mut Refetch,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), String> {
    refetch.used.extend(sources.iter().map(|s| s.node.key()));
    let mut indexes: Vec<usize> = sources
        .iter()
        .map(|s| {
            header(&s.headers, "x-object-sysmeta-ec-frag-index")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(usize::MAX)
        })
        .collect();
    let mut readers: Vec<FragmentReader> = sources
        .into_iter()
        .map(|s| FragmentReader::new(s.body, ec.fragment_size as usize))
        .collect();
    let (mut skip, mut left) = (plan.skip, plan.take);
    let last = (plan.first_segment + plan.segment_count).min(ec.segments(object_length));
    for seg in plan.first_segment..last {
        if left == 0 {
            break;
        }
        let mut got: Vec<Option<Bytes>> =
            futures_util::future::join_all(readers.iter_mut().map(|r| r.next_fragment()))
                .await
                .into_iter()
                .map(|f| f.ok().flatten())
                .collect();
        let data = loop {
            // A fragment that did not arrive or whose header is damaged gets replaced.
            for i in 0..got.len() {
                let usable = got[i]
                    .as_ref()
                    .is_some_and(|f| ringsmith_ec::FragmentHeader::parse(f).is_ok());
                if usable {
                    continue;
                }
                let Some((index, mut reader)) = refetch.replacement(ec, seg, &indexes).await else {
                    return Err(format!(
                        "segment {seg}: fragment source {i} failed and no other node can stand in"
                    ));
                };
                got[i] = reader.next_fragment().await.ok().flatten();
                readers[i] = reader;
                indexes[i] = index;
            }
            let frags: Vec<&Bytes> = got.iter().flatten().collect();
            if frags.len() < got.len() {
                continue;
            }
            break ec
                .codec
                .decode(&frags)
                .map_err(|e| format!("segment {seg}: {e}"))?;
        };
        if data.len() as u64 != ec.segment_length(seg, object_length) {
            return Err(format!(
                "segment {seg} decodes to {} bytes, the object needs {}",
                data.len(),
                ec.segment_length(seg, object_length)
            ));
        }
        let from = skip.min(data.len() as u64) as usize;
        skip -= from as u64;
        let to = (from as u64 + left).min(data.len() as u64) as usize;
        left -= (to - from) as u64;
        if to > from
            && tx
                .send(Ok(Bytes::copy_from_slice(&data[from..to])))
                .await
                .is_err()
        {
            return Ok(()); // the client went away
        }
    }
    if left > 0 {
        return Err("fragment archives end before the range does".into());
    }
    Ok(())
}

/// Ends the client's body with an error: a short body must fail, never look complete.
async fn abort_body(tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>, why: String) {
    tracing::error!("EC GET: {why}");
    let _ = tx.send(Err(std::io::Error::other(why))).await;
}

fn channel_body(rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>) -> Body {
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

pub(super) async fn get_ec_object(
    ctx: &mut Ctx,
    target: &ObjTarget,
    ec: Arc<EcPolicy>,
) -> Response {
    let proxy = ctx.proxy.clone();
    let owner = ctx.owner;
    let mut h = ctx.backend_headers(None);
    set(
        &mut h,
        "x-backend-storage-policy-index",
        &target.policy_index.to_string(),
    );
    // After any a middleware named (SLO's): the object server uses the first present.
    let etag_is_at = match header(&h, "x-backend-etag-is-at") {
        Some(v) if !v.trim().is_empty() => format!("{v},X-Object-Sysmeta-Ec-Etag"),
        _ => "X-Object-Sysmeta-Ec-Etag".to_string(),
    };
    set(&mut h, "x-backend-etag-is-at", &etag_is_at);
    let client_range = header(&h, "range").map(str::to_string);
    h.remove("range");

    if ctx.method == Method::HEAD || client_range.is_some() {
        let r = proxy
            .read_one(
                target.ring.clone(),
                target.part,
                &Method::HEAD,
                &target.path,
                &h,
            )
            .await;
        let ok = r.status.is_success();
        let mut resp = to_client(r, owner);
        if ok {
            let length = header(resp.headers(), EC_LENGTH).map(str::to_string);
            if let Some(l) = length {
                set(resp.headers_mut(), "content-length", &l);
            }
        }
        fix_headers(resp.headers_mut());
        if ctx.method == Method::HEAD {
            return resp;
        }
        if !ok {
            let status = resp.status();
            let mut out = status_text(status);
            for (name, value) in resp.headers() {
                if !matches!(name.as_str(), "content-length" | "content-type") {
                    out.headers_mut().insert(name.clone(), value.clone());
                }
            }
            return out;
        }
        let (Some(length), Some(ts)) = (
            header(resp.headers(), "content-length").and_then(|v| v.parse::<u64>().ok()),
            header(resp.headers(), "x-backend-data-timestamp")
                .or_else(|| header(resp.headers(), "x-backend-timestamp"))
                .map(str::to_string),
        ) else {
            return status_text(StatusCode::SERVICE_UNAVAILABLE);
        };
        let range = client_range.expect("ranged GET");
        // A middleware may want the whole object whatever the range when it carries
        // some metadata (SLO: its manifest).
        let ignore_range =
            header(&h, "x-backend-ignore-range-if-metadata-present").is_some_and(|names| {
                names
                    .split(',')
                    .map(|n| n.trim().to_ascii_lowercase())
                    .any(|n| !n.is_empty() && resp.headers().contains_key(n.as_str()))
            });
        let outcome = if ignore_range {
            RangeOutcome::Full
        } else {
            parse_range(&range, length)
        };
        return match outcome {
            RangeOutcome::Full => full_get(&proxy, target, &h, ec, Some(&ts), owner).await,
            RangeOutcome::Unsatisfiable => {
                // With the object's headers, as an object server's 416 has them: a
                // middleware (DLO) may act on its metadata whatever the range.
                let mut r = status_text(StatusCode::RANGE_NOT_SATISFIABLE);
                for (name, value) in resp.headers() {
                    if !matches!(name.as_str(), "content-length" | "content-type") {
                        r.headers_mut().insert(name.clone(), value.clone());
                    }
                }
                set(
                    r.headers_mut(),
                    "content-range",
                    &format!("bytes */{length}"),
                );
                set(r.headers_mut(), "accept-ranges", "bytes");
                r
            }
            RangeOutcome::Ranges(ranges) => {
                let ranges: Vec<(u64, u64)> = ranges.iter().map(|r| (r.start, r.end)).collect();
                ranged_get(&proxy, target, &h, ec, &ts, length, &ranges, owner).await
            }
        };
    }
    full_get(&proxy, target, &h, ec, None, owner).await
}

/// The client's headers for a successful GET, from one archive's answer.
fn object_headers(source: &Source, owner: bool) -> HeaderMap {
    let mut hm = HeaderMap::new();
    copy_client_headers(&source.headers, &mut hm, owner);
    hm.remove("content-range");
    fix_headers(&mut hm);
    set(&mut hm, "accept-ranges", "bytes");
    hm
}

async fn full_get(
    proxy: &Arc<Proxy>,
    target: &ObjTarget,
    h: &HeaderMap,
    ec: Arc<EcPolicy>,
    wanted: Option<&str>,
    owner: bool,
) -> Response {
    let (ts, sources) = match fetch_fragments(proxy, target, h, &ec, None, wanted, owner).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(length) = header(&sources[0].headers, EC_LENGTH).and_then(|v| v.parse::<u64>().ok())
    else {
        return status_text(StatusCode::SERVICE_UNAVAILABLE);
    };
    let mut resp = Response::new(Body::empty());
    *resp.headers_mut() = object_headers(&sources[0], owner);
    set(resp.headers_mut(), "content-length", &length.to_string());
    if length == 0 {
        *resp.body_mut() = crate::proxy::empty_body_with_length_header();
        return resp;
    }
    let plan = SegmentPlan {
        first_segment: 0,
        segment_count: ec.segments(length),
        fragment_range: (0, 0),
        skip: 0,
        take: length,
    };
    let mut refetch = Refetch::new(proxy, target, h, &ts, ec.archive_length(length));
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        if let Err(e) = stream_segments(&ec, sources, plan, length, &mut refetch, &tx).await {
            abort_body(&tx, e).await;
        }
    });
    *resp.body_mut() = channel_body(rx);
    resp
}

#[allow(clippy::too_many_arguments)]
async fn ranged_get(
    proxy: &Arc<Proxy>,
    target: &ObjTarget,
    h: &HeaderMap,
    ec: Arc<EcPolicy>,
    ts: &str,
    length: u64,
    ranges: &[(u64, u64)],
    owner: bool,
) -> Response {
    let plans: Vec<SegmentPlan> = ranges.iter().map(|(a, b)| ec.plan(*a, *b)).collect();
    // The first range's fragments are fetched now, so a failure is the client's status.
    let (got_ts, first) = match fetch_fragments(
        proxy,
        target,
        h,
        &ec,
        Some(plans[0].fragment_range),
        Some(ts),
        owner,
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let same_length = header(&first[0].headers, EC_LENGTH) == Some(length.to_string().as_str());
    if got_ts != ts || !same_length {
        // The object changed between the HEAD and the GET.
        return status_text(StatusCode::SERVICE_UNAVAILABLE);
    }
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    *resp.headers_mut() = object_headers(&first[0], owner);
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    if ranges.len() == 1 {
        let (a, b) = ranges[0];
        set(
            resp.headers_mut(),
            "content-range",
            &format!("bytes {a}-{b}/{length}"),
        );
        set(
            resp.headers_mut(),
            "content-length",
            &(b - a + 1).to_string(),
        );
        let plan = plans[0];
        let mut refetch = Refetch::new(proxy, target, h, ts, plan_end(&ec, &plan, length));
        tokio::spawn(async move {
            if let Err(e) = stream_segments(&ec, first, plan, length, &mut refetch, &tx).await {
                abort_body(&tx, e).await;
            }
        });
        *resp.body_mut() = channel_body(rx);
        return resp;
    }
    let boundary = format!("{:032x}", rand::random::<u128>());
    let ctype = header(resp.headers(), "content-type")
        .unwrap_or("application/octet-stream")
        .to_string();
    let part_heads: Vec<String> = ranges
        .iter()
        .enumerate()
        .map(|(i, (a, b))| {
            let lead = if i == 0 { "" } else { "\r\n" };
            format!(
                "{lead}--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {a}-{b}/{length}\r\n\r\n"
            )
        })
        .collect();
    let trailer = format!("\r\n--{boundary}--");
    let total: u64 = part_heads.iter().map(|p| p.len() as u64).sum::<u64>()
        + ranges.iter().map(|(a, b)| b - a + 1).sum::<u64>()
        + trailer.len() as u64;
    set(
        resp.headers_mut(),
        "content-type",
        &format!("multipart/byteranges;boundary={boundary}"),
    );
    set(resp.headers_mut(), "content-length", &total.to_string());
    let (proxy, target_path, ring, part, policy_index, h, ts) = (
        proxy.clone(),
        target.path.clone(),
        target.ring.clone(),
        target.part,
        target.policy_index,
        h.clone(),
        ts.to_string(),
    );
    tokio::spawn(async move {
        let target = ObjTarget {
            ring,
            part,
            path: target_path,
            policy_index,
        };
        let mut first = Some(first);
        for (i, plan) in plans.into_iter().enumerate() {
            if tx
                .send(Ok(Bytes::from(part_heads[i].clone())))
                .await
                .is_err()
            {
                return;
            }
            let sources = match first.take() {
                Some(s) => s,
                None => match fetch_fragments(
                    &proxy,
                    &target,
                    &h,
                    &ec,
                    Some(plan.fragment_range),
                    Some(&ts),
                    owner,
                )
                .await
                {
                    Ok((t, s)) if t == ts => s,
                    _ => return abort_body(&tx, format!("range {i}: fragments unavailable")).await,
                },
            };
            let mut refetch = Refetch::new(&proxy, &target, &h, &ts, plan_end(&ec, &plan, length));
            if let Err(e) = stream_segments(&ec, sources, plan, length, &mut refetch, &tx).await {
                return abort_body(&tx, e).await;
            }
        }
        let _ = tx.send(Ok(Bytes::from(trailer))).await;
    });
    *resp.body_mut() = channel_body(rx);
    resp
}
