"""IAM users whose access keys can push to ECR (RG-CRED-001/002).

Users, groups and customer managed policies come from one paginated call
(GetAccountAuthorizationDetails) instead of five calls per user; AWS managed
policies are fetched once each and cached; only users who can push get a
ListAccessKeys call. Key ids are masked; secrets are never read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from audits.collectors.ecr_calls import attempt
from audits.collectors.ecr_facts import as_utc, mask_key_id, push_grants
from audits.model import CredentialFacts, Fact

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


@dataclass
class _IamInventory:
    users: list[Mapping[str, Any]] = field(default_factory=list)
    groups: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    policies: dict[str, Any] = field(default_factory=dict)  # ARN -> default version document


def _iam_inventory(iam: IAMClient) -> _IamInventory:
    """Users, groups and customer managed policies in one paginated call
    (GetAccountAuthorizationDetails), instead of five calls per user."""
    inv = _IamInventory()
    paginator = iam.get_paginator("get_account_authorization_details")
    for page in paginator.paginate(Filter=["User", "Group", "LocalManagedPolicy"]):
        inv.users.extend(page.get("UserDetailList", []))
        for group in page.get("GroupDetailList", []):
            inv.groups[group.get("GroupName", "")] = group
        for policy in page.get("Policies", []):
            for version in policy.get("PolicyVersionList", []):
                if version.get("IsDefaultVersion"):
                    inv.policies[policy.get("Arn", "")] = version.get("Document", {})
    return inv


class _PolicyResolver:
    """Managed policy documents by ARN: customer policies from the inventory,
    AWS managed ones fetched once each (GetPolicy + GetPolicyVersion) and cached."""

    def __init__(self, iam: IAMClient, known: Mapping[str, Any]) -> None:
        self._iam = iam
        self._docs: dict[str, Any] = dict(known)

    def document(self, arn: str) -> Any:
        if arn not in self._docs:
            policy = self._iam.get_policy(PolicyArn=arn)["Policy"]
            version = self._iam.get_policy_version(PolicyArn=arn, VersionId=policy.get("DefaultVersionId", "v1"))
            self._docs[arn] = version["PolicyVersion"].get("Document", {})
        return self._docs[arn]


def _active_keys(iam: IAMClient, user: str) -> list[Mapping[str, Any]]:
    keys: list[Mapping[str, Any]] = []
    for page in iam.get_paginator("list_access_keys").paginate(UserName=user):
        keys.extend(k for k in page.get("AccessKeyMetadata", []) if k.get("Status") == "Active")
    return keys


def credentials_fact(iam: IAMClient) -> Fact[tuple[CredentialFacts, ...]]:
    source = "iam:GetAccountAuthorizationDetails"
    inventory = attempt(lambda: _iam_inventory(iam))
    if inventory.value is None:
        return Fact.error(inventory.error or "no answer", source=source)
    inv = inventory.value
    resolver = _PolicyResolver(iam, inv.policies)

    def collect_keys() -> tuple[CredentialFacts, ...]:
        out: list[CredentialFacts] = []
        for user in inv.users:
            name = str(user.get("UserName", ""))
            grants = push_grants(user, inv.groups, resolver.document)
            if not grants:
                continue
            for key in _active_keys(iam, name):
                out.append(
                    CredentialFacts(
                        id=mask_key_id(str(key.get("AccessKeyId", ""))),
                        kind="iam-access-key",
                        created_at=as_utc(key.get("CreateDate")),
                        can_push=True,
                        detail=f"IAM user {name}; ECR push via {', '.join(grants)}",
                    )
                )
        return tuple(out)

    keys = attempt(collect_keys)
    if keys.value is None:
        return Fact.error(keys.error or "no answer", source="iam:ListAccessKeys")
    return Fact.ok(keys.value, source=source)
