//! Object requests: GET/HEAD from one replica, POST and DELETE to all, and the checks
//! of a write (expiry, transfer coding, names).

use super::object_put::put_object;
use super::*;

/// The client's `X-Delete-At`/`X-Delete-After`, validated and turned into `X-Delete-At`.
pub(super) fn expiry_headers(ctx: &Ctx, h: &mut HeaderMap) -> Result<(), Response> {
    let now = crate::proxy::auth::now_secs();
    if let Some(after) = ctx.h("x-delete-after") {
        let after: i64 = after
            .trim()
            .parse()
            .map_err(|_| text(StatusCode::BAD_REQUEST, "Non-integer X-Delete-After"))?;
        if after < 0 {
            return Err(text(StatusCode::BAD_REQUEST, "X-Delete-After in past"));
        }
        h.remove("x-delete-after");
        set(h, "x-delete-at", &(now as i64 + after).to_string());
    } else if let Some(at) = ctx.h("x-delete-at") {
        let at = parse_delete_at(at)
            .ok_or_else(|| text(StatusCode::BAD_REQUEST, "Non-integer X-Delete-At"))?;
        if at < now as i128 {
            return Err(text(StatusCode::BAD_REQUEST, "X-Delete-At in past"));
        }
        set(h, "x-delete-at", &at.to_string());
    }
    Ok(())
}

/// Swift's reading of a request's Transfer-Encoding: `chunked` alone is chunked; a list of
/// codings is 501 (none but chunked is supported), any other single coding 400.
pub(super) fn transfer_coding(value: &str) -> Result<bool, Response> {
    if value.contains(',') {
        return Err(text(
            StatusCode::NOT_IMPLEMENTED,
            "Unsupported Transfer-Coding header value specified in Transfer-Encoding header",
        ));
    }
    if value.trim().eq_ignore_ascii_case("chunked") {
        Ok(true)
    } else {
        Err(text(
            StatusCode::BAD_REQUEST,
            "Invalid Transfer-Encoding header value",
        ))
    }
}

/// The largest expiry Swift stores: its expirer sorts 10-digit strings, so later times
/// are capped to this (November 2286).
pub(super) const MAX_DELETE_AT: i128 = 9_999_999_999;

/// An `X-Delete-At` as Swift's `int()` reads it (an optional sign, digits, surrounding
/// blanks), capped to [`MAX_DELETE_AT`]; `None` when it is not an integer.
pub(super) fn parse_delete_at(raw: &str) -> Option<i128> {
    let t = raw.trim();
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    let magnitude: i128 = if significant.len() > 11 {
        MAX_DELETE_AT + 1
    } else {
        significant.parse().unwrap_or(0)
    };
    Some(if neg {
        -magnitude
    } else {
        magnitude.min(MAX_DELETE_AT)
    })
}

/// Swift's guess for an object PUT without a Content-Type: Python's `mimetypes`.
pub(super) fn guess_content_type(name: &str) -> &'static str {
    crate::proxy::mime_types::guess(name).unwrap_or("application/octet-stream")
}

pub(super) struct ObjTarget {
    pub(super) ring: Arc<Ring>,
    pub(super) part: usize,
    pub(super) path: String,
    pub(super) policy_index: u32,
}

pub(super) fn object_target(
    proxy: &Proxy,
    account: &str,
    container: &str,
    object: &str,
    policy_index: u32,
) -> Result<ObjTarget, Response> {
    let Some(slot) = proxy.object_rings.get(&policy_index) else {
        return Err(text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("No policy with index {policy_index}"),
        ));
    };
    let ring = slot.get();
    let part = ring.get_part(account, Some(container), Some(object));
    Ok(ObjTarget {
        path: format!(
            "/{part}/{}/{}/{}",
            quote(account),
            quote(container),
            quote(object)
        ),
        ring,
        part,
        policy_index,
    })
}

pub(super) async fn object_request(ctx: &mut Ctx, body: Body) -> Response {
    let proxy = ctx.proxy.clone();
    let container = ctx.container.clone().expect("object request");
    let object = ctx.object.clone().expect("object request");
    if object.len() > proxy.constraints.max_object_name_length {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "Object name length of {} longer than {}",
                object.len(),
                proxy.constraints.max_object_name_length
            ),
        );
    }
    let info = proxy.container_info(&ctx.account, &container).await;
    let acl = match ctx.method {
        Method::GET | Method::HEAD => info.read_acl.clone(),
        _ => info.write_acl.clone(),
    };
    tri!(ctx.authz(acl.as_deref()).await);
    if info.status == 404 {
        return status_text(StatusCode::NOT_FOUND);
    }
    if info.status / 100 != 2 {
        return status_text(StatusCode::SERVICE_UNAVAILABLE);
    }
    let target = tri!(object_target(
        &proxy,
        &ctx.account,
        &container,
        &object,
        info.policy_index
    ));
    match ctx.method.clone() {
        Method::GET | Method::HEAD => get_object(ctx, &target).await,
        Method::PUT => put_object(ctx, &target, body).await,
        Method::POST => {
            tri!(check_meta(ctx, MetaTarget::Object));
            let mut h = ctx.backend_headers(Some(&ctx.write_timestamp()));
            tri!(expiry_headers(ctx, &mut h));
            let (answers, replicas) =
                write_replicas(&proxy, ctx, &container, &target, Method::POST, h).await;
            quorum_response(&answers, replicas, ctx.owner)
        }
        Method::DELETE => {
            let h = ctx.backend_headers(Some(&ctx.write_timestamp()));
            let (answers, replicas) =
                write_replicas(&proxy, ctx, &container, &target, Method::DELETE, h).await;
            // Swift counts a replica's 404 as a 204 as long as someone deleted something:
            // the object is gone either way.
            let any_deleted = answers.iter().any(|a| a.status / 100 == 2);
            let statuses: Vec<u16> = answers
                .iter()
                .map(|a| {
                    if a.status == 404 && any_deleted {
                        204
                    } else {
                        a.status
                    }
                })
                .collect();
            match best_status(&statuses, quorum_size(replicas)) {
                Some((s, idx)) => answer_response(&answers[idx], s, ctx.owner),
                None => status_text(StatusCode::SERVICE_UNAVAILABLE),
            }
        }
        _ => status_text(StatusCode::METHOD_NOT_ALLOWED),
    }
}

/// The `X-Container-Host/Partition/Device` headers for replica `i` of an object write.
pub(super) fn container_update_targets(
    proxy: &Proxy,
    account: &str,
    container: &str,
) -> impl Fn(usize, &mut HeaderMap) {
    let cring = proxy.container_ring.get();
    let cpart = cring.get_part(account, Some(container), None);
    let cnodes = cring.part_nodes(cpart);
    move |i, h| {
        if cnodes.is_empty() {
            return;
        }
        let n = &cnodes[i % cnodes.len()];
        set(h, "x-container-host", &n.host());
        set(h, "x-container-partition", &cpart.to_string());
        set(h, "x-container-device", &n.device);
    }
}

pub(super) async fn get_object(ctx: &mut Ctx, target: &ObjTarget) -> Response {
    let proxy = ctx.proxy.clone();
    if let Some(ec) = proxy.ec_policies.get(&target.policy_index).cloned() {
        let resp = super::ec_get::get_ec_object(ctx, target, ec).await;
        return clean_response_content_type(resp);
    }
    let mut h = ctx.backend_headers(None);
    set(
        &mut h,
        "x-backend-storage-policy-index",
        &target.policy_index.to_string(),
    );
    let r = if ctx
        .h("x-newest")
        .is_some_and(ringsmith::swift::conf::is_true)
    {
        proxy
            .read_newest(
                target.ring.clone(),
                target.part,
                &ctx.method,
                &target.path,
                &h,
            )
            .await
    } else {
        proxy
            .read_one(
                target.ring.clone(),
                target.part,
                &ctx.method,
                &target.path,
                &h,
            )
            .await
    };
    clean_response_content_type(to_client(r, ctx.owner))
}

fn clean_response_content_type(mut resp: Response) -> Response {
    if let Some(ct) = header(resp.headers(), "content-type") {
        let clean = clean_content_type(ct);
        if clean.len() != ct.len() {
            let clean = clean.to_string();
            set(resp.headers_mut(), "content-type", &clean);
        }
    }
    resp
}

/// Swift's `clean_content_type`: an SLO manifest's stored type ends in `;swift_bytes=N`
/// (for container listings), which clients never see.
fn clean_content_type(value: &str) -> &str {
    match value.rsplit_once(';') {
        Some((left, right)) if right.trim_start().starts_with("swift_bytes=") => left,
        _ => value,
    }
}

/// Swift's `check_content_type`: `swift_*` parameters are for middlewares only.
pub(super) fn check_content_type(ctx: &Ctx) -> Result<(), Response> {
    if ctx.content_type_overridden {
        return Ok(());
    }
    let Some(ct) = ctx.h("content-type") else {
        return Ok(());
    };
    if ct
        .split(';')
        .skip(1)
        .any(|p| p.trim_start().starts_with("swift_"))
    {
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Invalid Content-Type, swift_* is not a valid parameter name.",
        ));
    }
    Ok(())
}

/// A POST or DELETE of an object to every replica, each with its container-update target;
/// gives the answers and the replica count.
async fn write_replicas(
    proxy: &Arc<Proxy>,
    ctx: &Ctx,
    container: &str,
    target: &ObjTarget,
    method: Method,
    mut h: HeaderMap,
) -> (Vec<Answer>, usize) {
    set(
        &mut h,
        "x-backend-storage-policy-index",
        &target.policy_index.to_string(),
    );
    let cheaders = container_update_targets(proxy, &ctx.account, container);
    let replicas = target.ring.part_nodes(target.part).len();
    let answers = proxy
        .make_requests(
            target.ring.clone(),
            target.part,
            method,
            target.path.clone(),
            h,
            Bytes::new(),
            |i, h| cheaders(i, h),
        )
        .await;
    (answers, replicas)
}
