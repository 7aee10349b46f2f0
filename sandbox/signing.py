"""cosign-compatible, key-based image signatures, made without the cosign binary.

The estate must hold real signatures for RG-SIGN-001/002 to judge, and the cosign
binary cannot be downloaded here. cosign's key-based format is small and stable:
a "simple signing" JSON payload naming the image by reference and digest, an
ECDSA P-256 / SHA-256 signature over its bytes (DER, base64), and an OCI manifest
whose single layer is the payload, with the signature in a layer annotation,
pushed under the tag `sha256-<hex>.sig`. Anything that verifies cosign
signatures (including `cosign verify --key`) can verify these.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox.oci import MEDIA_CONFIG, Blob, Manifest, canonical_json, image_manifest
from sandbox.pusher import OciPusher
from sandbox.registry import RunningRegistry

SIMPLESIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"
_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class KeyPair:
    """PEM files: the private key (0600) and the public key users list in `trusted_keys`."""

    private_key: Path
    public_key: Path


def generate_key_pair(directory: Path, name: str = "cosign") -> KeyPair:
    """Write `<name>.key` (PKCS#8, owner-only) and `<name>.pub` (SubjectPublicKeyInfo PEM,
    the format of cosign.pub)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return KeyPair(private_path, public_path)


def simple_signing_payload(docker_reference: str, digest: str) -> bytes:
    """The exact bytes cosign signs: compact JSON, keys in cosign's order."""
    if not digest.startswith("sha256:"):
        raise ValueError(f"expected a sha256 digest, got {digest!r}")
    payload: dict[str, Any] = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": None,
    }
    return canonical_json(payload)


def _load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an ECDSA private key")
    return key


def sign_payload(payload: bytes, private_key_path: Path) -> str:
    """ECDSA-SHA256 over `payload`, DER-encoded, standard base64 (cosign's encoding)."""
    der = _load_private_key(private_key_path).sign(payload, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(der).decode("ascii")


def signature_tag(digest: str) -> str:
    """cosign's tag scheme: `sha256:abc...` -> `sha256-abc....sig`."""
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}-{hex_part}.sig"


def signature_manifest(payload: bytes, signature_b64: str) -> Manifest:
    """The OCI manifest cosign pushes: one simple-signing layer carrying the signature."""
    layer = Blob(SIMPLESIGNING_MEDIA_TYPE, payload)
    config: Mapping[str, Any] = {
        "architecture": "",
        "config": {},
        "created": _ZERO_TIME,
        "history": [{"created": _ZERO_TIME}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
    }
    return image_manifest(
        Blob(MEDIA_CONFIG, canonical_json(config)),
        (layer,),
        layer_annotations={layer.digest: {SIGNATURE_ANNOTATION: signature_b64}},
    )


def signature_for(
    address: str, repo: str, digest: str, private_key_path: Path
) -> tuple[str, Manifest]:
    """(tag, manifest) signing `address/repo@digest`, ready for `OciPusher.push`."""
    payload = simple_signing_payload(f"{address}/{repo}", digest)
    return signature_tag(digest), signature_manifest(payload, sign_payload(payload, private_key_path))


def sign_image(
    reg_or_pusher: RunningRegistry | OciPusher, repo: str, digest: str, private_key_path: Path
) -> str:
    """Sign `repo@digest` and push the signature; returns the signature tag."""
    pusher = (
        OciPusher.for_registry(reg_or_pusher)
        if isinstance(reg_or_pusher, RunningRegistry)
        else reg_or_pusher
    )
    tag, manifest = signature_for(pusher.address, repo, digest, private_key_path)
    pusher.push_many_sync([(repo, tag, manifest)])
    return tag
