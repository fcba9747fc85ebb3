//! Proxied calls: Nexus asks a sled it can reach to pass a call to one it
//! cannot (a sled that has not joined yet has no control-plane address).
//!
//! Only `commit_configuration`, `prepare_and_commit` and node status are
//! proxied. The forwarding sled sends a request frame over its peer
//! connection to the target, which runs the call exactly as its own handle
//! would and sends the answer frame back. The frame carries Nexus's
//! [`RequestAuth`] for the target, which the target's node checks before
//! running anything (a refusal is counted there and answered as such), and
//! the answer carries the target node's [`AnswerTag`]: the forwarding sled
//! can neither make a request of its own nor alter one or its answer
//! ([`tq_core::authority`]). The forwarding sled fails the
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
//! it) or [`PROXY_FRAME`] (proxy format 2; format 1, `0xF1`, carried no
//! authenticator and is no longer read). The core's peer message
//! versions count up from 1 and stay below 0xF0 (checked at compile time),
//! so the two never meet. Both start with the same header, so the network checks the
//! rack id of either the same way:
//!
//! ```text
//! offset  size  field
//! 0       1     PROXY_FRAME (0xF2)
//! 1       16    rack id
//! 17      1     kind: 0x01 commit, 0x02 prepare-and-commit, 0x03 node status (requests);
//!               0x81, 0x82, 0x83 their answers; 0xFE refused; 0xFF unavailable
//! 18      8     call id, big-endian (chosen by the forwarding sled, echoed in the answer)
//! 26      ..    payload
//! ```
//!
//! A request's payload is the length of Nexus's authenticator (one byte),
//! the authenticator, then the request; an answer's is the node's answer
//! tag (33 bytes), then the answer:
//!
//! ```text
//! request:  auth length (1) | RequestAuth (..) | CommitRequest, Configuration, or nothing (node status)
//! answer:   AnswerTag (33)  | the call's Result, or NodeStatus
//! refused:  RequestRefusal (2)
//! unavailable: RemoteUnavailable (1)
//! ```
//!
//! Each value is the core's own Nexus encoding (`tq_core::wire`,
//! `tq_core::authority`), version byte included. An unavailable answer's
//! payload is one byte, the [`RemoteUnavailable`] reason; it and a refusal
//! carry no tag (the host made the first, and a node makes no tag for a
//! request it refused), so Nexus counts either as no answer. Decoding is total and bounded (the
//! largest frame is [`MAX_PROXY_FRAME_LEN`]) and canonical: requests go
//! through the core's in-place decoders, answers through the core's
//! decoders and are re-encoded and compared, so a value has one accepted
//! encoding.

use crate::net::Frame;
use tq_core::api::{
    CommitOutcome, CommitRequest, NodeStatus, NodeStatusRef, PrepareAndCommitOutcome,
};
use tq_core::authority::{
    self, ANSWER_TAG_LEN, AnswerTag, MAX_REQUEST_AUTH_LEN, RequestAuth, RequestRefusal,
};
use tq_core::config::Configuration;
use tq_core::ids::RackId;
use tq_core::node::{CommitError, PrepareAndCommitError};
use tq_core::wire::{
    self, DecodeSlot, MAX_ANSWER_LEN, MAX_COMMIT_REQUEST_LEN, MAX_CONFIGURATION_LEN,
    MAX_NODE_STATUS_LEN, NexusWire, PEER_MSG_VERSION, WireError,
};

/// The first byte of a proxy frame (format 2: authenticated requests,
/// tagged answers).
pub const PROXY_FRAME: u8 = 0xF2;

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

/// The largest proxy frame: the largest value behind the longest prefix (a
/// request's authenticator and its length).
pub const MAX_PROXY_FRAME_LEN: usize =
    PROXY_HEADER_LEN + max(1 + MAX_REQUEST_AUTH_LEN, ANSWER_TAG_LEN) + MAX_PAYLOAD_LEN;

const _: () = assert!(
    MAX_REQUEST_AUTH_LEN <= u8::MAX as usize,
    "an authenticator's length is one byte"
);

const KIND_COMMIT: u8 = 0x01;
const KIND_PREPARE_AND_COMMIT: u8 = 0x02;
const KIND_STATUS: u8 = 0x03;
const ANSWER: u8 = 0x80;
const KIND_REFUSED: u8 = 0xFE;
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

/// The answer to a [`ProxyRequest`], with the target node's tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyAnswer {
    /// From `commit_configuration`.
    Commit(Result<CommitOutcome, CommitError>, AnswerTag),
    /// From `prepare_and_commit`.
    PrepareAndCommit(
        Result<PrepareAndCommitOutcome, PrepareAndCommitError>,
        AnswerTag,
    ),
    /// The node's status.
    NodeStatus(Box<NodeStatus>, AnswerTag),
    /// The target's node refused the request's authenticator.
    Refused(RequestRefusal),
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
    /// A call to run here, with Nexus's authenticator for this sled.
    Request(Box<RequestAuth>, ProxyRequest),
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

/// What goes before a frame's value: a request's authenticator (behind
/// its length) or an answer's tag.
enum Prefix<'a> {
    None,
    Auth(&'a RequestAuth),
    Tag(&'a AnswerTag),
}

fn frame_with<T: NexusWire + ?Sized>(
    rack: RackId,
    kind: u8,
    id: u64,
    prefix: Prefix<'_>,
    value: Option<&T>,
) -> Result<Frame, WireError> {
    let mut buf = vec![0u8; PROXY_HEADER_LEN + 1 + MAX_REQUEST_AUTH_LEN + T::MAX_LEN];
    let mut len = PROXY_HEADER_LEN;
    {
        let (header, mut rest) = buf.split_at_mut(PROXY_HEADER_LEN);
        write_header(header, rack, kind, id);
        match prefix {
            Prefix::None => {}
            Prefix::Auth(auth) => {
                let (length, after) = rest.split_first_mut().ok_or(WireError::BufferTooSmall)?;
                let written = wire::encode_nexus(auth, after)?.len();
                *length = u8::try_from(written).map_err(|_| WireError::BufferTooSmall)?;
                len += 1 + written;
                rest = after.get_mut(written..).ok_or(WireError::BufferTooSmall)?;
            }
            Prefix::Tag(tag) => {
                let written = wire::encode_nexus(tag, rest)?.len();
                len += written;
                rest = rest.get_mut(written..).ok_or(WireError::BufferTooSmall)?;
            }
        }
        if let Some(value) = value {
            len += wire::encode_nexus(value, rest)?.len();
        }
    }
    buf.truncate(len);
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

/// Encodes a request frame carrying `auth`, Nexus's authenticator of
/// `request` for the target.
pub fn encode_request(
    rack: RackId,
    id: u64,
    auth: &RequestAuth,
    request: &ProxyRequest,
) -> Result<Frame, WireError> {
    let auth = Prefix::Auth(auth);
    match request {
        ProxyRequest::Commit(commit) => frame_with(rack, KIND_COMMIT, id, auth, Some(commit)),
        ProxyRequest::PrepareAndCommit(config) => frame_with(
            rack,
            KIND_PREPARE_AND_COMMIT,
            id,
            auth,
            Some(config.as_ref()),
        ),
        ProxyRequest::NodeStatus => frame_with::<CommitRequest>(rack, KIND_STATUS, id, auth, None),
    }
}

/// An answer as the target encodes it, with its node's tag: the node
/// status borrowed from the node.
pub enum AnswerRef<'a> {
    /// From `commit_configuration`.
    Commit(&'a Result<CommitOutcome, CommitError>, &'a AnswerTag),
    /// From `prepare_and_commit`.
    PrepareAndCommit(
        &'a Result<PrepareAndCommitOutcome, PrepareAndCommitError>,
        &'a AnswerTag,
    ),
    /// The node's status.
    NodeStatus(&'a NodeStatusRef<'a>, &'a AnswerTag),
    /// The node refused the request's authenticator.
    Refused(RequestRefusal),
    /// The call could not run.
    Unavailable(RemoteUnavailable),
}

/// Encodes an answer frame.
pub fn encode_answer(rack: RackId, id: u64, answer: AnswerRef<'_>) -> Result<Frame, WireError> {
    match answer {
        AnswerRef::Commit(result, tag) => frame_with(
            rack,
            ANSWER | KIND_COMMIT,
            id,
            Prefix::Tag(tag),
            Some(result),
        ),
        AnswerRef::PrepareAndCommit(result, tag) => frame_with(
            rack,
            ANSWER | KIND_PREPARE_AND_COMMIT,
            id,
            Prefix::Tag(tag),
            Some(result),
        ),
        AnswerRef::NodeStatus(status, tag) => frame_with(
            rack,
            ANSWER | KIND_STATUS,
            id,
            Prefix::Tag(tag),
            Some(status),
        ),
        AnswerRef::Refused(refusal) => {
            frame_with(rack, KIND_REFUSED, id, Prefix::None, Some(&refusal))
        }
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

/// Splits a request's payload into Nexus's authenticator and the rest.
fn take_auth(payload: &[u8]) -> Result<(Box<RequestAuth>, &[u8]), ProxyDecodeError> {
    let (&len, rest) = payload
        .split_first()
        .ok_or(ProxyDecodeError::Payload(WireError::Empty))?;
    let (auth, rest) = rest
        .split_at_checked(usize::from(len))
        .ok_or(ProxyDecodeError::Payload(WireError::Malformed))?;
    let auth = authority::decode_request_auth(auth).map_err(ProxyDecodeError::Payload)?;
    Ok((Box::new(auth), rest))
}

/// Splits an answer's payload into its tag and the answer.
fn take_tag(payload: &[u8]) -> Result<(AnswerTag, &[u8]), ProxyDecodeError> {
    let (tag, rest) = payload
        .split_at_checked(ANSWER_TAG_LEN)
        .ok_or(ProxyDecodeError::Payload(WireError::Malformed))?;
    let tag = authority::decode_answer_tag(tag).map_err(ProxyDecodeError::Payload)?;
    Ok((tag, rest))
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
            let (auth, payload) = take_auth(payload)?;
            let request =
                wire::decode_commit_request(payload).map_err(ProxyDecodeError::Payload)?;
            let mut again = [0u8; MAX_COMMIT_REQUEST_LEN];
            let encoded =
                wire::encode_nexus(&request, &mut again).map_err(ProxyDecodeError::Payload)?;
            if encoded != payload {
                return Err(ProxyDecodeError::NotCanonical);
            }
            ProxyBody::Request(auth, ProxyRequest::Commit(request))
        }
        KIND_PREPARE_AND_COMMIT => {
            let (auth, payload) = take_auth(payload)?;
            let mut slot = Box::new(DecodeSlot::<Configuration>::new());
            let config = wire::decode_configuration_into(payload, &mut slot)
                .map_err(ProxyDecodeError::Payload)?;
            ProxyBody::Request(
                auth,
                ProxyRequest::PrepareAndCommit(Box::new(config.clone())),
            )
        }
        KIND_STATUS => match take_auth(payload)? {
            (auth, []) => ProxyBody::Request(auth, ProxyRequest::NodeStatus),
            _ => return Err(ProxyDecodeError::Payload(WireError::TrailingBytes)),
        },
        k if k == ANSWER | KIND_COMMIT => {
            let (tag, payload) = take_tag(payload)?;
            ProxyBody::Answer(ProxyAnswer::Commit(canonical_answer(payload)?, tag))
        }
        k if k == ANSWER | KIND_PREPARE_AND_COMMIT => {
            let (tag, payload) = take_tag(payload)?;
            ProxyBody::Answer(ProxyAnswer::PrepareAndCommit(
                canonical_answer(payload)?,
                tag,
            ))
        }
        k if k == ANSWER | KIND_STATUS => {
            let (tag, payload) = take_tag(payload)?;
            ProxyBody::Answer(ProxyAnswer::NodeStatus(
                Box::new(canonical_answer(payload)?),
                tag,
            ))
        }
        KIND_REFUSED => ProxyBody::Answer(ProxyAnswer::Refused(
            authority::decode_request_refusal(payload).map_err(ProxyDecodeError::Payload)?,
        )),
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

    /// An authenticator as the frames carry it (the frames do not check
    /// it: the target's node does).
    fn auth(serial: &str) -> RequestAuth {
        RequestAuth {
            rack_id: RACK,
            target: PlatformId::new("913-0000019", serial).unwrap(),
            nonce: [0x5a; 16],
            tag: [0xc3; 32],
        }
    }

    const TAG: AnswerTag = AnswerTag([0x77; 32]);

    #[test]
    fn frames_round_trip() {
        let commit = CommitRequest {
            rack_id: RACK,
            epoch: Epoch(3),
        };
        // The longest platform id makes the longest authenticator.
        let long = "S".repeat(tq_core::limits::PLATFORM_ID_FIELD_LEN);
        for (request, serial) in [
            (ProxyRequest::Commit(commit), "SN0001"),
            (ProxyRequest::NodeStatus, long.as_str()),
        ] {
            let auth = auth(serial);
            let bytes = encode_request(RACK, 7, &auth, &request).unwrap();
            assert_eq!(bytes[0], PROXY_FRAME);
            assert_eq!(&bytes[1..17], RACK.as_bytes());
            assert_eq!(&bytes[18..26], &7u64.to_be_bytes());
            assert!(bytes.len() <= MAX_PROXY_FRAME_LEN);
            let frame = decode(&bytes).unwrap();
            assert_eq!((frame.rack_id, frame.id), (RACK, 7));
            assert_eq!(frame.body, ProxyBody::Request(Box::new(auth), request));
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
        let answers: [(AnswerRef<'_>, ProxyAnswer); 5] = [
            (
                AnswerRef::Commit(&Err(CommitError::NotPrepared(Epoch(3))), &TAG),
                ProxyAnswer::Commit(Err(CommitError::NotPrepared(Epoch(3))), TAG),
            ),
            (
                AnswerRef::PrepareAndCommit(&Ok(PrepareAndCommitOutcome::ComputingShare), &TAG),
                ProxyAnswer::PrepareAndCommit(Ok(PrepareAndCommitOutcome::ComputingShare), TAG),
            ),
            (
                AnswerRef::NodeStatus(&status_ref, &TAG),
                ProxyAnswer::NodeStatus(Box::new(status.clone()), TAG),
            ),
            (
                AnswerRef::Refused(RequestRefusal::BadTag),
                ProxyAnswer::Refused(RequestRefusal::BadTag),
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
    fn the_largest_request_frame_fits_the_bound() {
        use tq_core::config::{ConfigFields, Member};
        use tq_core::crypto::{EncryptedRackSecrets, ShareDigest};
        use tq_core::ids::Threshold;
        use tq_core::limits::{MAX_MEMBERS, PLATFORM_ID_FIELD_LEN};
        let field =
            |c: char, i: usize| format!("{c}{i:0>width$}", width = PLATFORM_ID_FIELD_LEN - 1);
        let members: tq_core::config::Members = (0..MAX_MEMBERS)
            .map(|i| Member {
                id: PlatformId::new(&field('P', i), &field('S', i)).unwrap(),
                share_digest: ShareDigest([0xee; 32]),
            })
            .collect();
        let sealed = vec![0x5c; tq_core::limits::MAX_SEALED_LEN];
        let config = Configuration::new(ConfigFields {
            rack_id: RACK,
            epoch: Epoch(u64::MAX),
            coordinator: members[0].id.clone(),
            members,
            threshold: Threshold::new(31).unwrap(),
            encrypted_rack_secrets: Some(
                EncryptedRackSecrets::from_parts([1; 32], &sealed).unwrap(),
            ),
        })
        .unwrap();
        let auth = RequestAuth {
            target: PlatformId::new(&field('P', 0), &field('S', 0)).unwrap(),
            ..auth("x")
        };
        let request = ProxyRequest::PrepareAndCommit(Box::new(config));
        let bytes = encode_request(RACK, 1, &auth, &request).unwrap();
        assert!(bytes.len() <= MAX_PROXY_FRAME_LEN, "{} bytes", bytes.len());
        assert_eq!(
            decode(&bytes).unwrap().body,
            ProxyBody::Request(Box::new(auth), request)
        );
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        let good = encode_request(RACK, 1, &auth("SN1"), &ProxyRequest::NodeStatus).unwrap();
        assert_eq!(decode(&good[..25]), Err(ProxyDecodeError::BadHeader));
        let mut core_version = good.to_vec();
        core_version[0] = PEER_MSG_VERSION;
        assert_eq!(decode(&core_version), Err(ProxyDecodeError::BadHeader));
        let mut format_1 = good.to_vec();
        format_1[0] = 0xF1;
        assert_eq!(decode(&format_1), Err(ProxyDecodeError::BadHeader));
        let mut kind = good.to_vec();
        kind[17] = 0x42;
        assert_eq!(decode(&kind), Err(ProxyDecodeError::UnknownKind(0x42)));
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert!(matches!(
            decode(&trailing),
            Err(ProxyDecodeError::Payload(_))
        ));
        // A request without its authenticator, or with a length past it.
        assert!(matches!(
            decode(&good[..PROXY_HEADER_LEN]),
            Err(ProxyDecodeError::Payload(_))
        ));
        let mut long = good.to_vec();
        long[PROXY_HEADER_LEN] += 1;
        assert!(decode(&long).is_err());
        // An answer without its tag.
        let answer = encode_answer(
            RACK,
            1,
            AnswerRef::Commit(&Ok(CommitOutcome::AlreadyCommitted), &TAG),
        )
        .unwrap()
        .to_vec();
        let mut untagged = answer[..PROXY_HEADER_LEN].to_vec();
        untagged.extend_from_slice(&answer[PROXY_HEADER_LEN + ANSWER_TAG_LEN..]);
        assert!(decode(&untagged).is_err());
        // A variant index as a non-minimal varint (0x81 0x00 for 1).
        let mut answer = answer;
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
                    ProxyBody::Request(auth, request) => {
                        encode_request(frame.rack_id, frame.id, auth, request)
                    }
                    ProxyBody::Answer(ProxyAnswer::Unavailable(reason)) => {
                        encode_answer(frame.rack_id, frame.id, AnswerRef::Unavailable(*reason))
                    }
                    ProxyBody::Answer(ProxyAnswer::Refused(refusal)) => {
                        encode_answer(frame.rack_id, frame.id, AnswerRef::Refused(*refusal))
                    }
                    ProxyBody::Answer(ProxyAnswer::Commit(result, tag)) => {
                        encode_answer(frame.rack_id, frame.id, AnswerRef::Commit(result, tag))
                    }
                    ProxyBody::Answer(ProxyAnswer::PrepareAndCommit(result, tag)) => encode_answer(
                        frame.rack_id,
                        frame.id,
                        AnswerRef::PrepareAndCommit(result, tag),
                    ),
                    ProxyBody::Answer(ProxyAnswer::NodeStatus(..)) => return Ok(()),
                };
                proptest::prop_assert_eq!(&again.unwrap()[..], &framed[..]);
            }
        }
    }
}
