//! The processes `ringsmith-server` runs, by Swift's names: the four servers, then the
//! consistency daemons. `ringsmith init`, the systemd units and the Debian package all
//! follow this list, so a new daemon is added here once.

/// Every server and daemon, servers first.
pub const SERVERS_AND_DAEMONS: &[&str] = &[
    "proxy-server",
    "account-server",
    "container-server",
    "object-server",
    "object-replicator",
    "object-reconstructor",
    "object-auditor",
    "object-updater",
    "object-expirer",
    "container-replicator",
    "container-updater",
    "container-auditor",
    "account-replicator",
    "account-auditor",
];

/// The consistency daemons (see [`crate::daemons`]).
pub const DAEMONS: &[&str] = SERVERS_AND_DAEMONS.split_at(4).1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemons_are_the_list_after_the_servers() {
        assert_eq!(DAEMONS.len(), 10);
        assert!(DAEMONS.iter().all(|d| !d.ends_with("-server")));
        assert!(SERVERS_AND_DAEMONS[..4]
            .iter()
            .all(|s| s.ends_with("-server")));
    }
}
