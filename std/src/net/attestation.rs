//! Peers that prove what they run: each verified peer certificate's
//! measurements ([`super::measurements`]) are checked against the rack's
//! reference measurements ([`super::reference`]) at the handshake, on both
//! sides (the listener checks the dialer, the dialer the listener).
//!
//! # The rule
//!
//! With [`Attestation::Enforce`], a peer is admitted only if its
//! certificate carries a `TcbInfo` extension whose every FWID is a
//! SHA3-256 digest listed in the reference file. Otherwise the handshake
//! is refused and counted: [`HandshakeRefusal::NoMeasurements`] (no
//! extension, or no `fwids`), [`HandshakeRefusal::MalformedMeasurements`],
//! or [`HandshakeRefusal::UnknownMeasurement`] (a digest not listed, or
//! another hash algorithm). The check runs after the chain is verified,
//! so only holders of a rack certificate reach it.
//!
//! # Updating the reference measurements
//!
//! The file is re-read at every check, i.e. at every handshake with a
//! rack certificate: it is small (at most
//! [`super::reference::MAX_REFERENCE_FILE_LEN`] bytes), handshakes are
//! rare (a peer set of a rack, redials with backoff), and so no change
//! can be missed, however quickly or coarsely time-stamped. A change
//! applies to handshakes from then on, and every
//! [`REFERENCE_RECHECK_INTERVAL`] the connected peers are checked again:
//! one whose measurements are no longer all listed is disconnected
//! ([`super::CloseReason::Unattested`]) and refused at its next
//! handshake. If the file cannot be read or parsed, the last good
//! contents are used, the failure is counted
//! ([`super::NetStats::reference_reload_failures`]) and logged once per
//! distinct error: a half-written file must not lock the rack out.
//! [`super::Net::start`] fails if the file is unusable at start.
//!
//! With [`Attestation::Off`] nothing is checked (a warning says so at
//! start); the measurements are still read for the status.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::measurements::{Fwid, MeasurementError, measurements_of_cert};
use super::reference::{ReferenceError, ReferenceMeasurements};
use super::stats::{HandshakeRefusal, lock};

/// How often the connected peers' measurements are checked again
/// against the reference file.
pub const REFERENCE_RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Whether and against what peers' measurements are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attestation {
    /// Not checked. Only for racks without measured boot; `tq sled`
    /// enforces unless its configuration says otherwise.
    Off,
    /// Every peer's measurements must all be in the reference
    /// measurements file at this path (re-read at every handshake).
    Enforce(PathBuf),
}

/// One firmware digest of a connected peer, as its certificate carries
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerMeasurement {
    /// The hash algorithm and digest.
    pub fwid: Fwid,
    /// Its name in the reference measurements when the connection was
    /// made, if listed there.
    pub reference: Option<String>,
}

impl PeerMeasurement {
    /// Whether `reference` lists every one of `measurements` (none at all
    /// is not admitted).
    pub(crate) fn all_listed(measurements: &[Self], reference: &ReferenceMeasurements) -> bool {
        !measurements.is_empty()
            && measurements
                .iter()
                .all(|m| reference.name_of(&m.fwid).is_some())
    }
}

/// The check the verifiers run, with the last good reference file.
pub(crate) struct Checker {
    mode: Attestation,
    reference: Mutex<Reference>,
    reload_failures: AtomicU64,
}

struct Reference {
    last_good: Arc<ReferenceMeasurements>,
    /// The last reload error logged, so a broken file is logged once.
    last_error: Option<String>,
}

impl Checker {
    /// Reads the reference file once (if enforcing): it must be usable.
    pub(crate) fn new(mode: Attestation) -> Result<Self, ReferenceError> {
        let last_good = match &mode {
            Attestation::Off => {
                tracing::warn!(
                    "peer attestation is OFF: peers are admitted whatever firmware they run"
                );
                ReferenceMeasurements::default()
            }
            Attestation::Enforce(path) => {
                let reference = ReferenceMeasurements::load(path)?;
                tracing::info!(
                    file = %path.display(),
                    measurements = reference.len(),
                    "peer attestation enforced"
                );
                reference
            }
        };
        Ok(Self {
            mode,
            reference: Mutex::new(Reference {
                last_good: Arc::new(last_good),
                last_error: None,
            }),
            reload_failures: AtomicU64::new(0),
        })
    }

    /// Reads the reference file again; on failure keeps the last good
    /// contents (counted, logged once per distinct error).
    fn reference(&self) -> Arc<ReferenceMeasurements> {
        let Attestation::Enforce(path) = &self.mode else {
            return lock(&self.reference).last_good.clone();
        };
        let loaded = ReferenceMeasurements::load(path);
        let mut reference = lock(&self.reference);
        match loaded {
            Ok(fresh) => {
                if reference.last_error.take().is_some() {
                    tracing::info!(file = %path.display(), "reference measurements readable again");
                }
                reference.last_good = Arc::new(fresh);
            }
            Err(error) => {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                let message = error.to_string();
                if reference.last_error.as_ref() != Some(&message) {
                    tracing::warn!(
                        file = %path.display(),
                        %error,
                        "reference measurements unusable; keeping the last good ones"
                    );
                    reference.last_error = Some(message);
                }
            }
        }
        reference.last_good.clone()
    }

    /// Whether a verified peer certificate's measurements admit it.
    pub(crate) fn check(&self, cert: &[u8]) -> Result<(), HandshakeRefusal> {
        if self.mode == Attestation::Off {
            return Ok(());
        }
        let fwids = measurements_of_cert(cert).map_err(|error| match error {
            MeasurementError::Absent => HandshakeRefusal::NoMeasurements,
            MeasurementError::Malformed => HandshakeRefusal::MalformedMeasurements,
        })?;
        let reference = self.reference();
        if fwids.iter().all(|fwid| reference.name_of(fwid).is_some()) {
            Ok(())
        } else {
            Err(HandshakeRefusal::UnknownMeasurement)
        }
    }

    /// The reference measurements, re-read now; `None` with enforcement
    /// off.
    pub(crate) fn enforced_reference(&self) -> Option<Arc<ReferenceMeasurements>> {
        (self.mode != Attestation::Off).then(|| self.reference())
    }

    /// Whether peers are checked at all.
    pub(crate) fn enforced(&self) -> bool {
        self.mode != Attestation::Off
    }

    /// A connected peer's measurements, named from the last good
    /// reference file (empty if its certificate carries none).
    pub(crate) fn describe(&self, cert: &[u8]) -> Vec<PeerMeasurement> {
        let reference = lock(&self.reference).last_good.clone();
        measurements_of_cert(cert)
            .unwrap_or_default()
            .into_iter()
            .map(|fwid| PeerMeasurement {
                reference: reference.name_of(&fwid).map(str::to_owned),
                fwid,
            })
            .collect()
    }

    /// Reloads that failed since start.
    pub(crate) fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }
}
