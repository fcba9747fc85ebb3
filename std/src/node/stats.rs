//! The node layer's own counters, shared by the task and its handles
//! (a handle counts the API queue it found full, and the connections the
//! API's front door refused).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::handle::Bound;

/// How a proxied call this sled forwarded ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyOutcome {
    /// The target answered.
    Answered,
    /// No connection to the target.
    NotConnected,
    /// The connection ended first.
    Disconnected,
    /// The deadline passed first.
    DeadlinePassed,
}

impl ProxyOutcome {
    /// Every outcome, in counter order.
    pub const ALL: [Self; 4] = [
        Self::Answered,
        Self::NotConnected,
        Self::Disconnected,
        Self::DeadlinePassed,
    ];

    /// A stable snake-case name, for metric labels.
    pub fn label(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::NotConnected => "not_connected",
            Self::Disconnected => "disconnected",
            Self::DeadlinePassed => "deadline_passed",
        }
    }
}

/// Why the API's front door closed a connection before any request of it
/// reached the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiConnectionRefusal {
    /// The TLS handshake failed: what the client sent is not an
    /// acceptable TLS 1.3 handshake (a plain-HTTP request, another
    /// protocol, an unsupported version), or the client refused this
    /// sled's certificate (it trusts another CA, or expected another
    /// sled).
    TlsHandshake,
    /// The handshake and the request head did not come within the idle
    /// timeout.
    IdleTimeout,
    /// The request head was malformed or past a limit (answered with an
    /// API error).
    BadHead,
}

impl ApiConnectionRefusal {
    /// Every reason, in counter order.
    pub const ALL: [Self; 3] = [Self::TlsHandshake, Self::IdleTimeout, Self::BadHead];

    /// A stable snake-case name, for metric labels.
    pub fn label(self) -> &'static str {
        match self {
            Self::TlsHandshake => "tls_handshake",
            Self::IdleTimeout => "idle_timeout",
            Self::BadHead => "bad_head",
        }
    }
}

/// The live counters (atomics: handles bump them from other tasks).
#[derive(Debug, Default)]
pub struct ShimCounters {
    busy: [AtomicU64; Bound::ALL.len()],
    proxied: [AtomicU64; ProxyOutcome::ALL.len()],
    proxy_served: AtomicU64,
    proxy_bad_frames: AtomicU64,
    proxy_late_answers: AtomicU64,
    sends_not_connected: AtomicU64,
    sends_busy: AtomicU64,
    store_failures: AtomicU64,
    undecodable_disconnects: AtomicU64,
    api_connections_refused: [AtomicU64; ApiConnectionRefusal::ALL.len()],
}

/// A snapshot of [`ShimCounters`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShimStats {
    /// Calls refused because a bound was full, per [`Bound`] (in
    /// [`Bound::ALL`] order).
    pub busy: [u64; Bound::ALL.len()],
    /// Proxied calls forwarded, per [`ProxyOutcome`] (in
    /// [`ProxyOutcome::ALL`] order).
    pub proxied: [u64; ProxyOutcome::ALL.len()],
    /// Proxied calls run here for another sled's caller.
    pub proxy_served: u64,
    /// Proxy frames that did not decode (their connection was dropped).
    pub proxy_bad_frames: u64,
    /// Proxy answers for no call in flight (late, or never asked).
    pub proxy_late_answers: u64,
    /// Core messages not sent: the peer was not connected.
    pub sends_not_connected: u64,
    /// Core messages not sent: the peer's write queue was full.
    pub sends_busy: u64,
    /// State writes that reached no ledger copy.
    pub store_failures: u64,
    /// Connections dropped because the core could not decode a frame.
    pub undecodable_disconnects: u64,
    /// API connections the front door closed before any request reached
    /// the API, per [`ApiConnectionRefusal`] (in
    /// [`ApiConnectionRefusal::ALL`] order).
    pub api_connections_refused: [u64; ApiConnectionRefusal::ALL.len()],
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl ShimCounters {
    pub(crate) fn busy(&self, bound: Bound) {
        if let Some(counter) = self.busy.get(bound as usize) {
            bump(counter);
        }
    }

    pub(crate) fn proxied(&self, outcome: ProxyOutcome) {
        if let Some(counter) = self.proxied.get(outcome as usize) {
            bump(counter);
        }
    }

    pub(crate) fn proxy_served(&self) {
        bump(&self.proxy_served);
    }

    pub(crate) fn proxy_bad_frame(&self) {
        bump(&self.proxy_bad_frames);
    }

    pub(crate) fn proxy_late_answer(&self) {
        bump(&self.proxy_late_answers);
    }

    pub(crate) fn send_not_connected(&self) {
        bump(&self.sends_not_connected);
    }

    pub(crate) fn send_busy(&self) {
        bump(&self.sends_busy);
    }

    pub(crate) fn store_failure(&self) {
        bump(&self.store_failures);
    }

    pub(crate) fn undecodable_disconnect(&self) {
        bump(&self.undecodable_disconnects);
    }

    pub(crate) fn api_connection_refused(&self, reason: ApiConnectionRefusal) {
        if let Some(counter) = self.api_connections_refused.get(reason as usize) {
            bump(counter);
        }
    }

    /// The counts now.
    pub fn snapshot(&self) -> ShimStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ShimStats {
            busy: self.busy.each_ref().map(load),
            proxied: self.proxied.each_ref().map(load),
            proxy_served: load(&self.proxy_served),
            proxy_bad_frames: load(&self.proxy_bad_frames),
            proxy_late_answers: load(&self.proxy_late_answers),
            sends_not_connected: load(&self.sends_not_connected),
            sends_busy: load(&self.sends_busy),
            store_failures: load(&self.store_failures),
            undecodable_disconnects: load(&self.undecodable_disconnects),
            api_connections_refused: self.api_connections_refused.each_ref().map(load),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_listed_in_discriminant_order() {
        for (i, bound) in Bound::ALL.iter().enumerate() {
            assert_eq!(*bound as usize, i);
        }
        for (i, outcome) in ProxyOutcome::ALL.iter().enumerate() {
            assert_eq!(*outcome as usize, i);
        }
    }
}
