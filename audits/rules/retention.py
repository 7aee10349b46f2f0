"""RG-RET-001: old and untagged images are cleaned up by a policy, not by
whoever remembers to."""

from __future__ import annotations

from collections.abc import Iterator

from audits.model import RETENTION, RetentionFacts, Severity, Verdict
from audits.rules.common import REGISTRY_KINDS, evidence, registry_verdict
from audits.rules.registry import FactView, Remediation, RuleContext, RuleMeta, failed, passed, rule


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
                component='DistributionVmArgs(gc_schedule="Sun *-*-* 03:00:00")',
            ),
            "ecr": Remediation(
                cli=(
                    "`aws ecr put-lifecycle-policy --repository-name <repo> --lifecycle-policy-text "
                    "file://lifecycle.json`"
                ),
                component="EcrRepositoryArgs(baseline=Baseline(keep_last=100, expire_untagged_days=7))",
            ),
            "harbor": Remediation(
                cli=(
                    "create a scheduled tag retention policy for the project: `POST "
                    "https://<harbor>/api/v2.0/retentions` with `scope.level: project`, a `latestPushedK` rule and "
                    "`trigger.settings.cron`"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "`gcloud artifacts repositories set-cleanup-policies <repository> --location <location> --policy "
                    "cleanup.json --no-dry-run` (keep the N most recent, delete untagged older than D)"
                ),
                component=(
                    "ArtifactRegistryRepositoryArgs(baseline=Baseline(keep_last=100, expire_untagged_days=7), "
                    "cleanup_dry_run=False)"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "`az acr config retention update --registry <registry> --status enabled --days 7 --type "
                    "UntaggedManifests`; remove old tags on a schedule with `acr purge` (an ACR task)"
                ),
                component="AcrRegistryArgs(baseline=Baseline(expire_untagged_days=7))",
            ),
            "dockerhub": Remediation(
                cli=(
                    "Docker Hub has no retention policies: delete stale tags in Docker Hub (Repository → Tags → "
                    "Delete) from a scheduled clean-up, keeping release tags"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "GHCR has no retention policy: delete old and untagged versions from a scheduled workflow "
                    "(`actions/delete-package-versions` with `min-versions-to-keep` and "
                    "`delete-only-untagged-versions`)"
                ),
            ),
        },
    )
)
def retention_policy_set(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """A registry-wide policy (Distribution's garbage collection) is one finding
    for the registry; per-repository policies (ECR lifecycle policies) are one
    finding per repository, so each has a stable identity in history."""
    retention: RetentionFacts = facts.require(RETENTION)
    dry_run = "cleanup policies run in dry-run mode and delete nothing" if retention.dry_run else None
    if retention.registry_wide or not (retention.by_repository or retention.uncovered_repositories):
        yield registry_verdict(
            ctx,
            facts,
            RETENTION,
            dry_run or (None if retention.registry_wide else "no retention policy"),
            f"retention in place ({retention.registry_wide})",
            registry_wide=retention.registry_wide,
            dry_run=retention.dry_run,
        )
        return
    for name in sorted({*retention.by_repository, *retention.uncovered_repositories}):
        policy = retention.by_repository.get(name)
        ev = evidence(facts, RETENTION, repository=name, policy=policy, dry_run=retention.dry_run)
        if policy is None:
            yield failed(name, "no retention policy for this repository", **ev)
        elif dry_run or name in retention.dry_run_repositories:
            yield failed(name, dry_run or "cleanup policies run in dry-run mode and delete nothing", **ev)
        else:
            yield passed(name, f"retention policy: {policy}", **ev)
