"""GHCR reads cosign signatures with the shared OCI code (`oci_signatures`): a
signature layer without a valid digest does not verify, and a payload blob that
cannot be read is that signature's error, not an error on the whole tag."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from audits.collectors import cosign
from audits.collectors.base import CollectOptions, RequestCounter
from audits.collectors.ghcr import _Collection
from audits.collectors.oci import OciClient, OciError, Redactor
from audits.model import SignatureFacts
from audits.targets import GhcrTarget
from sandbox.signing import generate_key_pair, sign_payload

REGISTRY = "https://ghcr.example.test"
REPO = "acme/api"
DIGEST = "sha256:" + "a" * 64
SIG_TAG = "sha256-" + "a" * 64 + ".sig"


class FakeOci:
    """The two registry calls signature lookup makes; every blob read fails."""

    base_url = REGISTRY
    redact = Redactor()

    def __init__(self, layer_digest: str, signature: str) -> None:
        self.layer_digest, self.signature = layer_digest, signature
        self.blobs: list[str] = []

    async def get_manifest(self, repo: str, reference: str) -> dict[str, Any]:
        annotations = {cosign.SIGNATURE_ANNOTATION: self.signature}
        return {"schemaVersion": 2, "layers": [{"digest": self.layer_digest, "annotations": annotations}]}

    async def get_blob(self, repo: str, digest: str) -> bytes:
        self.blobs.append(digest)
        raise OciError("HTTP 502 from GET /v2/acme/api/blobs/x", f"GET {REGISTRY}/v2/{repo}/blobs/{digest}")


def signatures(tmp_path: Path, layer_digest: str) -> tuple[tuple[SignatureFacts, ...] | None, str | None, FakeOci]:
    keys = generate_key_pair(tmp_path / "keys", "release")
    payload = cosign.canonical_payload(f"ghcr.example.test/{REPO}", DIGEST)
    oci = FakeOci(layer_digest, sign_payload(payload, keys.private_key))
    target = GhcrTarget.model_validate({"name": "gh", "kind": "ghcr", "owner": "acme"})
    collection = _Collection(target, CollectOptions(trusted_keys=(str(keys.public_key),)), RequestCounter())
    found, error = asyncio.run(collection._signatures(cast(OciClient, oci), REPO, DIGEST, {SIG_TAG}))
    return found, error, oci


def test_a_signature_layer_without_a_valid_digest_does_not_verify(tmp_path: Path) -> None:
    found, error, oci = signatures(tmp_path, "not-a-digest")
    assert error is None and found is not None
    (signature,) = found
    assert signature.verified is False and "no valid digest" in (signature.verify_error or "")
    assert not oci.blobs


def test_an_unreadable_payload_is_the_signature_error_not_the_tag_error(tmp_path: Path) -> None:
    layer_digest = "sha256:" + "b" * 64  # not the canonical payload: the blob is read
    found, error, oci = signatures(tmp_path, layer_digest)
    assert error is None and found is not None
    (signature,) = found
    assert signature.verified is False and "cannot read signature payload: HTTP 502" in (signature.verify_error or "")
    assert oci.blobs == [layer_digest]
