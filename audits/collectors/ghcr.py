"""Collector for GitHub Container Registry: one organization's (or user's)
container packages, through the GitHub REST packages API (`ghcr_api`) and the
OCI API at the registry (`oci.OciClient`, the shared endpoint probe).

What comes from where, per package (requests beyond the cosign signature
manifests): one `GET …/packages/container/{name}/versions` page per 100
versions. A version's name is its manifest digest and
`metadata.container.tags` its tags, so tags, digests, push times (version
`created_at`) and untagged versions cost no OCI request; the signature of a
digest is a cosign `sha256-<hex>.sig` tag (or an OCI 1.1 referrers fallback
index `sha256-<hex>`) among them, and only then is its manifest fetched from
the registry (token exchange from the same GitHub token: `OciClient` answers
the registry's Bearer challenge with it) and verified against the trusted
keys. The referrers API itself is not probed.

Choices a reader of the facts should know:

* Visibility: a `public` package is `anonymous_pull=True`; RG-AUTH-001 fails
  it unless `public_repositories` declares it public.
* The token (CREDENTIALS): its kind is read from its prefix (`ghp_` classic
  PAT, `github_pat_` fine-grained, `ghs_` Actions/App installation token) and
  GitHub's headers (`X-OAuth-Scopes`, `GitHub-Authentication-Token-Expiration`);
  `can_push` is `write:packages` among a classic token's scopes. An Actions
  token has no expiry header: it is recorded as expiring 24 h after it was
  seen, the longest a job's `GITHUB_TOKEN` lives. The organization's default
  `GITHUB_TOKEN` permission (read/write) is recorded in the token's detail.
* A missing permission is `not_observable` naming what to grant (the facts
  become `manual` findings); a 401 or a rate limit that could not be waited out
  is an `error` with the reason.
* GHCR has no tag immutability, scanning, retention policy, content trust or
  pull counts (`unsupported`, with what to use instead); storage, encryption,
  replication and the endpoint's network are GitHub's (`managed`). Whether a
  package is linked to a source repository is kept in `RepositoryFacts.linked_repository`.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import ssl
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from audits.collectors import cosign
from audits.collectors.base import CollectOptions, RequestCounter, parse_time
from audits.collectors.ghcr_api import ApiError, GitHubApi, RateLimited
from audits.collectors.oci import (
    Credentials,
    OciClient,
    OciError,
    Redactor,
    counted_pool,
    shown_name,
    valid_digest,
    valid_repository,
)
from audits.collectors.oci_probe import PROBED_FACTS, Endpoint, EndpointProbe, probe_endpoint
from audits.collectors.oci_signatures import cosign_signatures, referrer_signatures
from audits.model import (
    ADMIN_ACCOUNT,
    CONTENT_TRUST,
    CREDENTIALS,
    ENCRYPTION,
    LOGGING,
    NETWORK_EXPOSURE,
    PULL_COUNTS,
    REPLICATION,
    REPOSITORIES,
    RETENTION,
    SCANNING,
    TAG_IMMUTABILITY,
    AdminAccountFacts,
    CredentialFacts,
    Fact,
    RepositoryFacts,
    SignatureFacts,
    TagFacts,
    TargetFacts,
    utcnow,
)
from audits.targets import GhcrTarget
from audits.vocabulary import is_artifact_tag

KIND = "ghcr"
ACTIONS_TOKEN_LIFETIME = timedelta(hours=24)  # GitHub: a job's GITHUB_TOKEN expires with the job, 24 h at most
API_FACTS = (REPOSITORIES, CREDENTIALS)
MAX_REFERRERS = 100  # descriptors read from one referrers index; more is no signature set a registry needs
ALL_FACTS = (
    *PROBED_FACTS, *API_FACTS, RETENTION, TAG_IMMUTABILITY, SCANNING, CONTENT_TRUST,
    REPLICATION, PULL_COUNTS, LOGGING, ENCRYPTION, NETWORK_EXPOSURE, ADMIN_ACCOUNT,
)  # fmt: skip


def static_facts() -> dict[str, Fact[Any]]:
    """What GHCR does not have, or GitHub runs, whatever the organization."""
    return {
        TAG_IMMUTABILITY: Fact.unsupported(
            "GHCR cannot make tags immutable: deploy by digest and grant packages: write only to the publish workflow"
        ),
        SCANNING: Fact.unsupported("GHCR does not scan images: scan in the publish workflow (e.g. Trivy) before push"),
        RETENTION: Fact.unsupported(
            "GHCR has no retention policy: delete old and untagged versions from a scheduled workflow "
            "(actions/delete-package-versions)"
        ),
        CONTENT_TRUST: Fact.unsupported("GHCR does not refuse unsigned pushes: verify cosign signatures at admission"),
        PULL_COUNTS: Fact.unsupported("the GitHub packages API reports no container download counts"),
        REPLICATION: Fact.managed("GitHub runs ghcr.io storage and its redundancy"),
        ENCRYPTION: Fact.managed("GitHub encrypts package storage with keys it manages; no customer keys"),
        NETWORK_EXPOSURE: Fact.managed("ghcr.io is GitHub's internet endpoint (IP allow lists: Enterprise Cloud)"),
        LOGGING: Fact.not_observable(
            "check the organization audit log (package events) is streamed or exported; reading it needs read:audit_log"
        ),
        ADMIN_ACCOUNT: Fact.ok(
            AdminAccountFacts(False, detail="GHCR has no shared admin account; access follows GitHub identities"),
            "GHCR",
        ),
    }


def collect(target: GhcrTarget, options: CollectOptions, *, counter: RequestCounter | None = None) -> TargetFacts:
    """Observe one GHCR owner. Never raises: what could not be observed is a fact saying why."""
    started = utcnow()
    counter = counter if counter is not None else RequestCounter()
    try:
        facts = asyncio.run(_Collection(target, options, counter).run())
    except Exception as exc:  # the seam promises facts, never an exception
        detail = f"internal error in the ghcr collector: {exc.__class__.__name__}"
        facts = {name: Fact.error(detail, target.api_url) for name in ALL_FACTS}
    return TargetFacts(target.name, KIND, facts, started, utcnow(), requests=counter.total)


@dataclass(frozen=True)
class _Version:
    digest: str
    tags: tuple[str, ...]
    created_at: datetime | None


class _Collection:
    def __init__(self, target: GhcrTarget, options: CollectOptions, counter: RequestCounter) -> None:
        self.target, self.options, self.counter = target, options, counter
        self.redact = Redactor()
        self.keys = cosign.load_keys(options.trusted_keys)
        self.semaphore = asyncio.Semaphore(max(1, options.concurrency))
        self.owner_path = f"/{'orgs' if target.owner_type == 'org' else 'users'}/{target.owner}"
        self.repo_prefix = target.owner.lower()
        self._done = 0

    async def run(self) -> dict[str, Fact[Any]]:
        facts = static_facts()
        self.options.record_all(facts)
        probe = await probe_endpoint(
            self.target.registry_url,
            ca_file=self.target.ca_file,
            timeout=self.target.timeout,
            counter=self.counter,
            semaphore=self.semaphore,
            publish=self.options.record,
        )
        self.options.record_all(probe.facts())
        api_facts = await self._api_facts(probe)
        facts.update({**probe.facts(api_facts[REPOSITORIES], self._wanted), **api_facts})
        self.options.record_all(facts)
        return facts

    async def _api_facts(self, probe: EndpointProbe) -> dict[str, Fact[Any]]:
        source = f"GET {self.target.api_url}{self.owner_path}/packages?package_type=container"
        token = os.environ.get(self.target.token_env or "", "")
        if not token:
            why = f"environment variable {self.target.token_env} is not set" if self.target.token_env else (
                "token_env is not set: the packages API needs a token with read:packages"
            )
            return {name: Fact.error(why, source) for name in API_FACTS}
        self.redact.add(token)
        try:
            verify: ssl.SSLContext | bool = (
                ssl.create_default_context(cafile=str(self.target.ca_file)) if self.target.ca_file else True
            )
        except (OSError, ssl.SSLError):
            return {name: Fact.error(f"cannot load CA file {self.target.ca_file}", source) for name in API_FACTS}
        pool = counted_pool(self.semaphore, timeout=self.target.timeout, verify=verify, counter=self.counter)
        async with pool:
            api = GitHubApi(self.target.api_url.rstrip("/"), pool, token, self.target.timeout, self.redact,
                            self.target.max_rate_limit_wait)
            oci = OciClient(self.target.registry_url, pool, credentials=Credentials(self.target.owner, token),
                            challenge=probe.challenge, timeout=self.target.timeout, redactor=self.redact)
            repositories = self.options.record(REPOSITORIES, await self._repositories(api, oci, source))
            workflow = await self._workflow_permissions(api)
        credentials = self.options.record(CREDENTIALS, self._credentials(api, token, workflow, source))
        if (budget := api.describe_rate_limit()) is not None:
            self.options.published.warn(budget)
        return {REPOSITORIES: repositories, CREDENTIALS: credentials}

    # ---- packages -------------------------------------------------------------

    async def _repositories(self, api: GitHubApi, oci: OciClient, source: str) -> Fact[tuple[RepositoryFacts, ...]]:
        try:
            listed = await api.pages(f"{self.owner_path}/packages", {"package_type": "container"})
        except ApiError as exc:
            return self._api_failure(exc, "read:packages", source)
        packages = [p for p in listed if isinstance(p, dict) and isinstance(p.get("name"), str)]
        selected = self.options.cap_repositories(
            [p for p in packages if self._wanted(p["name"])], name=lambda p: str(p["name"])
        )
        self.options.report("packages", 0, len(selected))
        repos = await asyncio.gather(*(self._package(api, oci, p, len(selected)) for p in selected))
        return Fact.ok(tuple(repos), source)

    def _api_failure(self, exc: ApiError, permission: str, source: str) -> Fact[Any]:
        if exc.status == 403 and not isinstance(exc, RateLimited):
            scope = exc.accepted_scope or permission
            return Fact.not_observable(f"grant the token {scope} to see this ({exc.detail})", exc.source)
        return Fact.error(self.redact(exc.detail), exc.source or source)

    async def _package(self, api: GitHubApi, oci: OciClient, package: dict[str, Any], total: int) -> RepositoryFacts:
        name = str(package["name"])
        path = f"{self.owner_path}/packages/container/{quote(name, safe='')}/versions"
        facts = RepositoryFacts(
            name,
            anonymous_pull=package.get("visibility") == "public",
            declared_public=any(fnmatch.fnmatchcase(name, p) for p in self.target.public_repositories),
            source=f"GET {self.target.api_url}{path}",
            linked_repository=_linked_repository(package),
        )
        oci_repo = f"{self.repo_prefix}/{name}"
        try:
            if not valid_repository(oci_repo):  # a name GitHub sent never goes into a registry path unchecked
                refused = f"name not allowed by the OCI distribution spec: GitHub listed '{shown_name(name)}'"
                return replace(facts, name=shown_name(name), error=f"{refused}; it was not requested")
            versions = [v for raw in await api.pages(path, {}) if (v := _version(raw)) is not None]
            return replace(facts, **await self._tags(oci, oci_repo, versions))
        except ApiError as exc:
            return replace(facts, error=self.redact(exc.detail))
        finally:
            self._done += 1
            self.options.report("packages", self._done, total)

    async def _tags(self, oci: OciClient, repo: str, versions: list[_Version]) -> dict[str, Any]:
        artifact_tags = {t for v in versions for t in v.tags if is_artifact_tag(t)}
        images = [v for v in versions if any(not is_artifact_tag(t) for t in v.tags)]
        untagged = sum(1 for v in versions if not v.tags)
        signatures = await asyncio.gather(*(self._signatures(oci, repo, v.digest, artifact_tags) for v in images))
        tags = [
            TagFacts(tag, v.digest, None, pushed_at=v.created_at, signatures=sigs, error=error)
            for v, (sigs, error) in zip(images, signatures, strict=True)
            for tag in v.tags
            if not is_artifact_tag(tag)
        ]
        return {"tags": tuple(sorted(tags, key=lambda t: t.name)), "untagged_digests": untagged}

    async def _signatures(
        self, oci: OciClient, repo: str, digest: str, artifact_tags: set[str]
    ) -> tuple[tuple[SignatureFacts, ...] | None, str | None]:
        """cosign's `sha256-<hex>.sig` tag, and the OCI 1.1 referrers fallback
        index (`sha256-<hex>`) where a package has one; no request when neither is there."""
        index_tag = digest.replace(":", "-", 1)
        found: list[SignatureFacts] = []
        try:
            if index_tag in artifact_tags:
                found += await self._referrers(oci, repo, digest, index_tag)
            if index_tag + ".sig" in artifact_tags:
                found += await self._cosign(oci, repo, digest, "tag", index_tag + ".sig")
        except OciError as exc:
            return None, f"signature lookup failed: {self.redact(exc.detail)}"
        return tuple(found), None

    async def _referrers(self, oci: OciClient, repo: str, digest: str, index_tag: str) -> list[SignatureFacts]:
        index = await oci.get_manifest(repo, index_tag)
        listed = index.get("manifests")
        descriptors: list[Any] = listed[:MAX_REFERRERS] if isinstance(listed, list) else []
        found: list[SignatureFacts] = []
        for descriptor in descriptors:
            if isinstance(descriptor, dict):
                found += await referrer_signatures(oci, self.keys, repo=repo, digest=digest, descriptor=descriptor,
                                                   docker_reference=self._docker_reference(oci, repo))
        return found

    async def _cosign(self, oci: OciClient, repo: str, digest: str, via: str, reference: str) -> list[SignatureFacts]:
        manifest = await oci.get_manifest(repo, reference)
        return await cosign_signatures(oci, self.keys, repo=repo, digest=digest, manifest=manifest, via=via,
                                       reference=reference, docker_reference=self._docker_reference(oci, repo))

    @staticmethod
    def _docker_reference(oci: OciClient, repo: str) -> str:
        return f"{Endpoint.parse(oci.base_url).netloc}/{repo}"

    def _wanted(self, name: str) -> bool:
        patterns = [*self.target.packages, *self.target.repositories]
        return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)

    # ---- token and Actions settings -----------------------------------------------

    async def _workflow_permissions(self, api: GitHubApi) -> str:
        if self.target.owner_type != "org":
            return "not applicable: a user account has no organization Actions settings"
        try:
            body, _ = await api.get(f"{self.owner_path}/actions/permissions/workflow")
        except ApiError as exc:
            if exc.status == 403 and not isinstance(exc, RateLimited):
                return "not observable: grant the token read access to organization administration (Actions settings)"
            return f"not collected: {self.redact(exc.detail)}"
        value = body.get("default_workflow_permissions") if isinstance(body, dict) else None
        return f"organization default GITHUB_TOKEN permission: {value if value in ('read', 'write') else 'unknown'}"

    def _credentials(self, api: GitHubApi, token: str, workflow: str, source: str) -> Fact[tuple[CredentialFacts, ...]]:
        seen = api.token_headers
        if not seen.seen:
            return Fact.error("no GitHub answer accepted the token, so its kind could not be read", source)
        kind, lifetime = _token_kind(token, seen.oauth_scopes)
        expires = seen.expires_at or (utcnow() + lifetime if lifetime else None)
        scopes = ", ".join(seen.oauth_scopes) if seen.oauth_scopes is not None else "not reported (not a classic PAT)"
        can_push = seen.oauth_scopes is not None and "write:packages" in seen.oauth_scopes
        credential = CredentialFacts(
            id=f"GitHub token in {self.target.token_env} ({kind})",
            kind="token",
            created_at=None,
            expires_at=expires,
            can_push=can_push,
            detail=f"{kind}; scopes: {scopes}; {workflow}",
        )
        return Fact.ok((credential,), f"GET {self.target.api_url} (token headers)")


def _token_kind(token: str, scopes: tuple[str, ...] | None) -> tuple[str, timedelta | None]:
    """How GitHub issued the token, from its documented prefix; the lifetime
    to assume when GitHub sends no expiry header (None: it has none)."""
    if token.startswith("github_pat_"):
        return "fine-grained personal access token", None
    if token.startswith("ghs_"):
        return "GitHub Actions / App installation token", ACTIONS_TOKEN_LIFETIME
    if token.startswith("ghp_") or scopes is not None:
        return "classic personal access token", None
    return "token of unknown kind", None


def _version(raw: Any) -> _Version | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not valid_digest(raw["name"]):
        return None
    container = (raw.get("metadata") or {}).get("container") if isinstance(raw.get("metadata"), dict) else None
    tags = container.get("tags") if isinstance(container, dict) else None
    names = tuple(t for t in tags if isinstance(t, str) and t) if isinstance(tags, list) else ()
    return _Version(raw["name"], names, parse_time(raw.get("created_at")))


def _linked_repository(package: dict[str, Any]) -> str | None:
    repository = package.get("repository")
    name = repository.get("full_name") if isinstance(repository, dict) else None
    return name if isinstance(name, str) else None
