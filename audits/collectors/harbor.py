"""Collector for Harbor: its API v2.0 (projects, rules, robots, scanners,
configuration, audit log) and its OCI endpoint (the shared `oci_probe` for
TLS and anonymous access, `OciClient` to verify cosign signatures).

`collect(target, options)` never judges; what it maps and why is in
`harbor_facts`. Choices a reader of the facts should know:

* **Requests.** System-wide calls once (systeminfo, configurations, scanners,
  robots, replication policies, pull audit logs, the project listing); per
  project its immutable-tag rules, its retention policy and its repositories;
  per repository one artifact listing (tags, scan overview and accessories in
  the same answer). Signature manifests are fetched from `/v2/` only when
  trusted keys are configured, one per cosign accessory.
* **Permissions.** A 403 means the auditor account lacks a permission: the
  facts behind that call are `not_observable` naming what to grant (rules
  say `manual`), not errors. A 401 is an error on everything (credentials).
* **One project failing** (a 500, a schema-invalid answer) makes that
  project one repository-level error; the other projects are still judged.
* **Unverified TLS.** Credentials are never sent to an endpoint whose
  certificate did not verify (as for Distribution).
* **The default-password probe** runs only with `probe_default_password:
  true`: one `GET /api/v2.0/users/current` as `admin` with the installer's
  default. The password is a constant of this module, goes only into that
  request's header and is redacted from every text that leaves.
* **Not observable through the API:** storage encryption and network exposure
  (they live in the VM and the cloud account).
"""

from __future__ import annotations

import asyncio
import fnmatch
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from audits.collectors import cosign, harbor_facts
from audits.collectors.base import CollectOptions, RequestCounter
from audits.collectors.harbor_api import (
    Accessory,
    Artifact,
    AuditLog,
    Configurations,
    CurrentUser,
    HarborApi,
    HarborError,
    Project,
    ReplicationPolicy,
    Repository,
    RetentionPolicy,
    Robot,
    Scanner,
    SystemInfo,
    TagRule,
    repository_path,
)
from audits.collectors.oci import (
    Credentials,
    OciClient,
    OciError,
    Redactor,
    counted_pool,
    shown_name,
    valid_digest,
    valid_repository,
    valid_tag,
)
from audits.collectors.oci_access import MissingCredential, credentials_from_env, tls_refusal
from audits.collectors.oci_probe import PROBED_FACTS, EndpointProbe, TlsProbe, probe_endpoint
from audits.collectors.oci_signatures import verify_cosign_layer
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
    TAG_IMMUTABILITY,
    Fact,
    RepositoryFacts,
    RetentionFacts,
    SignatureFacts,
    TagFacts,
    TagImmutabilityFacts,
    TargetFacts,
    utcnow,
)
from audits.targets import HarborTarget

KIND = "harbor"
DEFAULT_ADMIN = "admin"
INSTALLER_DEFAULT_PASSWORD = "Harbor12345"  # harbor.yml.tmpl `harbor_admin_password`; the probe's only use
PULL_LOG_DAYS = 7
ARTIFACT_QUERY = {"with_tag": "true", "with_scan_overview": "true", "with_accessory": "true"}

API_FACTS = (
    REPOSITORIES, TAG_IMMUTABILITY, SCANNING, CONTENT_TRUST, RETENTION, LOGGING, REPLICATION,
    CREDENTIALS, ADMIN_ACCOUNT, PULL_COUNTS,
)  # fmt: skip
ALL_FACTS = (*PROBED_FACTS, *API_FACTS, ENCRYPTION, NETWORK_EXPOSURE)

# What a read-only auditor needs for each call (README: least-privilege account).
GRANTS = {
    "configurations": "grant the auditor robot the system permission configuration:read (or the admin role)",
    "robots": "grant the auditor robot the system permission robot:list",
    "replication": "grant the auditor robot the system permission replication-policy:list",
    "audit-logs": "grant the auditor robot the system permission audit-log:list",
    "scanners": "grant the auditor robot the system permission scanner:list",
}

T = TypeVar("T")


def collect(
    target: HarborTarget,
    options: CollectOptions,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    tls_probe: TlsProbe = probe_tls,
    counter: RequestCounter | None = None,
) -> TargetFacts:
    """Observe one Harbor. Never raises; `transport`/`tls_probe` replace the
    network in unit tests, `counter` lets the bench read requests per call."""
    started = utcnow()
    counter = counter if counter is not None else RequestCounter()
    try:
        facts = asyncio.run(_Collection(target, options, counter, transport, tls_probe).run())
    except Exception as exc:  # the seam promises facts, never an exception
        detail = f"internal error in the harbor collector: {exc.__class__.__name__}"
        facts = {name: Fact.error(detail, target.url) for name in ALL_FACTS}
    return TargetFacts(target.name, KIND, facts, started, utcnow(), requests=counter.total)


def _static_facts() -> dict[str, Fact[Any]]:
    return {
        ENCRYPTION: Fact.not_observable(
            "Harbor's API does not show storage encryption: check the data volume and the object-storage "
            "backend in harbor.yml use a customer-managed key"
        ),
        NETWORK_EXPOSURE: Fact.not_observable(
            "Harbor's API does not show network exposure: check the VM's security group / firewall admits "
            "only the configured CIDRs"
        ),
    }


class _Collection:
    """State of one `collect` call."""

    def __init__(
        self,
        target: HarborTarget,
        options: CollectOptions,
        counter: RequestCounter,
        transport: httpx.AsyncBaseTransport | None,
        tls_probe: TlsProbe,
    ) -> None:
        self.target = target
        self.options = options
        self.counter = counter
        self._transport = transport
        self._tls_probe = tls_probe
        self.redact = Redactor([INSTALLER_DEFAULT_PASSWORD])
        self.keys = cosign.load_keys(options.trusted_keys)
        self.semaphore = asyncio.Semaphore(max(1, options.concurrency))
        self._done = 0

    async def run(self) -> dict[str, Fact[Any]]:
        facts = _static_facts()
        self.options.record_all(facts)
        probe = await probe_endpoint(
            self.target.url,
            ca_file=self.target.ca_file,
            timeout=self.target.timeout,
            counter=self.counter,
            semaphore=self.semaphore,
            transport=self._transport,
            tls_probe=self._tls_probe,
            allowed_token_realms=self.target.allowed_token_realms,
            publish=self.options.record,
        )
        self.options.record_all(probe.facts(Fact.error("repository listing did not finish", "")))
        api_facts = await self._api_facts(probe)
        facts.update(api_facts)
        facts.update(probe.facts(api_facts[REPOSITORIES]))
        self.options.record_all(facts)
        return facts

    async def _api_facts(self, probe: EndpointProbe) -> dict[str, Fact[Any]]:
        source = f"GET {probe.endpoint.url}/api/v2.0"
        refused = tls_refusal(probe.endpoint, probe.tls)
        try:
            credentials = credentials_from_env(self.target.username_env, self.target.password_env, self.redact)
            verify = self._verify_context()
        except (MissingCredential, _Refused) as exc:
            refused = str(exc)
        if refused is not None:
            return {name: Fact.error(refused, source) for name in API_FACTS}
        pool = counted_pool(
            self.semaphore, timeout=self.target.timeout, verify=verify, counter=self.counter, transport=self._transport
        )
        async with pool:
            api = HarborApi(
                probe.endpoint.url, pool, credentials=credentials, timeout=self.target.timeout, redactor=self.redact
            )
            oci = OciClient(
                probe.endpoint.url,
                pool,
                credentials=credentials,
                challenge=probe.challenge,
                timeout=self.target.timeout,
                redactor=self.redact,
                allowed_realms=self.target.allowed_token_realms,
            )
            return await _Api(self, api, oci, probe.endpoint.netloc).facts()

    def _verify_context(self) -> ssl.SSLContext:
        """One context for every connection: loading a trust store per client costs more than a request."""
        if self.target.ca_file is None:
            return ssl.create_default_context()
        try:
            return ssl.create_default_context(cafile=str(self.target.ca_file))
        except (OSError, ssl.SSLError):
            raise _Refused(f"cannot load CA file {self.target.ca_file}") from None

    def project_wanted(self, name: str) -> bool:
        patterns = self.target.projects
        return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def repository_wanted(self, name: str) -> bool:
        patterns = self.target.repositories
        return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def declared_public(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.target.public_repositories)

    def repository_done(self, total: int) -> None:
        self._done += 1
        self.options.report("repositories", self._done, total)


class _Refused(Exception):
    pass


async def _attempt(call: Awaitable[T]) -> T | HarborError:
    try:
        return await call
    except HarborError as exc:
        return exc


def _unavailable(error: HarborError, grant: str | None) -> Fact[Any]:
    """A 403 is a permission the auditor lacks (manual); anything else an error."""
    if error.forbidden and grant:
        return Fact.not_observable(f"{grant} ({error.detail})", error.source)
    return Fact.error(error.detail, error.source)


class _Project:
    """What was read for one project: its rules, retention and repositories."""

    def __init__(self, project: Project, rules: Sequence[TagRule], retention: RetentionPolicy | None) -> None:
        self.project = project
        self.rules = rules
        self.retention = retention
        self.repositories: list[RepositoryFacts] = []


class _Api:
    """The API half of one collection: system calls, then projects."""

    def __init__(self, run: _Collection, api: HarborApi, oci: OciClient, netloc: str) -> None:
        self.run = run
        self.api = api
        self.oci = oci
        self.netloc = netloc
        self.errors: list[RepositoryFacts] = []

    async def facts(self) -> dict[str, Fact[Any]]:
        # The system calls in two gathers (typed up to six awaitables each) and the project listing, all at once.
        settings = asyncio.gather(
            _attempt(self.api.get("/systeminfo", SystemInfo)),
            _attempt(self.api.get("/configurations", Configurations)),
            _attempt(self._default_password()),
        )
        listings = asyncio.gather(
            _attempt(self.api.listing("/scanners", Scanner)),
            _attempt(self.api.listing("/robots", Robot)),
            _attempt(self.api.listing("/replication/policies", ReplicationPolicy)),
            _attempt(self._pull_logs()),
        )
        project_listing = asyncio.ensure_future(_attempt(self.api.listing("/projects", Project)))
        (info, config, default_password), (scanners, robots, replication, logs) = await asyncio.gather(
            settings, listings
        )
        system = {
            LOGGING: self._from(config, "configurations", harbor_facts.logging),
            ADMIN_ACCOUNT: self._admin(info, default_password),
            REPLICATION: self._from(replication, "replication", harbor_facts.replication, "/replication/policies"),
            CREDENTIALS: self._credentials(robots, config),
        }
        self.run.options.record_all(system)  # known now: a deadline during the projects keeps them
        projects = await project_listing
        if isinstance(projects, HarborError):
            listed: dict[str, Fact[Any]] = {name: _unavailable(projects, None) for name in _PROJECT_FACTS}
        else:
            listed = await self._project_facts([p for p in projects if self.run.project_wanted(p.name)], scanners)
        repositories = listed.get(REPOSITORIES)
        names = [r.name for r in repositories.value] if repositories is not None and repositories.value else []
        pulls = self._from(logs, "audit-logs", lambda x: harbor_facts.pull_counts(x, names), "/audit-logs")
        return {**listed, **system, PULL_COUNTS: pulls}

    def _from(self, value: T | HarborError, grant: str, make: Callable[[T], Any], path: str = "") -> Fact[Any]:
        if isinstance(value, HarborError):
            return _unavailable(value, GRANTS.get(grant))
        return Fact.ok(make(value), self.api.source(path or f"/{grant}"))

    def _admin(self, info: SystemInfo | HarborError, probed: bool | None | HarborError) -> Fact[Any]:
        if isinstance(info, HarborError):
            return _unavailable(info, None)
        if isinstance(probed, HarborError):
            return Fact.error(f"default-password probe failed: {probed.detail}", probed.source)
        facts = harbor_facts.admin_account(info, self.run.target.db_auth_declared, probed)
        return Fact.ok(facts, self.api.source("/systeminfo"))

    def _credentials(self, robots: list[Robot] | HarborError, config: Configurations | HarborError) -> Fact[Any]:
        days = None
        if not isinstance(config, HarborError) and config.robot_token_duration is not None:
            days = config.robot_token_duration.value
        return self._from(robots, "robots", lambda r: harbor_facts.credentials(r, days))

    async def _default_password(self) -> bool | None:
        """Opt-in only: does `admin` still accept the installer's default password?"""
        if not self.run.target.probe_default_password:
            return None
        creds = Credentials(DEFAULT_ADMIN, INSTALLER_DEFAULT_PASSWORD)
        try:
            await self.api.get_with("/users/current", CurrentUser, creds)
        except HarborError as exc:
            if exc.status == 401:
                return False
            raise
        return True

    async def _pull_logs(self) -> list[AuditLog]:
        since = (utcnow() - timedelta(days=PULL_LOG_DAYS)).strftime("%Y-%m-%d %H:%M:%S")
        until = utcnow().strftime("%Y-%m-%d %H:%M:%S")
        query = f"operation=pull,op_time=[{since}~{until}]"
        return await self.api.listing("/audit-logs", AuditLog, {"q": query})

    # ---- projects -----------------------------------------------------------

    async def _project_facts(
        self, projects: list[Project], scanners: list[Scanner] | HarborError
    ) -> dict[str, Fact[Any]]:
        read = await asyncio.gather(*(self._project(p) for p in projects))
        good = [r for r in read if r is not None]
        names = [(r, repo) for r in good for repo in r.repositories]
        selected = self.run.options.cap_repositories([repo.name for _, repo in names])
        total = len(selected)
        keep = set(selected)
        repos = await asyncio.gather(*(self._repository(r, repo, total) for r, repo in names if repo.name in keep))
        by_project: dict[str, list[str]] = {}
        for r in good:
            by_project[r.project.name] = [repo.name for repo in r.repositories if repo.name in keep]
        source = self.api.source("/projects")
        known = [r.project for r in good]
        scanner_list = None if isinstance(scanners, HarborError) else scanners
        if isinstance(scanners, HarborError) and not scanners.forbidden:
            scanning: Fact[Any] = _unavailable(scanners, None)
        else:
            scanning = Fact.ok(harbor_facts.scanning(known, by_project, scanner_list), source)
        all_repos = (*repos, *self.errors)
        return {
            REPOSITORIES: Fact.ok(all_repos, source),
            TAG_IMMUTABILITY: Fact.ok(self._immutability(good, all_repos), source),
            RETENTION: Fact.ok(self._retention(good, keep), source),
            SCANNING: scanning,
            CONTENT_TRUST: Fact.ok(harbor_facts.content_trust([p for p in known if not p.proxy_cache]), source),
        }

    async def _project(self, project: Project) -> _Project | None:
        """A project's rules, retention and repository names; on failure one
        repository-level error named after the project (others carry on)."""
        name = project.name
        try:
            rules, retention, listed = await asyncio.gather(
                self.api.listing(f"/projects/{project.project_id}/immutabletagrules", TagRule),
                self._retention_policy(project),
                self.api.listing(f"/projects/{_quoted(name)}/repositories", Repository),
            )
        except HarborError as exc:
            self.errors.append(RepositoryFacts(shown_name(name), error=exc.detail, source=exc.source))
            return None
        read = _Project(project, rules, retention)
        for repo in listed:
            if not self.run.repository_wanted(repo.name):
                continue
            if not valid_repository(repo.name) or not repo.name.startswith(name + "/"):
                detail = f"Harbor listed repository '{shown_name(repo.name)}', which is no valid name in {name}"
                self.errors.append(RepositoryFacts(shown_name(repo.name), error=detail, source=self.api.source("")))
                continue
            read.repositories.append(RepositoryFacts(repo.name))
        return read

    async def _retention_policy(self, project: Project) -> RetentionPolicy | None:
        rid = project.metadata.retention_id
        if not rid or not rid.isdigit():
            return None
        return await self.api.get(f"/retentions/{rid}", RetentionPolicy)

    async def _repository(self, read: _Project, repo: RepositoryFacts, total: int) -> RepositoryFacts:
        path = repository_path(read.project.name, repo.name) + "/artifacts"
        public = read.project.metadata.flag("public")
        base = RepositoryFacts(
            repo.name, anonymous_pull=public, declared_public=self.run.declared_public(repo.name),
            source=self.api.source(path),
        )  # fmt: skip
        try:
            artifacts = await self.api.listing(path, Artifact, dict(ARTIFACT_QUERY))
            tags, untagged = await self._tags(repo.name, artifacts)
        except HarborError as exc:
            return _with(base, error=exc.detail)
        finally:
            self.run.repository_done(total)
        return _with(base, tags=tags, untagged_digests=untagged)

    async def _tags(self, repo: str, artifacts: list[Artifact]) -> tuple[tuple[TagFacts, ...], int]:
        tags: list[TagFacts] = []
        untagged = 0
        for artifact in artifacts:
            if not artifact.tags:
                untagged += 1
                continue
            signatures = await self._signatures(repo, artifact)
            scan = harbor_facts.vulnerability_scan(artifact.scan_overview)
            for tag in artifact.tags:
                if not valid_tag(tag.name):
                    tags.append(TagFacts(shown_name(tag.name, 128), None, None, error="tag name the OCI spec forbids"))
                    continue
                pushed = tag.push_time or artifact.push_time
                tags.append(
                    TagFacts(tag.name, artifact.digest, artifact.manifest_media_type, pushed, signatures, scan)
                )
        return tuple(tags), untagged

    # ---- signatures ---------------------------------------------------------

    async def _signatures(self, repo: str, artifact: Artifact) -> tuple[SignatureFacts, ...]:
        found: list[SignatureFacts] = []
        for accessory in artifact.accessories or ():
            if accessory.type == "signature.notation":
                found.append(SignatureFacts("notation", "accessory", accessory.digest, None, None,
                                            "notation signatures are not verified"))  # fmt: skip
            elif accessory.type == "signature.cosign":
                found.extend(await self._cosign(repo, artifact.digest, accessory))
        return tuple(found)

    async def _cosign(self, repo: str, digest: str, accessory: Accessory) -> list[SignatureFacts]:
        ref = accessory.digest
        if not valid_digest(ref) or not valid_digest(digest):
            return [SignatureFacts("cosign", "accessory", shown_name(ref, 80), False, None, "invalid digest")]
        if not self.run.keys.configured:
            return [SignatureFacts("cosign", "accessory", ref, None, None, "no trusted key configured")]
        try:
            manifest = await self.oci.get_manifest(repo, ref)
            checks = [
                await verify_cosign_layer(self.oci, self.run.keys, repo, digest, layer, f"{self.netloc}/{repo}")
                for layer in cosign.signature_layers(manifest)
            ]
        except OciError as exc:
            return [SignatureFacts("cosign", "accessory", ref, False, None, self.run.redact(exc.detail))]
        return [SignatureFacts("cosign", "accessory", ref, c.verified, c.verified_by, c.error) for c in checks]

    # ---- per-repository settings -------------------------------------------

    def _immutability(self, read: list[_Project], repos: Sequence[RepositoryFacts]) -> TagImmutabilityFacts:
        tags = {r.name: [t.name for t in r.tags] for r in repos}
        settings = {
            repo.name: harbor_facts.immutability(
                r.rules, repo.name.removeprefix(r.project.name + "/"), tags.get(repo.name, ())
            )
            for r in read
            for repo in r.repositories
            if repo.name in tags
        }
        return TagImmutabilityFacts(settings)

    def _retention(self, read: list[_Project], keep: set[str]) -> RetentionFacts:
        covered: dict[str, str] = {}
        uncovered: list[str] = []
        for r in read:
            for repo in r.repositories:
                if repo.name not in keep:
                    continue
                summary = harbor_facts.retention_summary(r.retention, repo.name.removeprefix(r.project.name + "/"))
                if summary is None:
                    uncovered.append(repo.name)
                else:
                    covered[repo.name] = summary
        return RetentionFacts(None, covered, tuple(sorted(uncovered)))


_PROJECT_FACTS = (REPOSITORIES, TAG_IMMUTABILITY, RETENTION, SCANNING, CONTENT_TRUST)


def _quoted(name: str) -> str:
    return quote(name, safe="")


def _with(repo: RepositoryFacts, **changes: Any) -> RepositoryFacts:
    return replace(repo, **changes)
