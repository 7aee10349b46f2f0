"""Collect facts about one Google Cloud project's Artifact Registry (GAR) with
google-cloud-artifact-registry over its REST transport and Application Default
Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's ADC, or the metadata server).

What is read (every call counted into `TargetFacts.requests`):

* once: `projects.getProjectSettings` (gcr.io `legacyRedirectionState`), and
  `projects.locations.list` when `locations: [all]`;
* per location: `repositories.list` (1000 per page): format, mode,
  `dockerConfig.immutableTags`, `cleanupPolicies` + `cleanupPolicyDryRun`,
  `kmsKeyName`, `vulnerabilityScanningConfig.enablementState` and a remote
  repository's upstream credential all come from here, at no cost per repository;
* per Docker repository, in a bounded thread pool: `repositories.getIamPolicy`
  (public members `allUsers` / `allAuthenticatedUsers`) and
  `repositories.dockerImages.list` (1000 per page: digests, tags, `uploadTime`) —
  two calls for a repository with up to 1000 images;
* Cloud Resource Manager v1 `projects.getIamPolicy` (its `auditConfigs`: Data
  Access audit logs). No Resource Manager SDK is installed, so this one call goes
  through google-auth's `AuthorizedSession` to the documented REST path
  `POST v1/projects/{project}:getIamPolicy`.

Repositories in the facts are Docker image paths below the registry host
(`<location>/<repository>/<image>`, e.g. `europe-west1/release/api`); a GAR
repository's settings apply to each of its images, and an empty repository is
listed as `<location>/<repository>`.

Signatures: GAR has no OCI referrers API; cosign keeps signatures as
`sha256-<hex>.sig` tags, which `dockerImages.list` already shows, so finding them
costs no request; with trusted keys they are verified through the Docker
endpoint's OCI API (`gar_signatures`). Where tags are immutable the `.sig` tag
cannot be rewritten, which RG-SIGN-001 says in its finding
(`RepositoryFacts.signature_tags_immutable`).

Failures: a 429 is retried after its `Retry-After` (at most `MAX_RETRY_AFTER_S`,
`MAX_ATTEMPTS` tries); a listing is cut with an error after `MAX_PAGES` pages or a
repeated page token; a 403 on IAM policies makes the affected facts
`not_observable` naming the permission (→ `manual`), never a crash; any other
failure is an `error` on the repository or fact it hit. Things GAR does not have
or that Google runs: ADMIN_ACCOUNT ok (no admin user, access is IAM),
CONTENT_TRUST unsupported (Binary Authorization enforces at deploy, not push),
PULL_COUNTS unsupported, NETWORK_EXPOSURE and the endpoint facts managed
(Google's HTTPS endpoint; VPC Service Controls are not inspected).
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Generic, TypeVar

import google.auth
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import artifactregistry_v1 as ar
from google.cloud.location import locations_pb2

from audits.collectors.base import CollectOptions, RequestCounter
from audits.collectors.gar_facts import (
    GAR_FACTS,
    LEGACY_REDIRECTION,
    ImageListing,
    RepositoryRecord,
    credential_facts,
    encryption_facts,
    immutability_facts,
    logging_facts,
    refused_record,
    replication_facts,
    repository_facts,
    retention_facts,
    scanning_facts,
    short_name,
    static_facts,
)
from audits.collectors.gar_signatures import verify_signatures
from audits.model import (
    ANONYMOUS_ACCESS,
    CREDENTIALS,
    ENCRYPTION,
    LOGGING,
    REPLICATION,
    REPOSITORIES,
    RETENTION,
    SCANNING,
    TAG_IMMUTABILITY,
    Fact,
    TargetFacts,
    utcnow,
)
from audits.targets import GarTarget

T = TypeVar("T")

KIND = "gar"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
RESOURCE_MANAGER = "https://cloudresourcemanager.googleapis.com"
PAGE_SIZE = 1000
MAX_PAGES = 100
"""100 pages of 1000: more repositories than any project holds; a listing still
going then has a page token that never ends."""
MAX_ATTEMPTS = 3
MAX_RETRY_AFTER_S = 10.0
"""A Retry-After above this is waited for only this long: the target's deadline
bounds the whole collection, one quota hiccup must not eat it."""
IAM_PERMISSION = "artifactregistry.repositories.getIamPolicy (roles/artifactregistry.reader does not grant it; " \
    "roles/iam.securityReviewer does)"
PROJECT_POLICY_PERMISSION = "resourcemanager.projects.getIamPolicy (roles/iam.securityReviewer)"

ALL_FACTS = GAR_FACTS
IMAGES_SOURCE = "artifactregistry:dockerImages.list"


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def collect(target: GarTarget, options: CollectOptions) -> TargetFacts:
    """Every GAR fact for `target`; never raises for Google/network errors."""
    started = utcnow()
    counter = RequestCounter()
    try:
        api = GarApi.open(target, options, counter)
        facts = _Collection(target, options, api).run()
    except _Unavailable as exc:
        facts = _all_errors(exc.detail, exc.source)
    except Exception as exc:  # a collector bug must become error facts, never a crash or a pass
        facts = _all_errors(f"GAR collector failed: {type(exc).__name__}: {str(exc)[:200]}", "artifactregistry")
    return TargetFacts(
        target=target.name, kind=KIND, facts=facts, started_at=started, finished_at=utcnow(), requests=counter.total
    )


def _all_errors(detail: str, source: str) -> dict[str, Fact[Any]]:
    error: Fact[Any] = Fact.error(detail, source=source)
    return {name: error for name in ALL_FACTS}


class _Unavailable(Exception):
    def __init__(self, detail: str, source: str) -> None:
        super().__init__(detail)
        self.detail, self.source = detail, source


# --------------------------------------------------------------------------
# Calls: outcomes instead of exceptions, 429 honoured, pages bounded
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome(Generic[T]):
    value: T | None = None
    error: str | None = None
    status: int | None = None

    @property
    def forbidden(self) -> bool:
        return self.status == 403


class GarApi:
    """The SDK clients of one collection (one per worker thread: a requests
    session per thread instead of one pool shared by 16 threads) over shared
    credentials, every call counted and retried only on 429."""

    def __init__(self, target: GarTarget, options: CollectOptions, counter: RequestCounter, credentials: Any) -> None:
        self.target, self.options, self.counter = target, options, counter
        self.credentials = credentials
        self._local = threading.local()

    @classmethod
    def open(cls, target: GarTarget, options: CollectOptions, counter: RequestCounter) -> GarApi:
        """ADC credentials with a token fetched now, so a missing or refused
        credential is one clear error instead of one per call."""
        try:
            credentials, _ = google.auth.default(scopes=SCOPES)
        except auth_exceptions.DefaultCredentialsError as exc:
            raise _Unavailable(f"no Application Default Credentials: {str(exc)[:300]}", "google.auth.default") from None
        counter.add("oauth2:token")
        try:
            credentials.refresh(Request())  # type: ignore[no-untyped-call]
        except (auth_exceptions.GoogleAuthError, requests.RequestException) as exc:
            uri = getattr(credentials, "_token_uri", "the token endpoint")
            raise _Unavailable(f"cannot get an access token from {uri}: {str(exc)[:300]}", "oauth2:token") from None
        return cls(target, options, counter, credentials)

    @property
    def client(self) -> ar.ArtifactRegistryClient:
        client: ar.ArtifactRegistryClient | None = getattr(self._local, "client", None)
        if client is None:
            endpoint = self.target.endpoint_url
            client_options = ClientOptions(api_endpoint=endpoint.rstrip("/")) if endpoint else None
            client = ar.ArtifactRegistryClient(
                credentials=self.credentials, transport="rest", client_options=client_options
            )
            self._local.client = client
        return client

    def call(self, name: str, send: Callable[[], T]) -> Outcome[T]:
        """One API call; a 429 waits its Retry-After (capped) and tries again."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self.counter.add(name)
            try:
                return Outcome(value=send())
            except api_exceptions.TooManyRequests as exc:
                if attempt == MAX_ATTEMPTS:
                    return Outcome(error=f"HTTP 429 after {MAX_ATTEMPTS} attempts: {_message(exc)}", status=429)
                time.sleep(_retry_after(exc))
            except api_exceptions.GoogleAPICallError as exc:
                status = int(exc.code) if isinstance(exc.code, int) else None
                return Outcome(error=f"HTTP {status}: {_message(exc)}", status=status)
            except (auth_exceptions.GoogleAuthError, requests.RequestException) as exc:
                return Outcome(error=f"{type(exc).__name__}: {str(exc)[:300]}")
            except ValueError as exc:  # the SDK refuses to build the request (a name of the wrong shape)
                return Outcome(error=f"request not sent: {str(exc)[:300]}")
        raise AssertionError("unreachable")

    def pages(self, name: str, first: Callable[[str], Any], entries: Callable[[Any], Iterable[T]]) -> Outcome[list[T]]:
        """Every entry of a listing, one counted call per page; a token seen
        before, or more than MAX_PAGES pages, ends it with an error."""
        out: list[T] = []
        token, seen = "", set[str]()
        for _ in range(MAX_PAGES):
            page = self.call(name, partial(first, token))
            if page.value is None:
                return Outcome(error=page.error, status=page.status)
            out.extend(entries(page.value))
            token = str(page.value.next_page_token or "")
            if not token:
                return Outcome(value=out)
            if token in seen:
                return Outcome(error=f"{name}: the page token repeated; listing cut after {len(seen) + 1} pages")
            seen.add(token)
        return Outcome(error=f"{name}: listing did not end after {MAX_PAGES} pages ({len(out)} entries); cut")

    # ---- the calls ---------------------------------------------------------------

    def timeout(self) -> float:
        return min(self.target.timeout, self.options.timeout) if self.options.timeout else self.target.timeout

    def list_locations(self) -> Outcome[list[str]]:
        request = locations_pb2.ListLocationsRequest(name=f"projects/{self.target.project}")
        found = self.call("locations.list", lambda: self.client.list_locations(request=request, timeout=self.timeout()))
        if found.value is None:
            return Outcome(error=found.error, status=found.status)
        return Outcome(value=sorted(loc.location_id for loc in found.value.locations))

    def project_settings(self) -> Outcome[Any]:
        name = f"projects/{self.target.project}/projectSettings"
        return self.call(
            "projects.getProjectSettings",
            lambda: self.client.get_project_settings(name=name, retry=None, timeout=self.timeout()),
        )

    def repositories(self, location: str) -> Outcome[list[Any]]:
        parent = f"projects/{self.target.project}/locations/{location}"

        def page(token: str) -> Any:
            request = ar.ListRepositoriesRequest(parent=parent, page_size=PAGE_SIZE, page_token=token)
            pager = self.client.list_repositories(request=request, retry=None, timeout=self.timeout())
            return next(iter(pager.pages))  # the first page only: the next is our own counted call

        return self.pages("repositories.list", page, lambda p: p.repositories)

    def docker_images(self, repository: str) -> Outcome[list[Any]]:
        def page(token: str) -> Any:
            request = ar.ListDockerImagesRequest(parent=repository, page_size=PAGE_SIZE, page_token=token)
            pager = self.client.list_docker_images(request=request, retry=None, timeout=self.timeout())
            return next(iter(pager.pages))

        return self.pages("dockerImages.list", page, lambda p: p.docker_images)

    def iam_policy(self, repository: str) -> Outcome[Any]:
        return self.call(
            "repositories.getIamPolicy",
            lambda: self.client.get_iam_policy(request={"resource": repository}, retry=None, timeout=self.timeout()),
        )

    def project_iam_policy(self) -> Outcome[Mapping[str, Any]]:
        """Resource Manager has no SDK here: google-auth's AuthorizedSession on the
        documented REST path (same credentials, same counting)."""
        base = (self.target.resource_manager_url or RESOURCE_MANAGER).rstrip("/")
        url = f"{base}/v1/projects/{self.target.project}:getIamPolicy"

        def send() -> Any:
            with AuthorizedSession(self.credentials) as session:  # type: ignore[no-untyped-call]
                response = session.post(url, json={"options": {"requestedPolicyVersion": 3}}, timeout=self.timeout())
            if response.status_code != 200:
                raise api_exceptions.from_http_response(response)  # type: ignore[no-untyped-call]
            return response.json()

        policy = self.call("cloudresourcemanager.projects.getIamPolicy", send)  # a non-JSON body: RequestException
        if policy.value is None or isinstance(policy.value, dict):
            return policy
        return Outcome(error=f"{url} answered with no policy")


def _message(exc: api_exceptions.GoogleAPICallError) -> str:
    return str(exc.message or "")[:300]


def _retry_after(exc: api_exceptions.GoogleAPICallError) -> float:
    response = getattr(exc, "response", None)
    header = response.headers.get("Retry-After") if response is not None else None
    try:
        wait = float(header) if header is not None else 1.0
    except ValueError:
        wait = 1.0
    return min(max(wait, 0.0), MAX_RETRY_AFTER_S)


# --------------------------------------------------------------------------
# One collection
# --------------------------------------------------------------------------


class _Collection:
    def __init__(self, target: GarTarget, options: CollectOptions, api: GarApi) -> None:
        self.target, self.options, self.api = target, options, api

    def run(self) -> dict[str, Fact[Any]]:
        facts: dict[str, Fact[Any]] = dict(static_facts())
        self.options.record_all(facts)
        with ThreadPoolExecutor(max_workers=max(self.options.concurrency, 1)) as pool:
            settings_future = pool.submit(self.api.project_settings)
            logging_future = pool.submit(self._logging)
            listed = self._list_repositories(pool)
            if listed.value is None:
                error: Fact[Any] = Fact.error(listed.error or "no answer", source="artifactregistry:repositories.list")
                facts.update({name: error for name in _REPOSITORY_FACTS})
            else:
                facts.update(self._repository_facts(pool, listed.value))
            self.options.record_all(facts)
            facts[LEGACY_REDIRECTION] = self.options.record(LEGACY_REDIRECTION, _redirection(settings_future.result()))
            facts[LOGGING] = self.options.record(LOGGING, logging_future.result())
        return facts

    def _locations(self) -> Outcome[list[str]]:
        wanted = self.target.locations
        return self.api.list_locations() if "all" in wanted else Outcome(value=sorted(set(wanted)))

    def _list_repositories(self, pool: ThreadPoolExecutor) -> Outcome[list[Any]]:
        locations = self._locations()
        if locations.value is None:
            return Outcome(error=f"projects.locations.list: {locations.error}")
        out: list[Any] = []
        for location, listed in zip(locations.value, pool.map(self.api.repositories, locations.value), strict=True):
            if listed.value is None:
                return Outcome(error=f"repositories.list in {location}: {listed.error}")
            out.extend(listed.value)
        return Outcome(value=out)

    def _repository_facts(self, pool: ThreadPoolExecutor, repositories: Sequence[Any]) -> dict[str, Fact[Any]]:
        docker = [r for r in repositories if r.format_ == ar.Repository.Format.DOCKER]
        refused = [refused_record(str(r.name)) for r in docker if short_name(str(r.name)) is None]
        valid = [r for r in docker if short_name(str(r.name)) is not None and self._selected(r)]
        chosen = self.options.cap_repositories(valid, name=_short_name)
        self.options.report("gar repositories", 0, len(chosen))
        records: list[RepositoryRecord] = list(refused)
        for done, record in enumerate(pool.map(self._record, chosen), 1):
            records.append(record)
            self.options.report("gar repositories", done, len(chosen))
        forbidden = any(r.iam_forbidden for r in records)
        anonymous: Fact[Any] = (
            Fact.not_observable(f"grant {IAM_PERMISSION} to see this", source="artifactregistry:getIamPolicy")
            if forbidden
            else Fact.managed("Google-managed endpoint; public access is judged per repository from its IAM policy")
        )
        source, public = "artifactregistry:repositories.list", self.target.public_repositories
        return {
            REPOSITORIES: Fact.ok(self._verified(repository_facts(records, public)), source=IMAGES_SOURCE),
            TAG_IMMUTABILITY: Fact.ok(immutability_facts(records), source=source),
            RETENTION: Fact.ok(retention_facts(records), source=source),
            ENCRYPTION: Fact.ok(encryption_facts(records), source=source),
            SCANNING: Fact.ok(scanning_facts(records), source=source),
            REPLICATION: Fact.ok(replication_facts(records), source=source),
            CREDENTIALS: Fact.ok(credential_facts(records), source=source),
            ANONYMOUS_ACCESS: anonymous,
        }

    def _verified(self, repositories: tuple[Any, ...]) -> tuple[Any, ...]:
        token = getattr(self.api.credentials, "token", None)
        return verify_signatures(repositories, self.target, self.options, self.api.counter, token)

    def _record(self, repository: Any) -> RepositoryRecord:
        """The two calls of one repository, normalized."""
        policy = self.api.iam_policy(repository.name)
        images = self.api.docker_images(repository.name)
        members = None
        if policy.value is not None:
            members = tuple(m for b in policy.value.bindings for m in b.members)
        return RepositoryRecord(
            repository=_repository_settings(repository),
            images=ImageListing(
                tuple(_image(i) for i in images.value) if images.value is not None else None, images.error
            ),
            members=members,
            iam_error=None if policy.value is not None or policy.forbidden else policy.error,
            iam_forbidden=policy.forbidden,
        )

    def _selected(self, repository: Any) -> bool:
        patterns = self.target.repositories
        return not patterns or any(fnmatch.fnmatchcase(_short_name(repository), p) for p in patterns)

    def _logging(self) -> Fact[Any]:
        source = "cloudresourcemanager:projects.getIamPolicy"
        policy = self.api.project_iam_policy()
        if policy.forbidden:
            return Fact.not_observable(
                f"grant {PROJECT_POLICY_PERMISSION} to see the Data Access audit log config", source=source
            )
        if policy.value is None:
            return Fact.error(policy.error or "no answer", source=source)
        return Fact.ok(logging_facts(policy.value.get("auditConfigs")), source=source)


_REPOSITORY_FACTS = (
    REPOSITORIES, TAG_IMMUTABILITY, RETENTION, ENCRYPTION, SCANNING, REPLICATION, CREDENTIALS, ANONYMOUS_ACCESS,
)  # fmt: skip


def _short_name(repository: Any) -> str:
    """`projects/p/locations/l/repositories/r` -> `l/r` (names of other shapes were refused before)."""
    return short_name(str(repository.name)) or str(repository.name)


def _repository_settings(repository: Any) -> Mapping[str, Any]:
    """The proto-plus Repository as the plain fields the normalization reads."""
    remote = repository.remote_repository_config
    upstream = remote.upstream_credentials.username_password_credentials if remote else None
    return {
        "name": _short_name(repository),
        "resource": repository.name,
        "mode": ar.Repository.Mode(repository.mode).name,
        "immutable_tags": bool(repository.docker_config.immutable_tags),
        "cleanup_policies": {
            k: ar.CleanupPolicy.to_dict(v, use_integers_for_enums=False) for k, v in repository.cleanup_policies.items()
        },
        "cleanup_dry_run": bool(repository.cleanup_policy_dry_run),
        "kms_key_name": repository.kms_key_name or None,
        "scanning_state": ar.Repository.VulnerabilityScanningConfig.EnablementState(
            repository.vulnerability_scanning_config.enablement_state
        ).name,
        "upstream_username": upstream.username if upstream else "",
        "upstream_secret": upstream.password_secret_version if upstream else "",
    }


def _image(image: Any) -> Mapping[str, Any]:
    upload: datetime | None = image.upload_time if image.upload_time else None
    return {"uri": image.uri, "tags": tuple(image.tags), "media_type": image.media_type or None, "uploaded": upload}


def _redirection(outcome: Outcome[Any]) -> Fact[Any]:
    source = "artifactregistry:projects.getProjectSettings"
    if outcome.value is None:
        return Fact.error(outcome.error or "no answer", source=source)
    state = ar.ProjectSettings.RedirectionState(outcome.value.legacy_redirection_state).name
    return Fact.ok(state, source=source)
