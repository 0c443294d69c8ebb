//! Cluster health from the recon endpoints: what `swift-recon` does, as a library.
//!
//! Every Swift storage server (and every Ringsmith one) carries the recon middleware: a
//! handful of `GET /recon/<check>` endpoints answering small JSON documents about the node
//! (load, disks, replication passes, ring checksums...). A health client has three jobs,
//! and this module keeps them apart so the CLI and the dashboard can share each one:
//!
//! 1. **Which hosts.** [`hosts`] reads the rings in a swift dir (account, container and one
//!    object ring per storage policy from `swift.conf`) and turns their devices into the set
//!    of distinct `ip:port` servers, filtered by region, zone and policy — exactly the set
//!    `swift-recon` queries.
//! 2. **Asking them.** [`client`] (cargo feature `recon-client`, which pulls tokio and
//!    reqwest) sends one request per host, all at once under a concurrency cap, each bounded
//!    by its own timeout, so a thousand hosts answer in about one timeout. Every host yields
//!    a [`HostAnswer`]: the parsed JSON, or a precise reason it has none (refused, timed out,
//!    HTTP status, malformed JSON). One bad host never aborts a report.
//! 3. **What it means.** [`checks`] turns the answers of one check into figures computed the
//!    way `swift-recon` computes them (min/max/avg/total, "reported" and "no result" counts,
//!    oldest and newest completions, md5 agreement, clock skew), plus the list of
//!    [`Failure`]s that make the cluster unhealthy. This part is pure and needs no network.
//!
//! [`types`] holds the typed answer of every endpoint. Swift's shapes drift between
//! versions and cache states (a fresh node answers `null` everywhere, counters are ints or
//! floats, `mounted` is a bool or an error string), so the types are lenient: anything
//! missing or of the wrong kind becomes `None` rather than an error, and the checks report
//! such a host as "no result" the way `swift-recon` does.
//!
//! [`render`] prints a report exactly as `swift-recon` does. A client (the dashboard, the
//! CLI) puts the pieces together like this:
//!
//! ```ignore
//! use ringsmith::recon::{checks::CheckContext, client::Fetcher, hosts, CheckKind, HostFilter, ServerType};
//! let dir = std::path::Path::new("/etc/swift");
//! let hosts = hosts::discover_hosts(dir, ServerType::Object, None, &HostFilter::default())?;
//! let mut ctx = CheckContext::default();
//! ctx.load_md5s(dir, ServerType::Object);
//! let fetcher = Fetcher::new(std::time::Duration::from_secs(5), 1000)?;
//! let reports = fetcher
//!     .run_checks(&CheckKind::all_for(ServerType::Object), ServerType::Object, &hosts, &ctx)
//!     .await;
//! let healthy = reports.iter().all(|r| r.failures.is_empty());
//! ```

pub mod checks;
#[cfg(feature = "recon-client")]
pub mod client;
pub mod hosts;
pub mod render;
pub mod types;

pub use checks::{CheckKind, CheckReport, Failure, HostAnswer, HostError};
pub use hosts::{Host, HostFilter, ServerType};
