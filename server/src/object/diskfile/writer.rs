//! Writing one file of an object: a temp file under `<dev>/tmp[-N]`, filled from the
//! blocking pool a buffer at a time, its metadata set as xattrs, fsynced, and put into
//! the hash directory, whose new directories are fsynced too. A crash never leaves a
//! partial `.data`.
//!
//! Where the filesystem allows it the temp file is unnamed (`O_TMPFILE`) and is given
//! its name in the hash directory with one `linkat` once it is complete: no entry is
//! created in and removed from `tmp` for each write, so that directory is not rewritten
//! per PUT, and neither a crash nor a dropped request can leave a stray temp file.
//! Otherwise (or when the name already exists: a rewrite at the same timestamp) it is a
//! named file in `tmp` renamed into place, as Swift does; a dropped request removes it,
//! and the writer holds it locked so that after a crash the replicator knows it for a
//! leftover ([`super::stale_temp`]).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{create_dirs_counted, fsync_dir, write_metadata, DiskError, Metadata};
use crate::common::shell::blocking;
use crate::common::unique_hex;

/// A temp file under `tmp[-N]` filled from the blocking pool; removed unless committed.
pub struct TempWriter {
    tmp_dir: PathBuf,
    /// With `mount_check`, the device that must still be mounted when the file is made.
    mounted_device: Option<PathBuf>,
    /// The file, and its name in `tmp` unless it is unnamed (`O_TMPFILE`).
    file: Option<(std::fs::File, Option<PathBuf>)>,
}

/// An unnamed file can be linked only through `/proc/self/fd` (`AT_EMPTY_PATH` needs a
/// capability), so unnamed files are used only when that exists.
fn proc_fd_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

/// An unnamed file in `dir`'s filesystem; `None` where the filesystem (or kernel) has no
/// `O_TMPFILE`.
fn open_unnamed(dir: &Path) -> std::io::Result<Option<std::fs::File>> {
    if !proc_fd_available() {
        return Ok(None);
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
    {
        Ok(f) => Ok(Some(f)),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Gives the unnamed `file` the name `target`.
fn link_unnamed(file: &std::fs::File, target: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::io::AsRawFd;
    let invalid = |_| std::io::Error::from_raw_os_error(libc::EINVAL);
    let src =
        std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(invalid)?;
    let dst = std::ffi::CString::new(target.as_os_str().as_bytes()).map_err(invalid)?;
    // SAFETY: both paths are NUL-terminated C strings that outlive the call.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            src.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl TempWriter {
    pub fn new(tmp_dir: PathBuf, mounted_device: Option<PathBuf>) -> Self {
        TempWriter {
            tmp_dir,
            mounted_device,
            file: None,
        }
    }

    /// Makes the temp file. A device unmounted since the request was checked must not
    /// take the write on the filesystem underneath it (usually the root filesystem, where
    /// the object would be acknowledged and then hidden when the device comes back): the
    /// device is checked before anything is created, and the new file must sit on a
    /// different filesystem than the devices directory, which closes the race between
    /// the two. Either failure is `ENODEV`, a 507 for the client.
    fn open(
        tmp_dir: &Path,
        mounted_device: Option<&Path>,
    ) -> std::io::Result<(std::fs::File, Option<PathBuf>)> {
        use std::os::unix::fs::MetadataExt;
        let gone = || std::io::Error::from_raw_os_error(libc::ENODEV);
        if let Some(dev) = mounted_device {
            if !crate::common::is_mount_point(dev) {
                return Err(gone());
            }
        }
        std::fs::create_dir_all(tmp_dir)?;
        let (f, path) = match open_unnamed(tmp_dir)? {
            Some(f) => (f, None),
            None => {
                let path = tmp_dir.join(format!("tmp{}", unique_hex()));
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)?;
                super::stale_temp::hold_temp(&f)?;
                (f, Some(path))
            }
        };
        if let Some(devices) = mounted_device.and_then(Path::parent) {
            if f.metadata()?.dev() == std::fs::metadata(devices)?.dev() {
                if let Some(p) = &path {
                    let _ = std::fs::remove_file(p);
                }
                return Err(gone());
            }
        }
        Ok((f, path))
    }

    pub async fn write(&mut self, data: Vec<u8>) -> std::io::Result<()> {
        let file = self.file.take();
        let tmp_dir = self.tmp_dir.clone();
        let mounted = self.mounted_device.clone();
        let (res, file) = blocking(move || {
            let mut file = match file {
                Some(f) => f,
                None => match Self::open(&tmp_dir, mounted.as_deref()) {
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

    pub async fn abort(&mut self) {
        if let Some((_, Some(path))) = self.file.take() {
            let _ = blocking(move || std::fs::remove_file(path)).await;
        }
    }

    /// Writes the rest, sets the metadata, fsyncs and renames into place, then runs
    /// `after` (cleanup and hash invalidation) on the same blocking trip.
    pub async fn commit(
        mut self,
        rest: Vec<u8>,
        meta: Metadata,
        target: PathBuf,
        after: impl FnOnce() -> std::io::Result<()> + Send + 'static,
    ) -> Result<(), DiskError> {
        let file = self.file.take();
        let tmp_dir = self.tmp_dir.clone();
        let mounted = self.mounted_device.clone();
        blocking(move || {
            let (mut f, tmp_path) = match file {
                Some(f) => f,
                None => Self::open(&tmp_dir, mounted.as_deref())?,
            };
            let result = (|| -> Result<(), DiskError> {
                let meta_path = tmp_path.clone().unwrap_or_else(|| target.clone());
                f.write_all(&rest)?;
                write_metadata(&f, &meta_path, &meta)?;
                f.sync_all()?;
                let dir = target.parent().expect("data file has a hash dir");
                let created = create_dirs_counted(dir)?;
                match &tmp_path {
                    Some(p) => std::fs::rename(p, &target)?,
                    None => match link_unnamed(&f, &target) {
                        Ok(()) => {}
                        // The name exists (a rewrite at the same timestamp): replace it
                        // as a named temp file would, by a rename.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            let named = tmp_dir.join(format!("tmp{}", unique_hex()));
                            super::stale_temp::hold_temp(&f)?;
                            link_unnamed(&f, &named)?;
                            if let Err(e) = std::fs::rename(&named, &target) {
                                let _ = std::fs::remove_file(&named);
                                return Err(e.into());
                            }
                        }
                        Err(e) => return Err(e.into()),
                    },
                }
                // The new name, and every directory this write created, must survive
                // a crash: fsync the leaf and the parent of each new directory.
                let mut d = dir;
                for _ in 0..=created {
                    fsync_dir(d)?;
                    match d.parent() {
                        Some(p) => d = p,
                        None => break,
                    }
                }
                Ok(())
            })();
            if result.is_err() {
                if let Some(p) = &tmp_path {
                    let _ = std::fs::remove_file(p);
                }
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
        if let Some((_, Some(path))) = self.file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_committed_file_is_whole_and_leaves_nothing_in_tmp() {
        let dev = tempfile::tempdir().unwrap();
        let tmp = dev.path().join("tmp");
        let target = dev.path().join("objects/1/abc/hash/1.00000.data");
        let meta = |etag: &str| Metadata::from([("ETag".to_string(), etag.to_string())]);
        let mut w = TempWriter::new(tmp.clone(), None);
        w.write(b"first ".to_vec()).await.unwrap();
        if super::open_unnamed(&tmp).unwrap().is_some() {
            // Where O_TMPFILE works (ext4, tmpfs), a write in progress has no name.
            assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
        }
        w.commit(b"body".to_vec(), meta("a"), target.clone(), || Ok(()))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"first body");
        let f = std::fs::File::open(&target).unwrap();
        assert_eq!(super::super::read_metadata(&f, &target).unwrap(), meta("a"));
        // A rewrite at the same name replaces it whole.
        let w = TempWriter::new(tmp.clone(), None);
        w.commit(b"second".to_vec(), meta("b"), target.clone(), || Ok(()))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"second");
        let f = std::fs::File::open(&target).unwrap();
        assert_eq!(super::super::read_metadata(&f, &target).unwrap(), meta("b"));
        // A writer dropped mid-body leaves nothing either.
        let mut w = TempWriter::new(tmp.clone(), None);
        w.write(b"partial".to_vec()).await.unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn an_unmounted_device_takes_no_write_and_gets_no_directories() {
        let devices = tempfile::tempdir().unwrap();
        let dev = devices.path().join("sda");
        std::fs::create_dir(&dev).unwrap();
        // `sda` is a plain directory on the devices filesystem: not a mount point.
        let mut w = TempWriter::new(dev.join("tmp"), Some(dev.clone()));
        let e = w.write(b"data".to_vec()).await.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
        assert!(DiskError::Io(e).is_insufficient_storage());
        assert!(std::fs::read_dir(&dev).unwrap().next().is_none());

        // Without mount_check the same directory is a device.
        let mut w = TempWriter::new(dev.join("tmp"), None);
        w.write(b"data".to_vec()).await.unwrap();
        w.abort().await;
        assert!(dev.join("tmp").is_dir());
    }
}
