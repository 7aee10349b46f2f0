"""boto3 sessions for ECR scopes: the caller's own, or a role assumed in another account.

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
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from audits.collectors.base import RequestCounter
from audits.collectors.ecr_calls import attempt, count_requests
from audits.targets import EcrScope, EcrTarget

STS_REGION = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1"}
SESSION_SECONDS = 3600  # what every role allows (MaxSessionDuration is at least one hour)
RENEW_MARGIN_S = 300.0


class AssumeRoleFailed(Exception):
    """The scope's role could not be assumed; the message says which and why."""


@dataclass(frozen=True)
class _Assumed:
    credentials: dict[str, Any] | None  # AccessKeyId, SecretAccessKey, SessionToken
    expires_at: float  # time.monotonic() deadline
    error: str | None = None


class RoleSessions:
    """Assumed-role credentials per (profile, endpoint, role, session name,
    external id), thread-safe; one AssumeRole per key while they last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._assumed: dict[tuple[str, ...], _Assumed] = {}

    def session(self, target: EcrTarget, timeout: float, counter: RequestCounter) -> boto3.Session:
        """The boto3 session auditing `target` in its region."""
        role_arn = target.assume_role_arn if isinstance(target, EcrScope) else None
        if role_arn is None:
            return boto3.Session(profile_name=target.profile, region_name=target.region)
        external_id = external_id_of(target)
        key = (target.profile or "", target.endpoint_url or "", role_arn, target.session_name, external_id or "")
        with self._lock:
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            assumed = self._assumed.get(key)
            if assumed is None or assumed.expires_at - time.monotonic() < target.deadline + RENEW_MARGIN_S:
                assumed = _assume(target, role_arn, external_id, timeout, counter)
                self._assumed[key] = assumed
        if assumed.credentials is None:
            raise AssumeRoleFailed(f"cannot assume {role_arn}: {assumed.error}")
        creds = assumed.credentials
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=target.region,
        )

    def clear(self) -> None:
        with self._lock:
            self._assumed.clear()


def external_id_of(target: EcrTarget) -> str | None:
    if target.external_id_env is None:
        return target.external_id
    value = os.environ.get(target.external_id_env)
    if not value:
        raise AssumeRoleFailed(f"external_id_env {target.external_id_env} is not set in the environment")
    return value


def _assume(
    target: EcrTarget, role_arn: str, external_id: str | None, timeout: float, counter: RequestCounter
) -> _Assumed:
    """One AssumeRole. AWS's refusal is kept (it will not change within an
    audit); a network failure is kept only briefly, so a later scope retries."""
    sts = boto3.Session(profile_name=target.profile).client(
        "sts",
        region_name=STS_REGION[target.partition],
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
