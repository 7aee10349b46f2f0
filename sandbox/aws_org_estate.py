"""A multi-account AWS estate on one moto server: an Organization whose accounts hold
ECR repositories in several regions, for the multi-account tests and the bench.

What `seed_organization` creates:

* the Organization, from moto's default account 123456789012 (the management
  account), and `accounts` member accounts (organizations:CreateAccount);
* in the management account and every member except the last
  `missing_role_accounts`, the audit role (`role_name`) with the trust and
  inline read policies of `components.ecr_audit_role`, trusting the management
  account (bound to `external_id` when given); the others have only the
  OrganizationAccountAccessRole moto creates with every account, so assuming the
  audit role there fails (under `sandbox.moto_strict`) as it does on AWS;
* per (account, region), `repositories_per_scope` repositories `team{k}/svc-{i:03d}`
  of mixed compliance: even ones IMMUTABLE with a lifecycle policy and release tags,
  odd ones MUTABLE with `latest` and no lifecycle policy; every fourth an
  account-only pull policy, every fourth (offset by one) a `*` pull policy;
* per account, a multi-region CloudTrail trail, logging in every other account;
* in the first member account with the role, an IAM user `ci-pusher` with an
  inline ECR push policy and an access key.

Seeding acts inside an account with moto's `x-moto-account-id` header (added by a
botocore `before-sign` hook): that is moto's way of switching accounts and is used
for seeding only; what is audited must reach member accounts through AssumeRole.
The work runs in a bounded thread pool (moto serves each request on its own thread).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from botocore.config import Config

from components.ecr_audit_role import (
    AUDIT_POLICY_NAME,
    DEFAULT_ROLE_NAME,
    audit_policy_document,
    trust_policy_document,
)
from sandbox.ecr_estate import (
    ACCOUNT_ID,
    LIFECYCLE_POLICY,
    PUSH_POLICY,
    EcrEstate,
    aws_session,
    create_trail,
    image_manifest,
    pull_policy,
    start_ecr_estate,
)
from sandbox.moto_server import MOTO_CREDENTIALS, MotoServer, OnMotoServer, start_moto_server
from sandbox.process import StopsOnExit, stop_each

MANAGEMENT_ACCOUNT_ID = ACCOUNT_ID  # moto's default account
SEED_THREADS = 8
PUSH_USER = "ci-pusher"
TEAMS = 4

Scope = tuple[str, str]  # (account id, region)


@dataclass(frozen=True)
class OrgEstate:
    """What `seed_organization` made; accounts are 12-digit ids, members in creation order."""

    endpoint_url: str
    organization_id: str
    management_account_id: str
    member_account_ids: tuple[str, ...]
    accounts_without_role: tuple[str, ...]
    regions: tuple[str, ...]
    role_name: str
    repositories: Mapping[Scope, tuple[str, ...]]
    push_user_account_id: str | None

    @property
    def account_ids(self) -> tuple[str, ...]:
        """Every account of the organization, management first."""
        return (self.management_account_id, *self.member_account_ids)

    @property
    def accounts_with_role(self) -> tuple[str, ...]:
        return tuple(a for a in self.account_ids if a not in self.accounts_without_role)

    @property
    def total_repositories(self) -> int:
        return sum(len(names) for names in self.repositories.values())

    def role_arn(self, account_id: str) -> str:
        return f"arn:aws:iam::{account_id}:role/{self.role_name}"


def seed_organization(
    endpoint_url: str,
    *,
    accounts: int,
    regions: Sequence[str],
    repositories_per_scope: int,
    images_per_repository: int = 1,
    missing_role_accounts: int = 1,
    role_name: str = DEFAULT_ROLE_NAME,
    external_id: str | None = None,
    random_seed: int | None = 12,
) -> OrgEstate:
    """Create the estate described in the module docstring and return what was made.
    `random_seed` seeds moto's generator first (its documented `/moto-api/seed`),
    so the same call makes the same account ids — and the same scope names, which
    a second demo compares with the first; None leaves them random."""
    if not regions:
        raise ValueError("regions: give at least one region")
    if not 0 <= missing_role_accounts <= accounts:
        raise ValueError(f"missing_role_accounts: expected 0..{accounts}")
    clients = _Clients(endpoint_url, regions[0], threads=SEED_THREADS)
    if random_seed is not None:
        _seed_moto(endpoint_url, random_seed)
    organization_id, members = _create_organization(clients.organizations(), accounts)
    without_role = tuple(members[len(members) - missing_role_accounts :])
    all_accounts = (MANAGEMENT_ACCOUNT_ID, *members)
    with_role = [a for a in all_accounts if a not in without_role]
    push_account = next((a for a in members if a in with_role), None)
    trust = trust_policy_document([f"arn:aws:iam::{MANAGEMENT_ACCOUNT_ID}:root"], external_id=external_id)
    names = [_repository_name(i) for i in range(repositories_per_scope)]
    scopes = [(account, region) for account in all_accounts for region in regions]

    jobs: list[Callable[[], None]] = []
    for index, account in enumerate(all_accounts):
        iam, s3, cloudtrail = clients.account(account)
        if account in with_role:
            jobs.append(partial(_create_audit_role, iam, role_name, trust))
        jobs.append(partial(_create_trail, account, s3, cloudtrail, regions[0], logging=index % 2 == 0))
        if account == push_account:
            jobs.append(partial(_create_push_user, iam))
    for account, region in scopes:
        ecr = clients.ecr(account, region)
        jobs.extend(
            partial(_seed_repository, ecr, account, i, name, images_per_repository) for i, name in enumerate(names)
        )
    _run_all(jobs, SEED_THREADS)

    return OrgEstate(
        endpoint_url=endpoint_url,
        organization_id=organization_id,
        management_account_id=MANAGEMENT_ACCOUNT_ID,
        member_account_ids=tuple(members),
        accounts_without_role=without_role,
        regions=tuple(regions),
        role_name=role_name,
        repositories={scope: tuple(names) for scope in scopes},
        push_user_account_id=push_account,
    )


class _Clients:
    """boto3 clients acting inside one account, made on the calling thread (a boto3
    Session is not thread-safe; its clients are) and shared by the seeding threads."""

    def __init__(self, endpoint_url: str, home_region: str, *, threads: int) -> None:
        self._endpoint_url = endpoint_url
        self._home_region = home_region
        self._session = aws_session(home_region)
        self._config = Config(max_pool_connections=threads, retries={"mode": "standard", "max_attempts": 3})
        self._made: dict[tuple[str, str, str], Any] = {}

    def organizations(self) -> Any:
        return self._client("organizations", MANAGEMENT_ACCOUNT_ID, self._home_region)

    def account(self, account_id: str) -> tuple[Any, Any, Any]:
        """IAM, S3 and CloudTrail clients inside `account_id` (in the home region)."""
        return tuple(self._client(s, account_id, self._home_region) for s in ("iam", "s3", "cloudtrail"))  # type: ignore[return-value]

    def ecr(self, account_id: str, region: str) -> Any:
        return self._client("ecr", account_id, region)

    def _client(self, service: str, account_id: str, region: str) -> Any:
        key = (service, account_id, region)
        if key not in self._made:
            client = self._session.client(
                service, region_name=region, endpoint_url=self._endpoint_url, config=self._config
            )
            client.meta.events.register("before-sign.*.*", _in_account(account_id))
            self._made[key] = client
        return self._made[key]


def _seed_moto(endpoint_url: str, seed: int) -> None:
    """POST /moto-api/seed?a=N: moto's ids (accounts, organization) repeat from here on."""
    request = urllib.request.Request(f"{endpoint_url}/moto-api/seed?a={seed}", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the loopback moto server
        answer.read()


def _in_account(account_id: str) -> Callable[..., None]:
    """A `before-sign` hook sending the request as `account_id` (moto's switch)."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account_id

    return add_header


def _run_all(jobs: Iterable[Callable[[], None]], threads: int) -> None:
    """Run every job in a bounded pool; the first failure is raised once all have ended."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures: list[Future[None]] = [pool.submit(job) for job in jobs]
    for future in futures:
        future.result()


def _create_organization(organizations: Any, accounts: int) -> tuple[str, list[str]]:
    organization_id = organizations.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    members = []
    for n in range(accounts):
        status = organizations.create_account(AccountName=f"member-{n:02d}", Email=f"member-{n:02d}@example.com")
        members.append(status["CreateAccountStatus"]["AccountId"])
    return organization_id, members


def _create_audit_role(iam: Any, role_name: str, trust: Mapping[str, Any]) -> None:
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=3600)
    iam.put_role_policy(
        RoleName=role_name, PolicyName=AUDIT_POLICY_NAME, PolicyDocument=json.dumps(audit_policy_document())
    )


def _create_trail(account_id: str, s3: Any, cloudtrail: Any, region: str, *, logging: bool) -> None:
    # S3 bucket names are global across accounts (in moto too), so each account's is its own.
    name = create_trail(s3, cloudtrail, bucket=f"regguard-trail-{account_id}", region=region)
    if logging:
        cloudtrail.start_logging(Name=name)


def _create_push_user(iam: Any) -> None:
    iam.create_user(UserName=PUSH_USER)
    iam.put_user_policy(UserName=PUSH_USER, PolicyName="ecr-push", PolicyDocument=json.dumps(PUSH_POLICY))
    iam.create_access_key(UserName=PUSH_USER)


def _repository_name(index: int) -> str:
    return f"team{index % TEAMS}/svc-{index:03d}"


def _seed_repository(ecr: Any, account_id: str, index: int, name: str, images: int) -> None:
    compliant = index % 2 == 0
    ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE" if compliant else "MUTABLE")
    if compliant:
        ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(LIFECYCLE_POLICY))
    policy = _repository_policy(index, account_id)
    if policy is not None:
        ecr.set_repository_policy(repositoryName=name, policyText=json.dumps(policy))
    tags = [f"v1.{k}.0" for k in range(images)] if compliant else ["latest", *(f"build-{k}" for k in range(1, images))]
    for tag in tags:
        manifest = image_manifest(f"{account_id}/{ecr.meta.region_name}/{name}:{tag}")
        ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag=tag)


def _repository_policy(index: int, account_id: str) -> dict[str, Any] | None:
    """Every fourth repository lets its own account pull, the next one anyone."""
    if index % 4 == 0:
        return pull_policy({"AWS": f"arn:aws:iam::{account_id}:root"})
    if index % 4 == 1:
        return pull_policy("*")
    return None


ORG_TARGET_NAME = "aws-org"
ORG_REGIONS = ("us-east-1", "eu-west-1")
# The demo's organization: the management account and ORG_MEMBER_ACCOUNTS members, the last
# ORG_MISSING_ROLE_ACCOUNTS of them without the audit role, ORG_REPOSITORIES_PER_SCOPE repositories
# per (account, region).
ORG_MEMBER_ACCOUNTS = 3
ORG_REPOSITORIES_PER_SCOPE = 2
ORG_MISSING_ROLE_ACCOUNTS = 1


@dataclass
class OrgEstateService(OnMotoServer):
    """A strict-STS moto server seeded with an organization, as one sandbox
    service (`name`, `targets`, `env`, `pids`, `stop`): its target audits every
    account of the organization through the audit role, in every seeded region."""

    server: MotoServer
    estate: OrgEstate
    name: str = ORG_TARGET_NAME

    @property
    def targets(self) -> list[dict[str, Any]]:
        return [
            {
                "name": self.name,
                "kind": "ecr",
                "regions": list(self.estate.regions),
                "organization": {"role_name": self.estate.role_name},
                "endpoint_url": self.server.url,
            }
        ]

    @property
    def env(self) -> dict[str, str]:
        """moto's dummy credentials: the management account's (not secrets)."""
        return dict(MOTO_CREDENTIALS)


def start_org_estate(workdir: Path, *, detach: bool = False) -> OrgEstateService:
    """Start strict-STS moto under `workdir/aws-org`, seed the organization and
    return the running service; the server is stopped again if seeding fails."""
    server = start_moto_server(workdir / "aws-org", detach=detach, strict_sts=True)
    try:
        estate = seed_organization(
            server.url,
            accounts=ORG_MEMBER_ACCOUNTS,
            regions=ORG_REGIONS,
            repositories_per_scope=ORG_REPOSITORIES_PER_SCOPE,
            missing_role_accounts=ORG_MISSING_ROLE_ACCOUNTS,
        )
    except BaseException:
        server.stop()
        raise
    return OrgEstateService(server=server, estate=estate)


@dataclass
class AwsEstates(StopsOnExit):
    """The demo's AWS side: the single-account ECR estate and the organization
    estate, each on its own moto server (the organization's management account
    is moto's default account, which the ECR estate already fills), as one
    sandbox service for the kind table."""

    parts: list[EcrEstate | OrgEstateService]
    name: str = "aws"

    @property
    def targets(self) -> list[dict[str, Any]]:
        return [t for part in self.parts for t in part.targets]

    @property
    def env(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for part in self.parts:
            merged.update(part.env)
        return merged

    @property
    def pids(self) -> list[int]:
        return [pid for part in self.parts for pid in part.pids]

    def alive(self) -> bool:
        return all(part.alive() for part in self.parts)

    def stop(self) -> None:
        """Stop every part (last started first), each even if another fails."""
        stop_each(self.parts)


def start_aws_estates(workdir: Path, *, detach: bool = False) -> AwsEstates:
    """Start the ECR estate and the organization estate; if the second fails, stop the first."""
    ecr = start_ecr_estate(workdir, detach=detach)
    try:
        return AwsEstates([ecr, start_org_estate(workdir, detach=detach)])
    except BaseException:
        ecr.stop()
        raise
