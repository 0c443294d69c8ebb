//! Writing one file of an object: a temp file under `<dev>/tmp[-N]`, filled from the
//! blocking pool a buffer at a time, its metadata set as xattrs, fsynced, and renamed
//! into the hash directory, whose new directories are fsynced too. A crash leaves at
//! worst a stray temp file, never a partial `.data`; a dropped request removes its temp
//! file.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{create_dirs_counted, fsync_dir, write_metadata, DiskError, Metadata};
use crate::common::shell::blocking;
use crate::common::unique_hex;

/// A temp file under `tmp[-N]` filled from the blocking pool; removed unless committed.
pub struct TempWriter {
    tmp_dir: PathBuf,
    /// With `mount_check`, the device that must still be mounted when the file is made.
    mounted_device: Option<PathBuf>,
    file: Option<(std::fs::File, PathBuf)>,
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
    ) -> std::io::Result<(std::fs::File, PathBuf)> {
        use std::os::unix::fs::MetadataExt;
        let gone = || std::io::Error::from_raw_os_error(libc::ENODEV);
        if let Some(dev) = mounted_device {
            if !crate::common::is_mount_point(dev) {
                return Err(gone());
            }
        }
        std::fs::create_dir_all(tmp_dir)?;
        let path = tmp_dir.join(format!("tmp{}", unique_hex()));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        if let Some(devices) = mounted_device.and_then(Path::parent) {
            if f.metadata()?.dev() == std::fs::metadata(devices)?.dev() {
                let _ = std::fs::remove_file(&path);
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
        if let Some((_, path)) = self.file.take() {
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
                f.write_all(&rest)?;
                write_metadata(&f, &tmp_path, &meta)?;
                f.sync_all()?;
                let dir = target.parent().expect("data file has a hash dir");
                let created = create_dirs_counted(dir)?;
                std::fs::rename(&tmp_path, &target)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
