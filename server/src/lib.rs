//! Ringsmith's Swift-compatible servers as a library, so that tests and the proxy's
//! single-process mode can build routers in-process.
//!
//! * [`object`] — the object server (diskfiles, REPLICATE, container updates).
//! * [`container`], [`account`] — the SQLite-backed container and account servers.
//! * [`daemons`] — replicators, auditors, updaters and the expirer.
//! * [`db`] — what the two share: schema helpers, `chexor`, listings.
//! * [`kinds`] — the names of the servers and daemons this crate runs.
//! * [`proxy`] — the proxy server: tempauth, routing, quorum, the in-process object path.
//! * [`recon`] — `/recon/*`, answered by every storage server.
//! * [`common`] — request paths, device checks, response helpers and the runner that the
//!   storage servers share (Swift's own concepts live in [`ringsmith::swift`]).

// Handlers return a ready `Response` as their error so validation can bail out early;
// boxing every one of them would only add noise on the error path.
#![allow(clippy::result_large_err)]

pub mod account;
pub mod common;
pub mod container;
pub mod daemons;
pub mod db;
pub mod kinds;
pub mod object;
pub mod proxy;
pub mod recon;
