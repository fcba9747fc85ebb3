//! Attested peers between real sleds over loopback TLS: a peer whose
//! certificate's measurements are not all in the rack's reference
//! measurements (a rogue digest, none at all, a malformed extension) is
//! refused at the handshake on either side and counted by reason; a
//! stale reference file, once updated, admits it without a restart; and
//! the extension as the `openssl` CLI reads it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use tq_core::ids::{PlatformId, SLED_PART_NUMBER};
use tq_rack_setup::pki::{
    Firmware, Measured, rack_firmware, reference_measurements_toml, tcb_info_der,
};
use tq_std::net::identity::platform_id_uri;
use tq_std::net::measurements::{SHA3_256_OID, measurements_of_cert};
use tq_std::net::{Attestation, CloseReason, HandshakeRefusal, NetConfig, NetEvent, TlsIdentity};

/// A sled identity whose certificate says it runs what `measured` says.
fn measured_identity(ca: &Ca, id: &PlatformId, measured: Measured<'_>) -> TlsIdentity {
    let sled = ca
        .rack_ca()
        .measured_sled_cert(&[platform_id_uri(id)], None, measured)
        .unwrap();
    TlsIdentity {
        ca_certs: vec![ca.der()],
        cert_chain: vec![sled.der()],
        key: sled.key_der(),
    }
}

/// Reference measurements accepting `firmware`, in `dir`.
fn write_reference(dir: &Path, firmware: &[Firmware]) -> PathBuf {
    let path = dir.join("reference-measurements.toml");
    std::fs::write(&path, reference_measurements_toml(firmware)).unwrap();
    path
}

fn enforcing(reference: &Path) -> NetConfig {
    let mut config = fast_config();
    config.attestation = Attestation::Enforce(reference.to_owned());
    config
}

fn rogue_firmware() -> Vec<Firmware> {
    let mut firmware = rack_firmware();
    firmware[0] = Firmware::measure("sp 6.6.6", b"a service processor image no one approved");
    firmware
}

/// Sleds `a < b` with these identities, each enforcing `reference`, told
/// of each other (`a` dials `b`).
async fn pair(a: TlsIdentity, b: TlsIdentity, reference: &Path) -> (Node, Node) {
    let na = start(&a, enforcing(reference)).await;
    let nb = start(&b, enforcing(reference)).await;
    assert!(na.id < nb.id);
    let peers = peer_map(&[&na, &nb]);
    nb.net.set_peers(peers.clone());
    na.net.set_peers(peers);
    (na, nb)
}

fn ids() -> (PlatformId, PlatformId) {
    (
        pid(SLED_PART_NUMBER, "SN0001"),
        pid(SLED_PART_NUMBER, "SN0002"),
    )
}

/// Neither side connects for a while, and `refuser` counts `reason`
/// (the other side sees the refusal as the peer's).
async fn refused(refuser: &Node, other: &Node, reason: HandshakeRefusal) {
    let handshakes = refuser.net.stats().handshakes;
    eventually(reason.label(), || refuser.net.stats().refused(reason) >= 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(refuser.net.connected().is_empty());
    assert!(other.net.connected().is_empty());
    let stats = refuser.net.stats();
    assert_eq!(stats.handshakes, handshakes, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_running_the_reference_firmware_connect_and_show_it() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write_reference(dir.path(), &rack_firmware());
    let ca = Ca::new("rack");
    let (a, b) = ids();
    let (mut na, nb) = pair(ca.identity(&a), ca.identity(&b), &reference).await;
    wait_event(&mut na.events, |e| *e == NetEvent::Connected(b.clone())).await;
    eventually("b sees a", || nb.net.connected() == [a.clone()]).await;
    for (node, peer) in [(&na, &b), (&nb, &a)] {
        let measurements = node.net.measurements().remove(peer).unwrap();
        let names: Vec<_> = measurements
            .iter()
            .map(|m| m.reference.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["sp 1.0.0", "host 1.0.0"]);
        assert!(
            measurements
                .iter()
                .all(|m| m.fwid.algorithm == SHA3_256_OID)
        );
        assert_eq!(measurements[0].fwid.digest, rack_firmware()[0].sha3_256);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rogue_listener_is_refused_by_its_dialer() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write_reference(dir.path(), &rack_firmware());
    let ca = Ca::new("rack");
    let (a, b) = ids();
    let rogue = rogue_firmware();
    let (na, nb) = pair(
        ca.identity(&a),
        measured_identity(&ca, &b, Measured::Firmware(&rogue)),
        &reference,
    )
    .await;
    refused(&na, &nb, HandshakeRefusal::UnknownMeasurement).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rogue_dialer_is_refused_by_its_listener() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write_reference(dir.path(), &rack_firmware());
    let ca = Ca::new("rack");
    let (a, b) = ids();
    let rogue = rogue_firmware();
    let (na, nb) = pair(
        measured_identity(&ca, &a, Measured::Firmware(&rogue)),
        ca.identity(&b),
        &reference,
    )
    .await;
    refused(&nb, &na, HandshakeRefusal::UnknownMeasurement).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_measurements_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write_reference(dir.path(), &rack_firmware());
    let ca = Ca::new("rack");
    let (a, b) = ids();
    let (na, nb) = pair(
        measured_identity(&ca, &a, Measured::Nothing),
        ca.identity(&b),
        &reference,
    )
    .await;
    refused(&nb, &na, HandshakeRefusal::NoMeasurements).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_extension_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write_reference(dir.path(), &rack_firmware());
    let ca = Ca::new("rack");
    let (a, b) = ids();
    // The reference digests, but the DER cut short by one byte.
    let mut cut = tcb_info_der(&rack_firmware());
    cut.pop();
    for tcb_info in [cut, tcb_info_der(&[]), b"not DER".to_vec()] {
        let (na, nb) = pair(
            ca.identity(&a),
            measured_identity(&ca, &b, Measured::RawTcbInfo(&tcb_info)),
            &reference,
        )
        .await;
        refused(&na, &nb, HandshakeRefusal::MalformedMeasurements).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_reference_file_once_updated_admits_the_peer_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write_reference(dir.path(), &rack_firmware());
    let ca = Ca::new("rack");
    let (a, b) = ids();
    let mut updated = rack_firmware();
    updated.push(Firmware::measure(
        "sp 1.0.1",
        b"the next service processor image",
    ));
    let newer = [updated[2].clone(), updated[1].clone()];
    let (mut na, nb) = pair(
        ca.identity(&a),
        measured_identity(&ca, &b, Measured::Firmware(&newer)),
        &reference,
    )
    .await;
    refused(&na, &nb, HandshakeRefusal::UnknownMeasurement).await;

    // A half-written file: the last good contents stay (still refusing),
    // and the failed reloads are counted.
    std::fs::write(&reference, "[[measurement]]\nname = \"sp 1.0.1\"\n").unwrap();
    let before = na.net.stats().refused(HandshakeRefusal::UnknownMeasurement);
    eventually("refused again under the broken file", || {
        na.net.stats().refused(HandshakeRefusal::UnknownMeasurement) > before
    })
    .await;
    assert!(na.net.stats().reference_reload_failures >= 1);
    assert!(na.net.connected().is_empty());

    write_reference(dir.path(), &updated);
    wait_event(&mut na.events, |e| *e == NetEvent::Connected(b.clone())).await;
    let shown = na.net.measurements().remove(&b).unwrap();
    assert_eq!(shown[0].reference.as_deref(), Some("sp 1.0.1"));
    eventually("b sees a", || nb.net.connected() == [a.clone()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_enforcement_off_a_rogue_peer_is_admitted() {
    let ca = Ca::new("rack");
    let (a, b) = ids();
    let rogue = rogue_firmware();
    let mut na = start(&ca.identity(&a), fast_config()).await;
    let nb = start(
        &measured_identity(&ca, &b, Measured::Firmware(&rogue)),
        fast_config(),
    )
    .await;
    let peers = peer_map(&[&na, &nb]);
    nb.net.set_peers(peers.clone());
    na.net.set_peers(peers);
    wait_event(&mut na.events, |e| *e == NetEvent::Connected(b.clone())).await;
    let shown = na.net.measurements().remove(&b).unwrap();
    assert_eq!(shown[0].fwid.digest, rogue[0].sha3_256);
    assert_eq!(shown[0].reference, None);
}

#[tokio::test]
async fn an_unusable_reference_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let ca = Ca::new("rack");
    let (a, _) = ids();
    let started =
        tq_std::net::Net::start(enforcing(&missing), &ca.identity(&a), Default::default()).await;
    assert!(matches!(
        started.err(),
        Some(tq_std::net::StartError::Reference(_))
    ));
}

/// The extension as the `openssl` CLI reads it: the TcbInfo OID, and
/// inside its value `fwids` as context tag 6 holding one SHA3-256 FWID
/// per image with the very digests rack setup measured.
#[test]
fn openssl_reads_the_measurements() {
    if !tq_test_fixtures::tools::available("openssl", &["version"], "apt-get install openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("rack");
    let (pem, _) = ca.leaf_pem(&[platform_id_uri(&ids().0)]);
    let cert = dir.path().join("sled.pem");
    std::fs::write(&cert, &pem).unwrap();
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl").args(args).output().unwrap();
        assert!(output.status.success(), "openssl {args:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let cert = cert.to_str().unwrap();
    let text = openssl(&["x509", "-in", cert, "-noout", "-text"]);
    assert!(text.contains("2.23.133.5.4.1:"), "{text}");
    assert!(!text.contains("2.23.133.5.4.1: critical"), "{text}");

    // The extension's value: the OCTET STRING right after its OID.
    let whole = openssl(&["asn1parse", "-in", cert]);
    let lines: Vec<&str> = whole.lines().collect();
    let oid = lines
        .iter()
        .position(|l| l.contains(":2.23.133.5.4.1"))
        .unwrap();
    let value = lines[oid + 1..]
        .iter()
        .find(|l| l.contains("OCTET STRING"))
        .unwrap();
    let offset = value.split(':').next().unwrap().trim();
    let inner = openssl(&["asn1parse", "-in", cert, "-strparse", offset]);
    assert!(inner.contains("cont [ 6 ]"), "{inner}");
    let fwids: Vec<&str> = inner.lines().filter(|l| l.contains("sha3-256")).collect();
    assert_eq!(fwids.len(), rack_firmware().len(), "{inner}");
    for image in rack_firmware() {
        let digest: String = image.sha3_256.iter().map(|b| format!("{b:02X}")).collect();
        assert!(inner.contains(&format!("[HEX DUMP]:{digest}")), "{inner}");
    }
    // And our parser agrees.
    let der = ca.leaf(&[platform_id_uri(&ids().0)], None).0;
    assert_eq!(measurements_of_cert(&der).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_peer_whose_measurement_is_withdrawn_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write_reference(dir.path(), &rack_firmware());
    let ca = Ca::new("rack");
    let (a, b) = ids();
    let (mut na, nb) = pair(ca.identity(&a), ca.identity(&b), &reference).await;
    wait_event(&mut na.events, |e| *e == NetEvent::Connected(b.clone())).await;

    // The host image is withdrawn: both sides run it, so each drops the
    // other at its next check, and neither admits the other again.
    write_reference(dir.path(), &rack_firmware()[..1]);
    wait_event(&mut na.events, |e| *e == NetEvent::Disconnected(b.clone())).await;
    eventually("both count the close", || {
        [(&na, &b), (&nb, &a)]
            .iter()
            .any(|(node, peer)| node.net.stats().peer(peer).closes(CloseReason::Unattested) >= 1)
    })
    .await;
    refused(&na, &nb, HandshakeRefusal::UnknownMeasurement).await;
}
