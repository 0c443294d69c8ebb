//! Swift's bulk delete (`POST` or `DELETE` with `?bulk-delete`): the body lists objects
//! and containers of the account, one quoted `container[/object]` per line; each is
//! deleted as its own request (with the caller's rights), and one 200 answer reports how
//! many went, how many were not there, and which failed and why, as text, JSON or XML
//! per `Accept`.

use super::*;

/// Swift's `max_deletes_per_request` default.
const MAX_DELETES: usize = 10000;
/// Swift's `max_path_length` per line is 1024 + container; a bound on the body.
const MAX_BODY: usize = MAX_DELETES * 2048;

pub(super) async fn bulk_delete(ctx: &mut Ctx, body: Body) -> Response {
    let Some(raw) = read_small(body, MAX_BODY).await else {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
    };
    let listing = String::from_utf8_lossy(&raw).into_owned();
    let lines: Vec<&str> = listing
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > MAX_DELETES {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Maximum Bulk Deletes: {MAX_DELETES} per request"),
        );
    }
    let (mut deleted, mut not_found) = (0usize, 0usize);
    let mut errors: Vec<(String, String)> = Vec::new();
    for line in lines {
        let name = percent_decode_str(line).decode_utf8_lossy().into_owned();
        let trimmed = name.trim_start_matches('/');
        let (container, object) = match trimmed.split_once('/') {
            Some((c, o)) if !o.is_empty() => (c.to_string(), Some(o.to_string())),
            Some((c, _)) => (c.to_string(), None),
            None => (trimmed.to_string(), None),
        };
        if container.is_empty() {
            errors.push((line.to_string(), "400 Bad Request".into()));
            continue;
        }
        let mut one = Ctx {
            proxy: ctx.proxy.clone(),
            method: Method::DELETE,
            account: ctx.account.clone(),
            container: Some(container),
            object,
            query: None,
            headers: HeaderMap::new(),
            identity: ctx.identity.clone(),
            trans_id: ctx.trans_id.clone(),
            owner: false,
        };
        let resp = if one.object.is_some() {
            object_request(&mut one, Body::empty()).await
        } else {
            container_request(&mut one, Body::empty()).await
        };
        match resp.status() {
            s if s.is_success() => deleted += 1,
            StatusCode::NOT_FOUND => not_found += 1,
            s => errors.push((
                format!("/{}", trimmed),
                format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or("")),
            )),
        }
    }
    let status = if errors.is_empty() {
        "200 OK"
    } else if errors.iter().any(|(_, s)| s.starts_with('5')) {
        "502 Bad Gateway"
    } else {
        "400 Bad Request"
    };
    render(ctx, deleted, not_found, status, &errors)
}

fn render(
    ctx: &Ctx,
    deleted: usize,
    not_found: usize,
    status: &str,
    errors: &[(String, String)],
) -> Response {
    let accept = ctx.h("accept").unwrap_or("").to_ascii_lowercase();
    let (ctype, body) = if accept.contains("application/json") {
        let doc = serde_json::json!({
            "Number Deleted": deleted,
            "Number Not Found": not_found,
            "Response Body": "",
            "Response Status": status,
            "Errors": errors.iter().map(|(n, s)| vec![n.clone(), s.clone()]).collect::<Vec<_>>(),
        });
        ("application/json", doc.to_string())
    } else if accept.contains("application/xml") || accept.contains("text/xml") {
        let mut errs = String::new();
        for (n, s) in errors {
            errs.push_str(&format!(
                "<object><name>{}</name><status>{}</status></object>\n",
                ringsmith::swift::escape::xml_text(n),
                ringsmith::swift::escape::xml_text(s)
            ));
        }
        (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<delete>\n<number_deleted>{deleted}</number_deleted>\n<number_not_found>{not_found}</number_not_found>\n<response_body></response_body>\n<response_status>{status}</response_status>\n<errors>\n{errs}</errors>\n</delete>\n"
            ),
        )
    } else {
        let mut errs = String::new();
        for (n, s) in errors {
            errs.push_str(&format!("{n}, {s}\n"));
        }
        (
            "text/plain",
            format!(
                "Number Deleted: {deleted}\nNumber Not Found: {not_found}\nResponse Body: \nResponse Status: {status}\nErrors:\n{errs}"
            ),
        )
    };
    let mut r = Response::new(Body::from(body));
    set(r.headers_mut(), "content-type", ctype);
    r
}
