#!/usr/bin/env python3
"""Approval request digest and signature vectors (docs/key-policy.md §10, shared/approval.ts).

An implementation independent of the TypeScript one: RFC 8949 §4.2.1 core deterministic CBOR written out here,
SHA-384 from hashlib, Ed25519 from pyca/cryptography. Run from the repository root:

    python3 test/vectors/make-approval-vectors.py > test/vectors/approval-vectors.json
"""
import hashlib
import json
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization


def head(major, n):
    m = major << 5
    if n < 24:
        return bytes([m | n])
    if n < 0x100:
        return bytes([m | 24, n])
    if n < 0x10000:
        return bytes([m | 25]) + struct.pack(">H", n)
    if n < 0x100000000:
        return bytes([m | 26]) + struct.pack(">I", n)
    return bytes([m | 27]) + struct.pack(">Q", n)


def dcbor(v):
    if v is None:
        return b"\xf6"
    if v is True:
        return b"\xf5"
    if v is False:
        return b"\xf4"
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, str):
        b = v.encode("utf-8")
        return head(3, len(b)) + b
    if isinstance(v, list):
        return head(4, len(v)) + b"".join(dcbor(x) for x in v)
    if isinstance(v, dict):
        items = sorted((dcbor(k), dcbor(x)) for k, x in v.items())
        return head(5, len(items)) + b"".join(k + x for k, x in items)
    raise TypeError(type(v))


SEED = bytes(range(32))  # the approver's Ed25519 private key (RFC 8032 seed)
key = Ed25519PrivateKey.from_private_bytes(SEED)
spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

CASES = [
    {
        "name": "scheduleKeyDeletion with a window",
        "op": "scheduleKeyDeletion",
        "keyId": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "sequence": 0,
        "params": {"pendingWindowInDays": 7},
    },
    {
        "name": "putKeyQuorum (map and list parameters, key order)",
        "op": "putKeyQuorum",
        "keyId": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "sequence": 3,
        "params": {"quorum": {"threshold": 2, "approvers": ["carol", "dave", "erin"]}},
    },
    {
        "name": "putKeyPolicy null, large sequence",
        "op": "putKeyPolicy",
        "keyId": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "sequence": 70000,
        "params": {"policy": None},
    },
    {
        "name": "disableKey without parameters",
        "op": "disableKey",
        "keyId": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "sequence": 1,
        "params": {},
    },
]

EXPIRES_AT = 1767225600000  # 2026-01-01T00:00:00.000Z

out = {
    "description": "Approval request digests: SHA-384(dCBOR([\"ekms-approval-request-v1\", op, keyId, sequence, params])); approval signatures: Ed25519(seed, \"ekms-approval-v1\" || 0x00 || digest || uint64be(expiresAt)). All bytes hex.",
    "provenance": {
        "command": "python3 test/vectors/make-approval-vectors.py > test/vectors/approval-vectors.json",
        "implementation": "independent of shared/approval.ts: deterministic CBOR in test/vectors/make-approval-vectors.py, hashlib SHA-384, pyca/cryptography Ed25519",
    },
    "approverSeed": SEED.hex(),
    "approverSpki": spki.hex(),
    "expiresAt": EXPIRES_AT,
    "cases": [],
}
for c in CASES:
    encoded = dcbor(["ekms-approval-request-v1", c["op"], c["keyId"], c["sequence"], c["params"]])
    digest = hashlib.sha384(encoded).digest()
    signed = b"ekms-approval-v1\x00" + digest + struct.pack(">Q", EXPIRES_AT)
    out["cases"].append(
        {
            **c,
            "encoded": encoded.hex(),
            "digest": digest.hex(),
            "signedBytes": signed.hex(),
            "signature": key.sign(signed).hex(),
        }
    )
print(json.dumps(out, indent=2))
