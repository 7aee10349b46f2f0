"""Small audit results for the history tests: findings given as
(rule, target, resource, status) with a real rule's metadata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from audits.model import AuditResult, Controls, Finding, Severity, Status, TargetSummary

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def finding(rule: str, target: str, resource: str, status: str, message: str = "observed") -> Finding:
    return Finding(
        rule=rule, title=rule, status=Status(status), severity=Severity.HIGH, target=target, kind="distribution",
        resource=resource, message=message, controls=Controls(("CC6.1",), ("AC-3",)),
        evidence={"source": f"GET https://{target}/v2/", "observed": status},
    )


def result(findings: list[Finding], day: int = 0, targets: tuple[str, ...] = ("edge",)) -> AuditResult:
    started = T0 + timedelta(days=day)
    return AuditResult(
        tool="regguard", version="0.1.0", started_at=started, finished_at=started + timedelta(seconds=30),
        environment="prod", frameworks=("soc2",),
        targets=tuple(TargetSummary(t, "distribution", True) for t in targets), findings=tuple(findings),
    )
