//! A ledger written by an earlier build opens: `fixtures/ledger_v1` is a
//! copy as `Ledger::write` wrote it (generation 1), holding the core's
//! persistent state fixture (`core/tests/fixtures/README.md` says how both
//! were made). When the ledger layout or the core's state encoding
//! changes, this file stays: it is the previous version that must still
//! open.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use tq_core::ids::{Epoch, PlatformId};
use tq_core::node::NodeCtx;
use tq_std::ledger::{CopyFinding, Ledger};

const LEDGER_V1: &[u8] = include_bytes!("fixtures/ledger_v1");

#[tokio::test]
async fn a_v1_ledger_opens_and_its_state_restores() {
    let root = tempfile::tempdir().unwrap();
    let paths: [PathBuf; 2] = ["m2-a", "m2-b"].map(|drive| {
        let dir = root.path().join(drive);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.join("tq-ledger");
        fs::write(&path, LEDGER_V1).unwrap();
        // The modes the ledger requires of what it opens (git keeps 0644).
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    });

    let opened = Ledger::open(paths).await.unwrap();
    assert_eq!(opened.report.generation, 1);
    assert_eq!(opened.report.found, [CopyFinding::Current; 2]);
    let payload = opened.state.expect("the ledger holds a state");

    let sled_1 = PlatformId::new(tq_core::ids::SLED_PART_NUMBER, "SN0001").unwrap();
    let mut ctx = NodeCtx::new(sled_1);
    ctx.restore_state(&payload).unwrap();
    let state = ctx.persistent_state();
    assert_eq!(state.latest_committed_epoch(), Some(Epoch(3)));
    assert_eq!(
        state.lrtq().map(|lrtq| lrtq.rack_id),
        Some(tq_test_fixtures::RACK)
    );
    let share = state
        .latest_committed()
        .and_then(|stored| stored.share.as_ref());
    assert!(share.is_some(), "sled 1 holds its share of epoch 3");
}
