"""cosign signatures read through an `OciClient`, shared by every collector
that walks tags over the OCI API (Distribution, Docker Hub, Harbor, GHCR).

One SignatureFacts per signature layer of a cosign signature manifest, and per
notation referrer (recorded, not verified). With no trusted key the signature
is recorded unverified; the payload blob is fetched only when it is not the
canonical payload cosign would have written for `docker_reference@digest` (so
the common case costs no blob request).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audits.collectors import cosign
from audits.collectors.oci import OciClient, OciError, Redactor, valid_digest
from audits.model import SignatureFacts


async def cosign_signatures(
    client: OciClient,
    keys: cosign.KeyRing,
    *,
    repo: str,
    digest: str,
    manifest: dict[str, Any],
    via: str,
    reference: str,
    docker_reference: str,
) -> list[SignatureFacts]:
    """The signatures in the cosign `manifest` (found `via` "tag" or
    "referrers" under `reference`) for the image `repo@digest`."""
    results = []
    for layer in cosign.signature_layers(manifest):
        check = await verify_cosign_layer(client, keys, repo, digest, layer, docker_reference)
        results.append(SignatureFacts("cosign", via, reference, check.verified, check.verified_by, check.error))
    return results


async def referrer_signatures(
    client: OciClient,
    keys: cosign.KeyRing,
    *,
    repo: str,
    digest: str,
    descriptor: Mapping[str, Any],
    docker_reference: str,
) -> list[SignatureFacts]:
    """The signatures one referrer `descriptor` of `repo@digest` stands for:
    a cosign signature manifest (fetched and verified), a notation signature
    (recorded unverified), or nothing."""
    artifact_type = descriptor.get("artifactType")
    ref = descriptor.get("digest")
    if not isinstance(ref, str) or not valid_digest(ref):
        return []
    if artifact_type == cosign.NOTATION_ARTIFACT_TYPE:
        return [SignatureFacts("notation", "referrers", ref, None, None, "notation signatures are not verified")]
    if artifact_type != cosign.COSIGN_ARTIFACT_TYPE:
        return []
    manifest = await client.get_manifest(repo, ref)
    return await cosign_signatures(
        client, keys, repo=repo, digest=digest, manifest=manifest, via="referrers", reference=ref,
        docker_reference=docker_reference,
    )


async def verify_cosign_layer(
    client: OciClient,
    keys: cosign.KeyRing,
    repo: str,
    digest: str,
    layer: Mapping[str, Any],
    docker_reference: str,
) -> cosign.Verification:
    """Verify one cosign signature layer of `repo@digest` as signed for
    `docker_reference` (`host/repo`); the payload blob is fetched only when it is
    not the canonical payload cosign writes for that reference."""
    if not keys.configured:
        return cosign.Verification(None, error="no trusted key configured")
    signature = layer["annotations"][cosign.SIGNATURE_ANNOTATION]
    layer_digest = layer.get("digest")
    if not isinstance(layer_digest, str) or not valid_digest(layer_digest):
        return cosign.Verification(False, error="signature layer has no valid digest")
    payload = cosign.canonical_payload(docker_reference, digest)
    if cosign.sha256_digest(payload) != layer_digest:
        try:
            payload = await client.get_blob(repo, layer_digest)
        except OciError as exc:
            redact: Redactor = client.redact
            return cosign.Verification(False, error=f"cannot read signature payload: {redact(exc.detail)}")
    return cosign.verify(payload, signature, digest, keys)
