"""RG-NET-001: the registry is not reachable from the whole internet when it
only serves an internal estate."""

from __future__ import annotations

from collections.abc import Iterator

from audits.model import NETWORK_EXPOSURE, NetworkExposureFacts, Severity, Verdict
from audits.rules.common import REGISTRY_KINDS, registry_verdict
from audits.rules.registry import FactView, Remediation, RuleContext, RuleMeta, rule


@rule(
    RuleMeta(
        id="RG-NET-001",
        title="Network exposure restricted",
        rationale=(
            "A registry open to 0.0.0.0/0 can be brute-forced, scraped and hit by every new "
            "registry CVE the day it is published. Internal registries belong on private "
            "addresses or private endpoints, with public network access disabled, so that "
            "a stolen credential is not enough on its own."
        ),
        seed_section="Auditor",
        severity=Severity.HIGH,
        kinds=REGISTRY_KINDS,
        soc2=("CC6.6",),
        nist_800_53=("SC-7",),
        remediation=Remediation(
            cli=(
                "ACR: `az acr update -n <registry> --public-network-enabled false` plus a "
                "private endpoint; self-hosted: `aws ec2 revoke-security-group-ingress "
                "--group-id <sg> --protocol tcp --port 443 --cidr 0.0.0.0/0` and bind to a "
                "private address"
            ),
            component="planned DistributionVmArgs(allowed_cidrs=[...]) / planned HarborVmArgs(allowed_cidrs=[...]) "
            "with private CIDRs (never 0.0.0.0/0)",
        ),
    )
)
def network_exposure_restricted(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    exposure: NetworkExposureFacts = facts.require(NETWORK_EXPOSURE)
    yield registry_verdict(
        ctx,
        facts,
        NETWORK_EXPOSURE,
        f"reachable from the internet: {exposure.detail}" if exposure.publicly_reachable else None,
        f"not publicly reachable: {exposure.detail}",
        publicly_reachable=exposure.publicly_reachable,
        detail=exposure.detail,
    )
