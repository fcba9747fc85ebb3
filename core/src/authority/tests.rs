use std::collections::BTreeMap;
use std::string::String;
use std::vec::Vec;

use super::*;
use crate::api::{CommitError, CommitOutcome, CoordinatorStatus};
use crate::ids::{Epoch, Threshold};
use crate::member_set::MemberSet;

/// Vectors written by `core/tests/kat/authority_kat.py` with Python's
/// `hmac` and `hashlib` (HKDF from RFC 5869 written there), an
/// implementation independent of this one.
const KAT: &str = include_str!("../../tests/kat/authority_vectors.txt");

fn hex<const N: usize>(text: &str) -> [u8; N] {
    let bytes = hex_vec(text);
    bytes.try_into().unwrap()
}

fn hex_vec(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn sled(text: &str) -> PlatformId {
    let (part, serial) = text.split_once(':').unwrap();
    PlatformId::new(part, serial).unwrap()
}

/// The vector file's blocks, each as its key=value lines (repeated keys
/// in order), and the file's authority key.
fn blocks() -> (NexusAuthorityKey, Vec<BTreeMap<String, Vec<String>>>) {
    let mut authority = None;
    let mut blocks = Vec::new();
    for block in KAT.split("\n\n") {
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in block.lines().filter(|line| !line.starts_with('#')) {
            let (key, value) = line.split_once('=').unwrap();
            fields.entry(key.into()).or_default().push(value.into());
        }
        if let Some(key) = fields.get("authority") {
            authority = Some(NexusAuthorityKey::from_bytes(hex(&key[0])));
        } else if !fields.is_empty() {
            blocks.push(fields);
        }
    }
    (authority.unwrap(), blocks)
}

fn one<'a>(block: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    &block[key][0]
}

const RACK: RackId = RackId([
    0x5e, 0x2c, 0x8a, 0x9b, 0x4f, 0x1d, 0x4e, 0x3a, 0x8b, 0x7c, 0x6d, 0x5e, 0x4f, 0x3a, 0x2b, 0x1c,
]);

fn this_sled() -> PlatformId {
    sled("913-0000019:SN0003")
}

fn encoded<T: NexusWire + ?Sized>(value: &T) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    wire::encode_nexus(value, &mut buf).unwrap().to_vec()
}

#[test]
fn sled_keys_match_the_python_vectors() {
    let (authority, blocks) = blocks();
    let mut seen = 0;
    for block in blocks.iter().filter(|b| one(b, "kind") == "key") {
        let rack = RackId(hex(one(block, "rack_id")));
        let key = authority.sled_key(rack, &sled(one(block, "sled"))).unwrap();
        assert_eq!(
            key.expose_bytes(),
            &hex::<32>(one(block, "key")),
            "{}",
            one(block, "name")
        );
        assert_eq!(key.rack_id(), rack);
        seen += 1;
    }
    assert_eq!(seen, 3);
}

#[test]
fn request_tags_match_the_python_vectors() {
    let (authority, blocks) = blocks();
    let key = authority.sled_key(RACK, &this_sled()).unwrap();
    let mut seen = 0;
    for block in blocks.iter().filter(|b| one(b, "kind") == "request") {
        let name = one(block, "name");
        let nonce = hex(one(block, "nonce"));
        let body = hex_vec(one(block, "body"));
        let call: u8 = one(block, "call").parse().unwrap();
        let auth = match call {
            3 => {
                let request = CommitRequest {
                    rack_id: RACK,
                    epoch: Epoch(one(block, "epoch").parse().unwrap()),
                };
                assert_eq!(encoded(&request), body, "{name}: body");
                key.authorize(&this_sled(), nonce, &request).unwrap()
            }
            1 => {
                let members: Vec<PlatformId> = block["member"].iter().map(|m| sled(m)).collect();
                let msg = ReconfigureMsg {
                    rack_id: RACK,
                    epoch: Epoch(one(block, "epoch").parse().unwrap()),
                    last_committed_epoch: Some(Epoch(
                        one(block, "last_committed").parse().unwrap(),
                    )),
                    members: MemberSet::new(&members).unwrap(),
                    threshold: Threshold::new(one(block, "threshold").parse().unwrap()).unwrap(),
                };
                assert_eq!(encoded(&msg), body, "{name}: body");
                key.authorize(&this_sled(), nonce, &msg).unwrap()
            }
            5 => {
                assert!(body.is_empty());
                key.authorize(&this_sled(), nonce, &CoordinatorStatusQuery)
                    .unwrap()
            }
            other => panic!("{name}: no case for call {other}"),
        };
        assert_eq!(auth.tag, hex::<32>(one(block, "tag")), "{name}: tag");
        assert_eq!(auth.nonce, nonce);
        assert_eq!(auth.rack_id, RACK);
        assert_eq!(auth.target, this_sled());
        seen += 1;
    }
    assert_eq!(seen, 4);
}

#[test]
fn answer_tags_match_the_python_vectors() {
    let (authority, blocks) = blocks();
    let key = authority.sled_key(RACK, &this_sled()).unwrap();
    let mut seen = 0;
    for block in blocks.iter().filter(|b| one(b, "kind") == "answer") {
        let name = one(block, "name");
        let nonce = hex(one(block, "nonce"));
        let bytes = hex_vec(one(block, "answer"));
        let want = AnswerTag(hex(one(block, "tag")));
        let tag = match one(block, "outcome") {
            "committed" => {
                let answer: Result<CommitOutcome, CommitError> = Ok(CommitOutcome::Committed);
                assert_eq!(encoded(&answer), bytes, "{name}: answer");
                let tag = key
                    .answer_tag(&this_sled(), NexusCall::Commit, &nonce, &answer)
                    .unwrap();
                key.verify_answer(&this_sled(), NexusCall::Commit, &nonce, &answer, &want)
                    .unwrap();
                key.verify_answer_bytes(&this_sled(), NexusCall::Commit, &nonce, &bytes, &want)
                    .unwrap();
                tag
            }
            "none" => {
                let answer: Option<CoordinatorStatus> = None;
                assert_eq!(encoded(&answer), bytes, "{name}: answer");
                key.answer_tag(&this_sled(), NexusCall::CoordinatorStatus, &nonce, &answer)
                    .unwrap()
            }
            other => panic!("{name}: no case for {other}"),
        };
        assert_eq!(tag.0, want.0, "{name}: tag");
        seen += 1;
    }
    assert_eq!(seen, 2);
}

fn key() -> SledRequestKey {
    NexusAuthorityKey::from_bytes([7; 32])
        .sled_key(RACK, &this_sled())
        .unwrap()
}

fn commit(epoch: u64) -> CommitRequest {
    CommitRequest {
        rack_id: RACK,
        epoch: Epoch(epoch),
    }
}

#[test]
fn a_request_made_with_the_key_verifies() {
    let key = key();
    let request = commit(4);
    let auth = key.authorize(&this_sled(), [1; 16], &request).unwrap();
    let verified = verify(Some(&key), Some(RACK), &this_sled(), &auth, &request).unwrap();
    assert_eq!(verified.body(), &request);
    assert_eq!(verified.nonce(), &[1; 16]);
    assert_eq!(verified.call(), NexusCall::Commit);
}

#[test]
fn every_refusal_in_its_order() {
    let key = key();
    let request = commit(4);
    let auth = key.authorize(&this_sled(), [1; 16], &request).unwrap();
    let check = |auth: &RequestAuth, body: &CommitRequest, key: Option<&SledRequestKey>| {
        verify(key, Some(RACK), &this_sled(), auth, body).map(|_| ())
    };
    // Another rack in the authenticator, or in the body: refused first,
    // even with no key.
    let mut foreign = auth.clone();
    foreign.rack_id = RackId([9; 16]);
    assert_eq!(
        check(&foreign, &request, None),
        Err(RequestRefusal::ForeignRack)
    );
    let other_body = CommitRequest {
        rack_id: RackId([9; 16]),
        ..request
    };
    assert_eq!(
        check(&auth, &other_body, Some(&key)),
        Err(RequestRefusal::ForeignRack)
    );
    // Another sled.
    let mut elsewhere = auth.clone();
    elsewhere.target = sled("913-0000019:SN0004");
    assert_eq!(
        check(&elsewhere, &request, None),
        Err(RequestRefusal::WrongTarget)
    );
    // No key.
    assert_eq!(check(&auth, &request, None), Err(RequestRefusal::NoKey));
    // An altered body, nonce or tag, or another key.
    assert_eq!(
        check(&auth, &commit(5), Some(&key)),
        Err(RequestRefusal::BadTag)
    );
    let mut nonce = auth.clone();
    nonce.nonce[3] ^= 1;
    assert_eq!(
        check(&nonce, &request, Some(&key)),
        Err(RequestRefusal::BadTag)
    );
    let mut tag = auth.clone();
    tag.tag[31] ^= 0x80;
    assert_eq!(
        check(&tag, &request, Some(&key)),
        Err(RequestRefusal::BadTag)
    );
    let stranger = NexusAuthorityKey::from_bytes([8; 32])
        .sled_key(RACK, &this_sled())
        .unwrap();
    assert_eq!(
        check(&auth, &request, Some(&stranger)),
        Err(RequestRefusal::BadTag)
    );
    assert_eq!(check(&auth, &request, Some(&key)), Ok(()));
}

#[test]
fn a_node_that_knows_no_rack_still_refuses_a_body_of_another() {
    let key = key();
    let request = commit(4);
    let auth = key.authorize(&this_sled(), [1; 16], &request).unwrap();
    let other = CommitRequest {
        rack_id: RackId([9; 16]),
        ..request
    };
    assert_eq!(
        verify(None, None, &this_sled(), &auth, &other).map(|_| ()),
        Err(RequestRefusal::ForeignRack)
    );
}

#[test]
fn a_tag_for_one_call_does_not_pass_for_another() {
    // The bodiless queries differ only by their call byte.
    let key = key();
    let auth = key
        .authorize(&this_sled(), [1; 16], &CoordinatorStatusQuery)
        .unwrap();
    assert!(
        verify(
            Some(&key),
            Some(RACK),
            &this_sled(),
            &auth,
            &CoordinatorStatusQuery
        )
        .is_ok()
    );
    assert_eq!(
        verify(
            Some(&key),
            Some(RACK),
            &this_sled(),
            &auth,
            &NodeStatusQuery
        )
        .map(|_| ()),
        Err(RequestRefusal::BadTag)
    );
    assert_eq!(
        verify(
            Some(&key),
            Some(RACK),
            &this_sled(),
            &auth,
            &LatestSecretQuery
        )
        .map(|_| ()),
        Err(RequestRefusal::BadTag)
    );
}

#[test]
fn an_answer_is_bound_to_its_sled_call_nonce_and_bytes() {
    let key = key();
    let answer: Result<CommitOutcome, CommitError> = Ok(CommitOutcome::Committed);
    let tag = key
        .answer_tag(&this_sled(), NexusCall::Commit, &[1; 16], &answer)
        .unwrap();
    let ok =
        |sled: &PlatformId, call, nonce: &[u8; 16], answer: &Result<CommitOutcome, CommitError>| {
            key.verify_answer(sled, call, nonce, answer, &tag).is_ok()
        };
    assert!(ok(&this_sled(), NexusCall::Commit, &[1; 16], &answer));
    assert!(!ok(
        &sled("913-0000019:SN0004"),
        NexusCall::Commit,
        &[1; 16],
        &answer
    ));
    assert!(!ok(
        &this_sled(),
        NexusCall::PrepareAndCommit,
        &[1; 16],
        &answer
    ));
    assert!(!ok(&this_sled(), NexusCall::Commit, &[2; 16], &answer));
    assert!(!ok(
        &this_sled(),
        NexusCall::Commit,
        &[1; 16],
        &Ok(CommitOutcome::AlreadyCommitted)
    ));
    let mut bytes = encoded(&answer);
    assert!(
        key.verify_answer_bytes(&this_sled(), NexusCall::Commit, &[1; 16], &bytes, &tag)
            .is_ok()
    );
    bytes[2] ^= 1;
    assert_eq!(
        key.verify_answer_bytes(&this_sled(), NexusCall::Commit, &[1; 16], &bytes, &tag),
        Err(BadAnswerTag)
    );
}

#[test]
fn keys_show_nothing_of_their_bytes() {
    let authority = NexusAuthorityKey::from_bytes([0xab; 32]);
    let key = authority.sled_key(RACK, &this_sled()).unwrap();
    let shown = std::format!("{authority:?} {key:?} {authority:#?} {key:#?}");
    let hex_of = |bytes: &[u8]| {
        bytes
            .iter()
            .map(|b| std::format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(
        !shown.contains(&hex_of(&authority.expose_bytes()[..4])),
        "{shown}"
    );
    assert!(
        !shown.contains(&hex_of(&key.expose_bytes()[..4])),
        "{shown}"
    );
    assert!(
        !shown.contains(&std::format!("{:?}", &key.expose_bytes()[..4])),
        "{shown}"
    );
    assert!(!shown.contains("171"), "{shown}");
}

#[test]
fn keys_differ_by_rack_and_sled() {
    let authority = NexusAuthorityKey::from_bytes([3; 32]);
    let a = authority.sled_key(RACK, &this_sled()).unwrap();
    let b = authority.sled_key(RackId([1; 16]), &this_sled()).unwrap();
    let c = authority
        .sled_key(RACK, &sled("913-0000019:SN0004"))
        .unwrap();
    assert_ne!(a.expose_bytes(), b.expose_bytes());
    assert_ne!(a.expose_bytes(), c.expose_bytes());
}

#[test]
fn the_authenticator_and_the_tag_round_trip_in_postcard_at_their_largest() {
    let long = sled("XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY");
    let auth = RequestAuth {
        rack_id: RACK,
        target: long,
        nonce: [0xff; 16],
        tag: [0xee; 32],
    };
    let bytes = encoded(&auth);
    assert_eq!(bytes.len(), MAX_REQUEST_AUTH_LEN);
    assert_eq!(decode_request_auth(&bytes).unwrap(), auth);
    let tag = AnswerTag([0x11; 32]);
    let bytes = encoded(&tag);
    assert_eq!(bytes.len(), ANSWER_TAG_LEN);
    assert_eq!(decode_answer_tag(&bytes).unwrap(), tag);
    for refusal in [
        RequestRefusal::ForeignRack,
        RequestRefusal::WrongTarget,
        RequestRefusal::NoKey,
        RequestRefusal::BadTag,
    ] {
        let bytes = encoded(&refusal);
        assert!(bytes.len() <= RequestRefusal::MAX_LEN);
        assert_eq!(decode_request_refusal(&bytes).unwrap(), refusal);
    }
    // A tag with a byte missing, and one with a byte too many.
    let bytes = encoded(&tag);
    assert!(decode_answer_tag(&bytes[..bytes.len() - 1]).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(decode_answer_tag(&longer), Err(WireError::TrailingBytes));
}

#[test]
fn every_call_has_its_documented_byte() {
    let calls = [
        (NexusCall::Reconfigure, 1),
        (NexusCall::UpgradeFromLrtq, 2),
        (NexusCall::Commit, 3),
        (NexusCall::PrepareAndCommit, 4),
        (NexusCall::CoordinatorStatus, 5),
        (NexusCall::NodeStatus, 6),
        (NexusCall::LoadLatestSecret, 7),
    ];
    for (call, byte) in calls {
        assert_eq!(call as u8, byte);
    }
}

#[test]
fn the_fingerprint_answer_fits_its_bound_and_is_tagged_like_any_answer() {
    use crate::api::{ExpungedAt, LoadSecretError, SecretFingerprint};
    let long = sled("XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY");
    let answers: [Result<SecretFingerprint, LoadSecretError>; 2] = [
        Ok(SecretFingerprint {
            epoch: Epoch(u64::MAX),
            fingerprint: [0xff; 32],
        }),
        Err(LoadSecretError::Expunged(ExpungedAt {
            epoch: Epoch(u64::MAX),
            from: long,
        })),
    ];
    for answer in &answers {
        assert!(encoded(answer).len() <= <Result<SecretFingerprint, LoadSecretError>>::MAX_LEN);
    }
    let key = key();
    let tag = key
        .answer_tag(
            &this_sled(),
            NexusCall::LoadLatestSecret,
            &[5; 16],
            &answers[0],
        )
        .unwrap();
    assert!(
        key.verify_answer(
            &this_sled(),
            NexusCall::LoadLatestSecret,
            &[5; 16],
            &answers[0],
            &tag
        )
        .is_ok()
    );
    assert!(
        key.verify_answer(
            &this_sled(),
            NexusCall::LoadLatestSecret,
            &[5; 16],
            &answers[1],
            &tag
        )
        .is_err()
    );
}
