"""The registry guide's decision matrix as data: which registry kinds suit
which use case, and why.

`recommend` ranks kinds for a set of declared use cases (config `use_cases`,
`regguard recommend --use-case ...`); `fits` tells RG-FIT-001 whether the
audited kind is one the matrix recommends. Some recommendations hold only
under a condition ("Harbor with content trust"), which is carried along so a
report can say what must also be true.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

KINDS = ("harbor", "ecr", "gar", "acr", "ghcr", "dockerhub", "distribution")


@dataclass(frozen=True)
class Choice:
    """One recommended kind for a use case, with the reason and an optional
    condition that must also hold."""

    kind: str
    reason: str
    condition: str | None = None

    def explain(self) -> str:
        return f"{self.reason} (provided {self.condition})" if self.condition else self.reason


@dataclass(frozen=True)
class UseCase:
    id: str
    description: str
    choices: tuple[Choice, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(c.kind for c in self.choices)

    def choice_for(self, kind: str) -> Choice | None:
        return next((c for c in self.choices if c.kind == kind), None)


@dataclass(frozen=True)
class Recommendation:
    """A kind with the declared use cases it satisfies (`satisfied`) and those it does not (`missing`)."""

    kind: str
    score: int
    satisfied: tuple[str, ...]
    missing: tuple[str, ...]
    reasons: tuple[str, ...]  # "use-case: reason", in the order use cases were given
    conditions: tuple[str, ...] = ()


def _uc(id: str, description: str, *choices: Choice) -> tuple[str, UseCase]:
    return id, UseCase(id, description, choices)


USE_CASES: dict[str, UseCase] = dict(
    [
        _uc(
            "air-gapped",
            "runs with no internet access at all",
            Choice("harbor", "installs offline with its own scanner DB, RBAC and replication"),
            Choice("distribution", "a single binary with filesystem storage and no external service"),
        ),
        _uc(
            "vulnerability-scanning",
            "images must be scanned automatically",
            Choice("harbor", "built-in Trivy scanning on push, with policies that block pulls"),
            Choice("ecr", "basic and Inspector enhanced scanning, on push and continuous"),
        ),
        _uc(
            "fine-grained-access",
            "per-repository permissions for people and robots",
            Choice("harbor", "project RBAC, robot accounts scoped per repository and action"),
            Choice("acr", "repository-scoped tokens and Entra ID ABAC conditions"),
        ),
        _uc(
            "compliance-audit-trail",
            "every push, pull and deletion attributable and signed content enforced",
            Choice(
                "harbor",
                "audit log of all artifact operations, immutability rules, signature enforcement",
                condition="content trust (cosign or Notation) is enforced on the projects",
            ),
        ),
        _uc(
            "enterprise-internal",
            "private images for an organisation's own workloads with SSO and policies",
            Choice("harbor", "self-hosted with LDAP/OIDC, projects, quotas and replication"),
            Choice("acr", "Entra ID integration, private endpoints, geo-replication"),
            Choice("ecr", "IAM, VPC endpoints, lifecycle and scanning in the AWS account"),
            Choice("gar", "IAM, VPC Service Controls and CMEK in the Google project"),
        ),
        _uc(
            "aws-native",
            "workloads run on AWS (EKS, ECS, Lambda)",
            Choice("ecr", "IAM roles pull without stored secrets; same-region pulls are free"),
        ),
        _uc(
            "gcp-native",
            "workloads run on Google Cloud (GKE, Cloud Run)",
            Choice("gar", "workload identity pulls; the successor of GCR (gcr.io is served by GAR)"),
        ),
        _uc(
            "azure-native",
            "workloads run on Azure (AKS, Container Apps)",
            Choice("acr", "managed identity pulls and AKS attach without secrets"),
        ),
        _uc(
            "open-source-distribution",
            "public images for anyone to pull",
            Choice("ghcr", "free public packages linked to the source repository"),
            Choice("dockerhub", "the default registry of every client; official/verified publisher programmes"),
        ),
        _uc(
            "github-ci",
            "images built and published from GitHub Actions",
            Choice("ghcr", "GITHUB_TOKEN pushes without extra secrets; permissions follow the repository"),
        ),
        _uc(
            "simple-self-hosted",
            "a small self-hosted registry with minimal moving parts",
            Choice("distribution", "one binary and one config file; TLS and htpasswd are all it needs"),
        ),
        _uc(
            "multi-cloud",
            "the same images served in several clouds",
            Choice("harbor", "replicates to and from ECR, GAR, ACR and other Harbors; cloud-neutral"),
        ),
        _uc(
            "cost-sensitive",
            "lowest running cost matters more than features",
            Choice("distribution", "no licence or per-GB registry fee; object storage or a disk"),
            Choice("ghcr", "free for public packages and within the GitHub plan's storage"),
        ),
        _uc(
            "high-availability",
            "pulls must keep working through a zone or region failure",
            Choice("ecr", "regional service across zones; cross-region replication"),
            Choice("gar", "multi-region repositories"),
            Choice("acr", "zone redundancy and geo-replication (Premium)"),
            Choice(
                "harbor",
                "replication between instances",
                condition="it runs with replication and an HA database and Redis",
            ),
        ),
    ]
)


def _check(use_cases: Sequence[str]) -> None:
    unknown = [u for u in use_cases if u not in USE_CASES]
    if unknown:
        raise ValueError(f"unknown use case {unknown[0]!r}; expected one of {', '.join(sorted(USE_CASES))}")


def _recommendation(kind: str, use_cases: Sequence[str]) -> Recommendation:
    satisfied, missing, reasons, conditions = [], [], [], []
    for uc_id in dict.fromkeys(use_cases):
        choice = USE_CASES[uc_id].choice_for(kind)
        if choice is None:
            missing.append(uc_id)
            continue
        satisfied.append(uc_id)
        reasons.append(f"{uc_id}: {choice.reason}")
        if choice.condition:
            conditions.append(f"{uc_id}: {choice.condition}")
    return Recommendation(kind, len(satisfied), tuple(satisfied), tuple(missing), tuple(reasons), tuple(conditions))


def recommend(use_cases: Sequence[str]) -> list[Recommendation]:
    """Kinds that satisfy at least one use case, most use cases first (ties in
    KINDS order). Raises ValueError naming the valid ids for an unknown one."""
    _check(use_cases)
    recs = [_recommendation(kind, use_cases) for kind in KINDS]
    return sorted((r for r in recs if r.score), key=lambda r: (-r.score, KINDS.index(r.kind)))


def fits(kind: str, use_cases: Sequence[str]) -> tuple[bool, list[str]]:
    """Whether `kind` is a kind the matrix recommends for all `use_cases`.

    When no kind satisfies every use case (e.g. aws-native + air-gapped), a
    kind fits if it is among the best-ranked ones. Reasons name, per use case,
    why the kind suits it or which kinds would.
    """
    _check(use_cases)
    ranked = recommend(use_cases)
    mine = _recommendation(kind, use_cases)
    best = ranked[0].score if ranked else 0
    wanted = len(dict.fromkeys(use_cases))
    ok = mine.score == wanted if best == wanted else mine.score == best and best > 0
    reasons = list(mine.reasons) + [f"condition: {c}" for c in mine.conditions]
    for uc_id in mine.missing:
        reasons.append(f"{uc_id}: not recommended; use {' or '.join(USE_CASES[uc_id].kinds)}")
    if not ok and best != wanted and ranked:
        top = [r.kind for r in ranked if r.score == best]
        reasons.append(f"no kind covers every use case; best: {', '.join(top)}")
    return ok, reasons
