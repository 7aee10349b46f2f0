"""Collector for a Docker Hub namespace: the Hub API (`hub_url`) for what only
Docker Hub knows, the registry's OCI API (`registry_url`) for tags, digests and
signatures, and the shared endpoint probe for what a stranger sees.

Per repository it costs two Hub API requests (the repository, for
`immutable_tags_settings`; its tags, for `tag_last_pushed`) beyond the OCI tag
walk (tag list, one HEAD per tag, the signature manifest of signed digests);
the repository listing, tokens, organization settings and audit log are a few
requests per namespace.

Choices a reader of the facts should know:

* **Names.** Repositories are `namespace/repository`, as `docker pull` spells
  them; `repositories` / `public_repositories` filters match that name.
* **Public means anonymous pull.** A Docker Hub repository that is not private
  can be pulled by anyone, so `anonymous_pull = not is_private`.
* **Pull counts** are Hub's running totals (`pull_count`): PULL_COUNTS holds
  today's total with `cumulative=True`; RG-MON-002 takes daily differences
  with the totals earlier audits kept in history.
* **Permissions.** What the token may not read (HTTP 403) is
  `not_observable` naming what to grant, so its rules ask a person; a 404 on
  organization endpoints means the namespace is a personal account, which has
  no organization tokens, settings or audit log.
* **Features Docker Hub lacks** (retention policies, replication, customer
  keys, private networking, signature enforcement) are `unsupported` with what
  to use instead; Docker Scout scanning is not in the Hub API
  (`not_observable`).
* **Rate limits**: see `dockerhub_api`; a call skipped for a 429 is an error
  on the fact or repository it was for, and the remaining budget is a warning
  in the run summary.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import ssl
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from audits.collectors import cosign
from audits.collectors.base import CollectOptions, RequestCounter, parse_time
from audits.collectors.dockerhub_api import HubClient, HubError, rate_summary
from audits.collectors.oci import (
    Challenge,
    Credentials,
    HttpPool,
    OciClient,
    OciError,
    Redactor,
    counted_pool,
    shown_name,
    valid_repository,
    valid_tag,
)
from audits.collectors.oci_probe import PROBED_FACTS, EndpointProbe, TlsProbe, probe_endpoint
from audits.collectors.oci_signatures import cosign_signatures
from audits.collectors.rate_limit import RateBudget, Sleep
from audits.collectors.tls_probe import probe_tls
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
    SOURCE_RESTRICTION,
    TAG_IMMUTABILITY,
    AdminAccountFacts,
    CredentialFacts,
    Fact,
    ImmutabilitySetting,
    LoggingFacts,
    NetworkExposureFacts,
    PullCountFacts,
    RepositoryFacts,
    SourceRestrictionFacts,
    TagFacts,
    TagImmutabilityFacts,
    TargetFacts,
    utcnow,
)
from audits.targets import DockerHubTarget
from audits.vocabulary import is_artifact_tag

KIND = "dockerhub"
HUB_FACTS = (REPOSITORIES, TAG_IMMUTABILITY, PULL_COUNTS, CREDENTIALS, SOURCE_RESTRICTION, LOGGING)
STATIC_FACTS = (SCANNING, RETENTION, REPLICATION, ENCRYPTION, NETWORK_EXPOSURE, ADMIN_ACCOUNT, CONTENT_TRUST)
ALL_FACTS = (*PROBED_FACTS, *HUB_FACTS, *STATIC_FACTS)
PUSH_SCOPES = frozenset({"repo:write", "repo:admin"})
OWNER = "grant the auditing account the organization owner role (or use an organization access token) to see this"
MAX_IMMUTABLE_PATTERN = 256  # a longer rule is not a tag pattern; kept out of the fact


def collect(
    target: DockerHubTarget,
    options: CollectOptions,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    tls_probe: TlsProbe = probe_tls,
    counter: RequestCounter | None = None,
    sleep: Sleep = asyncio.sleep,
) -> TargetFacts:
    """Observe one Docker Hub namespace. Never raises: what could not be
    observed is an `error` fact with the reason. `transport`, `tls_probe` and
    `sleep` replace the network and the clock in tests; `counter` lets the
    bench read requests per kind of call."""
    started = utcnow()
    counter = counter if counter is not None else RequestCounter()
    collection = _Collection(target, options, counter, transport, tls_probe, sleep)
    try:
        facts = asyncio.run(collection.run())
    except Exception as exc:  # the seam promises facts, never an exception
        detail = f"internal error in the dockerhub collector: {exc.__class__.__name__}"
        facts = {name: Fact.error(detail, target.hub_url) for name in ALL_FACTS}
    summary = rate_summary(collection.budget)
    if summary:
        options.published.warn(summary)
    return TargetFacts(
        target=target.name, kind=KIND, facts=facts, started_at=started, finished_at=utcnow(), requests=counter.total
    )


def static_facts() -> dict[str, Fact[Any]]:
    """What Docker Hub is, whatever the namespace: features it has not, or has outside the Hub API."""
    hub = "https://docs.docker.com/docker-hub/"
    return {
        SCANNING: Fact.not_observable(
            "Docker Hub scans with Docker Scout, which the Hub API does not show: check in Docker Scout that the "
            "repositories are enabled for analysis",
            hub,
        ),
        RETENTION: Fact.unsupported(
            "Docker Hub has no retention policies: delete stale tags from a scheduled clean-up",
            hub,
        ),
        REPLICATION: Fact.unsupported("no replication: mirror to a second registry with `skopeo sync`", hub),
        ENCRYPTION: Fact.unsupported(
            "no customer-managed keys: keep images that need one in ECR, ACR or GAR with a KMS key", hub
        ),
        NETWORK_EXPOSURE: Fact.ok(
            NetworkExposureFacts(True, "Docker Hub is a public service with no IP allow-list or private endpoint"),
            hub,
        ),
        ADMIN_ACCOUNT: Fact.ok(
            AdminAccountFacts(False, detail="Docker Hub has no shared admin account; owners are personal accounts"),
            hub,
        ),
        CONTENT_TRUST: Fact.unsupported(
            "Docker Hub accepts unsigned pushes (Docker Content Trust is retired): sign with cosign in CI and "
            "enforce at admission",
            hub,
        ),
    }


class _Collection:
    """State of one `collect` call."""

    def __init__(
        self,
        target: DockerHubTarget,
        options: CollectOptions,
        counter: RequestCounter,
        transport: httpx.AsyncBaseTransport | None,
        tls_probe: TlsProbe,
        sleep: Sleep,
    ) -> None:
        self.target = target
        self.options = options
        self.counter = counter
        self._transport = transport
        self._tls_probe = tls_probe
        self._sleep = sleep
        self.ns = target.namespace
        self.redact = Redactor()
        self.budget = RateBudget(wait_left=target.rate_limit_wait)
        self.keys = cosign.load_keys(options.trusted_keys)
        self.semaphore = asyncio.Semaphore(max(1, options.concurrency))
        self._done = 0

    async def run(self) -> dict[str, Fact[Any]]:
        facts: dict[str, Fact[Any]] = static_facts()
        self.options.record_all(facts)
        try:
            verify = self._verify()
        except (OSError, ssl.SSLError):
            verify = None
        # The probe first: its anonymous /v2/ challenge lets the first OCI calls
        # authenticate at once instead of each paying a 401 round trip.
        probe = await self._probe()
        unlisted: Fact[tuple[RepositoryFacts, ...]] = Fact.error("repository listing did not finish", "")
        self.options.record_all(probe.facts(unlisted, self._wanted))
        hub = await self._hub(verify, probe.challenge)
        facts.update(hub)
        facts.update(probe.facts(hub[REPOSITORIES], self._wanted))
        self.options.record_all(facts)
        return facts

    async def _probe(self) -> EndpointProbe:
        return await probe_endpoint(
            self.target.registry_url,
            ca_file=self.target.ca_file,
            timeout=self.target.timeout,
            counter=self.counter,
            semaphore=self.semaphore,
            transport=self._transport,
            tls_probe=self._tls_probe,
            allowed_token_realms=self.target.allowed_token_realms,
            publish=self.options.record,
        )

    def _verify(self) -> ssl.SSLContext | bool:
        if self.target.ca_file is None:
            return True
        return ssl.create_default_context(cafile=str(self.target.ca_file))

    # ---- the Hub API ----------------------------------------------------------

    async def _hub(self, verify: ssl.SSLContext | bool | None, challenge: Challenge | None) -> dict[str, Fact[Any]]:
        source = f"POST {self.target.hub_url.rstrip('/')}/v2/auth/token"
        if verify is None:
            return self._all_hub_errors(f"cannot load CA file {self.target.ca_file}", source)
        try:
            identifier, secret = self._secrets()
        except ValueError as exc:
            return self._all_hub_errors(str(exc), source)
        async with self._pool(verify) as pool:
            hub = HubClient(
                self.target.hub_url, pool, timeout=self.target.timeout, budget=self.budget,
                redactor=self.redact, sleep=self._sleep,
            )  # fmt: skip
            try:
                await hub.login(identifier, secret)
            except HubError as exc:
                return self._all_hub_errors(self.redact(exc.detail), exc.source)
            oci = OciClient(
                self.target.registry_url, pool, credentials=Credentials(identifier, secret), challenge=challenge,
                timeout=self.target.timeout, redactor=self.redact, allowed_realms=self.target.allowed_token_realms,
            )  # fmt: skip
            results = await asyncio.gather(
                self._repositories(hub, oci), self._credentials(hub), self._restriction(hub), self._logging(hub)
            )
        facts: dict[str, Fact[Any]] = {}
        for part in results:
            facts.update(part)
        return facts

    def _pool(self, verify: ssl.SSLContext | bool) -> HttpPool:
        return counted_pool(
            self.semaphore, timeout=self.target.timeout, verify=verify, counter=self.counter, transport=self._transport
        )

    def _all_hub_errors(self, detail: str, source: str) -> dict[str, Fact[Any]]:
        return {name: self.options.record(name, Fact.error(detail, source)) for name in HUB_FACTS}

    def _secrets(self) -> tuple[str, str]:
        """(identifier, access token) from the environment: the Docker ID when
        `username_env` names one, else the namespace (organization access tokens
        log in as the organization). Values never leave this object's clients."""
        token_var, user_var = self.target.token_env, self.target.username_env
        if not token_var:
            raise ValueError("token_env must name the variable holding a Docker Hub access token")
        for var in (token_var, user_var):
            if var and not os.environ.get(var):
                raise ValueError(f"environment variable {var} is not set")
        return (os.environ[user_var] if user_var else self.ns), os.environ[token_var]

    def _path(self, *parts: str) -> str:
        return "/v2/" + "/".join(parts)

    def _wanted(self, name: str) -> bool:
        """A valid `namespace/name` the filters select."""
        return name.count("/") == 1 and valid_repository(name) and self._matches(name)

    def _matches(self, name: str) -> bool:
        """Selected by the filters, whether or not the name is a valid one."""
        patterns = self.target.repositories
        return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def _denied(self, exc: HubError, what: str) -> Fact[Any]:
        """403: the token may not read it (a person checks); otherwise an error."""
        if exc.status == 403:
            return Fact.not_observable(f"{what}: {OWNER}", exc.source)
        return Fact.error(self.redact(exc.detail), exc.source)

    # ---- repositories -----------------------------------------------------------

    async def _repositories(self, hub: HubClient, oci: OciClient) -> dict[str, Fact[Any]]:
        path = self._path("namespaces", self.ns, "repositories")
        source = f"GET {hub.base_url}{path}"
        try:
            entries = await hub.pages(path)
        except HubError as exc:
            failed = self._denied(exc, "the repository listing")
            return {name: self.options.record(name, failed) for name in (REPOSITORIES, TAG_IMMUTABILITY, PULL_COUNTS)}
        listed = {f"{self.ns}/{e['name']}": e for e in entries if isinstance(e.get("name"), str)}
        refused = [_refused(n, source) for n in sorted(listed) if not self._wanted(n) and self._matches(n)]
        selected = self.options.cap_repositories(sorted(n for n in listed if self._wanted(n)))
        self.options.report("repositories", 0, len(selected))
        pulls = {n: c for n in selected if isinstance(c := listed[n].get("pull_count"), int) and c >= 0}
        today = utcnow().date().isoformat()
        counts = Fact.ok(PullCountFacts({n: {today: c} for n, c in pulls.items()}, cumulative=True), source)
        self.options.record(PULL_COUNTS, counts)
        done = await asyncio.gather(*(self._repository(hub, oci, n, listed[n], len(selected)) for n in selected))
        settings = {name: s for name, _, s in done if s is not None}
        return {
            REPOSITORIES: Fact.ok((*(repo for _, repo, _ in done), *refused), source),
            TAG_IMMUTABILITY: Fact.ok(TagImmutabilityFacts(settings), f"GET {hub.base_url}{path}/{{repository}}"),
            PULL_COUNTS: counts,
        }

    async def _repository(
        self, hub: HubClient, oci: OciClient, name: str, entry: Mapping[str, Any], total: int
    ) -> tuple[str, RepositoryFacts, ImmutabilitySetting | None]:
        short = name.split("/", 1)[1]
        path = self._path("namespaces", self.ns, "repositories", short)
        public = any(fnmatch.fnmatchcase(name, p) for p in self.target.public_repositories)
        private = entry.get("is_private")
        anonymous = (not private) if isinstance(private, bool) else None
        source = f"GET {hub.base_url}{path}"
        try:
            detail, hub_tags = await asyncio.gather(hub.get(path), hub.pages(path + "/tags"))
            tags = await self._tags(oci, name, _pushed_at(hub_tags))
        except (HubError, OciError) as exc:
            error = self.redact(exc.detail)
            return name, RepositoryFacts(name, anonymous_pull=anonymous, declared_public=public, error=error), None
        finally:
            self._done += 1
            self.options.report("repositories", self._done, total)
        repo = RepositoryFacts(name, tags, anonymous_pull=anonymous, declared_public=public, source=source)
        return name, repo, _immutability(detail)

    async def _tags(self, oci: OciClient, repo: str, pushed: Mapping[str, datetime]) -> tuple[TagFacts, ...]:
        names = await oci.tags(repo)
        signature_tags = frozenset(t for t in names if is_artifact_tag(t))
        images = sorted(t for t in names if t not in signature_tags)
        return tuple(await asyncio.gather(*(self._tag(oci, repo, t, signature_tags, pushed) for t in images)))

    async def _tag(
        self, oci: OciClient, repo: str, tag: str, signature_tags: frozenset[str], pushed: Mapping[str, datetime]
    ) -> TagFacts:
        if not valid_tag(tag):
            return TagFacts(tag[:128], None, None, error="the registry listed a tag name the OCI spec does not allow")
        try:
            ref = await oci.head_manifest(repo, tag)
            sig_tag = ref.digest.replace(":", "-", 1) + ".sig"
            signatures = []
            if ref.digest.startswith("sha256:") and sig_tag in signature_tags:
                manifest = await oci.get_manifest(repo, sig_tag)
                signatures = await cosign_signatures(
                    oci, self.keys, repo=repo, digest=ref.digest, manifest=manifest, via="tag", reference=sig_tag,
                    docker_reference=f"index.docker.io/{repo}",
                )  # fmt: skip
        except OciError as exc:
            return TagFacts(tag, None, None, pushed_at=pushed.get(tag), error=self.redact(exc.detail))
        return TagFacts(tag, ref.digest, ref.media_type, pushed_at=pushed.get(tag), signatures=tuple(signatures))

    # ---- tokens, organization settings, audit log ---------------------------------

    async def _credentials(self, hub: HubClient) -> dict[str, Fact[Any]]:
        personal_path, org_path = "/v2/access-tokens", self._path("orgs", self.ns, "access-tokens")
        source = f"GET {hub.base_url}{personal_path}, GET {hub.base_url}{org_path}"
        found: list[CredentialFacts] = []
        for path, parse in ((personal_path, _personal_token), (org_path, _org_token)):
            try:
                found.extend(c for e in await hub.pages(path) if (c := parse(e)) is not None)
            except HubError as exc:
                if exc.status == 404 and path == org_path:
                    continue  # a personal namespace has no organization tokens
                denied = self._denied(exc, "the access token listing")
                return {CREDENTIALS: self.options.record(CREDENTIALS, denied)}
        return {CREDENTIALS: self.options.record(CREDENTIALS, Fact.ok(tuple(found), source))}

    async def _restriction(self, hub: HubClient) -> dict[str, Fact[Any]]:
        path = self._path("orgs", self.ns, "settings")
        try:
            body = await hub.get(path)
        except HubError as exc:
            if exc.status == 404:
                fact: Fact[Any] = Fact.unsupported(
                    "restricted images (Image Access Management) is an organization setting and this namespace is "
                    "a personal account: move the repositories to an organization",
                    exc.source,
                )
            else:
                fact = self._denied(exc, "the organization settings")
            return {SOURCE_RESTRICTION: self.options.record(SOURCE_RESTRICTION, fact)}
        settings = body.get("restricted_images") if isinstance(body, dict) else None
        settings = settings if isinstance(settings, dict) else {}
        facts = SourceRestrictionFacts(
            enabled=settings.get("enabled") is True,
            allow_official_images=settings.get("allow_official_images") is True,
            allow_verified_publishers=settings.get("allow_verified_publishers") is True,
            detail="restricted_images" if settings else "no restricted_images settings in the answer",
        )
        fact = Fact.ok(facts, f"GET {hub.base_url}{path}")
        return {SOURCE_RESTRICTION: self.options.record(SOURCE_RESTRICTION, fact)}

    async def _logging(self, hub: HubClient) -> dict[str, Fact[Any]]:
        path = self._path("auditlogs", self.ns)
        try:
            await hub.get(path, {"page_size": 1})
        except HubError as exc:
            if exc.status == 404:
                why = "no audit log for this namespace (a personal account, or a plan without one)"
                absent = LoggingFacts(False, None, why)
                return {LOGGING: self.options.record(LOGGING, Fact.ok(absent, exc.source))}
            return {LOGGING: self.options.record(LOGGING, self._denied(exc, "the audit log"))}
        facts = LoggingFacts(
            True,
            f"Docker Hub audit log of {self.ns}",
            "records pushes, deletions, settings and member changes (not pulls); "
            "export it to keep it beyond the plan's window",
        )
        return {LOGGING: self.options.record(LOGGING, Fact.ok(facts, f"GET {hub.base_url}{path}"))}


# --------------------------------------------------------------------------
# Reading Hub answers (untrusted: anything unexpected becomes "not known")
# --------------------------------------------------------------------------


def _refused(name: str, source: str) -> RepositoryFacts:
    """A listed name that is no `namespace/repository` the OCI spec allows: never requested."""
    detail = f"the API listed a repository name that is not allowed ('{shown_name(name)}'); it was not requested"
    return RepositoryFacts(shown_name(name), error=detail, source=source)


def _pushed_at(tags: list[dict[str, Any]]) -> dict[str, datetime]:
    pushed = ((t.get("name"), parse_time(t.get("tag_last_pushed"))) for t in tags)
    return {name: at for name, at in pushed if isinstance(name, str) and at is not None}


def _immutability(detail: Any) -> ImmutabilitySetting | None:
    """`immutable_tags_settings` as a setting; None when the answer has none."""
    settings = detail.get("immutable_tags_settings") if isinstance(detail, dict) else None
    if not isinstance(settings, dict) or not isinstance(settings.get("enabled"), bool):
        return None
    rules = settings.get("rules")
    listed = rules if isinstance(rules, list) else []
    patterns = tuple(r for r in listed if isinstance(r, str) and 0 < len(r) <= MAX_IMMUTABLE_PATTERN)
    enabled = settings["enabled"]
    shown = f", rules {list(patterns)}" if patterns else ""
    return ImmutabilitySetting(
        immutable=enabled,
        immutable_patterns=patterns if enabled else (),
        detail=f"immutable_tags_settings enabled={str(enabled).lower()}{shown}",
    )


def _personal_token(entry: Mapping[str, Any]) -> CredentialFacts | None:
    if entry.get("is_active") is False:
        return None  # a deactivated token authenticates nothing
    scopes = [s for s in entry.get("scopes") or () if isinstance(s, str)]
    label, uuid = entry.get("token_label"), entry.get("uuid")
    return CredentialFacts(
        id=f"personal access token {label!r} ({uuid})" if isinstance(label, str) else f"personal access token {uuid}",
        kind="token",
        created_at=parse_time(entry.get("created_at")),
        expires_at=parse_time(entry.get("expires_at")),
        can_push=bool(PUSH_SCOPES & set(scopes)),
        detail=f"scopes: {', '.join(scopes) or 'none listed'}",
        last_used_at=parse_time(entry.get("last_used")),
        usage_tracked=True,
    )


def _org_token(entry: Mapping[str, Any]) -> CredentialFacts | None:
    if entry.get("is_active") is False:
        return None
    label, token_id = entry.get("label"), entry.get("id")
    return CredentialFacts(
        id=f"organization access token {label!r} ({token_id})" if isinstance(label, str) else f"org token {token_id}",
        kind="token",
        created_at=parse_time(entry.get("created_at")),
        expires_at=parse_time(entry.get("expires_at")),
        detail=f"created by {entry.get('created_by')}" if isinstance(entry.get("created_by"), str) else "",
        last_used_at=parse_time(entry.get("last_used_at")),
        usage_tracked=True,
        shared=True,
    )
