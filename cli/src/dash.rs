//! `ringsmith dash`: parses the flags, then hands the terminal to the `ringsmith-tui` crate.
//! The planner's confirmed writes come back here so they take the same path as
//! `ringsmith ring ... rebalance`: the builder lock, ring and builder backups in `backups/`,
//! then the ring and the builder, each written atomically.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ringsmith_tui::app::WriteRequest;
use ringsmith_tui::backend::PollerConfig;

use crate::ring::{lock, now_secs, ring_io};

#[derive(clap::Args)]
pub struct Args {
    /// Where the rings (`*.ring.gz`) and swift.conf live.
    #[arg(long, default_value = "/etc/swift")]
    swift_dir: PathBuf,
    /// Where the builders (`*.builder`) live (default: the swift dir).
    #[arg(long)]
    builder_dir: Option<PathBuf>,
    /// Seconds between polls of recon and the ring files.
    #[arg(long, default_value_t = 5.0)]
    interval: f64,
    /// Seconds each recon request may take.
    #[arg(long, default_value_t = 2.0)]
    timeout: f64,
    /// Show everything but never change a builder or ring.
    #[arg(long)]
    readonly: bool,
    /// Rings and builders from files only: no network request at all (planning on a
    /// laptop away from the cluster).
    #[arg(long)]
    offline: bool,
}

fn seconds(name: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 && v < 86_400.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!(
            "--{name} must be a number of seconds above 0, got {v}"
        ))
    }
}

pub fn run(args: Args) -> ExitCode {
    let config = match (
        seconds("interval", args.interval),
        seconds("timeout", args.timeout),
    ) {
        (Ok(interval), Ok(timeout)) => PollerConfig {
            builder_dir: args.builder_dir.unwrap_or_else(|| args.swift_dir.clone()),
            swift_dir: args.swift_dir,
            interval,
            timeout,
            offline: args.offline,
        },
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("ringsmith dash: {e}");
            return ExitCode::from(2);
        }
    };
    for dir in [&config.swift_dir, &config.builder_dir] {
        if !dir.is_dir() {
            eprintln!("ringsmith dash: {} is not a directory", dir.display());
            return ExitCode::from(2);
        }
    }
    match ringsmith_tui::run(config, args.readonly, Box::new(write_plan)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringsmith dash: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes a confirmed plan: ring first (a ring that cannot be written stops before the
/// builder changes), backups of both before the live files.
pub fn write_plan(req: &WriteRequest) -> Result<String, String> {
    let _lock = lock::lock_parent_directory(&req.builder_path, lock::default_timeout()).map_err(
        |e| match e {
            lock::LockError::TimedOut => format!(
                "{} is locked by another ring command; try again",
                req.builder_path.display()
            ),
            lock::LockError::Io(p, e) => format!("cannot lock {}: {e}", p.display()),
        },
    )?;
    let mut builder = req.builder.clone();
    builder.ensure_id();
    let ring = builder.get_ring();
    let format = ring_io::DEFAULT_FORMAT_VERSION;
    let ts = now_secs();
    let ring_backup = ringsmith::builder::file::backup_path(&req.ring_path, ts);
    if let Some(dir) = ring_backup.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("Unable to create {}: {e}", dir.display()))?;
    }
    ring_io::save_ring(&ring, &ring_backup, format)?;
    let builder_backup = ringsmith::builder::file::backup_path(&req.builder_path, ts);
    builder
        .save(&builder_backup)
        .map_err(|e| format!("Unable to write backup {}: {e}", builder_backup.display()))?;
    ring_io::save_ring(&ring, &req.ring_path, format)?;
    builder.save(&req.builder_path).map_err(|e| {
        format!(
            "Unable to write builder file {}: {e}",
            req.builder_path.display()
        )
    })?;
    Ok(format!(
        "Wrote {} and {} (backups in {})",
        req.builder_path.display(),
        req.ring_path.display(),
        builder_backup
            .parent()
            .map_or(String::new(), |p| p.display().to_string())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringsmith::builder::{NewDevice, RebalanceOptions, RingBuilder};

    fn builder() -> RingBuilder {
        let mut b = RingBuilder::new(6, 3.0, 0).unwrap();
        for zone in 1..=4u32 {
            b.add_dev(NewDevice::new(
                1,
                zone,
                format!("127.0.0.{zone}"),
                6200,
                "sdb",
                100.0,
            ))
            .unwrap();
        }
        b.rebalance(&RebalanceOptions {
            seed: Some(1),
            now_secs: Some(1),
        })
        .unwrap();
        b
    }

    #[test]
    fn a_confirmed_plan_writes_builder_and_ring_with_backups() {
        let dir = tempfile::tempdir().unwrap();
        let builder_path = dir.path().join("object.builder");
        let ring_path = dir.path().join("object.ring.gz");
        builder().save(&builder_path).unwrap();
        let mut after = RingBuilder::load(&builder_path).unwrap();
        after.set_dev_weight(0, 0.0).unwrap();
        after
            .rebalance(&RebalanceOptions {
                seed: Some(2),
                now_secs: Some(10_000),
            })
            .unwrap();
        let req = WriteRequest {
            ring_name: "object".into(),
            builder_path: builder_path.clone(),
            ring_path: ring_path.clone(),
            builder: after,
        };
        let msg = write_plan(&req).unwrap();
        assert!(msg.contains("backups"), "{msg}");
        let written = RingBuilder::load(&builder_path).unwrap();
        assert_eq!(written.dev(0).unwrap().parts, 0);
        let ring = ringsmith::ring::RingData::load(&ring_path).unwrap();
        assert!(ring.replica2part2dev.iter().flatten().all(|&d| d != 0));
        let backups: Vec<String> = std::fs::read_dir(dir.path().join("backups"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            backups.iter().any(|n| n.ends_with(".object.builder")),
            "{backups:?}"
        );
        assert!(
            backups.iter().any(|n| n.ends_with(".object.ring.gz")),
            "{backups:?}"
        );
    }

    #[test]
    fn a_write_into_a_missing_directory_fails_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("no/such/dir");
        std::fs::write(dir.path().join("no"), b"a file, not a dir").unwrap();
        let req = WriteRequest {
            ring_name: "object".into(),
            builder_path: gone.join("object.builder"),
            ring_path: gone.join("object.ring.gz"),
            builder: builder(),
        };
        let err = write_plan(&req).unwrap_err();
        assert!(err.contains("no/such/dir") || err.contains("lock"), "{err}");
    }
}
