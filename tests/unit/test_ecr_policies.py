"""IAM policy reading in the ECR collector: who may pull (repository policies)
and who may push (identity policies). Pure functions, no AWS."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from audits.collectors.ecr_facts import grants_anonymous_pull, grants_push, load_policy

PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal: Any, action: Any = PULL, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, **extra}


@pytest.mark.parametrize(
    "doc",
    [
        policy(allow("*")),
        policy(allow({"AWS": "*"})),
        policy(allow({"AWS": ["arn:aws:iam::111122223333:root", "*"]})),
        policy(allow("*", "ecr:*")),
        policy(allow("*", "*")),
        policy(allow("*", "ECR:batchgetimage")),  # actions are case-insensitive
        policy(allow("*", "ecr:Batch*")),
        policy(allow("*", "ecr:GetDownloadUrlForLayer")),
        # a condition that does not say *who* leaves the door open
        policy(allow("*", Condition={"Bool": {"aws:SecureTransport": "true"}})),
        # NotAction that does not exclude pulls grants them
        {"Statement": {"Effect": "Allow", "Principal": "*", "NotAction": "ecr:PutImage"}},
    ],
)
def test_public_policies_are_anonymous(doc: dict[str, Any]) -> None:
    assert grants_anonymous_pull(doc) is True
    assert grants_anonymous_pull(json.dumps(doc)) is True


@pytest.mark.parametrize(
    "doc",
    [
        policy(allow({"AWS": "arn:aws:iam::111122223333:root"})),
        policy(allow({"Service": "lambda.amazonaws.com"})),
        policy(allow("*", "ecr:PutImage")),
        policy(allow("*", ["ecr:DescribeImages", "ecr:ListImages"])),
        policy(allow("*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"}})),
        policy(allow("*", Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::1:role/*"}})),
        policy(allow("*", Condition={"StringEquals": {"aws:SourceVpce": "vpce-1"}})),
        policy(allow("*", Condition={"StringEquals": {"aws:PrincipalTag/team": "a"}})),
        policy({**allow("*"), "Effect": "Deny"}),
        {"Statement": {"Effect": "Allow", "Principal": "*", "NotAction": ["ecr:Batch*", "ecr:Get*"]}},
        # "allow everyone, deny everyone outside my org" is the usual restriction
        policy(
            allow("*"),
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "ecr:*",
                "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-abc"}},
            },
        ),
        policy(),
        {},
    ],
)
def test_restricted_policies_are_not_anonymous(doc: dict[str, Any]) -> None:
    assert grants_anonymous_pull(doc) is False


def test_deny_with_unrelated_condition_does_not_restrict() -> None:
    doc = policy(
        allow("*"),
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "ecr:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )
    assert grants_anonymous_pull(doc) is True


def test_url_encoded_documents_are_read() -> None:
    doc = policy(allow("*"))
    assert load_policy(quote(json.dumps(doc)))[0]["Principal"] == "*"
    assert grants_anonymous_pull(quote(json.dumps(doc))) is True


@pytest.mark.parametrize(
    "doc",
    [
        policy({"Effect": "Allow", "Action": "ecr:PutImage", "Resource": "*"}),
        policy({"Effect": "Allow", "Action": ["ecr:InitiateLayerUpload"], "Resource": "*"}),
        policy({"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:us-east-1:1:repository/*"}),
        policy({"Effect": "Allow", "Action": "*", "Resource": "*"}),
        policy({"Effect": "Allow", "Action": "ecr:Complete*", "Resource": "arn:aws:ecr:*:*:repository/app"}),
        policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
        policy({"Effect": "Allow", "Action": "ecr:PutImage", "NotResource": "arn:aws:ecr:*:*:repository/x"}),
    ],
)
def test_push_grants(doc: dict[str, Any]) -> None:
    assert grants_push(doc) is True


@pytest.mark.parametrize(
    "doc",
    [
        policy({"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:Describe*"], "Resource": "*"}),
        policy({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::bucket/*"}),
        policy({"Effect": "Deny", "Action": "ecr:*", "Resource": "*"}),
        policy({"Effect": "Allow", "NotAction": "ecr:*", "Resource": "*"}),
        policy({"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}),
    ],
)
def test_no_push_grant(doc: dict[str, Any]) -> None:
    assert grants_push(doc) is False
