"""cosign signatures of GAR images, read and verified through the OCI API.

GAR has no referrers API: cosign stores a signature as the `sha256-<hex>.sig`
tag of the image's package, which `dockerImages.list` already lists (so finding
one costs nothing). With trusted keys configured, each signed digest costs one
GET of the signature manifest from the Docker endpoint
(`https://<location>-docker.pkg.dev`, or the target's `docker_url`), plus the
payload blob only when it is not the canonical payload cosign writes for
`<location>-docker.pkg.dev/<project>/<repository>/<image>@<digest>`.

The Docker endpoint takes the audit's OAuth access token as the password of
user `oauth2accesstoken` (Basic or its own token exchange, whichever its
challenge asks for); the token is redacted from every message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from audits.collectors import cosign
from audits.collectors.base import CollectOptions, RequestCounter
from audits.collectors.gar_facts import LOCATION
from audits.collectors.oci import (
    Credentials,
    OciClient,
    OciError,
    Redactor,
    counted_pool,
    valid_digest,
    valid_repository,
)
from audits.model import RepositoryFacts, SignatureFacts, TagFacts
from audits.targets import GarTarget

TOKEN_USER = "oauth2accesstoken"


def docker_host(location: str) -> str:
    return f"{location}-docker.pkg.dev"


def verify_signatures(
    repositories: tuple[RepositoryFacts, ...],
    target: GarTarget,
    options: CollectOptions,
    counter: RequestCounter,
    access_token: str | None,
) -> tuple[RepositoryFacts, ...]:
    """`repositories` with every found signature verified against the trusted keys
    (unchanged when no trusted key is configured: nothing to verify with, no call)."""
    ring = cosign.load_keys(options.trusted_keys)
    if not ring.configured or not any(s for r in repositories for t in r.tags for s in t.signatures or ()):
        return repositories
    return asyncio.run(_Verifier(target, options, counter, access_token, ring).run(repositories))


class _Verifier:
    def __init__(
        self,
        target: GarTarget,
        options: CollectOptions,
        counter: RequestCounter,
        access_token: str | None,
        ring: cosign.KeyRing,
    ) -> None:
        self.target, self.options, self.counter, self.ring = target, options, counter, ring
        self.redact = Redactor([access_token] if access_token else [])
        self.credentials = Credentials(TOKEN_USER, access_token) if access_token else None
        self.clients: dict[str, OciClient] = {}
        self.done: dict[tuple[str, str], asyncio.Task[tuple[SignatureFacts, ...]]] = {}

    async def run(self, repositories: tuple[RepositoryFacts, ...]) -> tuple[RepositoryFacts, ...]:
        semaphore = asyncio.Semaphore(max(1, self.options.concurrency))
        async with counted_pool(semaphore, timeout=self.options.timeout, verify=True, counter=self.counter) as pool:
            self.pool = pool
            return tuple(await asyncio.gather(*(self._repository(r) for r in repositories)))

    def _client(self, location: str) -> OciClient:
        base = (self.target.docker_url or f"https://{docker_host(location)}").rstrip("/")
        if base not in self.clients:
            self.clients[base] = OciClient(
                base, self.pool, credentials=self.credentials, timeout=self.options.timeout, redactor=self.redact
            )
        return self.clients[base]

    async def _repository(self, repo: RepositoryFacts) -> RepositoryFacts:
        if not any(t.signatures for t in repo.tags):
            return repo
        tags = await asyncio.gather(*(self._tag(repo.name, t) for t in repo.tags))
        return replace(repo, tags=tuple(tags))

    async def _tag(self, name: str, tag: TagFacts) -> TagFacts:
        if not tag.signatures or tag.digest is None:
            return tag
        key = (name, tag.digest)
        if key not in self.done:  # tags sharing a digest share one lookup
            self.done[key] = asyncio.ensure_future(self._signatures(name, tag.digest, tag.signatures))
        return replace(tag, signatures=await asyncio.shield(self.done[key]))

    async def _signatures(
        self, name: str, digest: str, found: tuple[SignatureFacts, ...]
    ) -> tuple[SignatureFacts, ...]:
        location, _, path = name.partition("/")
        oci_repository = f"{self.target.project}/{path}"
        if not (LOCATION.fullmatch(location) and valid_repository(oci_repository) and valid_digest(digest)):
            error = f"{name!r}@{digest[:80]!r} is not a GAR image path and digest; signature not requested"
            return tuple(replace(s, verified=None, verified_by=None, verify_error=error) for s in found)
        client = self._client(location)
        reference = f"{docker_host(location)}/{oci_repository}"
        out: list[SignatureFacts] = []
        for signature in found:
            try:
                manifest = await client.get_manifest(oci_repository, signature.reference)
            except OciError as exc:
                error = f"signature manifest not read: {self.redact(exc.detail)}"
                out.append(replace(signature, verified=None, verify_error=error))
                continue
            for layer in cosign.signature_layers(manifest):
                check = await self._verify_layer(client, oci_repository, reference, digest, layer)
                out.append(SignatureFacts("cosign", "tag", signature.reference, check.verified, check.verified_by,
                                          check.error))  # fmt: skip
        return tuple(out)

    async def _verify_layer(
        self, client: OciClient, repository: str, reference: str, digest: str, layer: Mapping[str, Any]
    ) -> cosign.Verification:
        layer_digest = layer.get("digest")
        if not isinstance(layer_digest, str) or not valid_digest(layer_digest):
            return cosign.Verification(False, error="signature layer has no valid digest")
        payload = cosign.canonical_payload(reference, digest)
        if cosign.sha256_digest(payload) != layer_digest:
            try:
                payload = await client.get_blob(repository, layer_digest)
            except OciError as exc:
                return cosign.Verification(False, error=f"cannot read signature payload: {self.redact(exc.detail)}")
        signature = layer["annotations"][cosign.SIGNATURE_ANNOTATION]
        return cosign.verify(payload, signature, digest, self.ring)
