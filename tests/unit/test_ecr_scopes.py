"""ECR targets over accounts and regions: what a config may say, the (account,
region) scopes it becomes, the organization listing (botocore Stubber: moto
does not page ListAccounts), a shard's part of the scopes, and a region that
refuses the credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from audits.collectors import ecr
from audits.collectors.base import CollectOptions, RequestCounter
from audits.collectors.ecr_scopes import expand, organization_accounts, target_regions
from audits.config import ConfigError, parse_config
from audits.model import CREDENTIALS, REPOSITORIES, FactState
from audits.scopes import PlannedScope, ScopeError, shard_part
from audits.targets import EcrScope, EcrTarget

ROLE_A = "arn:aws:iam::111111111111:role/RegguardAudit"
ROLE_B = "arn:aws:iam::222222222222:role/audit/RegguardAudit"


def _target(**fields: Any) -> EcrTarget:
    config = parse_config({"targets": [{"name": "org-ecr", "kind": "ecr", **fields}]}, Path("regguard.yaml"))
    target = config.targets[0]
    assert isinstance(target, EcrTarget)
    return target


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of `region`"),
        ({"region": "us-east-1", "regions": ["eu-west-1"]}, "exactly one of `region`"),
        ({"regions": []}, "at least one region"),
        ({"regions": "some"}, "regions"),
        ({"region": "us-east-1", "role_arns": [ROLE_A], "organization": {"role_name": "R"}}, "not both"),
        ({"region": "us-east-1", "role_arns": ["arn:aws:iam::12:role/x"]}, "role_arns"),
        ({"region": "us-east-1", "organization": {"role_name": "R", "exclude_accounts": ["12"]}}, "exclude_accounts"),
        ({"region": "us-east-1", "external_id": "abc", "external_id_env": "X"}, "not both"),
        ({"region": "us-east-1", "session_name": "has space"}, "session_name"),
    ],
)
def test_a_target_says_each_thing_one_way(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _target(**fields)


def test_one_region_of_the_callers_account_is_the_target_itself() -> None:
    target = _target(region="us-east-1")
    assert expand(target) == [target]


def test_regions_without_roles_are_scopes_named_by_region() -> None:
    scopes = expand(_target(regions=["us-east-1", "eu-west-1", "us-east-1"]))
    assert [s.name for s in scopes] == ["org-ecr/us-east-1", "org-ecr/eu-west-1"]
    assert all(isinstance(s, EcrScope) and s.assume_role_arn is None for s in scopes)
    assert [s.iam_scope for s in scopes] == [None, "org-ecr/us-east-1"]  # IAM judged once per account


def test_iam_is_judged_in_the_partitions_home_region_when_the_target_has_it() -> None:
    scopes = expand(_target(regions="all", role_arns=[ROLE_A]))
    assert scopes[0].region == "af-south-1"  # an opt-in region, often disabled
    homes = {s.iam_scope for s in scopes if isinstance(s, EcrScope)}
    assert homes == {None, "org-ecr/111111111111/us-east-1"}
    assert [s.name for s in scopes if isinstance(s, EcrScope) and s.iam_scope is None] == [
        "org-ecr/111111111111/us-east-1"]
    only_europe = expand(_target(regions=["eu-west-1", "eu-central-1"], role_arns=[ROLE_A]))
    assert [s.iam_scope for s in only_europe] == [None, "org-ecr/111111111111/eu-west-1"]


def test_role_arns_make_one_scope_per_account_and_region() -> None:
    scopes = expand(_target(regions=["us-east-1", "eu-west-1"], role_arns=[ROLE_B, ROLE_A], external_id="ext-1"))
    assert [s.name for s in scopes] == [
        "org-ecr/111111111111/us-east-1",
        "org-ecr/111111111111/eu-west-1",
        "org-ecr/222222222222/us-east-1",
        "org-ecr/222222222222/eu-west-1",
    ]
    first = scopes[2]
    assert isinstance(first, EcrScope)
    assert (first.name, first.assume_role_arn, first.region) == ("org-ecr/222222222222/us-east-1", ROLE_B, "us-east-1")
    assert first.external_id == "ext-1" and first.session_name == "regguard-audit"


def test_all_regions_come_from_botocore_data_for_the_partition() -> None:
    regions = target_regions(_target(regions="all"))
    assert regions == sorted(boto3.session.Session().get_available_regions("ecr"))
    assert "us-east-1" in regions and not any(r.startswith("us-gov") for r in regions)
    gov = target_regions(_target(regions="all", partition="aws-us-gov"))
    assert gov and all(r.startswith("us-gov") for r in gov)


def _organizations() -> tuple[Any, Stubber]:
    client = boto3.Session(aws_access_key_id="k", aws_secret_access_key="s").client(
        "organizations", region_name="us-east-1")
    return client, Stubber(client)


def _account(account_id: str, state: str = "ACTIVE") -> dict[str, Any]:
    return {"Id": account_id, "Arn": f"arn:aws:organizations::1:account/o-1/{account_id}", "Name": account_id,
            "Email": f"{account_id}@example.com", "Status": state}


def test_the_organization_is_listed_page_by_page_and_only_active_accounts_count() -> None:
    client, stub = _organizations()
    stub.add_response("list_accounts", {"Accounts": [_account("333333333333"), _account("111111111111")],
                                        "NextToken": "p2"}, {})
    stub.add_response("list_accounts", {"Accounts": [_account("222222222222", "SUSPENDED")]}, {"NextToken": "p2"})
    target = _target(region="us-east-1", organization={"role_name": "RegguardAudit"})
    seen: list[int] = []
    with stub:
        accounts = organization_accounts(target, 5.0, lambda _what, done, _total: seen.append(done), client=client)
    stub.assert_no_pending_responses()
    assert accounts == ["111111111111", "333333333333"]
    assert seen == [2, 2]


def test_a_caller_that_may_not_list_the_organization_gets_aws_reason() -> None:
    client, stub = _organizations()
    stub.add_client_error("list_accounts", "AccessDeniedException", "You don't have permissions", 400)
    target = _target(region="us-east-1", organization={"role_name": "RegguardAudit"})
    with stub, pytest.raises(ScopeError, match="organizations:ListAccounts.*AccessDeniedException"):
        organization_accounts(target, 5.0, client=client)


def _planned(names: list[str]) -> list[PlannedScope]:
    return [PlannedScope(EcrTarget(name=n, kind="ecr", region="us-east-1")) for n in names]


def test_shards_partition_the_scopes_into_balanced_contiguous_blocks() -> None:
    names = [f"t{i:02d}" for i in range(10)]
    planned = list(reversed(_planned(names)))  # the partition does not depend on config order
    parts = [[p.name for p in shard_part(planned, i, 4)] for i in range(4)]
    assert sum(parts, []) == names
    assert [len(p) for p in parts] == [2, 3, 2, 3]
    assert parts == [[p.name for p in shard_part(_planned(names), i, 4)] for i in range(4)]


def test_more_shards_than_scopes_leaves_some_shards_empty() -> None:
    parts = [shard_part(_planned(["a", "b"]), i, 5) for i in range(5)]
    assert sum(len(p) for p in parts) == 2 and parts.count([]) == 3
    with pytest.raises(ValueError, match="counts from 0"):
        shard_part(_planned(["a"]), 5, 5)


def _stubbed_clients() -> tuple[ecr.AwsClients, Stubber]:
    session = boto3.Session(aws_access_key_id="stub", aws_secret_access_key="stub", region_name="ap-east-1")
    clients = ecr.AwsClients(ecr=session.client("ecr"), iam=session.client("iam"),
                             cloudtrail=session.client("cloudtrail"), probe=session.client("ecr"))
    return clients, Stubber(clients.probe)


def test_a_region_that_refuses_the_credentials_is_one_error_for_its_scope() -> None:
    clients, probe = _stubbed_clients()
    probe.add_client_error("describe_registry", "UnrecognizedClientException",
                           "The security token included in the request is invalid.", 400)
    scope = expand(_target(regions=["ap-east-1", "us-east-1"], role_arns=[ROLE_A]))[0]
    counter = RequestCounter()
    with probe:
        facts = ecr.collect_with_clients(scope, CollectOptions(concurrency=1), clients, counter=counter)
    assert counter.total == 1  # nothing else was asked
    assert {f.state for f in facts.facts.values()} == {FactState.ERROR}
    detail = facts.facts[REPOSITORIES].detail or ""
    assert "ap-east-1 refused the credentials" in detail and "UnrecognizedClientException" in detail


def test_an_accounts_other_regions_point_to_where_iam_is_judged() -> None:
    scope = expand(_target(regions=["us-east-1", "eu-west-1"], role_arns=[ROLE_A]))[1]
    fact = ecr._credentials_fact(scope, iam=None)  # type: ignore[arg-type]  # no IAM call is made
    assert fact.state is FactState.MANAGED
    assert "judged in scope org-ecr/111111111111/us-east-1" in (fact.detail or "")
    assert CREDENTIALS == "credentials"


def test_an_account_id_that_is_not_twelve_digits_is_refused_not_put_into_an_arn() -> None:
    client, stub = _organizations()
    forged = _account("111111111111") | {"Id": "111111111111:role/x\x1b[2J"}
    stub.add_response("list_accounts", {"Accounts": [forged]}, {})
    target = _target(region="us-east-1", organization={"role_name": "RegguardAudit"})
    with stub, pytest.raises(ScopeError, match=r"not 12 digits: 111111111111:role/x\\x1b\[2J$"):
        organization_accounts(target, 5.0, client=client)
