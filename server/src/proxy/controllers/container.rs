//! Container requests: listings, and PUT/POST/DELETE to every replica with the account
//! update targets.

use super::*;

pub(super) async fn container_request(ctx: &mut Ctx, body: Body) -> Response {
    let proxy = ctx.proxy.clone();
    let container = ctx.container.clone().expect("container request");
    if container.len() > proxy.constraints.max_container_name_length {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "Container name length of {} longer than {}",
                container.len(),
                proxy.constraints.max_container_name_length
            ),
        );
    }
    let ring = proxy.container_ring.get();
    let part = ring.get_part(&ctx.account, Some(&container), None);
    let base = format!("/{part}/{}/{}", quote(&ctx.account), quote(&container));
    drop(body);
    match ctx.method.clone() {
        m @ (Method::GET | Method::HEAD) => {
            let acl = if ctx.identity.as_ref().is_some_and(|i| {
                i.groups.iter().any(|g| g == &ctx.account) || i.is_reseller_admin()
            }) {
                None
            } else {
                proxy
                    .container_info(&ctx.account, &container)
                    .await
                    .read_acl
            };
            tri!(ctx.authz(acl.as_deref()).await);
            let q = tri!(listing_query(
                ctx,
                proxy.constraints.container_listing_limit
            ));
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
            let policy = r
                .header("x-backend-storage-policy-index")
                .and_then(|v| v.parse().ok())
                .and_then(|i| proxy.policies.get(i))
                .map(|p| p.name().to_string());
            let mut resp = listing_response(ctx, r);
            if let Some(name) = policy {
                set(resp.headers_mut(), "x-storage-policy", &name);
            }
            resp
        }
        Method::PUT | Method::POST | Method::DELETE => {
            tri!(ctx.authz(None).await);
            if ctx.method == Method::PUT && container.contains('/') {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Container name cannot contain slashes",
                );
            }
            if ctx.method != Method::DELETE && ctx.authorizer.is_some() {
                // tempauth's `clean_acl`, before the metadata checks, as in Swift.
                for acl_header in ["x-container-read", "x-container-write"] {
                    if let Some(v) = ctx.h(acl_header).map(str::to_string) {
                        match crate::proxy::auth::clean_acl(acl_header, &v) {
                            Ok(clean) => set(&mut ctx.headers, acl_header, &clean),
                            Err(problem) => return text(StatusCode::BAD_REQUEST, problem),
                        }
                    }
                }
            }
            tri!(check_meta(ctx, MetaTarget::Container));
            for acl_header in ["x-container-read", "x-container-write"] {
                if let Some(v) = ctx.h(acl_header) {
                    if v.len() > proxy.constraints.max_header_size {
                        return text(StatusCode::BAD_REQUEST, format!("{acl_header} too long"));
                    }
                }
            }
            let mut h = ctx.backend_headers(Some(&timestamp_now()));
            if ctx.method == Method::PUT {
                // An empty X-Storage-Policy means the default, as no header does.
                match ctx.h("x-storage-policy").filter(|n| !n.trim().is_empty()) {
                    Some(name) => match proxy.policies.by_name(name) {
                        Some(p) if !p.deprecated => set(
                            &mut h,
                            "x-backend-storage-policy-index",
                            &p.index.to_string(),
                        ),
                        Some(p) => {
                            return text(
                                StatusCode::BAD_REQUEST,
                                format!("Storage Policy {:?} is deprecated", p.name()),
                            )
                        }
                        None => {
                            return text(
                                StatusCode::BAD_REQUEST,
                                format!("Invalid X-Storage-Policy {name:?}"),
                            )
                        }
                    },
                    None => set(
                        &mut h,
                        "x-backend-storage-policy-default",
                        &proxy.policies.default_policy().index.to_string(),
                    ),
                }
                tri!(
                    proxy
                        .ensure_account(&ctx.account, &ctx.trans_id, &ctx.headers)
                        .await
                );
            }
            if ctx.method == Method::POST {
                // A container's policy is fixed at creation: Swift ignores the header on
                // POST (204, policy unchanged), and so do we.
                h.remove("x-storage-policy");
            }
            // Each container replica reports to one account replica.
            let aring = proxy.account_ring.get();
            let apart = aring.get_part(&ctx.account, None, None);
            let anodes = aring.part_nodes(apart);
            let with_account = ctx.method != Method::POST;
            proxy.forget_container(&ctx.account, &container).await;
            let replicas = ring.part_nodes(part).len();
            let answers = proxy
                .make_requests(
                    ring,
                    part,
                    ctx.method.clone(),
                    base,
                    h,
                    Bytes::new(),
                    |i, h| {
                        if with_account && !anodes.is_empty() {
                            let n = &anodes[i % anodes.len()];
                            set(h, "x-account-host", &n.host());
                            set(h, "x-account-partition", &apart.to_string());
                            set(h, "x-account-device", &n.device);
                        }
                    },
                )
                .await;
            proxy.forget_container(&ctx.account, &container).await;
            quorum_response(&answers, replicas, ctx.owner)
        }
        _ => status_text(StatusCode::METHOD_NOT_ALLOWED),
    }
}
