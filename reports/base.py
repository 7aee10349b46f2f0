"""The reporter seam and what every format shares.

A reporter turns one `AuditResult` into one text document; it never judges.
Each format is one module implementing `Reporter`, so a new format is one new
file plus one line in `reports/__init__.py`.

Every reporter reads findings through `prepare_findings`, which sorts them
deterministically and runs `redact` over evidence, messages and resource
names. Collectors and rules are already told never to record a secret; the
redaction here is a second, independent line of defence so a slip upstream
does not end up in an auditor's evidence folder.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from audits.controls import label_sort_key
from audits.model import AuditResult, Finding, FindingChange, RunDiff, Severity, Status, finding_sort_key
from audits.rules.registry import Rule

REDACTED = "***REDACTED***"

# The last word of a key that names a secret ("registry_password", "auth",
# "access-token"); "password_env" or "token_expires_at" are not secrets.
# "credential" is deliberately absent: the model guarantees a credential's
# `id` is never the secret, and rules report it as evidence.
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "token",
        "secret",
        "authorization",
        "auth",
        "apikey",
        "cookie",
    }
)
# "<word>_key" is a secret for these words ("secret_access_key", "api-key").
_SECRET_KEY_PREFIXES = frozenset({"api", "access", "private", "secret", "signing"})

# Anchored on "://" (a one-character lookbehind stands for the scheme): matching
# the scheme itself, `[A-Za-z][A-Za-z0-9+.-]*://`, retried from every letter of
# a long word, which made a 60 KB header value cost a second. From "://" every
# scan stops at the next "/", so the whole pass is linear.
_URL_USERINFO = re.compile(r"(?<=[A-Za-z0-9+.-])://(?P<user>[^/@\s:]*):[^/@\s]*@")
_AUTH_HEADER_VALUE = re.compile(
    r"\b(?P<scheme>Bearer|Basic)\s+[A-Za-z0-9._~+/-]{8,}=*(?![\w=.~+/-])", re.IGNORECASE
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

SEVERITY_ORDER: tuple[Severity, ...] = tuple(sorted(Severity, key=lambda s: -s.rank))


class Reporter(Protocol):
    """One output format: `render` returns the whole document as text."""

    format: str
    filename: str

    def render(self, result: AuditResult, rules: Mapping[str, Rule]) -> str: ...


# --------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------


def _key_words(key: str) -> list[str]:
    spaced = _CAMEL_BOUNDARY.sub("_", key)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def is_secret_key(key: str) -> bool:
    """Whether an evidence key names a secret (judged on its last word, so
    `password` and `registryAuth` are secrets, `password_env` is not)."""
    words = _key_words(key)
    if not words:
        return False
    last = words[-1]
    if last in _SECRET_WORDS:
        return True
    return last == "key" and len(words) > 1 and words[-2] in _SECRET_KEY_PREFIXES


def redact_text(text: str) -> str:
    """Mask credentials inside free text: `user:pass@` in URLs and the value
    of `Bearer`/`Basic` authorization headers."""
    text = _URL_USERINFO.sub(lambda m: f"://{m['user']}:{REDACTED}@", text)
    return _AUTH_HEADER_VALUE.sub(_mask_credential, text)


def _mask_credential(match: re.Match[str]) -> str:
    """Mask the token after Basic/Bearer unless it is plainly an English word
    ("Basic challenge"): credentials carry digits, symbols or mixed case."""
    token = match.group(0)[len(match["scheme"]) :].strip()
    if token.isalpha() and (token.islower() or token[1:].islower()):
        return match.group(0)
    return f"{match['scheme']} {REDACTED}"


def to_jsonable(value: Any) -> Any:
    """Plain JSON data from facts as collectors build them: frozen
    dataclasses become dicts, enums their value, datetimes RFC 3339."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return [to_jsonable(v) for v in sorted(value, key=repr)]
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def _can_hold_secret(value: Any) -> bool:
    """Flags and counts under a secret-sounding key are evidence, not secrets
    (`default_password: true` is the finding); text and containers may be."""
    if value is None or isinstance(value, bool | int | float):
        return False
    return bool(value != "")


def redact(value: Any) -> Any:
    """A copy of `value` with secrets masked, recursing into mappings and
    sequences; a key that names a secret has its whole value replaced."""
    if isinstance(value, Mapping):
        return {
            str(k): (REDACTED if is_secret_key(str(k)) and _can_hold_secret(v) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [redact(v) for v in items]
    return value


def redact_finding(finding: Finding) -> Finding:
    """The finding with evidence, message, resource and remediation redacted."""
    return dataclasses.replace(
        finding,
        resource=redact_text(finding.resource),
        message=redact_text(finding.message),
        evidence=redact(finding.evidence),
    )


def since_last_line(result: AuditResult) -> str:
    """One line for formats without a section of their own (JUnit, OSCAL
    properties); empty when there was no earlier run."""
    diff = result.since_last
    if diff is None:
        return ""
    return (f"since run {diff.base}: {len(diff.new_failures)} new, {len(diff.fixed)} fixed, "
            f"{len(diff.persisting)} persisting failure(s), {len(diff.changed)} other change(s)")


def redact_diff(diff: RunDiff | None) -> RunDiff | None:
    """The "since the last run" comparison with names and messages redacted."""
    if diff is None:
        return None

    def clean(changes: tuple[FindingChange, ...]) -> tuple[FindingChange, ...]:
        return tuple(
            dataclasses.replace(c, resource=redact_text(c.resource), message=redact_text(c.message)) for c in changes
        )

    return dataclasses.replace(
        diff,
        new_failures=clean(diff.new_failures),
        fixed=clean(diff.fixed),
        persisting=clean(diff.persisting),
        changed=clean(diff.changed),
    )


# --------------------------------------------------------------------------
# Ordering and shared lookups
# --------------------------------------------------------------------------


def prepare_findings(result: AuditResult) -> list[Finding]:
    """All findings redacted and in the report order every format uses."""
    return sorted((redact_finding(f) for f in result.findings), key=finding_sort_key)


def isoformat(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def pretty_json(value: Any) -> str:
    """Stable, readable JSON for evidence blocks (non-JSON values as text)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def rule_title(finding: Finding, rules: Mapping[str, Rule]) -> str:
    rule = rules.get(finding.rule)
    return rule.meta.title if rule is not None else finding.title


def fedramp_levels(label: str, findings: Sequence[Finding]) -> list[str]:
    """FedRAMP baseline levels that include `label`, as the findings' own
    control mappings state them (LOW, MODERATE, HIGH order)."""
    order = {"low": 0, "moderate": 1, "high": 2}
    levels = {
        level
        for f in findings
        for level, labels in f.controls.fedramp.items()
        if label in labels
    }
    return sorted(levels, key=lambda lv: (order.get(lv.lower(), 99), lv))


def control_index(findings: Sequence[Finding]) -> dict[str, dict[str, list[Finding]]]:
    """framework ("soc2", "nist_800_53") -> control label -> findings, sorted
    by label; the evidence view auditors navigate by."""
    index: dict[str, dict[str, list[Finding]]] = {"soc2": {}, "nist_800_53": {}}
    for f in findings:
        for label in f.controls.soc2:
            index["soc2"].setdefault(label, []).append(f)
        for label in f.controls.nist_800_53:
            index["nist_800_53"].setdefault(label, []).append(f)
    return {fw: dict(sorted(by_label.items(), key=lambda kv: label_sort_key(kv[0])))
            for fw, by_label in index.items()}


def control_state(findings: Iterable[Finding]) -> str:
    """One word for a control's standing across its findings: any failure
    wins, then errors, then manual checks, then accepted risks (waived: never
    shown as a pass); "pass" only when something passed and nothing else is open."""
    statuses = {f.status for f in findings}
    for status in (Status.FAIL, Status.ERROR, Status.MANUAL, Status.WAIVED, Status.PASS):
        if status in statuses:
            return str(status.value)
    return str(Status.NOT_APPLICABLE.value)
