"""RG-FIT-001: the registry kind is one the decision matrix recommends for
what the organisation declared it needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from audits.kinds import names as kind_names
from audits.kinds import registry_kinds
from audits.matrix import KINDS as MATRIX_KINDS
from audits.matrix import USE_CASES, fits, recommend
from audits.model import Severity, Verdict
from audits.rules.common import REGISTRY_KINDS, registry_resource
from audits.rules.registry import (
    FactView,
    Remediation,
    RuleContext,
    RuleMeta,
    failed,
    manual,
    not_applicable,
    passed,
    rule,
)


@rule(
    RuleMeta(
        id="RG-FIT-001",
        title="Registry fits its use case",
        rationale=(
            "Each registry kind is strong at some things and missing others: an air-gapped "
            "site cannot depend on a cloud service, a compliance audit trail needs audit logs "
            "and signature enforcement, fine-grained access needs per-repository permissions. "
            "A registry chosen against the declared use cases leaves gaps that no setting "
            "can close; the guide's decision matrix says which kinds fit."
        ),
        seed_section="Decision matrix",
        severity=Severity.MEDIUM,
        kinds=REGISTRY_KINDS,
        soc2=("CC3.2",),
        nist_800_53=("PL-8", "SA-8"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "`regguard recommend --use-case <id>` lists the kinds that fit; plan the move (`skopeo sync "
                    "--src docker --dest docker <old>/<repo> <new>/<repo>`)"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "`regguard recommend --use-case <id>` lists the kinds that fit; plan the move (`skopeo sync "
                    "--src docker --dest docker <old>/<repo> <new>/<repo>`)"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "`regguard recommend --use-case <id>` lists the kinds that fit; plan the move (`skopeo sync --src "
                    "docker --dest docker <old>/<repo> <new>/<repo>`)"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "`regguard recommend --use-case <id>` lists the kinds that fit; plan the move (`skopeo sync --src "
                    "docker --dest docker <old>/<repo> <new>/<repo>`)"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "`regguard recommend --use-case <id>` lists the kinds that fit; plan the move (`az acr import "
                    "--name <new-registry> --source <old>/<repo>:<tag>`)"
                ),
            ),
            "dockerhub": Remediation(
                cli=(
                    "`regguard recommend --use-case <id>` lists the kinds that fit; plan the move (`skopeo sync "
                    "--src docker --dest docker <old>/<repo> <new>/<repo>`)"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "`regguard recommend --use-case <id>` lists the kinds that fit; GHCR fits public open-source "
                    "projects and GitHub-centric CI/CD"
                ),
            ),
        },
    )
)
def registry_fits_use_case(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """Needs no collected fact: the kind and the declared use cases decide."""
    kind = ctx.target_kind or facts.kind
    resource = registry_resource(ctx, facts)
    if kind in kind_names() and kind not in registry_kinds():
        yield not_applicable(resource, f"{kind} is not a registry")
        return
    if kind not in MATRIX_KINDS:
        yield manual(resource, f"the decision matrix has no row for {kind}: compare it with `regguard recommend`")
        return
    if not ctx.use_cases:
        yield not_applicable(
            resource,
            f"no use cases declared; add `use_cases:` to the audit config (one of {', '.join(sorted(USE_CASES))})",
        )
        return
    ok, reasons = fits(kind, ctx.use_cases)
    ranked = [r.kind for r in recommend(ctx.use_cases)]
    ev: dict[str, Any] = {"kind": kind, "use_cases": list(ctx.use_cases), "recommended": ranked, "reasons": reasons}
    if ok:
        yield passed(resource, f"{kind} fits: {'; '.join(reasons)}", **ev)
    else:
        yield failed(resource, f"{kind} does not fit the declared use cases: {'; '.join(reasons)}", **ev)
