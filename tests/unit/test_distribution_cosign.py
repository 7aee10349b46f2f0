"""Cosign signature verification: keys generated here, payloads signed the way
cosign does (ECDSA P-256 / SHA-256, base64 DER in the layer annotation)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from audits.collectors.cosign import (
    SIGNATURE_ANNOTATION,
    canonical_payload,
    load_keys,
    payload_manifest_digest,
    sha256_digest,
    signature_layers,
    verify,
)

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def write_public(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path.write_bytes(pem)
    return str(path)


def ec_sign(key: ec.EllipticCurvePrivateKey, payload: bytes) -> str:
    return base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


@pytest.fixture
def signer(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, write_public(tmp_path / "release.pub", key)


def test_canonical_payload_is_cosign_compact_json() -> None:
    payload = canonical_payload("127.0.0.1:5000/app/web", DIGEST)
    assert payload == (
        b'{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/app/web"},'
        b'"image":{"docker-manifest-digest":"' + DIGEST.encode() + b'"},'
        b'"type":"cosign container image signature"},"optional":null}'
    )
    assert payload_manifest_digest(payload) == DIGEST


def test_good_signature_verifies_and_names_the_key(signer: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    key, pub = signer
    payload = canonical_payload("reg/app", DIGEST)
    result = verify(payload, ec_sign(key, payload), DIGEST, load_keys([pub]))
    assert result.verified is True
    assert result.verified_by == pub
    assert result.error is None


Signer = tuple[ec.EllipticCurvePrivateKey, str]


def test_signature_by_another_key_does_not_verify(signer: Signer) -> None:
    _, pub = signer
    intruder = ec.generate_private_key(ec.SECP256R1())
    payload = canonical_payload("reg/app", DIGEST)
    result = verify(payload, ec_sign(intruder, payload), DIGEST, load_keys([pub]))
    assert result.verified is False
    assert result.error == "no trusted key verifies the signature"


def test_second_trusted_key_can_verify(tmp_path: Path, signer: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    key, pub = signer
    other_pub = write_public(tmp_path / "other.pub", ec.generate_private_key(ec.SECP256R1()))
    payload = canonical_payload("reg/app", DIGEST)
    result = verify(payload, ec_sign(key, payload), DIGEST, load_keys([other_pub, pub]))
    assert result.verified is True and result.verified_by == pub


def test_valid_signature_for_another_image_does_not_count(signer: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    key, pub = signer
    payload = canonical_payload("reg/app", OTHER)
    result = verify(payload, ec_sign(key, payload), DIGEST, load_keys([pub]))
    assert result.verified is False
    assert result.error == f"signature is for another image ({OTHER})"


def test_tampered_payload_does_not_verify(signer: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    key, pub = signer
    payload = canonical_payload("reg/app", DIGEST)
    signature = ec_sign(key, payload)
    tampered = payload.replace(b"reg/app", b"reg/evil")
    assert verify(tampered, signature, DIGEST, load_keys([pub])).verified is False


def test_bad_inputs_are_reported_not_raised(signer: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    _, pub = signer
    ring = load_keys([pub])
    assert verify(b"not json", "AAAA", DIGEST, ring).error == "payload is not a cosign simple-signing document"
    payload = canonical_payload("reg/app", DIGEST)
    assert verify(payload, "***not base64***", DIGEST, ring).error == "signature annotation is not base64"


def test_without_keys_verification_is_not_attempted() -> None:
    payload = canonical_payload("reg/app", DIGEST)
    result = verify(payload, "AAAA", DIGEST, load_keys([]))
    assert result.verified is None
    assert result.error == "no trusted key configured"


def test_unreadable_key_files_are_named(tmp_path: Path, signer: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    key, _ = signer
    bad = tmp_path / "garbage.pub"
    bad.write_text("not a key")
    ring = load_keys([bad, tmp_path / "missing.pub"])
    assert ring.keys == ()
    assert ring.unreadable == (str(bad), str(tmp_path / "missing.pub"))
    payload = canonical_payload("reg/app", DIGEST)
    result = verify(payload, ec_sign(key, payload), DIGEST, ring)
    assert result.verified is False
    assert str(bad) in (result.error or "")


def test_rsa_and_ed25519_keys_verify(tmp_path: Path) -> None:
    payload = canonical_payload("reg/app", DIGEST)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_sig = base64.b64encode(rsa_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())).decode()
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_sig = base64.b64encode(ed_key.sign(payload)).decode()
    ring = load_keys([write_public(tmp_path / "rsa.pub", rsa_key), write_public(tmp_path / "ed.pub", ed_key)])
    assert verify(payload, rsa_sig, DIGEST, ring).verified_by == str(tmp_path / "rsa.pub")
    assert verify(payload, ed_sig, DIGEST, ring).verified_by == str(tmp_path / "ed.pub")


def test_signature_layers_keeps_only_annotated_layers() -> None:
    payload = canonical_payload("reg/app", DIGEST)
    good = {"digest": sha256_digest(payload), "annotations": {SIGNATURE_ANNOTATION: "AAAA"}}
    manifest = json.loads(
        json.dumps({"layers": [good, {"digest": "sha256:" + "0" * 64}, "junk", {"annotations": {"x": "y"}}]})
    )
    assert signature_layers(manifest) == [good]
    assert signature_layers({"layers": "nope"}) == []
