//! The real `tq sled` binary: a bad or missing config, certificate, ledger
//! or LRTQ share file, or a taken port, is one readable line on stderr and
//! a non-zero exit (no panic, no backtrace); only `tq sled init` makes a
//! fresh sled; ledger files are the daemon's user's alone; a second daemon
//! on one ledger is refused without touching it; SIGTERM and Ctrl-C
//! (SIGINT) stop a running daemon cleanly with exit code 0 (and it starts
//! again on the same directories); SIGHUP makes it take its file's peers
//! again (a sled slid into the rack is connected to, no restart); curl, a
//! client we did not write, talks to its API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::*;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConnection, StreamOwned};
use tq::https::RackCa;
use tq_core::ids::PlatformId;
use tq_std::net::api_tls;
use tq_std::net::identity::platform_id_uri;
use tq_test_fixtures::pki::Ca;

fn tq() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tq"));
    command.env("TQ_LOG", "info").env("RUST_BACKTRACE", "1");
    command
}

/// A fresh sled's directory (sled 0 of a new PKI); returns the TOML path.
fn fresh_sled(root: &Path) -> PathBuf {
    let ca = Ca::new("rack");
    write_sled_dir(&ca, &sled_id(0), root, None)
}

/// Runs `tq sled --config path`, which must fail within [`WAIT`] (a
/// daemon that starts instead is killed and fails the test); returns
/// stderr's lines.
fn fails(config: &Path) -> Vec<String> {
    let mut child = tq()
        .args(["sled", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "the daemon started instead of failing: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success(), "{output:?}");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    stderr.lines().map(str::to_owned).collect()
}

/// The one error line: the last line of stderr, starting `tq sled: `.
fn error_line(config: &Path) -> String {
    let lines = fails(config);
    let last = lines.last().cloned().unwrap_or_default();
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("tq sled: "))
        .collect();
    assert_eq!(errors, [&last], "{lines:#?}");
    last
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} not in {text}");
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn a_bad_config_is_one_line() {
    let root = tempfile::tempdir().unwrap();
    let missing = error_line(&root.path().join("nope.toml"));
    assert!(
        missing.starts_with("tq sled: config: cannot read "),
        "{missing}"
    );
    assert!(missing.contains("No such file"), "{missing}");

    let config = fresh_sled(root.path());
    edit(&config, "[api]\n", "[api]\nport = 5\n");
    let line = error_line(&config);
    assert!(line.starts_with("tq sled: config: "), "{line}");
    assert!(line.contains("line 19"), "{line}");
    assert!(line.contains("unknown field `port`"), "{line}");

    edit(&config, "port = 5\n", "");
    edit(
        &config,
        "listen = \"127.0.0.1:0\"\n\n[api]",
        "listen = \"localhost\"\n\n[api]",
    );
    let line = error_line(&config);
    assert!(line.starts_with("tq sled: config: "), "{line}");
    assert!(line.contains("invalid socket address"), "{line}");
}

#[test]
fn a_bad_certificate_is_one_line() {
    let root = tempfile::tempdir().unwrap();
    let config = fresh_sled(root.path());
    let dir = root.path();

    std::fs::rename(dir.join("sled.key"), dir.join("gone.key")).unwrap();
    let line = error_line(&config);
    assert!(line.starts_with("tq sled: certificate: "), "{line}");
    assert!(line.contains("sled.key"), "{line}");
    std::fs::rename(dir.join("gone.key"), dir.join("sled.key")).unwrap();

    // A certificate naming no platform id.
    let ca = Ca::new("rack");
    let (cert, key) = ca.leaf_pem(&["urn:something-else".to_owned()]);
    std::fs::write(dir.join("sled.pem"), cert).unwrap();
    std::fs::write(dir.join("sled.key"), key).unwrap();
    let line = error_line(&config);
    assert!(line.starts_with("tq sled: certificate: "), "{line}");
    assert!(line.contains("no platform-id URI"), "{line}");

    // A key that is not the certificate's.
    ca.write_pem_files(&[platform_id_uri(&sled_id(0))], dir);
    let (_, other_key) = ca.leaf_pem(&[platform_id_uri(&sled_id(0))]);
    std::fs::write(dir.join("sled.key"), other_key).unwrap();
    let line = error_line(&config);
    assert!(line.starts_with("tq sled: certificate: "), "{line}");

    // An empty CA file.
    ca.write_pem_files(&[platform_id_uri(&sled_id(0))], dir);
    std::fs::write(dir.join(tq_rack_setup::layout::RACK_CA_FILE), "").unwrap();
    let line = error_line(&config);
    assert!(line.starts_with("tq sled: certificate: "), "{line}");
    assert!(line.contains("no certificate"), "{line}");
}

#[test]
fn unusable_reference_measurements_are_one_line() {
    let root = tempfile::tempdir().unwrap();
    let config = fresh_sled(root.path());
    let reference = root
        .path()
        .join(tq_rack_setup::layout::REFERENCE_MEASUREMENTS_FILE);
    std::fs::remove_file(&reference).unwrap();
    let line = error_line(&config);
    assert!(
        line.starts_with("tq sled: reference measurements ")
            && line.contains("reference-measurements.toml: cannot read: No such file"),
        "{line}"
    );
    std::fs::write(
        &reference,
        "[[measurement]]\nname = \"sp\"\nsha3_256 = \"00\"\n",
    )
    .unwrap();
    let line = error_line(&config);
    assert!(
        line.ends_with("measurement[0]: sha3_256 is not 64 hex digits"),
        "{line}"
    );
}

#[test]
fn a_bad_ledger_is_one_line() {
    let root = tempfile::tempdir().unwrap();
    let config = fresh_sled(root.path());
    let dir = root.path();

    // Both drives missing: not a fresh sled, a fault.
    for copy in ["m2-a", "m2-b"] {
        std::fs::remove_dir_all(dir.join(copy)).unwrap();
    }
    let line = error_line(&config);
    assert!(
        line.starts_with("tq sled: ledger: no ledger on either drive"),
        "{line}"
    );
    assert!(line.contains("does not exist"), "{line}");

    // Both copies corrupt.
    for copy in ["m2-a", "m2-b"] {
        std::fs::create_dir(dir.join(copy)).unwrap();
        set_mode(&dir.join(copy), 0o700);
        let file = dir.join(copy).join(tq::config::LEDGER_FILE_NAME);
        std::fs::write(&file, b"not a ledger").unwrap();
        set_mode(&file, 0o600);
    }
    let line = error_line(&config);
    assert!(line.starts_with("tq sled: ledger: no valid copy"), "{line}");
    assert!(line.contains("corrupt"), "{line}");
}

#[test]
fn a_bad_lrtq_share_file_or_a_taken_port_is_one_line() {
    let root = tempfile::tempdir().unwrap();
    let config = fresh_sled(root.path());
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[tls]", "lrtq_share_file = \"share.bin\"\n\n[tls]"),
    )
    .unwrap();
    std::fs::write(root.path().join("share.bin"), b"garbage").unwrap();
    let line = error_line(&config);
    assert!(line.starts_with("tq sled: LRTQ share file: "), "{line}");
    // Configured and missing: not a fresh sled either.
    std::fs::remove_file(root.path().join("share.bin")).unwrap();
    let line = error_line(&config);
    assert!(
        line.starts_with("tq sled: LRTQ share file: ")
            && line.contains("share.bin is missing")
            && line.contains("mounted"),
        "{line}"
    );
    edit(&config, "lrtq_share_file = \"share.bin\"\n", "");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    edit(
        &config,
        "[api]\nlisten = \"127.0.0.1:0\"",
        &format!("[api]\nlisten = \"127.0.0.1:{port}\""),
    );
    let line = error_line(&config);
    assert!(
        line.starts_with("tq sled: API: cannot listen on 127.0.0.1:"),
        "{line}"
    );

    edit(
        &config,
        &format!("[api]\nlisten = \"127.0.0.1:{port}\""),
        "[api]\nlisten = \"127.0.0.1:0\"",
    );
    edit(
        &config,
        "[peer]\nlisten = \"127.0.0.1:0\"",
        &format!("[peer]\nlisten = \"127.0.0.1:{port}\""),
    );
    let line = error_line(&config);
    assert!(
        line.starts_with("tq sled: peer network: cannot listen on"),
        "{line}"
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Runs `tq sled init --config path`; its exit code, stdout and stderr.
fn init(config: &Path) -> (Option<i32>, String, String) {
    let output = tq()
        .args(["sled", "init", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (
        output.status.code(),
        text(output.stdout),
        text(output.stderr),
    )
}

#[test]
fn only_tq_sled_init_makes_a_fresh_sled() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let config = write_sled_files(&Ca::new("rack"), &sled_id(0), dir, None);

    // Drives not there.
    let line = error_line(&config);
    assert!(
        line.starts_with("tq sled: ledger: no ledger on either drive"),
        "{line}"
    );
    assert!(
        line.contains(&*dir.join("m2-a").to_string_lossy()),
        "{line}"
    );
    assert!(
        line.contains(&*dir.join("m2-b").to_string_lossy()),
        "{line}"
    );
    assert!(
        line.contains("mounted") && line.contains("tq sled init"),
        "{line}"
    );

    // Empty directories, as an unmounted drive's mount point looks: the
    // same refusal, never a fresh sled.
    for copy in ["m2-a", "m2-b"] {
        std::fs::create_dir(dir.join(copy)).unwrap();
        set_mode(&dir.join(copy), 0o700);
    }
    let line = error_line(&config);
    assert!(
        line.starts_with("tq sled: ledger: no ledger on either drive")
            && line.contains("no ledger file"),
        "{line}"
    );

    // Init marks both copies; the sled then starts fresh.
    let (code, stdout, stderr) = init(&config);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("ledger initialized in "), "{stdout}");
    for copy in ["m2-a", "m2-b"] {
        let file = dir.join(copy).join(tq::config::LEDGER_FILE_NAME);
        assert_eq!(mode_of(&file), 0o600, "{}", file.display());
    }
    let mut running = start(&config);
    let status = http_get(&running, "/v1/status");
    assert!(status.contains("\"lrtq\":null"), "{status}");
    assert!(status.contains("\"latest_committed\":null"), "{status}");
    signal(&running.child, "TERM");
    assert_eq!(exit_code(&mut running.child), Some(0));

    // Twice is refused, in one line.
    let (code, _, stderr) = init(&config);
    assert_eq!(code, Some(1));
    let line = stderr.lines().last().unwrap_or_default();
    assert!(
        line.starts_with("tq sled: ledger: ") && line.contains("initialized already"),
        "{stderr}"
    );

    // One initialized copy gone (a replaced drive): a degraded mirror,
    // repaired at start, not a fresh sled.
    std::fs::remove_file(dir.join("m2-b").join(tq::config::LEDGER_FILE_NAME)).unwrap();
    let mut running = start(&config);
    signal(&running.child, "TERM");
    assert_eq!(exit_code(&mut running.child), Some(0));
    assert!(dir.join("m2-b").join(tq::config::LEDGER_FILE_NAME).exists());

    // Init creates the directories (0700) itself, but never a drive.
    let root = tempfile::tempdir().unwrap();
    let config = write_sled_files(&Ca::new("rack"), &sled_id(0), root.path(), None);
    assert_eq!(init(&config).0, Some(0));
    for copy in ["m2-a", "m2-b"] {
        assert_eq!(mode_of(&root.path().join(copy)), 0o700);
    }
    edit(&config, "\"m2-a\"", "\"unmounted/m2-a\"");
    let (code, _, stderr) = init(&config);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("tq sled: ledger: cannot create ") && stderr.contains("mounted"),
        "{stderr}"
    );
}

/// The request key (`[authority] key_file`): missing, open to others, or
/// not a key, the daemon does not start, in one line naming the file.
#[test]
fn a_request_key_missing_or_open_to_others_is_refused_in_one_line() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let config = fresh_sled(dir);
    let key = dir.join(tq_rack_setup::layout::REQUEST_KEY_FILE);
    assert_eq!(mode_of(&key), 0o600);

    set_mode(&key, 0o640);
    let line = error_line(&config);
    assert!(line.starts_with("tq sled: request key: "), "{line}");
    assert!(line.contains(&*key.to_string_lossy()), "{line}");
    assert!(line.contains("mode 0640, open to other users"), "{line}");
    set_mode(&key, 0o600);

    let bytes = std::fs::read(&key).unwrap();
    std::fs::write(&key, &bytes[..20]).unwrap();
    let line = error_line(&config);
    assert!(
        line.starts_with("tq sled: request key: ") && line.contains("holds 20 bytes, not 48"),
        "{line}"
    );

    std::fs::remove_file(&key).unwrap();
    let line = error_line(&config);
    assert!(
        line.starts_with("tq sled: request key: ") && line.contains("does not exist"),
        "{line}"
    );
}

/// `body` (a Nexus call's JSON, without `auth`) with Nexus's authenticator
/// of `request` for sled 0 of the fixtures' rack.
fn with_auth<T: tq_core::authority::NexusRequest + ?Sized>(
    mut body: serde_json::Value,
    request: &T,
) -> String {
    let auth = common::nexus_client::fixture_authority()
        .authorize(&sled_id(0), request)
        .unwrap()
        .auth;
    body["auth"] = serde_json::to_value(auth).unwrap();
    body.to_string()
}

#[test]
fn a_ledger_open_to_others_is_refused_in_one_line() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let config = fresh_sled(dir);
    let copy = dir.join("m2-a").join(tq::config::LEDGER_FILE_NAME);
    assert_eq!(mode_of(&copy), 0o600);

    set_mode(&copy, 0o644);
    let line = error_line(&config);
    assert!(line.starts_with("tq sled: ledger: refused: "), "{line}");
    assert!(line.contains(&*copy.to_string_lossy()), "{line}");
    assert!(line.contains("mode 0644"), "{line}");
    set_mode(&copy, 0o600);

    set_mode(&dir.join("m2-b"), 0o755);
    let line = error_line(&config);
    assert!(
        line.starts_with("tq sled: ledger: refused: ") && line.contains("mode 0755"),
        "{line}"
    );
}

#[test]
fn a_second_daemon_on_one_ledger_is_one_line_and_touches_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let config = fresh_sled(dir);
    // Fixed ports, as a real sled's: the second daemon would otherwise
    // just listen elsewhere.
    let free = || {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let (peer, api) = (free(), free());
    edit(
        &config,
        "[peer]\nlisten = \"127.0.0.1:0\"",
        &format!("[peer]\nlisten = \"127.0.0.1:{peer}\""),
    );
    edit(
        &config,
        "[api]\nlisten = \"127.0.0.1:0\"",
        &format!("[api]\nlisten = \"127.0.0.1:{api}\""),
    );
    let mut first = start(&config);

    // What the first one's write in flight looks like on disk.
    let temp = dir
        .join("m2-b")
        .join(format!("{}.tmp", tq::config::LEDGER_FILE_NAME));
    std::fs::write(&temp, b"in flight").unwrap();
    let line = error_line(&config);
    assert!(
        line.starts_with("tq sled: ledger: in use by another process"),
        "{line}"
    );
    assert!(
        temp.exists(),
        "the second daemon removed the first one's file"
    );
    let (code, _, stderr) = init(&config);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("in use by another process"), "{stderr}");

    http_get(&first, "/v1/status");
    signal(&first.child, "TERM");
    assert_eq!(exit_code(&mut first.child), Some(0));
    // Gone with its owner, the lock lets the next one in.
    let mut next = start(&config);
    signal(&next.child, "TERM");
    assert_eq!(exit_code(&mut next.child), Some(0));
}

/// A running daemon: its process, its API address, its stderr lines, and
/// what its API's clients verify it with (the rack CA and its platform
/// id, from its own files).
struct Running {
    child: Child,
    api: SocketAddr,
    lines: mpsc::Receiver<String>,
    rack_ca: RackCa,
    id: PlatformId,
}

/// A test that fails leaves no daemon behind.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &Path) -> Running {
    let mut child = tq()
        .args(["sled", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = wait_line(&lines, "sled daemon started");
    let api = started
        .split_whitespace()
        .find_map(|word| word.strip_prefix("api="))
        .unwrap_or_else(|| panic!("no API address in {started}"))
        .parse()
        .unwrap();
    let tls = tq::config::SledConfig::load(config).unwrap().tls;
    let (identity, id) = tq::sled::load_identity(&tls).unwrap();
    let rack_ca = RackCa::new(identity.ca_certs).unwrap();
    Running {
        child,
        api,
        lines,
        rack_ca,
        id,
    }
}

/// A TLS connection to the daemon's API, the daemon verified as every
/// client verifies it (tq-std's `api_tls`).
fn tls_stream(running: &Running) -> StreamOwned<ClientConnection, std::net::TcpStream> {
    let config = api_tls::client_config(running.rack_ca.certs(), running.id.clone()).unwrap();
    let name = ServerName::IpAddress(running.api.ip().into());
    let connection = ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(running.api).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    StreamOwned::new(connection, tcp)
}

fn wait_line(lines: &mpsc::Receiver<String>, wanted: &str) -> String {
    loop {
        match lines.recv_timeout(WAIT) {
            Ok(line) if line.contains(wanted) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with {wanted:?}: {e}"),
        }
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the process to end; its exit code.
fn exit_code(child: &mut Child) -> Option<i32> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_and_ctrl_c_stop_the_daemon_cleanly() {
    let root = tempfile::tempdir().unwrap();
    // A sled of an LRTQ rack: it boots from its share file.
    let ca = Ca::new("rack");
    let (data, _) = tq_test_fixtures::lrtq_rack(3, 5);
    let config = write_sled_dir(&ca, &sled_id(0), root.path(), Some(&data[0]));

    for signal_name in ["TERM", "INT"] {
        let mut running = start(&config);
        let status = http_get(&running, "/v1/status");
        assert!(status.contains("\"lrtq\""), "{status}");
        signal(&running.child, signal_name);
        wait_line(&running.lines, "sled daemon stopped");
        assert_eq!(exit_code(&mut running.child), Some(0), "SIG{signal_name}");
    }
}

/// A sled slid into a running rack: its peers' files are rewritten to
/// name it and they are sent SIGHUP (what `tq chaos` does for a
/// replacement). They must connect to it without a restart. (SIGHUP's
/// default action ends a process: without the handler both sleds die.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_takes_the_peers_of_the_configuration_file_again() {
    use tq::demo::layout::{Addressing, Layout};
    use tq::demo::sleds::{Launch, Sleds};

    let root = tempfile::tempdir().unwrap();
    let layout = Layout::create(root.path(), 3, 0, 11, &Addressing::Loopback).unwrap();
    // Sleds 0 and 1 as a rack that does not know sled 2 yet. (The lower
    // id dials: nobody dials sled 2 until 0 or 1 knows it.)
    layout.write_config(0, &[1]).unwrap();
    layout.write_config(1, &[0]).unwrap();
    let launch = Launch::Processes {
        exe: env!("CARGO_BIN_EXE_tq").into(),
        wrappers: Vec::new(),
    };
    let mut sleds = Sleds::new(layout, launch).unwrap();
    for i in 0..3 {
        sleds.start(i).await.unwrap();
    }
    sleds.wait_connected(&[0, 1], WAIT).await.unwrap();
    let apart = sleds
        .wait_connected(&[0, 1, 2], Duration::from_secs(2))
        .await;
    assert!(apart.is_err(), "sled 2 connected before it was named");

    for i in [0, 1] {
        let others: Vec<usize> = (0..3).filter(|&o| o != i).collect();
        sleds.layout.write_config(i, &others).unwrap();
        let pid = sleds.pid(i).and_then(|p| i32::try_from(p).ok()).unwrap();
        let pid = rustix::process::Pid::from_raw(pid).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    }
    let joined = sleds.wait_connected(&[0, 1, 2], WAIT).await;
    let log = std::fs::read_to_string(sleds.files(0).unwrap().dir.join("sled.log")).unwrap();
    sleds.stop_all().await;
    if let Err(e) = joined {
        let tail: Vec<&str> = log.lines().filter(|l| !l.contains("slog")).collect();
        panic!("{e}; sled 0's log:\n{}", tail.join("\n"));
    }
}

/// A GET over a TLS socket, as the simplest HTTP/1.1 client.
fn http_get(running: &Running, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = tls_stream(running);
    let addr = running.api;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// Waits until the daemon's metrics count `count` API connections refused
/// for `reason` (the count is bumped as the connection closes, so just
/// after the client sees it closed).
fn wait_refused(running: &Running, reason: &str, count: u64) {
    let line = format!("tq_api_connections_refused_total{{reason=\"{reason}\"}} {count}");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let metrics = http_get(running, "/metrics");
        if metrics.lines().any(|l| l == line) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {line:?} in {metrics}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One request over a TLS socket (`Connection: close`): the status and
/// the body of the answer, which must come within `WAIT`.
fn http_exchange(running: &Running, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = tls_stream(running);
    let addr = running.api;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// PROTOCOL.md 6.6: with nothing committed, loading a secret is refused
/// (`no_committed_configuration`) at once, not after the whole deadline.
#[test]
fn the_fingerprint_of_nothing_committed_is_refused_at_once() {
    let root = tempfile::tempdir().unwrap();
    let mut running = start(&fresh_sled(root.path()));
    let started = std::time::Instant::now();
    let request = with_auth(
        serde_json::json!({"deadline_ms": 60000}),
        &tq_core::authority::LatestSecretQuery,
    );
    let (status, body) = http_exchange(&running, "POST", "/v1/secret/fingerprint", &request);
    let took = started.elapsed();
    assert_eq!(status, 409, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error_code"], "no_committed_configuration", "{body}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    signal(&running.child, "TERM");
    assert_eq!(exit_code(&mut running.child), Some(0));
}

/// Raw bytes over a TLS socket: the status, content type and body of the
/// answer.
fn raw_exchange(running: &Running, request: &[u8]) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = tls_stream(running);
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {response:?}"));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

/// Checks `body` against the `ApiError` schema of the committed OpenAPI
/// document: an object with every required property, no undeclared one,
/// `message` a string, `error_code` one of `ErrorCode`'s values, and that
/// code's status the answer's.
fn assert_api_error(status: u16, content_type: &str, body: &str) {
    let document: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/sled.json"))
            .unwrap(),
    )
    .unwrap();
    let schemas = &document["components"]["schemas"];
    let schema = &schemas["ApiError"];
    let codes: Vec<&str> = schemas["ErrorCode"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["enum"].as_array().unwrap())
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(content_type, "application/json", "{status}: {body:?}");
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{status}: {body:?}: {e}"));
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{status}: {body}"));
    for required in schema["required"].as_array().unwrap() {
        let key = required.as_str().unwrap();
        assert!(object.contains_key(key), "{status}: no {key} in {body}");
    }
    let properties = schema["properties"].as_object().unwrap();
    for key in object.keys() {
        assert!(
            properties.contains_key(key),
            "{status}: {key} undeclared in {body}"
        );
    }
    assert!(object["message"].is_string(), "{body}");
    let code = object["error_code"].as_str().unwrap();
    assert!(codes.contains(&code), "{code} is not an ErrorCode");
    let typed: tq::api::error::ApiError = serde_json::from_str(body).unwrap();
    assert_eq!(typed.error_code.status_u16(), status, "{body}");
}

/// Every kind of error the framework raises before an endpoint runs
/// (unknown path, wrong method, a path that does not decode, a target or
/// head too long) comes with an `ApiError` body, as the document says.
#[test]
fn every_error_body_is_an_api_error() {
    let root = tempfile::tempdir().unwrap();
    let mut running = start(&fresh_sled(root.path()));
    let get = |path: &str, extra: &str| {
        format!("GET {path} HTTP/1.1\r\nhost: x\r\n{extra}connection: close\r\n\r\n").into_bytes()
    };
    let long_path = format!("/v1/{}", "a".repeat(70_000));
    let big_header = format!("x-big: {}\r\n", "b".repeat(20_000));
    let refused_body = &with_auth(
        serde_json::json!({"deadline_ms": 99999}),
        &tq_core::authority::LatestSecretQuery,
    );
    let cases: [(&str, Vec<u8>, u16); 6] = [
        ("unknown path", get("/v1/nothing", ""), 404),
        ("wrong method", get("/v1/commit", ""), 405),
        ("bad percent-encoding", get("/v1/%ff%fe", ""), 400),
        ("over-long target", get(&long_path, ""), 414),
        ("over-large head", get("/v1/status", &big_header), 431),
        (
            "an endpoint's own refusal",
            format!(
                "POST /v1/secret/fingerprint HTTP/1.1\r\nhost: x\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{refused_body}",
                refused_body.len()
            )
            .into_bytes(),
            400,
        ),
    ];
    for (what, request, expected) in cases {
        let (status, content_type, body) = raw_exchange(&running, &request);
        assert_eq!(status, expected, "{what}: {body:?}");
        assert_api_error(status, &content_type, &body);
    }
    // The front door's own refusals (the over-long target and head) are
    // counted; the others are dropshot's or the node's.
    wait_refused(&running, "bad_head", 2);
    signal(&running.child, "TERM");
    assert_eq!(exit_code(&mut running.child), Some(0));
}

/// A connection that sends nothing (not even a TLS client hello), or
/// never finishes its request head, is closed by the server after
/// `[api] idle_timeout_ms`.
#[test]
fn idle_connections_are_closed() {
    use std::io::{Read, Write};
    let root = tempfile::tempdir().unwrap();
    let config = fresh_sled(root.path());
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}idle_timeout_ms = 300\n")).unwrap();
    let mut running = start(&config);
    let assert_closed_soon = |read: std::io::Result<usize>, started: std::time::Instant| {
        // Closed, with or without a TLS close_notify.
        assert!(
            matches!(&read, Ok(0))
                || matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof),
            "still open after {:?}: {read:?}",
            started.elapsed()
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    };
    let mut buf = [0u8; 64];

    let mut silent = std::net::TcpStream::connect(running.api).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    assert_closed_soon(silent.read(&mut buf), started);

    let mut partial = tls_stream(&running);
    partial
        .sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Writing completes the handshake first.
    partial
        .write_all(b"GET /v1/status HTTP/1.1\r\nhost:")
        .unwrap();
    let started = std::time::Instant::now();
    assert_closed_soon(partial.read(&mut buf), started);

    // A request sent in time is answered as ever.
    assert!(http_get(&running, "/v1/status").contains("\"node\""));
    // Both closes are counted; no handshake failed.
    wait_refused(&running, "idle_timeout", 2);
    wait_refused(&running, "tls_handshake", 0);
    signal(&running.child, "TERM");
    assert_eq!(exit_code(&mut running.child), Some(0));
}

/// A plain-HTTP request to the API gets nothing an HTTP client can use:
/// no HTTP answer and no API error, at most a TLS alert, then the
/// connection is closed.
#[test]
fn plain_http_gets_no_answer() {
    use std::io::{Read, Write};
    let root = tempfile::tempdir().unwrap();
    let mut running = start(&fresh_sled(root.path()));
    let mut stream = std::net::TcpStream::connect(running.api).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let addr = running.api;
    let request = format!("GET /v1/status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    // The server may close as soon as it has read bytes that are no TLS
    // record, before the rest of the request is written: a write that
    // fails then (a broken pipe, a reset) is the refusal this test wants.
    let _ = stream.write_all(request.as_bytes());
    let mut answer = Vec::new();
    // Closed, possibly by a reset after the alert.
    let _ = stream.read_to_end(&mut answer);
    // A TLS record of type alert (21) with its two bytes, or nothing.
    assert!(
        answer.is_empty() || (answer.len() == 7 && answer[0] == 21),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    wait_refused(&running, "tls_handshake", 1);
    // A client that connects and goes away is not refused.
    drop(std::net::TcpStream::connect(running.api).unwrap());
    // Its connection's end is seen at once; give it time to be counted.
    std::thread::sleep(Duration::from_millis(200));
    wait_refused(&running, "tls_handshake", 1);
    wait_refused(&running, "idle_timeout", 0);
    signal(&running.child, "TERM");
    assert_eq!(exit_code(&mut running.child), Some(0));
}

/// curl, a client we did not write, against a running daemon, over
/// HTTPS with the rack CA (`--cacert`). Its certificate names no host:
/// curl, which checks a host name, is pointed at the certificate's common
/// name (`sled`, what curl falls back to with no DNS or IP name) and
/// connected to the daemon's address (`--connect-to`); it checks the
/// chain to the rack CA, not the platform id. Without the rack CA, or
/// with another, curl refuses the daemon; plain HTTP gets no answer.
/// Skipped (`SKIPPED`) where curl is missing, but not under CI, which
/// installs it.
#[test]
fn curl_talks_to_the_api() {
    if !tq_test_fixtures::tools::available("curl", &["--version"], "apt-get install curl") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let config = fresh_sled(root.path());
    let mut running = start(&config);
    let port = running.api.port();
    let base = format!("https://sled:{port}");
    let connect_to = format!("sled:{port}:{}:{port}", running.api.ip());
    let rack_ca = root.path().join(tq_rack_setup::layout::RACK_CA_FILE);
    let rack_ca = rack_ca.to_str().unwrap();
    let run_curl = |args: &[&str]| {
        Command::new("curl")
            .args(["-sS", "-w", "\n%{http_code} %{content_type}"])
            .args(["--connect-to", &connect_to])
            .args(args)
            .output()
            .unwrap()
    };
    let curl = |args: &[&str]| {
        let output = run_curl(&[&["--cacert", rack_ca], args].concat());
        assert!(output.status.success(), "{output:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        let (body, tail) = text.rsplit_once('\n').unwrap();
        let (code, content_type) = tail.split_once(' ').unwrap();
        (
            code.parse::<u16>().unwrap(),
            content_type.to_owned(),
            body.to_owned(),
        )
    };

    // Refused: the system's roots only, another CA, plain HTTP.
    let status_url = format!("{base}/v1/status");
    let other_ca = root.path().join("other-ca.pem");
    std::fs::write(&other_ca, Ca::new("another rack").pem()).unwrap();
    for (what, args) in [
        ("no --cacert", vec![status_url.as_str()]),
        (
            "another CA",
            vec!["--cacert", other_ca.to_str().unwrap(), &status_url],
        ),
    ] {
        let output = run_curl(&args);
        // 60: the peer's certificate cannot be verified.
        assert_eq!(output.status.code(), Some(60), "{what}: {output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains("node"), "{what}: {stdout}");
    }
    let plain = run_curl(&[&format!("http://sled:{port}/v1/status")]);
    assert!(!plain.status.success(), "{plain:?}");
    assert!(
        !String::from_utf8_lossy(&plain.stdout).contains("node"),
        "{plain:?}"
    );

    let (code, content_type, body) = curl(&[&status_url]);
    assert_eq!((code, content_type.as_str()), (200, "application/json"));
    let status: tq::api::types::SledStatus = serde_json::from_str(&body).unwrap();
    assert_eq!(status.node.id, sled_id(0));

    let (code, content_type, body) = curl(&[&format!("{base}/metrics")]);
    assert_eq!(code, 200);
    assert_eq!(content_type, tq::server::METRICS_CONTENT_TYPE);
    assert!(body.contains("tq_node_state_stored 1"), "{body}");

    // A commit this fresh sled has not prepared: 409, the core's error and
    // the node's tag of it.
    let commit = r#"{"rack_id": "42424242-4242-4242-4242-424242424242", "epoch": 2}"#;
    let request: tq_core::api::CommitRequest = serde_json::from_str(commit).unwrap();
    let signed = with_auth(
        serde_json::json!({"request": serde_json::from_str::<serde_json::Value>(commit).unwrap()}),
        &request,
    );
    let (code, _, body) = curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        &signed,
        &format!("{base}/v1/commit"),
    ]);
    assert_eq!(code, 409, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error_code"], "not_prepared");
    assert_eq!(
        error["refusal"],
        serde_json::json!({"commit": {"NotPrepared": 2}})
    );
    assert_eq!(
        error["answer_tag"].as_str().map(str::len),
        Some(64),
        "{body}"
    );

    // Without Nexus's authenticator: refused before the node.
    let (code, _, body) = curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        &format!(r#"{{"request": {commit}}}"#),
        &format!("{base}/v1/commit"),
    ]);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"unauthenticated\""), "{body}");

    let (code, _, body) = curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        &with_auth(
            serde_json::json!({"deadline_ms": 999999}),
            &tq_core::authority::LatestSecretQuery,
        ),
        &format!("{base}/v1/secret/fingerprint"),
    ]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("\"invalid_deadline\""), "{body}");

    signal(&running.child, "TERM");
    assert_eq!(exit_code(&mut running.child), Some(0));
}
