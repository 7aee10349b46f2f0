"""The multi-account estate on moto, reached the way the auditor reaches it: from the
management account's credentials through real AssumeRole calls, with
`sandbox.moto_strict` refusing what AWS refuses. A small organization (3 members,
2 regions, 2 repositories per scope) keeps it fast."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from components.ecr_audit_role import AUDIT_POLICY_NAME, audit_policy_document, trust_policy_document
from sandbox.aws_org_estate import OrgEstate, seed_organization
from sandbox.ecr_estate import PUSH_POLICY, aws_session
from sandbox.moto_server import MotoServer, start_moto_server
from sandbox.moto_strict import trust_allows

pytestmark = pytest.mark.integration

REGIONS = ("us-east-1", "eu-west-1")
OUTSIDE_ACCOUNT = "210987654321"  # not in the organization


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto_server(tmp_path_factory.mktemp("moto-strict"), strict_sts=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def estate(strict_server: MotoServer) -> OrgEstate:
    return seed_organization(strict_server.url, accounts=3, regions=REGIONS, repositories_per_scope=2)


def assume(endpoint: str, role_arn: str, *, caller: boto3.Session | None = None, **extra: str) -> boto3.Session:
    """A session on the credentials AssumeRole returns (the caller: management's by default)."""
    sts = (caller or aws_session()).client("sts", endpoint_url=endpoint)
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="regguard-audit", **extra)["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGIONS[0],
    )


def denied(call: Any) -> dict[str, Any]:
    """The error of a call that must be refused with AWS's AccessDenied (HTTP 403)."""
    with pytest.raises(ClientError) as info:
        call()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    return dict(info.value.response["Error"])


def seed_in_account(endpoint: str, account_id: str, service: str) -> Any:
    """A client acting inside `account_id` with moto's header: for setting up a test case only."""
    client = aws_session().client(service, endpoint_url=endpoint)

    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account_id

    client.meta.events.register("before-sign.*.*", add_header)
    return client


def test_estate_shape(estate: OrgEstate) -> None:
    assert len(estate.member_account_ids) == 3 and len(set(estate.account_ids)) == 4
    assert estate.accounts_without_role == estate.member_account_ids[-1:]
    assert estate.total_repositories == 4 * 2 * 2
    assert estate.repositories[(estate.member_account_ids[0], "eu-west-1")] == ("team0/svc-000", "team1/svc-001")
    listed = aws_session().client("organizations", endpoint_url=estate.endpoint_url).list_accounts()["Accounts"]
    assert {a["Id"] for a in listed} == set(estate.account_ids)


def test_assumed_role_sees_exactly_its_own_account(estate: OrgEstate) -> None:
    member = estate.member_account_ids[0]
    session = assume(estate.endpoint_url, estate.role_arn(member))
    identity = session.client("sts", endpoint_url=estate.endpoint_url).get_caller_identity()
    assert identity["Account"] == member
    assert identity["Arn"] == f"arn:aws:sts::{member}:assumed-role/{estate.role_name}/regguard-audit"
    for region in REGIONS:
        ecr = session.client("ecr", region_name=region, endpoint_url=estate.endpoint_url)
        repositories = ecr.describe_repositories()["repositories"]
        assert sorted(r["repositoryName"] for r in repositories) == list(estate.repositories[(member, region)])
        assert {r["registryId"] for r in repositories} == {member}
        assert all(r["repositoryArn"].startswith(f"arn:aws:ecr:{region}:{member}:") for r in repositories)


def test_role_carries_the_components_policies(estate: OrgEstate) -> None:
    member = estate.member_account_ids[1]
    iam = assume(estate.endpoint_url, estate.role_arn(member)).client("iam", endpoint_url=estate.endpoint_url)
    inline = iam.get_role_policy(RoleName=estate.role_name, PolicyName=AUDIT_POLICY_NAME)["PolicyDocument"]
    assert inline == audit_policy_document()
    trust = iam.get_role(RoleName=estate.role_name)["Role"]["AssumeRolePolicyDocument"]
    assert trust == trust_policy_document([f"arn:aws:iam::{estate.management_account_id}:root"])


def test_trails_and_push_user_are_per_account(estate: OrgEstate) -> None:
    users = {}
    for account in estate.accounts_with_role:
        session = assume(estate.endpoint_url, estate.role_arn(account))
        trails = session.client("cloudtrail", endpoint_url=estate.endpoint_url).describe_trails()["trailList"]
        assert [t["S3BucketName"] for t in trails] == [f"regguard-trail-{account}"]
        iam = session.client("iam", endpoint_url=estate.endpoint_url)
        users[account] = [u["UserName"] for u in iam.list_users()["Users"]]
    assert estate.push_user_account_id == estate.member_account_ids[0]
    assert {a for a, names in users.items() if names} == {estate.push_user_account_id}
    iam = assume(estate.endpoint_url, estate.role_arn(estate.member_account_ids[0])).client(
        "iam", endpoint_url=estate.endpoint_url
    )
    assert iam.get_user_policy(UserName="ci-pusher", PolicyName="ecr-push")["PolicyDocument"] == PUSH_POLICY
    assert len(iam.list_access_keys(UserName="ci-pusher")["AccessKeyMetadata"]) == 1


def test_account_without_the_role_is_access_denied(estate: OrgEstate) -> None:
    (missing,) = estate.accounts_without_role
    caller = aws_session().client("sts", endpoint_url=estate.endpoint_url).get_caller_identity()["Arn"]
    error = denied(lambda: assume(estate.endpoint_url, estate.role_arn(missing)))
    assert error["Message"] == (
        f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {estate.role_arn(missing)}"
    )


def test_caller_from_another_account_is_access_denied(estate: OrgEstate) -> None:
    iam = seed_in_account(estate.endpoint_url, OUTSIDE_ACCOUNT, "iam")
    iam.create_user(UserName="outsider")
    key = iam.create_access_key(UserName="outsider")["AccessKey"]
    outsider = boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGIONS[0]
    )
    role = estate.role_arn(estate.member_account_ids[0])
    error = denied(lambda: assume(estate.endpoint_url, role, caller=outsider))
    assert error["Message"].startswith(f"User: arn:aws:iam::{OUTSIDE_ACCOUNT}:user/outsider is not authorized")


def test_trust_naming_another_account_is_access_denied(estate: OrgEstate) -> None:
    member = estate.member_account_ids[1]
    trust = trust_policy_document([f"arn:aws:iam::{OUTSIDE_ACCOUNT}:root"])
    iam = seed_in_account(estate.endpoint_url, member, "iam")
    iam.create_role(RoleName="TrustsOutsider", AssumeRolePolicyDocument=json.dumps(trust))
    denied(lambda: assume(estate.endpoint_url, f"arn:aws:iam::{member}:role/TrustsOutsider"))


def test_external_id_condition_is_enforced(estate: OrgEstate) -> None:
    member = estate.member_account_ids[0]
    trust = trust_policy_document([estate.management_account_id], external_id="regguard-7f3a")
    seed_in_account(estate.endpoint_url, member, "iam").create_role(
        RoleName="NeedsExternalId", AssumeRolePolicyDocument=json.dumps(trust)
    )
    role = f"arn:aws:iam::{member}:role/NeedsExternalId"
    denied(lambda: assume(estate.endpoint_url, role))
    denied(lambda: assume(estate.endpoint_url, role, ExternalId="someone-else"))
    assert assume(estate.endpoint_url, role, ExternalId="regguard-7f3a") is not None


def test_plain_moto_lets_anyone_assume_anything(tmp_path: Path) -> None:
    """The same estate on moto without the launcher: the refusals above are the launcher's."""
    with start_moto_server(tmp_path, strict_sts=False) as server:
        estate = seed_organization(server.url, accounts=1, regions=REGIONS[:1], repositories_per_scope=1)
        (missing,) = estate.accounts_without_role
        session = assume(server.url, estate.role_arn(missing))
        assert session.client("sts", endpoint_url=server.url).get_caller_identity()["Account"] == missing


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ({"Principal": {"AWS": "123456789012"}, "Action": "sts:AssumeRole"}, True),
        ({"Principal": {"AWS": ["arn:aws:iam::123456789012:user/auditor"]}, "Action": ["sts:*"]}, True),
        ({"Principal": "*", "Action": "*"}, True),
        ({"Principal": {"AWS": "arn:aws:iam::123456789012:user/other"}, "Action": "sts:AssumeRole"}, False),
        ({"Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}, False),
        ({"Principal": {"AWS": "123456789012"}, "Action": "sts:TagSession"}, False),
        ({"Principal": {"AWS": "123456789012"}, "Action": "sts:AssumeRole", "Effect": "Deny"}, False),
        (
            {"Principal": {"AWS": "123456789012"}, "Action": "sts:AssumeRole",
             "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
            False,
        ),
    ],
)  # fmt: skip
def test_trust_evaluation(statement: dict[str, Any], allowed: bool) -> None:
    document = {"Statement": [{"Effect": "Allow", **statement}]}
    assert trust_allows(document, "123456789012", "arn:aws:iam::123456789012:user/auditor", None) is allowed
