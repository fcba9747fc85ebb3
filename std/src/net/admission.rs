//! Who may start a TLS handshake with the listener, so that strangers
//! cannot starve the peers.
//!
//! A handshake holds a slot from `accept` until it completes or times out.
//! Slots come from two pools, chosen by the connection's source address:
//!
//! - **The peer reserve**: a source that is the address of a configured
//!   peer gets up to [`HANDSHAKES_PER_PEER`] slots per peer configured at
//!   that address. Each peer has one dialer towards us, so this covers a
//!   redial while an older attempt is still timing out. Strangers never
//!   use it.
//! - **The stranger pool**: every other source, and a peer's source whose
//!   reserve is full, shares [`super::NetConfig::max_stranger_handshakes`]
//!   slots, at most [`super::NetConfig::max_handshakes_per_source`] per
//!   address, each with the shorter
//!   [`super::NetConfig::stranger_handshake_timeout`].
//!
//! A connection that gets no slot is closed at once and counted
//! ([`HandshakeRefusal::SourceBusy`] or [`HandshakeRefusal::TooManyHandshakes`]); nothing
//! waits in line, so no number of strangers delays a peer's handshake.
//!
//! The limit of this: TCP needs a reply to complete, so a stranger cannot
//! borrow a peer's address from elsewhere; only something running on the
//! peer's own host (or holding its address on the rack network) can spend
//! that peer's reserve, and then only that peer's. A dialer binds its
//! socket to its listen address when that is a specific address
//! (`manager::dial_once`), so its connections come from the address its
//! peers have configured for it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::stats::{HandshakeRefusal, lock};

/// Handshake slots reserved per configured peer at a source address.
pub const HANDSHAKES_PER_PEER: usize = 2;

/// Which pool a handshake slot came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pool {
    /// The reserve of a configured peer's address.
    Peer,
    /// The pool everyone else shares.
    Stranger,
}

/// The bounds of the stranger pool.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StrangerLimits {
    pub(crate) total: usize,
    pub(crate) per_source: usize,
}

/// The slots in use, by pool and source. Entries are removed when their
/// count drops to zero, so the maps hold at most one entry per handshake
/// under way.
pub(crate) struct Admission {
    limits: StrangerLimits,
    state: Mutex<InUse>,
}

#[derive(Default)]
struct InUse {
    peer: HashMap<IpAddr, usize>,
    stranger: HashMap<IpAddr, usize>,
    stranger_total: usize,
}

/// A handshake slot; returned to its pool on drop.
pub(crate) struct Permit {
    admission: Arc<Admission>,
    source: IpAddr,
    pool: Pool,
}

impl Permit {
    pub(crate) fn pool(&self) -> Pool {
        self.pool
    }
}

/// The form a source address is compared in: an IPv4 peer reaching a
/// dual-stack listener shows up as an IPv4-mapped IPv6 address.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

impl Admission {
    pub(crate) fn new(limits: StrangerLimits) -> Self {
        Self {
            limits,
            state: Mutex::default(),
        }
    }

    /// A slot for a handshake from `source`, where `peers_at_source`
    /// configured peers have their address; or why there is none.
    pub(crate) fn admit(
        self: &Arc<Self>,
        source: IpAddr,
        peers_at_source: usize,
    ) -> Result<Permit, HandshakeRefusal> {
        let source = canonical(source);
        let mut in_use = lock(&self.state);
        let reserve = peers_at_source.saturating_mul(HANDSHAKES_PER_PEER);
        let peer_used = in_use.peer.get(&source).copied().unwrap_or(0);
        let pool = if peer_used < reserve {
            *in_use.peer.entry(source).or_default() += 1;
            Pool::Peer
        } else {
            let used = in_use.stranger.get(&source).copied().unwrap_or(0);
            if used >= self.limits.per_source {
                return Err(HandshakeRefusal::SourceBusy);
            }
            if in_use.stranger_total >= self.limits.total {
                return Err(HandshakeRefusal::TooManyHandshakes);
            }
            *in_use.stranger.entry(source).or_default() += 1;
            in_use.stranger_total += 1;
            Pool::Stranger
        };
        Ok(Permit {
            admission: self.clone(),
            source,
            pool,
        })
    }
}

fn release(counts: &mut HashMap<IpAddr, usize>, source: &IpAddr) {
    if let Some(count) = counts.get_mut(source) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(source);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut in_use = lock(&self.admission.state);
        match self.pool {
            Pool::Peer => release(&mut in_use.peer, &self.source),
            Pool::Stranger => {
                release(&mut in_use.stranger, &self.source);
                in_use.stranger_total = in_use.stranger_total.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn admission(total: usize, per_source: usize) -> Arc<Admission> {
        Arc::new(Admission::new(StrangerLimits { total, per_source }))
    }

    #[test]
    fn a_source_gets_at_most_its_share_of_the_stranger_pool() {
        let admission = admission(10, 3);
        let held: Vec<_> = (0..3).map(|_| admission.admit(ip(2), 0).unwrap()).collect();
        assert!(held.iter().all(|p| p.pool() == Pool::Stranger));
        assert_eq!(
            admission.admit(ip(2), 0).err(),
            Some(HandshakeRefusal::SourceBusy)
        );
        // Another stranger still gets in.
        assert!(admission.admit(ip(3), 0).is_ok());
        drop(held);
        assert!(admission.admit(ip(2), 0).is_ok());
    }

    #[test]
    fn a_full_stranger_pool_leaves_the_peer_reserve_alone() {
        let admission = admission(4, 2);
        let _held: Vec<_> = (2..4)
            .flat_map(|source| {
                [
                    admission.admit(ip(source), 0),
                    admission.admit(ip(source), 0),
                ]
            })
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            admission.admit(ip(5), 0).err(),
            Some(HandshakeRefusal::TooManyHandshakes)
        );
        // Two peers at 127.0.0.1: four reserved slots, then the (full)
        // stranger pool.
        let peers: Vec<_> = (0..4).map(|_| admission.admit(ip(1), 2).unwrap()).collect();
        assert!(peers.iter().all(|p| p.pool() == Pool::Peer));
        assert_eq!(
            admission.admit(ip(1), 2).err(),
            Some(HandshakeRefusal::TooManyHandshakes)
        );
    }

    #[test]
    fn slots_return_to_their_pool_and_entries_go() {
        let admission = admission(2, 2);
        let peer = admission.admit(ip(1), 1).unwrap();
        let stranger = admission.admit(ip(2), 0).unwrap();
        assert_eq!((peer.pool(), stranger.pool()), (Pool::Peer, Pool::Stranger));
        drop((peer, stranger));
        let in_use = lock(&admission.state);
        assert!(in_use.peer.is_empty() && in_use.stranger.is_empty());
        assert_eq!(in_use.stranger_total, 0);
    }

    #[test]
    fn ipv4_mapped_sources_count_as_ipv4() {
        let admission = admission(2, 1);
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        let _held = admission.admit(mapped, 0).unwrap();
        assert_eq!(
            admission.admit(ip(2), 0).err(),
            Some(HandshakeRefusal::SourceBusy)
        );
    }
}
