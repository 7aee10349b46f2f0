"""RG-RET-001: old and untagged images are cleaned up by a policy, not by
whoever remembers to."""

from __future__ import annotations

from collections.abc import Iterator

from audits.model import RETENTION, RetentionFacts, Severity, Verdict
from audits.rules.common import REGISTRY_KINDS, registry_verdict
from audits.rules.registry import FactView, Remediation, RuleContext, RuleMeta, rule


@rule(
    RuleMeta(
        id="RG-RET-001",
        title="Retention policy set",
        rationale=(
            "Without retention a registry keeps every image ever pushed: storage cost grows "
            "without bound, scanners keep reporting abandoned images, and nobody can say which "
            "images are still meant to be in use. A lifecycle or cleanup policy (or scheduled "
            "garbage collection for Distribution) keeps the inventory to what is deployed or "
            "recent, and must be active rather than a dry run."
        ),
        seed_section="Pro tips",
        severity=Severity.MEDIUM,
        kinds=REGISTRY_KINDS,
        soc2=("CC8.1",),
        nist_800_53=("SI-12", "CM-8"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "set `storage.delete.enabled: true` in config.yml and schedule `docker-registry garbage-collect "
                    "--delete-untagged /etc/docker/registry/config.yml` (a systemd timer or cron job)"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "`aws ecr put-lifecycle-policy --repository-name <repo> --lifecycle-policy-text "
                    "file://lifecycle.json`"
                ),
                component="EcrRepositoryArgs(baseline=Baseline(keep_last=100, expire_untagged_days=7))",
            ),
        },
    )
)
def retention_policy_set(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    retention: RetentionFacts = facts.require(RETENTION)
    problems = []
    if not retention.registry_wide and not retention.by_repository:
        problems.append("no retention policy")
    if retention.dry_run:
        problems.append("cleanup policies run in dry-run mode and delete nothing")
    if retention.uncovered_repositories and not retention.registry_wide:
        shown = ", ".join(retention.uncovered_repositories[:10])
        problems.append(f"{len(retention.uncovered_repositories)} repositories without a policy: {shown}")
    yield registry_verdict(
        ctx,
        facts,
        RETENTION,
        "; ".join(problems),
        f"retention in place ({retention.registry_wide or f'{len(retention.by_repository)} repository policies'})",
        registry_wide=retention.registry_wide,
        by_repository=dict(retention.by_repository),
        uncovered_repositories=list(retention.uncovered_repositories),
        dry_run=retention.dry_run,
    )
