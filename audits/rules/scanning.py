"""RG-SCAN-*: images are scanned automatically, and the newest production
image of each repository has no unresolved finding at or above the threshold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from audits.model import (
    REPOSITORIES,
    SCANNING,
    RepositoryFacts,
    ScanningFacts,
    Severity,
    TagFacts,
    Verdict,
)
from audits.rules.common import (
    REGISTRY_KINDS,
    evidence,
    image_tags,
    judge_repositories,
    registry_resource,
    tag_resource,
)
from audits.rules.registry import (
    FactUnavailable,
    FactView,
    Remediation,
    RuleContext,
    RuleMeta,
    errored,
    failed,
    manual,
    not_applicable,
    passed,
    rule,
)

AUTOMATIC_MODES = frozenset({"scan_on_push", "continuous"})
# Vendor spellings of severities that are not Severity values.
_SEVERITY_ALIASES = {"informational": Severity.INFO, "negligible": Severity.INFO, "moderate": Severity.MEDIUM}


@rule(
    RuleMeta(
        id="RG-SCAN-001",
        title="Vulnerability scanning on",
        rationale=(
            "Images age: a base image that was clean when pushed collects known CVEs within "
            "weeks. Without automatic scanning (on push, or continuously as new advisories "
            "appear) nobody learns that a production image is exploitable until it is "
            "exploited. Every repository must be covered; a scanning filter with gaps is a "
            "silent exemption."
        ),
        seed_section="Pro tips",
        severity=Severity.HIGH,
        kinds=REGISTRY_KINDS,
        soc2=("CC7.1",),
        nist_800_53=("RA-5", "SI-2"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "Distribution has no scanner: scan in CI before the push (`trivy image --exit-code 1 --severity "
                    "HIGH,CRITICAL <image>`) and on a schedule against the registry (`trivy image "
                    "<registry>/<repo>:<tag>` from a timer)"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "`aws ecr put-registry-scanning-configuration --scan-type ENHANCED --rules "
                    "'[{\"scanFrequency\":\"CONTINUOUS_SCAN\",\"repositoryFilters\":[{\"filter\":\"*\",\"filterType\":\"WILDCARD\"}]}]'`"
                ),
                component="EcrRegistryArgs(baseline=Baseline(scan_mode='continuous'))",
            ),
            "harbor": Remediation(
                cli=(
                    "turn on scan on push (`PUT https://<harbor>/api/v2.0/projects/<project>` with `{\"metadata\": "
                    "{\"auto_scan\": \"true\"}}`) and make a healthy scanner such as Trivy the default (`PATCH "
                    "https://<harbor>/api/v2.0/scanners/<id>` with `{\"is_default\": true}`)"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "`gcloud services enable containerscanning.googleapis.com` and `gcloud artifacts repositories "
                    "update <repository> --location <location> --allow-vulnerability-scanning`"
                ),
                component="ArtifactRegistryRepositoryArgs(baseline=Baseline(scan_mode='continuous'))",
            ),
            "acr": Remediation(
                cli=(
                    "turn on Microsoft Defender for Containers, which scans ACR images on push and continuously: `az "
                    "security pricing create --name Containers --tier standard`"
                ),
            ),
            "dockerhub": Remediation(
                cli=(
                    "enable Docker Scout on the repository: `docker scout repo enable --org <org> <org>/<repo>`"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "GHCR does not scan images: add a scan step to the publish workflow before it pushes (e.g. "
                    "`trivy image --exit-code 1 --severity CRITICAL,HIGH <image>`)"
                ),
            ),
        },
    )
)
def scanning_enabled(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """The registry-wide setting is one finding; which repositories the scanning
    rules (ECR's filters) cover is one finding per repository."""
    scanning: ScanningFacts = facts.require(SCANNING)
    resource = registry_resource(ctx, facts)
    ev = evidence(
        facts,
        SCANNING,
        enabled=scanning.enabled,
        mode=scanning.mode,
        scanner=scanning.scanner,
        detail=scanning.detail,
    )
    problems = []
    if not scanning.enabled:
        problems.append("vulnerability scanning is off")
    elif scanning.mode not in AUTOMATIC_MODES:
        problems.append(f"scans are not automatic (mode {scanning.mode or 'none'})")
    if scanning.enabled and scanning.scanner_installed is False:
        problems.append("no scanner is installed")
    if problems:
        yield failed(resource, "; ".join(problems), **ev)
        return
    yield passed(resource, f"scanning is {scanning.mode}", **ev)
    yield from _coverage(ctx, facts, scanning)


def _coverage(ctx: RuleContext, facts: FactView, scanning: ScanningFacts) -> Iterator[Verdict]:
    uncovered = set(scanning.uncovered_repositories)

    def judge(repo: RepositoryFacts) -> Iterator[Verdict]:
        ev = evidence(facts, SCANNING, repository=repo.name, mode=scanning.mode, detail=scanning.detail)
        if repo.name in uncovered:
            yield failed(repo.name, "no scanning rule covers this repository", **ev)
        else:
            yield passed(repo.name, f"covered by {scanning.mode} scanning", **ev)

    try:
        if facts.require(REPOSITORIES):  # no repositories: the registry verdict says all there is
            yield from judge_repositories(ctx, facts, judge, prod_only=False)
    except FactUnavailable as exc:  # the registry verdict stands; coverage cannot be judged
        yield errored(registry_resource(ctx, facts), f"coverage per repository could not be judged: {exc}")


def severity_of(name: str) -> Severity | None:
    """A vendor's severity word as a Severity; None for words like `undefined`."""
    lowered = name.lower()
    try:
        return Severity(lowered)
    except ValueError:
        return _SEVERITY_ALIASES.get(lowered)


def newest_tag(repo: RepositoryFacts) -> TagFacts | None:
    """The most recently pushed image tag; None when any push time is missing
    (then "newest" cannot be decided honestly)."""
    tags = image_tags(repo)
    if not tags or any(t.pushed_at is None for t in tags):
        return None
    return max(tags, key=lambda t: (t.pushed_at, t.name))


@rule(
    RuleMeta(
        id="RG-SCAN-002",
        title="No unresolved critical/high vulnerabilities",
        rationale=(
            "Scanning only helps if its results block releases. The newest image of each "
            "production repository is what a deployment or rollback will pull next; it must "
            "have a completed scan with nothing at or above `max_vuln_severity`, otherwise a "
            "known exploitable flaw is being shipped on purpose."
        ),
        seed_section="Auditor",
        severity=Severity.HIGH,
        kinds=REGISTRY_KINDS,
        soc2=("CC7.1",),
        nist_800_53=("RA-5", "SI-2"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "rebuild on a patched base image and push a new version; list what is affected with `trivy "
                    "image <registry>/<repo>:<tag>`"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "rebuild on a patched base image and push a new version; list what is affected with `aws ecr "
                    "describe-image-scan-findings --repository-name <repo> --image-id imageTag=<tag>`"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "rebuild on a patched base image and push a new version; list what is affected with `GET "
                    "https://<harbor>/api/v2.0/projects/<project>/repositories/<repo>/artifacts/<tag>/additions/vulnerabilities`"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "rebuild on a patched base image and push a new version; list what is affected with `gcloud "
                    "artifacts docker images describe <location>-docker.pkg.dev/<project>/<repository>/<image>:<tag> "
                    "--show-package-vulnerability`"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "rebuild on a patched base image and push a new version; list what is affected with `az security "
                    "sub-assessment list --assessed-resource-id <registry-id> --assessment-name "
                    "c0b7cfc6-3172-465a-b378-53c7ff2cc0d5`"
                ),
            ),
            "dockerhub": Remediation(
                cli=(
                    "list the findings with `docker scout cves docker.io/<org>/<repo>:<tag>`, rebuild on a "
                    "patched base and push a new version"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "rebuild on a patched base image and publish a new version; list what is affected with `trivy "
                    "image ghcr.io/<org>/<package>@<digest>`"
                ),
            ),
        },
        prod_only=True,
    )
)
def no_unresolved_vulnerabilities(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """Requires the scanning fact first: a kind without scanning (Distribution)
    then fails as "not supported" in production instead of erroring per
    repository on scan results that can never exist."""
    scanning: ScanningFacts = facts.require(SCANNING)
    threshold = Severity.parse(ctx.thresholds.max_vuln_severity)

    def judge(repo: RepositoryFacts) -> Iterator[Verdict]:
        source = facts.source(REPOSITORIES)
        if not image_tags(repo):
            yield not_applicable(repo.name, "repository has no image tags", **source)
            return
        tag = newest_tag(repo)
        if tag is None:
            yield errored(repo.name, "push times not observed: cannot tell the newest image", **source)
            return
        if tag.scan is None and scanning.results_elsewhere:
            yield manual(
                tag_resource(repo, tag),
                f"scan results are not read by regguard for this kind: {scanning.results_elsewhere}",
                repository=repo.name,
                tag=tag.name,
                digest=tag.digest,
                **source,
            )
            return
        yield _judge_scan(repo, tag, threshold, source)

    yield from judge_repositories(ctx, facts, judge, prod_only=True)


def _judge_scan(repo: RepositoryFacts, tag: TagFacts, threshold: Severity, source: dict[str, str]) -> Verdict:
    resource = tag_resource(repo, tag)
    ev: dict[str, Any] = {
        "repository": repo.name,
        "tag": tag.name,
        "digest": tag.digest,
        "pushed_at": tag.pushed_at.isoformat() if tag.pushed_at else None,
        "max_vuln_severity": threshold.value,
        **source,
    }
    if tag.error:
        return errored(resource, f"newest tag could not be read: {tag.error}", **ev)
    if tag.scan is None:
        return errored(resource, "scan result was not collected", **ev)
    ev.update(scan_status=tag.scan.status, severity_counts=dict(tag.scan.severity_counts))
    if tag.scan.status != "complete":
        return failed(resource, f"newest image has no completed scan (status {tag.scan.status})", **ev)
    blocking = {
        name: n
        for name, n in tag.scan.severity_counts.items()
        if n > 0 and (sev := severity_of(name)) is not None and sev.rank >= threshold.rank
    }
    if blocking:
        counts = ", ".join(f"{n} {name}" for name, n in sorted(blocking.items()))
        return failed(resource, f"newest image has {counts} finding(s)", **ev)
    return passed(resource, f"newest image scanned clean at {threshold.value} and above", **ev)
