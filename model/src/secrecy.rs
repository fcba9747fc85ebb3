//! PROTOCOL.md section 8, invariant 8, as far as a state shows it: no
//! secret or share appears in the `Debug` output of anything in the
//! state: the cluster, the network, Nexus, each sled, each node and each
//! context (the harness builds the core without logging, so `Debug` is
//! all there is to look at).
//!
//! The secret material is every share on any disk (the sled's own share of
//! each stored configuration, its LRTQ share) and the LRTQ rack secret,
//! searched for as `Debug` renders a byte array (`12, 34, ...`) and as hex
//! in either case. The other half of invariant 8 (a node other than a
//! coordinator holds no secret it did not load) is kept by the core's
//! types: the only place a node keeps a rack secret is its loader's cache,
//! filled only by `load_rack_secret`.

use std::fmt::Write;

use tq_core::crypto::RackSecret;

use crate::Cluster;

/// Renderings of one secret's bytes.
fn renderings(bytes: &[u8], out: &mut Vec<String>) {
    let list = bytes
        .iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut hex = String::new();
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    out.push(list);
    out.push(hex.to_uppercase());
    out.push(hex);
}

/// The secret material in `cluster` (and the LRTQ secret, if any).
fn material(cluster: &Cluster, lrtq_secret: Option<&RackSecret>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(secret) = lrtq_secret {
        renderings(secret.expose_secret(), &mut out);
    }
    for index in 0..cluster.sled_count() {
        let Some(Ok(state)) = cluster.sled(index).map(|s| s.read_disk()) else {
            continue;
        };
        let fields = state.fields();
        if let Some(lrtq) = &fields.lrtq {
            renderings(lrtq.share.expose_bytes(), &mut out);
        }
        for stored in &fields.configs {
            if let Some(share) = &stored.share {
                renderings(share.expose_y(), &mut out);
            }
        }
    }
    out
}

/// Where a secret showed up: the rendering it was found in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leak {
    /// Which `Debug` output (e.g. `"node of sled 1"`).
    pub place: String,
}

/// Checks that no secret material of `cluster` appears in the `Debug`
/// output of its parts.
pub fn check(cluster: &Cluster, lrtq_secret: Option<&RackSecret>) -> Result<(), Leak> {
    let material = material(cluster, lrtq_secret);
    let mut outputs = vec![
        ("cluster".to_string(), format!("{cluster:?}")),
        ("network".to_string(), format!("{:?}", cluster.network())),
        ("nexus".to_string(), format!("{:?}", cluster.nexus())),
    ];
    for index in 0..cluster.sled_count() {
        let Some(sled) = cluster.sled(index) else {
            continue;
        };
        outputs.push((format!("sled {index}"), format!("{sled:?}")));
        if let Some(running) = sled.running() {
            outputs.push((
                format!("node of sled {index}"),
                format!("{:?}", running.node),
            ));
            outputs.push((
                format!("context of sled {index}"),
                format!("{:?}", running.ctx),
            ));
        }
    }
    // One search per secret over all outputs at once; the place is looked
    // up only if something is found.
    let all = outputs
        .iter()
        .map(|(_, text)| text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let Some(secret) = material.iter().find(|secret| all.contains(secret.as_str())) else {
        return Ok(());
    };
    let place = outputs
        .iter()
        .find(|(_, text)| text.contains(secret.as_str()))
        .map_or_else(|| "across outputs".to_string(), |(place, _)| place.clone());
    Err(Leak { place })
}
