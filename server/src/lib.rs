//! Ringsmith's Swift-compatible servers as a library, so that tests and the proxy's
//! single-process mode can build routers in-process.
//!
//! * [`object`] — the object server (diskfiles, REPLICATE, container updates).
//! * [`container`], [`account`] — the SQLite-backed container and account servers.
//! * [`db`] — what the two share: schema helpers, `chexor`, listings.
//! * [`recon`] — `/recon/*`, answered by every storage server.
//! * [`common`] — timestamps, paths, constraints, policies, the runner.
//! * [`conf`] — Swift-style `.conf` files.

pub mod account;
pub mod common;
pub mod conf;
pub mod container;
pub mod db;
pub mod object;
pub mod recon;
