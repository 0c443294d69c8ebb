//! listing_formats: account and container listings in the format the client asked for.
//! Everything below it (the app, and middlewares that decorate listings) speaks JSON; this
//! layer asks for JSON whatever the client wants and renders plain text, JSON or XML,
//! choosing by `?format=` first and the `Accept` header second (406 when nothing offered
//! is acceptable), as Swift's does.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use http_body_util::BodyExt;
use ringsmith::swift::conf::ConfError;

use crate::proxy::backend::set;
use crate::proxy::env::{query_param, ApiPath};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{empty_body_with_length_header, header, status_text};
use ringsmith::swift::escape::{xml_attr, xml_text};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Plain,
    Json,
    Xml,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Plain => "text/plain; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "application/xml; charset=utf-8",
        }
    }
}

/// `None` means 406 Not Acceptable.
pub fn choose(format_param: Option<&str>, accept: Option<&str>) -> Option<Format> {
    if let Some(f) = format_param {
        return Some(match f.to_ascii_lowercase().as_str() {
            "json" => Format::Json,
            "xml" => Format::Xml,
            _ => Format::Plain,
        });
    }
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(Format::Plain);
    };
    // Highest q wins; ties go to the order of our offers (plain, json, xml).
    let mut best: Option<(f32, usize, Format)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|v| v.parse::<f32>().ok())
            })
            .next()
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        let offers: &[(usize, Format)] = match mime.as_str() {
            "text/plain" => &[(0, Format::Plain)],
            "application/json" => &[(1, Format::Json)],
            "application/xml" | "text/xml" => &[(2, Format::Xml)],
            "*/*" => &[(0, Format::Plain)],
            "text/*" => &[(0, Format::Plain)],
            "application/*" => &[(1, Format::Json)],
            _ => &[],
        };
        for &(rank, f) in offers {
            let better = match best {
                None => true,
                Some((bq, br, _)) => q > bq || (q == bq && rank < br),
            };
            if better {
                best = Some((q, rank, f));
            }
        }
    }
    best.map(|b| b.2)
}

fn field(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// Renders a backend JSON listing. `container` is `Some` for object listings.
pub fn render(listing: &[Value], format: Format, account: &str, container: Option<&str>) -> String {
    match format {
        Format::Json => serde_json::to_string(listing).unwrap_or_else(|_| "[]".into()),
        Format::Plain => {
            let mut out = String::new();
            for rec in listing {
                let name = rec.get("name").or_else(|| rec.get("subdir"));
                if let Some(n) = name {
                    out.push_str(&field(n));
                    out.push('\n');
                }
            }
            out
        }
        Format::Xml => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            match container {
                Some(c) => {
                    out.push_str(&format!("<container name=\"{}\">", xml_attr(c)));
                    for rec in listing {
                        if let Some(sub) = rec.get("subdir") {
                            let s = field(sub);
                            out.push_str(&format!(
                                "<subdir name=\"{}\"><name>{}</name></subdir>",
                                xml_attr(&s),
                                xml_text(&s)
                            ));
                        } else {
                            out.push_str("<object>");
                            for k in ["name", "hash", "bytes", "content_type", "last_modified"] {
                                let v = rec.get(k).map(field).unwrap_or_default();
                                out.push_str(&format!("<{k}>{}</{k}>", xml_text(&v)));
                            }
                            out.push_str("</object>");
                        }
                    }
                    out.push_str("</container>");
                }
                None => {
                    out.push_str(&format!("<account name=\"{}\">\n", xml_attr(account)));
                    for rec in listing {
                        if let Some(sub) = rec.get("subdir") {
                            out.push_str(&format!(
                                "<subdir name=\"{}\" />\n",
                                xml_attr(&field(sub))
                            ));
                        } else {
                            out.push_str("<container>");
                            for k in ["name", "count", "bytes", "last_modified", "storage_policy"] {
                                if let Some(v) = rec.get(k) {
                                    out.push_str(&format!("<{k}>{}</{k}>", xml_text(&field(v))));
                                }
                            }
                            out.push_str("</container>\n");
                        }
                    }
                    out.push_str("</account>");
                }
            }
            out
        }
    }
}

/// Put on a listing response by a middleware that answered in its own final form
/// (Swift's `swift.format_listing = False`, which object versioning sets for `?versions`).
#[derive(Clone, Copy, Debug)]
pub struct ListingAlreadyFormatted;

/// Clients never see names in the reserved namespace (those holding a NUL), as Swift's
/// `filter_reserved` drops them from what a backend listed.
fn without_reserved_names(listing: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    listing
        .into_iter()
        .filter(|entry| {
            ["name", "subdir"]
                .iter()
                .all(|k| !entry[*k].as_str().is_some_and(|v| v.contains('\0')))
        })
        .collect()
}

pub struct ListingFormats {
    next: App,
}

pub fn build(_ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    Ok(Arc::new(ListingFormats { next }))
}

/// Swift renders listings up to this size; a larger answer passes through as JSON.
const MAX_LISTING_BYTES: usize = 64 << 20;

impl Handler for ListingFormats {
    fn call(&self, mut req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let Some(path) = ApiPath::parse(req.uri().path()) else {
                return self.next.call(req).await;
            };
            let is_listing = path.object.is_none()
                && !req.uri().path().ends_with('/')
                && matches!(*req.method(), Method::GET | Method::HEAD);
            if !is_listing {
                return self.next.call(req).await;
            }
            let query = req.uri().query().map(str::to_string);
            let format_param = query_param(query.as_deref(), "format");
            let Some(format) = choose(format_param.as_deref(), header(req.headers(), "accept"))
            else {
                return status_text(StatusCode::NOT_ACCEPTABLE);
            };
            let mut params: Vec<String> = query
                .as_deref()
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty() && p.split('=').next() != Some("format"))
                .map(str::to_string)
                .collect();
            params.push("format=json".into());
            // swob's `get_listing_content_type`: an explicit format is what is accepted
            // now (object versioning's JSON-only `?versions` listing reads it).
            if format_param.is_some() {
                if let Ok(v) = axum::http::HeaderValue::from_str(format.content_type()) {
                    req.headers_mut().insert("accept", v);
                }
            }
            let uri = format!("{}?{}", req.uri().path(), params.join("&"));
            if let Ok(u) = uri.parse() {
                *req.uri_mut() = u;
            }
            let is_head = req.method() == Method::HEAD;
            let allow_reserved = header(req.headers(), "x-backend-allow-reserved-names")
                .is_some_and(ringsmith::swift::conf::is_true);
            let resp = self.next.call(req).await;
            if !matches!(resp.status(), StatusCode::OK | StatusCode::NO_CONTENT)
                || resp.extensions().get::<ListingAlreadyFormatted>().is_some()
            {
                return resp;
            }
            let (mut parts, body) = resp.into_parts();
            if format_param.is_none() {
                match header(&parts.headers, "vary").map(str::to_string) {
                    Some(v)
                        if !v
                            .split(',')
                            .any(|x| x.trim().eq_ignore_ascii_case("accept")) =>
                    {
                        set(&mut parts.headers, "vary", &format!("{v}, Accept"))
                    }
                    Some(_) => {}
                    None => set(&mut parts.headers, "vary", "Accept"),
                }
            }
            let is_json = header(&parts.headers, "content-type")
                .is_some_and(|ct| ct.split(';').next() == Some("application/json"));
            if !is_json {
                return axum::response::Response::from_parts(parts, body);
            }
            set(&mut parts.headers, "content-type", format.content_type());
            if is_head {
                set(&mut parts.headers, "content-length", "0");
                return axum::response::Response::from_parts(parts, body);
            }
            let Ok(collected) = http_body_util::Limited::new(body, MAX_LISTING_BYTES)
                .collect()
                .await
            else {
                return status_text(StatusCode::SERVICE_UNAVAILABLE);
            };
            let raw = collected.to_bytes();
            if format == Format::Json
                && raw.first() == Some(&b'[')
                && (allow_reserved || !super::listing_mentions(&raw, "\\u0000"))
            {
                // Asked for JSON, and no reserved name to drop (a NUL is always written
                // `\u0000` in JSON): the container server's own JSON is the answer, as it
                // would be after parsing and writing it again.
                set(&mut parts.headers, "content-length", &raw.len().to_string());
                return axum::response::Response::from_parts(parts, Body::from(raw));
            }
            if let Some(text) = (format == Format::Plain)
                .then(|| plain_names(&raw, allow_reserved))
                .flatten()
            {
                return rendered_response(parts, text);
            }
            let listing: Vec<serde_json::Value> = if raw.is_empty() {
                Vec::new()
            } else {
                match serde_json::from_slice::<Vec<serde_json::Value>>(&raw) {
                    Ok(l) if l.iter().all(|v| v.is_object()) => l,
                    // Not a listing after all: pass it through as it came.
                    _ => {
                        set(
                            &mut parts.headers,
                            "content-type",
                            "application/json; charset=utf-8",
                        );
                        return axum::response::Response::from_parts(parts, Body::from(raw));
                    }
                }
            };
            let listing = if allow_reserved {
                listing
            } else {
                without_reserved_names(listing)
            };
            let rendered = render(&listing, format, &path.account, path.container.as_deref());
            rendered_response(parts, rendered)
        })
    }
}

/// A rendered listing: 204 when there is nothing to show, as Swift answers.
fn rendered_response(
    mut parts: axum::http::response::Parts,
    rendered: String,
) -> axum::response::Response {
    parts.status = if rendered.is_empty() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::OK
    };
    set(
        &mut parts.headers,
        "content-length",
        &rendered.len().to_string(),
    );
    let body = if rendered.is_empty() {
        empty_body_with_length_header()
    } else {
        Body::from(rendered)
    };
    axum::response::Response::from_parts(parts, body)
}

/// The plain-text listing (one name per line), reading only `name` and `subdir` of each
/// row instead of building a JSON value of every field: the common listing, ten times
/// cheaper. `None` when a row is not of the usual shape (a name that is not a string, or
/// a row with neither); the general path then decides, as before.
fn plain_names(raw: &[u8], allow_reserved: bool) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Row {
        name: Option<String>,
        subdir: Option<String>,
    }
    let rows: Vec<Row> = serde_json::from_slice(raw).ok()?;
    let mut out = String::with_capacity(raw.len() / 4);
    for row in rows {
        let reserved = [&row.name, &row.subdir]
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| v.contains('\0')));
        let shown = row.name.or(row.subdir)?;
        if reserved && !allow_reserved {
            continue;
        }
        out.push_str(&shown);
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container server that answers every request with `body` as a JSON listing.
    struct FixedListing(&'static str);

    impl Handler for FixedListing {
        fn call(&self, _req: Request) -> ResponseFuture<'_> {
            let body = self.0;
            Box::pin(async move {
                let mut r = axum::response::Response::new(Body::from(body));
                set(
                    r.headers_mut(),
                    "content-type",
                    "application/json; charset=utf-8",
                );
                set(r.headers_mut(), "content-length", &body.len().to_string());
                r
            })
        }
    }

    async fn list(backend: &'static str, query: &str) -> (StatusCode, String, String) {
        let app = ListingFormats {
            next: Arc::new(FixedListing(backend)),
        };
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = format!("/v1/AUTH_t/c{query}").parse().unwrap();
        let resp = app.call(req).await;
        let status = resp.status();
        let length = header(resp.headers(), "content-length")
            .unwrap_or("")
            .to_string();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(length, body.len().to_string());
        (status, body, length)
    }

    #[tokio::test]
    async fn a_json_listing_is_the_backends_own_unless_a_reserved_name_must_go() {
        // Spaced as Python writes it, to tell a pass-through from a rewrite.
        let plain = r#"[{"name": "a", "bytes": 1}, {"subdir": "b/"}]"#;
        let (status, body, _) = list(plain, "?format=json").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, plain));

        let reserved =
            r#"[{"name": "\u0000versions\u0000a", "bytes": 1}, {"name": "a", "bytes": 1}]"#;
        let (status, body, _) = list(reserved, "?format=json").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, r#"[{"name":"a","bytes":1}]"#);

        let (_, text, _) = list(reserved, "").await;
        assert_eq!(text, "a\n");
        let (_, text, _) = list(plain, "").await;
        assert_eq!(text, "a\nb/\n");
        // Rows of another shape take the general path, which prints what it finds.
        let (_, text, _) = list(r#"[{"name": 5}, {"subdir": "d/"}, {"bytes": 1}]"#, "").await;
        assert_eq!(text, "5\nd/\n");
        let (status, body, _) = list("[]", "?format=json").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"));
        let (status, body, _) = list("[]", "").await;
        assert_eq!((status, body.as_str()), (StatusCode::NO_CONTENT, ""));
    }

    #[test]
    fn reserved_names_are_dropped() {
        let listing = vec![
            serde_json::json!({"name": "\u{0}versions\u{0}c"}),
            serde_json::json!({"subdir": "\u{0}x/"}),
            serde_json::json!({"name": "c"}),
        ];
        let kept = without_reserved_names(listing);
        assert_eq!(kept, vec![serde_json::json!({"name": "c"})]);
    }

    #[test]
    fn negotiation() {
        assert_eq!(choose(None, None), Some(Format::Plain));
        assert_eq!(choose(Some("JSON"), Some("text/xml")), Some(Format::Json));
        assert_eq!(choose(None, Some("application/json")), Some(Format::Json));
        assert_eq!(
            choose(None, Some("text/plain;q=0.5, application/xml")),
            Some(Format::Xml)
        );
        assert_eq!(choose(None, Some("image/png")), None);
    }

    #[test]
    fn renders_like_swift() {
        let l: Vec<Value> = serde_json::from_str(
            r#"[{"subdir":"a/"},{"bytes":10,"hash":"0af9","name":"c.txt","content_type":"text/plain","last_modified":"2026-11-22T02:10:27.050530"}]"#,
        )
        .unwrap();
        assert_eq!(
            render(&l, Format::Plain, "AUTH_t", Some("c")),
            "a/\nc.txt\n"
        );
        let xml = render(&l, Format::Xml, "AUTH_t", Some("cont2"));
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"cont2\"><subdir name=\"a/\"><name>a/</name></subdir><object><name>c.txt</name><hash>0af9</hash><bytes>10</bytes><content_type>text/plain</content_type><last_modified>2026-11-22T02:10:27.050530</last_modified></object></container>"
        );
    }
}
