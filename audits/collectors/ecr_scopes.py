"""An ECR target's (account, region) scopes: what the engine audits, one by one.

A target names its regions (`region`, `regions: [..]` or `regions: all`) and its
accounts (none: the caller's own; `role_arns`; or `organization`, listed with
AWS Organizations' ListAccounts from the management or a delegated
administrator account). `expand` turns it into one `EcrScope` per (account,
region), each an ordinary target to the engine, the shards and the reports:

* `regions: all` comes from botocore's endpoint data for the partition: no call;
* the organization costs one ListAccounts call per 20 accounts, made once per
  audit process (every shard lists it again, so the partition stays the same as
  long as the organization does);
* IAM is account-wide, so only one region of each account judges its IAM users
  and keys (`iam_scope`) — the partition's home region (us-east-1 for aws),
  always enabled, when the target has it, else its first region; the account's
  other regions say where.

A target that needs no expansion (one region, no roles) is returned as it is,
under its own name, so single-account configs keep their history.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from audits.collectors.ecr_calls import attempt
from audits.model import SCOPE_SEPARATOR
from audits.scopes import ScopeError
from audits.targets import EcrScope, EcrTarget
from audits.untrusted import terminal_text

MAX_ORGANIZATION_PAGES = 1_000  # 20 accounts a page: 20,000 accounts, above Organizations' own quota
# Each partition's home region, which an account cannot disable: where Organizations
# and STS are called and where IAM is judged.
PARTITION_HOME_REGION = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-northwest-1"}

_ACCOUNT_ID = re.compile(r"\d{12}")

Progress = Callable[[str, int, int | None], None]


def expand(target: EcrTarget, timeout: float = 10.0, progress: Progress | None = None) -> list[EcrTarget]:
    """The scopes of `target`, in a stable order (account, then the target's region order)."""
    regions = target_regions(target)
    accounts = _accounts(target, timeout, progress)
    if accounts is None and len(regions) == 1 and target.region is not None:
        return [target]
    scopes: list[EcrTarget] = []
    pairs: list[tuple[str | None, str | None]] = [(None, None)]
    if accounts is not None:
        pairs = list(accounts)
    for account, role_arn in pairs:
        home = _scope_name(target, account, iam_region(target, regions))
        for region in regions:
            name = _scope_name(target, account, region)
            scopes.append(_scope(target, name, region, role_arn, None if name == home else home))
    return scopes


def target_regions(target: EcrTarget) -> list[str]:
    """The target's regions in its own order; `all` is the partition's ECR
    regions from botocore's data (sorted), no call made."""
    if target.region is not None:
        return [target.region]
    if target.regions == "all":
        return sorted(boto3.session.Session().get_available_regions("ecr", partition_name=target.partition))
    return list(dict.fromkeys(target.regions or ()))


def iam_region(target: EcrTarget, regions: list[str]) -> str:
    """Where an account's IAM is judged: a region that cannot be disabled if the
    target has it (with `regions: all` the first one in order is an opt-in region)."""
    home = PARTITION_HOME_REGION[target.partition]
    return home if home in regions else regions[0]


def role_account(role_arn: str) -> str:
    """The account id in `arn:aws:iam::<account>:role/<name>`."""
    return role_arn.split(":")[4]


def _accounts(target: EcrTarget, timeout: float, progress: Progress | None) -> list[tuple[str, str]] | None:
    """(account id, role ARN) pairs, or None when no role is assumed."""
    if target.role_arns:
        return sorted({(role_account(arn), arn) for arn in target.role_arns})
    if target.organization is None:
        return None
    excluded = set(target.organization.exclude_accounts)
    listed = [a for a in organization_accounts(target, timeout, progress) if a not in excluded]
    partition = target.partition
    return [(account, f"arn:{partition}:iam::{account}:role/{target.organization.role_name}") for account in listed]


def organization_accounts(
    target: EcrTarget, timeout: float, progress: Progress | None = None, client: Any = None
) -> list[str]:
    """The ids of the organization's active accounts, sorted. Raises ScopeError
    with AWS's reason when the caller may not list them. `client` replaces the
    Organizations client (tests attach a botocore Stubber: moto does not page)."""
    client = client or organizations_client(target, timeout)
    listed = attempt(lambda: _list_active_accounts(client, progress))
    if listed.value is None:
        raise ScopeError(
            "cannot list the organization's accounts (organizations:ListAccounts, from the management or a "
            f"delegated administrator account): {listed.error}"
        )
    return listed.value


def organizations_client(target: EcrTarget, timeout: float) -> Any:
    session = boto3.Session(profile_name=target.profile)
    return session.client(
        "organizations",
        region_name=PARTITION_HOME_REGION[target.partition],
        endpoint_url=target.endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=timeout, read_timeout=timeout),
    )


def _list_active_accounts(client: Any, progress: Progress | None) -> list[str]:
    paginator = client.get_paginator("list_accounts")
    accounts: list[str] = []
    for page_number, page in enumerate(paginator.paginate(), 1):
        accounts.extend(_account_id(a) for a in page.get("Accounts", []) if _active(a))
        if progress is not None:
            progress("organization accounts", len(accounts), None)
        if page_number >= MAX_ORGANIZATION_PAGES:
            raise ScopeError(f"the organization lists more than {MAX_ORGANIZATION_PAGES} pages of accounts")
    return sorted(set(accounts))


def _account_id(account: dict[str, object]) -> str:
    """The account's id, which becomes part of a role ARN and a scope name: 12 digits or nothing."""
    account_id = str(account.get("Id", ""))
    if not _ACCOUNT_ID.fullmatch(account_id):
        raise ScopeError(f"ListAccounts answered an account id that is not 12 digits: {terminal_text(account_id)}")
    return account_id


def _active(account: dict[str, object]) -> bool:
    """ACTIVE by the newer `State` field when present, else the older `Status`
    (suspended and closing accounts cannot assume roles)."""
    state = account.get("State") or account.get("Status")
    return state == "ACTIVE"


def _scope_name(target: EcrTarget, account: str | None, region: str) -> str:
    return SCOPE_SEPARATOR.join(part for part in (target.name, account, region) if part)


def _scope(target: EcrTarget, name: str, region: str, role_arn: str | None, iam_scope: str | None) -> EcrScope:
    fields = target.model_dump(exclude={"region", "regions", "role_arns", "organization"})
    return EcrScope.model_validate(
        {
            **fields,
            "name": name,
            "region": region,
            "assume_role_arn": role_arn,
            "iam_scope": iam_scope,
        }
    )
