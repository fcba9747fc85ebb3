//! `tq chaos`'s link faults where the kernel has no netem
//! (tq::chaos::linkq): datagrams sent over a namespace's loopback through
//! a held link arrive late and out of order, or some not at all, as the
//! fault says, and the link's own counts agree with what arrived.
//!
//! Needs root, iproute2 and `ip6tables-legacy` (Debian's `iptables`);
//! where namespaces cannot be made it says so and checks nothing
//! (`SKIPPED`); under CI a missing tool fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use tq::chaos::linkq::{self, HeldLink, LinkCounts};
use tq::chaos::plan::{Dice, LinkFault};
use tq::netns::{cannot_make_namespaces, ip};

const DATAGRAMS: u32 = 200;
const QUEUE: u16 = 7;

/// A namespace with its loopback up, deleted on drop.
struct Namespace(String);

impl Namespace {
    fn new(tag: &str) -> Self {
        let name = format!("tqlq{}{tag}", std::process::id() % 100_000);
        ip(&["netns", "add", &name]).unwrap();
        let namespace = Self(name);
        namespace.exec(&["ip", "link", "set", "lo", "up"]);
        namespace
    }

    fn file(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }

    fn exec(&self, command: &[&str]) {
        let mut args = vec!["netns", "exec", &self.0];
        args.extend_from_slice(command);
        ip(&args).unwrap();
    }

    fn queue_loopback(&self, action: &str) {
        let rule = linkq::rule(action, "lo", QUEUE);
        let mut command = vec![linkq::IP6TABLES];
        command.extend(rule.iter().map(String::as_str));
        self.exec(&command);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

fn can_run() -> bool {
    if let Some(why) = cannot_make_namespaces() {
        eprintln!("SKIPPED (not run, not passed): network namespaces cannot be made here: {why}");
        return false;
    }
    tq_test_fixtures::tools::available(linkq::IP6TABLES, &["-V"], "apt-get install iptables")
}

/// What the receiver saw: each datagram's number and how long after its
/// sending it arrived, in arrival order.
struct Arrivals(Vec<(u32, Duration)>);

impl Arrivals {
    /// Datagrams that arrived after one sent later.
    fn overtaken(&self) -> usize {
        let mut latest = None;
        let mut overtaken = 0;
        for &(number, _) in &self.0 {
            match latest {
                Some(l) if l > number => overtaken += 1,
                _ => latest = Some(number),
            }
        }
        overtaken
    }

    fn median_delay(&self) -> Duration {
        let mut delays: Vec<Duration> = self.0.iter().map(|&(_, d)| d).collect();
        delays.sort();
        delays[delays.len() / 2]
    }
}

/// Sends [`DATAGRAMS`] numbered datagrams over the namespace's loopback
/// through a link held with `fault`, and returns what arrived and what
/// the link counted.
fn send_through(namespace: &Namespace, fault: LinkFault, seed: u64) -> (Arrivals, LinkCounts) {
    let link = HeldLink::start(&namespace.file(), QUEUE, fault, Dice::new(seed, 0)).unwrap();
    namespace.queue_loopback("-A");
    let file = std::fs::File::open(namespace.file()).unwrap();
    let arrivals = std::thread::spawn(move || {
        move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(LinkNameSpaceType::Network),
        )
        .unwrap();
        let receiver = UdpSocket::bind("[::1]:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let sender = UdpSocket::bind("[::1]:0").unwrap();
        let start = Instant::now();
        let mut sent_at = Vec::new();
        for number in 0..DATAGRAMS {
            sent_at.push(start.elapsed());
            sender
                .send_to(&number.to_be_bytes(), receiver.local_addr().unwrap())
                .unwrap();
            std::thread::sleep(Duration::from_micros(500));
        }
        let mut arrivals = Vec::new();
        let mut buf = [0; 4];
        // Until nothing came for half a second: every held datagram is
        // due well before.
        while let Ok(4) = receiver.recv(&mut buf) {
            let number = u32::from_be_bytes(buf);
            let sent = sent_at[number as usize];
            arrivals.push((number, start.elapsed().saturating_sub(sent)));
        }
        Arrivals(arrivals)
    })
    .join()
    .unwrap();
    namespace.queue_loopback("-D");
    (arrivals, link.release().unwrap())
}

#[test]
fn held_packets_arrive_late_and_out_of_order() {
    if !can_run() {
        return;
    }
    let namespace = Namespace::new("d");
    let fault = LinkFault {
        delay_ms: 20,
        jitter_ms: 15,
        ..LinkFault::default()
    };
    let (arrivals, counts) = send_through(&namespace, fault, 1);
    assert_eq!(arrivals.0.len(), DATAGRAMS as usize, "none may be lost");
    assert_eq!(counts.passed, u64::from(DATAGRAMS));
    assert_eq!(counts.dropped, 0);
    let overtaken = arrivals.overtaken();
    assert!(overtaken > 0, "every datagram arrived in order");
    assert_eq!(counts.overtaken, overtaken as u64);
    // Each is held 5 to 35 ms.
    let median = arrivals.median_delay();
    assert!(
        median >= Duration::from_millis(10),
        "median delay {median:?}"
    );
}

#[test]
fn dropped_packets_never_arrive_and_are_counted() {
    if !can_run() {
        return;
    }
    let namespace = Namespace::new("l");
    let fault = LinkFault {
        loss: 40,
        ..LinkFault::default()
    };
    let (arrivals, counts) = send_through(&namespace, fault, 2);
    let arrived = arrivals.0.len() as u64;
    assert_eq!(counts.passed, arrived);
    assert_eq!(counts.dropped, u64::from(DATAGRAMS) - arrived);
    // 40% of 200, give or take.
    assert!((50..=110).contains(&counts.dropped), "{counts:?}");
}
