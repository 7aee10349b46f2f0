"""Facts (what a collector observed) and findings (what a rule concluded).

The two halves never mix: collectors build `TargetFacts`, rules read them and
return `Verdict`s, the engine turns verdicts into `Finding`s with the rule's
metadata. Everything here is a frozen dataclass so a fact cannot be edited on
its way from the collector to the report.

A fact is always wrapped in `Fact`, which says *how* it was observed: `ok`
(value present), `error` (collection failed: its rules become `error`, never
`pass`), `unsupported` (the registry kind has no such feature: its rules fail
with "not supported by <kind>" when required), `managed` (the provider runs
it and it was deliberately not probed) or `not_observable` (cannot be seen
from where the collector stands, e.g. a self-hosted registry's config without
`config_file`: its rules become `manual` with what a person must check).
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def utcnow() -> datetime:
    """One clock for the whole package (tests monkeypatch nothing else)."""
    return datetime.now(UTC)


class Status(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"
    MANUAL = "manual"
    WAIVED = "waived"  # a failure accepted by a dated, approved waiver: never a pass


# Worst first: the order findings are listed and counted in everywhere.
STATUS_ORDER: tuple[Status, ...] = (
    Status.FAIL,
    Status.ERROR,
    Status.MANUAL,
    Status.WAIVED,
    Status.PASS,
    Status.NOT_APPLICABLE,
)


class Severity(str, enum.Enum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse; used by `--fail-on` and sorting."""
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.lower())
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r}; expected one of {allowed}") from None


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class FactState(str, enum.Enum):
    OK = "ok"
    ERROR = "error"
    UNSUPPORTED = "unsupported"
    MANAGED = "managed"
    NOT_OBSERVABLE = "not_observable"


@dataclass(frozen=True)
class Fact(Generic[T]):
    """One observation with its provenance.

    `source` names the endpoint or API call (`GET https://h:5000/v2/`,
    `ecr:DescribeRepositories`) so every finding can say where its evidence
    came from. `detail` explains an unsupported/managed/error state.
    """

    state: FactState
    value: T | None
    source: str
    observed_at: datetime
    detail: str | None = None

    @classmethod
    def ok(cls, value: T, source: str, at: datetime | None = None) -> Fact[T]:
        return cls(FactState.OK, value, source, at or utcnow())

    @classmethod
    def error(cls, detail: str, source: str, at: datetime | None = None) -> Fact[T]:
        return cls(FactState.ERROR, None, source, at or utcnow(), detail)

    @classmethod
    def unsupported(cls, detail: str, source: str = "", at: datetime | None = None) -> Fact[T]:
        return cls(FactState.UNSUPPORTED, None, source, at or utcnow(), detail)

    @classmethod
    def managed(cls, detail: str, source: str = "", at: datetime | None = None) -> Fact[T]:
        return cls(FactState.MANAGED, None, source, at or utcnow(), detail)

    @classmethod
    def not_observable(cls, detail: str, source: str = "", at: datetime | None = None) -> Fact[T]:
        return cls(FactState.NOT_OBSERVABLE, None, source, at or utcnow(), detail)


# --------------------------------------------------------------------------
# Endpoint facts: TLS, plain HTTP, anonymous access (RG-TLS-*, RG-AUTH-001/2)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFacts:
    """What one TLS handshake to the registry endpoint showed.

    `verified` is the chain check against the configured CA (or the system
    store); `hostname_matches` is checked separately so a report can say which
    of the two failed.
    """

    host: str
    port: int
    protocol: str | None  # "TLSv1.3"; None when no handshake completed
    cipher: str | None
    verified: bool
    verify_error: str | None
    hostname_matches: bool | None
    trust_source: str  # "system" or the CA file path
    subject: str | None = None
    issuer: str | None = None
    not_after: datetime | None = None
    days_remaining: float | None = None
    self_signed: bool | None = None


@dataclass(frozen=True)
class PlainHttpFacts:
    """How the registry answers `/v2/` over plain HTTP on the same host:port
    (or on the http URL of the target when the target itself is http).

    `serves_api` is true only when the plain-HTTP answer is the registry API
    itself (200/401 from `/v2/`, usually with `Docker-Distribution-API-Version`),
    not a "client sent an HTTP request to an HTTPS server" 400 or a refusal."""

    url: str
    serves_api: bool
    status: int | None
    redirects_to_https: bool
    challenge_schemes: tuple[str, ...] = ()  # WWW-Authenticate schemes seen, lower case


@dataclass(frozen=True)
class AuthChallenge:
    scheme: str  # "basic" / "bearer" / "" (no header)
    realm: str | None = None
    service: str | None = None


@dataclass(frozen=True)
class AnonymousAccessFacts:
    """Answers to unauthenticated requests (RG-AUTH-001)."""

    v2_status: int | None
    catalog_status: int | None
    challenge: AuthChallenge | None
    anonymously_pullable: tuple[str, ...] = ()  # repositories pulled without credentials


@dataclass(frozen=True)
class TokenRealmFacts:
    """Where the registry's Bearer challenge sends clients for a token
    (RG-AUTH-002): clients send their password there. `origin` is the realm
    URL's scheme://host:port, None when the registry sent no Bearer challenge."""

    origin: str | None
    same_origin: bool = False  # the registry's own scheme, host and port
    plain_http: bool = False
    allowed: bool = False  # listed in the target's allowed_token_realms


@dataclass(frozen=True)
class EndpointFacts:
    url: str
    scheme: str  # "https" or "http"


# --------------------------------------------------------------------------
# Repository content: tags, digests, signatures, scans
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureFacts:
    """One signature artifact found for a manifest digest."""

    format: str  # "cosign" or "notation"
    discovered_via: str  # "referrers" or "tag"
    reference: str  # digest or tag of the signature artifact
    verified: bool | None = None  # None: no trusted key configured / not attempted
    verified_by: str | None = None  # key file that verified it
    verify_error: str | None = None


@dataclass(frozen=True)
class VulnerabilityScan:
    status: str  # "complete", "pending", "failed", "none", "unsupported"
    severity_counts: Mapping[str, int] = field(default_factory=dict)  # lower-case severity -> n
    completed_at: datetime | None = None


@dataclass(frozen=True)
class TagFacts:
    name: str
    digest: str | None
    media_type: str | None
    pushed_at: datetime | None = None
    signatures: tuple[SignatureFacts, ...] | None = None  # None: not looked up
    scan: VulnerabilityScan | None = None
    error: str | None = None  # per-tag collection error


@dataclass(frozen=True)
class RepositoryFacts:
    name: str
    tags: tuple[TagFacts, ...] = ()
    untagged_digests: int = 0
    anonymous_pull: bool | None = None  # None: not determined
    declared_public: bool = False  # the config says this repository is meant to be public
    error: str | None = None  # repository-level collection error
    source: str = ""
    # Immutable tags: a cosign `.sig` tag, once written, cannot be rewritten to add
    # another signature (GAR keeps cosign signatures as tags; it has no referrers API).
    signature_tags_immutable: bool = False
    linked_repository: str | None = None  # source repository a package is linked to (GHCR); None: not linked / n.a.


# --------------------------------------------------------------------------
# Registry capabilities: one fact each, per-repository detail inside
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImmutabilitySetting:
    immutable: bool
    exclusion_filters: tuple[str, ...] = ()  # ECR IMMUTABLE_WITH_EXCLUSION wildcard filters
    detail: str = ""  # e.g. "IMMUTABLE_WITH_EXCLUSION", "harbor rule repos=** tags=v*"
    # Regular expressions (matched whole) naming the only tags that are immutable
    # (Docker Hub `immutable_tags_settings.rules`); empty: every tag is.
    immutable_patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class TagImmutabilityFacts:
    by_repository: Mapping[str, ImmutabilitySetting]


@dataclass(frozen=True)
class ScanningFacts:
    """`scanner_installed` is None where the kind's scanner is part of the
    service (ECR, GAR); False where scanning can be switched on with no
    scanner behind it (a Harbor without Trivy)."""

    enabled: bool
    mode: str | None  # "scan_on_push", "continuous", "manual", None
    scanner: str | None = None
    scanner_installed: bool | None = None
    uncovered_repositories: tuple[str, ...] = ()  # repositories no scanning rule covers
    detail: str = ""
    # Where per-image results live when the collector does not read them (GAR: Artifact
    # Analysis); empty when results are read into `TagFacts.scan`.
    results_elsewhere: str = ""


@dataclass(frozen=True)
class RetentionFacts:
    """Retention per repository; `registry_wide` covers everything (e.g.
    Distribution garbage collection timer, Harbor project retention)."""

    registry_wide: str | None
    by_repository: Mapping[str, str]  # repo -> policy summary
    uncovered_repositories: tuple[str, ...] = ()
    dry_run: bool = False
    dry_run_repositories: tuple[str, ...] = ()  # per-repository dry run (GAR cleanupPolicyDryRun)


@dataclass(frozen=True)
class LoggingFacts:
    enabled: bool
    destination: str | None
    detail: str = ""


@dataclass(frozen=True)
class EncryptionSetting:
    customer_managed: bool
    key_id: str | None = None
    detail: str = ""  # e.g. "AES256", "KMS aws/ecr"


@dataclass(frozen=True)
class EncryptionFacts:
    by_repository: Mapping[str, EncryptionSetting]
    registry_wide: EncryptionSetting | None = None


@dataclass(frozen=True)
class NetworkExposureFacts:
    publicly_reachable: bool
    detail: str


@dataclass(frozen=True)
class ReplicationFacts:
    enabled: bool
    destinations: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class CredentialFacts:
    """A registry credential: a token, robot account, access key, htpasswd user."""

    id: str  # never the secret itself
    kind: str  # "iam-access-key", "robot", "token", "htpasswd-user", "admin-user"
    created_at: datetime | None
    expires_at: datetime | None = None
    can_push: bool = False
    shared: bool = False
    detail: str = ""
    last_used_at: datetime | None = None  # None: never used, or the kind does not say (see usage_tracked)
    usage_tracked: bool = False  # the registry records when the credential was last used


@dataclass(frozen=True)
class AdminAccountFacts:
    """`mechanism` says what the shared account is: a registry's built-in
    admin user (`admin-user`), one account in an htpasswd file (`htpasswd`) or
    Harbor's local database accounts (`local-accounts`, auth_mode db_auth); the
    last two RULES.md judges only in production."""

    shared_admin_enabled: bool
    default_password: bool = False
    detail: str = ""
    mechanism: str = "admin-user"


@dataclass(frozen=True)
class ContentTrustFacts:
    enforced: bool
    mechanism: str | None  # "cosign", "notation", "dct" (deprecated), None
    detail: str = ""


@dataclass(frozen=True)
class PullCountFacts:
    """Pulls per repository per UTC day as the registry reports them."""

    daily: Mapping[str, Mapping[str, int]]  # repo -> {"2026-11-27": n}
    # The registry reports a running total (Docker Hub `pull_count`), not the day's
    # pulls: `daily` holds the total seen on each day and the day's pulls are the
    # difference from the day before (audit history supplies the earlier totals).
    cumulative: bool = False


@dataclass(frozen=True)
class SourceRestrictionFacts:
    """Which public images members of an organization may pull (Docker Hub
    Image Access Management, `restricted_images`), RG-SRC-001 on the registry side."""

    enabled: bool
    allow_official_images: bool
    allow_verified_publishers: bool
    detail: str = ""


# --------------------------------------------------------------------------
# Client side: docker config and image references
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerClientConfigFacts:
    path: str
    plaintext_registries: tuple[str, ...]  # registries with inline auth/password
    creds_store: str | None
    cred_helpers: Mapping[str, str]


@dataclass(frozen=True)
class ImageReference:
    """One image reference parsed exactly as the Docker reference grammar says.

    A reference that does not parse (bad syntax, or a `${VAR}` with no value
    in the file) is kept with `error` set and `registry`/`repository` empty,
    so a rule reports it as `error` at its file:line instead of it vanishing.
    """

    raw: str
    file: str
    line: int
    registry: str  # "docker.io" when implicit; "" when error is set
    repository: str  # full path below the registry, e.g. "library/nginx"; "" when error is set
    tag: str | None
    digest: str | None
    explicit_scheme: str | None = None  # "http" / "https" if the text had one
    context: str = ""  # "dockerfile", "kubernetes", "compose", "pulumi"
    error: str | None = None  # why `raw` is not a usable reference


@dataclass(frozen=True)
class ImageReferencesFacts:
    references: tuple[ImageReference, ...]
    files_scanned: int
    unreadable: tuple[str, ...] = ()  # "path: reason" for candidate files that could not be read/parsed


# --------------------------------------------------------------------------
# The facts of one target, and findings
# --------------------------------------------------------------------------

# Fact names: rules and collectors use these constants, never bare strings.
ENDPOINT = "endpoint"
TLS = "tls"
PLAIN_HTTP = "plain_http"
ANONYMOUS_ACCESS = "anonymous_access"
TOKEN_REALM_ORIGIN = "token_realm_origin"
REPOSITORIES = "repositories"
TAG_IMMUTABILITY = "tag_immutability"
SCANNING = "scanning"
RETENTION = "retention"
LOGGING = "logging"
ENCRYPTION = "encryption"
NETWORK_EXPOSURE = "network_exposure"
REPLICATION = "replication"
CREDENTIALS = "credentials"
ADMIN_ACCOUNT = "admin_account"
CONTENT_TRUST = "content_trust"
PULL_COUNTS = "pull_counts"
SOURCE_RESTRICTION = "source_restriction"
DOCKER_CONFIG = "docker_config"
IMAGE_REFERENCES = "image_references"


SCOPE_SEPARATOR = "/"
"""Joins a target's name and a scope's parts: `org-ecr/123456789012/us-east-1`
(target names cannot contain it, so a scope never collides with a target)."""


def names_scope_of(name: str, target: str) -> bool:
    """What a waiver or a history filter naming `target` covers: that target,
    each of its scopes (`org-ecr` covers `org-ecr/123456789012/us-east-1`), or
    the scopes a glob picks (`org-ecr/*/eu-west-1`)."""
    if name == target or name.startswith(target + SCOPE_SEPARATOR):
        return True
    return SCOPE_SEPARATOR in target and fnmatch.fnmatchcase(name, target)


@dataclass(frozen=True)
class TargetFacts:
    """Everything collected for one target. A missing key means the collector
    never looked, which rules treat exactly like an error."""

    target: str
    kind: str
    facts: Mapping[str, Fact[Any]]
    started_at: datetime
    finished_at: datetime
    requests: int = 0  # API/HTTP requests the collector made (bench figures)


@dataclass(frozen=True)
class Verdict:
    """What a rule concluded about one resource, before metadata is attached."""

    status: Status
    resource: str
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    severity: Severity | None = None  # overrides the rule's default when set


@dataclass(frozen=True)
class Controls:
    soc2: tuple[str, ...]
    nist_800_53: tuple[str, ...]  # labels as the catalog writes them: "IA-5(1)"
    fedramp: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # level -> labels

    def as_dict(self) -> dict[str, Any]:
        return {
            "soc2": list(self.soc2),
            "nist_800_53": list(self.nist_800_53),
            "fedramp": {level: list(ids) for level, ids in self.fedramp.items()},
        }


@dataclass(frozen=True)
class Remediation:
    """How to fix a failure on one kind of target: by hand (`cli`) and, where
    regguard provisions that kind, with a regguard component argument
    (`component`, a Python expression such as
    `EcrRepositoryArgs(baseline=Baseline(immutable_tags=True))`; the catalog
    tests check that every class and argument it names exists)."""

    cli: str
    component: str | None = None

    def as_text(self) -> str:
        if self.component:
            return f"CLI: {self.cli} | regguard component: {self.component}"
        return f"CLI: {self.cli}"

    def as_dict(self) -> dict[str, str | None]:
        return {"cli": self.cli, "component": self.component}


@dataclass(frozen=True)
class WaiverNote:
    """Why a failure is reported as `waived`: the accepted risk, who accepted
    it and until when (ISO date). Auditors read all three."""

    reason: str
    approved_by: str
    expires: str

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "approved_by": self.approved_by, "expires": self.expires}


@dataclass(frozen=True)
class Finding:
    rule: str
    title: str
    status: Status
    severity: Severity
    target: str
    kind: str
    resource: str
    message: str
    controls: Controls
    evidence: Mapping[str, Any]
    remediation: Remediation | None = None  # for this finding's kind; only on failures
    waiver: WaiverNote | None = None  # set exactly when status is WAIVED

    @property
    def identity(self) -> tuple[str, str, str]:
        """(rule, target, resource): what history, diffs and waivers refer to."""
        return (self.rule, self.target, self.resource)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "title": self.title,
            "status": self.status.value,
            "severity": self.severity.value,
            "target": self.target,
            "kind": self.kind,
            "resource": self.resource,
            "message": self.message,
            "controls": self.controls.as_dict(),
            "evidence": dict(self.evidence),
            "remediation": self.remediation.as_dict() if self.remediation else None,
            "waiver": self.waiver.as_dict() if self.waiver else None,
        }


@dataclass(frozen=True)
class TargetSummary:
    name: str
    kind: str
    complete: bool  # every fact collected (no error facts, nothing left out)
    errors: tuple[str, ...] = ()
    requests: int = 0
    duration_s: float = 0.0
    warnings: tuple[str, ...] = ()  # worth a reader's attention without making the target incomplete


@dataclass(frozen=True)
class AuditResult:
    tool: str
    version: str
    started_at: datetime
    finished_at: datetime
    environment: str
    frameworks: tuple[str, ...]
    targets: tuple[TargetSummary, ...]
    findings: tuple[Finding, ...]
    run_id: str | None = None  # set once the run is stored in the history
    run_sha256: str | None = None  # the stored run's hash in the history chain
    since_last: RunDiff | None = None  # compared with the previous stored run, when there is one
    trend: tuple[TrendPoint, ...] = ()  # stored runs, oldest first, this one last

    def summary(self) -> dict[str, int]:
        return count_statuses(self.findings)

    @property
    def complete(self) -> bool:
        return all(t.complete for t in self.targets)


def count_statuses(findings: Iterable[Finding]) -> dict[str, int]:
    """status -> how many findings have it (every status present, worst first)."""
    counts = {s.value: 0 for s in STATUS_ORDER}
    for f in findings:
        counts[f.status.value] += 1
    return counts


def finding_sort_key(f: Finding) -> tuple[int, int, str, str, str, str]:
    """The one order of findings: failures first, then by severity (worst
    first), rule, target, resource, and message so the order is total."""
    return (STATUS_ORDER.index(f.status), -f.severity.rank, f.rule, f.target, f.resource, f.message)


@dataclass(frozen=True)
class FindingChange:
    """One finding identity compared across two runs (`before`/`after` is
    None when the finding did not exist in that run)."""

    rule: str
    target: str
    resource: str
    severity: str
    before: str | None
    after: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunDiff:
    """What changed from run `base` to run `head`: failures that are new,
    fixed or persisting, and every other change of status."""

    base: str
    head: str
    new_failures: tuple[FindingChange, ...] = ()
    fixed: tuple[FindingChange, ...] = ()
    persisting: tuple[FindingChange, ...] = ()
    changed: tuple[FindingChange, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            **{
                name: [c.as_dict() for c in getattr(self, name)]
                for name in ("new_failures", "fixed", "persisting", "changed")
            },
        }


@dataclass(frozen=True)
class TrendPoint:
    """Counts of one target in one stored run (the trend charts)."""

    run_id: str
    started_at: str
    target: str
    passed: int
    failed: int
