//! Ringsmith's core library: what the CLI, the servers and the dashboard share.
//!
//! * [`device`] — a storage device as Swift describes it, and its failure-domain tiers.
//! * [`ring`] — the ring a server loads (`ring.gz`, formats v1 and v2) and the lookups on it.
//! * [`hash`] — Swift's path hashing with the cluster's prefix and suffix from `swift.conf`.
//! * [`builder`] — the ring builder: `.builder` files, device operations and the rebalancer.
//! * [`pickle`] — the small subset of Python's pickle that `.builder` files use.
//! * [`pyjson`] — JSON emitted byte-for-byte like Python's `json.dumps(sort_keys=True)`.
//! * [`flock`] — Swift's lock files (`.lock`), shared with Swift's own tools.
//! * [`atomic`] — crash-safe file replacement (temp file, fsync, rename).
//! * [`swift`] — Swift's protocol layer: `swift.conf` (hash, policies, constraints), the
//!   paste.deploy config reader, timestamps, quoting.
//! * [`recon`] — the recon endpoints' data types and the health client built on them.

pub mod atomic;
pub mod builder;
pub mod device;
pub mod flock;
pub mod hash;
pub mod pickle;
pub mod pyjson;
pub mod recon;
pub mod ring;
pub mod swift;
