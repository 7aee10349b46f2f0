"""RG-ENC-001: image layers at rest are encrypted with a key the organisation
controls, so access to the storage alone does not give access to the images."""

from __future__ import annotations

from collections.abc import Iterator

from audits.model import ENCRYPTION, EncryptionFacts, EncryptionSetting, Severity, Verdict
from audits.rules.common import REGISTRY_KINDS, evidence, registry_resource
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


def requires_customer_key(ctx: RuleContext) -> bool:
    """RULES.md: a customer key is required for the soc2 and fedramp profiles."""
    return any(f == "soc2" or f.startswith("fedramp") for f in ctx.frameworks)


@rule(
    RuleMeta(
        id="RG-ENC-001",
        title="Encrypted at rest with a customer key",
        rationale=(
            "Provider-managed encryption protects against stolen disks, not against someone "
            "with access to the account's storage. A customer-managed key (KMS/CMK) adds a "
            "separate permission, an audit trail of every decrypt, and the ability to revoke "
            "access to all images at once; SOC 2 and FedRAMP reviews expect it."
        ),
        seed_section="Auditor",
        severity=Severity.MEDIUM,
        kinds=REGISTRY_KINDS,
        soc2=("CC6.1",),
        nist_800_53=("SC-28", "SC-12"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "store layers encrypted with your key: S3 storage with `storage.s3.encrypt: true` and "
                    "`storage.s3.keyid: <kms key>`, or an encrypted volume under `storage.filesystem`"
                ),
                component="DistributionVmArgs(baseline=Baseline(customer_managed_key=True))",
            ),
            "ecr": Remediation(
                cli=(
                    "encryption is set at creation only: `aws ecr create-repository --repository-name <repo> "
                    "--encryption-configuration encryptionType=KMS,kmsKey=<key-arn>` and push the images again"
                ),
                component="EcrRepositoryArgs(baseline=Baseline(customer_managed_key=True))",
            ),
            "harbor": Remediation(
                cli=(
                    "put Harbor's data volume on a disk encrypted with a customer-managed key, or configure "
                    "harbor.yml `storage_service` with an object-storage backend encrypting by your KMS key"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "CMEK is set at creation only: `gcloud artifacts repositories create <repository> --location "
                    "<location> --repository-format docker --kms-key "
                    "projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>`, then copy the images "
                    "(`gcrane cp`) and delete the old repository"
                ),
                component=(
                    "ArtifactRegistryRepositoryArgs(create_kms_key=True, project_number='<project number>')"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "a customer-managed key can only be set when the registry is created: `az acr create --name "
                    "<registry> --resource-group <rg> --sku Premium --key-encryption-key <key-uri> --identity "
                    "<identity-id>`, then `az acr import` the images"
                ),
                component="AcrRegistryArgs(key_vault_key_id='<key-uri>', identity_id='<identity-id>')",
            ),
            "dockerhub": Remediation(
                cli=(
                    "Docker Hub has no customer-managed keys: keep images that need one in a registry with KMS "
                    "keys (`regguard recommend --use-case compliance-audit-trail`)"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "GitHub encrypts package storage with keys it manages and offers no customer key: keep data that "
                    "needs one in a registry that offers it (`regguard recommend`)"
                ),
            ),
        },
    )
)
def customer_key_at_rest(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """Per repository when the kind encrypts per repository, else the registry
    setting. Outside soc2/fedramp the failure is reported at low severity."""
    enc: EncryptionFacts = facts.require(ENCRYPTION)
    settings: dict[str, EncryptionSetting] = dict(enc.by_repository)
    if enc.registry_wide is not None:
        settings.setdefault(registry_resource(ctx, facts), enc.registry_wide)
    if not settings:
        yield not_applicable(
            registry_resource(ctx, facts), "no repositories or storage to judge", **facts.source(ENCRYPTION)
        )
    required = requires_customer_key(ctx)
    for resource, setting in sorted(settings.items()):
        ev = evidence(
            facts,
            ENCRYPTION,
            customer_managed=setting.customer_managed,
            key_id=setting.key_id,
            detail=setting.detail,
            frameworks=list(ctx.frameworks),
        )
        if setting.customer_managed:
            yield passed(resource, f"encrypted with customer key {setting.key_id or ''}".strip(), **ev)
        elif required:
            yield failed(resource, f"not encrypted with a customer key ({setting.detail or 'provider key'})", **ev)
        else:
            yield failed(
                resource,
                f"not encrypted with a customer key ({setting.detail or 'provider key'}); "
                "not required by the selected frameworks",
                Severity.LOW,
                **ev,
            )
