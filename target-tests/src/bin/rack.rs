//! The rack scenario on the Cortex-M7: LRTQ racks of 4 and 7 sleds plus
//! one spare each (5 and 8 sleds in all) in the deterministic harness
//! (`tq-harness`), from LRTQ shares that the build script split with
//! `vsss-rs` 3.3.4, through
//!
//! 1. the LRTQ upgrade (epoch 2): the coordinator rebuilds the LRTQ secret
//!    from the members' LRTQ shares;
//! 2. a reconfiguration that adds the spare sled (epoch 3);
//! 3. a reconfiguration that removes a member (epoch 4) while another is
//!    down: Nexus commits without it, and when it comes back it answers
//!    `NotPrepared` and catches up through `prepare_and_commit`;
//! 4. the removed sled asking for shares and learning it is expunged;
//! 5. every member loading the secret of every committed epoch: all agree,
//!    and epoch 1 is the secret the build script split;
//! 6. the harness's own liveness check.
//!
//! The harness checks every safety invariant after every step. Every node
//! call the harness makes runs through a probe that measures its stack and
//! counts its instructions (`measure_node_call`), and so do the codec calls
//! a caller makes itself; the run prints the deepest and the longest call
//! of each kind and exits non-zero on any failure.
#![no_std]
#![no_main]

use core::cell::RefCell;
use core::mem::MaybeUninit;

use cortex_m::interrupt::Mutex;

use static_cell::ConstStaticCell;
use subtle::ConstantTimeEq;
use tq_core::crypto::RackSecret;
use tq_core::ids::{Epoch, PlatformId, RackId};
use tq_core::node::{CtxSlot, NodeCtx};
use tq_core::persistent::LrtqShareData;
use tq_core::wire;
use tq_harness::nexus::SimNexus;
use tq_harness::{Action, Change, Cluster, RackStart, Violation};
use tq_target_tests::icount;
use tq_target_tests::lrtq::{LRTQ_RACK_4, LRTQ_RACK_7, LrtqRack};
use tq_target_tests::stack::{self, Measured};
use tq_target_tests::worst::Worst;
use tq_target_tests::{fail, pass};

const RACK_ID: RackId = RackId([0x5a; 16]);

/// Every random choice of a run derives from this.
const SEED: u64 = 0x7471_2d74_6172_6765;

/// Bounds on the driving loops, so a livelock fails instead of hanging.
const MAX_DELIVERIES: usize = 4096;
const MAX_ROUNDS: usize = 16;

/// The threshold byte Nexus's model maps to `K` (`2 + t % (n - 2)`): 2
/// gives `K = 4` of 7 or 8 members and `K = 3` of 5.
const THRESHOLD_PICK: u8 = 2;

/// Why the scenario failed.
enum Failure {
    Harness(Violation),
    Setup(tq_target_tests::lrtq::LrtqDataError),
    Step(&'static str),
}

impl From<Violation> for Failure {
    fn from(v: Violation) -> Self {
        Self::Harness(v)
    }
}

impl From<tq_target_tests::lrtq::LrtqDataError> for Failure {
    fn from(e: tq_target_tests::lrtq::LrtqDataError) -> Self {
        Self::Setup(e)
    }
}

/// The context each sled's disk is restored into (see `main`).
static BOOT_CTX: ConstStaticCell<CtxSlot> = ConstStaticCell::new(CtxSlot::new());

#[cortex_m_rt::entry]
fn main() -> ! {
    if let Err(e) = icount::start() {
        defmt::error!("icount: {}", e);
        fail("the timer does not count instructions (QEMU without -icount shift=0?)");
    }
    defmt::println!(
        "size_of::<Cluster>() = {=usize} bytes ({=usize} sleds at most)",
        core::mem::size_of::<Cluster>(),
        <Cluster>::CAPACITY
    );
    let Some(slot) = cortex_m::singleton!(: MaybeUninit<Cluster> = MaybeUninit::uninit()) else {
        fail("cluster slot taken");
    };
    let mut home = Home::Empty(slot);
    // The context each sled's disk is restored into, as at boot: in its
    // static slot, like a firmware's (it holds the 20 KiB state).
    let Ok(sled_id) = PlatformId::new("913-0000019", "restored") else {
        fail("platform id");
    };
    let Some(boot_slot) = BOOT_CTX.try_take() else {
        fail("context slot taken");
    };
    let boot_ctx = boot_slot.boot(sled_id);
    let mut whole_run = 0;
    for rack in [&LRTQ_RACK_4, &LRTQ_RACK_7] {
        let (cluster, secret) = install(home, rack).unwrap_or_else(|f| report_failure(&f));
        cluster.set_call_probe(measure_node_call);
        // Set-up moved clusters around on the stack; measure from here.
        stack::paint_below_here();
        if let Err(failure) = run(cluster, rack, &secret, boot_ctx) {
            report_failure(&failure);
        }
        whole_run = whole_run.max(stack::deepest_since_paint());
        home = Home::Full(cluster);
    }
    let exhausted = with_report(|report| {
        report.print();
        report.exhausted
    });
    defmt::println!(
        "stack: whole scenario, harness included: {=usize} bytes",
        whole_run
    );
    if exhausted != Some(false) {
        fail("a call used the whole measuring window, or a report table is full");
    }
    defmt::println!("rack scenario passed");
    pass()
}

fn report_failure(failure: &Failure) -> ! {
    match failure {
        Failure::Harness(v) => {
            defmt::error!("harness: {}", defmt::Display2Format(v));
        }
        Failure::Setup(e) => defmt::error!("LRTQ set-up data: {}", e),
        Failure::Step(why) => defmt::error!("{=str}", why),
    }
    fail("rack scenario")
}

/// Where the cluster lives: a static, since it is far too big for the
/// stack.
enum Home {
    Empty(&'static mut MaybeUninit<Cluster>),
    Full(&'static mut Cluster),
}

/// Puts a new cluster for `rack` in its home (dropping the previous one).
/// Not inlined, so that the temporaries of building a cluster stay out of
/// `main`'s frame, above which every measurement starts.
#[inline(never)]
fn install(home: Home, rack: &LrtqRack) -> Result<(&'static mut Cluster, RackSecret), Failure> {
    let (fresh, secret) = set_up(rack)?;
    let cluster = match home {
        Home::Empty(slot) => slot.write(fresh),
        Home::Full(old) => {
            *old = fresh;
            old
        }
    };
    Ok((cluster, secret))
}

/// A new cluster for `rack`, plus the LRTQ secret.
fn set_up(rack: &LrtqRack) -> Result<(Cluster, RackSecret), Failure> {
    let lrtq_sleds = rack.sleds();
    let mut data: heapless::Vec<LrtqShareData, { <Cluster>::CAPACITY }> = heapless::Vec::new();
    for sled in 0..lrtq_sleds {
        data.push(rack.share_data(RACK_ID, sled)?)
            .map_err(|_| Failure::Step("too many LRTQ sleds"))?;
    }
    let secret = rack.rack_secret()?;
    defmt::println!(
        "rack: {=usize} LRTQ sleds (threshold {=u8}) and one spare",
        lrtq_sleds,
        rack.threshold
    );
    let start = RackStart::Lrtq {
        data: &data,
        secret: &secret,
    };
    let cluster = Cluster::new(SEED, RACK_ID, lrtq_sleds + 1, lrtq_sleds, start)?;
    Ok((cluster, secret))
}

fn run(
    cluster: &mut Cluster,
    rack: &LrtqRack,
    lrtq_secret: &RackSecret,
    boot_ctx: &mut NodeCtx,
) -> Result<(), Failure> {
    let lrtq_sleds = rack.sleds();
    let spare = lrtq_sleds;

    // 1. The LRTQ upgrade.
    reconfigure(cluster, Change::Same)?;
    expect(
        cluster.nexus().stats().upgrades == 1,
        "the upgrade did not commit",
    )?;
    expect_latest(cluster.nexus(), Epoch(2))?;
    defmt::println!("step: LRTQ upgrade committed epoch 2");

    // 2. Add the spare.
    reconfigure(cluster, Change::Add(0))?;
    expect_latest(cluster.nexus(), Epoch(3))?;
    expect(
        cluster.nexus().members() & (1 << spare) != 0,
        "the spare was not added",
    )?;
    defmt::println!("step: added sled {=usize} at epoch 3", spare);

    // 3. Remove sled 2 while sled 1 is down; sled 1 misses the prepare.
    let (down, removed) = (1, 2);
    cluster.apply(&Action::Crash(down as u8))?;
    cluster.apply(&Action::Reconfigure {
        change: Change::Remove(removed as u8),
        coordinator: 0,
        threshold: THRESHOLD_PICK,
    })?;
    drive_to_commit(cluster)?;
    expect_latest(cluster.nexus(), Epoch(4))?;
    expect(
        cluster.nexus().members() & (1 << removed) == 0,
        "the member was not removed",
    )?;
    commit_everywhere(cluster)?;
    expect(
        cluster.disk_summary(down)?.latest_committed == Some(Epoch(3)),
        "the sled that was down moved on",
    )?;
    cluster.apply(&Action::Restart(down as u8))?;
    deliver_all(cluster)?;
    let before = cluster.nexus().stats().prepare_and_commits;
    commit_everywhere(cluster)?;
    expect(
        cluster.nexus().stats().prepare_and_commits == before + 1,
        "no prepare_and_commit",
    )?;
    let caught_up = cluster.disk_summary(down)?;
    expect(
        caught_up.latest_committed == Some(Epoch(4)) && caught_up.holds_share(Epoch(4)),
        "the sled that missed the prepare did not catch up",
    )?;
    defmt::println!(
        "step: removed sled {=usize} at epoch 4; sled {=usize} caught up through prepare_and_commit",
        removed,
        down
    );

    // 4. The removed sled learns it is expunged when it asks for shares.
    load(cluster, removed, Epoch(3))?;
    deliver_all(cluster)?;
    expect(
        cluster.disk_summary(removed)?.expunged == Some(Epoch(4)),
        "the removed sled was not told it is expunged",
    )?;
    defmt::println!("step: sled {=usize} learned it is expunged", removed);

    // 5. Every member loads every committed epoch's secret.
    let members = cluster.nexus().members();
    let mut first: [Option<RackSecret>; 5] = Default::default();
    for epoch in 1..=4u64 {
        for sled in (0..cluster.sled_count()).filter(|s| members & (1 << s) != 0) {
            let secret = load_until_done(cluster, sled, Epoch(epoch))?;
            let slot = first
                .get_mut(epoch as usize)
                .ok_or(Failure::Step("epoch out of range"))?;
            match slot {
                None => *slot = Some(secret),
                Some(seen) => expect(
                    bool::from(seen.expose_secret().ct_eq(secret.expose_secret())),
                    "two members loaded different secrets",
                )?,
            }
            // And through the harness, which records and compares too.
            expect(
                cluster.load_secret(sled, Epoch(epoch))? == Some(Ok(true)),
                "the harness's load disagreed",
            )?;
        }
    }
    let epoch_one = first
        .get(1)
        .and_then(Option::as_ref)
        .ok_or(Failure::Step("epoch 1 not loaded"))?;
    expect(
        bool::from(epoch_one.expose_secret().ct_eq(lrtq_secret.expose_secret())),
        "epoch 1 is not the LRTQ secret the build script split",
    )?;
    defmt::println!(
        "step: {=u32} members loaded epochs 1-4 and agree; epoch 1 is the LRTQ secret",
        members.count_ones()
    );

    // What the caller does with the core's encodings besides node calls:
    // read the state back at boot, store it after a change.
    measure_state_codec(cluster, boot_ctx)?;

    // 6. The harness's liveness check.
    cluster.check_liveness()?;
    let net = cluster.network().stats();
    defmt::println!(
        "rack of {=usize} sleds: done ({=u32} actions, {=u32} messages delivered)",
        cluster.sled_count(),
        cluster.stats().actions,
        net.delivered
    );
    Ok(())
}

fn expect(ok: bool, why: &'static str) -> Result<(), Failure> {
    if ok { Ok(()) } else { Err(Failure::Step(why)) }
}

fn expect_latest(nexus: &SimNexus, epoch: Epoch) -> Result<(), Failure> {
    expect(
        nexus.latest_committed().map(|c| c.epoch) == Some(epoch),
        "unexpected latest committed epoch",
    )
}

/// Starts a reconfiguration (coordinated by the first eligible sled),
/// drives it to a commit, and has every member commit.
fn reconfigure(cluster: &mut Cluster, change: Change) -> Result<(), Failure> {
    cluster.apply(&Action::Reconfigure {
        change,
        coordinator: 0,
        threshold: THRESHOLD_PICK,
    })?;
    drive_to_commit(cluster)?;
    commit_everywhere(cluster)
}

/// Delivers and polls until Nexus commits the pending epoch.
fn drive_to_commit(cluster: &mut Cluster) -> Result<(), Failure> {
    for _ in 0..MAX_ROUNDS {
        deliver_all(cluster)?;
        cluster.apply(&Action::NexusPoll)?;
        if cluster.nexus().pending().is_none() {
            return Ok(());
        }
    }
    Err(Failure::Step("Nexus never committed"))
}

/// Nexus tells every member of the latest configuration that is up to
/// commit (handing it the configuration if it missed the prepare).
fn commit_everywhere(cluster: &mut Cluster) -> Result<(), Failure> {
    for _ in 0..MAX_ROUNDS {
        let waiting = cluster
            .nexus()
            .latest_committed()
            .map_or(0, |c| c.members & !cluster.nexus().commit_confirmed());
        let up = (0..cluster.sled_count())
            .filter(|s| waiting & (1 << s) != 0)
            .filter(|s| cluster.sled(*s).is_some_and(|sled| sled.is_up()))
            .count();
        if up == 0 {
            return Ok(());
        }
        // The n-th waiting member: skip the ones that are down.
        let down_before = (0..cluster.sled_count())
            .filter(|s| waiting & (1 << s) != 0)
            .take_while(|s| !cluster.sled(*s).is_some_and(|sled| sled.is_up()))
            .count();
        cluster.apply(&Action::NexusCommit(down_before as u8))?;
        deliver_all(cluster)?;
    }
    Err(Failure::Step("members never committed"))
}

/// Loads `epoch`'s secret on `sled`, delivering messages until it is there.
fn load_until_done(
    cluster: &mut Cluster,
    sled: usize,
    epoch: Epoch,
) -> Result<RackSecret, Failure> {
    for _ in 0..MAX_ROUNDS {
        if let Some(secret) = load(cluster, sled, epoch)? {
            return Ok(secret);
        }
        deliver_all(cluster)?;
    }
    Err(Failure::Step("a member never loaded its secret"))
}

/// One `load_rack_secret` call on `sled`, measured.
fn load(cluster: &mut Cluster, sled: usize, epoch: Epoch) -> Result<Option<RackSecret>, Failure> {
    let outcome = cluster.call(sled, |node, ctx, _, _| {
        measure(|| node.load_rack_secret(ctx, epoch))
    })?;
    let Some((result, cost)) = outcome else {
        return Err(Failure::Step("sled is down"));
    };
    record_node("load_rack_secret", cost);
    cluster.check()?;
    match result {
        Ok(secret) => Ok(secret),
        Err(tq_core::node::LoadSecretError::Expunged(_)) => Ok(None),
        Err(_) => Err(Failure::Step("load_rack_secret refused")),
    }
}

/// Measures restoring each sled's disk into a context in place (as at
/// boot) and encoding the state back (as after every change), at the end
/// of the scenario, when the disks hold the most.
fn measure_state_codec(cluster: &mut Cluster, ctx: &mut NodeCtx) -> Result<(), Failure> {
    let mut buf = [0u8; wire::MAX_PERSISTENT_STATE_LEN];
    for index in 0..cluster.sled_count() {
        let Some(sled) = cluster.sled(index) else {
            continue;
        };
        let (restored, cost) = measure(|| ctx.restore_state(sled.disk()));
        record_codec("NodeCtx::restore_state", cost);
        restored.map_err(|_| Failure::Step("a disk does not decode"))?;
        // The same disk read back a page at a time, as from flash that is
        // not memory-mapped.
        let mut pages = Pages(sled.disk());
        let len = sled.disk().len();
        let (restored, cost) = measure(|| ctx.restore_state_from(&mut pages, len));
        record_codec("NodeCtx::restore_state_from", cost);
        restored.map_err(|_| Failure::Step("a disk does not decode from pages"))?;
        let (encoded, cost) = measure(|| {
            wire::encode_persistent_state(ctx.persistent_state(), &mut buf).map(|bytes| bytes.len())
        });
        record_codec("encode_persistent_state", cost);
        expect(
            encoded.ok() == Some(sled.disk().len()),
            "a state does not encode back to its disk",
        )?;
    }
    Ok(())
}

/// A sled's disk as storage read a piece at a time.
struct Pages<'a>(&'a [u8]);

impl wire::PageReader for Pages<'_> {
    type Error = ();

    fn read(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), ()> {
        let end = offset.checked_add(buf.len()).ok_or(())?;
        buf.copy_from_slice(self.0.get(offset..end).ok_or(())?);
        Ok(())
    }
}

/// Delivers every message in flight, oldest first, until none is left,
/// checking every invariant after each (`Cluster::deliver`, whose
/// `handle_bytes` call the probe measures under the message's kind).
/// Before each, measures what a caller does first with the bytes it
/// received: decode them.
fn deliver_all(cluster: &mut Cluster) -> Result<(), Failure> {
    for _ in 0..MAX_DELIVERIES {
        let Some(msg) = cluster.network().in_flight().next() else {
            return Ok(());
        };
        let bytes = msg.bytes;
        record_codec(
            "decode_peer_msg",
            measure(|| wire::decode_peer_msg(bytes).is_ok()).1,
        );
        cluster.deliver(0)?;
    }
    Err(Failure::Step("the network never went quiet"))
}

/// The harness's call probe: runs the node call, measured, and records it
/// under its name.
fn measure_node_call(call: &'static str, run: &mut dyn FnMut()) {
    let ((), cost) = measure(run);
    record_node(call, cost);
}

/// What one call cost: its stack (painted) and its instructions.
struct Cost {
    stack: Measured,
    instructions: u64,
}

/// Runs `f` and measures what it cost. The instructions are counted inside
/// the painted window, so that painting and scanning are not counted; the
/// two timer reads add a few bytes to the stack figure, and a few
/// instructions to the count.
#[inline(always)]
fn measure<T>(f: impl FnOnce() -> T) -> (T, Cost) {
    let ((out, instructions), stack) = stack::measure(|| icount::count(f));
    (
        out,
        Cost {
            stack,
            instructions,
        },
    )
}

/// The worst cost of every kind of call so far. A static, since the
/// harness's probe (a plain `fn`) records into it.
static REPORT: Mutex<RefCell<Report>> = Mutex::new(RefCell::new(Report::new()));

/// Runs `f` on the report; `None` only if it is already borrowed (never:
/// nothing records while the report is printed).
fn with_report<T>(f: impl FnOnce(&mut Report) -> T) -> Option<T> {
    cortex_m::interrupt::free(|cs| {
        let mut report = REPORT.borrow(cs).try_borrow_mut().ok()?;
        Some(f(&mut report))
    })
}

fn record_node(kind: &'static str, cost: Cost) {
    with_report(|report| report.exhausted |= !report.node.record(kind, &cost));
}

fn record_codec(kind: &'static str, cost: Cost) {
    with_report(|report| report.exhausted |= !report.codec.record(kind, &cost));
}

/// The worst cost seen per kind of call: node calls, and the wire
/// encodings the caller runs itself (state and message codecs).
struct Report {
    node: Costs,
    codec: Costs,
    /// A call used the whole stack window, or a table was full.
    exhausted: bool,
}

/// Per kind of call: the deepest stack and the most instructions.
struct Costs {
    stack: Worst<24>,
    instructions: Worst<24>,
}

impl Costs {
    const fn new() -> Self {
        Self {
            stack: Worst::new(),
            instructions: Worst::new(),
        }
    }

    /// False if the call exhausted the stack window or a table is full.
    fn record(&mut self, kind: &'static str, cost: &Cost) -> bool {
        let stack = self.stack.record(kind, cost.stack.bytes as u64);
        let instructions = self.instructions.record(kind, cost.instructions);
        stack && instructions && !cost.stack.exhausted
    }

    fn print(&self, what: &str) {
        for (kind, bytes, calls) in self.stack.iter() {
            defmt::println!(
                "stack: {=str}: {=u64} bytes at most ({=u32} calls)",
                kind,
                bytes,
                calls
            );
        }
        let (kind, bytes) = self.stack.worst();
        defmt::println!(
            "budget: stack, deepest {=str}: {=u64} bytes ({=str})",
            what,
            bytes,
            kind
        );
        for (kind, instructions, calls) in self.instructions.iter() {
            defmt::println!(
                "icount: {=str}: {=u64} instructions at most ({=u32} calls)",
                kind,
                instructions,
                calls
            );
        }
        let (kind, instructions) = self.instructions.worst();
        defmt::println!(
            "budget: instructions, worst {=str}: {=u64} ({=str})",
            what,
            instructions,
            kind
        );
    }
}

impl Report {
    const fn new() -> Self {
        Self {
            node: Costs::new(),
            codec: Costs::new(),
            exhausted: false,
        }
    }

    fn print(&self) {
        self.node.print("node call");
        self.codec.print("codec call");
    }
}
