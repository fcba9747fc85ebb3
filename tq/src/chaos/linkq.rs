//! Loss, delay and reordering of a sled's outgoing packets, made in user
//! space where the kernel has no netem (this project's build machine:
//! `CONFIG_NET_SCH_NETEM` not set).
//!
//! An `ip6tables-legacy` rule in the sled's namespace hands every packet
//! leaving its interface to an NFQUEUE; a thread here, moved into that
//! namespace (a netlink socket talks to the queues of the namespace it was
//! made in), decides each packet as netem would: it drops the fault's
//! share of them, lets its reordering share through at once (past the
//! packets held), and holds the others for the delay plus or minus the
//! jitter. Healing removes the rule, then lets every held packet go.
//!
//! `ip6tables-legacy`, not `nft`: nft's `queue` statement needs
//! `CONFIG_NFT_QUEUE`, which that kernel lacks, while the xtables `NFQUEUE`
//! target is there. The rule carries `--queue-bypass`, so a packet passes
//! if this thread is gone rather than the sled being cut off by accident.
//! The choices come from the run's seed; the timing of the packets
//! themselves does not, so which packets are dropped or overtaken does
//! not replay exactly (netem's choices do not either).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nfq::{Message, Queue, Verdict};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use super::plan::{Dice, LinkFault};

/// The program that adds and removes the rule.
pub const IP6TABLES: &str = "ip6tables-legacy";

/// How long the thread sleeps when no packet waits and none is due.
const IDLE: Duration = Duration::from_micros(500);

/// What a held link did to its packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounts {
    /// Packets let through (at once or after their delay).
    pub passed: u64,
    /// Packets dropped.
    pub dropped: u64,
    /// Packets let through after one that arrived later.
    pub overtaken: u64,
}

/// The arguments of [`IP6TABLES`] that add (`action` `-A`) or delete
/// (`-D`) the rule queueing what leaves `interface` to `queue`.
pub fn rule(action: &str, interface: &str, queue: u16) -> Vec<String> {
    [
        action,
        "OUTPUT",
        "-o",
        interface,
        "-j",
        "NFQUEUE",
        "--queue-num",
        &queue.to_string(),
        "--queue-bypass",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// A queue being served by its thread.
pub struct HeldLink {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<io::Result<LinkCounts>>,
}

impl HeldLink {
    /// Serves NFQUEUE `queue` of the network namespace at `netns` (a
    /// `/run/netns/` file) with `fault`. Returns once the queue is bound,
    /// so a rule added after it never finds the queue missing.
    pub fn start(netns: &Path, queue: u16, fault: LinkFault, dice: Dice) -> io::Result<Self> {
        let namespace = std::fs::File::open(netns)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (bound_tx, bound_rx) = mpsc::sync_channel(1);
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("linkq-{queue}"))
            .spawn(move || {
                let bound = move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&namespace),
                    Some(LinkNameSpaceType::Network),
                )
                .map_err(io::Error::from)
                .and_then(|()| bind(queue));
                match bound {
                    Ok(nfq) => {
                        let _ = bound_tx.send(Ok(()));
                        serve(nfq, queue, fault, dice, &thread_stop)
                    }
                    Err(error) => {
                        let kind = error.kind();
                        let _ = bound_tx.send(Err(error));
                        Err(io::Error::new(kind, "the queue was not bound"))
                    }
                }
            })?;
        let bound = bound_rx
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the queue's thread ended")));
        match bound {
            Ok(()) => Ok(Self { stop, thread }),
            Err(error) => {
                let _ = thread.join();
                Err(error)
            }
        }
    }

    /// Lets every held packet go, unbinds the queue and says what was done.
    /// Remove the rule first: packets queued after this would find no queue
    /// (and pass, by the bypass).
    pub fn release(self) -> io::Result<LinkCounts> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the queue's thread panicked")))
    }
}

fn bind(queue: u16) -> io::Result<Queue> {
    let mut nfq = Queue::open()?;
    nfq.bind(queue)?;
    nfq.set_nonblocking(true);
    Ok(nfq)
}

/// A packet held until `due`; `arrival` orders packets due at once.
struct Held {
    due: Instant,
    arrival: u64,
    message: Message,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.arrival) == (other.due, other.arrival)
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.arrival).cmp(&(other.due, other.arrival))
    }
}

/// Decides and releases packets until `stop`, then releases the rest.
fn serve(
    mut nfq: Queue,
    queue: u16,
    fault: LinkFault,
    mut dice: Dice,
    stop: &AtomicBool,
) -> io::Result<LinkCounts> {
    let mut held = BinaryHeap::new();
    let mut release = Release::default();
    let mut arrivals = 0;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut busy = false;
        loop {
            let mut message = match nfq.recv() {
                Ok(message) => message,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => return Err(error),
            };
            busy = true;
            let arrival = arrivals;
            arrivals += 1;
            if dice.below(100) < fault.loss {
                message.set_verdict(Verdict::Drop);
                nfq.verdict(message)?;
                release.counts.dropped += 1;
            } else if dice.below(100) < fault.reorder {
                release.pass(&mut nfq, arrival, message)?;
            } else {
                let low = fault.delay_ms.saturating_sub(fault.jitter_ms);
                let high = fault.delay_ms.saturating_add(fault.jitter_ms);
                let due = now + Duration::from_millis(dice.between(low, high));
                held.push(Reverse(Held {
                    due,
                    arrival,
                    message,
                }));
            }
        }
        while let Some(Reverse(next)) = held.peek()
            && next.due <= Instant::now()
        {
            if let Some(Reverse(next)) = held.pop() {
                release.pass(&mut nfq, next.arrival, next.message)?;
            }
        }
        if !busy {
            std::thread::sleep(IDLE);
        }
    }
    while let Some(Reverse(next)) = held.pop() {
        release.pass(&mut nfq, next.arrival, next.message)?;
    }
    nfq.unbind(queue)?;
    Ok(release.counts)
}

/// Lets packets through, noting those a later one overtook.
#[derive(Default)]
struct Release {
    counts: LinkCounts,
    /// The latest arrival let through so far.
    latest: Option<u64>,
}

impl Release {
    fn pass(&mut self, nfq: &mut Queue, arrival: u64, mut message: Message) -> io::Result<()> {
        message.set_verdict(Verdict::Accept);
        nfq.verdict(message)?;
        self.counts.passed += 1;
        match self.latest {
            Some(latest) if latest > arrival => self.counts.overtaken += 1,
            _ => self.latest = Some(arrival),
        }
        Ok(())
    }
}
