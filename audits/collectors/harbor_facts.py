"""Harbor's answers as regguard facts: pure functions, no I/O.

The harbor collector fetches (`harbor_api`); this module normalizes what it
fetched into the shared fact shapes so the rules judge Harbor like any other
registry. Why some mappings are not one-to-one:

* **Immutable-tag rules** name what *is* immutable (`tags matching v*` in
  repositories matching `**`), the opposite of ECR's exclusion filters. So for
  each repository the collector evaluates the enabled rules (Harbor's
  doublestar patterns, `{a,b}` alternatives) against sample release tags and
  the repository's own release tags; the ones no rule covers are reported as
  `exclusion_filters` (literal tags), which RG-TAG-002 already fails on.
* **Retention** counts only a policy that runs: a retention policy without a
  schedule deletes nothing, so its repositories are uncovered.
* **Local accounts** (`auth_mode` db_auth) are the "shared account" mechanism
  `local-accounts`, judged in production unless the target declares them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import product

from audits.collectors.harbor_api import (
    AuditLog,
    Configurations,
    Project,
    ReplicationPolicy,
    RetentionPolicy,
    Robot,
    Scanner,
    ScanSummary,
    Selector,
    SystemInfo,
    TagRule,
)
from audits.model import (
    AdminAccountFacts,
    ContentTrustFacts,
    CredentialFacts,
    ImmutabilitySetting,
    LoggingFacts,
    PullCountFacts,
    ReplicationFacts,
    ScanningFacts,
    VulnerabilityScan,
)
from audits.vocabulary import SAMPLE_RELEASE_TAGS, matches_release_tag

MAX_PATTERN = 256
MAX_ALTERNATIVES = 64
LOCAL_AUTH = "db_auth"


# --------------------------------------------------------------------------
# Harbor's doublestar patterns
# --------------------------------------------------------------------------


def doublestar_match(pattern: str, name: str) -> bool:
    """Harbor's selector pattern: `**` any run, `*` any run without `/`, `?`
    one character, `{a,b}` alternatives. Matched by dynamic programming (time
    linear in pattern x name, no regex backtracking on a hostile pattern); an
    over-long pattern, or one with too many alternatives, matches nothing."""
    if len(pattern) > MAX_PATTERN:
        return False
    alternatives = _expand_braces(pattern)
    return any(_glob(alt, name) for alt in alternatives)


def _expand_braces(pattern: str) -> list[str]:
    parts: list[list[str]] = []
    rest = pattern
    while "{" in rest:
        before, _, after = rest.partition("{")
        inside, closed, rest = after.partition("}")
        if not closed:
            return [pattern]
        parts.extend([[before], inside.split(",")])
    parts.append([rest])
    count = 1
    for options in parts:
        count *= len(options)
    if count > MAX_ALTERNATIVES:
        return []
    return ["".join(choice) for choice in product(*parts)]


def _glob(pattern: str, name: str) -> bool:
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            tokens.append("**")
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    size = len(name)
    reach = [True] + [False] * size  # reach[j]: the tokens so far match name[:j]
    for token in tokens:
        nxt = [False] * (size + 1)
        if token in ("*", "**"):
            for j in range(size + 1):
                nxt[j] = reach[j] or (j > 0 and nxt[j - 1] and _star_eats(token, name[j - 1]))
        else:
            for j in range(size):
                if reach[j] and token in ("?", name[j]):
                    nxt[j + 1] = True
        reach = nxt
    return reach[size]


def _star_eats(token: str, ch: str) -> bool:
    return token == "**" or ch != "/"


def _selected(selectors: Sequence[Selector] | None, name: str, matches: str, excludes: str) -> bool:
    for sel in selectors or ():
        pattern = sel.pattern or ""
        if sel.decoration == matches and not doublestar_match(pattern, name):
            return False
        if sel.decoration == excludes and doublestar_match(pattern, name):
            return False
    return True


def rule_applies(rule: TagRule, repository: str) -> bool:
    """`repository` is the name below the project (`api`, not `prod/api`)."""
    scope = (rule.scope_selectors or {}).get("repository")
    return not rule.disabled and _selected(scope, repository, "repoMatches", "repoExcludes")


def rule_covers_tag(rule: TagRule, tag: str) -> bool:
    return _selected(rule.tag_selectors, tag, "matches", "excludes")


def describe_rule(rule: TagRule) -> str:
    tags = ", ".join(f"{s.decoration} {s.pattern}" for s in rule.tag_selectors or ()) or "all tags"
    repos = ", ".join(f"{s.decoration} {s.pattern}" for s in (rule.scope_selectors or {}).get("repository", ()))
    return f"tags {tags} (repositories {repos or 'all'})"


# --------------------------------------------------------------------------
# Per repository
# --------------------------------------------------------------------------


def immutability(rules: Sequence[TagRule], repository: str, own_tags: Iterable[str]) -> ImmutabilitySetting:
    """What the project's immutable-tag rules make of one repository's release tags."""
    applying = [r for r in rules if rule_applies(r, repository)]
    if not applying:
        return ImmutabilitySetting(False, detail="no enabled immutable tag rule covers this repository")
    candidates = [*SAMPLE_RELEASE_TAGS, *(t for t in own_tags if _looks_released(t))]
    mutable = sorted({t for t in candidates if not any(rule_covers_tag(r, t) for r in applying)})
    detail = "harbor immutable rules: " + "; ".join(describe_rule(r) for r in applying)
    return ImmutabilitySetting(True, exclusion_filters=tuple(mutable), detail=detail)


def _looks_released(tag: str) -> bool:
    return "*" not in tag and (matches_release_tag(tag) or tag.startswith("release-"))


def retention_summary(policy: RetentionPolicy | None, repository: str) -> str | None:
    """A one-line summary of the retention that runs on `repository`, or None
    when no scheduled, enabled retention rule covers it."""
    if policy is None:
        return None
    cron = str((policy.trigger.settings or {}).get("cron") or "") if policy.trigger else ""
    rules = [r for r in policy.rules or () if rule_applies(r, repository)]
    if not cron or not rules:
        return None
    kept = "; ".join(" ".join(filter(None, (r.template or "rule", str(r.params) if r.params else ""))) for r in rules)
    return f"{kept}, schedule {cron}"


_SCAN_STATUS = {"success": "complete", "error": "failed", "stopped": "failed"}


def vulnerability_scan(overview: Mapping[str, ScanSummary] | None) -> VulnerabilityScan:
    """Harbor's scan overview (one report per MIME type) as a scan result."""
    report = next(iter(overview.values()), None) if overview else None
    if report is None:
        return VulnerabilityScan("none")
    status = _SCAN_STATUS.get((report.scan_status or "").lower(), "pending")
    counts = report.summary.summary if report.summary and report.summary.summary else {}
    lowered = {name.lower(): n for name, n in counts.items()}
    return VulnerabilityScan(status, lowered, report.end_time)


# --------------------------------------------------------------------------
# Registry-wide
# --------------------------------------------------------------------------


def scanning(
    projects: Sequence[Project], repositories: Mapping[str, Sequence[str]], scanners: Sequence[Scanner] | None
) -> ScanningFacts:
    """Scan on push per project; `scanners` None when they could not be listed."""
    manual = [p for p in projects if not p.metadata.flag("auto_scan")]
    uncovered = tuple(sorted(r for p in manual for r in repositories.get(p.name, ())))
    default = next((s for s in scanners or () if s.is_default and not s.disabled), None)
    installed = None if scanners is None else default is not None and (default.health or "").lower() == "healthy"
    blocking = [f"{p.name}: {p.metadata.severity}" for p in projects if p.metadata.flag("prevent_vul")]
    detail = f"scan on push off in: {', '.join(p.name for p in manual)}" if manual else "scan on push in every project"
    if blocking:
        detail += f"; deployment blocked at: {', '.join(blocking)}"
    expired = _expired_allowlists(projects)
    if expired:
        detail += f"; CVE allowlist expired in: {', '.join(expired)}"
    if scanners is None:
        detail += "; scanners not listed (grant scanner:list to see the default scanner)"
    enabled = len(manual) < len(projects)
    return ScanningFacts(
        enabled=enabled,
        mode="scan_on_push" if enabled else None,
        scanner=default.name if default else None,
        scanner_installed=installed,
        uncovered_repositories=uncovered,
        detail=detail,
    )


def _expired_allowlists(projects: Sequence[Project], now: datetime | None = None) -> list[str]:
    """Projects whose own CVE allowlist (with entries) has passed its expiry."""
    moment = (now or datetime.now(UTC)).timestamp()
    return [
        p.name
        for p in projects
        if p.cve_allowlist is not None and p.cve_allowlist.items
        and (p.cve_allowlist.expires_at or 0) > 0 and (p.cve_allowlist.expires_at or 0) < moment
    ]


def content_trust(projects: Sequence[Project]) -> ContentTrustFacts:
    """Enforced when every audited project refuses unsigned pulls (cosign or Notation)."""
    cosign = [p.name for p in projects if p.metadata.flag("enable_content_trust_cosign")]
    notation = [p.name for p in projects if p.metadata.flag("enable_content_trust")]
    missing = [p.name for p in projects if p.name not in cosign and p.name not in notation]
    mechanism = "cosign" if cosign else ("notation" if notation else None)
    detail = f"not enforced in: {', '.join(missing)}" if missing else "enforced in every audited project"
    return ContentTrustFacts(enforced=bool(projects) and not missing, mechanism=mechanism, detail=detail)


def logging(config: Configurations) -> LoggingFacts:
    endpoint = config.audit_log_forward_endpoint.value if config.audit_log_forward_endpoint else None
    skip_db = bool(config.skip_audit_log_database and config.skip_audit_log_database.value)
    if not endpoint:
        return LoggingFacts(False, None, "audit logs stay in Harbor's database (audit_log_forward_endpoint is empty)")
    where = "forwarded only (skip_audit_log_database)" if skip_db else "forwarded and kept in the database"
    return LoggingFacts(True, endpoint, where)


def admin_account(info: SystemInfo, declared: bool, default_password: bool | None) -> AdminAccountFacts:
    """Local database accounts (db_auth) are the shared-account mechanism
    `local-accounts`; with `declared` they are intended."""
    mode = info.auth_mode or "unknown"
    notes = [f"auth_mode {mode}"]
    if info.self_registration:
        notes.append("self-registration on")
    if default_password is None:
        notes.append("default admin password not probed (probe_default_password is off)")
    local = mode == LOCAL_AUTH and not declared
    if mode == LOCAL_AUTH and declared:
        notes.append("local accounts declared intended (db_auth_declared)")
    return AdminAccountFacts(
        shared_admin_enabled=local or bool(info.self_registration),
        default_password=bool(default_password),
        detail=", ".join(notes),
        mechanism="local-accounts",
    )


def replication(policies: Sequence[ReplicationPolicy]) -> ReplicationFacts:
    active = [p for p in policies if p.enabled and p.dest_registry is not None]
    destinations = tuple(sorted({_destination(p) for p in active}))
    detail = f"{len(active)} enabled push replication polic{'y' if len(active) == 1 else 'ies'}"
    return ReplicationFacts(bool(active), destinations, detail if active else "(no enabled replication policy)")


def _destination(policy: ReplicationPolicy) -> str:
    dest = policy.dest_registry
    return (dest.name or dest.url or policy.name) if dest else policy.name


def credentials(robots: Sequence[Robot], robot_token_days: int | None) -> tuple[CredentialFacts, ...]:
    default = f"; system robot_token_duration {robot_token_days} days" if robot_token_days is not None else ""
    return tuple(_robot(r, default) for r in robots if not r.disable)


def _robot(robot: Robot, default: str) -> CredentialFacts:
    never = robot.duration == -1 or robot.expires_at in (None, -1)
    expires = None if never else datetime.fromtimestamp(robot.expires_at or 0, UTC)
    pushes = sorted(
        {
            p.namespace or "?"
            for p in robot.permissions or ()
            for a in p.access or ()
            if a.action == "push" and a.resource == "repository" and a.effect != "deny"
        }
    )
    detail = f"level {robot.level or '?'}" + (f", pushes to {', '.join(pushes)}" if pushes else "") + default
    return CredentialFacts(
        id=f"robot {robot.name}",
        kind="robot",
        created_at=robot.creation_time,
        expires_at=expires,
        can_push=bool(pushes),
        detail=detail,
    )


def pull_counts(logs: Iterable[AuditLog], selected: Iterable[str]) -> PullCountFacts:
    """Pulls per repository per UTC day; `resource` is `project/repo:tag` or `@digest`."""
    wanted = set(selected)
    daily: dict[str, dict[str, int]] = defaultdict(dict)
    for log in logs:
        if (log.operation or "").lower() != "pull" or log.op_time is None or not log.resource:
            continue
        repo = log.resource.split("@", 1)[0].split(":", 1)[0]
        if repo not in wanted:
            continue
        day = log.op_time.astimezone(UTC).date().isoformat()
        daily[repo][day] = daily[repo].get(day, 0) + 1
    return PullCountFacts({repo: dict(days) for repo, days in daily.items()})
