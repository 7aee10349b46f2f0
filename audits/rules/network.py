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
                component='DistributionVmArgs(allowed_cidrs=("10.0.0.0/8",))',
            ),
            "ecr": Remediation(
                cli=(
                    "reach ECR through VPC endpoints (`aws ec2 create-vpc-endpoint --service-name "
                    "com.amazonaws.<region>.ecr.dkr ...`) and add `aws:SourceVpce` conditions to the repository "
                    "policies"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "bind Harbor to private addresses and restrict the VM's security group / firewall on 443 to the "
                    "configured CIDRs (never 0.0.0.0/0 in production)"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "put the project in a VPC Service Controls perimeter that restricts "
                    "`artifactregistry.googleapis.com` (`gcloud access-context-manager perimeters create ... "
                    "--restricted-services=artifactregistry.googleapis.com`) and pull through Private Google Access"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "`az acr update --name <registry> --public-network-enabled false --allow-trusted-services false`,"
                    " and reach it through a private endpoint (`az network private-endpoint create --group-id "
                    "registry --private-connection-resource-id <registry-id> --subnet <subnet-id> ...`)"
                ),
                component=(
                    "AcrRegistryArgs(public_network_access=False, trusted_services_bypass=False, "
                    "private_endpoint_subnet_id='<subnet-id>')"
                ),
            ),
            "dockerhub": Remediation(
                cli=(
                    "Docker Hub is on the internet by design: keep images that must not be reachable in a "
                    "registry with private endpoints, and keep the rest private with read-only tokens"
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
