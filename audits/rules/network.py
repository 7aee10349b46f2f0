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
        remediation={
            "distribution": Remediation(
                cli=(
                    "bind the registry to a private address (`http.addr: <private-ip>:443` in config.yml) and "
                    "admit only internal networks in the host firewall, e.g. `nft add rule inet filter input tcp "
                    "dport 443 ip saddr != 10.0.0.0/8 drop`"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "reach ECR through VPC endpoints (`aws ec2 create-vpc-endpoint --service-name "
                    "com.amazonaws.<region>.ecr.dkr ...`) and add `aws:SourceVpce` conditions to the repository "
                    "policies"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "ghcr.io is an internet endpoint: restrict who reaches the organization with an IP allow list "
                    "(organization Settings -> Authentication security)"
                ),
            ),
        },
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
