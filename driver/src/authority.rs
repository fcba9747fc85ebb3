//! Nexus's authority as the driver wields it (tq-core's `authority`): it
//! holds Nexus's authority key, derives a sled's request key when it
//! calls that sled, authenticates each request under a nonce drawn fresh
//! from the system's random source, and checks the tag of the answer
//! before anything acts on it.

use std::fmt;

use tq_core::authority::{
    AnswerTag, BadAnswerTag, NONCE_LEN, NexusAuthorityKey, NexusCall, NexusRequest, RequestAuth,
    SledRequestKey,
};
use tq_core::ids::{PlatformId, RackId};
use tq_core::wire::NexusWire;

use crate::sled::{CallFailure, FailureKind, Reply, Tagged};

/// Nexus's authority over one rack: its key and the rack's id. A clone
/// is one more copy of the key, zeroized on drop like the first.
#[derive(Clone)]
pub struct Authority {
    key: NexusAuthorityKey,
    rack_id: RackId,
}

/// Why a request could not be authenticated (nothing was sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The system's random source gave no nonce.
    Random,
    /// The request could not be encoded, or the sled's key derived.
    Encoding,
}

impl fmt::Display for AuthorizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Random => "the system's random source gave no nonce",
            Self::Encoding => "the request or the sled's id does not encode",
        })
    }
}

impl std::error::Error for AuthorizeError {}

impl From<AuthorizeError> for CallFailure {
    fn from(e: AuthorizeError) -> Self {
        CallFailure::new(FailureKind::NoRoute, format!("not sent: {e}"))
    }
}

/// A request's authenticator, and what checks the answer to it.
pub struct Authorized {
    /// What travels with the request.
    pub auth: RequestAuth,
    /// What checks the answer.
    pub check: AnswerCheck,
}

/// Checks the answer to one authenticated request: under the target's
/// key, for the target, the call and the request's nonce.
pub struct AnswerCheck {
    key: SledRequestKey,
    sled: PlatformId,
    call: NexusCall,
    nonce: [u8; NONCE_LEN],
}

impl AnswerCheck {
    /// Whether `tag` is the sled's tag of `answer` to this request.
    pub fn verify<A: NexusWire + ?Sized>(
        &self,
        answer: &A,
        tag: &AnswerTag,
    ) -> Result<(), BadAnswerTag> {
        self.key
            .verify_answer(&self.sled, self.call, &self.nonce, answer, tag)
    }

    /// The answer of `tagged` if its tag checks, else a failure of kind
    /// [`FailureKind::AnswerUnauthenticated`].
    pub fn accept<A: NexusWire>(&self, tagged: Tagged<A>) -> Reply<A> {
        match self.verify(&tagged.answer, &tagged.tag) {
            Ok(()) => Ok(tagged.answer),
            Err(e) => Err(CallFailure::new(
                FailureKind::AnswerUnauthenticated,
                format!("{e} ({} from {})", call_name(self.call), self.sled),
            )),
        }
    }
}

fn call_name(call: NexusCall) -> &'static str {
    match call {
        NexusCall::Reconfigure => "reconfigure",
        NexusCall::UpgradeFromLrtq => "upgrade_from_lrtq",
        NexusCall::Commit => "commit",
        NexusCall::PrepareAndCommit => "prepare_and_commit",
        NexusCall::CoordinatorStatus => "coordinator_status",
        NexusCall::NodeStatus => "node_status",
        NexusCall::LoadLatestSecret => "load_latest_secret",
    }
}

impl Authority {
    /// Nexus's authority over rack `rack_id`, with its key.
    pub fn new(key: NexusAuthorityKey, rack_id: RackId) -> Self {
        Self { key, rack_id }
    }

    /// The rack.
    pub fn rack_id(&self) -> RackId {
        self.rack_id
    }

    /// Sled `sled`'s request key.
    pub fn sled_key(&self, sled: &PlatformId) -> Result<SledRequestKey, AuthorizeError> {
        self.key
            .sled_key(self.rack_id, sled)
            .map_err(|_| AuthorizeError::Encoding)
    }

    /// Authenticates `body` for `target` under a fresh nonce.
    pub fn authorize<T: NexusRequest + ?Sized>(
        &self,
        target: &PlatformId,
        body: &T,
    ) -> Result<Authorized, AuthorizeError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| AuthorizeError::Random)?;
        let key = self.sled_key(target)?;
        let auth = key
            .authorize(target, nonce, body)
            .map_err(|_| AuthorizeError::Encoding)?;
        Ok(Authorized {
            auth,
            check: AnswerCheck {
                key,
                sled: target.clone(),
                call: T::CALL,
                nonce,
            },
        })
    }
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("rack_id", &self.rack_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use tq_core::api::CommitRequest;
    use tq_core::authority::CoordinatorStatusQuery;
    use tq_core::ids::Epoch;

    use super::*;

    fn sled(serial: &str) -> PlatformId {
        PlatformId::new("913-0000019", serial).unwrap()
    }

    /// Nonces are fresh per call; an answer checks only under its own
    /// request's nonce, for its own sled, unaltered.
    #[test]
    fn answers_check_only_for_their_own_request() {
        let rack = RackId([3; 16]);
        let authority = Authority::new(NexusAuthorityKey::from_bytes([1; 32]), rack);
        let (a, b) = (sled("A"), sled("B"));
        let request = CommitRequest {
            rack_id: rack,
            epoch: Epoch(2),
        };
        let first = authority.authorize(&a, &request).unwrap();
        let second = authority.authorize(&a, &request).unwrap();
        assert_ne!(first.auth.nonce, second.auth.nonce);

        let answer: Option<tq_core::api::CoordinatorStatus> = None;
        let status = authority.authorize(&a, &CoordinatorStatusQuery).unwrap();
        let key_a = authority.sled_key(&a).unwrap();
        let tag = key_a
            .answer_tag(
                &a,
                NexusCall::CoordinatorStatus,
                &status.auth.nonce,
                &answer,
            )
            .unwrap();
        status.check.verify(&answer, &tag).unwrap();
        // Another request's nonce, another sled's key, another call.
        let again = authority.authorize(&a, &CoordinatorStatusQuery).unwrap();
        assert!(again.check.verify(&answer, &tag).is_err());
        let key_b = authority.sled_key(&b).unwrap();
        let forged = key_b
            .answer_tag(
                &b,
                NexusCall::CoordinatorStatus,
                &status.auth.nonce,
                &answer,
            )
            .unwrap();
        assert!(status.check.verify(&answer, &forged).is_err());
        let failure = status
            .check
            .accept(Tagged {
                answer,
                tag: forged,
            })
            .unwrap_err();
        assert_eq!(failure.kind, FailureKind::AnswerUnauthenticated);
    }
}
