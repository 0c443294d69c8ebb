//! Request handlers of the object server (see the module docs in `object/mod.rs`).

use ringsmith::swift::MetaTarget;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use futures_util::StreamExt;
use md5::{Digest, Md5};

use super::diskfile::{self, DiskError, Lookup, Metadata, OpenObject};
use super::hashes;
use super::range::{parse_range, ByteRange, RangeOutcome};
use super::update::{self, PendingUpdate, UpdateTarget};
use super::ObjectState;
use crate::common::headers::{self as h, check_metadata, etag_list, title_case};
use crate::common::path::{decode_path, parse_storage_path, PathError, StoragePath};
use crate::common::{empty, insufficient_storage, plain, DeviceState, Timestamp, SWIFT_VERSION};
use crate::recon::ReconState;
use ringsmith::swift::policy::Policy;
use ringsmith::swift::timestamp::{http_date, parse_http_date};

type Resp = Response<Body>;

/// Objects up to this size are read in one blocking call and sent from memory.
const SMALL_OBJECT: u64 = 64 * 1024;
/// Body bytes buffered before a write trip to the blocking pool.
const WRITE_BUFFER: usize = 256 * 1024;

pub async fn dispatch(state: Arc<ObjectState>, recon: ReconState, req: Request) -> Resp {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let resp = if raw_path.starts_with("/recon/") {
        recon.handle(&raw_path).await
    } else {
        handle(&state, req).await
    };
    tracing::info!(
        target: "object-server",
        method = %method,
        path = %raw_path,
        status = resp.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    let mut resp = resp;
    resp.headers_mut()
        .insert("x-backend-server", HeaderValue::from_static("ringsmith"));
    resp
}

async fn handle(state: &Arc<ObjectState>, req: Request) -> Resp {
    let method = req.method().clone();
    if method == Method::OPTIONS {
        return options(state);
    }
    let path = match decode_path(req.uri().path()) {
        Ok(p) => p,
        Err(_) => {
            return plain(
                StatusCode::PRECONDITION_FAILED,
                "Invalid UTF8 or contains NULL",
            )
        }
    };
    match method.as_str() {
        "REPLICATE" => {
            if !state.cfg.replication_server {
                return plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            }
            replicate(state, &path, req.headers()).await
        }
        "PUT" | "GET" | "HEAD" | "POST" | "DELETE" => {
            let sp = match parse_storage_path(&path, 5, 5) {
                Ok(p) => p,
                Err(PathError::Invalid(m)) => return plain(StatusCode::BAD_REQUEST, m),
                Err(PathError::BadEncoding) => {
                    return plain(
                        StatusCode::PRECONDITION_FAILED,
                        "Invalid UTF8 or contains NULL",
                    )
                }
            };
            match ObjectRequest::new(state, sp, req.headers()) {
                Err(r) => r,
                Ok(or) => match method.as_str() {
                    "PUT" => put(state, or, req).await,
                    "GET" => get(state, or, req.headers(), false).await,
                    "HEAD" => get(state, or, req.headers(), true).await,
                    "POST" => post(state, or, req.headers()).await,
                    _ => delete(state, or, req.headers()).await,
                },
            }
        }
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
    }
}

fn options(state: &ObjectState) -> Resp {
    let mut r = empty(StatusCode::OK);
    let allow = if state.cfg.replication_server {
        "DELETE, GET, HEAD, OPTIONS, POST, PUT, REPLICATE"
    } else {
        "DELETE, GET, HEAD, OPTIONS, POST, PUT"
    };
    r.headers_mut()
        .insert("allow", HeaderValue::from_static(allow));
    h::insert(
        r.headers_mut(),
        "server",
        &format!("object-server/{SWIFT_VERSION}"),
    );
    r
}

/// A validated object request: where the object lives and under which policy.
struct ObjectRequest {
    path: StoragePath,
    account: String,
    container: String,
    object: String,
    policy: Policy,
    device_path: PathBuf,
    hash: String,
    part_dir: PathBuf,
    hash_dir: PathBuf,
}

impl ObjectRequest {
    fn new(state: &ObjectState, path: StoragePath, headers: &HeaderMap) -> Result<Self, Resp> {
        let policy = state
            .cfg
            .policies
            .from_header(h::get(headers, "x-backend-storage-policy-index"))
            .map_err(|m| plain(StatusCode::SERVICE_UNAVAILABLE, m))?
            .clone();
        let device_path = match state.cfg.devices.device_path(&path.device) {
            DeviceState::Ok(p) => p,
            DeviceState::Unavailable => return Err(insufficient_storage(&path.device)),
        };
        let (Some(account), Some(container), Some(object)) = (
            path.account.clone(),
            path.container.clone(),
            path.object.clone(),
        ) else {
            return Err(plain(StatusCode::BAD_REQUEST, "Invalid path"));
        };
        let hash = state
            .cfg
            .hash
            .hash_path(&account, Some(&container), Some(&object))
            .map_err(|e| plain(StatusCode::BAD_REQUEST, e.to_string()))?;
        let part_dir = device_path
            .join(policy.dir("objects"))
            .join(&path.partition);
        let hash_dir = part_dir.join(&hash[hash.len() - 3..]).join(&hash);
        Ok(ObjectRequest {
            path,
            account,
            container,
            object,
            policy,
            device_path,
            hash,
            part_dir,
            hash_dir,
        })
    }

    fn name(&self) -> String {
        format!("/{}/{}/{}", self.account, self.container, self.object)
    }

    fn suffix(&self) -> &str {
        &self.hash[self.hash.len() - 3..]
    }
}

fn disk_error(device: &str, e: DiskError) -> Resp {
    if e.is_insufficient_storage() {
        tracing::error!(device, error = %e, "insufficient storage");
        return insufficient_storage(device);
    }
    tracing::error!(device, error = %e, "disk error");
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("disk error: {e}"),
    )
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking disk task panicked")
}

async fn lookup(or: &ObjectRequest) -> Result<Lookup, DiskError> {
    lookup_reading(or, None).await
}

async fn lookup_reading(or: &ObjectRequest, read_up_to: Option<u64>) -> Result<Lookup, DiskError> {
    let dir = or.hash_dir.clone();
    blocking(move || diskfile::open(&dir, read_up_to)).await
}

fn required_timestamp(headers: &HeaderMap) -> Result<Timestamp, Resp> {
    match h::timestamp(headers, "x-timestamp") {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(plain(StatusCode::BAD_REQUEST, "Missing X-Timestamp header")),
        Err(m) => Err(plain(StatusCode::BAD_REQUEST, m)),
    }
}

fn now_secs() -> u64 {
    Timestamp::now().seconds()
}

/// `X-Delete-At` of a write: an integer in the future.
fn delete_at_header(headers: &HeaderMap) -> Result<Option<u64>, Resp> {
    match h::get(headers, "x-delete-at") {
        None => Ok(None),
        Some(v) => {
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| plain(StatusCode::BAD_REQUEST, "Non-integer X-Delete-At"))?;
            // A replicator copies an object as it is, even one already past expiry.
            let replicating = h::get(headers, "x-backend-replication")
                .is_some_and(ringsmith::swift::conf::is_true);
            if n <= now_secs() && !replicating {
                return Err(plain(StatusCode::BAD_REQUEST, "X-Delete-At in past"));
            }
            Ok(Some(n))
        }
    }
}

fn is_expired(meta: &Metadata, headers: &HeaderMap) -> bool {
    if h::get(headers, "x-backend-open-expired").is_some_and(ringsmith::swift::conf::is_true) {
        return false;
    }
    meta.get("X-Delete-At")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|at| at <= now_secs())
}

fn with_backend_ts(mut r: Resp, ts: Timestamp) -> Resp {
    h::insert(r.headers_mut(), "x-backend-timestamp", &ts.internal());
    r
}

/// Headers that a PUT or POST stores besides the fixed ones.
fn user_metadata(state: &ObjectState, headers: &HeaderMap, meta: &mut Metadata, sysmeta: bool) {
    for (name, value) in headers {
        let n = name.as_str();
        let Ok(v) = std::str::from_utf8(value.as_bytes()) else {
            continue;
        };
        let keep = n.starts_with("x-object-meta-")
            || n.starts_with("x-object-transient-sysmeta-")
            || (sysmeta && n.starts_with("x-object-sysmeta-"))
            || state.cfg.allowed_headers.iter().any(|a| a == n);
        if keep {
            meta.insert(title_case(n), v.to_string());
        }
    }
}

// ---------------------------------------------------------------------------- PUT

async fn put(state: &Arc<ObjectState>, or: ObjectRequest, req: Request) -> Resp {
    let headers = req.headers().clone();
    let req_ts = match required_timestamp(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let limits = &state.cfg.constraints;
    if or.object.len() > limits.max_object_name_length {
        return plain(
            StatusCode::BAD_REQUEST,
            format!(
                "Object name length of {} longer than {}",
                or.object.len(),
                limits.max_object_name_length
            ),
        );
    }
    let chunked = h::get(&headers, "transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let content_length: Option<u64> = match h::get(&headers, "content-length") {
        Some(v) => match v.trim().parse() {
            Ok(n) => Some(n),
            Err(_) => return plain(StatusCode::BAD_REQUEST, "Invalid Content-Length"),
        },
        None => None,
    };
    if content_length.is_none() && !chunked {
        return plain(StatusCode::LENGTH_REQUIRED, "Missing Content-Length");
    }
    if content_length.is_some_and(|n| n > limits.max_file_size) {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "Your request is too large.");
    }
    let content_type = match h::get(&headers, "content-type") {
        None => return plain(StatusCode::BAD_REQUEST, "No content type"),
        Some(ct) if ct.trim().is_empty() || ct.contains('\n') => {
            return plain(StatusCode::BAD_REQUEST, "Invalid Content-Type")
        }
        Some(ct) => ct.to_string(),
    };
    if let Err(m) = check_metadata(&headers, MetaTarget::Object, limits) {
        return plain(StatusCode::BAD_REQUEST, m);
    }
    let delete_at = match delete_at_header(&headers) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let container_targets = match update::targets(
        h::get(&headers, "x-container-host"),
        h::get(&headers, "x-container-partition"),
        h::get(&headers, "x-container-device"),
    ) {
        Ok(t) => t,
        Err(m) => return plain(StatusCode::BAD_REQUEST, m),
    };
    let expected_etag = h::get(&headers, "etag").map(|e| e.trim_matches('"').to_ascii_lowercase());

    // Pre-checks against what is on disk, before the body is polled (100-continue).
    let existing = match lookup(&or).await {
        Ok(l) => l,
        Err(e) => return disk_error(&or.path.device, e),
    };
    let (orig_ts, orig_exists, orig_delete_at) = match &existing {
        Lookup::Found(o) => (
            Some(o.data_timestamp),
            !is_expired(&o.metadata, &headers),
            o.metadata.get("X-Delete-At").cloned(),
        ),
        Lookup::Deleted(t) => (Some(*t), false, None),
        Lookup::NotFound => (None, false, None),
    };
    if let Some(orig) = orig_ts {
        if orig >= req_ts {
            return with_backend_ts(plain(StatusCode::CONFLICT, "Conflict"), orig);
        }
    }
    if let (Some(inm), Lookup::Found(o)) = (h::get(&headers, "if-none-match"), &existing) {
        let tags = etag_list(inm);
        let etag = o.metadata.get("ETag").cloned().unwrap_or_default();
        if orig_exists && tags.iter().any(|t| t == "*" || *t == etag) {
            return plain(StatusCode::PRECONDITION_FAILED, "Precondition Failed");
        }
    }
    drop(existing);
    if state
        .cfg
        .devices
        .is_full(&or.device_path, content_length.unwrap_or(0))
    {
        return insufficient_storage(&or.path.device);
    }

    // Stream the body to a temp file.
    let tmp_dir = or.device_path.join(or.policy.dir("tmp"));
    let mut writer = TempWriter::new(tmp_dir);
    let mut stream = req.into_body().into_data_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut md5 = Md5::new();
    let mut received: u64 = 0;
    loop {
        let next = tokio::time::timeout(state.cfg.client_timeout, stream.next()).await;
        let chunk: Bytes = match next {
            Err(_) => {
                writer.abort().await;
                return plain(StatusCode::REQUEST_TIMEOUT, "Request Timeout");
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                writer.abort().await;
                tracing::warn!(error = %e, path = %or.name(), "client disconnected during PUT");
                return plain(StatusCode::from_u16(499).unwrap(), "Client Disconnect");
            }
            Ok(Some(Ok(c))) => c,
        };
        received += chunk.len() as u64;
        if received > limits.max_file_size || content_length.is_some_and(|n| received > n) {
            writer.abort().await;
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "Your request is too large.");
        }
        md5.update(&chunk);
        buffer.extend_from_slice(&chunk);
        if buffer.len() >= WRITE_BUFFER {
            let data = std::mem::take(&mut buffer);
            if let Err(e) = writer.write(data).await {
                writer.abort().await;
                return disk_error(&or.path.device, e.into());
            }
        }
    }
    if content_length.is_some_and(|n| received < n) {
        writer.abort().await;
        return plain(StatusCode::from_u16(499).unwrap(), "Client Disconnect");
    }
    let etag = hex::encode(md5.finalize());
    if expected_etag.as_deref().is_some_and(|e| e != etag) {
        writer.abort().await;
        return plain(StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable Entity");
    }

    let mut meta = Metadata::new();
    meta.insert("X-Timestamp".into(), req_ts.internal());
    meta.insert("Content-Type".into(), content_type.clone());
    meta.insert("Content-Length".into(), received.to_string());
    meta.insert("ETag".into(), etag.clone());
    meta.insert("name".into(), or.name());
    user_metadata(state, &headers, &mut meta, true);
    if let Some(d) = delete_at {
        meta.insert("X-Delete-At".into(), d.to_string());
    }
    let target = or.hash_dir.join(format!("{}.data", req_ts.internal()));
    let part_dir = or.part_dir.clone();
    let suffix = or.suffix().to_string();
    let hash_dir = or.hash_dir.clone();
    let commit = writer
        .commit(buffer, meta, target, move || {
            let _ = diskfile::cleanup(&hash_dir, None);
            hashes::invalidate_hash(&part_dir, &suffix)
        })
        .await;
    if let Err(e) = commit {
        return disk_error(&or.path.device, e);
    }

    // Container update (and the expirer queue), then the answer.
    let mut cheaders = vec![
        ("X-Size".to_string(), received.to_string()),
        ("X-Content-Type".to_string(), content_type),
        ("X-Timestamp".to_string(), req_ts.internal()),
        ("X-Etag".to_string(), etag.clone()),
    ];
    apply_overrides(&headers, &mut cheaders);
    container_updates(
        state,
        &or,
        &headers,
        "PUT",
        cheaders,
        container_targets,
        req_ts,
    )
    .await;
    delete_at_updates(state, &or, &headers, delete_at, orig_delete_at, req_ts).await;
    let _ = orig_exists;
    let mut r = empty(StatusCode::CREATED);
    h::insert(r.headers_mut(), "etag", &format!("\"{etag}\""));
    r
}

/// `X-Backend-Container-Update-Override-*` replaces what the container is told.
fn apply_overrides(headers: &HeaderMap, cheaders: &mut [(String, String)]) {
    for (name, value) in headers {
        let Some(k) = name
            .as_str()
            .strip_prefix("x-backend-container-update-override-")
            .or_else(|| {
                name.as_str()
                    .strip_prefix("x-object-sysmeta-container-update-override-")
            })
        else {
            continue;
        };
        let key = format!("x-{k}");
        if let (Some(slot), Ok(v)) = (
            cheaders
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(&key)),
            value.to_str(),
        ) {
            slot.1 = v.to_string();
        }
    }
}

/// A temp file under `tmp[-N]` filled from the blocking pool; removed unless committed.
struct TempWriter {
    tmp_dir: PathBuf,
    file: Option<(std::fs::File, PathBuf)>,
}

impl TempWriter {
    fn new(tmp_dir: PathBuf) -> Self {
        TempWriter {
            tmp_dir,
            file: None,
        }
    }

    fn open(tmp_dir: &Path) -> std::io::Result<(std::fs::File, PathBuf)> {
        std::fs::create_dir_all(tmp_dir)?;
        let path = tmp_dir.join(format!("tmp{}", diskfile::unique_hex()));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((f, path))
    }

    async fn write(&mut self, data: Vec<u8>) -> std::io::Result<()> {
        let file = self.file.take();
        let tmp_dir = self.tmp_dir.clone();
        let (res, file) = blocking(move || {
            let mut file = match file {
                Some(f) => f,
                None => match Self::open(&tmp_dir) {
                    Ok(f) => f,
                    Err(e) => return (Err(e), None),
                },
            };
            let r = file.0.write_all(&data);
            (r, Some(file))
        })
        .await;
        self.file = file;
        res
    }

    async fn abort(&mut self) {
        if let Some((_, path)) = self.file.take() {
            let _ = blocking(move || std::fs::remove_file(path)).await;
        }
    }

    /// Writes the rest, sets the metadata, fsyncs and renames into place, then runs
    /// `after` (cleanup and hash invalidation) on the same blocking trip.
    async fn commit(
        mut self,
        rest: Vec<u8>,
        meta: Metadata,
        target: PathBuf,
        after: impl FnOnce() -> std::io::Result<()> + Send + 'static,
    ) -> Result<(), DiskError> {
        let file = self.file.take();
        let tmp_dir = self.tmp_dir.clone();
        blocking(move || {
            let (mut f, tmp_path) = match file {
                Some(f) => f,
                None => Self::open(&tmp_dir)?,
            };
            let result = (|| -> Result<(), DiskError> {
                f.write_all(&rest)?;
                diskfile::write_metadata(&f, &tmp_path, &meta)?;
                f.sync_all()?;
                let dir = target.parent().expect("data file has a hash dir");
                let created = diskfile::create_dirs_counted(dir)?;
                std::fs::rename(&tmp_path, &target)?;
                // The new name, and every directory this write created, must survive
                // a crash: fsync the leaf and the parent of each new directory.
                let mut d = dir;
                for _ in 0..=created {
                    diskfile::fsync_dir(d)?;
                    match d.parent() {
                        Some(p) => d = p,
                        None => break,
                    }
                }
                Ok(())
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp_path);
            }
            result?;
            after()?;
            Ok(())
        })
        .await
    }
}

impl Drop for TempWriter {
    fn drop(&mut self) {
        // A request future dropped mid-body (client gone) must not leave temp files.
        if let Some((_, path)) = self.file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

// ----------------------------------------------------------------- container updates

async fn container_updates(
    state: &Arc<ObjectState>,
    or: &ObjectRequest,
    headers: &HeaderMap,
    op: &'static str,
    mut cheaders: Vec<(String, String)>,
    targets: Vec<UpdateTarget>,
    req_ts: Timestamp,
) {
    if targets.is_empty() {
        return;
    }
    cheaders.push((
        "X-Backend-Storage-Policy-Index".into(),
        or.policy.index.to_string(),
    ));
    cheaders.push((
        "X-Trans-Id".into(),
        h::get(headers, "x-trans-id").unwrap_or("-").to_string(),
    ));
    cheaders.push((
        "Referer".into(),
        format!("{op} http://localhost{}", or.name()),
    ));
    cheaders.push((
        "User-Agent".into(),
        format!("object-server {}", std::process::id()),
    ));
    let update = PendingUpdate {
        op,
        account: or.account.clone(),
        container: or.container.clone(),
        obj: or.object.clone(),
        headers: cheaders,
    };
    send_or_queue(state, or, update, targets, req_ts).await;
}

async fn send_or_queue(
    state: &Arc<ObjectState>,
    or: &ObjectRequest,
    update: PendingUpdate,
    targets: Vec<UpdateTarget>,
    req_ts: Timestamp,
) {
    let st = state.clone();
    let device_path = or.device_path.clone();
    let policy = or.policy.clone();
    let hash = or.hash.clone();
    // Each failed replica is queued; the task outlives a slow update so the answer is
    // not held longer than container_update_timeout, as in Swift.
    let task = tokio::spawn(async move {
        let mut failed = false;
        for t in &targets {
            if let Err(e) = update::send(&st.http, t, &update, st.cfg.node_timeout).await {
                tracing::error!(
                    host = %t.host, device = %t.device, error = %e,
                    "container update failed (saving for async update later)"
                );
                failed = true;
            }
        }
        if failed {
            let u = update.clone();
            let res = blocking(move || u.save(&device_path, &policy, &hash, req_ts)).await;
            if let Err(e) = res {
                tracing::error!(error = %e, "cannot write async_pending");
            }
        }
    });
    let _ = tokio::time::timeout(state.cfg.container_update_timeout, task).await;
}

/// The expirer queue: `.expiring_objects/<X-Delete-At-Container>/<at>-<a>/<c>/<o>`.
async fn delete_at_updates(
    state: &Arc<ObjectState>,
    or: &ObjectRequest,
    headers: &HeaderMap,
    new_at: Option<u64>,
    old_at: Option<String>,
    req_ts: Timestamp,
) {
    let old_at = old_at.and_then(|v| v.parse::<u64>().ok());
    if new_at == old_at {
        return;
    }
    let Some(at) = new_at else {
        return;
    };
    let Ok(targets) = update::targets(
        h::get(headers, "x-delete-at-host"),
        h::get(headers, "x-delete-at-partition"),
        h::get(headers, "x-delete-at-device"),
    ) else {
        return;
    };
    let Some(container) = h::get(headers, "x-delete-at-container") else {
        return;
    };
    if targets.is_empty() {
        return;
    }
    let update = PendingUpdate {
        op: "PUT",
        account: ".expiring_objects".into(),
        container: container.to_string(),
        obj: format!("{at}-{}/{}/{}", or.account, or.container, or.object),
        headers: vec![
            ("X-Size".into(), "0".into()),
            ("X-Content-Type".into(), "text/plain".into()),
            ("X-Timestamp".into(), req_ts.internal()),
            ("X-Etag".into(), "d41d8cd98f00b204e9800998ecf8427e".into()),
            ("X-Backend-Storage-Policy-Index".into(), "0".into()),
        ],
    };
    send_or_queue(state, or, update, targets, req_ts).await;
}

// ----------------------------------------------------------------------- GET/HEAD

fn object_headers(o: &OpenObject) -> HeaderMap {
    let mut hm = HeaderMap::new();
    for (k, v) in &o.metadata {
        let l = k.to_ascii_lowercase();
        if l == "name" || l == "etag" || l == "content-length" || l == "x-timestamp" {
            continue;
        }
        if l == "content-type-timestamp" {
            continue;
        }
        h::insert(&mut hm, k, v);
    }
    if let Some(e) = o.metadata.get("ETag") {
        h::insert(&mut hm, "etag", &format!("\"{e}\""));
    }
    let x_ts = o
        .metadata
        .get("X-Timestamp")
        .and_then(|t| Timestamp::parse(t).ok())
        .unwrap_or(o.data_timestamp);
    h::insert(&mut hm, "x-timestamp", &x_ts.normal());
    h::insert(&mut hm, "last-modified", &http_date(x_ts.ceil_seconds()));
    let backend_ts = o
        .meta_timestamp
        .unwrap_or(o.data_timestamp)
        .max(o.data_timestamp);
    h::insert(&mut hm, "x-backend-timestamp", &backend_ts.internal());
    h::insert(
        &mut hm,
        "x-backend-data-timestamp",
        &o.data_timestamp.internal(),
    );
    h::insert(
        &mut hm,
        "x-backend-durable-timestamp",
        &o.data_timestamp.internal(),
    );
    hm.insert("accept-ranges", HeaderValue::from_static("bytes"));
    hm
}

/// A metadata value by name, whatever its case.
fn meta_get<'a>(meta: &'a Metadata, name: &str) -> Option<&'a String> {
    meta.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Swift's `X-Backend-Etag-Is-At`: the first metadata item it names that the object has
/// is the ETag conditions are checked against (an SLO's own ETag, in its sysmeta).
fn etag_is_at(headers: &HeaderMap, meta: &Metadata) -> Option<String> {
    h::get(headers, "x-backend-etag-is-at")?
        .split(',')
        .find_map(|name| meta_get(meta, name.trim()))
        .cloned()
}

/// Swift's `X-Backend-Ignore-Range-If-Metadata-Present`: a middleware that wants such an
/// object whole (an SLO manifest) gets it whole, whatever the Range.
fn ignore_range(headers: &HeaderMap, meta: &Metadata) -> bool {
    h::get(headers, "x-backend-ignore-range-if-metadata-present").is_some_and(|v| {
        v.split(',')
            .any(|name| meta_get(meta, name.trim()).is_some())
    })
}

/// If-Match / If-None-Match / If-(Un)Modified-Since, as swob's conditional response.
fn conditional(
    headers: &HeaderMap,
    etag: &str,
    last_modified: u64,
    is_get_or_head: bool,
) -> Option<StatusCode> {
    if let Some(im) = h::get(headers, "if-match") {
        let tags = etag_list(im);
        if !tags.iter().any(|t| t == "*" || t == etag) {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    }
    if let Some(inm) = h::get(headers, "if-none-match") {
        let tags = etag_list(inm);
        if tags.iter().any(|t| t == "*" || t == etag) {
            return Some(if is_get_or_head {
                StatusCode::NOT_MODIFIED
            } else {
                StatusCode::PRECONDITION_FAILED
            });
        }
    } else if let Some(ims) = h::get(headers, "if-modified-since").and_then(parse_http_date) {
        if last_modified <= ims {
            return Some(StatusCode::NOT_MODIFIED);
        }
    }
    if let Some(ius) = h::get(headers, "if-unmodified-since").and_then(parse_http_date) {
        if last_modified > ius {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    }
    None
}

async fn get(state: &Arc<ObjectState>, or: ObjectRequest, headers: &HeaderMap, head: bool) -> Resp {
    if let Err(m) = h::timestamp(headers, "x-timestamp") {
        return plain(StatusCode::BAD_REQUEST, m);
    }
    let read_small = (!head && !headers.contains_key("range")).then_some(SMALL_OBJECT);
    let found = match lookup_reading(&or, read_small).await {
        Ok(Lookup::Found(o)) => o,
        Ok(Lookup::Deleted(t)) => return with_backend_ts(plain(StatusCode::NOT_FOUND, ""), t),
        Ok(Lookup::NotFound) => return plain(StatusCode::NOT_FOUND, ""),
        Err(DiskError::BadMetadata { path, reason }) => {
            tracing::error!(path = %path.display(), %reason, "quarantining object with bad metadata");
            quarantine(&or).await;
            return plain(StatusCode::NOT_FOUND, "");
        }
        Err(e) => return disk_error(&or.path.device, e),
    };
    if is_expired(&found.metadata, headers) {
        let ts = found.meta_timestamp.unwrap_or(found.data_timestamp);
        return with_backend_ts(plain(StatusCode::NOT_FOUND, ""), ts);
    }
    let expected_size: u64 = found
        .metadata
        .get("Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(found.size);
    if expected_size != found.size {
        tracing::error!(path = %found.data_path.display(), "size mismatch; quarantining");
        quarantine(&or).await;
        return plain(StatusCode::NOT_FOUND, "");
    }
    let mut hm = object_headers(&found);
    let etag = found.metadata.get("ETag").cloned().unwrap_or_default();
    if let Some(b) = &found.small_body {
        // Verified before a byte is sent: a corrupt small object is never served.
        if hex::encode(Md5::digest(b)) != etag {
            tracing::error!(path = %found.data_path.display(), "ETag and file's md5 do not match; quarantining");
            quarantine(&or).await;
            return plain(StatusCode::NOT_FOUND, "");
        }
    }
    let x_ts = found
        .metadata
        .get("X-Timestamp")
        .and_then(|t| Timestamp::parse(t).ok())
        .unwrap_or(found.data_timestamp);
    let conditional_etag = etag_is_at(headers, &found.metadata).unwrap_or_else(|| etag.clone());
    if let Some(status) = conditional(headers, &conditional_etag, x_ts.ceil_seconds(), true) {
        let mut r = empty(status);
        hm.remove("content-type");
        r.headers_mut().extend(hm);
        r.headers_mut()
            .insert("content-length", HeaderValue::from_static("0"));
        return r;
    }
    let size = found.size;
    let ranges = match h::get(headers, "range").filter(|_| !ignore_range(headers, &found.metadata))
    {
        Some(r) => parse_range(r, size),
        None => RangeOutcome::Full,
    };
    match ranges {
        RangeOutcome::Unsatisfiable => {
            let mut r = plain(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "Requested Range Not Satisfiable",
            );
            // The object's headers (ETag, Accept-Ranges, Last-Modified, metadata) stay on
            // the 416, as in Swift; only the body and its type and length are the error's.
            hm.remove("content-type");
            hm.remove("content-length");
            for (k, v) in hm.iter() {
                if !r.headers().contains_key(k) {
                    r.headers_mut().insert(k.clone(), v.clone());
                }
            }
            h::insert(r.headers_mut(), "content-range", &format!("bytes */{size}"));
            r
        }
        RangeOutcome::Full => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::OK;
            r.headers_mut().extend(hm);
            h::insert(r.headers_mut(), "content-length", &size.to_string());
            if !head {
                *r.body_mut() = match found.small_body {
                    Some(b) => Body::from(b),
                    None => full_body(state, &or, found, etag),
                };
            }
            r
        }
        RangeOutcome::Ranges(rs) if rs.len() == 1 => {
            let br = rs[0];
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            r.headers_mut().extend(hm);
            h::insert(
                r.headers_mut(),
                "content-range",
                &format!("bytes {}-{}/{size}", br.start, br.end),
            );
            h::insert(r.headers_mut(), "content-length", &br.length().to_string());
            if !head {
                *r.body_mut() = range_body(found.file, vec![(Vec::new(), br)], Vec::new());
            }
            r
        }
        RangeOutcome::Ranges(rs) => {
            let boundary = diskfile::unique_hex();
            let ctype = found
                .metadata
                .get("Content-Type")
                .cloned()
                .unwrap_or_else(|| "application/octet-stream".into());
            let parts: Vec<(Vec<u8>, ByteRange)> = rs
                .iter()
                .enumerate()
                .map(|(i, br)| {
                    let lead = if i == 0 { "" } else { "\r\n" };
                    (
                        format!(
                            "{lead}--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {}-{}/{size}\r\n\r\n",
                            br.start, br.end
                        )
                        .into_bytes(),
                        *br,
                    )
                })
                .collect();
            let trailer = format!("\r\n--{boundary}--").into_bytes();
            let total: u64 = parts
                .iter()
                .map(|(p, br)| p.len() as u64 + br.length())
                .sum::<u64>()
                + trailer.len() as u64;
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            r.headers_mut().extend(hm);
            h::insert(
                r.headers_mut(),
                "content-type",
                &format!("multipart/byteranges;boundary={boundary}"),
            );
            h::insert(r.headers_mut(), "content-length", &total.to_string());
            if !head {
                *r.body_mut() = range_body(found.file, parts, trailer);
            }
            r
        }
    }
}

async fn quarantine(or: &ObjectRequest) {
    let dev = or.device_path.clone();
    let objects = or.policy.dir("objects");
    let hdir = or.hash_dir.clone();
    let part_dir = or.part_dir.clone();
    let suffix = or.suffix().to_string();
    let _ = blocking(move || {
        let r = diskfile::quarantine(&dev, &objects, &hdir);
        let _ = hashes::invalidate_hash(&part_dir, &suffix);
        r
    })
    .await;
}

/// The whole object. Small ones come from one read; larger ones stream in
/// `disk_chunk_size` pieces with the md5 checked at the end (a mismatch quarantines the
/// object so the next reader gets a good replica elsewhere, as Swift's reader does).
fn full_body(state: &Arc<ObjectState>, or: &ObjectRequest, o: OpenObject, etag: String) -> Body {
    let chunk = state.cfg.disk_chunk_size.max(4096);
    let size = o.size;
    let quarantine_info = (
        or.device_path.clone(),
        or.policy.dir("objects"),
        or.hash_dir.clone(),
        or.part_dir.clone(),
        or.suffix().to_string(),
    );
    struct St {
        file: Option<std::fs::File>,
        md5: Md5,
        left: u64,
    }
    let init = St {
        file: Some(o.file),
        md5: Md5::new(),
        left: size,
    };
    let stream = futures_util::stream::unfold(init, move |mut st| {
        let etag = etag.clone();
        let qi = quarantine_info.clone();
        async move {
            if st.left == 0 {
                st.file.as_ref()?;
                st.file = None;
                let got = hex::encode(st.md5.clone().finalize());
                if got != etag {
                    tracing::error!(
                        path = %qi.2.display(), stored = %etag, actual = %got,
                        "ETag and file's md5 do not match; quarantining"
                    );
                    let _ = blocking(move || {
                        let r = diskfile::quarantine(&qi.0, &qi.1, &qi.2);
                        let _ = hashes::invalidate_hash(&qi.3, &qi.4);
                        r
                    })
                    .await;
                }
                return None;
            }
            let want = st.left.min(if size <= SMALL_OBJECT {
                size
            } else {
                chunk as u64
            }) as usize;
            let mut file = st.file.take()?;
            let (res, file) = blocking(move || {
                let mut buf = vec![0u8; want];
                let r = file.read_exact(&mut buf).map(|_| buf);
                (r, file)
            })
            .await;
            match res {
                Ok(buf) => {
                    st.md5.update(&buf);
                    st.left -= buf.len() as u64;
                    st.file = Some(file);
                    Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), st))
                }
                Err(e) => Some((Err(e), st)),
            }
        }
    });
    Body::from_stream(stream)
}

/// Byte ranges, each preceded by its (possibly empty) multipart header, then a trailer.
fn range_body(file: std::fs::File, parts: Vec<(Vec<u8>, ByteRange)>, trailer: Vec<u8>) -> Body {
    const CHUNK: u64 = 65536;
    struct St {
        file: Option<std::fs::File>,
        parts: std::collections::VecDeque<(Vec<u8>, ByteRange)>,
        pos: Option<(u64, u64)>,
        trailer: Option<Vec<u8>>,
    }
    let st = St {
        file: Some(file),
        parts: parts.into(),
        pos: None,
        trailer: Some(trailer),
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some((at, end)) = st.pos {
                if at > end {
                    st.pos = None;
                    continue;
                }
                let want = (end - at + 1).min(CHUNK) as usize;
                let mut file = st.file.take()?;
                let (res, file) = blocking(move || {
                    let mut buf = vec![0u8; want];
                    let r = file
                        .seek(SeekFrom::Start(at))
                        .and_then(|_| file.read_exact(&mut buf))
                        .map(|_| buf);
                    (r, file)
                })
                .await;
                st.file = Some(file);
                return match res {
                    Ok(buf) => {
                        st.pos = Some((at + buf.len() as u64, end));
                        Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), st))
                    }
                    Err(e) => {
                        st.parts.clear();
                        st.trailer = None;
                        st.pos = None;
                        Some((Err(e), st))
                    }
                };
            }
            if let Some((header, br)) = st.parts.pop_front() {
                st.pos = Some((br.start, br.end));
                if !header.is_empty() {
                    return Some((Ok(Bytes::from(header)), st));
                }
                continue;
            }
            let t = st.trailer.take()?;
            if t.is_empty() {
                return None;
            }
            return Some((Ok(Bytes::from(t)), st));
        }
    });
    Body::from_stream(stream)
}

// --------------------------------------------------------------------------- POST

async fn post(state: &Arc<ObjectState>, or: ObjectRequest, headers: &HeaderMap) -> Resp {
    let req_ts = match required_timestamp(headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Err(m) = check_metadata(headers, MetaTarget::Object, &state.cfg.constraints) {
        return plain(StatusCode::BAD_REQUEST, m);
    }
    let delete_at = match delete_at_header(headers) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let container_targets = match update::targets(
        h::get(headers, "x-container-host"),
        h::get(headers, "x-container-partition"),
        h::get(headers, "x-container-device"),
    ) {
        Ok(t) => t,
        Err(m) => return plain(StatusCode::BAD_REQUEST, m),
    };
    let found = match lookup(&or).await {
        Ok(Lookup::Found(o)) => o,
        Ok(Lookup::Deleted(t)) => return with_backend_ts(plain(StatusCode::NOT_FOUND, ""), t),
        Ok(Lookup::NotFound) => return plain(StatusCode::NOT_FOUND, ""),
        Err(e) => return disk_error(&or.path.device, e),
    };
    if is_expired(&found.metadata, headers) {
        return plain(StatusCode::NOT_FOUND, "");
    }
    let orig = found
        .meta_timestamp
        .unwrap_or(found.data_timestamp)
        .max(found.data_timestamp);
    if orig >= req_ts {
        return with_backend_ts(plain(StatusCode::CONFLICT, "Conflict"), orig);
    }
    let mut meta = Metadata::new();
    meta.insert("X-Timestamp".into(), req_ts.internal());
    user_metadata(state, headers, &mut meta, false);
    meta.remove("X-Delete-At");
    if let Some(d) = delete_at {
        meta.insert("X-Delete-At".into(), d.to_string());
    }
    let new_ctype = h::get(headers, "content-type").map(str::to_string);
    if let Some(ct) = &new_ctype {
        meta.insert("Content-Type".into(), ct.clone());
        meta.insert("Content-Type-Timestamp".into(), req_ts.internal());
    } else if let (Some(ct), Some(ct_ts)) = (
        found.metadata.get("Content-Type"),
        found.metadata.get("Content-Type-Timestamp"),
    ) {
        // A content type an earlier POST set lives in the .meta this one replaces.
        meta.insert("Content-Type".into(), ct.clone());
        meta.insert("Content-Type-Timestamp".into(), ct_ts.clone());
    }
    let tmp_dir = or.device_path.join(or.policy.dir("tmp"));
    let target = or.hash_dir.join(format!("{}.meta", req_ts.internal()));
    let part_dir = or.part_dir.clone();
    let suffix = or.suffix().to_string();
    let hash_dir = or.hash_dir.clone();
    let writer = TempWriter::new(tmp_dir);
    if let Err(e) = writer
        .commit(Vec::new(), meta, target, move || {
            let _ = diskfile::cleanup(&hash_dir, None);
            hashes::invalidate_hash(&part_dir, &suffix)
        })
        .await
    {
        return disk_error(&or.path.device, e);
    }
    let old_delete_at = found.metadata.get("X-Delete-At").cloned();
    // A content type set by a POST keeps the data file's `swift_bytes` (an SLO's size)
    // in the container row, as Swift's object server keeps it.
    let ctype_from_meta =
        new_ctype.is_some() || found.metadata.contains_key("Content-Type-Timestamp");
    let current_ctype = new_ctype
        .clone()
        .or_else(|| found.metadata.get("Content-Type").cloned())
        .unwrap_or_default();
    let listed_ctype = if ctype_from_meta {
        let datafile_ctype = diskfile::read_metadata(&found.file, &found.data_path)
            .ok()
            .and_then(|m| m.get("Content-Type").cloned())
            .unwrap_or_default();
        match datafile_ctype
            .split(';')
            .find_map(|p| p.trim().strip_prefix("swift_bytes="))
        {
            Some(n) => format!("{current_ctype};swift_bytes={n}"),
            None => current_ctype,
        }
    } else {
        current_ctype
    };
    let mut cheaders = vec![
        ("X-Size".to_string(), found.size.to_string()),
        ("X-Content-Type".to_string(), listed_ctype),
        ("X-Timestamp".to_string(), found.data_timestamp.internal()),
        (
            "X-Etag".to_string(),
            found.metadata.get("ETag").cloned().unwrap_or_default(),
        ),
        ("X-Meta-Timestamp".to_string(), req_ts.internal()),
    ];
    if new_ctype.is_some() {
        cheaders.push(("X-Content-Type-Timestamp".into(), req_ts.internal()));
    }
    // The overrides the PUT stored (an SLO's ETag with its slo_etag) apply again.
    let mut stored_overrides = HeaderMap::new();
    for (k, v) in &found.metadata {
        let lower = k.to_ascii_lowercase();
        if lower.starts_with("x-object-sysmeta-container-update-override-") {
            if let (Ok(name), Ok(value)) = (
                axum::http::HeaderName::from_bytes(lower.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                stored_overrides.insert(name, value);
            }
        }
    }
    apply_overrides(&stored_overrides, &mut cheaders);
    let ctype_reply = found
        .metadata
        .get("Content-Type")
        .cloned()
        .unwrap_or_default();
    let sysmeta: Vec<(String, String)> = found
        .metadata
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-object-sysmeta-"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    drop(found);
    container_updates(
        state,
        &or,
        headers,
        "PUT",
        cheaders,
        container_targets,
        req_ts,
    )
    .await;
    delete_at_updates(state, &or, headers, delete_at, old_delete_at, req_ts).await;
    let mut r = empty(StatusCode::ACCEPTED);
    h::insert(r.headers_mut(), "x-backend-content-type", &ctype_reply);
    for (k, v) in sysmeta {
        h::insert(r.headers_mut(), &k, &v);
    }
    r
}

// ------------------------------------------------------------------------- DELETE

async fn delete(state: &Arc<ObjectState>, or: ObjectRequest, headers: &HeaderMap) -> Resp {
    let req_ts = match required_timestamp(headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let container_targets = match update::targets(
        h::get(headers, "x-container-host"),
        h::get(headers, "x-container-partition"),
        h::get(headers, "x-container-device"),
    ) {
        Ok(t) => t,
        Err(m) => return plain(StatusCode::BAD_REQUEST, m),
    };
    let existing = match lookup(&or).await {
        Ok(l) => l,
        Err(e) => return disk_error(&or.path.device, e),
    };
    let (orig_ts, existed, stored_delete_at, ctype) = match &existing {
        Lookup::Found(o) => (
            Some(
                o.data_timestamp
                    .max(o.meta_timestamp.unwrap_or(o.data_timestamp)),
            ),
            !is_expired(&o.metadata, headers),
            o.metadata.get("X-Delete-At").cloned(),
            o.metadata.get("Content-Type").cloned(),
        ),
        Lookup::Deleted(t) => (Some(*t), false, None, None),
        Lookup::NotFound => (None, false, None, None),
    };
    drop(existing);
    if let Some(want) = h::get(headers, "x-if-delete-at") {
        // Swift's order: an unreadable value is 400, then a missing object 404, a newer
        // one 409, and a different expiry 412.
        let Ok(want) = Timestamp::parse(want.trim()) else {
            return plain(StatusCode::BAD_REQUEST, "Bad X-If-Delete-At header value");
        };
        match orig_ts {
            None => return plain(StatusCode::NOT_FOUND, ""),
            Some(orig) if orig >= req_ts => {
                return with_backend_ts(plain(StatusCode::CONFLICT, "Conflict"), orig)
            }
            _ => {}
        }
        let stored = stored_delete_at
            .as_deref()
            .and_then(|s| Timestamp::parse(s.trim()).ok());
        if stored != Some(want) {
            return plain(StatusCode::PRECONDITION_FAILED, "X-If-Delete-At mismatch");
        }
    }
    if let Some(orig) = orig_ts {
        if orig >= req_ts {
            return with_backend_ts(plain(StatusCode::CONFLICT, "Conflict"), orig);
        }
    }
    let mut meta = Metadata::new();
    meta.insert("X-Timestamp".into(), req_ts.internal());
    meta.insert("name".into(), or.name());
    let tmp_dir = or.device_path.join(or.policy.dir("tmp"));
    let target = or.hash_dir.join(format!("{}.ts", req_ts.internal()));
    let part_dir = or.part_dir.clone();
    let suffix = or.suffix().to_string();
    let hash_dir = or.hash_dir.clone();
    let writer = TempWriter::new(tmp_dir);
    if let Err(e) = writer
        .commit(Vec::new(), meta, target, move || {
            let _ = diskfile::cleanup(&hash_dir, None);
            hashes::invalidate_hash(&part_dir, &suffix)
        })
        .await
    {
        return disk_error(&or.path.device, e);
    }
    let cheaders = vec![("X-Timestamp".to_string(), req_ts.internal())];
    container_updates(
        state,
        &or,
        headers,
        "DELETE",
        cheaders,
        container_targets,
        req_ts,
    )
    .await;
    let status = if existed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    };
    let mut r = empty(status);
    h::insert(
        r.headers_mut(),
        "x-backend-timestamp",
        &orig_ts.unwrap_or(req_ts).max(req_ts).internal(),
    );
    if let Some(ct) = ctype {
        h::insert(r.headers_mut(), "x-backend-content-type", &ct);
    }
    r
}

// ---------------------------------------------------------------------- REPLICATE

async fn replicate(state: &Arc<ObjectState>, path: &str, headers: &HeaderMap) -> Resp {
    let sp = match parse_storage_path(path, 2, 3) {
        Ok(p) => p,
        Err(PathError::Invalid(m)) => return plain(StatusCode::BAD_REQUEST, m),
        Err(PathError::BadEncoding) => {
            return plain(
                StatusCode::PRECONDITION_FAILED,
                "Invalid UTF8 or contains NULL",
            )
        }
    };
    let policy = match state
        .cfg
        .policies
        .from_header(h::get(headers, "x-backend-storage-policy-index"))
    {
        Ok(p) => p.clone(),
        Err(m) => return plain(StatusCode::SERVICE_UNAVAILABLE, m),
    };
    let device_path = match state.cfg.devices.device_path(&sp.device) {
        DeviceState::Ok(p) => p,
        DeviceState::Unavailable => return insufficient_storage(&sp.device),
    };
    let suffixes: Vec<String> = sp
        .account
        .as_deref()
        .map(|s| s.split('-').map(str::to_string).collect())
        .unwrap_or_default();
    if suffixes.iter().any(|s| !hashes::valid_suffix(s)) {
        return plain(StatusCode::BAD_REQUEST, "Invalid suffix");
    }
    let part_dir = device_path.join(policy.dir("objects")).join(&sp.partition);
    let reclaim = Timestamp::from_ticks(
        Timestamp::now()
            .ticks()
            .saturating_sub(state.cfg.reclaim_age * 100_000),
        0,
    );
    let res = blocking(move || -> std::io::Result<Vec<u8>> {
        if suffixes.is_empty() {
            let hashes = hashes::get_hashes(&part_dir, &[], Some(reclaim))?;
            Ok(hashes::pickle_hashes(&hashes))
        } else {
            for s in &suffixes {
                hashes::invalidate_hash(&part_dir, s)?;
            }
            Ok(ringsmith::pickle::dumps(&ringsmith::pickle::Value::None))
        }
    })
    .await;
    match res {
        Ok(body) => {
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/octet-stream"),
            );
            r
        }
        Err(e) => disk_error(&sp.device, e.into()),
    }
}
