//! The probes that run beside the workload and the faults: sleds loading
//! the latest secret (what a sled does to unlock its disks), each answer
//! kept for the checker; every sled's status read in turn (alarms, ledger
//! writes failing); and the rack's unlock outages: the longest time during
//! which a quorum of the latest configuration's members was up and
//! connected (by the injector's account of its faults) and yet no member
//! asked could load the secret.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::check::Print;
use super::plan::{Dice, stream};
use super::{Shared, lock};
use crate::api::types::Storage;
use crate::nexus::http::HttpSled;
use tq_core::api::SecretFingerprint;
use tq_core::ids::PlatformId;
use tq_driver::Authority;

/// Asks sleds for the latest secret's fingerprint as Nexus does: each
/// request authenticated for its sled, each answer's tag checked.
#[derive(Clone)]
pub struct Fingerprints {
    authority: Arc<Authority>,
    ids: Arc<[PlatformId]>,
}

impl Fingerprints {
    /// Sled `i` is `ids[i]`.
    pub fn new(authority: Authority, ids: &[PlatformId]) -> Self {
        Self {
            authority: Arc::new(authority),
            ids: ids.into(),
        }
    }

    /// Sled `sled`'s latest secret's fingerprint through `api`, waiting up
    /// to `deadline`, or why not.
    pub async fn ask(
        &self,
        api: &HttpSled,
        sled: usize,
        deadline: Duration,
    ) -> Result<SecretFingerprint, String> {
        let id = self.ids.get(sled).ok_or("no such sled")?;
        match api.checked_fingerprint(&self.authority, id, deadline).await {
            Ok(Ok(print)) => Ok(print),
            Ok(Err(refused)) => Err(refused.to_string()),
            Err(failure) => Err(failure.to_string()),
        }
    }
}

/// Time between probes.
const EVERY: Duration = Duration::from_millis(300);

/// How long a probed sled may wait for shares.
const LOAD_DEADLINE: Duration = Duration::from_secs(1);

/// Secret loads and outages.
#[derive(Clone, Copy, Debug, Default)]
pub struct Loads {
    /// Secrets loaded.
    pub loaded: u64,
    /// Loads that failed or timed out.
    pub failed: u64,
    /// The longest outage while a quorum was connected.
    pub longest_outage: Duration,
    /// When the current outage began.
    since: Option<Instant>,
}

impl Loads {
    /// Ends the current outage at `now`, if there is one.
    fn end_outage(&mut self, now: Instant) {
        if let Some(since) = self.since.take() {
            self.longest_outage = self.longest_outage.max(now - since);
        }
    }

    /// Closes the books at `now`.
    pub fn close(&mut self, now: Instant) {
        self.end_outage(now);
    }
}

/// Probes until the shared flag `stop_probes` is set.
pub async fn run(
    apis: Vec<HttpSled>,
    fingerprints: Fingerprints,
    shared: Arc<Mutex<Shared>>,
    seed: u64,
) {
    let mut dice = Dice::new(seed, stream::PROBES);
    let mut turn = 0_usize;
    loop {
        tokio::time::sleep(EVERY).await;
        let (quorum, askable, stop) = {
            let s = lock(&shared);
            let (quorum, askable) = s.connected_quorum();
            (quorum, askable, s.stop_probes)
        };
        if stop {
            break;
        }
        if let Some(sled) = dice.pick(&askable)
            && let Some(api) = apis.get(sled)
        {
            let asked = Instant::now();
            let got = fingerprints.ask(api, sled, LOAD_DEADLINE).await;
            let mut s = lock(&shared);
            // Still connected as when asked: a fault in between does not
            // count against the rack.
            let still = s.connected_quorum().0;
            match got {
                Ok(p) => {
                    s.loads.loaded += 1;
                    s.seen.prints.push(Print {
                        sled,
                        epoch: p.epoch,
                        fingerprint: hex::encode(p.fingerprint),
                    });
                    s.loads.end_outage(Instant::now());
                }
                Err(_) => {
                    s.loads.failed += 1;
                    if quorum && still {
                        s.loads.since.get_or_insert(asked);
                    } else {
                        s.loads.end_outage(asked);
                    }
                }
            }
        } else {
            lock(&shared).loads.end_outage(Instant::now());
        }
        // One status per turn, of the sleds in the rack now in turn,
        // skipping those a fault keeps from answering.
        turn = turn.wrapping_add(1);
        let target = {
            let s = lock(&shared);
            let present: Vec<usize> = s.present.iter().copied().collect();
            present
                .get(turn % present.len().max(1))
                .copied()
                .filter(|i| !s.down.contains(i) && !s.unreachable.contains(i))
        };
        if let Some(sled) = target
            && let Some(api) = apis.get(sled)
            && let Ok(status) = api.sled_status().await
        {
            let mut s = lock(&shared);
            for alarm in &status.node.alarms {
                s.seen.alarms.insert((sled, format!("{alarm:?}")));
            }
            if matches!(status.storage, Storage::Failing { .. }) {
                s.failing.insert(sled);
            }
        }
    }
}
