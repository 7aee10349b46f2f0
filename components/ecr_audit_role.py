"""The read-only role regguard assumes in each AWS account it audits.

A multi-account ECR audit runs as one auditor identity (in the management or a
security account) that lists the organization's accounts and assumes the same
role in each. `EcrAuditRole` declares that role in one account: a trust policy
naming the auditor (optionally bound to an sts:ExternalId and to the auditor's
organization) and an inline policy with exactly the read actions the ECR
collector calls. Deploy it into every member account, e.g. with one
`aws.Provider` per account passed as the component's provider.

The documents are pure functions so the sandbox's multi-account estate, the
README and the tests use the very same JSON:

* `audit_policy_document()`: the role's permissions. `tests/pulumi/test_ecr_audit_role.py`
  reads the collector modules and fails when they call an action not listed here
  (or stop calling one that is). The two pull actions (BatchGetImage,
  GetDownloadUrlForLayer) read cosign signature manifests and payloads; they also
  let the role pull images, which is what verifying signatures needs.
* `trust_policy_document(...)`: who may assume the role.
* `auditor_policy_document(role_name)`: what the auditor identity itself needs
  (listing accounts, assuming the role); `sts:AssumeRole` is never in the role's
  own policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.ecr import check_principals

DEFAULT_ROLE_NAME = "RegguardAudit"
AUDIT_POLICY_NAME = "regguard-ecr-audit-read"  # the role's inline policy
POLICY_VERSION = "2012-10-17"

ECR_READ_ACTIONS: tuple[str, ...] = (
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
    "ecr:DescribeRegistry",
    "ecr:DescribeRepositories",
    "ecr:GetDownloadUrlForLayer",
    "ecr:GetLifecyclePolicy",
    "ecr:GetRegistryScanningConfiguration",
    "ecr:GetRepositoryPolicy",
)
IAM_READ_ACTIONS: tuple[str, ...] = (
    "iam:GetAccountAuthorizationDetails",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListAccessKeys",
)
CLOUDTRAIL_READ_ACTIONS: tuple[str, ...] = (
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetEventSelectors",
    "cloudtrail:GetTrailStatus",
)

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
_EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_ORGANIZATION_ID_RE = re.compile(r"^o-[a-z0-9]{10,32}$")
_MIN_SESSION, _MAX_SESSION = 3600, 43200  # what IAM accepts for MaxSessionDuration


# --------------------------------------------------------------------- documents


def audit_policy_document() -> dict[str, Any]:
    """The role's inline policy: every call the ECR collector makes, nothing else.
    Registry-level and list calls take no resource ARN, so the resource is `*`."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            _allow("RegguardEcrRead", ECR_READ_ACTIONS),
            _allow("RegguardIamPushCredentialsRead", IAM_READ_ACTIONS),
            _allow("RegguardCloudTrailRead", CLOUDTRAIL_READ_ACTIONS),
        ],
    }


def trust_policy_document(
    principals: Sequence[str], *, external_id: str | None = None, organization_id: str | None = None
) -> dict[str, Any]:
    """Who may assume the role: the auditor principals, when they send `external_id`
    (sts:ExternalId) and belong to `organization_id` (aws:PrincipalOrgID), if given."""
    statement: dict[str, Any] = {
        "Sid": "RegguardAuditorAssumes",
        "Effect": "Allow",
        "Principal": {"AWS": sorted(set(principals))},
        "Action": "sts:AssumeRole",
    }
    conditions = {"sts:ExternalId": external_id, "aws:PrincipalOrgID": organization_id}
    if any(conditions.values()):
        statement["Condition"] = {"StringEquals": {k: v for k, v in conditions.items() if v}}
    return {"Version": POLICY_VERSION, "Statement": [statement]}


def auditor_policy_document(role_name: str = DEFAULT_ROLE_NAME) -> dict[str, Any]:
    """What the auditor identity needs: list the organization's accounts and assume
    `role_name` in any of them (the trust policy on each role decides the rest)."""
    assume = _allow("RegguardAssumeAuditRole", ("sts:AssumeRole",))
    assume["Resource"] = f"arn:aws:iam::*:role/{role_name}"
    list_accounts = _allow("RegguardListAccounts", ("organizations:ListAccounts",))
    return {"Version": POLICY_VERSION, "Statement": [list_accounts, assume]}


def _allow(sid: str, actions: Sequence[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": "*"}


# --------------------------------------------------------------------- component


@dataclass(frozen=True)
class EcrAuditRoleArgs:
    """The audit role of one account. Name the auditor by account
    (`auditor_account_id`: its root, i.e. any identity that account allows) or by
    `auditor_principal_arns` (exact roles or users) — one of the two.
    `external_id` may be a secret Output; `organization_id` adds aws:PrincipalOrgID."""

    auditor_account_id: str | None = None
    auditor_principal_arns: tuple[str, ...] = ()
    role_name: str = DEFAULT_ROLE_NAME
    external_id: pulumi.Input[str] | None = None
    organization_id: str | None = None
    max_session_duration: int = 3600
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.auditor_account_id is None) == (not self.auditor_principal_arns):
            raise ValueError("auditor_account_id or auditor_principal_arns: give exactly one")
        if self.auditor_account_id is not None and not _ACCOUNT_RE.match(self.auditor_account_id):
            raise ValueError("auditor_account_id: expected a 12-digit account id")
        check_principals("auditor_principal_arns", self.auditor_principal_arns, allow_star=False)
        if not _ROLE_NAME_RE.match(self.role_name):
            raise ValueError(f"role_name: {self.role_name!r} is not an IAM role name")
        if isinstance(self.external_id, str) and not _EXTERNAL_ID_RE.match(self.external_id):
            raise ValueError("external_id: expected 2-1224 characters of [A-Za-z0-9+=,.@:/_-]")
        if self.organization_id is not None and not _ORGANIZATION_ID_RE.match(self.organization_id):
            raise ValueError("organization_id: expected an organization id such as o-a1b2c3d4e5")
        if not _MIN_SESSION <= self.max_session_duration <= _MAX_SESSION:
            raise ValueError(f"max_session_duration: expected {_MIN_SESSION}..{_MAX_SESSION} seconds")
        for key in self.tags:
            if key.startswith("regguard:"):
                raise ValueError(f"tags: {key!r}: the regguard: prefix is reserved")

    def principals(self) -> tuple[str, ...]:
        if self.auditor_account_id is not None:
            return (f"arn:aws:iam::{self.auditor_account_id}:root",)
        return self.auditor_principal_arns


class EcrAuditRole(pulumi.ComponentResource):
    """The read-only audit role: an IAM role trusting the auditor and its inline
    read policy (`audit_policy_document`)."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: EcrAuditRoleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("regguard:ecr:EcrAuditRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        principals = args.principals()
        trust = pulumi.Output.from_input(args.external_id).apply(
            lambda external_id: json.dumps(
                trust_policy_document(principals, external_id=external_id, organization_id=args.organization_id),
                sort_keys=True,
            )
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            description="regguard: read-only ECR audit, assumed by the auditor",
            assume_role_policy=trust,
            max_session_duration=args.max_session_duration,
            tags={**args.tags, "regguard:managed": "true"},
            opts=child,
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-read",
            role=self.role.id,
            name=AUDIT_POLICY_NAME,
            policy=json.dumps(audit_policy_document(), sort_keys=True),
            opts=child,
        )
        self.role_arn = self.role.arn
        self.register_outputs({"role_arn": self.role.arn})
