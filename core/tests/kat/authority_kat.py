#!/usr/bin/env python3
"""Known-answer vectors for tq-core's Nexus request and answer tags.

An independent implementation of the `authority` module's derivations
(see core/src/authority.rs): sled request keys with HKDF-SHA3-256 written
here from RFC 5869 over Python's `hmac` and `hashlib.sha3_256` (and checked
against the `cryptography` package's HKDF when it is installed), request
and answer tags with HMAC-SHA3-256, and the few postcard encodings they
cover, written here from postcard's specification. The Rust unit tests in
core/src/authority/tests.rs read the vectors this script writes and must
reproduce them byte for byte, the encodings of the bodies included.

    python3 authority_kat.py --check   # exit 1 if authority_vectors.txt is stale
    python3 authority_kat.py --write   # regenerate authority_vectors.txt

The inputs below are fixed values chosen once; nothing here draws
randomness, so the output is reproducible.
"""

import argparse
import hashlib
import hmac
import pathlib
import sys

VECTORS = pathlib.Path(__file__).with_name("authority_vectors.txt")

KEY_CONTEXT = b"trust-quorum-v1-nexus-authority"
REQUEST_CONTEXT = b"trust-quorum-v1-request"
ANSWER_CONTEXT = b"trust-quorum-v1-answer"
NEXUS_VERSION = 1

CALLS = {
    "reconfigure": 1,
    "upgrade_from_lrtq": 2,
    "commit": 3,
    "prepare_and_commit": 4,
    "coordinator_status": 5,
    "node_status": 6,
    "load_latest_secret": 7,
}


# ---- HKDF (RFC 5869) over HMAC-SHA3-256 ----

def hmac_sha3(key, data):
    return hmac.new(key, data, hashlib.sha3_256).digest()


def hkdf(hash_fn, ikm, info, length, salt=None):
    """RFC 5869: extract (an all-zero salt of hash length when none is
    given), then expand."""
    if salt is None:
        salt = bytes(hash_fn().digest_size)
    prk = hmac.new(salt, ikm, hash_fn).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hash_fn).digest()
        okm += block
        counter += 1
    return okm[:length]


def hkdf_sha3(ikm, info, length):
    return hkdf(hashlib.sha3_256, ikm, info, length)


def hkdf_cross_check(ikm, info, expected):
    """The `cryptography` package's HKDF must agree, when it is installed."""
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError:
        return
    kdf = HKDF(algorithm=hashes.SHA3_256(), length=len(expected), salt=None, info=info)
    assert kdf.derive(ikm) == expected, "HKDF disagrees with cryptography's"


# ---- postcard (the parts the tags cover) ----

def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def platform_id(part, serial):
    """A PlatformId: two strings, each a varint length and its bytes."""
    out = b""
    for field in (part, serial):
        raw = field.encode("ascii")
        out += varint(len(raw)) + raw
    return out


def commit_request(rack_id, epoch):
    return bytes([NEXUS_VERSION]) + rack_id + varint(epoch)


def reconfigure_msg(rack_id, epoch, last_committed, members, threshold):
    out = bytes([NEXUS_VERSION]) + rack_id + varint(epoch)
    out += b"\x00" if last_committed is None else b"\x01" + varint(last_committed)
    ordered = sorted(members)
    out += varint(len(ordered))
    for part, serial in ordered:
        out += platform_id(part, serial)
    return out + bytes([threshold])


def commit_answer(outcome):
    """Result<CommitOutcome, CommitError>: Ok is variant 0, then the
    outcome's variant (Committed 0, AlreadyCommitted 1)."""
    return bytes([NEXUS_VERSION, 0, {"committed": 0, "already_committed": 1}[outcome]])


def no_coordinator_answer():
    """Option<CoordinatorStatus>::None."""
    return bytes([NEXUS_VERSION, 0])


# ---- the derivations ----

def sled_key(authority, rack_id, sled):
    info = KEY_CONTEXT + rack_id + platform_id(*sled)
    key = hkdf_sha3(authority, info, 32)
    hkdf_cross_check(authority, info, key)
    return key


def request_tag(key, rack_id, target, call, nonce, body):
    data = REQUEST_CONTEXT + rack_id + platform_id(*target) + bytes([CALLS[call]]) + nonce + body
    return hmac_sha3(key, data)


def answer_tag(key, rack_id, sled, call, nonce, answer):
    data = ANSWER_CONTEXT + rack_id + platform_id(*sled) + bytes([CALLS[call]]) + nonce + answer
    return hmac_sha3(key, data)


# ---- the cases ----

AUTHORITY = bytes.fromhex("8c1f4a2d9e7b3c6051a8f2e4d7c9b0136e5a4f8d2c1b7e9a0f3d6c8b5a2e4f71")
RACK = bytes.fromhex("5e2c8a9b4f1d4e3a8b7c6d5e4f3a2b1c")
OTHER_RACK = bytes.fromhex("0123456789abcdef0123456789abcdef")
SLED = ("913-0000019", "SN0003")
# A 32-byte serial: the longest field a PlatformId allows.
LONG_SLED = ("913-0000019", "SERIAL-0123456789ABCDEFGHIJKLMNO")
NONCE = bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")

KEYS = [
    {"name": "sled", "rack_id": RACK, "sled": SLED},
    {"name": "long-serial", "rack_id": RACK, "sled": LONG_SLED},
    {"name": "other-rack", "rack_id": OTHER_RACK, "sled": SLED},
]

REQUESTS = [
    {
        "name": "commit",
        "call": "commit",
        "epoch": 7,
        "nonce": NONCE,
    },
    {
        # Every byte of the epoch's varint distinct from the others.
        "name": "commit-wide-epoch",
        "call": "commit",
        "epoch": 0x0102030405060708,
        "nonce": bytes(range(16)),
    },
    {
        "name": "coordinator-status",
        "call": "coordinator_status",
        "nonce": NONCE,
    },
    {
        "name": "reconfigure",
        "call": "reconfigure",
        "epoch": 3,
        "last_committed": 2,
        "members": [SLED, ("913-0000019", "SN0001"), ("913-0000019", "SN0002")],
        "threshold": 2,
        "nonce": NONCE,
    },
]

ANSWERS = [
    {"name": "committed", "call": "commit", "answer": "committed", "nonce": NONCE},
    {"name": "no-coordination", "call": "coordinator_status", "answer": "none", "nonce": NONCE},
]


def body_of(case):
    if case["call"] == "commit":
        return commit_request(RACK, case["epoch"])
    if case["call"] == "reconfigure":
        return reconfigure_msg(
            RACK, case["epoch"], case["last_committed"], case["members"], case["threshold"]
        )
    return b""


def answer_of(case):
    if case["answer"] == "none":
        return no_coordinator_answer()
    return commit_answer(case["answer"])


def render():
    lines = [
        "# Known-answer vectors for tq-core's Nexus authority (core/src/authority.rs).",
        "# Written by authority_kat.py --write; do not edit by hand.",
        "# One block of key=value lines per case, blocks separated by a blank line.",
        "# Bytes are lower-case hex, epochs decimal, sleds part:serial. `kind` is",
        "# key, request or answer. Requests and answers are made with the key of",
        f"# sled {SLED[0]}:{SLED[1]} of rack {RACK.hex()}. `body` and `answer` are the",
        "# Nexus encodings (version byte included) the tags cover.",
        "",
        f"authority={AUTHORITY.hex()}",
        "",
    ]
    key = sled_key(AUTHORITY, RACK, SLED)
    for case in KEYS:
        derived = sled_key(AUTHORITY, case["rack_id"], case["sled"])
        lines += [
            "kind=key",
            f"name={case['name']}",
            f"rack_id={case['rack_id'].hex()}",
            f"sled={case['sled'][0]}:{case['sled'][1]}",
            f"key={derived.hex()}",
            "",
        ]
    for case in REQUESTS:
        body = body_of(case)
        lines += ["kind=request", f"name={case['name']}", f"call={CALLS[case['call']]}"]
        if "epoch" in case:
            lines.append(f"epoch={case['epoch']}")
        if "last_committed" in case:
            lines.append(f"last_committed={case['last_committed']}")
        for part, serial in case.get("members", []):
            lines.append(f"member={part}:{serial}")
        if "threshold" in case:
            lines.append(f"threshold={case['threshold']}")
        lines += [
            f"nonce={case['nonce'].hex()}",
            f"body={body.hex()}",
            f"tag={request_tag(key, RACK, SLED, case['call'], case['nonce'], body).hex()}",
            "",
        ]
    for case in ANSWERS:
        answer = answer_of(case)
        lines += [
            "kind=answer",
            f"name={case['name']}",
            f"call={CALLS[case['call']]}",
            f"outcome={case['answer']}",
            f"nonce={case['nonce'].hex()}",
            f"answer={answer.hex()}",
            f"tag={answer_tag(key, RACK, SLED, case['call'], case['nonce'], answer).hex()}",
            "",
        ]
    return "\n".join(lines)


def self_test():
    """RFC 5869's construction, checked on SHA-256's published case 1 so
    that a slip in the loop above cannot hide behind SHA3."""
    ikm = bytes([0x0B] * 22)
    salt = bytes(range(13))
    info = bytes(range(0xF0, 0xFA))
    okm = hkdf(hashlib.sha256, ikm, info, 42, salt)
    expected = (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        "34007208d5b887185865"
    )
    assert okm.hex() == expected, "RFC 5869 test case 1 failed"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    args = parser.parse_args()
    self_test()
    text = render()
    if args.write:
        VECTORS.write_text(text)
        return 0
    if VECTORS.read_text() != text:
        print(f"{VECTORS} is stale: run {sys.argv[0]} --write", file=sys.stderr)
        return 1
    print(f"{VECTORS.name}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
