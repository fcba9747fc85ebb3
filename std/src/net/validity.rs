//! Peer admission does not read the wall clock.
//!
//! # The rule
//!
//! A peer certificate is verified as of the moment it was issued (its own
//! `notBefore`), never as of the sled's clock: the chain must reach the
//! rack CA, every signature and key usage must hold, and any intermediate
//! certificate must have been valid when the leaf was issued (the rack CA
//! is a trust anchor: webpki does not read its dates). So a leaf whose
//! `notAfter` has passed, or whose `notBefore` is still ahead of the
//! sled's clock, is admitted.
//!
//! # Why
//!
//! A sled cannot trust its clock at boot: its real-time clock may have
//! been reset (to 1970, to a build date) or may run ahead, and the rack
//! gets its time from services that only run once the rack has unlocked.
//! Checking validity against that clock would make a cold-booted rack
//! refuse its own members (every certificate "not yet valid" to a sled in
//! 1970) and never unlock. A floor time (the build date, the ledger's last
//! write) does not help: it catches a clock that is behind, not one that
//! is ahead, and a certificate issued after the floor is still refused.
//!
//! What validity periods would have given, revocation, comes from two
//! places instead: the peer set (a sled removed from it is refused at the
//! handshake, [`super::HandshakeRefusal::UnknownPeer`]; session resumption is off
//! so no earlier session skips that check) and the rack CA (a new CA
//! retires every certificate of the old one). The price: a stolen sled key
//! stays usable for as long as that sled is in the peer set and the CA is
//! unchanged, whatever its certificate's `notAfter` says.

use rustls::pki_types::{CertificateDer, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The time a peer certificate chain is verified at: the leaf's
/// `notBefore` (a time before 1970 counts as 1970). `None` if the leaf
/// cannot be parsed (the verifier then refuses it anyway).
pub(crate) fn verification_time(end_entity: &CertificateDer<'_>) -> Option<UnixTime> {
    let (_, cert) = X509Certificate::from_der(end_entity).ok()?;
    let issued = cert.validity().not_before.timestamp();
    let secs = u64::try_from(issued).unwrap_or(0);
    Some(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        secs,
    )))
}
