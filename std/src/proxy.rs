//! Proxied calls: Nexus asks a sled it can reach to pass a call to one it
//! cannot (a sled that has not joined yet has no control-plane address).
//!
//! Only `commit_configuration`, `prepare_and_commit` and node status are
//! proxied. The forwarding sled sends a request frame over its peer
//! connection to the target, which runs the call exactly as its own handle
//! would and sends the answer frame back. The forwarding sled fails the
//! call when its deadline passes or the connection ends before the answer
//! ([`crate::handle::Unavailable`]). A request that arrives over a
//! connection is run where it arrives and never forwarded: a
//! [`ProxyRequest`] names no target, so there is nothing to forward it to.
//!
//! # Frames
//!
//! Proxy frames share the peer connections with the core's messages. A
//! frame's first byte says which it is: the core's peer message version
//! ([`tq_core::wire::PEER_MSG_VERSION`], a peer message as the core encodes
//! it) or [`PROXY_FRAME`] (the first proxy format). The core's peer message
//! versions count up from 1 and stay below 0xF0 (checked at compile time),
//! so the two never meet. Both start with the same header, so the network checks the
//! rack id of either the same way:
//!
//! ```text
//! offset  size  field
//! 0       1     PROXY_FRAME (0xF1)
//! 1       16    rack id
//! 17      1     kind: 0x01 commit, 0x02 prepare-and-commit, 0x03 node status (requests);
//!               0x81, 0x82, 0x83 their answers; 0xFF unavailable
//! 18      8     call id, big-endian (chosen by the forwarding sled, echoed in the answer)
//! 26      ..    payload
//! ```
//!
//! The payload is the core's own Nexus encoding (`tq_core::wire`) of the
//! request or answer, version byte included: a `CommitRequest`, a
//! `Configuration`, nothing (node status), or the call's `Result` /
//! `NodeStatus`. An unavailable answer's payload is one byte, the
//! [`RemoteUnavailable`] reason. Decoding is total and bounded (the
//! largest frame is [`MAX_PROXY_FRAME_LEN`]) and canonical: requests go
//! through the core's in-place decoders, answers through the core's
//! decoders and are re-encoded and compared, so a value has one accepted
//! encoding.

use crate::net::Frame;
use tq_core::api::{
    CommitOutcome, CommitRequest, NodeStatus, NodeStatusRef, PrepareAndCommitOutcome,
};
use tq_core::config::Configuration;
use tq_core::ids::RackId;
use tq_core::node::{CommitError, PrepareAndCommitError};
use tq_core::wire::{
    self, DecodeSlot, MAX_ANSWER_LEN, MAX_COMMIT_REQUEST_LEN, MAX_CONFIGURATION_LEN,
    MAX_NODE_STATUS_LEN, NexusWire, PEER_MSG_VERSION, WireError,
};

/// The first byte of a proxy frame (format 1).
pub const PROXY_FRAME: u8 = 0xF1;

const _: () = assert!(
    PEER_MSG_VERSION < 0xF0,
    "core peer message versions must stay below the proxy formats"
);

/// Bytes before the payload.
pub const PROXY_HEADER_LEN: usize = 1 + 16 + 1 + 8;

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// The largest payload: a configuration or a node status, whichever is
/// larger.
const MAX_PAYLOAD_LEN: usize = max(
    max(MAX_CONFIGURATION_LEN, MAX_NODE_STATUS_LEN),
    max(MAX_ANSWER_LEN, MAX_COMMIT_REQUEST_LEN),
);

/// The largest proxy frame.
pub const MAX_PROXY_FRAME_LEN: usize = PROXY_HEADER_LEN + MAX_PAYLOAD_LEN;

const KIND_COMMIT: u8 = 0x01;
const KIND_PREPARE_AND_COMMIT: u8 = 0x02;
const KIND_STATUS: u8 = 0x03;
const ANSWER: u8 = 0x80;
const KIND_UNAVAILABLE: u8 = 0xFF;

/// A call a sled runs for another sled's caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyRequest {
    /// `commit_configuration`.
    Commit(CommitRequest),
    /// `prepare_and_commit`.
    PrepareAndCommit(Box<Configuration>),
    /// The node's status.
    NodeStatus,
}

/// The answer to a [`ProxyRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyAnswer {
    /// From `commit_configuration`.
    Commit(Result<CommitOutcome, CommitError>),
    /// From `prepare_and_commit`.
    PrepareAndCommit(Result<PrepareAndCommitOutcome, PrepareAndCommitError>),
    /// The node's status.
    NodeStatus(Box<NodeStatus>),
    /// The target could not run the call.
    Unavailable(RemoteUnavailable),
}

/// Why the target of a proxied call could not run it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RemoteUnavailable {
    /// Its ledger could not store the change the call made: nothing is
    /// acknowledged (the change is retried and sent once stored).
    NotStored = 1,
    /// It is shutting down.
    Stopping = 2,
}

impl RemoteUnavailable {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::NotStored),
            2 => Some(Self::Stopping),
            _ => None,
        }
    }
}

/// What a proxy frame carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyBody {
    /// A call to run here.
    Request(ProxyRequest),
    /// The answer to a call this sled forwarded.
    Answer(ProxyAnswer),
}

/// One decoded proxy frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyFrame {
    /// The rack it names.
    pub rack_id: RackId,
    /// The call id.
    pub id: u64,
    /// The request or answer.
    pub body: ProxyBody,
}

/// Why a proxy frame did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyDecodeError {
    /// Shorter than the header, or not a proxy frame.
    BadHeader,
    /// An unknown kind byte.
    UnknownKind(u8),
    /// The payload is not what the kind says.
    Payload(WireError),
    /// The payload decodes but is not in its one accepted encoding.
    NotCanonical,
}

impl std::fmt::Display for ProxyDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadHeader => f.write_str("not a proxy frame"),
            Self::UnknownKind(kind) => write!(f, "unknown proxy frame kind {kind:#04x}"),
            Self::Payload(e) => write!(f, "proxy payload: {e}"),
            Self::NotCanonical => f.write_str("proxy payload not canonically encoded"),
        }
    }
}

impl std::error::Error for ProxyDecodeError {}

/// Whether `frame` is a proxy frame (by its first byte).
pub fn is_proxy_frame(frame: &[u8]) -> bool {
    frame.first() == Some(&PROXY_FRAME)
}

fn frame_with<T: NexusWire + ?Sized>(
    rack: RackId,
    kind: u8,
    id: u64,
    value: &T,
) -> Result<Frame, WireError> {
    let mut buf = vec![0u8; PROXY_HEADER_LEN + T::MAX_LEN];
    let len = {
        let (header, payload) = buf.split_at_mut(PROXY_HEADER_LEN);
        write_header(header, rack, kind, id);
        wire::encode_nexus(value, payload)?.len()
    };
    buf.truncate(PROXY_HEADER_LEN + len);
    Ok(Frame::from(buf))
}

fn write_header(header: &mut [u8], rack: RackId, kind: u8, id: u64) {
    let kind = [kind];
    let id = id.to_be_bytes();
    let fields = [PROXY_FRAME]
        .iter()
        .chain(rack.as_bytes())
        .chain(&kind)
        .chain(&id);
    for (slot, byte) in header.iter_mut().zip(fields) {
        *slot = *byte;
    }
}

/// Encodes a request frame.
pub fn encode_request(rack: RackId, id: u64, request: &ProxyRequest) -> Result<Frame, WireError> {
    match request {
        ProxyRequest::Commit(commit) => frame_with(rack, KIND_COMMIT, id, commit),
        ProxyRequest::PrepareAndCommit(config) => {
            frame_with(rack, KIND_PREPARE_AND_COMMIT, id, config.as_ref())
        }
        ProxyRequest::NodeStatus => {
            let mut buf = vec![0u8; PROXY_HEADER_LEN];
            write_header(&mut buf, rack, KIND_STATUS, id);
            Ok(Frame::from(buf))
        }
    }
}

/// An answer as the target encodes it: the node status borrowed from the
/// node.
pub enum AnswerRef<'a> {
    /// From `commit_configuration`.
    Commit(&'a Result<CommitOutcome, CommitError>),
    /// From `prepare_and_commit`.
    PrepareAndCommit(&'a Result<PrepareAndCommitOutcome, PrepareAndCommitError>),
    /// The node's status.
    NodeStatus(&'a NodeStatusRef<'a>),
    /// The call could not run.
    Unavailable(RemoteUnavailable),
}

/// Encodes an answer frame.
pub fn encode_answer(rack: RackId, id: u64, answer: AnswerRef<'_>) -> Result<Frame, WireError> {
    match answer {
        AnswerRef::Commit(result) => frame_with(rack, ANSWER | KIND_COMMIT, id, result),
        AnswerRef::PrepareAndCommit(result) => {
            frame_with(rack, ANSWER | KIND_PREPARE_AND_COMMIT, id, result)
        }
        AnswerRef::NodeStatus(status) => frame_with(rack, ANSWER | KIND_STATUS, id, status),
        AnswerRef::Unavailable(reason) => {
            let mut buf = vec![0u8; PROXY_HEADER_LEN + 1];
            write_header(&mut buf, rack, KIND_UNAVAILABLE, id);
            if let Some(last) = buf.last_mut() {
                *last = reason as u8;
            }
            Ok(Frame::from(buf))
        }
    }
}

/// Decodes an answer with the core's decoder and checks that it is the
/// one encoding of its value.
fn canonical_answer<T>(payload: &[u8]) -> Result<T, ProxyDecodeError>
where
    T: NexusWire + serde::de::DeserializeOwned,
{
    let value: T = wire::decode_answer(payload).map_err(ProxyDecodeError::Payload)?;
    let mut again = vec![0u8; T::MAX_LEN];
    let encoded = wire::encode_nexus(&value, &mut again).map_err(ProxyDecodeError::Payload)?;
    if encoded == payload {
        Ok(value)
    } else {
        Err(ProxyDecodeError::NotCanonical)
    }
}

/// Decodes a proxy frame.
pub fn decode(frame: &[u8]) -> Result<ProxyFrame, ProxyDecodeError> {
    if frame.len() < PROXY_HEADER_LEN || !is_proxy_frame(frame) {
        return Err(ProxyDecodeError::BadHeader);
    }
    let (header, payload) = frame.split_at(PROXY_HEADER_LEN);
    let rack_id = header
        .get(1..17)
        .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
        .map(RackId)
        .ok_or(ProxyDecodeError::BadHeader)?;
    let kind = header.get(17).copied().ok_or(ProxyDecodeError::BadHeader)?;
    let id = header
        .get(18..26)
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map(u64::from_be_bytes)
        .ok_or(ProxyDecodeError::BadHeader)?;
    let body = match kind {
        KIND_COMMIT => {
            let request =
                wire::decode_commit_request(payload).map_err(ProxyDecodeError::Payload)?;
            let mut again = [0u8; MAX_COMMIT_REQUEST_LEN];
            let encoded =
                wire::encode_nexus(&request, &mut again).map_err(ProxyDecodeError::Payload)?;
            if encoded != payload {
                return Err(ProxyDecodeError::NotCanonical);
            }
            ProxyBody::Request(ProxyRequest::Commit(request))
        }
        KIND_PREPARE_AND_COMMIT => {
            let mut slot = Box::new(DecodeSlot::<Configuration>::new());
            let config = wire::decode_configuration_into(payload, &mut slot)
                .map_err(ProxyDecodeError::Payload)?;
            ProxyBody::Request(ProxyRequest::PrepareAndCommit(Box::new(config.clone())))
        }
        KIND_STATUS if payload.is_empty() => ProxyBody::Request(ProxyRequest::NodeStatus),
        KIND_STATUS => return Err(ProxyDecodeError::Payload(WireError::TrailingBytes)),
        k if k == ANSWER | KIND_COMMIT => {
            ProxyBody::Answer(ProxyAnswer::Commit(canonical_answer(payload)?))
        }
        k if k == ANSWER | KIND_PREPARE_AND_COMMIT => {
            ProxyBody::Answer(ProxyAnswer::PrepareAndCommit(canonical_answer(payload)?))
        }
        k if k == ANSWER | KIND_STATUS => ProxyBody::Answer(ProxyAnswer::NodeStatus(Box::new(
            canonical_answer(payload)?,
        ))),
        KIND_UNAVAILABLE => match payload {
            [byte] => ProxyBody::Answer(ProxyAnswer::Unavailable(
                RemoteUnavailable::from_byte(*byte).ok_or(ProxyDecodeError::UnknownKind(*byte))?,
            )),
            _ => return Err(ProxyDecodeError::Payload(WireError::Malformed)),
        },
        other => return Err(ProxyDecodeError::UnknownKind(other)),
    };
    Ok(ProxyFrame { rack_id, id, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tq_core::api::{Activity, StateSummary};
    use tq_core::ids::{Epoch, PlatformId};
    use tq_core::node::Counters;

    const RACK: RackId = RackId([9; 16]);

    fn status() -> NodeStatus {
        NodeStatus {
            id: PlatformId::new("p", "s").unwrap(),
            connected: heapless::Vec::new(),
            state: StateSummary::default(),
            state_stored: true,
            activity: Activity::default(),
            alarms: heapless::Vec::new(),
            counters: Counters::new(),
        }
    }

    #[test]
    fn frames_round_trip() {
        let commit = CommitRequest {
            rack_id: RACK,
            epoch: Epoch(3),
        };
        for request in [ProxyRequest::Commit(commit), ProxyRequest::NodeStatus] {
            let bytes = encode_request(RACK, 7, &request).unwrap();
            assert_eq!(bytes[0], PROXY_FRAME);
            assert_eq!(&bytes[1..17], RACK.as_bytes());
            assert_eq!(&bytes[18..26], &7u64.to_be_bytes());
            let frame = decode(&bytes).unwrap();
            assert_eq!((frame.rack_id, frame.id), (RACK, 7));
            assert_eq!(frame.body, ProxyBody::Request(request));
        }
        let status = status();
        let status_ref = NodeStatusRef {
            id: status.id.clone(),
            connected: &[],
            state: status.state.clone(),
            state_stored: true,
            activity: status.activity,
            alarms: heapless::Vec::new(),
            counters: status.counters,
        };
        let answers: [(AnswerRef<'_>, ProxyAnswer); 4] = [
            (
                AnswerRef::Commit(&Err(CommitError::NotPrepared(Epoch(3)))),
                ProxyAnswer::Commit(Err(CommitError::NotPrepared(Epoch(3)))),
            ),
            (
                AnswerRef::PrepareAndCommit(&Ok(PrepareAndCommitOutcome::ComputingShare)),
                ProxyAnswer::PrepareAndCommit(Ok(PrepareAndCommitOutcome::ComputingShare)),
            ),
            (
                AnswerRef::NodeStatus(&status_ref),
                ProxyAnswer::NodeStatus(Box::new(status.clone())),
            ),
            (
                AnswerRef::Unavailable(RemoteUnavailable::NotStored),
                ProxyAnswer::Unavailable(RemoteUnavailable::NotStored),
            ),
        ];
        for (answer, expected) in answers {
            let bytes = encode_answer(RACK, u64::MAX, answer).unwrap();
            assert!(bytes.len() <= MAX_PROXY_FRAME_LEN);
            let frame = decode(&bytes).unwrap();
            assert_eq!(frame.id, u64::MAX);
            assert_eq!(frame.body, ProxyBody::Answer(expected));
        }
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        let good = encode_request(RACK, 1, &ProxyRequest::NodeStatus).unwrap();
        assert_eq!(decode(&good[..25]), Err(ProxyDecodeError::BadHeader));
        let mut core_version = good.to_vec();
        core_version[0] = PEER_MSG_VERSION;
        assert_eq!(decode(&core_version), Err(ProxyDecodeError::BadHeader));
        let mut kind = good.to_vec();
        kind[17] = 0x42;
        assert_eq!(decode(&kind), Err(ProxyDecodeError::UnknownKind(0x42)));
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert!(matches!(
            decode(&trailing),
            Err(ProxyDecodeError::Payload(_))
        ));
        let mut answer = encode_answer(
            RACK,
            1,
            AnswerRef::Commit(&Ok(CommitOutcome::AlreadyCommitted)),
        )
        .unwrap()
        .to_vec();
        // A variant index as a non-minimal varint (0x81 0x00 for 1).
        let tag = answer.len() - 1;
        answer[tag] |= 0x80;
        answer.push(0);
        assert!(decode(&answer).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decoding_is_total(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = decode(&bytes);
            let mut framed = bytes.clone();
            if framed.len() >= PROXY_HEADER_LEN {
                framed[0] = PROXY_FRAME;
            }
            if let Ok(frame) = decode(&framed) {
                // Whatever decodes, re-encodes to the same bytes.
                let again = match &frame.body {
                    ProxyBody::Request(request) => encode_request(frame.rack_id, frame.id, request),
                    ProxyBody::Answer(ProxyAnswer::Unavailable(reason)) => {
                        encode_answer(frame.rack_id, frame.id, AnswerRef::Unavailable(*reason))
                    }
                    ProxyBody::Answer(ProxyAnswer::Commit(result)) => {
                        encode_answer(frame.rack_id, frame.id, AnswerRef::Commit(result))
                    }
                    ProxyBody::Answer(ProxyAnswer::PrepareAndCommit(result)) => {
                        encode_answer(frame.rack_id, frame.id, AnswerRef::PrepareAndCommit(result))
                    }
                    ProxyBody::Answer(ProxyAnswer::NodeStatus(_)) => return Ok(()),
                };
                proptest::prop_assert_eq!(&again.unwrap()[..], &framed[..]);
            }
        }
    }
}
