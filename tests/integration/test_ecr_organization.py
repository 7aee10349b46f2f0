"""ECR across an AWS Organization, against a real moto server whose STS refuses
what AWS refuses (`sandbox.moto_strict`): the organization is listed, the audit
role is assumed in each account (once per account, not per region), each
(account, region) is its own scope with its own repositories, and the account
without the role is an `error` for its scopes while every other is audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audits.collectors import ecr_sessions
from audits.config import parse_config
from audits.engine import run_audit
from audits.model import CREDENTIALS, REPOSITORIES, FactState, Status
from sandbox.aws_org_estate import OrgEstate, seed_organization
from sandbox.moto_server import MOTO_CREDENTIALS, MotoServer, start_moto_server

REGIONS = ("us-east-1", "eu-west-1")


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrgEstate]:
    with pytest.MonkeyPatch.context() as env:
        for key, value in MOTO_CREDENTIALS.items():
            env.setenv(key, value)
        server: MotoServer = start_moto_server(tmp_path_factory.mktemp("moto-org"), strict_sts=True)
        try:
            yield seed_organization(server.url, accounts=3, regions=REGIONS, repositories_per_scope=2)
        finally:
            server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in MOTO_CREDENTIALS.items():
        monkeypatch.setenv(key, value)


def _config(org: OrgEstate, **target: Any) -> Any:
    entry = {"name": "org-ecr", "kind": "ecr", "regions": list(REGIONS), "endpoint_url": org.endpoint_url, **target}
    return parse_config({"environment": "prod", "targets": [entry]}, Path("regguard.yaml"))


def _assumed_roles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AssumeRole the collector makes (the real call still happens)."""
    calls: list[str] = []
    real = ecr_sessions._assume

    def spy(access: Any, target: Any, role_arn: str, *args: Any) -> Any:
        calls.append(role_arn)
        return real(access, target, role_arn, *args)

    monkeypatch.setattr(ecr_sessions, "_assume", spy)
    ecr_sessions.ROLE_SESSIONS.clear()
    return calls


def test_an_organization_is_audited_scope_by_scope_through_assumed_roles(
    org: OrgEstate, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assumed = _assumed_roles(monkeypatch)
    run = run_audit(_config(org, organization={"role_name": org.role_name}))

    expected = [f"org-ecr/{a}/{r}" for a in sorted(org.account_ids) for r in REGIONS]
    assert [t.name for t in run.result.targets] == expected
    assert sorted(assumed) == sorted(org.role_arn(a) for a in org.account_ids)  # once per account

    for account in org.accounts_with_role:
        for region in REGIONS:
            facts = run.facts[f"org-ecr/{account}/{region}"].facts
            listed = sorted(r.name for r in facts[REPOSITORIES].value)
            assert listed == sorted(org.repositories[(account, region)]), (account, region)
        # IAM is read in the account's first region and pointed to from the other
        assert run.facts[f"org-ecr/{account}/{REGIONS[0]}"].facts[CREDENTIALS].state is FactState.OK
        assert run.facts[f"org-ecr/{account}/{REGIONS[1]}"].facts[CREDENTIALS].state is FactState.MANAGED


def test_an_account_without_the_role_is_an_error_for_its_scopes_only(
    org: OrgEstate, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _assumed_roles(monkeypatch)
    run = run_audit(_config(org, organization={"role_name": org.role_name}))
    (missing,) = org.accounts_without_role
    for region in REGIONS:
        scope = f"org-ecr/{missing}/{region}"
        # every rule that needs the registry says error (RG-FIT-001 judges the config's use cases)
        mine = [f for f in run.result.findings if f.target == scope and f.rule != "RG-FIT-001"]
        assert mine and {f.status for f in mine} == {Status.ERROR}
        assert all(f"cannot assume {org.role_arn(missing)}: AccessDenied" in f.message for f in mine)
        assert not next(t for t in run.result.targets if t.name == scope).complete
    audited = {f.target for f in run.result.findings if f.status in (Status.PASS, Status.FAIL)}
    assert audited == {f"org-ecr/{a}/{r}" for a in org.accounts_with_role for r in REGIONS}
    # a repository of a member account is judged per repository, in its own scope
    member = org.accounts_with_role[-1]
    tag_rule = {(f.target, f.resource): f.status for f in run.result.findings if f.rule == "RG-TAG-002"}
    for name in org.repositories[(member, REGIONS[1])]:
        assert (f"org-ecr/{member}/{REGIONS[1]}", name) in tag_rule


def test_excluded_accounts_and_explicit_role_arns(org: OrgEstate, aws_env: None) -> None:
    first, second = org.member_account_ids[:2]
    excluded = run_audit(_config(org, organization={"role_name": org.role_name,
                                                    "exclude_accounts": [org.management_account_id, second]}))
    assert {t.name.split("/")[1] for t in excluded.result.targets} == set(org.account_ids) - {
        org.management_account_id, second}
    listed = run_audit(_config(org, regions=["eu-west-1"], role_arns=[org.role_arn(first)]))
    assert [t.name for t in listed.result.targets] == [f"org-ecr/{first}/eu-west-1"]
    assert listed.result.targets[0].complete, listed.result.targets[0].errors


def test_an_organization_that_cannot_be_listed_is_one_error_target(org: OrgEstate, aws_env: None) -> None:
    run = run_audit(_config(org, organization={"role_name": org.role_name}, endpoint_url="http://127.0.0.1:9"))
    (only,) = run.result.targets
    assert only.name == "org-ecr" and not only.complete
    messages = {f.message for f in run.result.findings}
    assert messages and all("cannot list the organization's accounts" in m for m in messages)
