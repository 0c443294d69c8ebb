//! Hosts of their own: `cluster up --netns` puts each storage node, and the proxy, in a
//! Linux network namespace of its own, so that a node can be cut off the network or hang
//! while the others keep serving, as separate machines would.
//!
//! ```text
//!   root namespace                 rs<tag>-n0 (node 0)        rs<tag>-px (proxy)
//!   bridge rs<tag>br ── veth ───── eth0 198.18.<s>.10 ...     eth0 198.18.<s>.2
//!   198.18.<s>.1/24   ── veth ───── rs<tag>-n1: eth0 198.18.<s>.11
//! ```
//!
//! The addresses come from 198.18.0.0/15, the range set aside for network benchmarking;
//! they exist only on links this module creates. No namespace gets a default route, so
//! nothing in them can reach anything but the other hosts of the cluster; the root
//! namespace reaches them through the bridge, which lets `swift`, `recon` and `dash` on the
//! host talk to the cluster. Every namespace, link and bridge is recorded in
//! `run/cluster.json` as soon as it exists and removed by `cluster down`, also after a
//! failed `up`. Needs root or CAP_NET_ADMIN, and `ip` from iproute2.

use std::process::Command;

use serde::{Deserialize, Serialize};

/// Node addresses are `.10` to `.249` of the `/24`.
pub const MAX_NODES: u32 = 240;

/// The namespaces and links of one cluster, as recorded in `run/cluster.json`.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Netns {
    /// The `/24` prefix, e.g. `198.18.37`.
    pub prefix: String,
    pub bridge: String,
    /// Namespace names: the proxy's first, then node 0, 1, ...
    pub namespaces: Vec<String>,
    /// The root-side veth of each namespace, in the same order.
    pub links: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2 is needed for --netns): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            if out.status.code() == Some(2) && !is_root() {
                " (--netns needs root or CAP_NET_ADMIN)"
            } else {
                ""
            }
        ))
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Netns {
    /// A fresh, unused tag and subnet for `nodes` storage namespaces plus the proxy's.
    pub fn plan(nodes: u32) -> Netns {
        let mut buf = [0u8; 2];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut buf);
        let tag = format!("{:02x}{:02x}", buf[0], buf[1]);
        // 198.18.0.0/15: the second octet is 18 or 19.
        let prefix = format!("198.{}.{}", 18 + (buf[0] & 1), buf[1]);
        let mut namespaces = vec![format!("rs{tag}-px")];
        namespaces.extend((0..nodes).map(|n| format!("rs{tag}-n{n}")));
        let links = (0..=nodes).map(|i| format!("rs{tag}v{i}")).collect();
        Netns {
            prefix,
            bridge: format!("rs{tag}br"),
            namespaces,
            links,
        }
    }

    pub fn proxy_ip(&self) -> String {
        format!("{}.2", self.prefix)
    }

    pub fn node_ip(&self, node: u32) -> String {
        format!("{}.{}", self.prefix, 10 + node)
    }

    pub fn proxy_namespace(&self) -> &str {
        &self.namespaces[0]
    }

    pub fn node_namespace(&self, node: u32) -> Option<&str> {
        self.namespaces.get(node as usize + 1).map(String::as_str)
    }

    /// Creates the bridge, the namespaces and their links. On error, what was made is
    /// left for [`Netns::teardown`] (the caller has recorded `self` already).
    pub fn create(&self) -> Result<(), String> {
        let gateway = format!("{}.1/24", self.prefix);
        ip(&["link", "add", &self.bridge, "type", "bridge"])?;
        ip(&["addr", "add", &gateway, "dev", &self.bridge])?;
        ip(&["link", "set", &self.bridge, "up"])?;
        for (i, (ns, link)) in self.namespaces.iter().zip(&self.links).enumerate() {
            let addr = if i == 0 {
                self.proxy_ip()
            } else {
                self.node_ip(i as u32 - 1)
            };
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&[
                "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ])?;
            ip(&["link", "set", link, "master", &self.bridge, "up"])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    /// Deletes every namespace (their veths go with them) and the bridge. Missing
    /// pieces are not an error: teardown must finish whatever state `up` left.
    pub fn teardown(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for ns in &self.namespaces {
            if std::path::Path::new("/run/netns").join(ns).exists() {
                if let Err(e) = ip(&["netns", "del", ns]) {
                    errors.push(e);
                }
            }
        }
        for link in self.links.iter().chain([&self.bridge]) {
            let exists = || std::path::Path::new("/sys/class/net").join(link).exists();
            // A veth whose peer's namespace was just deleted goes away by itself, a
            // moment later: losing that race is not an error.
            if exists() {
                if let Err(e) = ip(&["link", "del", link]) {
                    if exists() {
                        errors.push(e);
                    }
                }
            }
        }
        errors
    }

    pub fn bridge_exists(&self) -> bool {
        std::path::Path::new("/sys/class/net")
            .join(&self.bridge)
            .exists()
    }

    /// Cuts node `node` off the network (its link down), or puts it back.
    pub fn set_link(&self, node: u32, up: bool) -> Result<(), String> {
        let link = self
            .links
            .get(node as usize + 1)
            .ok_or_else(|| format!("no node {node} in this cluster"))?;
        ip(&["link", "set", link, if up { "up" } else { "down" }])
    }
}

/// Makes `cmd` run inside network namespace `ns` (as `ip netns exec` would, without an
/// extra process in between, so the pid recorded is the server's own).
pub fn enter(cmd: &mut Command, ns: &str) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let path = std::path::Path::new("/run/netns").join(ns);
    let file = std::fs::File::open(&path)
        .map_err(|e| format!("cannot open network namespace {}: {e}", path.display()))?;
    // SAFETY: setns is async-signal-safe; the closure only calls it on a descriptor that
    // `file` (moved into the closure) keeps open until the exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_interface_limits_and_addresses_stay_in_the_benchmark_range() {
        let n = Netns::plan(MAX_NODES);
        assert!(n.links.iter().chain([&n.bridge]).all(|l| l.len() <= 15));
        assert_eq!(n.namespaces.len(), MAX_NODES as usize + 1);
        assert!(n.prefix.starts_with("198.18.") || n.prefix.starts_with("198.19."));
        assert_eq!(n.node_ip(0), format!("{}.10", n.prefix));
        assert_eq!(n.node_ip(MAX_NODES - 1), format!("{}.249", n.prefix));
        assert_eq!(n.node_namespace(3), Some(n.namespaces[4].as_str()));
    }
}
