"""RG-MON-*: registry access is logged somewhere an investigator can read it,
and pull volume does not jump far above its usual level unnoticed."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date
from statistics import fmean
from typing import Any

from audits.model import LOGGING, PULL_COUNTS, LoggingFacts, PullCountFacts, Severity, Verdict
from audits.rules.common import REGISTRY_KINDS, registry_resource, registry_verdict
from audits.rules.registry import (
    FactView,
    Remediation,
    RuleContext,
    RuleMeta,
    failed,
    not_applicable,
    passed,
    rule,
)

# How many days before the newest one make up the trailing baseline.
BASELINE_DAYS = 14


@rule(
    RuleMeta(
        id="RG-MON-001",
        title="Access is logged",
        rationale=(
            "When a credential leaks or an image is replaced, the first questions are who "
            "pulled or pushed what, from where and when. Without access logs shipped off the "
            "registry (CloudTrail, Azure diagnostic settings, GCP data-access audit logs, "
            "Harbor audit log forwarding, Distribution notifications) those questions have no "
            "answer and the incident cannot be scoped."
        ),
        seed_section="Auditor",
        severity=Severity.MEDIUM,
        kinds=REGISTRY_KINDS,
        soc2=("CC7.2",),
        nist_800_53=("AU-2", "AU-12"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "add a `notifications.endpoints` entry to config.yml that posts pull and push events to your "
                    "log pipeline, and keep access logs on (`log.accesslog.disabled: false`)"
                ),
                component='DistributionVmArgs(notifications_url="https://audit-sink.internal/registry-events")',
            ),
            "ecr": Remediation(
                cli=(
                    "`aws cloudtrail create-trail --name registry-audit --s3-bucket-name <bucket> "
                    "--is-multi-region-trail` then `aws cloudtrail start-logging --name registry-audit`"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "forward the audit log to your log pipeline: `PUT https://<harbor>/api/v2.0/configurations` with "
                    "`{\"audit_log_forward_endpoint\": \"<syslog host>:<port>\"}`"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "turn on Data Access audit logs for Artifact Registry: add `{service: "
                    "artifactregistry.googleapis.com, auditLogConfigs: [{logType: DATA_READ}, {logType: "
                    "DATA_WRITE}]}` to the project policy (`gcloud projects get-iam-policy <project> > p.yaml`, edit, "
                    "`gcloud projects set-iam-policy <project> p.yaml`)"
                ),
                component="ArtifactRegistryProjectArgs(data_access_logs=True)",
            ),
            "acr": Remediation(
                cli=(
                    "`az monitor diagnostic-settings create --name audit --resource <registry-id> --workspace "
                    "<workspace-id> --logs "
                    "'[{\"category\":\"ContainerRegistryLoginEvents\",\"enabled\":true},{\"category\":\"ContainerRegistryRepositoryEvents\",\"enabled\":true}]'`"
                ),
                component="AcrRegistryArgs(log_analytics_workspace_id='<workspace-id>')",
            ),
            "dockerhub": Remediation(
                cli=(
                    "use a plan with audit logs and export them on a schedule into your log pipeline: `curl "
                    "https://hub.docker.com/v2/auditlogs/<org>?from=<date> -H 'Authorization: Bearer <jwt>'`"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "stream the organization audit log (Settings -> Audit log -> Log streaming) or export package "
                    "events with `gh api '/orgs/<org>/audit-log?phrase=action:package'`"
                ),
            ),
        },
    )
)
def access_logged(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    logging: LoggingFacts = facts.require(LOGGING)
    yield registry_verdict(
        ctx,
        facts,
        LOGGING,
        None if logging.enabled else f"access is not logged{': ' + logging.detail if logging.detail else ''}",
        f"access logged to {logging.destination or 'a configured destination'}",
        enabled=logging.enabled,
        destination=logging.destination,
        detail=logging.detail,
    )


@rule(
    RuleMeta(
        id="RG-MON-002",
        title="No pull-count spike",
        rationale=(
            "A repository that is suddenly pulled many times its usual volume is often being "
            "scraped with a leaked credential, mirrored by an unknown party, or hit by a broken "
            "deployment loop. Comparing each day with the trailing baseline kept by earlier "
            "audits surfaces it while it is still happening."
        ),
        seed_section="Pro tips",
        severity=Severity.MEDIUM,
        kinds=REGISTRY_KINDS,
        soc2=("CC7.2",),
        nist_800_53=("SI-4",),
        remediation={
            "distribution": Remediation(
                cli=(
                    "find who pulled from the registry's notification events or access log; rotate the credentials "
                    "involved if the pulls are not yours"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "find who pulled: `aws cloudtrail lookup-events --lookup-attributes "
                    "AttributeKey=EventName,AttributeValue=BatchGetImage`; rotate the credentials involved if the "
                    "pulls are not yours"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "find who pulled: `GET "
                    "https://<harbor>/api/v2.0/audit-logs?q=operation=pull,resource=~<project>/<repo>`; rotate the "
                    "robot or user credentials involved if the pulls are not yours"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "find who pulled: `gcloud logging read "
                    '\'protoPayload.serviceName="artifactregistry.googleapis.com" AND '
                    'protoPayload.methodName="Docker-GetManifest"\' --project <project>`; rotate the credentials '
                    "involved"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "count pulls per day in Log Analytics (`ContainerRegistryRepositoryEvents | where OperationName "
                    "== 'Pull' | summarize count() by Repository, bin(TimeGenerated, 1d)`) and alert on spikes with "
                    "`az monitor scheduled-query create`"
                ),
                component="AcrRegistryArgs(log_analytics_workspace_id='<workspace-id>')",
            ),
            "dockerhub": Remediation(
                cli=(
                    "see what changed in the audit log (`GET "
                    "https://hub.docker.com/v2/auditlogs/<org>?name=<org>/<repo>`); revoke tokens that are not "
                    "yours (`DELETE /v2/access-tokens/<uuid>`)"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "GHCR reports no daily pull counts: find who pulled in the organization audit log (`gh api "
                    "'/orgs/<org>/audit-log?phrase=action:package'`)"
                ),
            ),
        },
    )
)
def no_pull_spike(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """The newest day of each repository against the mean of up to
    BASELINE_DAYS earlier days (audit history plus earlier days in the fact)."""
    pulls: PullCountFacts = facts.require(PULL_COUNTS)
    if not pulls.daily:
        yield not_applicable(registry_resource(ctx, facts), "no pull counts reported", **facts.source(PULL_COUNTS))
    for repo, days in sorted(pulls.daily.items()):
        if days and pulls.cumulative:
            yield _judge_spike(ctx, facts, repo, days, daily=_daily_from_totals)
        elif days:
            yield _judge_spike(ctx, facts, repo, days)


def _daily_from_totals(totals: Mapping[str, int]) -> dict[str, float]:
    """Pulls per day from running totals seen on some days (`pull_count` at
    each audit): the increase since the audit before, spread over the days
    between (ISO dates sort as days). A total that went down (counter reset)
    gives no day."""
    days = sorted((day, parsed) for day in totals if (parsed := _day(day)) is not None)
    out: dict[str, float] = {}
    for (before, first), (after, second) in zip(days, days[1:], strict=False):
        gap = (second - first).days
        if gap > 0 and totals[after] >= totals[before]:
            out[after] = (totals[after] - totals[before]) / gap
    return out


def _day(text: str) -> date | None:
    """A history key as a date; anything else (history is read back from disk) is skipped."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _as_is(days: Mapping[str, int]) -> Mapping[str, float]:
    return days


def _judge_spike(
    ctx: RuleContext,
    facts: FactView,
    repo: str,
    days: Mapping[str, int],
    daily: Callable[[Mapping[str, int]], Mapping[str, float]] = _as_is,
) -> Verdict:
    """`daily` turns what the registry and history report into pulls per day
    (identity for daily counts, differences for running totals)."""
    newest_day = max(days)
    history = daily({**ctx.pull_history.get(repo, {}), **days})
    if newest_day not in history:
        seen = {"repository": repo, "day": newest_day, "pull_total": days[newest_day], **facts.source(PULL_COUNTS)}
        return not_applicable(repo, "no baseline yet: pulls per day need the totals of two audits", **seen)
    newest = history[newest_day]
    earlier = sorted(d for d in history if d < newest_day)[-BASELINE_DAYS:]
    factor = ctx.thresholds.pull_spike_factor
    ev: dict[str, Any] = {
        "repository": repo,
        "day": newest_day,
        "pulls": newest,
        "baseline_days": len(earlier),
        "pull_spike_factor": factor,
        **facts.source(PULL_COUNTS),
    }
    if not earlier:
        return not_applicable(repo, "no baseline yet: earlier audits have not recorded pulls", **ev)
    baseline = fmean(history[d] for d in earlier)
    ev["baseline_mean"] = round(baseline, 2)
    # A floor of one pull a day keeps a quiet repository's first pulls from being a "spike".
    if newest > factor * max(baseline, 1.0):
        return failed(
            repo, f"{newest:g} pulls on {newest_day}: more than {factor:g}x the baseline {baseline:.1f}", **ev
        )
    return passed(repo, f"{newest:g} pulls on {newest_day} (baseline {baseline:.1f})", **ev)
