//! `tq status`: what an operator sees of the trust quorum (as Oxide's omdb
//! shows it): one sled in detail, or the whole rack a row per sled, and
//! with Nexus's state file, who acked and committed each epoch. As tables,
//! or `--json`.
//!
//! ```text
//! tq status --sled 127.0.0.1:7150 --platform-id 913-0000019:BRM42220016 --rack-ca rack-ca.pem
//!                                            # one sled: configurations, peers (with their measurements), disks, counters, alarms
//! tq status --rack rack.toml [--state nexus.json] [--json]
//! ```
//!
//! Each sled is reached over HTTPS and must present a certificate of the
//! rack CA naming the platform id it is expected to have (`tq::https`):
//! given with `--sled`, listed in the rack file with `--rack`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use tq::api::types::{Disk, DiskStatus, Ledger, Measurement, SledStatus, Storage};
use tq::error::Chain;
use tq::https::{RackCa, RackCaError};
use tq::nexus::StateFileError;
use tq::nexus::http::{HttpSled, Traffic};
use tq::nexus::rack_file::{RackFile, RackFileError, parse_platform_id};
use tq_core::api::NodeStatus;
use tq_core::ids::PlatformId;
use tq_nexus::{Nexus, Timing};
use tq_std::net::measurements::SHA3_256_OID;

use super::report::Report;
use super::{RuntimeError, runtime};

/// `tq status`'s arguments.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["sled", "rack"])))]
pub struct StatusArgs {
    /// One sled, by its API address.
    #[arg(long, value_name = "ADDR", requires_all = ["platform_id", "rack_ca"])]
    pub sled: Option<SocketAddr>,
    /// With --sled: the platform id its certificate must name.
    #[arg(long, value_name = "PART:SERIAL", value_parser = parse_platform_id, requires = "sled")]
    pub platform_id: Option<PlatformId>,
    /// With --sled: the rack CA's PEM file (with --rack: the rack file's).
    #[arg(long, value_name = "FILE", requires = "sled")]
    pub rack_ca: Option<PathBuf>,
    /// Every sled of a rack file.
    #[arg(long, value_name = "FILE")]
    pub rack: Option<PathBuf>,
    /// Nexus's state file: adds what Nexus decided (members, who acked and
    /// confirmed each epoch).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for each sled, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub timeout: u64,
}

/// Why `tq status` could not say (a sled that does not answer is not
/// one: it is shown, and the exit code is 1).
#[derive(Debug, thiserror::Error)]
enum StatusCliError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    RackFile(#[from] RackFileError),
    #[error(transparent)]
    RackCa(#[from] RackCaError),
    #[error(transparent)]
    StateFile(#[from] StateFileError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("asking a sled failed")]
    Ask(#[source] tokio::task::JoinError),
    /// clap requires one of them; here for completeness.
    #[error("give --sled ADDR --platform-id PART:SERIAL --rack-ca FILE, or --rack FILE")]
    NothingToAsk,
}

/// Prints the status; exit code 1 if a sled did not answer, raised an
/// alarm, or a file could not be read (then with one line on stderr,
/// [`Report`]).
pub fn run(args: StatusArgs) -> ExitCode {
    super::logging::init_with_default("warn");
    let outcome = runtime()
        .map_err(StatusCliError::from)
        .and_then(|runtime| runtime.block_on(execute(args)));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => Report::new("status", e).exit(),
    }
}

/// One sled as reported.
#[derive(Serialize)]
struct SledView {
    id: Option<PlatformId>,
    api: Option<SocketAddr>,
    /// Asked directly: the node, the ledger and the connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<SledStatus>,
    /// No API address: the node's status through this member's proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<PlatformId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxied: Option<NodeStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl SledView {
    fn unreached(id: Option<PlatformId>, api: Option<SocketAddr>, error: String) -> Self {
        Self {
            id,
            api,
            status: None,
            via: None,
            proxied: None,
            messages_sent: None,
            bytes_sent: None,
            error: Some(error),
        }
    }

    /// The node's status, however it came.
    fn node(&self) -> Option<&NodeStatus> {
        self.status
            .as_ref()
            .map(|s| &s.node)
            .or(self.proxied.as_ref())
    }

    fn healthy(&self) -> bool {
        self.node().is_some_and(|n| n.alarms.is_empty())
    }
}

async fn ask(
    id: PlatformId,
    api: Option<SocketAddr>,
    rack_ca: RackCa,
    timeout: Duration,
) -> SledView {
    let Some(addr) = api else {
        return SledView::unreached(Some(id), api, "no API address in the rack file".into());
    };
    let sled = match HttpSled::new(addr, id.clone(), &rack_ca, timeout) {
        Ok(sled) => sled,
        Err(e) => return SledView::unreached(Some(id), api, Chain(&e).to_string()),
    };
    let id = Some(id);
    let (status, traffic) = tokio::join!(sled.sled_status(), sled.traffic());
    let traffic: Option<Traffic> = traffic.ok();
    match status {
        Ok(status) => SledView {
            id: Some(status.node.id.clone()),
            messages_sent: traffic.map(|t| t.messages),
            bytes_sent: traffic.map(|t| t.bytes),
            status: Some(status),
            ..SledView::unreached(None, api, String::new())
        }
        .reached(),
        Err(e) => SledView::unreached(id, api, e.to_string()),
    }
}

impl SledView {
    fn reached(mut self) -> Self {
        self.error = None;
        self
    }
}

/// Asks each sled with no API address through a member connected to it.
async fn ask_through_proxies(views: &mut [SledView], rack_ca: &RackCa, timeout: Duration) {
    let vias: Vec<(PlatformId, SocketAddr, Vec<PlatformId>)> = views
        .iter()
        .filter_map(|v| {
            let status = v.status.as_ref()?;
            let connected = status
                .peers
                .iter()
                .filter(|p| p.connected)
                .map(|p| p.id.clone())
                .collect();
            Some((status.node.id.clone(), v.api?, connected))
        })
        .collect();
    for view in views.iter_mut().filter(|v| v.api.is_none()) {
        let Some(id) = view.id.clone() else { continue };
        let Some((via, addr, _)) = vias.iter().find(|(_, _, peers)| peers.contains(&id)) else {
            continue;
        };
        let Ok(sled) = HttpSled::new(*addr, via.clone(), rack_ca, timeout) else {
            continue;
        };
        match tq_driver::SledApi::proxy_status(&sled, id, timeout).await {
            Ok(node) => {
                view.via = Some(via.clone());
                view.proxied = Some(node);
                view.error = None;
            }
            Err(e) => view.error = Some(format!("through {via}: {e}")),
        }
    }
}

async fn execute(args: StatusArgs) -> Result<bool, StatusCliError> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let views = match (&args.sled, &args.platform_id, &args.rack_ca, &args.rack) {
        (Some(addr), Some(id), Some(rack_ca), _) => {
            let rack_ca = RackCa::load(rack_ca)?;
            vec![ask(id.clone(), Some(*addr), rack_ca, timeout).await]
        }
        (None, _, _, Some(path)) => {
            let rack = RackFile::load(path)?;
            let rack_ca = RackCa::load(&rack.rack_ca)?;
            let mut asks = tokio::task::JoinSet::new();
            for (i, sled) in rack.sleds.iter().enumerate() {
                let (id, api, rack_ca) = (sled.id.clone(), sled.api, rack_ca.clone());
                asks.spawn(async move { (i, ask(id, api, rack_ca, timeout).await) });
            }
            let mut views = Vec::new();
            while let Some(joined) = asks.join_next().await {
                views.push(joined.map_err(StatusCliError::Ask)?);
            }
            views.sort_by_key(|(i, _)| *i);
            let mut views: Vec<SledView> = views.into_iter().map(|(_, v)| v).collect();
            ask_through_proxies(&mut views, &rack_ca, timeout).await;
            views
        }
        _ => return Err(StatusCliError::NothingToAsk),
    };
    let nexus = match &args.state {
        Some(path) => Some(tq::nexus::read_state(path, Timing::default())?),
        None => None,
    };
    let healthy = views.iter().all(SledView::healthy);
    if args.json {
        #[derive(Serialize)]
        struct Out<'a> {
            sleds: &'a [SledView],
            #[serde(skip_serializing_if = "Option::is_none")]
            nexus: Option<&'a tq_nexus::State>,
        }
        let out = Out {
            sleds: &views,
            nexus: nexus.as_ref().map(Nexus::state),
        };
        let text = serde_json::to_string_pretty(&out)?;
        println!("{text}");
        return Ok(healthy);
    }
    match (args.sled.is_some(), views.first()) {
        (true, Some(view)) => println!("{}", sled_detail(view)),
        _ => println!("{}", rack_table(&views)),
    }
    if let Some(nexus) = &nexus {
        println!("{}", nexus_view(nexus));
    }
    Ok(healthy)
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(header.to_vec());
    table
}

fn epoch(e: Option<tq_core::ids::Epoch>) -> String {
    e.map_or_else(|| "-".into(), |e| e.to_string())
}

fn storage(status: &SledStatus) -> String {
    let storage = match status.storage {
        Storage::Stored => "stored".to_owned(),
        Storage::Failing { attempts } => format!("FAILING ({attempts} writes)"),
    };
    let ledger = match status.ledger {
        Ledger::Healthy => "2 copies".to_owned(),
        Ledger::Degraded { failed_copy } => format!("degraded (copy {failed_copy} behind)"),
        Ledger::Failing { attempts } => format!("failing ({attempts})"),
    };
    format!("{storage}, {ledger}")
}

/// One row per sled.
fn rack_table(views: &[SledView]) -> String {
    let mut t = table(&[
        "sled",
        "api",
        "committed",
        "epochs stored",
        "secret",
        "coordinating",
        "peers",
        "ledger",
        "disks",
        "msgs out",
        "alarms",
    ]);
    for view in views {
        let id = view
            .id
            .as_ref()
            .map_or_else(|| "?".into(), ToString::to_string);
        let api = match (&view.api, &view.via) {
            (Some(addr), _) => addr.to_string(),
            (None, Some(via)) => format!("via {}", via.serial_number()),
            (None, None) => "-".into(),
        };
        let Some(node) = view.node() else {
            t.add_row(vec![
                id,
                api,
                format!("unreachable: {}", view.error.as_deref().unwrap_or("")),
            ]);
            continue;
        };
        let epochs: Vec<String> = node
            .state
            .configs
            .iter()
            .map(|c| format!("{}{}", c.epoch, if c.committed { "" } else { "*" }))
            .collect();
        let peers = match &view.status {
            Some(s) => format!(
                "{}/{}",
                s.peers.iter().filter(|p| p.connected).count(),
                s.peers.len()
            ),
            None => node.connected.len().to_string(),
        };
        t.add_row(vec![
            id,
            api,
            epoch(node.state.latest_committed),
            if node.state.lrtq.is_some() && epochs.is_empty() {
                "LRTQ".into()
            } else {
                epochs.join(" ")
            },
            epoch(node.activity.secret_loaded),
            node.activity
                .coordinating
                .map_or_else(|| "-".into(), |c| format!("{} {:?}", c.epoch, c.phase)),
            peers,
            view.status.as_ref().map_or_else(|| "-".into(), storage),
            view.status
                .as_ref()
                .map_or_else(|| "-".into(), disks_summary),
            view.messages_sent
                .map_or_else(|| "-".into(), |m| m.to_string()),
            node.alarms.len().to_string(),
        ]);
    }
    format!("{t}\n(* prepared, not committed here)")
}

/// One sled in detail.
fn sled_detail(view: &SledView) -> String {
    let Some(s) = &view.status else {
        return format!(
            "{}: unreachable: {}",
            view.api.map_or_else(|| "?".into(), |a| a.to_string()),
            view.error.as_deref().unwrap_or("")
        );
    };
    let node = &s.node;
    let mut out = format!(
        "sled {} (API {})\n  committed epoch {}, secret loaded {}, coordinating {}, computing share {}\n  state {}, {}\n  sent {} messages, {} bytes\n",
        node.id,
        view.api.map_or_else(|| "-".into(), |a| a.to_string()),
        epoch(node.state.latest_committed),
        epoch(node.activity.secret_loaded),
        node.activity
            .coordinating
            .map_or_else(|| "-".into(), |c| format!("{} ({:?})", c.epoch, c.phase)),
        epoch(node.activity.computing_share),
        if node.state_stored {
            "stored"
        } else {
            "NOT STORED"
        },
        storage(s),
        view.messages_sent
            .map_or_else(|| "-".into(), |m| m.to_string()),
        view.bytes_sent
            .map_or_else(|| "-".into(), |m| m.to_string()),
    );
    if let Some(lrtq) = &node.state.lrtq {
        out.push_str(&format!(
            "  LRTQ data of rack {}, threshold {}\n",
            lrtq.rack_id, lrtq.threshold
        ));
    }
    if let Some(expunged) = &node.state.expunged {
        out.push_str(&format!("  EXPUNGED: {expunged:?}\n"));
    }
    let mut configs = table(&[
        "epoch",
        "coordinator",
        "members",
        "K",
        "share held",
        "committed",
    ]);
    for c in &node.state.configs {
        configs.add_row(vec![
            c.epoch.to_string(),
            c.coordinator.to_string(),
            c.members.to_string(),
            c.threshold.to_string(),
            yes(c.share_held),
            yes(c.committed),
        ]);
    }
    let mut peers = table(&[
        "peer",
        "address",
        "connected",
        "connections",
        "measurements",
    ]);
    for p in &s.peers {
        peers.add_row(vec![
            p.id.to_string(),
            p.address.to_string(),
            yes(p.connected),
            p.connects.to_string(),
            measurements(&p.measurements),
        ]);
    }
    let mut disks = table(&[
        "disk",
        "serial",
        "backend",
        "state",
        "wrapped at",
        "re-wraps",
    ]);
    for d in &s.disks {
        disks.add_row(vec![
            d.name.clone(),
            d.serial.clone(),
            d.backend.clone(),
            disk_state(d),
            epoch(d.wrapped_epoch),
            d.rewraps.to_string(),
        ]);
    }
    let disks = if s.disks.is_empty() {
        "disks: none configured\n".to_owned()
    } else {
        format!("{disks}\n")
    };
    let mut counters = table(&["counter", "count"]);
    for (counter, count) in node.counters.iter() {
        if count > 0 {
            counters.add_row(vec![counter.name().to_owned(), count.to_string()]);
        }
    }
    let alarms = if node.alarms.is_empty() {
        "alarms: none".to_owned()
    } else {
        let list: Vec<String> = node.alarms.iter().map(|a| format!("  {a:?}")).collect();
        format!("ALARMS:\n{}", list.join("\n"))
    };
    format!("{out}{configs}\n{peers}\n{disks}{counters}\n{alarms}")
}

/// `unlocked/configured`, or `-` without disks; a disk that failed makes
/// it `FAILED`.
fn disks_summary(status: &SledStatus) -> String {
    if status.disks.is_empty() {
        return "-".into();
    }
    let unlocked = status
        .disks
        .iter()
        .filter(|d| d.state == DiskStatus::Unlocked)
        .count();
    let failed = status
        .disks
        .iter()
        .any(|d| matches!(d.state, DiskStatus::Failed { .. }));
    format!(
        "{unlocked}/{} unlocked{}",
        status.disks.len(),
        if failed { ", FAILED" } else { "" }
    )
}

/// A disk's state and why, in a cell.
fn disk_state(disk: &Disk) -> String {
    match &disk.state {
        DiskStatus::Locked { reason } => format!("locked: {reason}"),
        DiskStatus::Unlocking {
            attempts,
            last_error,
        } => match last_error {
            Some(error) => format!("unlocking ({attempts} tries; last: {error})"),
            None => format!("unlocking ({attempts} tries)"),
        },
        DiskStatus::Unlocked => "unlocked".into(),
        DiskStatus::Failed { reason } => format!("FAILED: {reason}"),
    }
}

/// A peer's measurements, one line each: the reference name (or
/// `NOT IN REFERENCE`) and the digest's first 16 hex digits.
fn measurements(list: &[Measurement]) -> String {
    if list.is_empty() {
        return "-".into();
    }
    let lines: Vec<String> = list
        .iter()
        .map(|m| {
            let short = m.digest.get(..16).unwrap_or(&m.digest);
            let name = m.reference.as_deref().unwrap_or("NOT IN REFERENCE");
            let algorithm = if m.algorithm == SHA3_256_OID {
                "sha3-256"
            } else {
                m.algorithm.as_str()
            };
            format!("{name} ({algorithm} {short}…)")
        })
        .collect();
    lines.join("\n")
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// What Nexus decided: its members, every remembered commit with who
/// acked it and who confirmed it, and the pending change.
pub fn nexus_view(nexus: &Nexus) -> String {
    let names = |sleds: tq_nexus::Sleds<'_>| -> String {
        let list: Vec<String> = sleds
            .iter()
            .map(|id| id.serial_number().to_owned())
            .collect();
        if list.is_empty() {
            "-".into()
        } else {
            list.join(" ")
        }
    };
    let mut out = format!(
        "Nexus: rack {}, {}, {} members, highest epoch started {}\n",
        nexus.rack_id(),
        if nexus.is_on_lrtq() {
            "on LRTQ"
        } else {
            "upgraded"
        },
        nexus.members().len(),
        nexus.highest_started(),
    );
    let removed = nexus.removed();
    if !removed.is_empty() {
        out.push_str(&format!("removed (never added back): {}\n", names(removed)));
    }
    let mut history = table(&[
        "epoch",
        "members",
        "acked (committed on)",
        "confirmed",
        "not yet",
    ]);
    for c in nexus.history() {
        history.add_row(vec![
            c.epoch().to_string(),
            c.members().len().to_string(),
            names(c.acked()),
            c.confirmed().len().to_string(),
            names(c.unconfirmed()),
        ]);
    }
    out.push_str(&history.to_string());
    match nexus.pending() {
        Some(p) => out.push_str(&format!(
            "\npending: epoch {} ({}), {} members, K = {}, coordinator {}, needs {} acks",
            p.epoch(),
            if p.is_upgrade() {
                "LRTQ upgrade"
            } else {
                "reconfiguration"
            },
            p.members().len(),
            p.threshold(),
            p.coordinator()
                .map_or_else(|| "?".into(), ToString::to_string),
            p.acks_needed(),
        )),
        None => out.push_str("\nnothing pending"),
    }
    out
}
