"""ECR cosign signatures (key-based): read the signature manifests with
BatchGetImage and verify each against the trusted keys.

One BatchGetImage per repository (per 100 signature manifests) returns the
signature manifests; each signature layer's payload is rebuilt exactly as
cosign writes it for `<registry host>/<repo>@<digest>` (`audits.collectors.cosign`)
and used when its sha256 is the layer digest, otherwise downloaded
(`GetDownloadUrlForLayer` + a GET of the pre-signed URL, size-capped). A
manifest that could not be read leaves the signature unverified
(`verified=None`) with the reason; a payload that could not be read does not
verify (`verified=False`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx

from audits.collectors import cosign
from audits.collectors.base import RequestCounter
from audits.collectors.ecr_calls import attempt
from audits.collectors.ecr_facts import SignatureArtifact, signature_artifacts
from audits.collectors.oci import describe_transport_error

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecr.type_defs import ImageDetailTypeDef

BATCH_GET_IMAGE_LIMIT = 100  # the most imageIds one BatchGetImage accepts
MAX_PAYLOAD_BYTES = 1 << 20  # a simple-signing payload is a few hundred bytes
SIGNATURE_MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_SHA256_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


LayerFetcher = Callable[[str, str], bytes]
"""(repository, layer digest) -> the blob's bytes; raises `PayloadUnavailable`."""


class PayloadUnavailable(Exception):
    """A signature payload blob could not be read; the message is safe to show."""


class SignatureReader:
    """Reads and verifies a repository's cosign signatures.

    One BatchGetImage per repository (per 100 signature manifests) returns the
    signature manifests; each signature layer's payload is reconstructed as cosign
    writes it for `<registry host>/<repo>@<digest>` and used when its sha256 is the
    layer digest, so no blob is downloaded. A payload that is not the canonical one
    (a different docker reference, annotations) is fetched with `fetch_layer`
    (GetDownloadUrlForLayer + GET) and verified as stored."""

    def __init__(self, ecr: ECRClient, ring: cosign.KeyRing, fetch_layer: LayerFetcher) -> None:
        self._ecr = ecr
        self._ring = ring
        self._fetch_layer = fetch_layer

    def read(
        self, repository: str, reference: str, images: Sequence[ImageDetailTypeDef]
    ) -> dict[str, tuple[cosign.Verification, ...]]:
        artifacts = signature_artifacts(images)
        manifests = self._manifests(repository, sorted({a.image_digest for a in artifacts}))
        out: dict[str, tuple[cosign.Verification, ...]] = {}
        for artifact in artifacts:
            manifest = manifests.get(artifact.image_digest)
            if isinstance(manifest, str):  # why it could not be read
                out[artifact.reference] = (cosign.Verification(None, error=f"signature manifest not read: {manifest}"),)
                continue
            layers = cosign.signature_layers(manifest or {})
            out[artifact.reference] = tuple(self._verify(repository, reference, artifact, layer) for layer in layers)
        return out

    def _manifests(self, repository: str, digests: Sequence[str]) -> dict[str, dict[str, Any] | str]:
        """Signature manifests by digest; a string says why one could not be read."""
        out: dict[str, dict[str, Any] | str] = {}
        for start in range(0, len(digests), BATCH_GET_IMAGE_LIMIT):
            chunk = digests[start : start + BATCH_GET_IMAGE_LIMIT]
            answer = attempt(
                partial(
                    self._ecr.batch_get_image,
                    repositoryName=repository,
                    imageIds=[{"imageDigest": d} for d in chunk],
                    acceptedMediaTypes=list(SIGNATURE_MANIFEST_TYPES),
                )
            )
            if answer.value is None:
                out.update({d: f"BatchGetImage: {answer.error}" for d in chunk})
                continue
            for failure in answer.value.get("failures", []):
                digest = failure.get("imageId", {}).get("imageDigest", "")
                reason = f"{failure.get('failureCode', 'failure')}: {failure.get('failureReason', '')}".rstrip(": ")
                out[digest] = f"BatchGetImage: {reason}"
            for image in answer.value.get("images", []):
                out[image.get("imageId", {}).get("imageDigest", "")] = _parse_manifest(image.get("imageManifest", ""))
            for digest in chunk:
                out.setdefault(digest, "BatchGetImage: image missing from the answer")
        return out

    def _verify(
        self, repository: str, reference: str, artifact: SignatureArtifact, layer: Mapping[str, Any]
    ) -> cosign.Verification:
        signature = layer["annotations"][cosign.SIGNATURE_ANNOTATION]
        layer_digest = layer.get("digest")
        if not isinstance(layer_digest, str) or not _SHA256_DIGEST.match(layer_digest):
            return cosign.Verification(False, error="signature layer has no valid sha256 digest")
        payload = cosign.canonical_payload(reference, artifact.subject)
        if cosign.sha256_digest(payload) != layer_digest:
            try:
                payload = self._fetch_layer(repository, layer_digest)
            except PayloadUnavailable as exc:
                return cosign.Verification(False, error=f"payload not reconstructable and not downloadable: {exc}")
        return cosign.verify(payload, signature, artifact.subject, self._ring)


def _parse_manifest(text: str) -> dict[str, Any] | str:
    try:
        parsed = json.loads(text)
    except ValueError:
        return "signature manifest is not valid JSON"
    return parsed if isinstance(parsed, dict) else "signature manifest is not a JSON object"


class LayerDownloader:
    """GetDownloadUrlForLayer, then GET the pre-signed URL; the bytes must hash to
    the digest. The URL carries a signature in its query string, so it never
    appears in an error; the GET is counted as `s3:GET layer`."""

    def __init__(
        self,
        ecr: ECRClient,
        counter: RequestCounter,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._ecr = ecr
        self._counter = counter
        self._timeout = timeout
        self._transport = transport

    def __call__(self, repository: str, digest: str) -> bytes:
        answer = attempt(lambda: self._ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=digest))
        url = answer.value.get("downloadUrl") if answer.value is not None else None
        if not url:
            raise PayloadUnavailable(f"GetDownloadUrlForLayer: {answer.error or 'no download URL'}")
        self._counter.add("s3:GET layer")
        body = self._get(url)
        if cosign.sha256_digest(body) != digest:
            raise PayloadUnavailable(f"downloaded layer does not match {digest}")
        return body

    def _get(self, url: str) -> bytes:
        client = httpx.Client(transport=self._transport, timeout=self._timeout, follow_redirects=False)
        try:
            with client, client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise PayloadUnavailable(f"layer download answered HTTP {response.status_code}")
                body = b""
                ends = time.monotonic() + self._timeout  # in total: a dripping answer never times out a read
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_PAYLOAD_BYTES:
                        raise PayloadUnavailable(f"layer is larger than {MAX_PAYLOAD_BYTES} bytes")
                    if time.monotonic() > ends:
                        raise PayloadUnavailable(f"layer download: no complete answer within {self._timeout:g} s")
                return body
        except httpx.HTTPError as exc:
            raise PayloadUnavailable(f"layer download failed: {describe_transport_error(exc, self._timeout)}") from None
