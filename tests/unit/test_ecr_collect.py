"""The ECR collector end to end on stubbed or in-process AWS: pagination
(botocore Stubber, two pages each — moto ignores nextToken), throttling with
adaptive retries (a real throttling response injected below moto), partial
failures, an unreachable endpoint and request counting."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from moto import mock_aws

from audits.collectors import ecr
from audits.collectors.base import CollectOptions, RequestCounter
from audits.model import (
    ANONYMOUS_ACCESS,
    CREDENTIALS,
    ENDPOINT,
    LOGGING,
    PLAIN_HTTP,
    REPOSITORIES,
    RETENTION,
    TLS,
    FactState,
)
from audits.targets import EcrTarget
from sandbox.ecr_estate import push_images
from sandbox.moto_server import MOTO_CREDENTIALS
from sandbox.process import free_port

D = ["sha256:" + c * 64 for c in "abcd"]
LIFECYCLE = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 5},
                "action": {"type": "expire"},
            }
        ]
    }
)
ACCOUNT_ONLY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "ecr:*"}],
    }
)
PUSHED = datetime(2026, 3, 1, tzinfo=UTC)


def _target(**extra: Any) -> EcrTarget:
    return EcrTarget(name="core", kind="ecr", region="us-east-1", **extra)


def _session() -> boto3.Session:
    return boto3.Session(aws_access_key_id="stub", aws_secret_access_key="stub", region_name="us-east-1")


def _repo(name: str) -> dict[str, Any]:
    return {
        "repositoryName": name,
        "repositoryUri": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}",
        "imageTagMutability": "IMMUTABLE",
        "imageScanningConfiguration": {"scanOnPush": True},
        "encryptionConfiguration": {"encryptionType": "AES256"},
    }


def test_pagination_partial_failures_and_request_count() -> None:
    session = _session()
    clients = ecr.AwsClients(
        ecr=session.client("ecr"),
        iam=session.client("iam"),
        cloudtrail=session.client("cloudtrail"),
        probe=session.client("ecr"),
    )
    probe, registry, trail, iam = (
        Stubber(clients.probe),
        Stubber(clients.ecr),
        Stubber(clients.cloudtrail),
        Stubber(clients.iam),
    )
    probe.add_response("describe_registry", {"registryId": "123456789012", "replicationConfiguration": {"rules": []}})
    # two pages of repositories, nextToken carried over
    registry.add_response(
        "describe_repositories", {"repositories": [_repo("prod/api")], "nextToken": "r1"}, {"maxResults": 1000}
    )
    registry.add_response(
        "describe_repositories", {"repositories": [_repo("dev/x")]}, {"maxResults": 1000, "nextToken": "r1"}
    )
    registry.add_response(
        "get_registry_scanning_configuration", {"scanningConfiguration": {"scanType": "BASIC", "rules": []}}
    )
    # prod/api: two pages of images
    registry.add_response(
        "describe_images",
        {"imageDetails": [{"imageDigest": D[0], "imageTags": ["v1.0.0"], "imagePushedAt": PUSHED}], "nextToken": "i1"},
        {"repositoryName": "prod/api", "maxResults": 1000},
    )
    registry.add_response(
        "describe_images",
        {"imageDetails": [{"imageDigest": D[1], "imageTags": ["v1.1.0"]}, {"imageDigest": D[2]}]},
        {"repositoryName": "prod/api", "maxResults": 1000, "nextToken": "i1"},
    )
    registry.add_response("get_lifecycle_policy", {"lifecyclePolicyText": LIFECYCLE})
    registry.add_response("get_repository_policy", {"policyText": ACCOUNT_ONLY})
    # dev/x: no lifecycle policy, policy read denied (message names a key id)
    registry.add_response("describe_images", {"imageDetails": [{"imageDigest": D[3], "imageTags": ["latest"]}]})
    registry.add_client_error("get_lifecycle_policy", "LifecyclePolicyNotFoundException", "none")
    registry.add_client_error(
        "get_repository_policy",
        "AccessDeniedException",
        "User with key AKIAIOSFODNN7EXAMPLE is not authorized",
        http_status_code=403,
    )
    trail.add_response(
        "describe_trails",
        {"trailList": [{"Name": "main", "TrailARN": "arn:t", "IsMultiRegionTrail": True, "S3BucketName": "logs"}]},
        {"includeShadowTrails": True},
    )
    trail.add_response("get_trail_status", {"IsLogging": True}, {"Name": "arn:t"})
    iam.add_client_error("get_account_authorization_details", "AccessDenied", "not allowed", http_status_code=403)

    counter = RequestCounter()
    with probe, registry, trail, iam:
        facts = ecr.collect_with_clients(_target(), CollectOptions(concurrency=1), clients, counter=counter)
    for stub in (probe, registry, trail, iam):
        stub.assert_no_pending_responses()

    repos = {r.name: r for r in facts.facts[REPOSITORIES].value}
    assert list(repos) == ["prod/api", "dev/x"]
    assert [t.name for t in repos["prod/api"].tags] == ["v1.0.0", "v1.1.0"]
    assert repos["prod/api"].untagged_digests == 1
    assert repos["prod/api"].anonymous_pull is False and repos["prod/api"].error is None
    assert repos["dev/x"].anonymous_pull is None
    assert repos["dev/x"].error is not None and "AccessDeniedException" in repos["dev/x"].error
    assert "AKIAIOSFODNN7EXAMPLE" not in repos["dev/x"].error and "AKIA…MPLE" in repos["dev/x"].error
    assert facts.facts[RETENTION].value.uncovered_repositories == ("dev/x",)
    assert facts.facts[RETENTION].value.by_repository == {"prod/api": "1: expire untagged images beyond the newest 5"}
    assert facts.facts[LOGGING].value.enabled is True
    assert facts.facts[LOGGING].value.destination == "s3://logs"
    cred = facts.facts[CREDENTIALS]
    assert cred.state is FactState.ERROR and cred.source == "iam:GetAccountAuthorizationDetails"
    assert cred.detail is not None and "AccessDenied" in cred.detail
    # 1 probe + 2 repo pages + 1 scanning + (2+1+1) + (1+1+1) + 2 cloudtrail + 1 iam
    assert facts.requests == counter.total == 14
    assert counter.by_call["ecr:DescribeImages"] == 3
    assert counter.by_call["ecr:DescribeRepositories"] == 2


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in MOTO_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def test_throttled_call_is_retried_and_counted(aws: None) -> None:
    client = boto3.client("ecr", region_name="us-east-1")
    client.create_repository(repositoryName="prod/api")
    push_images(client, "prod/api", ["v1.0.0", "v1.1.0"])
    target = _target()
    clients = ecr.make_clients(target, CollectOptions(concurrency=2))
    seen: list[str] = []

    def throttle_first(request: Any, **_: Any) -> AWSResponse | None:
        seen.append(request.url)
        if len(seen) > 1:
            return None  # let moto answer
        body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "throttled"}
        return AWSResponse(request.url, 400, headers, _Raw(body))

    clients.ecr.meta.events.register_first("before-send.ecr.DescribeImages", throttle_first)
    counter = RequestCounter()
    facts = ecr.collect_with_clients(target, CollectOptions(concurrency=2), clients, counter=counter)

    assert len(seen) == 2
    repo = facts.facts[REPOSITORIES].value[0]
    assert repo.error is None
    assert [t.name for t in repo.tags] == ["v1.0.0", "v1.1.0"]
    assert counter.by_call["ecr:DescribeImages"] == 1
    assert counter.by_call["ecr:DescribeImages (retry)"] == 1
    assert facts.requests == counter.total


def test_repository_filter_and_declared_public(aws: None) -> None:
    client = boto3.client("ecr", region_name="us-east-1")
    for name in ("prod/api", "prod/web", "dev/tool", "public/base"):
        client.create_repository(repositoryName=name)
    target = _target(repositories=["prod/*", "public/*"], public_repositories=["public/*"])
    facts = ecr.collect(target, CollectOptions(concurrency=4))
    repos = {r.name: r for r in facts.facts[REPOSITORIES].value}
    assert sorted(repos) == ["prod/api", "prod/web", "public/base"]
    assert repos["public/base"].declared_public is True
    assert repos["prod/api"].declared_public is False
    assert "dev/tool" not in facts.facts[RETENTION].value.uncovered_repositories


def test_unreachable_endpoint_errors_every_fact_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in MOTO_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    port = free_port()  # nothing listens there
    start = time.monotonic()
    facts = ecr.collect(_target(endpoint_url=f"http://127.0.0.1:{port}"), CollectOptions(timeout=2))
    assert time.monotonic() - start < 15
    assert set(facts.facts) == set(ecr.ALL_FACTS)
    for fact in facts.facts.values():
        assert fact.state is FactState.ERROR
        assert fact.detail is not None and fact.detail.startswith("ECR endpoint unreachable")
    assert facts.requests >= 1


def test_no_credentials_errors_every_fact(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    port = free_port()
    facts = ecr.collect(_target(endpoint_url=f"http://127.0.0.1:{port}"), CollectOptions(timeout=2))
    states = {f.state for f in facts.facts.values()}
    assert states == {FactState.ERROR}
    assert "credentials" in (facts.facts[REPOSITORIES].detail or "").lower()


def test_endpoint_facts_are_managed_without_probe(aws: None) -> None:
    facts = ecr.collect(_target(), CollectOptions())
    for name in (TLS, PLAIN_HTTP, ANONYMOUS_ACCESS, ENDPOINT):
        assert facts.facts[name].state is FactState.MANAGED


def test_unparseable_repository_policy_is_an_error_not_a_verdict() -> None:
    detail = ecr.RepositoryDetail(
        name="app1",
        images=ecr.Outcome(value=[]),
        lifecycle=ecr.Outcome(value=LIFECYCLE),
        policy=ecr.Outcome(value="{not json"),
    )
    repo = ecr._repository(detail, "", _target())
    assert repo.anonymous_pull is None
    assert repo.error == "GetRepositoryPolicy: the policy is not valid JSON"


def test_a_collector_bug_becomes_error_facts(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    boto3.client("ecr", region_name="us-east-1").create_repository(repositoryName="app1")

    def broken(*_: Any) -> Any:
        raise KeyError("surprise")

    monkeypatch.setattr(ecr, "scanning_facts", broken)
    facts = ecr.collect(_target(), CollectOptions())
    assert {f.state for f in facts.facts.values()} == {FactState.ERROR}
    assert (facts.facts[REPOSITORIES].detail or "").startswith("ECR collector failed: KeyError")
