//! Host-side set-up for the target binaries.
//!
//! 1. Puts `memory.x` (the emulated board's memory map) where cortex-m-rt's
//!    linker script finds it.
//! 2. Sets up the LRTQ racks the scenario starts from, exactly as LRTQ rack
//!    setup did: one curve25519 scalar secret split with `vsss-rs` 3.3.4
//!    into 255 shares, threshold `n/2 + 1` for `n` sleds. For each rack size
//!    it writes into `OUT_DIR`, for `include_bytes!`:
//!    - `lrtq-N.threshold`: one byte;
//!    - `lrtq-N.secret`: the secret's 32 bytes, as the old software used
//!      them (`Scalar::as_bytes`), which the upgraded rack must keep as its
//!      epoch-1 secret;
//!    - `lrtq-N.shares`: the shares of the `N` sleds (identifiers 1..=N),
//!      33 bytes each in vsss-rs's layout;
//!    - `lrtq-N.digests`: SHA3-256 of each of the 255 shares, 32 bytes each;
//!    - `lrtq-N.ledger`: what sled 0 keeps of its LRTQ ledger, as tq-core
//!      encodes LRTQ share data (`wire::encode_lrtq_share_data`), under the
//!      rack id in `lrtq.rack-id` (16 bytes): what a booting node restores
//!      in place when it has no state of its own.
//!
//! 3. Encodes, with tq-core, the largest peer message (a `Prepare` with a
//!    full configuration) and the largest persistent state into
//!    `largest.peer-msg` and `largest.state`: the inputs whose decoding the
//!    `instructions` binary counts. Each fills its `wire::MAX_*_LEN`
//!    exactly (checked here), as `core/src/wire/tests.rs` shows of the same
//!    values.
//!
//! The RNG is seeded, so every build embeds the same racks and the binaries
//! (and their sizes) are reproducible.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a build script reports a failure by panicking"
)]

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use tq_core::config::{ConfigFields, Configuration, Member, Members};
use tq_core::crypto::{EncryptedRackSecrets, LrtqShare, Share, ShareDigest};
use tq_core::ids::{Epoch, LrtqThreshold, PlatformId, RackId, Threshold};
use tq_core::limits::{MAX_LRTQ_THRESHOLD, MAX_MEMBERS, MAX_SEALED_LEN};
use tq_core::messages::{Body, Envelope, PeerMsgRef};
use tq_core::persistent::{Expunged, LrtqShareData, PersistentState, StateFields, StoredConfig};
use tq_core::wire;
use tq_test_fixtures::{LRTQ_TOTAL_SHARES, lrtq_setup, lrtq_share_data};

/// LRTQ sleds of the racks the scenario runs (4 and 7; each rack also has
/// one spare sled, which the scenario adds), and of the racks whose LRTQ
/// combine the `instructions` binary counts (8 and 32: thresholds 5 and
/// 17, the largest LRTQ rack).
const LRTQ_RACK_SIZES: [usize; 4] = [4, 7, 8, 32];

/// The rack id the LRTQ ledgers name.
const LEDGER_RACK_ID: [u8; 16] = [0x5a; 16];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    fs::write(out.join("lrtq.rack-id"), LEDGER_RACK_ID).expect("write rack id");
    for sleds in LRTQ_RACK_SIZES {
        write_lrtq_rack(&out, sleds);
    }
    write_largest(&out);
}

fn write_lrtq_rack(out: &Path, sleds: usize) {
    let setup = lrtq_setup(sleds, 0x4c52_5451_0000 + sleds as u64);
    assert_eq!(setup.shares.len(), LRTQ_TOTAL_SHARES);
    let held: Vec<u8> = setup.shares[..sleds].concat();
    let digests: Vec<u8> = setup.digests().concat();
    // Sled 0's share data, encoded by tq-core.
    let data = lrtq_share_data(&setup, RackId(LEDGER_RACK_ID), 0);
    let mut ledger = vec![0; wire::MAX_LRTQ_SHARE_DATA_LEN];
    let ledger = wire::encode_lrtq_share_data(&data, &mut ledger).expect("LRTQ share data encodes");

    let name = |ext: &str| out.join(format!("lrtq-{sleds}.{ext}"));
    fs::write(name("threshold"), [setup.threshold]).expect("write threshold");
    fs::write(name("secret"), setup.secret).expect("write secret");
    fs::write(name("shares"), held).expect("write shares");
    fs::write(name("ledger"), ledger).expect("write ledger");
    fs::write(name("digests"), digests).expect("write digests");
}

/// Writes the largest peer message and persistent state (see the crate doc).
fn write_largest(out: &Path) {
    let config = largest_config(u64::MAX);
    let share = Share::new(255, &[0xee; 32]).expect("share");
    let msg: PeerMsgRef<'_> = Envelope {
        rack_id: RackId([0xff; 16]),
        body: Body::Prepare {
            config: &config,
            share: &share,
            last_committed: Some(Epoch(u64::MAX)),
        },
    };
    let mut buf = vec![0; wire::MAX_PEER_MSG_LEN];
    let bytes = wire::encode_peer_msg(&msg, &mut buf).expect("largest message encodes");
    assert_eq!(bytes.len(), wire::MAX_PEER_MSG_LEN);
    fs::write(out.join("largest.peer-msg"), bytes).expect("write message");

    let configs = [u64::MAX - 2, u64::MAX - 1, u64::MAX]
        .into_iter()
        .map(|epoch| StoredConfig {
            config: largest_config(epoch),
            share: Some(share.clone()),
        })
        .collect();
    let mut lrtq_share = [0u8; tq_core::limits::LRTQ_SHARE_LEN];
    lrtq_share[0] = 255;
    lrtq_share[1] = 7;
    let state = PersistentState::try_from(StateFields {
        lrtq: Some(LrtqShareData {
            rack_id: RackId([0xff; 16]),
            threshold: LrtqThreshold::new(MAX_LRTQ_THRESHOLD).expect("LRTQ threshold"),
            share: LrtqShare::from_bytes(&lrtq_share).expect("LRTQ share"),
            share_digests: (0..LRTQ_TOTAL_SHARES)
                .map(|i| ShareDigest([i as u8; 32]))
                .collect(),
        }),
        configs,
        latest_committed: Some(Epoch(u64::MAX - 2)),
        expunged: Some(Expunged {
            epoch: Epoch(u64::MAX),
            from: longest_id(1),
        }),
    })
    .expect("largest state");
    let mut buf = vec![0; wire::MAX_PERSISTENT_STATE_LEN];
    let bytes = wire::encode_persistent_state(&state, &mut buf).expect("largest state encodes");
    assert_eq!(bytes.len(), wire::MAX_PERSISTENT_STATE_LEN);
    fs::write(out.join("largest.state"), bytes).expect("write state");
}

/// A platform id with both fields at their longest, distinct per `i`.
fn longest_id(i: usize) -> PlatformId {
    PlatformId::new(&"P".repeat(32), &format!("{i:0>32}")).expect("platform id")
}

/// A configuration with every field at its largest: 32 members, the
/// longest ids, 16 sealed secrets.
fn largest_config(epoch: u64) -> Configuration {
    let members: Members = (0..MAX_MEMBERS)
        .map(|i| Member {
            id: longest_id(i),
            share_digest: ShareDigest([0xff; 32]),
        })
        .collect();
    let sealed = EncryptedRackSecrets::from_parts([0xaa; 32], &[0xbb; MAX_SEALED_LEN])
        .expect("sealed secrets");
    Configuration::new(ConfigFields {
        rack_id: RackId([0xff; 16]),
        epoch: Epoch(epoch),
        coordinator: longest_id(0),
        members,
        threshold: Threshold::new(31).expect("threshold"),
        encrypted_rack_secrets: Some(sealed),
    })
    .expect("largest configuration")
}
