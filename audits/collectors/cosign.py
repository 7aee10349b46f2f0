"""Cosign signature verification with `cryptography` (no cosign binary).

A cosign signature (tag scheme `sha256-<hex>.sig`, or a referrer) is an OCI
manifest whose layers are simple-signing payloads; each layer carries the
base64 signature in the `dev.cosignproject.cosign/signature` annotation. The
signature is over the payload bytes exactly as stored (the layer blob, whose
sha256 is the layer's descriptor digest). A signature only counts for an image
when the payload's `critical.image.docker-manifest-digest` is that image's
digest: a valid signature copied next to another image must not verify it.

Key-based verification only (keyless/Fulcio certificates and Rekor bundles
are not checked here): ECDSA (cosign's default P-256 / SHA-256), RSA PKCS#1
v1.5 / SHA-256 and Ed25519 public keys in PEM.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
NOTATION_ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"


@dataclass(frozen=True)
class TrustedKey:
    path: str
    key: Any  # a cryptography public key object


@dataclass(frozen=True)
class KeyRing:
    """The trusted keys that could be loaded, and the ones that could not
    (their paths, so a verification failure can say why)."""

    keys: tuple[TrustedKey, ...]
    unreadable: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.keys or self.unreadable)


@dataclass(frozen=True)
class Verification:
    verified: bool | None  # None: no trusted key configured
    verified_by: str | None = None
    error: str | None = None


def load_keys(paths: Iterable[str | Path]) -> KeyRing:
    """Load PEM public keys; a missing or malformed file is recorded, not raised."""
    keys: list[TrustedKey] = []
    unreadable: list[str] = []
    for path in paths:
        try:
            key = serialization.load_pem_public_key(Path(path).read_bytes())
        except (OSError, ValueError, TypeError):
            unreadable.append(str(path))
            continue
        keys.append(TrustedKey(str(path), key))
    return KeyRing(tuple(keys), tuple(unreadable))


def canonical_payload(docker_reference: str, manifest_digest: str) -> bytes:
    """The simple-signing payload cosign writes for `reference@digest`, byte for
    byte (compact JSON, keys in cosign's order). When its sha256 equals the
    layer digest the blob need not be downloaded."""
    payload = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def payload_manifest_digest(payload: bytes) -> str | None:
    """`critical.image.docker-manifest-digest` of a simple-signing payload
    (None for anything else, JSON nested too deeply to parse included)."""
    try:
        body = json.loads(payload)
        digest = body["critical"]["image"]["docker-manifest-digest"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, RecursionError):
        return None
    return digest if isinstance(digest, str) else None


def signature_layers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Layers of a cosign signature manifest that carry a signature annotation."""
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        return []
    found = []
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        annotations = layer.get("annotations")
        if isinstance(annotations, dict) and isinstance(annotations.get(SIGNATURE_ANNOTATION), str):
            found.append(layer)
    return found


def verify(payload: bytes, signature_b64: str, image_digest: str, ring: KeyRing) -> Verification:
    """Verify one signature over `payload` for the image `image_digest`.

    The payload must name the image (else: signature for another image); then
    each trusted key is tried in order and the first that verifies is named.
    """
    if not ring.configured:
        return Verification(None, error="no trusted key configured")
    signed_digest = payload_manifest_digest(payload)
    if signed_digest is None:
        return Verification(False, error="payload is not a cosign simple-signing document")
    if signed_digest != image_digest:
        return Verification(False, error=f"signature is for another image ({signed_digest})")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return Verification(False, error="signature annotation is not base64")
    for trusted in ring.keys:
        if _verifies(trusted.key, signature, payload):
            return Verification(True, verified_by=trusted.path)
    error = "no trusted key verifies the signature"
    if ring.unreadable:
        error += f" (unreadable key files: {', '.join(ring.unreadable)})"
    return Verification(False, error=error)


def _verifies(key: Any, signature: bytes, payload: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True
