//! `tq audit`, as a process: `verify` passes a sound log, and on damage
//! exits 1 naming the first bad record; `show` prints every record.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tq_std::audit::{AUDIT_DIR_NAME, AuditConfig, AuditEvent, AuditLog, ShareMessage, segment};

fn tq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tq"))
        .args(args)
        .output()
        .unwrap()
}

fn verify(dirs: &[PathBuf; 2]) -> (bool, String) {
    let [a, b] = dirs.each_ref().map(|d| d.to_str().unwrap().to_owned());
    let out = tq(&["audit", "verify", "--dir", &a, "--dir", &b]);
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

fn a_log(root: &Path) -> [PathBuf; 2] {
    let dirs = ["m2-0", "m2-1"].map(|drive| {
        std::fs::create_dir(root.join(drive)).unwrap();
        root.join(drive).join(AUDIT_DIR_NAME)
    });
    let log =
        AuditLog::open_blocking(dirs.clone(), "sled:0".into(), 1, AuditConfig::default()).unwrap();
    for epoch in 2..12 {
        let share = AuditEvent::ShareSent {
            to: "sled:1".into(),
            epoch,
            message: ShareMessage::Share,
        };
        log.record_blocking(&[share]).unwrap();
    }
    dirs
}

#[test]
fn verify_passes_a_sound_log_and_names_the_first_bad_record() {
    let root = tempfile::tempdir().unwrap();
    let dirs = a_log(root.path());
    let (ok, out) = verify(&dirs);
    assert!(ok, "{out}");
    assert!(
        out.contains("copy 0") && out.contains("ok, 12 records"),
        "{out}"
    );
    assert!(out.contains("head seq 11 hash "), "{out}");

    // Record seq 6 (line 7) says epoch 7 instead of 6.
    let path = segment::path(&dirs[1], 0);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"epoch\":6", "\"epoch\":7", 1)).unwrap();
    let (ok, out) = verify(&dirs);
    assert!(!ok, "{out}");
    assert!(
        out.contains("copy 1")
            && out.contains("BAD: first bad record seq 6 (segment 0 line 7): altered"),
        "{out}"
    );
}

#[test]
fn verify_fails_when_a_copy_was_cut_at_its_end() {
    let root = tempfile::tempdir().unwrap();
    let dirs = a_log(root.path());
    let path = segment::path(&dirs[0], 0);
    let text = std::fs::read_to_string(&path).unwrap();
    let cut: Vec<&str> = text.lines().collect();
    std::fs::write(&path, cut[..cut.len() - 2].join("\n") + "\n").unwrap();
    let (ok, out) = verify(&dirs);
    assert!(!ok, "{out}");
    assert!(out.contains("end at different records"), "{out}");
}

#[test]
fn show_prints_every_record_readably() {
    let root = tempfile::tempdir().unwrap();
    let dirs = a_log(root.path());
    let out = tq(&["audit", "show", "--dir", dirs[0].to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("segment_opened"), "{text}");
    assert!(text.contains("share_sent"), "{text}");
    assert!(text.contains("epoch=11 message=share to=sled:1"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains("share_sent")).count(),
        10
    );
}
