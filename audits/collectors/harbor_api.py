"""Harbor API v2.0, read only: bounded, paginated, counted requests and the
shapes of the answers the harbor collector reads.

Every answer is untrusted. Bodies are read through the shared bounded pool
(`oci.HttpPool`: a total deadline per request, a body cap), listings stop at a
page cap and an entry cap, and each body is parsed into a pydantic model that
ignores fields it does not need but refuses a wrong type where the collector
relies on one: a schema-invalid answer is a `HarborError` on that call (its
fact, or its project, becomes an error), never a guess. Error texts name the
call, the status and the field location only; values the server sent are not
repeated.

Pagination: Harbor pages with `page`/`page_size` and announces more with
`X-Total-Count` and `Link: <...>; rel="next"`. The next page is requested
while either says there is more (or, when the server sends neither, while a
page comes back full).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audits.collectors.oci import (
    KIB,
    MIB,
    BodyCap,
    Credentials,
    HttpPool,
    OciError,
    Redactor,
    describe_transport_error,
    parse_link_next,
)

API_PREFIX = "/api/v2.0"
PAGE_SIZE = 100
MAX_PAGES = 1_000
MAX_ENTRIES = 100_000
OBJECT_CAP = BodyCap(4 * MIB, "a Harbor API answer")
PAGE_CAP = BodyCap(8 * MIB, "a Harbor API page")
ERROR_CAP = BodyCap(64 * KIB, "an error answer")

M = TypeVar("M", bound=BaseModel)


class HarborError(Exception):
    """A call whose answer could not be used; `detail` is safe to show."""

    def __init__(self, detail: str, source: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.source = source
        self.status = status

    @property
    def forbidden(self) -> bool:
        return self.status == 403


# --------------------------------------------------------------------------
# Shapes (the subset of swagger.yaml definitions the collector reads)
# --------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class _Timed(_Model):
    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        return _aware(value) if isinstance(value, datetime) else value


class ProjectMetadata(_Model):
    public: str | None = None
    enable_content_trust: str | None = None
    enable_content_trust_cosign: str | None = None
    prevent_vul: str | None = None
    severity: str | None = None
    auto_scan: str | None = None
    reuse_sys_cve_allowlist: str | None = None
    retention_id: str | None = None

    def flag(self, name: str) -> bool:
        return str(getattr(self, name) or "").lower() == "true"


class CveAllowlist(_Model):
    expires_at: int | None = None  # epoch seconds; 0 or None: never expires
    items: list[dict[str, Any]] | None = None


class Project(_Model):
    project_id: int
    name: str
    registry_id: int | None = None
    metadata: ProjectMetadata = Field(default_factory=ProjectMetadata)
    cve_allowlist: CveAllowlist | None = None

    @property
    def proxy_cache(self) -> bool:
        """A proxy-cache project mirrors another registry (Harbor sets `registry_id`)."""
        return bool(self.registry_id)


class Repository(_Model):
    name: str


class Tag(_Timed):
    name: str
    push_time: datetime | None = None


class Accessory(_Model):
    digest: str
    type: str


class VulnerabilitySummary(_Model):
    summary: dict[str, int] | None = None


class ScanSummary(_Timed):
    scan_status: str | None = None
    summary: VulnerabilitySummary | None = None
    end_time: datetime | None = None


class Artifact(_Timed):
    digest: str
    manifest_media_type: str | None = None
    push_time: datetime | None = None
    tags: list[Tag] | None = None
    scan_overview: dict[str, ScanSummary] | None = None
    accessories: list[Accessory] | None = None


class Selector(_Model):
    kind: str | None = None
    decoration: str | None = None
    pattern: str | None = None


class TagRule(_Model):
    """An immutable-tag rule or a retention rule: which repositories, which tags."""

    disabled: bool = False
    template: str | None = None
    params: dict[str, Any] | None = None
    tag_selectors: list[Selector] | None = None
    scope_selectors: dict[str, list[Selector]] | None = None


class RetentionTrigger(_Model):
    kind: str | None = None
    settings: dict[str, Any] | None = None


class RetentionPolicy(_Model):
    rules: list[TagRule] | None = None
    trigger: RetentionTrigger | None = None


class Access(_Model):
    resource: str | None = None
    action: str | None = None
    effect: str | None = None


class RobotPermission(_Model):
    kind: str | None = None
    namespace: str | None = None
    access: list[Access] | None = None


class Robot(_Timed):
    id: int
    name: str
    level: str | None = None
    duration: int | None = None
    expires_at: int | None = None
    disable: bool | None = None
    permissions: list[RobotPermission] | None = None
    creation_time: datetime | None = None


class Scanner(_Model):
    name: str
    is_default: bool | None = None
    disabled: bool | None = None
    health: str | None = None


class _StringItem(_Model):
    value: str | None = None


class _BoolItem(_Model):
    value: bool | None = None


class _IntItem(_Model):
    value: int | None = None


class Configurations(_Model):
    auth_mode: _StringItem | None = None
    self_registration: _BoolItem | None = None
    audit_log_forward_endpoint: _StringItem | None = None
    skip_audit_log_database: _BoolItem | None = None
    read_only: _BoolItem | None = None
    robot_token_duration: _IntItem | None = None


class CurrentUser(_Model):
    username: str | None = None


class SystemInfo(_Model):
    auth_mode: str | None = None
    self_registration: bool | None = None
    read_only: bool | None = None
    harbor_version: str | None = None


class RegistryRef(_Model):
    name: str | None = None
    url: str | None = None


class ReplicationPolicy(_Model):
    name: str
    enabled: bool | None = None
    dest_registry: RegistryRef | None = None


class AuditLog(_Timed):
    resource: str | None = None
    resource_type: str | None = None
    operation: str | None = None
    op_time: datetime | None = None


# --------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------


def repository_path(project: str, repository: str) -> str:
    """`/projects/{p}/repositories/{r}` with the repository name below the
    project encoded twice, as Harbor's API asks (`a/b` -> `a%252Fb`)."""
    below = repository.removeprefix(project + "/")
    return f"/projects/{quote(project, safe='')}/repositories/{quote(quote(below, safe=''), safe='')}"


class HarborApi:
    """Basic-authenticated GETs under `{base}/api/v2.0`, through the shared pool."""

    def __init__(
        self,
        base_url: str,
        pool: HttpPool,
        *,
        credentials: Credentials | None,
        timeout: float,
        redactor: Redactor,
    ) -> None:
        self.base = base_url.rstrip("/") + API_PREFIX
        self._pool = pool
        self._creds = credentials
        self._timeout = timeout
        self.redact = redactor

    def source(self, path: str) -> str:
        return f"GET {self.base}{path}"

    async def get(self, path: str, model: type[M], params: dict[str, str | int] | None = None) -> M:
        body, _ = await self._get_json(path, params or {}, OBJECT_CAP)
        return self._parse(model, body, path)

    async def get_with(
        self, path: str, model: type[M], credentials: Credentials, params: dict[str, str | int] | None = None
    ) -> M:
        """One GET as another identity (the opt-in default-password probe)."""
        body, _ = await self._get_json(path, params or {}, OBJECT_CAP, credentials)
        return self._parse(model, body, path)

    async def listing(self, path: str, model: type[M], params: dict[str, str | int] | None = None) -> list[M]:
        """Every entry of a paginated listing, bounded by MAX_PAGES and MAX_ENTRIES."""
        entries: list[M] = []
        for page in range(1, MAX_PAGES + 1):
            query = {**(params or {}), "page": page, "page_size": PAGE_SIZE}
            body, response = await self._get_json(path, query, PAGE_CAP)
            if not isinstance(body, list):
                raise HarborError(f"unexpected answer from GET {API_PREFIX}{path}: not a list", self.source(path))
            entries.extend(self._parse(model, item, path) for item in body)
            if len(entries) > MAX_ENTRIES:
                raise HarborError(f"listing cut at {MAX_ENTRIES:,} entries (the entry cap)", self.source(path))
            if not _more(response, len(body), len(entries)):
                return entries
        raise HarborError(f"listing cut after {MAX_PAGES:,} pages (the page cap)", self.source(path))

    async def _get_json(
        self, path: str, params: dict[str, str | int], cap: BodyCap, credentials: Credentials | None = None
    ) -> tuple[Any, httpx.Response]:
        source = self.source(path)
        creds = credentials or self._creds
        headers = {"Accept": "application/json"}
        if creds is not None:
            headers["Authorization"] = creds.basic_header()
        query: list[tuple[str, str | int | float | bool | None]] = list(params.items())
        try:
            response = await self._pool.request(
                "GET", self.base + path, cap=cap, deadline=self._timeout, headers=headers, params=query
            )
        except OciError as exc:
            raise HarborError(self.redact(exc.detail), source) from None
        except httpx.HTTPError as exc:
            raise HarborError(self.redact(describe_transport_error(exc, self._timeout)), source) from None
        if response.status_code != 200:
            raise HarborError(_status_detail(response.status_code, path, creds), source, response.status_code)
        try:
            return json.loads(response.content), response
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise HarborError(f"invalid JSON from GET {API_PREFIX}{path}", source) from None

    def _parse(self, model: type[M], body: Any, path: str) -> M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(body)"
            detail = f"unexpected answer from GET {API_PREFIX}{path}: {where}: {first['type']}"
            raise HarborError(detail, self.source(path)) from None


def _more(response: httpx.Response, on_page: int, collected: int) -> bool:
    link = response.headers.get("link")
    if link and parse_link_next(link) is not None:
        return on_page > 0
    total = response.headers.get("x-total-count", "")
    if total.isdigit():
        return collected < int(total) and on_page > 0
    return on_page >= PAGE_SIZE


def _status_detail(status: int, path: str, creds: Credentials | None) -> str:
    where = f"GET {API_PREFIX}{path}"
    if status == 401:
        return f"HTTP 401 from {where} ({'credentials rejected' if creds else 'authentication required'})"
    if status == 403:
        return f"HTTP 403 from {where} (the auditor account lacks the permission)"
    if status == 404:
        return f"HTTP 404 from {where} (not found)"
    return f"HTTP {status} from {where}"
