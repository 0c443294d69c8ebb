//! staticweb: a container served as a web site to anonymous readers (and to users who
//! ask with `X-Web-Mode: true`), from its metadata: `X-Container-Meta-Web-Index` (the
//! page a directory shows), `-Web-Error` (`<status><name>` pages for errors),
//! `-Web-Listings` (HTML listings where there is no index, styled by
//! `-Web-Listings-CSS`, titled by `-Web-Listings-Label`) and `-Web-Directory-Type` (what
//! marks a directory object). Directory URLs without a trailing slash are redirected to
//! it. Everything is read through the rest of the stack with the caller's rights, so the
//! container's read ACL still decides who sees what.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use ringsmith::swift::conf::{is_true, ConfError};
use ringsmith::swift::escape::{quote, quote_with};

use crate::proxy::auth::Decision;
use crate::proxy::backend::set;
use crate::proxy::controllers::ContainerInfo;
use crate::proxy::env::{authorize_now, denied_response, ApiPath, Authorize, Caller, RemoteUser};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{header, Proxy};

pub struct StaticWeb {
    next: App,
    proxy: Arc<Proxy>,
    /// `url_base`'s scheme and host, for redirects behind another name.
    url_scheme: Option<String>,
    url_host: Option<String>,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    ctx.info.register("staticweb", serde_json::json!({}));
    let (mut url_scheme, mut url_host) = (None, None);
    if let Some(base) = ctx.section.get("url_base").filter(|b| !b.trim().is_empty()) {
        let base = base.trim();
        let (scheme, rest) = base.split_once("://").unwrap_or(("", base));
        url_scheme = Some(scheme.to_string()).filter(|s| !s.is_empty());
        url_host = Some(rest.split('/').next().unwrap_or("").to_string()).filter(|h| !h.is_empty());
    }
    Ok(Arc::new(StaticWeb {
        next,
        proxy: ctx.proxy.clone(),
        url_scheme,
        url_host,
    }))
}

/// The container's web settings.
#[derive(Default)]
struct WebMeta {
    index: String,
    error: String,
    listings: String,
    listings_label: String,
    listings_css: String,
    dir_type: String,
}

impl WebMeta {
    fn of(info: &ContainerInfo) -> WebMeta {
        if info.status / 100 != 2 {
            return WebMeta::default();
        }
        let m = |k: &str| info.meta.get(k).map_or("", |v| v.trim()).to_string();
        WebMeta {
            index: m("web-index"),
            error: m("web-error"),
            listings: m("web-listings"),
            listings_label: m("web-listings-label"),
            listings_css: m("web-listings-css"),
            dir_type: m("web-directory-type"),
        }
    }
}

/// Python's `html.escape(s, quote=True)`.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Swift's `human_readable`: 1024-steps with `Ki`, `Mi`... rounded half to even.
fn human_readable(value: u64) -> String {
    let mut v = value as f64;
    let suffixes = ['K', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'];
    let mut index: Option<usize> = None;
    while v >= 1024.0 && index.map_or(0, |i| i + 1) < suffixes.len() {
        index = Some(index.map_or(0, |i| i + 1));
        v = (v / 1024.0).round_ties_even();
    }
    match index {
        None => format!("{}", v as u64),
        Some(i) => format!("{}{}i", v.round_ties_even() as u64, suffixes[i]),
    }
}

fn status_of(r: &Response) -> u16 {
    r.status().as_u16()
}

/// One request's view: its parts (for subrequests), path and the container's settings.
struct Site<'a> {
    web: &'a StaticWeb,
    parts: Parts,
    path: ApiPath,
    meta: WebMeta,
}

impl Site<'_> {
    fn decoded_path(&self) -> String {
        ringsmith::swift::escape::unquote(self.parts.uri.path())
    }

    /// The same request (method, headers, rights) for another path of the container.
    fn same_request(&self, raw_path: &str) -> Request {
        let mut req = Request::new(Body::empty());
        *req.method_mut() = self.parts.method.clone();
        *req.uri_mut() = raw_path
            .parse()
            .unwrap_or_else(|_| axum::http::Uri::from_static("/"));
        *req.headers_mut() = self.parts.headers.clone();
        let agent = format!(
            "{} StaticWeb",
            header(&self.parts.headers, "user-agent").unwrap_or("")
        );
        set(req.headers_mut(), "user-agent", &agent);
        *req.extensions_mut() = self.parts.extensions.clone();
        req
    }

    /// A GET made for the caller (Swift's `make_env`): same rights, few headers.
    fn get_for_caller(&self, raw_path_and_query: &str) -> Request {
        Caller::of(&self.parts).subrequest(
            Method::GET,
            raw_path_and_query,
            HeaderMap::new(),
            Body::empty(),
            "SW",
        )
    }

    fn container_path(&self) -> String {
        let mut p = self.path.clone();
        p.object = None;
        p.to_path()
    }

    /// An error answer, with the container's `<status><web-error>` page as its body
    /// when there is one.
    async fn error_response(&self, resp: Response, use_error_page: bool) -> Response {
        if !use_error_page || self.meta.error.is_empty() {
            return resp;
        }
        let status = resp.status();
        let page_path = format!(
            "{}/{}",
            self.container_path(),
            quote(&format!("{}{}", status.as_u16(), self.meta.error))
        );
        let page = self.web.next.call(self.get_for_caller(&page_path)).await;
        if !page.status().is_success() {
            return resp;
        }
        let (mut p, body) = page.into_parts();
        p.status = status;
        Response::from_parts(p, body)
    }

    fn redirect_with_slash(&self) -> Response {
        let scheme = self.web.url_scheme.as_deref().unwrap_or("http");
        let host = self
            .web
            .url_host
            .clone()
            .or_else(|| header(&self.parts.headers, "host").map(str::to_string))
            .unwrap_or_else(|| "localhost".into());
        let location = format!(
            "{scheme}://{host}{}/",
            quote_with(&self.decoded_path(), b"/:@&=+$,;!*'()")
        );
        let mut r = crate::proxy::status_text(StatusCode::MOVED_PERMANENTLY);
        set(r.headers_mut(), "location", &location);
        r
    }

    fn not_found_page(&self, label: &str, prefix: &str) -> Response {
        let mut body = format!(
            "<!DOCTYPE html>\n<html>\n<head>\n<title>Listing of {}</title>\n",
            escape(label)
        );
        if !self.meta.listings_css.is_empty() {
            body.push_str(&format!(
                "  <link rel=\"stylesheet\" type=\"text/css\" href=\"{}\" />\n",
                self.css_path(prefix)
            ));
        } else {
            body.push_str("  <style type=\"text/css\">\n   h1 {font-size: 1em; font-weight: bold;}\n   p {font-size: 2}\n  </style>\n");
        }
        body.push_str("</head>\n<body>  <h1>Web Listing Disabled</h1>   <p>The owner of this web site has disabled web listing.   <p>If you are the owner of this web site, you can enable   web listing by setting X-Container-Meta-Web-Listings.</p>");
        if !self.meta.index.is_empty() {
            body.push_str(&format!(
                "<h1>Index File Not Found</h1> <p>The owner of this web site has set  <b>X-Container-Meta-Web-Index: {}</b>.  However, this file is not found.</p>",
                self.meta.index
            ));
        }
        body.push_str(" </body>\n</html>\n");
        crate::proxy::text(StatusCode::NOT_FOUND, body)
    }

    fn css_path(&self, prefix: &str) -> String {
        let css = &self.meta.listings_css;
        if css.starts_with('/') || css.starts_with("http://") || css.starts_with("https://") {
            quote_with(css, b":/")
        } else {
            "../".repeat(prefix.matches('/').count()) + &quote(css)
        }
    }

    /// The HTML listing of the container, or of `prefix` in it.
    async fn listing(&self, prefix: &str) -> Response {
        let path_label = self.decoded_path();
        let label = if self.meta.listings_label.is_empty() {
            path_label
        } else {
            let groups: Vec<&str> = path_label.split('/').collect();
            format!(
                "{}/{}",
                self.meta.listings_label,
                groups.get(4..).map(|g| g.join("/")).unwrap_or_default()
            )
        };
        if !is_true(&self.meta.listings) {
            let page = self.not_found_page(&label, prefix);
            return self.error_response(page, true).await;
        }
        let mut q = format!("{}?format=json&delimiter=/", self.container_path());
        if !prefix.is_empty() {
            q.push_str(&format!("&prefix={}", quote(prefix)));
        }
        let resp = self.web.next.call(self.get_for_caller(&q)).await;
        if !resp.status().is_success() {
            return self.error_response(resp, true).await;
        }
        let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .unwrap_or_default();
        let listing: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
        if !prefix.is_empty() && listing.is_empty() {
            let nf = crate::proxy::status_text(StatusCode::NOT_FOUND);
            return self.error_response(nf, true).await;
        }
        let tempurl_qs = self.tempurl_query();
        let tempurl_prefix =
            crate::proxy::signature::parse_qs(self.parts.uri.query().unwrap_or(""))
                .into_iter()
                .find(|(k, _)| k == "temp_url_prefix")
                .map(|(_, v)| v)
                .filter(|_| self.is_tempurl())
                .unwrap_or_default();
        let mut html = format!(
            "<!DOCTYPE html>\n<html>\n <head>\n  <title>Listing of {}</title>\n",
            escape(&label)
        );
        if !self.meta.listings_css.is_empty() {
            html.push_str(&format!(
                "  <link rel=\"stylesheet\" type=\"text/css\" href=\"{}\" />\n",
                self.css_path(prefix)
            ));
        } else {
            html.push_str("  <style type=\"text/css\">\n   h1 {font-size: 1em; font-weight: bold;}\n   th {text-align: left; padding: 0px 1em 0px 1em;}\n   td {padding: 0px 1em 0px 1em;}\n   a {text-decoration: none;}\n  </style>\n");
        }
        html.push_str(&format!(" </head>\n <body>\n  <h1 id=\"title\">Listing of {}</h1>\n  <table id=\"listing\">\n   <tr id=\"heading\">\n    <th class=\"colname\">Name</th>\n    <th class=\"colsize\">Size</th>\n    <th class=\"coldate\">Date</th>\n   </tr>\n", escape(&label)));
        if prefix.len() > tempurl_prefix.len() {
            html.push_str(&format!("   <tr id=\"parent\" class=\"item\">\n    <td class=\"colname\"><a href=\"../{tempurl_qs}\">../</a></td>\n    <td class=\"colsize\">&nbsp;</td>\n    <td class=\"coldate\">&nbsp;</td>\n   </tr>\n"));
        }
        let strip = |s: &str| -> String { s.strip_prefix(prefix).unwrap_or(s).to_string() };
        for item in &listing {
            if let Some(subdir) = item.get("subdir").and_then(|s| s.as_str()) {
                let subdir = strip(subdir);
                html.push_str(&format!("   <tr class=\"item subdir\">\n    <td class=\"colname\"><a href=\"./{}{tempurl_qs}\">{}</a></td>\n    <td class=\"colsize\">&nbsp;</td>\n    <td class=\"coldate\">&nbsp;</td>\n   </tr>\n", quote(&subdir).replace('.', "%2E"), escape(&subdir)));
            }
        }
        for item in &listing {
            let Some(name) = item.get("name").and_then(|s| s.as_str()) else {
                continue;
            };
            let name = strip(name);
            let content_type = item
                .get("content_type")
                .and_then(|s| s.as_str())
                .unwrap_or("");
            let bytes = human_readable(item.get("bytes").and_then(|b| b.as_u64()).unwrap_or(0));
            let last_modified = escape(
                item.get("last_modified")
                    .and_then(|s| s.as_str())
                    .unwrap_or(""),
            )
            .split('.')
            .next()
            .unwrap_or("")
            .replace('T', " ");
            let classes: Vec<String> = content_type
                .split('/')
                .map(|t| format!("type-{}", escape(&t.to_lowercase())))
                .collect();
            html.push_str(&format!("   <tr class=\"item {}\">\n    <td class=\"colname\"><a href=\"./{}{tempurl_qs}\">{}</a></td>\n    <td class=\"colsize\">{bytes}</td>\n    <td class=\"coldate\">{last_modified}</td>\n   </tr>\n", classes.join(" "), quote(&name).replace('.', "%2E"), escape(&name)));
        }
        html.push_str("  </table>\n </body>\n</html>\n");
        let mut r = crate::proxy::text(StatusCode::OK, html);
        set(r.headers_mut(), "content-type", "text/html; charset=UTF-8");
        set(r.headers_mut(), "x-backend-content-generator", "staticweb");
        if self.parts.method == Method::HEAD {
            let len = r.headers().get("content-length").cloned();
            let (mut p, _) = r.into_parts();
            if let Some(l) = len {
                p.headers.insert("content-length", l);
            }
            return Response::from_parts(p, Body::empty());
        }
        r
    }

    /// Whether the request came with a valid tempurl (tempurl stood the auth aside).
    fn is_tempurl(&self) -> bool {
        self.parts
            .extensions
            .get::<crate::proxy::env::AuthorizeOverride>()
            .is_some()
    }

    /// The tempurl's parameters for the links of a listing made under a prefix tempurl.
    fn tempurl_query(&self) -> String {
        if !self.is_tempurl() {
            return String::new();
        }
        let q = crate::proxy::signature::parse_qs(self.parts.uri.query().unwrap_or(""));
        let get = |k: &str| crate::proxy::signature::first(&q, k).map(str::to_string);
        let Some(prefix) = get("temp_url_prefix") else {
            return String::new();
        };
        let mut parts = vec![
            format!("temp_url_prefix={}", quote(&prefix)),
            format!(
                "temp_url_expires={}",
                quote(&get("temp_url_expires").unwrap_or_default())
            ),
            format!("temp_url_sig={}", get("temp_url_sig").unwrap_or_default()),
        ];
        if let Some(ip) = get("temp_url_ip_range").filter(|i| !i.is_empty()) {
            parts.push(format!("temp_url_ip_range={}", quote(&ip)));
        }
        if get("inline").is_some() {
            parts.push("inline".into());
        }
        format!("?{}", parts.join("&amp;"))
    }

    async fn handle_container(&self, info: &ContainerInfo) -> Response {
        if authorize_now(&self.parts, &self.path, info.read_acl.as_deref()) == Decision::Denied {
            return self
                .error_response(denied_response(&self.parts), true)
                .await;
        }
        if self.meta.listings.is_empty() && self.meta.index.is_empty() {
            if header(&self.parts.headers, "x-web-mode").is_some_and(is_true) {
                return crate::proxy::status_text(StatusCode::NOT_FOUND);
            }
            let whole = self
                .parts
                .uri
                .path_and_query()
                .map_or(self.parts.uri.path(), |pq| pq.as_str())
                .to_string();
            return self.web.next.call(self.same_request(&whole)).await;
        }
        if !self.parts.uri.path().ends_with('/') {
            return self.redirect_with_slash();
        }
        if self.meta.index.is_empty() {
            return self.listing("").await;
        }
        let index_path = format!("{}{}", self.parts.uri.path(), quote(&self.meta.index));
        let resp = self.web.next.call(self.same_request(&index_path)).await;
        let s = status_of(&resp);
        if s == 404 {
            return self.listing("").await;
        }
        if !(200..400).contains(&s) {
            return self.error_response(resp, true).await;
        }
        resp
    }

    async fn handle_object(&self, info: &ContainerInfo) -> Response {
        let _ = info;
        let raw = self.parts.uri.path().to_string();
        let with_query = match self.parts.uri.query() {
            Some(q) => format!("{raw}?{q}"),
            None => raw.clone(),
        };
        let resp = self.web.next.call(self.same_request(&with_query)).await;
        let mut status = status_of(&resp);
        if (200..400).contains(&status) {
            let dir_type = if self.meta.dir_type.is_empty() {
                "application/directory"
            } else {
                &self.meta.dir_type
            };
            let length: u64 = header(resp.headers(), "content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if header(resp.headers(), "content-type") == Some(dir_type) && length <= 1 {
                status = 404;
            } else {
                return resp;
            }
        }
        if status != 404 {
            return self.error_response(resp, false).await;
        }
        if self.meta.listings.is_empty() && self.meta.index.is_empty() {
            return resp;
        }
        let mut status = 404;
        if !self.meta.index.is_empty() {
            let mut index_path = raw.clone();
            if !index_path.ends_with('/') {
                index_path.push('/');
            }
            index_path.push_str(&quote(&self.meta.index));
            let index = self.web.next.call(self.same_request(&index_path)).await;
            status = status_of(&index);
            if (200..400).contains(&status) {
                if !raw.ends_with('/') {
                    return self.redirect_with_slash();
                }
                return index;
            }
        }
        if status != 404 {
            return crate::proxy::status_text(
                StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND),
            );
        }
        let object = self.path.object.clone().unwrap_or_default();
        if !raw.ends_with('/') {
            let q = format!(
                "{}?format=json&limit=1&delimiter=/&prefix={}",
                self.container_path(),
                quote(&format!("{object}/"))
            );
            let probe = self.web.next.call(self.get_for_caller(&q)).await;
            let ok = probe.status().is_success();
            let body = axum::body::to_bytes(probe.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let listed = serde_json::from_slice::<Vec<serde_json::Value>>(&body)
                .map(|l| !l.is_empty())
                .unwrap_or(false);
            if !ok || !listed {
                let nf = crate::proxy::status_text(StatusCode::NOT_FOUND);
                return self.error_response(nf, true).await;
            }
            return self.redirect_with_slash();
        }
        self.listing(&object).await
    }
}

impl Handler for StaticWeb {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            // Only behind an auth middleware (Swift: `swift.authorize` must be set).
            if req.extensions().get::<Authorize>().is_none()
                || !matches!(*req.method(), Method::GET | Method::HEAD)
            {
                return self.next.call(req).await;
            }
            let web_mode = header(req.headers(), "x-web-mode").is_some_and(is_true);
            if req.extensions().get::<RemoteUser>().is_some() && !web_mode {
                return self.next.call(req).await;
            }
            let Some(path) = ApiPath::parse(req.uri().path()).filter(|p| p.container.is_some())
            else {
                return self.next.call(req).await;
            };
            let (parts, _body) = req.into_parts();
            let info = self
                .proxy
                .container_info(&path.account, path.container.as_deref().unwrap_or(""))
                .await;
            let site = Site {
                web: self,
                meta: WebMeta::of(&info),
                parts,
                path,
            };
            if site.path.object.is_some() {
                site.handle_object(&info).await
            } else {
                site.handle_container(&info).await
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_swift_prints_them() {
        assert_eq!(human_readable(0), "0");
        assert_eq!(human_readable(1023), "1023");
        assert_eq!(human_readable(1024), "1Ki");
        assert_eq!(human_readable(1536), "2Ki");
        assert_eq!(human_readable(2560), "2Ki", "half to even");
        assert_eq!(human_readable(5 << 20), "5Mi");
    }

    #[test]
    fn html_escapes_as_python() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#x27;x&#x27;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
