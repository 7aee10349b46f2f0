"""RG-REP-001: production images survive the loss of one region or zone."""

from __future__ import annotations

from collections.abc import Iterator

from audits.model import REPLICATION, ReplicationFacts, Severity, Verdict
from audits.rules.common import REGISTRY_KINDS, registry_resource, registry_verdict, target_is_prod
from audits.rules.registry import (
    FactView,
    Remediation,
    RuleContext,
    RuleMeta,
    not_applicable,
    rule,
)


@rule(
    RuleMeta(
        id="RG-REP-001",
        title="Replicated for availability",
        rationale=(
            "When the only copy of the production images is in one region, a regional outage "
            "or an accidental deletion stops every deployment, autoscaling event and node "
            "replacement. Replicating production repositories to a second region (or zone "
            "redundancy / geo-replication) keeps pulls working and is the registry's backup."
        ),
        seed_section="Decision matrix",
        severity=Severity.LOW,
        kinds=REGISTRY_KINDS,
        soc2=("A1.2",),
        nist_800_53=("CP-9", "CP-10"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "run a second registry in another zone or region and mirror to it on a schedule (`skopeo sync "
                    "--src docker --dest docker <registry>/<repo> <replica>`), or use object storage with "
                    "cross-region replication"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "`aws ecr put-replication-configuration --replication-configuration "
                    "'{\"rules\":[{\"destinations\":[{\"region\":\"us-west-2\",\"registryId\":\"<account>\"}]}]}'`"
                ),
                component="EcrRegistryArgs(baseline=Baseline(replicate_to=('us-west-2',)))",
            ),
            "harbor": Remediation(
                cli=(
                    "add the second registry (`POST https://<harbor>/api/v2.0/registries`) and an event-based push "
                    "replication policy to it (`POST https://<harbor>/api/v2.0/replication/policies` with "
                    "`dest_registry` and `\"trigger\": {\"type\": \"event_based\"}`)"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "keep production images in a multi-region location: `gcloud artifacts repositories create "
                    "<repository> --location europe --repository-format docker` (or `us` / `asia`) and copy the "
                    "images (`gcrane cp`)"
                ),
                component="ArtifactRegistryRepositoryArgs(location='europe')",
            ),
            "acr": Remediation(
                cli=(
                    "on a Premium registry: `az acr replication create --registry <registry> --location <region>`"
                ),
                component="AcrRegistryArgs(sku='Premium', baseline=Baseline(replicate_to=('northeurope',)))",
            ),
            "dockerhub": Remediation(
                cli=(
                    "mirror to a second registry on a schedule: `skopeo sync --src docker --dest docker "
                    "docker.io/<org>/<repo> <mirror-registry>/<org>`"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "GitHub runs ghcr.io's storage; for a copy you control, mirror releases: `skopeo sync --src "
                    "docker --dest docker ghcr.io/<org>/<package> <mirror>/<org>`"
                ),
            ),
        },
        prod_only=True,
    )
)
def replicated(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    if not target_is_prod(ctx, facts):
        yield not_applicable(
            registry_resource(ctx, facts), f"replication is only required in production ({ctx.environment})"
        )
        return
    rep: ReplicationFacts = facts.require(REPLICATION)
    yield registry_verdict(
        ctx,
        facts,
        REPLICATION,
        None if rep.enabled else f"production images are not replicated {rep.detail}".strip(),
        f"replicated: {', '.join(rep.destinations) or rep.detail or 'enabled'}",
        enabled=rep.enabled,
        destinations=list(rep.destinations),
        detail=rep.detail,
    )
