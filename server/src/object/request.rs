//! A validated object request, and what the verb handlers share: disk errors, the
//! `X-Delete-At` checks, stored user metadata and the container replicas to update.

use std::path::PathBuf;

use axum::http::{HeaderMap, StatusCode};

use super::diskfile::{self, hashes, DiskError, Lookup, Metadata, TempWriter};
use super::ObjectState;
use crate::common::headers::{self as h, title_case, update_targets, UpdateTarget};
use crate::common::path::StoragePath;
use crate::common::shell::{blocking, Resp};
use crate::common::{insufficient_storage, plain, Timestamp};
use ringsmith::swift::policy::Policy;

/// A validated object request: where the object lives and under which policy.
pub(super) struct ObjectRequest {
    pub(super) path: StoragePath,
    pub(super) account: String,
    pub(super) container: String,
    pub(super) object: String,
    pub(super) policy: Policy,
    pub(super) device_path: PathBuf,
    /// `mount_check` is on: writes must land on the device's own filesystem.
    pub(super) mount_checked: bool,
    pub(super) hash: String,
    pub(super) part_dir: PathBuf,
    pub(super) hash_dir: PathBuf,
}

impl ObjectRequest {
    pub(super) fn new(
        state: &ObjectState,
        path: StoragePath,
        headers: &HeaderMap,
    ) -> Result<Self, Resp> {
        let policy = request_policy(state, headers)?;
        let device_path = state.cfg.storage.devices.require(&path.device)?;
        let (Some(account), Some(container), Some(object)) = (
            path.account.clone(),
            path.container.clone(),
            path.object.clone(),
        ) else {
            return Err(plain(StatusCode::BAD_REQUEST, "Invalid path"));
        };
        let hash = state
            .cfg
            .storage
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
            mount_checked: state.cfg.storage.devices.mount_check,
            hash,
            part_dir,
            hash_dir,
        })
    }

    pub(super) fn name(&self) -> String {
        format!("/{}/{}/{}", self.account, self.container, self.object)
    }

    pub(super) fn suffix(&self) -> &str {
        &self.hash[self.hash.len() - 3..]
    }

    /// The object's state on disk; with `read_up_to`, a body of at most that many bytes
    /// is read at once.
    pub(super) async fn lookup(&self, read_up_to: Option<u64>) -> Result<Lookup, DiskError> {
        let dir = self.hash_dir.clone();
        blocking(move || diskfile::open(&dir, read_up_to)).await
    }

    /// [`Self::lookup`], choosing among an EC hash directory's fragments by `select`.
    pub(super) async fn lookup_selecting(
        &self,
        read_up_to: Option<u64>,
        select: diskfile::FragmentSelection,
    ) -> Result<Lookup, DiskError> {
        let dir = self.hash_dir.clone();
        blocking(move || diskfile::open_selecting(&dir, read_up_to, &select)).await
    }

    /// Commits `writer` as `<timestamp><ext>` in the hash directory, then removes what
    /// the new file makes obsolete and invalidates the suffix hash.
    pub(super) async fn commit(
        &self,
        writer: TempWriter,
        rest: Vec<u8>,
        meta: Metadata,
        ext: &str,
        ts: Timestamp,
    ) -> Result<(), Resp> {
        let target = self.hash_dir.join(format!("{}{ext}", ts.internal()));
        let part_dir = self.part_dir.clone();
        let suffix = self.suffix().to_string();
        let hash_dir = self.hash_dir.clone();
        writer
            .commit(rest, meta, target, move || {
                let _ = diskfile::cleanup(&hash_dir, None);
                hashes::invalidate_hash(&part_dir, &suffix)
            })
            .await
            .map_err(|e| disk_error(&self.path.device, e))
    }

    /// Marks the fragment archive `<ts>#<frag>.data` durable (`#d`), then cleans up
    /// what the durable fragment makes obsolete.
    pub(super) async fn make_durable(&self, ts: Timestamp, frag_index: u32) -> Result<(), Resp> {
        let hash_dir = self.hash_dir.clone();
        let part_dir = self.part_dir.clone();
        let suffix = self.suffix().to_string();
        blocking(move || -> Result<(), DiskError> {
            let from = hash_dir.join(diskfile::ec::fragment_name(ts, frag_index, false));
            let to = hash_dir.join(diskfile::ec::fragment_name(ts, frag_index, true));
            std::fs::rename(&from, &to)?;
            diskfile::fsync_dir(&hash_dir)?;
            let _ = diskfile::cleanup(&hash_dir, None);
            hashes::invalidate_hash(&part_dir, &suffix)?;
            Ok(())
        })
        .await
        .map_err(|e| disk_error(&self.path.device, e))
    }

    /// A writer for a file of this object, under the policy's `tmp` directory.
    pub(super) fn writer(&self) -> TempWriter {
        TempWriter::new(
            self.device_path.join(self.policy.dir("tmp")),
            self.mount_checked.then(|| self.device_path.clone()),
        )
    }

    /// Moves a corrupt object aside so the next reader gets a good replica elsewhere.
    pub(super) async fn quarantine(&self) {
        let dev = self.device_path.clone();
        let objects = self.policy.dir("objects");
        let hdir = self.hash_dir.clone();
        let part_dir = self.part_dir.clone();
        let suffix = self.suffix().to_string();
        let _ = blocking(move || {
            let r = diskfile::quarantine(&dev, &objects, &hdir);
            let _ = hashes::invalidate_hash(&part_dir, &suffix);
            r
        })
        .await;
    }
}

/// The storage policy a backend request names in `X-Backend-Storage-Policy-Index` (policy
/// 0 when absent); 503 for an index this node does not know, as Swift answers.
pub(super) fn request_policy(state: &ObjectState, headers: &HeaderMap) -> Result<Policy, Resp> {
    state
        .cfg
        .storage
        .policies
        .from_header(h::get(headers, "x-backend-storage-policy-index"))
        .cloned()
        .map_err(|m| plain(StatusCode::SERVICE_UNAVAILABLE, m))
}

pub(super) fn disk_error(device: &str, e: DiskError) -> Resp {
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

pub(super) fn now_secs() -> u64 {
    Timestamp::now().seconds()
}

/// `X-Delete-At` of a write: an integer in the future.
pub(super) fn delete_at_header(headers: &HeaderMap) -> Result<Option<u64>, Resp> {
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

pub(super) fn is_expired(meta: &Metadata, headers: &HeaderMap) -> bool {
    if h::get(headers, "x-backend-open-expired").is_some_and(ringsmith::swift::conf::is_true) {
        return false;
    }
    meta.get("X-Delete-At")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|at| at <= now_secs())
}

pub(super) fn with_backend_ts(mut r: Resp, ts: Timestamp) -> Resp {
    h::insert(r.headers_mut(), "x-backend-timestamp", &ts.internal());
    r
}

/// Headers that a PUT or POST stores besides the fixed ones.
pub(super) fn user_metadata(
    state: &ObjectState,
    headers: &HeaderMap,
    meta: &mut Metadata,
    sysmeta: bool,
) {
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
    // An SSYNC subrequest names every header it synced: stored as they came.
    if let Some(names) = h::get(headers, "x-backend-replication-headers") {
        for n in names.split_whitespace() {
            if let Some(v) = h::get(headers, n) {
                meta.insert(title_case(&n.to_ascii_lowercase()), v.to_string());
            }
        }
    }
}

/// The container replicas the proxy names in `X-Container-Host/Partition/Device`.
pub(super) fn container_targets(headers: &HeaderMap) -> Result<Vec<UpdateTarget>, Resp> {
    update_targets(
        h::get(headers, "x-container-host"),
        h::get(headers, "x-container-partition"),
        h::get(headers, "x-container-device"),
    )
    .map_err(|m| plain(StatusCode::BAD_REQUEST, m))
}
