//! formpost: uploads straight from a browser's HTML form. A `multipart/form-data` POST to
//! a container (or a prefix in one) carries form fields — `redirect`, `max_file_size`,
//! `max_file_count`, `expires`, `signature`, optionally `x_delete_at`/`x_delete_after`,
//! `content-type`, `content-encoding` — and file parts; each file becomes an object
//! `<path>/<filename>` when `signature` is the HMAC, under one of the account's or the
//! container's `Temp-URL-Key`s, of the path, redirect, size and count limits and expiry
//! (the digests tempurl allows). The answer is Swift's: a `303` to `redirect` with
//! `status` and `message` in its query, or the status itself as text.
//!
//! Files stream from the form into their uploads (never held whole), each capped at
//! `max_file_size`: a file past it is refused and nothing of it is stored. The upload is
//! made on the form's own authority (the signature is its authorization), below the auth
//! middleware, to exactly the signed path plus the file's name.

pub mod multipart;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use ringsmith::swift::conf::ConfError;
use ringsmith::swift::escape::{quote, unquote_bytes};
use tokio::sync::Mutex;

use crate::proxy::backend::set;
use crate::proxy::env::Caller;
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::signature::{self, parse_int, Digest};
use crate::proxy::{header, text, Proxy};
use multipart::{parse_content_disposition, MultipartReader};

use super::tempurl::temp_url_keys;

/// The most of a form field's value that is kept (Swift's `MAX_VALUE_LENGTH`).
const MAX_VALUE_LENGTH: usize = 4096;
/// How much of a file is read from the form at a time.
const READ_CHUNK_SIZE: usize = 64 * 1024;

pub struct FormPost {
    next: App,
    proxy: Arc<Proxy>,
    digests: BTreeSet<Digest>,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let (digests, _) = signature::allowed_digests(ctx.section.get("allowed_digests"))
        .map_err(|e| ctx.bad_option("allowed_digests", e))?;
    let mut info = serde_json::json!({
        "allowed_digests": digests.iter().map(|d| d.name()).collect::<Vec<_>>(),
    });
    let deprecated: Vec<&str> = digests
        .iter()
        .filter(|d| d.is_deprecated())
        .map(|d| d.name())
        .collect();
    if !deprecated.is_empty() {
        info["deprecated_digests"] = serde_json::json!(deprecated);
    }
    ctx.info.register("formpost", info);
    Ok(Arc::new(FormPost {
        next,
        proxy: ctx.proxy.clone(),
        digests,
    }))
}

/// Why a form is refused outright (Swift's `FormInvalid`, `EOFError`, `FormUnauthorized`).
enum FormError {
    /// 400 `FormPost: <message>`.
    Invalid(&'static str),
    /// 401 `FormPost: <Message In Title Case>`.
    Unauthorized(&'static str),
    /// The client's body broke off.
    Read,
}

/// Python's `str.title()` for the ASCII messages used here.
fn title(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut start = true;
    for c in message.chars() {
        if c.is_ascii_alphabetic() {
            out.push(if start {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            });
            start = false;
        } else {
            out.push(c);
            start = true;
        }
    }
    out
}

fn plain(status: StatusCode, body: impl Into<Bytes>) -> Response {
    let body: Bytes = body.into();
    let mut r = Response::new(Body::from(body.clone()));
    *r.status_mut() = status;
    set(r.headers_mut(), "content-type", "text/plain");
    set(r.headers_mut(), "content-length", &body.len().to_string());
    r
}

fn error_response(e: FormError, raw_path: &str) -> Response {
    match e {
        FormError::Invalid(m) => plain(StatusCode::BAD_REQUEST, format!("FormPost: {m}")),
        FormError::Unauthorized(m) => {
            let mut r = text(StatusCode::UNAUTHORIZED, format!("FormPost: {}", title(m)));
            set(
                r.headers_mut(),
                "www-authenticate",
                &crate::proxy::www_authenticate(raw_path),
            );
            r
        }
        FormError::Read => crate::proxy::status_text(StatusCode::from_u16(499).expect("499")),
    }
}

/// `int(value or 0)` as Swift reads a form's numbers.
fn form_int(value: Option<&String>) -> Option<i64> {
    match value.map(String::as_str) {
        None | Some("") => Some(0),
        Some(v) => parse_int(v),
    }
}

/// What one file's upload came to: its status, headers and (for errors) body.
struct Upload {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl FormPost {
    async fn translate(&self, req: Request, boundary: &str) -> Result<Response, FormError> {
        let (mut parts, body) = req.into_parts();
        let raw_path = parts.uri.path().to_string();
        let decoded_path = String::from_utf8_lossy(&unquote_bytes(&raw_path)).into_owned();
        let keys = self.keys(&decoded_path).await;
        let agent = format!(
            "{} FormPost",
            header(&parts.headers, "user-agent").unwrap_or("")
        );
        set(&mut parts.headers, "user-agent", agent.trim());
        let caller = Caller::of(&parts);

        let reader = Arc::new(Mutex::new(MultipartReader::new(body, boundary.as_bytes())));
        let started = reader.lock().await.start().await;
        match started {
            Err(_) => return Err(FormError::Read),
            Ok(Err(_)) => {
                return Ok(plain(
                    StatusCode::BAD_REQUEST,
                    "FormPost: invalid starting boundary",
                ))
            }
            Ok(Ok(())) => {}
        }

        let mut attributes: BTreeMap<String, String> = BTreeMap::new();
        let mut outcome: Option<(StatusCode, &'static str)> = None;
        let mut last_upload: Option<Upload> = None;
        let mut file_count: i64 = 0;
        loop {
            let part = reader.lock().await.next_part().await;
            let Some(hdrs) = part.map_err(|_| FormError::Read)? else {
                break;
            };
            let (disp, attrs) =
                parse_content_disposition(hdrs.get("content-disposition").map_or("", |s| s));
            let filename = attrs.get("filename").filter(|f| !f.is_empty());
            if disp == "form-data" && filename.is_some() {
                file_count += 1;
                let max_count = form_int(attributes.get("max_file_count"))
                    .ok_or(FormError::Invalid("max_file_count not an integer"))?;
                if file_count > max_count {
                    outcome = Some((StatusCode::BAD_REQUEST, "max file count exceeded"));
                    break;
                }
                let mut file_attributes = attributes.clone();
                file_attributes.insert("filename".into(), filename.cloned().unwrap_or_default());
                if !attributes.contains_key("content-type") {
                    if let Some(ct) = hdrs.get("content-type") {
                        let ct = if ct.is_empty() {
                            "application/octet-stream"
                        } else {
                            ct
                        };
                        file_attributes.insert("content-type".into(), ct.to_string());
                    }
                }
                if !attributes.contains_key("content-encoding") {
                    if let Some(ce) = hdrs.get("content-encoding") {
                        file_attributes.insert("content-encoding".into(), ce.clone());
                    }
                }
                let upload = self
                    .upload(&caller, &decoded_path, &file_attributes, &reader, &keys)
                    .await?;
                let ok = upload.status.is_success();
                outcome = Some((upload.status, ""));
                last_upload = Some(upload);
                if !ok {
                    break;
                }
            } else {
                let mut data = Vec::new();
                let mut r = reader.lock().await;
                while data.len() < MAX_VALUE_LENGTH {
                    let chunk = r
                        .read(MAX_VALUE_LENGTH - data.len())
                        .await
                        .map_err(|_| FormError::Read)?;
                    if chunk.is_empty() {
                        break;
                    }
                    data.extend_from_slice(&chunk);
                }
                drop(r);
                if let Some(name) = attrs.get("name") {
                    let value = String::from_utf8_lossy(&data);
                    let value = value.trim_end_matches(['\r', '\n', '-']);
                    attributes.insert(name.to_lowercase(), value.to_string());
                }
            }
        }
        let (status, message) = outcome.unwrap_or((StatusCode::BAD_REQUEST, "no files to process"));
        let status_line = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let mut out_headers = HeaderMap::new();
        if let Some(u) = &last_upload {
            for (k, v) in &u.headers {
                if k.as_str().starts_with("access-control") {
                    out_headers.append(k.clone(), v.clone());
                }
            }
        }
        let redirect = attributes.get("redirect").filter(|r| !r.is_empty());
        let Some(redirect) = redirect else {
            let mut body = Bytes::from(if message.is_empty() {
                status_line
            } else {
                format!("{status_line}\r\nFormPost: {}", title(message))
            });
            if let Some(u) = last_upload.filter(|u| !u.status.is_success() && !u.body.is_empty()) {
                if !status.is_success() {
                    body = u.body;
                }
            }
            let mut r = plain(status, body);
            r.headers_mut().extend(out_headers);
            return Ok(r);
        };
        let location = format!(
            "{redirect}{}status={}&message={}",
            if redirect.contains('?') { '&' } else { '?' },
            status.as_u16(),
            quote(message)
        );
        let body = format!(
            "<html><body><p><a href=\"{location}\">Click to continue...</a></p></body></html>"
        );
        let mut r = Response::new(Body::from(body.clone()));
        *r.status_mut() = StatusCode::SEE_OTHER;
        *r.headers_mut() = out_headers;
        match axum::http::HeaderValue::from_bytes(location.as_bytes()) {
            Ok(v) => {
                r.headers_mut().insert("location", v);
            }
            Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "FormPost: invalid redirect")),
        }
        set(r.headers_mut(), "content-length", &body.len().to_string());
        Ok(r)
    }

    /// The keys of the account and container the form posts to; none when the path
    /// names no container.
    async fn keys(&self, decoded_path: &str) -> Vec<String> {
        let parts: Vec<&str> = decoded_path.splitn(5, '/').collect();
        match parts.as_slice() {
            ["", v, a, c, ..] if matches!(*v, "v1" | "v1.0") && !a.is_empty() && !c.is_empty() => {
                temp_url_keys(&self.proxy, a, c)
                    .await
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// One file of the form: its checks (in Swift's order), then its upload.
    async fn upload(
        &self,
        caller: &Caller,
        decoded_path: &str,
        attributes: &BTreeMap<String, String>,
        reader: &Arc<Mutex<MultipartReader>>,
        keys: &[String],
    ) -> Result<Upload, FormError> {
        if keys.is_empty() {
            return Err(FormError::Unauthorized("invalid signature"));
        }
        let max_file_size = form_int(attributes.get("max_file_size"))
            .ok_or(FormError::Invalid("max_file_size not an integer"))?;
        let mut put_headers = HeaderMap::new();
        set(&mut put_headers, "transfer-encoding", "chunked");
        let mut path = decoded_path.to_string();
        if !path.ends_with('/') && path.matches('/').count() < 4 {
            path.push('/');
        }
        match attributes.get("filename").map(String::as_str) {
            Some(f) if !f.is_empty() => path.push_str(f),
            _ => path.push_str("filename"),
        }
        if let Some(v) = attributes.get("x_delete_at") {
            let at = parse_int(v).ok_or(FormError::Invalid(
                "x_delete_at not an integer: Unix timestamp required.",
            ))?;
            set(&mut put_headers, "x-delete-at", &at.to_string());
        }
        if let Some(v) = attributes.get("x_delete_after") {
            let after = parse_int(v).ok_or(FormError::Invalid(
                "x_delete_after not an integer: Number of seconds required.",
            ))?;
            set(&mut put_headers, "x-delete-after", &after.to_string());
        }
        if let Some(ct) = attributes.get("content-type") {
            let ct = if ct.is_empty() {
                "application/octet-stream"
            } else {
                ct
            };
            if let Ok(v) = axum::http::HeaderValue::from_str(ct) {
                put_headers.insert("content-type", v);
            }
        }
        if let Some(ce) = attributes.get("content-encoding") {
            if let Ok(v) = axum::http::HeaderValue::from_str(ce) {
                put_headers.insert("content-encoding", v);
            }
        }
        let expires = form_int(attributes.get("expires"))
            .ok_or(FormError::Invalid("expired not an integer"))?;
        if (expires as f64) < now() {
            return Err(FormError::Unauthorized("form expired"));
        }
        self.check_signature(decoded_path, attributes, keys)?;

        let exceeded = Arc::new(AtomicBool::new(false));
        let body = capped_file_body(reader.clone(), max_file_size, exceeded.clone());
        let put = caller.pre_authed(Method::PUT, &quote(&path), put_headers, body, "FP");
        let resp = self.next.call(put).await;
        let (resp_parts, resp_body) = resp.into_parts();
        let body = axum::body::to_bytes(resp_body, 1 << 20)
            .await
            .unwrap_or_default();
        if exceeded.load(Ordering::SeqCst) {
            return Err(FormError::Invalid("max_file_size exceeded"));
        }
        Ok(Upload {
            status: resp_parts.status,
            headers: resp_parts.headers,
            body,
        })
    }

    fn check_signature(
        &self,
        decoded_path: &str,
        attributes: &BTreeMap<String, String>,
        keys: &[String],
    ) -> Result<(), FormError> {
        let field = |k: &str, default: &'static str| -> String {
            match attributes.get(k).map(String::as_str) {
                None | Some("") => default.to_string(),
                Some(v) => v.to_string(),
            }
        };
        let message = format!(
            "{decoded_path}\n{}\n{}\n{}\n{}",
            field("redirect", ""),
            field("max_file_size", "0"),
            field("max_file_count", "0"),
            field("expires", "0"),
        );
        let bad = FormError::Unauthorized("invalid signature");
        let sig = attributes.get("signature").map_or("", String::as_str);
        let Some((algo, client_hex)) = signature::parse_signature(sig) else {
            return Err(bad);
        };
        let Some(digest) = Digest::from_name(&algo).filter(|d| self.digests.contains(d)) else {
            return Err(bad);
        };
        let mut valid = false;
        for key in keys {
            let want = digest.hmac_hex(key.as_bytes(), message.as_bytes());
            valid |= signature::constant_time_eq(&want, &client_hex);
        }
        if valid {
            Ok(())
        } else {
            Err(bad)
        }
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The current file part of the form as an upload body, failing (so the upload stores
/// nothing) once more than `max` bytes have come.
fn capped_file_body(
    reader: Arc<Mutex<MultipartReader>>,
    max: i64,
    exceeded: Arc<AtomicBool>,
) -> Body {
    let stream =
        futures_util::stream::unfold((reader, 0i64, false), move |(reader, sent, done)| {
            let exceeded = exceeded.clone();
            async move {
                if done {
                    return None;
                }
                let chunk = reader.lock().await.read(READ_CHUNK_SIZE).await;
                match chunk {
                    Err(e) => Some((Err(std::io::Error::other(e.0)), (reader, sent, true))),
                    Ok(c) if c.is_empty() => None,
                    Ok(c) => {
                        let sent = sent.saturating_add(c.len() as i64);
                        if sent > max {
                            exceeded.store(true, Ordering::SeqCst);
                            let e = std::io::Error::other("max_file_size exceeded");
                            Some((Err(e), (reader, sent, true)))
                        } else {
                            Some((Ok(c), (reader, sent, false)))
                        }
                    }
                }
            }
        });
    Body::from_stream(stream)
}

impl Handler for FormPost {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            if req.method() == Method::POST {
                let ct = header(req.headers(), "content-type").unwrap_or("");
                let (kind, attrs) = parse_content_disposition(ct);
                if kind == "multipart/form-data" {
                    if let Some(boundary) = attrs.get("boundary") {
                        let raw_path = req.uri().path().to_string();
                        return match self.translate(req, boundary).await {
                            Ok(r) => r,
                            Err(e) => error_response(e, &raw_path),
                        };
                    }
                }
            }
            self.next.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_as_python() {
        assert_eq!(title("invalid signature"), "Invalid Signature");
        assert_eq!(title("max file count exceeded"), "Max File Count Exceeded");
        assert_eq!(title("form expired"), "Form Expired");
    }

    #[test]
    fn form_numbers() {
        assert_eq!(form_int(None), Some(0));
        assert_eq!(form_int(Some(&"".to_string())), Some(0));
        assert_eq!(form_int(Some(&" 12 ".to_string())), Some(12));
        assert_eq!(form_int(Some(&"1.5".to_string())), None);
    }
}
