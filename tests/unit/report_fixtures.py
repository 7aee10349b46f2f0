"""A small, hand-built audit result and rule catalog for the reporter tests.

Built here instead of from the real catalog so reporter tests do not move
when rules change; it covers every status, every severity, an image-refs
finding with file/line, untrusted names with markup and table syntax, and
evidence that (wrongly) carries secrets the reporters must redact.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import regex

from audits.model import AuditResult, Controls, Finding, Severity, Status, TargetSummary
from audits.rules.registry import Remediation, Rule, RuleMeta

# The official SARIF, JUnit and OSCAL schemas, committed with their sources (see its README.md).
COMPLIANCE_DATA = Path(__file__).resolve().parents[2] / "audits" / "data"

SCRIPT = "<script>alert(1)</script>"
LEAKED_PASSWORD = "hunter2-very-secret"
LEAKED_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz012345"

STARTED = datetime(2026, 11, 27, 9, 30, 0, 123456, tzinfo=UTC)
FINISHED = datetime(2026, 11, 27, 9, 31, 5, tzinfo=UTC)


def _no_verdicts(ctx: Any, facts: Any) -> list[Any]:
    return []


def _meta(rule_id: str, title: str, severity: Severity, soc2: tuple[str, ...],
          nist: tuple[str, ...]) -> RuleMeta:
    return RuleMeta(
        id=rule_id,
        title=title,
        rationale=f"Why {title.lower()} matters.",
        seed_section="test",
        severity=severity,
        kinds=frozenset({"distribution", "ecr", "image-refs"}),
        soc2=soc2,
        nist_800_53=nist,
        remediation={
            kind: Remediation(cli=f"fix-{rule_id.lower()} on {kind} --now", component=f"Arg for {rule_id}")
            for kind in ("distribution", "ecr", "image-refs")
        },
    )


RULE_METAS = (
    _meta("RG-AUTH-001", "No anonymous access", Severity.CRITICAL, ("CC6.1",), ("AC-3", "AC-14")),
    _meta("RG-AUTH-002", "Basic auth never over plain HTTP", Severity.CRITICAL,
          ("CC6.1", "CC6.7"), ("IA-5(1)", "SC-8")),
    _meta("RG-TLS-001", "Registry API only over HTTPS", Severity.HIGH, ("CC6.7",),
          ("SC-8", "SC-8(1)")),
    _meta("RG-TLS-003", "Certificate not about to expire", Severity.MEDIUM, ("CC6.7",),
          ("SC-12",)),
    _meta("RG-TAG-001", "No latest in production", Severity.HIGH, ("CC8.1",), ("CM-2", "CM-3")),
    _meta("RG-LOG-001", "Audit logging enabled", Severity.LOW, ("CC7.2",), ("AU-2",)),
    _meta("RG-FIT-001", "Registry fits the use case", Severity.INFO, ("CC3.2",), ()),
)


def rules() -> dict[str, Rule]:
    return {m.id: Rule(m, _no_verdicts) for m in RULE_METAS}


def _controls(rule_id: str) -> Controls:
    meta = next(m for m in RULE_METAS if m.id == rule_id)
    fedramp = {
        "LOW": tuple(n for n in meta.nist_800_53 if n in {"AC-3", "AC-14", "SC-8", "CM-2", "AU-2",
                                                          "SC-12"}),
        "MODERATE": meta.nist_800_53,
    }
    return Controls(soc2=meta.soc2, nist_800_53=meta.nist_800_53,
                    fedramp={k: v for k, v in fedramp.items() if v})


def finding(rule_id: str, status: Status, target: str, resource: str, message: str,
            evidence: Mapping[str, Any] | None = None, kind: str = "distribution",
            severity: Severity | None = None) -> Finding:
    meta = next(m for m in RULE_METAS if m.id == rule_id)
    return Finding(
        rule=rule_id,
        title=meta.title,
        status=status,
        severity=severity or meta.severity,
        target=target,
        kind=kind,
        resource=resource,
        message=message,
        controls=_controls(rule_id),
        evidence=dict(evidence or {}),
        remediation=meta.remediation_for(kind) if status is Status.FAIL else None,
    )


def findings() -> tuple[Finding, ...]:
    return (
        finding("RG-TLS-003", Status.PASS, "edge", "registry.internal:5000",
                "certificate valid for 200 days",
                {"days_remaining": 200.0, "source": "TLS handshake registry.internal:5000",
                 "observed_at": "2026-11-27T09:30:01+00:00"}),
        finding("RG-AUTH-001", Status.FAIL, "edge", f"app/{SCRIPT}",
                "repository pullable anonymously | see evidence\nsecond line",
                {"source": "GET https://registry.internal:5000/v2/_catalog",
                 "status": 200,
                 "password": LEAKED_PASSWORD,
                 "request": {"headers": {"Authorization": f"Bearer {LEAKED_TOKEN}"}},
                 "url": f"https://admin:{LEAKED_PASSWORD}@registry.internal:5000/v2/",
                 "observed_at": "2026-11-27T09:30:02+00:00"}),
        finding("RG-TLS-001", Status.ERROR, "core", "core",
                "fact 'plain_http' unavailable: connection refused",
                {"source": "GET http://core:80/v2/"}, kind="ecr"),
        finding("RG-TAG-001", Status.FAIL, "manifests", "k8s/deploy.yaml:12",
                "image reference nginx:latest in production manifest",
                {"file": "k8s/deploy.yaml", "line": 12, "reference": "nginx:latest"},
                kind="image-refs", severity=Severity.MEDIUM),
        finding("RG-LOG-001", Status.MANUAL, "edge", "registry.internal:5000",
                "check that the registry's access log is shipped to the SIEM",
                {"detail": "config.yml not readable remotely"}),
        finding("RG-AUTH-002", Status.NOT_APPLICABLE, "core", "core",
                "ECR has no plain HTTP endpoint", kind="ecr"),
        finding("RG-FIT-001", Status.PASS, "core", "core", "ECR fits enterprise-internal",
                kind="ecr"),
    )


def audit_result(extra: tuple[Finding, ...] = ()) -> AuditResult:
    return AuditResult(
        tool="regguard",
        version="0.1.0",
        started_at=STARTED,
        finished_at=FINISHED,
        environment="prod",
        frameworks=("soc2", "fedramp-moderate"),
        targets=(
            TargetSummary("edge", "distribution", True, (), requests=14, duration_s=1.2345),
            TargetSummary("core", "ecr", False, ("plain_http: connection refused",),
                          requests=3, duration_s=0.5),
            TargetSummary("manifests", "image-refs", True, (), requests=0, duration_s=0.01),
        ),
        findings=findings() + extra,
    )


def empty_result() -> AuditResult:
    return AuditResult("regguard", "0.1.0", STARTED, FINISHED, "dev", (), (), ())


# --------------------------------------------------------------------------
# Schema validators
# --------------------------------------------------------------------------


def load_json(name: str) -> Any:
    return json.loads((COMPLIANCE_DATA / name).read_text())


def sarif_validator() -> jsonschema.Draft4Validator:
    schema = load_json("sarif-schema-2.1.0.json")
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Any:
    """`pattern` on the `regex` module, which understands `\\p{L}`."""
    if isinstance(instance, str) and not regex.search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Any:
    if not isinstance(instance, dict):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if regex.search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def oscal_validator() -> Any:
    """Draft-07 with `pattern`/`patternProperties` on the `regex` module (the
    OSCAL schema's TokenDatatype uses `\\p{L}`, which `re` cannot compile)."""
    schema = load_json("oscal_assessment-results_schema.json")
    base = jsonschema.Draft7Validator
    validators = dict(base.VALIDATORS)
    validators["pattern"] = _pattern
    validators["patternProperties"] = _pattern_properties
    cls = jsonschema.validators.extend(base, validators)
    checker = jsonschema.FormatChecker()
    checker.checkers.pop("regex", None)
    return cls(schema, format_checker=checker)


def has_secret(text: str) -> bool:
    return LEAKED_PASSWORD in text or LEAKED_TOKEN in text or bool(
        re.search(r"admin:[^*@]+@", text))


def dataclasses_replace(obj: Finding, **changes: Any) -> Finding:
    return dataclasses.replace(obj, **changes)
