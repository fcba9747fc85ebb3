#!/usr/bin/env python3
"""Known-answer vectors for tq-core's encrypted rack secrets.

This is an independent implementation of PROTOCOL.md section 3, "Encrypted
rack secrets", built on the `cryptography` package rather than on the Rust
crates tq-core uses. The Rust unit tests in core/src/crypto/sealed.rs read the
vectors this script writes and must reproduce them byte for byte.

    python3 sealed_kat.py --check   # exit 1 if sealed_vectors.txt is stale
    python3 sealed_kat.py --write   # regenerate sealed_vectors.txt

The inputs below are fixed random values, chosen once; nothing here draws
randomness, so the output is reproducible.
"""

import argparse
import pathlib
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VECTORS = pathlib.Path(__file__).with_name("sealed_vectors.txt")

CONTEXT = b"trust-quorum-v1-rack-secrets"
NONCE = bytes(12)
MAX_RETAINED_SECRETS = 16

# Sixteen distinct old secrets; the cases below take slices of this list.
OLD_SECRETS = [
    "41ad6518c2be2d871c72a348abf2e74aa0b80bc1f77f8d579b8e91d03acfe444",
    "f314d233d38039f63e4f4c6b40763da357d73ebde607804e9a3b6564ade611e1",
    "0601b94d1e0c475263dc85a2def61982ff0ec36e542e718ecf3a4177b44f9f21",
    "e9abefb55ee249ed3de1b78fc461c742f0b9d6a0d7b47867bf6f63e7ace4b22e",
    "ac317f36f4f2e44ebdebb13870d6d62fe83383257ef019ada117849ba00931cb",
    "f9e02590a718d391903db22e2079e21a29b745d5c806f9dcb1c43516a0aa4af8",
    "c3693702b367dc46943a00927e92263fa8b318ae0e07954506860f93916bc91d",
    "4d4ba9563f4f38350169addf4e07c3aed3a5be0642e7fdbd0994691ff723c68f",
    "e70005c9214a10591ee25c0974f87ac601362a74e02de9a352b14bbf593992dd",
    "b4719ccdba9f30c9ae4bb91f8e54bf9b1678de2531fa91add688ef87399df8da",
    "b7f0b228f09a3e8e9ec3e03c2ec550ec84a66a1cb331eff972bb97e0cd1371ca",
    "ca560ea99973564a1dd2ca016297bc1b24af962b789fa0d20cb6c9ce824d891e",
    "101f7b0251bd6b8daaf4d3cdb987ee551632d6afd37ab934a36c393bd89deae6",
    "afb592d95b7182f905b1a5f81ed7cf64cd66f496d3a3e599d272e0c7fcbb2905",
    "014db6829202e2ac518af748db09f180b685b99f31a205b99566bad7926c781e",
    "2b7500a1e2ddaa27399867c40e64797c34be40378e7eabe91d7df41335c138d3",
]

# Each case: the configuration being sealed (rack id, its epoch, its secret),
# the fresh salt, and the retained (epoch, secret) entries, oldest first.
CASES = [
    {
        "name": "no-old-secrets",
        "rack_id": "f7005b872a8eb40399aca6c70c54e1fe",
        "epoch": 2,
        "secret": "c07d73f372e7f41e5ed1d1f2f9685f32a3f28157978d93d2dcf108e2d3e0ad3a",
        "salt": "163f1be0f1e6bb07dd3201a5324724b911e8330aa045ada94dde5928bcd725e9",
        "old": [],
    },
    {
        "name": "one-old-secret",
        "rack_id": "06adaa82558d828e1f24f994cae1400f",
        "epoch": 3,
        "secret": "9cfae655c69a18f024ef05050cdedd542a0aee21232d29341062ac9a4c352e7a",
        "salt": "f23133ed180db7d6495f775743fccd7b59c7d47fcfdc00ab88c1e4a7afeb710d",
        "old": [(2, OLD_SECRETS[0])],
    },
    {
        # Epochs with every byte distinct catch a byte-order mistake.
        "name": "three-old-secrets-wide-epochs",
        "rack_id": "b72ed38857d8eb4001435e49e4d671f7",
        "epoch": 0x0102030405060708,
        "secret": "59d8dc873c3785e31077554789b927b5a77382274392a254cb13ddf8f6664b89",
        "salt": "aae059b3aa09aa0dc22643bbe31aa165a737e1709d6ebb1f6123de068bc398d8",
        "old": [
            (1, OLD_SECRETS[1]),
            (0x00000000DEADBEEF, OLD_SECRETS[2]),
            (0x0102030405060700, OLD_SECRETS[3]),
        ],
    },
    {
        "name": "maximum-old-secrets",
        "rack_id": "06e384b071f8c4105d7a14687857abf0",
        "epoch": 40,
        "secret": "869f6e6acdffb219ab5e1e937d2efa3c776e936acd418bfe01818c3efcf283d0",
        "salt": "e104da8f30c8ae4bdd50d876e7580f94516552c6b42144dae0c9121a18e1e007",
        "old": [(2 * i + 1, s) for i, s in enumerate(OLD_SECRETS)],
    },
    {
        # Same rack and epoch as the first case with a different salt: the
        # salt alone must change the key and so the ciphertext.
        "name": "no-old-secrets-other-salt",
        "rack_id": "f7005b872a8eb40399aca6c70c54e1fe",
        "epoch": 2,
        "secret": "c07d73f372e7f41e5ed1d1f2f9685f32a3f28157978d93d2dcf108e2d3e0ad3a",
        "salt": "3bd77c677ab81abcab8225f0bad31046e91aa26d03a0f215d94248e9447fef6f",
        "old": [],
    },
]


def check_inputs(case):
    """Refuse inputs the protocol itself would refuse."""
    assert len(bytes.fromhex(case["rack_id"])) == 16
    assert len(bytes.fromhex(case["secret"])) == 32
    assert len(bytes.fromhex(case["salt"])) == 32
    assert len(case["old"]) <= MAX_RETAINED_SECRETS
    previous = None
    for epoch, secret in case["old"]:
        assert previous is None or epoch > previous, "epochs must increase"
        assert epoch < case["epoch"], "old epochs must precede the new one"
        assert len(bytes.fromhex(secret)) == 32
        assert bytes.fromhex(secret) != bytes(32)
        previous = epoch


def derive_key(case):
    info = CONTEXT + bytes.fromhex(case["rack_id"]) + case["epoch"].to_bytes(8, "big")
    kdf = HKDF(
        algorithm=hashes.SHA3_256(),
        length=32,
        salt=bytes.fromhex(case["salt"]),
        info=info,
    )
    key = kdf.derive(bytes.fromhex(case["secret"]))
    assert key != bytes(32)
    return key


def plaintext(case):
    return b"".join(
        epoch.to_bytes(8, "big") + bytes.fromhex(secret) for epoch, secret in case["old"]
    )


def render():
    lines = [
        "# Known-answer vectors for EncryptedRackSecrets (PROTOCOL.md section 3).",
        "# Written by sealed_kat.py --write; do not edit by hand.",
        "# One block of key=value lines per case, blocks separated by a blank line.",
        "# Bytes are lower-case hex, epochs decimal. Each `old` line is one retained",
        "# entry, epoch:secret, oldest first. `key` is the derived ChaCha20-Poly1305",
        "# key; `ciphertext` includes the 16-byte tag at its end.",
    ]
    for case in CASES:
        check_inputs(case)
        key = derive_key(case)
        message = plaintext(case)
        sealed = ChaCha20Poly1305(key).encrypt(NONCE, message, b"")
        # The library's own round trip, as a guard on this script.
        assert ChaCha20Poly1305(key).decrypt(NONCE, sealed, b"") == message
        assert len(sealed) == 40 * len(case["old"]) + 16
        lines.append("")
        lines.append(f"name={case['name']}")
        lines.append(f"rack_id={case['rack_id']}")
        lines.append(f"epoch={case['epoch']}")
        lines.append(f"secret={case['secret']}")
        lines.append(f"salt={case['salt']}")
        for epoch, secret in case["old"]:
            lines.append(f"old={epoch}:{secret}")
        lines.append(f"key={key.hex()}")
        lines.append(f"ciphertext={sealed.hex()}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="fail if the vectors file is stale")
    mode.add_argument("--write", action="store_true", help="regenerate the vectors file")
    args = parser.parse_args()

    expected = render()
    if args.write:
        VECTORS.write_text(expected)
        print(f"wrote {VECTORS}")
        return 0
    try:
        committed = VECTORS.read_text()
    except FileNotFoundError:
        print(f"{VECTORS} is missing; run with --write", file=sys.stderr)
        return 1
    if committed != expected:
        print(f"{VECTORS} differs from what this script computes", file=sys.stderr)
        return 1
    print(f"{VECTORS}: {len(CASES)} cases match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
