"""RG-MON-*: registry access is logged somewhere an investigator can read it,
and pull volume does not jump far above its usual level unnoticed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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
            ),
            "ecr": Remediation(
                cli=(
                    "`aws cloudtrail create-trail --name registry-audit --s3-bucket-name <bucket> "
                    "--is-multi-region-trail` then `aws cloudtrail start-logging --name registry-audit`"
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
        if days:
            yield _judge_spike(ctx, facts, repo, days)


def _judge_spike(ctx: RuleContext, facts: FactView, repo: str, days: Mapping[str, int]) -> Verdict:
    newest_day = max(days)
    newest = days[newest_day]
    history = {**ctx.pull_history.get(repo, {}), **days}
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
        return failed(repo, f"{newest} pulls on {newest_day}: more than {factor:g}x the baseline {baseline:.1f}", **ev)
    return passed(repo, f"{newest} pulls on {newest_day} (baseline {baseline:.1f})", **ev)
