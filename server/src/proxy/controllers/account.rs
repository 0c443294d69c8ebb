//! Account requests: listings and stats, and (for reseller admins) PUT, POST, DELETE.

use super::*;

pub(super) async fn account_request(ctx: &mut Ctx, body: Body) -> Response {
    let proxy = ctx.proxy.clone();
    // tempauth checks an account ACL header before anything else.
    let acl_header = ctx.h(account_acl::HEADER).map(str::to_string);
    if let Some(v) = &acl_header {
        if let Err(problem) = account_acl::validate(v) {
            let mut r = text(
                StatusCode::BAD_REQUEST,
                account_acl::error_body(&problem, v),
            );
            set(r.headers_mut(), "content-type", "text/plain; charset=UTF-8");
            return r;
        }
    }
    tri!(ctx.authz(None).await);
    let ring = proxy.account_ring.get();
    let part = ring.get_part(&ctx.account, None, None);
    let base = format!("/{part}/{}", quote(&ctx.account));
    match ctx.method.clone() {
        m @ (Method::GET | Method::HEAD) => {
            let q = tri!(listing_query(ctx, proxy.constraints.account_listing_limit));
            let path = format!("{base}?{q}");
            let h = ctx.backend_headers(None);
            let r = if ctx
                .h("x-newest")
                .is_some_and(ringsmith::swift::conf::is_true)
            {
                proxy.read_newest(ring, part, &m, &path, &h).await
            } else {
                proxy.read_one(ring, part, &m, &path, &h).await
            };
            if r.status == StatusCode::NOT_FOUND && proxy.account_autocreate {
                // Swift's white lie: an account nobody wrote to yet is an empty one.
                return fake_empty_account(ctx);
            }
            let stored_acl = r.header(account_acl::SYSMETA).map(str::to_string);
            let mut resp = listing_response(ctx, r);
            if ctx.owner {
                if let Some(shown) = stored_acl.as_deref().and_then(account_acl::display) {
                    set(resp.headers_mut(), account_acl::HEADER, &shown);
                }
            }
            resp
        }
        Method::POST | Method::PUT | Method::DELETE => {
            if ctx.method != Method::POST
                && !(proxy.allow_account_management
                    && ctx.identity.as_ref().is_some_and(|i| i.is_reseller_admin()))
            {
                return status_text(StatusCode::METHOD_NOT_ALLOWED);
            }
            tri!(check_meta(ctx, MetaTarget::Account));
            drop(body);
            if ctx.method == Method::POST {
                tri!(
                    proxy
                        .ensure_account(&ctx.account, &ctx.trans_id, &ctx.headers)
                        .await
                );
            }
            let mut h = ctx.backend_headers(Some(&timestamp_now()));
            if let (Some(v), true) = (&acl_header, ctx.owner) {
                set(&mut h, account_acl::SYSMETA, v);
            }
            let replicas = ring.part_nodes(part).len();
            proxy.forget_account(&ctx.account).await;
            let answers = proxy
                .make_requests(
                    ring,
                    part,
                    ctx.method.clone(),
                    base,
                    h,
                    Bytes::new(),
                    |_, _| {},
                )
                .await;
            proxy.forget_account(&ctx.account).await;
            quorum_response(&answers, replicas, ctx.owner)
        }
        _ => status_text(StatusCode::METHOD_NOT_ALLOWED),
    }
}

pub(super) fn fake_empty_account(ctx: &Ctx) -> Response {
    // A HEAD of an account is a 204, as from the account server.
    let (status, body) = if ctx.method == Method::HEAD {
        (StatusCode::NO_CONTENT, "")
    } else {
        (StatusCode::OK, "[]")
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    set(h, "content-type", "application/json; charset=utf-8");
    set(h, "content-length", &body.len().to_string());
    set(h, "x-account-container-count", "0");
    set(h, "x-account-object-count", "0");
    set(h, "x-account-bytes-used", "0");
    let ts = timestamp_now();
    set(h, "x-timestamp", &ts);
    set(h, "x-put-timestamp", &ts);
    r
}
