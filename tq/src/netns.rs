//! Separate hosts on one machine: each sled in its own network namespace,
//! the namespaces joined by veth pairs to a bridge in a namespace of its
//! own, IPv6 unique local addresses only (Oxide's bootstrap network is
//! IPv6-only), no route off the machine. The root namespace (Nexus) joins
//! the bridge over one more veth pair.
//!
//! Used by the `netns` test and by `tq chaos` ([`crate::chaos`]), which
//! also runs commands inside the namespaces (`nft`, `tc`). Needs root and
//! iproute2 (`ip`). Everything made is removed when [`Hosts`] is dropped,
//! and a failure part way through set-up leaves nothing behind.

use std::net::{IpAddr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};

/// Racks made by this process so far: each gets its own names and /64.
static MADE: AtomicU16 = AtomicU16::new(0);

/// A tag no other rack of this machine has now: this process's id and
/// its count of racks, at most 5 digits (interface names are short).
fn unique_tag() -> u16 {
    let made = MADE.fetch_add(1, Ordering::Relaxed) % 10;
    let pid = u16::try_from(std::process::id() % 6_000).unwrap_or(0);
    pid * 10 + made
}

/// A command that failed (or could not run): its command line and stderr.
#[derive(Debug, thiserror::Error)]
#[error("{command}: {why}")]
pub struct CommandError {
    /// The command line.
    pub command: String,
    /// Its stderr, or why it could not run.
    pub why: String,
}

/// Runs `program args...`; `Err` with its stderr if it fails.
pub fn run(program: &str, args: &[&str]) -> Result<(), CommandError> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| CommandError {
            command: command.clone(),
            why: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(CommandError {
            command,
            why: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Runs `ip args...`.
pub fn ip(args: &[&str]) -> Result<(), CommandError> {
    run("ip", args)
}

/// The namespaces and links made; removed on drop.
pub struct Hosts {
    /// Each sled's namespace.
    sleds: Vec<String>,
    /// The bridge's namespace.
    bridge: String,
    /// Each sled's address.
    addresses: Vec<IpAddr>,
    /// The root namespace's address on the bridge (Nexus's).
    root: IpAddr,
}

impl Hosts {
    /// `count` sled namespaces on one bridge, and the root namespace on it
    /// too. Unique names and a unique /64 per rack.
    pub fn create(count: usize) -> Result<Self, CommandError> {
        let run = unique_tag();
        let tag = format!("tq{run}");
        let prefix = [0xfd74, 0x7100, run, 0, 0, 0, 0];
        let address = |host: u16| {
            let [a, b, c, d, e, f, g] = prefix;
            Ipv6Addr::new(a, b, c, d, e, f, g, host)
        };
        let mut hosts = Self {
            sleds: Vec::new(),
            bridge: format!("{tag}-br"),
            addresses: Vec::new(),
            root: IpAddr::V6(address(0xffff)),
        };
        // Each step is recorded before the next, so a failure part way
        // leaves nothing behind (Drop removes what exists).
        ip(&["netns", "add", &hosts.bridge])?;
        ip(&["-n", &hosts.bridge, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hosts.bridge, "link", "set", "br0", "up"])?;
        for i in 0..count {
            let ns = format!("{tag}-s{i}");
            ip(&["netns", "add", &ns])?;
            hosts.sleds.push(ns.clone());
            let (inside, port) = (Self::interface(i), format!("p{i}"));
            ip(&[
                "link",
                "add",
                &inside,
                "netns",
                &ns,
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &hosts.bridge,
            ])?;
            let host = u16::try_from(i + 1).map_err(|e| CommandError {
                command: "addressing".into(),
                why: e.to_string(),
            })?;
            let addr = address(host);
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            let cidr = format!("{addr}/64");
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", &inside, "nodad"])?;
            ip(&["-n", &ns, "link", "set", &inside, "up"])?;
            ip(&[
                "-n",
                &hosts.bridge,
                "link",
                "set",
                &port,
                "master",
                "br0",
                "up",
            ])?;
            hosts.addresses.push(IpAddr::V6(addr));
        }
        // The root namespace's leg (its end goes when the bridge's
        // namespace is deleted).
        let root = format!("{tag}r");
        ip(&[
            "link",
            "add",
            &root,
            "type",
            "veth",
            "peer",
            "name",
            "root",
            "netns",
            &hosts.bridge,
        ])?;
        let cidr = format!("{}/64", hosts.root);
        ip(&["addr", "add", &cidr, "dev", &root, "nodad"])?;
        ip(&["link", "set", &root, "up"])?;
        ip(&[
            "-n",
            &hosts.bridge,
            "link",
            "set",
            "root",
            "master",
            "br0",
            "up",
        ])?;
        Ok(hosts)
    }

    /// Each sled's address, in order.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }

    /// The root namespace's address on the bridge: where Nexus's calls
    /// come from.
    pub fn root_address(&self) -> IpAddr {
        self.root
    }

    /// Sled `i`'s namespace.
    pub fn namespace(&self, i: usize) -> Option<&str> {
        self.sleds.get(i).map(String::as_str)
    }

    /// Sled `i`'s network interface, inside its namespace.
    pub fn interface(i: usize) -> String {
        format!("v{i}")
    }

    /// Runs `program args...` inside sled `i`'s namespace.
    pub fn exec(&self, i: usize, program: &str, args: &[&str]) -> Result<(), CommandError> {
        let ns = self.namespace(i).ok_or_else(|| CommandError {
            command: program.into(),
            why: format!("no sled {i}"),
        })?;
        let mut all = vec!["netns", "exec", ns, program];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// The command prefix that runs a program in sled `i`'s namespace.
    pub fn wrappers(&self) -> Vec<Vec<String>> {
        self.sleds
            .iter()
            .map(|ns| vec!["ip".into(), "netns".into(), "exec".into(), ns.clone()])
            .collect()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in self.sleds.iter().chain([&self.bridge]) {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// Why namespaces cannot be made here, if they cannot.
pub fn cannot_make_namespaces() -> Option<CommandError> {
    let probe = format!("tq{}-probe", unique_tag());
    match ip(&["netns", "add", &probe]) {
        Ok(()) => {
            let _ = ip(&["netns", "del", &probe]);
            None
        }
        Err(e) => Some(e),
    }
}
