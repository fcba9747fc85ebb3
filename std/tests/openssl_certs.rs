//! Certificates made by the real `openssl` CLI, not by us: our parser reads
//! their platform ids (with every awkward character), and two sleds using
//! them connect over mutual TLS. Skipped (`SKIPPED`) where the CLI is
//! missing, but not under CI, which installs it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use tq_std::net::identity::{platform_id_of_cert, platform_id_uri};
use tq_std::net::{NetEvent, TlsIdentity};

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl CLI runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A rack CA (EC P-256) in `dir/ca.{pem,key}`.
fn make_ca(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=openssl rack CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A sled certificate `dir/name.{pem,key}` for `uri`, with `key_args`
/// choosing the key type.
fn make_sled(dir: &Path, name: &str, uri: &str, key_args: &[&str]) {
    let ext = format!(
        "subjectAltName=URI:{uri}\nextendedKeyUsage=serverAuth,clientAuth\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=critical,CA:FALSE\n"
    );
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let pem = format!("{name}.pem");
    let ext = format!("{name}.ext");
    let mut args = vec!["req", "-new"];
    args.extend_from_slice(key_args);
    args.extend_from_slice(&["-nodes", "-keyout", &key, "-out", &csr, "-subj", "/CN=sled"]);
    openssl(dir, &args);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "30",
            "-extfile",
            &ext,
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleds_with_openssl_certificates_connect() {
    if !tq_test_fixtures::tools::available("openssl", &["version"], "apt-get install openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    make_ca(dir);
    // Every character that needs escaping, in both fields.
    let a = pid("913-00:0019", "A \"quoted\" \\ 100%");
    let b = pid("913-00:0019", "B~_.-");
    make_sled(
        dir,
        "a",
        &platform_id_uri(&a),
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    make_sled(dir, "b", &platform_id_uri(&b), &["-newkey", "rsa:2048"]);

    let load = |name: &str| {
        TlsIdentity::from_pem_files(
            &dir.join("ca.pem"),
            &dir.join(format!("{name}.pem")),
            &dir.join(format!("{name}.key")),
        )
        .unwrap()
    };
    let (ia, ib) = (load("a"), load("b"));
    assert_eq!(platform_id_of_cert(&ia.cert_chain[0]), Ok(a.clone()));
    assert_eq!(platform_id_of_cert(&ib.cert_chain[0]), Ok(b.clone()));

    let mut na = start(&ia, fast_config()).await;
    let mut nb = start(&ib, fast_config()).await;
    assert_eq!((&na.id, &nb.id), (&a, &b));
    let peers = peer_map(&[&na, &nb]);
    nb.net.set_peers(peers.clone()); // the listener first
    na.net.set_peers(peers);
    assert_eq!(
        next_event(&mut na.events).await,
        NetEvent::Connected(b.clone())
    );
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Connected(a.clone())
    );
    nb.net.send(&a, message(RACK, b"hello from RSA")).unwrap();
    assert_eq!(
        next_event(&mut na.events).await,
        NetEvent::Frame(b.clone(), message(RACK, b"hello from RSA"))
    );
}

#[test]
fn a_raw_separator_in_an_openssl_certificate_is_refused() {
    if !tq_test_fixtures::tools::available("openssl", &["version"], "apt-get install openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    make_ca(dir);
    // "a:b:c" could be part "a:b" or serial "b:c": not accepted.
    make_sled(
        dir,
        "x",
        "urn:tq-platform-id:a:b:c",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let chain =
        TlsIdentity::from_pem_files(&dir.join("ca.pem"), &dir.join("x.pem"), &dir.join("x.key"))
            .unwrap()
            .cert_chain;
    assert_eq!(
        platform_id_of_cert(&chain[0]),
        Err(tq_std::net::identity::IdentityError::BadEncoding)
    );
}
