"""Collector for a self-hosted Docker Distribution (`registry:2`) endpoint.

`collect(target, options)` observes the registry through its OCI API and, when
the audit runs on the registry host (`config_file` set), through its
`config.yml` (`distribution_config`). It returns facts and never judges them.
The endpoint itself (TLS, plain HTTP, anonymous access, token realm) is
observed by the shared `oci_probe`; its docstring says how.

Choices a reader of the facts should know:

* **Unverified TLS.** Credentials are never sent to an endpoint whose
  certificate did not verify (chain or hostname): `REPOSITORIES` is then
  `error("not collected: TLS verification failed (...)")`.
* **Plain-HTTP targets with credentials** do get them with Basic auth: the
  operator chose the `http://` URL; RG-AUTH-002 reports the exposure. A Bearer
  token realm gets them only over HTTPS, on the registry's origin or one listed
  in `allowed_token_realms` (see `oci.realm_refusal`).
* **Hostile registries.** Every request is bounded in time and size and every
  listing in pages and entries (`oci`); what one request could not read is an
  error on that repository or tag, the other facts stay. Repository and tag
  names the OCI spec forbids are never requested: they are reported as
  repositories / tags with an `error` saying so.
* **Signatures.** The OCI referrers API is probed once per registry (the first
  tag's digest); a 404 (Distribution 2.8) switches to cosign's tag scheme,
  which costs no request for unsigned tags because `sha256-<hex>.sig` tags are
  already in the tag list. A signature manifest is fetched once per signed
  digest; the payload blob only when it is not the canonical payload cosign
  would have written.
* **Registry-side facts** (`LOGGING`, `ENCRYPTION`, `NETWORK_EXPOSURE`,
  `CREDENTIALS`, `ADMIN_ACCOUNT`) come from `config_file` only; without it they
  are `not_observable` with what to check. `ENCRYPTION` is registry-wide
  (`registry_wide`; `by_repository` stays empty: storage is shared).
  `RETENTION` is always `not_observable` (garbage collection runs outside the
  API). Tag immutability, scanning, content trust, replication and pull counts
  do not exist in Distribution: `unsupported`.
* `RepositoryFacts.untagged_digests` stays 0 and `TagFacts.pushed_at` None:
  the Distribution API cannot list untagged manifests or push times.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ssl
from typing import Any

import httpx

from audits.collectors import cosign
from audits.collectors.base import CollectOptions, RequestCounter
from audits.collectors.distribution_config import CONFIG_FACTS, config_facts, static_facts
from audits.collectors.oci import (
    Credentials,
    OciClient,
    OciError,
    Redactor,
    counted_pool,
    shown_name,
    valid_repository,
    valid_tag,
)
from audits.collectors.oci_access import MissingCredential, credentials_from_env, tls_refusal
from audits.collectors.oci_probe import (
    CATALOG_PAGE_SIZE,
    PROBED_FACTS,
    AnonymousProbe,
    Endpoint,
    EndpointProbe,
    TlsProbe,
    probe_endpoint,
)
from audits.collectors.oci_signatures import cosign_signatures, referrer_signatures
from audits.collectors.tls_probe import probe_tls
from audits.model import (
    CONTENT_TRUST,
    PULL_COUNTS,
    REPLICATION,
    REPOSITORIES,
    RETENTION,
    SCANNING,
    TAG_IMMUTABILITY,
    Fact,
    RepositoryFacts,
    SignatureFacts,
    TagFacts,
    TargetFacts,
    TlsFacts,
    utcnow,
)
from audits.targets import DistributionTarget
from audits.vocabulary import is_artifact_tag

KIND = "distribution"
# How much of a name the spec forbids is kept in the facts (the spec's own limits).
MAX_SHOWN_TAG, MAX_SHOWN_REPOSITORY = 128, 255

# cosign artifacts (`.sig`/`.att`/`.sbom`) and the OCI referrers fallback tag

ALL_FACTS = (
    *PROBED_FACTS, REPOSITORIES, RETENTION, TAG_IMMUTABILITY,
    SCANNING, CONTENT_TRUST, REPLICATION, PULL_COUNTS, *CONFIG_FACTS,
)  # fmt: skip


def collect(
    target: DistributionTarget,
    options: CollectOptions,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    tls_probe: TlsProbe = probe_tls,
    counter: RequestCounter | None = None,
) -> TargetFacts:
    """Observe one Distribution registry. Never raises: anything that could not
    be observed is an `error` fact with a human-readable reason.

    `transport` and `tls_probe` replace the network in unit tests; `counter`
    lets a caller (the bench) read requests per kind of call."""
    started = utcnow()
    counter = counter if counter is not None else RequestCounter()
    try:
        facts = asyncio.run(_Collection(target, options, counter, transport, tls_probe).run())
    except Exception as exc:  # the seam promises facts, never an exception
        detail = f"internal error in the distribution collector: {exc.__class__.__name__}"
        facts = {name: Fact.error(detail, target.url) for name in ALL_FACTS}
    return TargetFacts(
        target=target.name,
        kind=KIND,
        facts=facts,
        started_at=started,
        finished_at=utcnow(),
        requests=counter.total,
    )


# --------------------------------------------------------------------------
# One collection run
# --------------------------------------------------------------------------


class _Collection:
    """State of one `collect` call: clients, the shared semaphore, caches."""

    def __init__(
        self,
        target: DistributionTarget,
        options: CollectOptions,
        counter: RequestCounter,
        transport: httpx.AsyncBaseTransport | None = None,
        tls_probe: TlsProbe = probe_tls,
    ) -> None:
        self.target = target
        self._transport = transport
        self._probe = tls_probe
        self.options = options
        self.counter = counter
        self.endpoint = Endpoint.parse(target.url)
        self.timeout = target.timeout
        self.keys = cosign.load_keys(options.trusted_keys)
        self.redact = Redactor()
        self._referrers_supported: bool | None = None
        self._referrers_lock = asyncio.Lock()
        self._signature_tasks: dict[tuple[str, str], asyncio.Task[tuple[SignatureFacts, ...]]] = {}
        self._repos_done = 0
        self.semaphore = asyncio.Semaphore(max(1, options.concurrency))

    async def run(self) -> dict[str, Fact[Any]]:
        """Every fact, each group also published as soon as it is known
        (`options.record`), so a deadline that cuts the collection short keeps
        what was seen (TLS evidence first)."""
        static = {**static_facts(), **config_facts(self.target.config_file)}
        self.options.record_all(static)
        probe = await probe_endpoint(
            self.target.url,
            ca_file=self.target.ca_file,
            timeout=self.timeout,
            counter=self.counter,
            semaphore=self.semaphore,
            transport=self._transport,
            tls_probe=self._probe,
            allowed_token_realms=self.target.allowed_token_realms,
            publish=self.options.record,
        )
        unlisted: Fact[tuple[RepositoryFacts, ...]] = Fact.error("repository listing did not finish", "")
        self.options.record_all(probe.facts(unlisted, self._selected))
        repositories = self.options.record(REPOSITORIES, await self._repositories(probe))
        facts = {**static, **probe.facts(repositories, self._selected), REPOSITORIES: repositories}
        self.options.record_all(facts)
        return facts

    # ---- authenticated collection ---------------------------------------------

    async def _repositories(self, probe: EndpointProbe) -> Fact[tuple[RepositoryFacts, ...]]:
        source = f"GET {probe.endpoint.url}/v2/_catalog"
        refused = self._tls_gate(probe.tls)
        if refused is not None:
            return Fact.error(refused, source)
        try:
            credentials = self._credentials()
        except MissingCredential as exc:
            return Fact.error(str(exc), source)
        try:
            verify = self._verify_context()
        except (OSError, ssl.SSLError):
            return Fact.error(f"cannot load CA file {self.target.ca_file}", source)
        pool = counted_pool(
            self.semaphore, timeout=self.timeout, verify=verify, counter=self.counter, transport=self._transport
        )
        async with pool:
            client = OciClient(
                probe.endpoint.url,
                pool,
                credentials=credentials,
                challenge=probe.challenge,
                timeout=self.timeout,
                redactor=self.redact,
                allowed_realms=self.target.allowed_token_realms,
            )
            try:
                names = await client.catalog(CATALOG_PAGE_SIZE)
            except OciError as exc:
                return Fact.error(self.redact(exc.detail), exc.source)
            return Fact.ok(await self._listed(client, names, probe.anonymous.value), source)

    async def _listed(
        self, client: OciClient, names: list[str], anon: AnonymousProbe | None
    ) -> tuple[RepositoryFacts, ...]:
        """The facts of every listed repository the filters select; a name the
        spec forbids is reported as such and never requested."""
        wanted = {n for n in names if self._wanted(n)}
        valid = sorted(n for n in wanted if valid_repository(n))
        refused = [self._forbidden_repository(n) for n in sorted(wanted - set(valid))]
        selected = self.options.cap_repositories(valid)
        self.options.report("repositories", 0, len(selected))
        anonymous = anon.repository_pull() if anon is not None else None
        repos = await asyncio.gather(*(self._repository(client, n, len(selected), anonymous) for n in selected))
        return (*repos, *refused)

    def _forbidden_repository(self, name: str) -> RepositoryFacts:
        shown = shown_name(name)
        detail = (
            f"name not allowed by the OCI distribution spec: the registry listed '{shown}' "
            "(lower-case path components, at most 255 characters); it was not requested"
        )
        return RepositoryFacts(name[:MAX_SHOWN_REPOSITORY], error=detail, source=f"GET {self.endpoint.url}/v2/_catalog")

    def _tls_gate(self, tls: Fact[TlsFacts]) -> str | None:
        """Why authenticated collection must not run, or None when it may."""
        return tls_refusal(self.endpoint, tls)

    def _credentials(self) -> Credentials | None:
        """Credentials from the environment variables the target names. A
        missing variable is reported by its name; values never leave here."""
        return credentials_from_env(self.target.username_env, self.target.password_env, self.redact)

    def _verify_context(self) -> ssl.SSLContext | bool:
        if self.target.ca_file is None:
            return True
        return ssl.create_default_context(cafile=str(self.target.ca_file))

    def _wanted(self, name: str) -> bool:
        patterns = self.target.repositories
        return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def _selected(self, name: str) -> bool:
        return valid_repository(name) and self._wanted(name)

    def _declared_public(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.target.public_repositories)

    async def _repository(self, client: OciClient, name: str, total: int, anonymous: bool | None) -> RepositoryFacts:
        source = f"GET {self.endpoint.url}/v2/{name}/tags/list"
        public = self._declared_public(name)
        try:
            try:
                all_tags = await client.tags(name)
            except OciError as exc:
                return RepositoryFacts(
                    name, anonymous_pull=anonymous, declared_public=public, error=self.redact(exc.detail), source=source
                )
            image_tags, signature_tags = split_artifact_tags(all_tags)
            tags = await asyncio.gather(*(self._tag(client, name, t, signature_tags) for t in sorted(image_tags)))
            return RepositoryFacts(name, tuple(tags), anonymous_pull=anonymous, declared_public=public, source=source)
        finally:
            self._repos_done += 1
            self.options.report("repositories", self._repos_done, total)

    async def _tag(self, client: OciClient, repo: str, tag: str, signature_tags: frozenset[str]) -> TagFacts:
        if not valid_tag(tag):
            # Never put a name the registry made up (`../x`, `a/b`) into a request path.
            # The fact keeps the name as listed (cut to a sane length); reporters make it safe to show.
            return TagFacts(
                tag[:MAX_SHOWN_TAG], None, None, error="the registry listed a tag name the OCI spec does not allow"
            )
        try:
            ref = await client.head_manifest(repo, tag)
        except OciError as exc:
            return TagFacts(tag, None, None, error=self.redact(exc.detail))
        key = (repo, ref.digest)
        task = self._signature_tasks.get(key)
        if task is None:  # tags sharing a digest share one lookup
            task = asyncio.ensure_future(self._signatures(client, repo, ref.digest, signature_tags))
            self._signature_tasks[key] = task
        try:
            signatures = await asyncio.shield(task)
        except OciError as exc:
            return TagFacts(
                tag, ref.digest, ref.media_type, error=f"signature lookup failed: {self.redact(exc.detail)}"
            )
        return TagFacts(tag, ref.digest, ref.media_type, signatures=signatures)

    # ---- signatures -------------------------------------------------------

    async def _signatures(
        self, client: OciClient, repo: str, digest: str, signature_tags: frozenset[str]
    ) -> tuple[SignatureFacts, ...]:
        found: list[SignatureFacts] = []
        referrers = await self._referrers(client, repo, digest)
        for descriptor in referrers or ():
            found.extend(await referrer_signatures(
                client, self.keys, repo=repo, digest=digest, descriptor=descriptor,
                docker_reference=f"{self.endpoint.netloc}/{repo}",
            ))  # fmt: skip
        sig_tag = digest.replace(":", "-", 1) + ".sig"
        if digest.startswith("sha256:") and sig_tag in signature_tags:
            manifest = await client.get_manifest(repo, sig_tag)
            found.extend(await self._cosign_signatures(client, repo, digest, manifest, "tag", sig_tag))
        return tuple(found)

    async def _referrers(self, client: OciClient, repo: str, digest: str) -> list[dict[str, Any]] | None:
        """Referrers of `digest`, or None when the registry has no referrers
        API. The first caller probes; everyone else waits for its answer."""
        if self._referrers_supported is None:
            async with self._referrers_lock:
                if self._referrers_supported is None:
                    result = await client.referrers(repo, digest)
                    self._referrers_supported = result is not None
                    return result
        if not self._referrers_supported:
            return None
        return await client.referrers(repo, digest)

    async def _cosign_signatures(
        self, client: OciClient, repo: str, digest: str, manifest: dict[str, Any], via: str, reference: str
    ) -> list[SignatureFacts]:
        return await cosign_signatures(
            client, self.keys, repo=repo, digest=digest, manifest=manifest, via=via, reference=reference,
            docker_reference=f"{self.endpoint.netloc}/{repo}",
        )


def split_artifact_tags(tags: list[str]) -> tuple[list[str], frozenset[str]]:
    """Image tags, and the cosign/referrers artifact tags that are not images."""
    images: list[str] = []
    artifacts: set[str] = set()
    for tag in tags:
        if is_artifact_tag(tag):
            artifacts.add(tag)
        else:
            images.append(tag)
    return images, frozenset(artifacts)
