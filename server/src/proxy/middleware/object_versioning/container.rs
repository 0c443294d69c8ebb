//! Container and account requests under object versioning: enabling it, deleting a
//! versioned container, the listings (`?versions` among them) and the byte counts.

use serde_json::{Map, Value};

use super::*;
use crate::proxy::auth::Decision;
use crate::proxy::env::{authorize_now, denied_response, has_param, query_param};
use crate::proxy::middleware::listing_formats::ListingAlreadyFormatted;
use crate::proxy::quote as quote_path;

/// Swift's `build_listing`: the parts spliced, sorted by name (or subdir), stably, so the
/// versions of one object keep their newest-first order; then cut to `limit`.
fn build_listing(parts: Vec<Vec<Value>>, reverse: bool, limit: usize) -> Vec<u8> {
    let mut all: Vec<Value> = parts.into_iter().flatten().collect();
    let key = |v: &Value| -> String {
        v.get("subdir")
            .or_else(|| v.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if reverse {
        all.sort_by_key(|v| std::cmp::Reverse(key(v)));
    } else {
        all.sort_by_key(key);
    }
    all.truncate(limit);
    serde_json::to_vec(&all).unwrap_or_default()
}

/// Swift's `constrain_req_limit`: the `limit` asked for (digits only), at most `max`.
fn listing_limit(query: Option<&str>, max: usize) -> Result<usize, Response> {
    match query_param(query, "limit") {
        Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
            match l.parse::<usize>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(text(
                    StatusCode::PRECONDITION_FAILED,
                    format!("Maximum limit is {max}"),
                )),
            }
        }
        _ => Ok(max),
    }
}

/// Whether an `Accept` header allows a JSON answer (swob's `best_match`).
fn accepts_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return true;
    };
    accept.split(',').any(|range| {
        let mut pieces = range.split(';').map(str::trim);
        let media = pieces.next().unwrap_or_default().to_ascii_lowercase();
        let q_zero = pieces.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f64>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !q_zero && matches!(media.as_str(), "*/*" | "application/*" | "application/json")
    })
}

/// The query string of the listing subrequests: `(key, value)` pairs, quoted.
fn query_string(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", quote_path(v).replace('/', "%2F")))
        .collect::<Vec<_>>()
        .join("&")
}

/// Every query parameter, decoded, in order.
fn all_params(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn json_response(mut parts: axum::http::response::Parts, body: Vec<u8>) -> Response {
    set(
        &mut parts.headers,
        "content-length",
        &body.len().to_string(),
    );
    Response::from_parts(parts, Body::from(body))
}

impl ObjectVersioning {
    pub(super) async fn container_request(&self, req: Request, path: ApiPath) -> Response {
        let method = req.method().clone();
        if matches!(method, Method::PUT | Method::POST)
            && req.headers().contains_key(CLIENT_VERSIONS_ENABLED)
        {
            return self.enable_versioning(req, path).await;
        }
        if method == Method::DELETE {
            return self.delete_container(req, path).await;
        }
        self.container_read(req, path).await
    }

    async fn enable_versioning(&self, req: Request, path: ApiPath) -> Response {
        let container = path.container.clone().unwrap_or_default();
        let info = self.proxy.container_info(&path.account, &container).await;
        if info
            .sysmeta
            .get("versions-location")
            .is_some_and(|l| !l.is_empty())
        {
            return text(
                StatusCode::BAD_REQUEST,
                "Cannot enable object versioning on a container that is already using the \
                 legacy versioned writes feature.",
            );
        }
        let (mut parts, body) = req.into_parts();
        let enabled = is_true(header(&parts.headers, CLIENT_VERSIONS_ENABLED));
        set(
            &mut parts.headers,
            SYSMETA_VERSIONS_ENABLED,
            if enabled { "True" } else { "False" },
        );
        let mut created: Option<(String, HeaderMap)> = None;
        if enabled {
            let mut h = HeaderMap::new();
            if info.status / 100 == 2 {
                match self.proxy.policies.get(info.policy_index) {
                    Some(p) if p.deprecated => {
                        if authorize_now(&parts, &path, None) == Decision::Denied {
                            return denied_response(&parts);
                        }
                        return text(
                            StatusCode::BAD_REQUEST,
                            "Cannot enable object versioning on a container that uses a \
                             deprecated storage policy.",
                        );
                    }
                    Some(p) => set(&mut h, "x-storage-policy", p.name()),
                    None => {}
                }
            } else if parts.method == Method::PUT {
                if let Some(p) = header_str(&parts.headers, "x-storage-policy") {
                    set(&mut h, "x-storage-policy", &p);
                }
            }
            let Some(versions) = versions_container_name(&container) else {
                return text(StatusCode::BAD_REQUEST, "Invalid container name");
            };
            let versions_path = ApiPath {
                container: Some(versions.clone()),
                ..path.clone()
            }
            .to_path();
            let caller = Caller::of(&parts);
            let resp = self
                .call_internal(&caller, Method::PUT, &versions_path, h.clone())
                .await;
            if resp.status().is_success() || resp.status() == StatusCode::CONFLICT {
                set(
                    &mut parts.headers,
                    SYSMETA_VERSIONS_CONT,
                    &quote_path(&versions),
                );
                created = Some((versions_path, h));
            } else {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error enabling object versioning",
                );
            }
        }
        let caller = Caller::of(&parts);
        let mut resp = self.next.call(Request::from_parts(parts, body)).await;
        if !resp.status().is_success() {
            // The container was not made or changed: leave no versions container behind.
            if let Some((versions_path, h)) = created {
                self.call_internal(&caller, Method::DELETE, &versions_path, h)
                    .await;
            }
        }
        echo_versions_enabled(&mut resp);
        resp
    }

    /// DELETE of a container: refused while versions are left; its (empty) versions
    /// container goes first.
    async fn delete_container(&self, req: Request, path: ApiPath) -> Response {
        let container = path.container.clone().unwrap_or_default();
        let info = self.proxy.container_info(&path.account, &container).await;
        if let Some(versions) = versions_location(&info) {
            let versions_path = ApiPath {
                container: Some(versions),
                ..path.clone()
            }
            .to_path();
            let (parts, body) = req.into_parts();
            let caller = Caller::of(&parts);
            let head = self
                .call_internal(&caller, Method::HEAD, &versions_path, HeaderMap::new())
                .await;
            let count: u64 = header(head.headers(), "x-container-object-count")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            if head.status().is_success() && count > 0 {
                return text(
                    StatusCode::CONFLICT,
                    "Delete all versions before deleting container.",
                );
            }
            if !head.status().is_success() && head.status() != StatusCode::NOT_FOUND {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error deleting versioned container",
                );
            }
            let del = self
                .call_internal(&caller, Method::DELETE, &versions_path, HeaderMap::new())
                .await;
            if !del.status().is_success() && del.status() != StatusCode::NOT_FOUND {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error deleting versioned container",
                );
            }
            return self.next.call(Request::from_parts(parts, body)).await;
        }
        self.next.call(req).await
    }

    /// GET/HEAD (and anything else) of a container: `X-Versions-Enabled`, the versions'
    /// bytes in `X-Container-Bytes-Used`, and listings that show versions symlinks as the
    /// objects they stand for.
    async fn container_read(&self, req: Request, path: ApiPath) -> Response {
        let container = path.container.clone().unwrap_or_default();
        let query = req.uri().query().map(str::to_string);
        let accept = header_str(req.headers(), "accept");
        let is_get = req.method() == Method::GET;
        let caller = Caller::from(req.extensions(), req.headers());
        let mut resp = self.next.call(req).await;
        echo_versions_enabled(&mut resp);
        let mut location = header(resp.headers(), SYSMETA_VERSIONS_CONT)
            .map(unquote)
            .filter(|l| !l.is_empty());
        if let Some(loc) = &location {
            if let Some(used) =
                header(resp.headers(), "x-container-bytes-used").and_then(|b| b.parse::<u64>().ok())
            {
                let versions_path = ApiPath {
                    container: Some(loc.clone()),
                    ..path.clone()
                }
                .to_path();
                let head = self
                    .call_internal(&caller, Method::HEAD, &versions_path, HeaderMap::new())
                    .await;
                if head.status().is_success() {
                    let more: u64 = header(head.headers(), "x-container-bytes-used")
                        .and_then(|b| b.parse().ok())
                        .unwrap_or(0);
                    set(
                        resp.headers_mut(),
                        "x-container-bytes-used",
                        &(used + more).to_string(),
                    );
                }
            }
        } else if resp.status().is_success() {
            // Never versioned as far as we can tell, but a `?versions` listing errs on
            // the side of there being versions anyway.
            location = versions_container_name(&container);
        }
        if !is_get || !resp.status().is_success() {
            return resp;
        }
        let (parts, body) = resp.into_parts();
        let raw = http_body_util::Limited::new(body, 64 << 20)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let versions_listing = has_param(query.as_deref(), "versions");
        if !versions_listing && !crate::proxy::middleware::listing_mentions(&raw, "symlink_path") {
            // Only rows that are symlinks change below: a page without any goes on as is.
            return Response::from_parts(parts, Body::from(raw));
        }
        let Ok(mut listing) = serde_json::from_slice::<Vec<Value>>(&raw) else {
            return Response::from_parts(parts, Body::from(raw));
        };
        let location = location.unwrap_or_default();
        for item in listing.iter_mut() {
            let Some(obj) = item.as_object_mut() else {
                continue;
            };
            if !["symlink_path", "symlink_etag", "symlink_bytes"]
                .iter()
                .all(|k| obj.contains_key(*k))
            {
                continue;
            }
            let link = obj["symlink_path"].as_str().unwrap_or_default().to_string();
            let Some((target_account, target_container, target_obj)) = split_object_path(&link)
            else {
                continue;
            };
            if target_container != location {
                continue;
            }
            let hash = obj["hash"].as_str().unwrap_or_default().to_string();
            let params = hash
                .split_once(';')
                .map(|(_, p)| {
                    p.split(';')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(|p| format!("; {p}"))
                        .collect::<String>()
                })
                .unwrap_or_default();
            let bytes = obj.remove("symlink_bytes").unwrap_or(Value::Null);
            obj.insert(
                "bytes".into(),
                bytes
                    .as_u64()
                    .or_else(|| bytes.as_str().and_then(|s| s.parse().ok()))
                    .unwrap_or(0)
                    .into(),
            );
            obj.insert("version_symlink".into(), true.into());
            let etag = obj.remove("symlink_etag");
            let etag = etag.as_ref().and_then(Value::as_str).unwrap_or_default();
            obj.insert("hash".into(), format!("{etag}{params}").into());
            let (name, id) = parse_version_object_name(&target_obj);
            if let (Some(id), false) = (id, versions_listing) {
                let p = ApiPath {
                    version: "v1".into(),
                    account: target_account,
                    container: Some(container.clone()),
                    object: Some(name),
                };
                obj.insert(
                    "symlink_path".into(),
                    format!("{}?version-id={id}", p.to_path()).into(),
                );
            }
        }
        if versions_listing {
            let mut resp = match self
                .list_versions(
                    &caller,
                    &path,
                    query.as_deref(),
                    accept.as_deref(),
                    &location,
                    listing,
                )
                .await
            {
                Ok(body) => json_response(parts, body),
                Err(r) => r,
            };
            resp.extensions_mut().insert(ListingAlreadyFormatted);
            return resp;
        }
        json_response(parts, serde_json::to_vec(&listing).unwrap_or_default())
    }

    /// `?versions`: the user container's listing merged with the versions container's,
    /// every entry with its `version_id` and whether it `is_latest`. JSON only.
    async fn list_versions(
        &self,
        caller: &Caller,
        path: &ApiPath,
        query: Option<&str>,
        accept: Option<&str>,
        location: &str,
        primary: Vec<Value>,
    ) -> Result<Vec<u8>, Response> {
        if !accepts_json(accept) {
            return Err(status_text(StatusCode::NOT_ACCEPTABLE));
        }
        let bad = |m: &str| text(StatusCode::BAD_REQUEST, m.to_string());
        let mut marker = query_param(query, "marker");
        let version_marker = query_param(query, "version_marker");
        match (&marker, &version_marker) {
            (Some(m), None) => {
                // Just past every version of `m`.
                marker = reserved_name(&[m, ""]).map(|p| format!("{p}:"));
            }
            (Some(m), Some(vm)) if vm == "null" => marker = reserved_name(&[m, ""]),
            (Some(m), Some(vm)) => {
                let Ok(ts) = Timestamp::parse(vm) else {
                    return Err(bad("invalid version_marker param"));
                };
                marker = version_object_name(m, &ts.internal());
                if marker.is_none() {
                    return Err(bad("invalid version_marker param"));
                }
            }
            (None, Some(_)) => return Err(bad("version_marker param requires marker")),
            (None, None) => {}
        }
        let delimiter = query_param(query, "delimiter").unwrap_or_default();
        if delimiter.chars().any(|c| "0123456789.\0".contains(c)) {
            return Err(bad("invalid delimiter param"));
        }
        let reverse = is_true(query_param(query, "reverse").as_deref());
        let limit = listing_limit(query, self.proxy.constraints.container_listing_limit)?;

        let mut null_listing = Vec::new();
        let mut subdirs: Vec<String> = Vec::new();
        let mut current: Vec<(String, Map<String, Value>)> = Vec::new();
        let mut latest: std::collections::HashSet<String> = Default::default();
        for item in primary {
            let Value::Object(mut obj) = item else {
                continue;
            };
            let Some(name) = obj.get("name").and_then(Value::as_str).map(str::to_string) else {
                if let Some(s) = obj.get("subdir").and_then(Value::as_str) {
                    if !subdirs.iter().any(|d| d == s) {
                        subdirs.push(s.to_string());
                    }
                }
                continue;
            };
            if obj.get("version_symlink").and_then(Value::as_bool) == Some(true) {
                let link = unquote(obj["symlink_path"].as_str().unwrap_or_default());
                current.push((link, obj));
            } else {
                obj.insert("version_id".into(), "null".into());
                obj.insert("is_latest".into(), true.into());
                latest.insert(name);
                null_listing.push(Value::Object(obj));
            }
        }
        let versions_path = ApiPath {
            container: Some(location.to_string()),
            ..path.clone()
        }
        .to_path();
        let versions_exist = self
            .proxy
            .container_info(&path.account, location)
            .await
            .status
            != 404;
        let mut versions_listing = Vec::new();
        let mut listed = false;
        if versions_exist {
            let prefix = match query_param(query, "prefix") {
                Some(p) => reserved_name(&[&p]).ok_or_else(|| bad("invalid prefix param"))?,
                None => String::new(),
            };
            let q = query_string(&[
                ("format".into(), "json".into()),
                ("prefix".into(), prefix),
                ("marker".into(), marker.unwrap_or_default()),
                (
                    "limit".into(),
                    query_param(query, "limit").unwrap_or_default(),
                ),
                ("delimiter".into(), delimiter),
                (
                    "reverse".into(),
                    query_param(query, "reverse").unwrap_or_default(),
                ),
            ]);
            let resp = self
                .call_internal(
                    caller,
                    Method::GET,
                    &format!("{versions_path}?{q}"),
                    HeaderMap::new(),
                )
                .await;
            if resp.status().is_success() {
                listed = true;
                let body = body_bytes(resp).await;
                let items: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
                for item in items {
                    let Value::Object(mut obj) = item else {
                        continue;
                    };
                    let Some(stored) = obj.get("name").and_then(Value::as_str).map(str::to_string)
                    else {
                        if let Some(s) = obj.get("subdir").and_then(Value::as_str) {
                            let user = split_reserved_name(s)
                                .and_then(|p| p.first().map(|f| f.to_string()))
                                .unwrap_or_else(|| s.to_string());
                            if !subdirs.contains(&user) {
                                subdirs.push(user);
                            }
                        }
                        continue;
                    };
                    let (name, id) = parse_version_object_name(&stored);
                    let Some(id) = id else {
                        continue;
                    };
                    let link = format!("/v1/{}/{location}/{stored}", path.account);
                    let is_latest = if let Some(i) = current.iter().position(|(p, _)| *p == link) {
                        current.remove(i);
                        latest.insert(name.clone());
                        true
                    } else if obj.get("content_type").and_then(Value::as_str) == Some(DELETE_MARKER)
                        && !latest.contains(&name)
                    {
                        latest.insert(name.clone());
                        true
                    } else {
                        false
                    };
                    obj.insert("is_latest".into(), is_latest.into());
                    obj.insert("name".into(), name.into());
                    obj.insert("version_id".into(), id.into());
                    versions_listing.push(Value::Object(obj));
                }
            } else if resp.status() != StatusCode::NOT_FOUND {
                return Err(resp);
            }
        }
        // Links whose version is missing from the versions listing still show.
        let mut broken = Vec::new();
        for (link, item) in current {
            let stored = link.splitn(5, '/').last().unwrap_or_default().to_string();
            let (name, id) = parse_version_object_name(&stored);
            let Some(id) = id else {
                continue;
            };
            let is_latest = listed || latest.insert(name.clone());
            let mut entry = Map::new();
            entry.insert("name".into(), name.into());
            entry.insert("is_latest".into(), is_latest.into());
            entry.insert("version_id".into(), id.into());
            for k in ["content_type", "bytes", "hash", "last_modified"] {
                entry.insert(k.into(), item.get(k).cloned().unwrap_or(Value::Null));
            }
            broken.push(Value::Object(entry));
        }
        let subdir_listing = subdirs
            .into_iter()
            .map(|s| serde_json::json!({ "subdir": s }))
            .collect();
        Ok(build_listing(
            vec![null_listing, versions_listing, subdir_listing, broken],
            reverse,
            limit,
        ))
    }

    /// An account listing: each container's bytes include its versions container's, and
    /// versions containers left without their user container show up by that name.
    pub(super) async fn account_listing(&self, req: Request, path: ApiPath) -> Response {
        let query = req.uri().query().map(str::to_string);
        let caller = Caller::from(req.extensions(), req.headers());
        let resp = self.next.call(req).await;
        if !resp.status().is_success() {
            return resp;
        }
        let (parts, body) = resp.into_parts();
        let raw = body_bytes(Response::new(body)).await;
        let Ok(mut listing) = serde_json::from_slice::<Vec<Value>>(&raw) else {
            return Response::from_parts(parts, Body::from(raw));
        };
        let mut params = all_params(query.as_deref());
        let mut has_prefix = false;
        for (k, v) in params.iter_mut() {
            match k.as_str() {
                "prefix" => {
                    has_prefix = true;
                    if let Some(n) = versions_container_name(v) {
                        *v = n;
                    }
                }
                "marker" | "end_marker" => {
                    if let Some(n) = versions_container_name(v) {
                        *v = n;
                    }
                }
                _ => {}
            }
        }
        params.retain(|(k, _)| k != "format");
        params.push(("format".into(), "json".into()));
        if !has_prefix {
            params.push((
                "prefix".into(),
                reserved_name(&["versions"]).unwrap_or_default(),
            ));
        }
        let account_path = ApiPath {
            container: None,
            object: None,
            ..path.clone()
        }
        .to_path();
        let versions = self
            .call_internal(
                &caller,
                Method::GET,
                &format!("{account_path}?{}", query_string(&params)),
                HeaderMap::new(),
            )
            .await;
        let versions_listing: Vec<Value> = if versions.status().is_success() {
            serde_json::from_slice(&body_bytes(versions).await).unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut by_container: Vec<(String, Value)> = versions_listing
            .into_iter()
            .filter_map(|item| {
                let name = item.get("name")?.as_str()?.to_string();
                let user = match split_reserved_name(&name).as_deref() {
                    Some(["versions", c]) => c.to_string(),
                    _ => name,
                };
                Some((user, item))
            })
            .collect();
        if !by_container.is_empty() {
            for item in listing.iter_mut() {
                let Some(name) = item.get("name").and_then(Value::as_str) else {
                    continue;
                };
                if let Some(i) = by_container.iter().position(|(c, _)| c == name) {
                    let (_, v) = by_container.remove(i);
                    let total =
                        item["bytes"].as_u64().unwrap_or(0) + v["bytes"].as_u64().unwrap_or(0);
                    item["bytes"] = total.into();
                }
            }
        }
        // Orphaned versions containers (their user container is gone) still hold data:
        // list them so their owner can see and clean them up.
        for (name, mut item) in by_container {
            item["name"] = name.into();
            item["count"] = 0.into();
            listing.push(item);
        }
        let reverse = is_true(query_param(query.as_deref(), "reverse").as_deref());
        let limit = match listing_limit(
            query.as_deref(),
            self.proxy.constraints.account_listing_limit,
        ) {
            Ok(l) => l,
            Err(r) => return r,
        };
        json_response(parts, build_listing(vec![listing], reverse, limit))
    }
}

/// `X-Versions-Enabled` for the client, from the container's sysmeta.
fn echo_versions_enabled(resp: &mut Response) {
    if let Some(v) = header_str(resp.headers(), SYSMETA_VERSIONS_ENABLED) {
        set(resp.headers_mut(), CLIENT_VERSIONS_ENABLED, &v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_merge_stably_by_name() {
        let a = vec![serde_json::json!({"name": "b", "version_id": "null"})];
        let b = vec![
            serde_json::json!({"name": "a", "version_id": "2"}),
            serde_json::json!({"name": "a", "version_id": "1"}),
            serde_json::json!({"name": "b", "version_id": "3"}),
        ];
        let out: Vec<Value> =
            serde_json::from_slice(&build_listing(vec![a.clone(), b.clone()], false, 10)).unwrap();
        let ids: Vec<&str> = out
            .iter()
            .map(|v| v["version_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["2", "1", "null", "3"]);
        let out: Vec<Value> = serde_json::from_slice(&build_listing(vec![a, b], true, 3)).unwrap();
        let ids: Vec<&str> = out
            .iter()
            .map(|v| v["version_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["null", "3", "2"]);
    }

    #[test]
    fn json_acceptance() {
        assert!(accepts_json(None));
        assert!(accepts_json(Some("application/json")));
        assert!(accepts_json(Some("text/plain, */*;q=0.5")));
        assert!(!accepts_json(Some("application/xml")));
        assert!(!accepts_json(Some("application/json;q=0")));
    }
}
