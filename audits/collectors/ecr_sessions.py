"""How ECR scopes reach AWS: the caller's own credentials, or a role assumed in another account.

Every scope's clients come from one boto3 session per credential chain (the
profile and the AWS_* variables that feed it), so botocore loads the ECR, IAM
and CloudTrail models once per process instead of once per scope (about 75 ms
of CPU and several MB each); a scope in another account passes its assumed
role's keys to the client it makes.

A scope with `assume_role_arn` is audited with temporary credentials from STS
AssumeRole (its session name and external id from the target). The credentials
are shared by every scope of that account in this process — the account's
regions, run one after another or at once, assume the role once — and renewed
when fewer than the scope's deadline plus a margin remain. A refusal (the role
is missing, or its trust policy does not name the auditor) is remembered too:
the account's other regions report the same reason without asking again.

STS is called in the partition's home region, always enabled, so a disabled
opt-in region fails at ECR with its own reason instead of at AssumeRole.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from audits.collectors.base import RequestCounter
from audits.collectors.ecr_calls import attempt, count_requests
from audits.collectors.ecr_scopes import PARTITION_HOME_REGION
from audits.targets import EcrScope, EcrTarget

SESSION_SECONDS = 3600  # what every role allows (MaxSessionDuration is at least one hour)
RENEW_MARGIN_S = 300.0


class AssumeRoleFailed(Exception):
    """The scope's role could not be assumed; the message says which and why."""


@dataclass(frozen=True)
class _Assumed:
    credentials: dict[str, Any] | None  # AccessKeyId, SecretAccessKey, SessionToken
    expires_at: float  # time.monotonic() deadline
    error: str | None = None


# What the default credential chain reads: a change to any of them is another caller.
CHAIN_INPUTS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_EC2_METADATA_DISABLED",
)


@dataclass(frozen=True)
class ScopeAccess:
    """How one scope's clients are made: from the shared session of its
    credential chain, in the scope's region, with the assumed role's keys when
    the scope is in another account. boto3 sessions are not thread-safe, so
    clients are made under the session's lock (the clients themselves are)."""

    session: boto3.Session
    lock: threading.Lock
    region: str
    credentials: Mapping[str, str] | None = None

    def client(self, service: str, **options: Any) -> Any:
        keys: dict[str, str] = {}
        if self.credentials is not None:
            keys = {
                "aws_access_key_id": self.credentials["AccessKeyId"],
                "aws_secret_access_key": self.credentials["SecretAccessKey"],
                "aws_session_token": self.credentials["SessionToken"],
            }
        make: Any = self.session.client  # typed per service name; `service` is any of them
        with self.lock:
            return make(service, region_name=self.region, **keys, **options)


class RoleSessions:
    """The shared session per credential chain, and assumed-role credentials per
    (chain, endpoint, role, session name, external id); thread-safe; one
    AssumeRole per key while the credentials last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._assumed: dict[tuple[str, ...], _Assumed] = {}
        self._sessions: dict[tuple[str, ...], tuple[boto3.Session, threading.Lock]] = {}

    def access(self, target: EcrTarget, timeout: float, counter: RequestCounter) -> ScopeAccess:
        """How to make the clients auditing `target` in its region."""
        chain = _chain(target.profile)
        session, lock = self._session(chain, target.profile)
        role_arn = target.assume_role_arn if isinstance(target, EcrScope) else None
        if role_arn is None:
            return ScopeAccess(session, lock, target.scope_region())
        external_id = external_id_of(target)
        key = (*chain, target.endpoint_url or "", role_arn, target.session_name, external_id or "")
        with self._lock:
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            assumed = self._assumed.get(key)
            if assumed is None or assumed.expires_at - time.monotonic() < target.deadline + RENEW_MARGIN_S:
                sts = ScopeAccess(session, lock, PARTITION_HOME_REGION[target.partition])
                assumed = _assume(sts, target, role_arn, external_id, timeout, counter)
                self._assumed[key] = assumed
        if assumed.credentials is None:
            raise AssumeRoleFailed(f"cannot assume {role_arn}: {assumed.error}")
        return ScopeAccess(session, lock, target.scope_region(), assumed.credentials)

    def _session(self, chain: tuple[str, ...], profile: str | None) -> tuple[boto3.Session, threading.Lock]:
        with self._lock:
            if chain not in self._sessions:
                self._sessions[chain] = (boto3.Session(profile_name=profile), threading.Lock())
            return self._sessions[chain]

    def clear(self) -> None:
        with self._lock:
            self._assumed.clear()
            self._sessions.clear()


def _chain(profile: str | None) -> tuple[str, ...]:
    return (profile or "", *(os.environ.get(name, "") for name in CHAIN_INPUTS))


def external_id_of(target: EcrTarget) -> str | None:
    if target.external_id_env is None:
        return target.external_id
    value = os.environ.get(target.external_id_env)
    if not value:
        raise AssumeRoleFailed(f"external_id_env {target.external_id_env} is not set in the environment")
    return value


def _assume(
    access: ScopeAccess, target: EcrTarget, role_arn: str, external_id: str | None, timeout: float,
    counter: RequestCounter,
) -> _Assumed:
    """One AssumeRole. AWS's refusal is kept (it will not change within an
    audit); a network failure is kept only briefly, so a later scope retries."""
    sts = access.client(
        "sts",
        endpoint_url=target.endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=timeout, read_timeout=timeout),
    )
    count_requests(sts, "sts", counter)
    extra: dict[str, Any] = {"ExternalId": external_id} if external_id else {}
    asked_at = time.monotonic()  # the credentials' hour counts from before the answer
    answer = attempt(
        lambda: sts.assume_role(
            RoleArn=role_arn, RoleSessionName=target.session_name, DurationSeconds=SESSION_SECONDS, **extra
        )
    )
    if answer.value is None:
        transient = isinstance(answer.error_exc, BotoCoreError)
        return _Assumed(None, asked_at + (0.0 if transient else SESSION_SECONDS), answer.error or "no answer")
    return _Assumed(dict(answer.value["Credentials"]), asked_at + SESSION_SECONDS)


ROLE_SESSIONS = RoleSessions()
"""The process's cache: every scope of an audit (and of its shards run in this process) shares it."""
