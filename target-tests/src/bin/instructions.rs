//! Instruction counts on the Cortex-M7 (QEMU, `-icount shift=0`; see
//! `tq_target_tests::icount`) of the core's costly calls, each at the sizes
//! that matter, with every result checked:
//!
//! - Shamir `split`, `combine` and `compute_share` at (n, k) = (32, 31),
//!   (32, 17) and (8, 5): `combine` from the first `k` shares,
//!   `compute_share` of share `n` from the first `k`;
//! - LRTQ `combine_lrtq` at (32, 17) and (8, 5), from the shares `vsss-rs`
//!   3.3.4 made (build script);
//! - sealing and opening 16 retained secrets (the most a configuration
//!   carries);
//! - Nexus's authority (`tq_core::authority`): one request verification by
//!   the node (`NodeCtx::verify_request`) of a commit and of the largest
//!   `prepare_and_commit` (the configuration of the largest peer message),
//!   and one answer tag (`NodeCtx::tag_answer`) of a commit's answer;
//! - the codec calls at their worst: decoding the largest peer message,
//!   restoring the largest persistent state in place (as at boot), encoding
//!   it back a storage page at a time (as after every change), and sorting
//!   a Nexus request's 32 members given in reverse order (the member set a
//!   request decodes into is sorted by `MemberSet`'s insertion sort).
//!
//! Prints one `icount: <call>: N instructions` line per measurement, then
//! `budget: instructions, worst codec call: N (call)`, which
//! `tools/budgets.py` checks.
#![no_std]
#![no_main]

use core::fmt::Write;
use core::hint::black_box;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use subtle::ConstantTimeEq;
use tq_core::api::{CommitOutcome, CommitRequest};
use tq_core::authority::{NexusCall, SledRequestKey};
use tq_core::crypto::{
    EncryptedRackSecrets, LrtqShare, RackSecret, RetainedSecrets, Share, combine, combine_lrtq,
    compute_share, split,
};
use tq_core::ids::{Epoch, PlatformId, RackId};
use tq_core::limits::{MAX_LRTQ_COMBINE, MAX_MEMBERS, MAX_RETAINED_SECRETS};
use tq_core::member_set::MemberSet;
use tq_core::messages::Body;
use tq_core::node::CommitError;
use tq_core::node::NodeCtx;
use tq_core::wire;
use tq_target_tests::icount;
use tq_target_tests::lrtq::{LRTQ_RACK_8, LRTQ_RACK_32, LrtqRack};
use tq_target_tests::worst::Worst;
use tq_target_tests::{fail, pass};

/// The largest peer message and persistent state (build script).
static LARGEST_PEER_MSG: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/largest.peer-msg"));
static LARGEST_STATE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/largest.state"));

const RACK_ID: RackId = RackId([0x5a; 16]);

/// A storage page, as the node binary writes the state.
const STORAGE_PAGE_LEN: usize = 256;

#[cortex_m_rt::entry]
fn main() -> ! {
    match icount::start() {
        Ok(calibrated) => defmt::println!(
            "icount: calibration loop of {=u64} instructions measured {=u64}",
            calibrated.expected,
            calibrated.measured
        ),
        Err(e) => {
            defmt::error!("icount: {}", e);
            fail("the timer does not count instructions (QEMU without -icount shift=0?)")
        }
    }
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    for (n, k) in [(32, 31), (32, 17), (8, 5)] {
        shamir(&mut rng, n, k);
    }
    lrtq(&LRTQ_RACK_32, "LRTQ combine (32,17)");
    lrtq(&LRTQ_RACK_8, "LRTQ combine (8,5)");
    sealing(&mut rng);

    authority();

    let mut codec: Worst<8> = Worst::new();
    decode_largest_peer_msg(&mut codec);
    largest_state(&mut codec);
    reversed_member_sort(&mut codec);
    let (call, instructions) = codec.worst();
    defmt::println!(
        "budget: instructions, worst codec call: {=u64} ({=str})",
        instructions,
        call
    );
    defmt::println!("instruction counts done");
    pass()
}

/// Prints one measurement.
fn report(call: &str, instructions: u64) {
    defmt::println!("icount: {=str}: {=u64} instructions", call, instructions);
}

/// `split`, `combine` and `compute_share` at `(n, k)`.
#[inline(never)]
fn shamir(rng: &mut ChaCha20Rng, n: usize, k: usize) {
    let Ok(secret) = RackSecret::generate(rng) else {
        fail("rack secret");
    };
    let mut shares: heapless::Vec<Share, MAX_MEMBERS> = heapless::Vec::new();
    let (split, instructions) =
        icount::count(|| split(&secret, black_box(k), black_box(n), rng, &mut shares));
    if split.is_err() || shares.len() != n {
        fail("split");
    }
    defmt::println!(
        "icount: split ({=usize},{=usize}): {=u64} instructions",
        n,
        k,
        instructions
    );

    let given = shares.get(..k).unwrap_or_else(|| fail("shares"));
    let (combined, instructions) = icount::count(|| combine(black_box(given)));
    match combined {
        Ok(rebuilt) if bool::from(rebuilt.expose_secret().ct_eq(secret.expose_secret())) => {}
        _ => fail("combine"),
    }
    defmt::println!(
        "icount: combine ({=usize},{=usize}): {=u64} instructions",
        n,
        k,
        instructions
    );

    let last = shares.last().unwrap_or_else(|| fail("shares"));
    let (computed, instructions) =
        icount::count(|| compute_share(black_box(given), black_box(last.x())));
    match computed {
        Ok(share) if bool::from(share.expose_y().ct_eq(last.expose_y())) => {}
        _ => fail("compute_share"),
    }
    defmt::println!(
        "icount: compute_share ({=usize},{=usize}): {=u64} instructions",
        n,
        k,
        instructions
    );
}

/// `combine_lrtq` from the first threshold of `rack`'s shares.
#[inline(never)]
fn lrtq(rack: &LrtqRack, call: &str) {
    let mut shares: heapless::Vec<LrtqShare, MAX_LRTQ_COMBINE> = heapless::Vec::new();
    for sled in 0..usize::from(rack.threshold) {
        let Ok(share) = rack.share(sled) else {
            fail("LRTQ share");
        };
        if shares.push(share).is_err() {
            fail("too many LRTQ shares");
        }
    }
    let (combined, instructions) = icount::count(|| combine_lrtq(black_box(&shares)));
    match combined {
        Ok(secret) if bool::from(secret.expose_secret().ct_eq(rack.secret)) => {}
        _ => fail("LRTQ combine"),
    }
    report(call, instructions);
}

/// Sealing and opening the most retained secrets a configuration carries.
#[inline(never)]
fn sealing(rng: &mut ChaCha20Rng) {
    let mut old = RetainedSecrets::new();
    for epoch in 1..=MAX_RETAINED_SECRETS as u64 {
        let pushed = RackSecret::generate(rng)
            .ok()
            .is_some_and(|secret| old.push(Epoch(epoch), secret).is_ok());
        if !pushed {
            fail("retained secret");
        }
    }
    let epoch = Epoch(MAX_RETAINED_SECRETS as u64 + 1);
    let Ok(secret) = RackSecret::generate(rng) else {
        fail("rack secret");
    };
    let (sealed, instructions) = icount::count(|| {
        EncryptedRackSecrets::encrypt(rng, &RACK_ID, black_box(epoch), &secret, black_box(&old))
    });
    let Ok(sealed) = sealed else {
        fail("seal");
    };
    report("seal 16 retained secrets", instructions);
    let (opened, instructions) =
        icount::count(|| black_box(&sealed).decrypt(&RACK_ID, epoch, &secret));
    if opened.map(|opened| opened.len()) != Ok(MAX_RETAINED_SECRETS) {
        fail("open");
    }
    report("open 16 retained secrets", instructions);
}

/// One request verification and one answer tag, each checked: a commit and
/// the largest configuration verified, a tampered tag refused, the
/// commit's answer tagged as Nexus checks it.
#[inline(never)]
fn authority() {
    let Ok(id) = PlatformId::new("913-0000019", "sled-0") else {
        fail("platform id");
    };
    let Some(ctx) = cortex_m::singleton!(: NodeCtx = NodeCtx::new(id.clone())) else {
        fail("context slot taken");
    };
    let key = SledRequestKey::from_bytes(RACK_ID, [0x3c; 32]);
    ctx.set_request_key(key.clone());
    let commit = CommitRequest {
        rack_id: RACK_ID,
        epoch: Epoch(7),
    };
    let Ok(auth) = key.authorize(&id, [0x11; 16], &commit) else {
        fail("authorize");
    };
    let (verified, instructions) = icount::count(|| {
        ctx.verify_request(black_box(&auth), black_box(&commit))
            .ok()
    });
    let Some(verified) = verified else {
        fail("a genuine commit request was refused");
    };
    report("verify_request, commit", instructions);
    let answer: Result<CommitOutcome, CommitError> = Ok(CommitOutcome::Committed);
    let (tag, instructions) =
        icount::count(|| ctx.tag_answer(black_box(&verified), black_box(&answer)));
    let authentic = tag.is_some_and(|tag| {
        key.verify_answer(&id, NexusCall::Commit, &auth.nonce, &answer, &tag)
            .is_ok()
    });
    if !authentic {
        fail("the commit's answer tag");
    }
    report("tag_answer, commit", instructions);

    let Ok(msg) = wire::decode_peer_msg(LARGEST_PEER_MSG) else {
        fail("the largest peer message does not decode");
    };
    let Body::Prepare { config, .. } = &msg.body else {
        fail("the largest peer message is not a prepare");
    };
    let rack = config.rack_id();
    let key = SledRequestKey::from_bytes(rack, [0x3c; 32]);
    ctx.set_request_key(key.clone());
    let Ok(mut auth) = key.authorize(&id, [0x22; 16], config) else {
        fail("authorize");
    };
    let (verified, instructions) = icount::count(|| {
        ctx.verify_request(black_box(&auth), black_box(config))
            .is_ok()
    });
    if !verified {
        fail("a genuine prepare_and_commit request was refused");
    }
    report("verify_request, largest prepare_and_commit", instructions);
    auth.tag[0] ^= 1;
    if ctx.verify_request(&auth, config).is_ok() {
        fail("a tampered tag passed");
    }
}

fn record(codec: &mut Worst<8>, call: &'static str, instructions: u64) {
    report(call, instructions);
    if !codec.record(call, instructions) {
        fail("codec table full");
    }
}

#[inline(never)]
fn decode_largest_peer_msg(codec: &mut Worst<8>) {
    let (decoded, instructions) =
        icount::count(|| wire::decode_peer_msg(black_box(LARGEST_PEER_MSG)).is_ok());
    if !decoded {
        fail("the largest peer message does not decode");
    }
    record(codec, "decode_peer_msg, largest", instructions);
}

/// Restores the largest state into a context in static memory, in place,
/// then encodes it back a page at a time.
#[inline(never)]
fn largest_state(codec: &mut Worst<8>) {
    let Ok(id) = PlatformId::new("913-0000019", "sled-0") else {
        fail("platform id");
    };
    let Some(ctx) = cortex_m::singleton!(: NodeCtx = NodeCtx::new(id)) else {
        fail("context slot taken");
    };
    let (restored, instructions) =
        icount::count(|| ctx.restore_state(black_box(LARGEST_STATE)).is_ok());
    if !restored {
        fail("the largest state does not restore");
    }
    record(codec, "NodeCtx::restore_state, largest", instructions);

    let mut page = [0u8; STORAGE_PAGE_LEN];
    let mut written = 0;
    let (encoded, instructions) = icount::count(|| {
        wire::encode_persistent_state_chunked(ctx.persistent_state(), &mut page, |bytes| {
            written += black_box(bytes).len();
            Ok::<(), ()>(())
        })
        .is_ok()
    });
    if !encoded || written != LARGEST_STATE.len() {
        fail("the largest state does not encode back");
    }
    record(
        codec,
        "encode_persistent_state_chunked, largest",
        instructions,
    );
}

/// The worst case of the member sort every decoded Nexus request runs: 32
/// of the longest ids, in reverse order.
#[inline(never)]
fn reversed_member_sort(codec: &mut Worst<8>) {
    let Some(ids) = cortex_m::singleton!(: heapless::Vec<PlatformId, MAX_MEMBERS> =
        heapless::Vec::new())
    else {
        fail("id slot taken");
    };
    for i in (0..MAX_MEMBERS).rev() {
        let mut serial: heapless::String<32> = heapless::String::new();
        let id = write!(serial, "{i:0>32}")
            .ok()
            .and_then(|()| PlatformId::new("PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP", &serial).ok());
        if id.is_none_or(|id| ids.push(id).is_err()) {
            fail("platform id");
        }
    }
    let (set, instructions) = icount::count(|| MemberSet::new(black_box(ids.iter())));
    let sorted = set.is_ok_and(|set| set.as_slice().is_sorted() && set.len() == MAX_MEMBERS);
    if !sorted {
        fail("member sort");
    }
    record(
        codec,
        "MemberSet::new, 32 longest ids reversed",
        instructions,
    );
}
