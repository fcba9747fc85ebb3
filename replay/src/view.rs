//! What the debugger shows of a cluster: sleds, messages in flight, Nexus,
//! and a whole snapshot to diff two steps by.
//!
//! Everything here goes through what an operator may see: a node's
//! [`tq_core::api::NodeStatus`] (no share, no secret, no key), a disk's
//! [`DiskSummary`], a message's kind and size, and a decoded message
//! through its `Debug`, which redacts shares. Never raw disk or message
//! bytes.

use std::fmt::Write as _;

use tq_core::wire;
use tq_harness::sled::DiskSummary;
use tq_harness::{Cluster, SledMask};

/// The sled indices in `mask`, as `{0, 2, 5}`.
pub fn mask(mask: SledMask) -> String {
    let indices: Vec<String> = (0..SledMask::BITS)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| i.to_string())
        .collect();
    format!("{{{}}}", indices.join(", "))
}

/// One line per sled: up or down, and what its disk says.
pub fn sleds<const N: usize>(cluster: &Cluster<N>) -> String {
    let mut out = String::new();
    for index in 0..cluster.sled_count() {
        let _ = writeln!(out, "{}", sled_line(cluster, index));
    }
    out
}

fn sled_line<const N: usize>(cluster: &Cluster<N>, index: usize) -> String {
    let Some(sled) = cluster.sled(index) else {
        return format!("sled {index}: none");
    };
    let disk = match sled.read_disk() {
        Ok(state) => disk_line(&DiskSummary::of(&state)),
        Err(e) => format!("unreadable disk ({e:?})"),
    };
    let activity = match sled.running() {
        Some(running) => {
            let node = &running.node;
            let alarms = running.ctx.alarms().len();
            format!(
                "up   coordinating {} computing {} loading {} alarms {alarms}",
                epoch(node.coordinating()),
                epoch(node.computing_share()),
                epoch(node.loading()),
            )
        }
        None => "down".to_owned(),
    };
    format!("sled {index} {}: {activity}; disk: {disk}", sled.id())
}

fn disk_line(disk: &DiskSummary) -> String {
    let shares: Vec<String> = disk.with_share.iter().map(|e| e.0.to_string()).collect();
    format!(
        "committed {} latest {} shares [{}] expunged {}",
        epoch(disk.latest_committed),
        epoch(disk.latest_epoch),
        shares.join(", "),
        epoch(disk.expunged),
    )
}

fn epoch(epoch: Option<tq_core::ids::Epoch>) -> String {
    epoch.map_or_else(|| "-".to_owned(), |e| e.0.to_string())
}

/// Everything about sled `index`: the harness's view (up, boots, disk
/// writes, what the disk holds) and, if it is up, its node's status
/// (state summary, activity, alarms, counters) as JSON, and what it
/// coordinates (as Nexus polls it).
pub fn sled<const N: usize>(cluster: &Cluster<N>, index: usize) -> Option<String> {
    let sled = cluster.sled(index)?;
    let mut out = format!(
        "sled {index} ({}): {}, booted {} times, {} disk writes\n",
        sled.id(),
        if sled.is_up() { "up" } else { "down" },
        sled.boots(),
        sled.disk_writes(),
    );
    match sled.read_disk() {
        Ok(state) => {
            let _ = writeln!(out, "disk: {}", disk_line(&DiskSummary::of(&state)));
        }
        Err(e) => {
            let _ = writeln!(out, "disk: unreadable ({e:?})");
        }
    }
    if let Some(running) = sled.running() {
        let status = running.node.status(&running.ctx);
        let json = serde_json::to_string_pretty(&status).unwrap_or_default();
        let _ = writeln!(out, "status: {json}");
        if let Some(line) = coordinating(running) {
            let _ = writeln!(out, "{line}");
        }
    }
    Some(out)
}

/// What `running` coordinates, as Nexus polls it, if anything.
fn coordinating(running: &tq_harness::sled::Running) -> Option<String> {
    let status = running.node.coordination(&running.ctx)?;
    let acked: Vec<String> = status.acked.iter().map(ToString::to_string).collect();
    Some(format!(
        "coordinating epoch {} ({:?}), acked by [{}]",
        status.epoch.0,
        status.phase,
        acked.join(", ")
    ))
}

/// The messages in flight, one a line: index, sender, receiver, kind,
/// size, and whether their link is down.
pub fn flight<const N: usize>(cluster: &Cluster<N>) -> String {
    let network = cluster.network();
    let mut out = format!("{} in flight\n", network.len());
    for (index, msg) in network.in_flight().enumerate() {
        let (from, to) = (usize::from(msg.from), usize::from(msg.to));
        let link = if cluster.is_connected(from, to) {
            ""
        } else {
            "  (not connected)"
        };
        let _ = writeln!(
            out,
            "#{index:<3} {from:>2} -> {to:<2} {:<16} {:>5} bytes{link}",
            msg.kind(),
            msg.bytes.len()
        );
    }
    out
}

/// Message `index` in flight, decoded (shares show redacted).
pub fn message<const N: usize>(cluster: &Cluster<N>, index: usize) -> Option<String> {
    let msg = cluster.network().get(index)?;
    let decoded = match wire::decode_peer_msg(msg.bytes) {
        Ok(decoded) => format!("{decoded:#?}"),
        Err(e) => format!("undecodable: {e:?}"),
    };
    Some(format!(
        "#{index} {} -> {}, {} bytes: {decoded}\n",
        msg.from,
        msg.to,
        msg.bytes.len()
    ))
}

/// Nexus: the members, what it is driving, what it committed.
pub fn nexus<const N: usize>(cluster: &Cluster<N>) -> String {
    let nexus = cluster.nexus();
    let mut out = format!(
        "clock: {:?}\nmembers: {}{}\n",
        nexus.now(),
        mask(nexus.members()),
        if nexus.on_lrtq() { " (on LRTQ)" } else { "" },
    );
    match nexus.pending() {
        Some(p) => {
            let _ = writeln!(
                out,
                "pending: epoch {} coordinator {} members {} threshold {} phase {:?}",
                p.epoch.0,
                p.coordinator
                    .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                mask(p.members),
                p.threshold.get(),
                p.phase,
            );
        }
        None => out.push_str("pending: none\n"),
    }
    for commit in nexus.history() {
        let _ = writeln!(
            out,
            "committed: epoch {} members {} acked {}",
            commit.epoch.0,
            mask(commit.members),
            mask(commit.acked),
        );
    }
    let _ = writeln!(
        out,
        "confirmed the latest commit: {}",
        mask(nexus.commit_confirmed())
    );
    let _ = writeln!(out, "stats: {:?}", nexus.stats());
    out
}

/// The whole state at one position, as the lines [`diff`] compares: each
/// line says what it is about (`nexus ...`, `sled 3 status.state.latest_committed = 4`,
/// `flight #0 ...`), so a changed line reads on its own.
pub fn snapshot<const N: usize>(cluster: &Cluster<N>) -> String {
    let mut out = String::new();
    for line in nexus(cluster).lines() {
        let _ = writeln!(out, "nexus {line}");
    }
    for index in 0..cluster.sled_count() {
        let Some(sled) = cluster.sled(index) else {
            continue;
        };
        let _ = writeln!(out, "{}", sled_line(cluster, index));
        let _ = writeln!(
            out,
            "sled {index} booted {} times, {} disk writes",
            sled.boots(),
            sled.disk_writes()
        );
        if let Some(running) = sled.running() {
            let status = serde_json::to_value(running.node.status(&running.ctx));
            flatten(
                &format!("sled {index} status"),
                &status.unwrap_or_default(),
                &mut out,
            );
            if let Some(line) = coordinating(running) {
                let _ = writeln!(out, "sled {index} {line}");
            }
        }
    }
    for line in flight(cluster).lines() {
        let _ = writeln!(out, "flight {line}");
    }
    out
}

/// One `path = value` line per leaf of `value`.
fn flatten(path: &str, value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            for (name, field) in fields {
                flatten(&format!("{path}.{name}"), field, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                flatten(&format!("{path}[{i}]"), item, out);
            }
        }
        leaf => {
            let _ = writeln!(out, "{path} = {leaf}");
        }
    }
}

/// The lines that differ between two snapshots, as a unified diff
/// without context (each line names what it is about).
pub fn diff(before: &str, after: &str, before_name: &str, after_name: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(0)
        .header(before_name, after_name)
        .to_string()
}
