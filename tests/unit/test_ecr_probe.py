"""`probe_endpoint: true` on ECR: the registry host from DescribeRegistry is probed
like any OCI endpoint (TLS, plain HTTP, anonymous `/v2/` and catalog). No real ECR
is reachable, so a fake endpoint (httpx MockTransport) answers; nothing leaves the
process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from audits.collectors import ecr
from audits.collectors.base import CollectOptions, RequestCounter
from audits.model import ANONYMOUS_ACCESS, ENDPOINT, PLAIN_HTTP, TLS, FactState, TargetFacts, TlsFacts
from audits.targets import EcrTarget

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
ECR_CHALLENGE = f'Basic realm="https://{HOST}/",service="ecr.amazonaws.com"'


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        boto3.client("ecr", region_name="us-east-1").create_repository(repositoryName="prod/api")
        yield


def fake_tls(host: str, port: int, ca_file: Path | None, timeout: float) -> TlsFacts:
    return TlsFacts(host, port, "TLSv1.3", "TLS_AES_128_GCM_SHA256", True, None, True, "system")


def probe(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[TargetFacts, RequestCounter, list[str]]:
    seen: list[str] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url}")
        assert "authorization" not in request.headers  # the probes never carry credentials
        return handler(request)

    target = EcrTarget(name="core", kind="ecr", region="us-east-1", probe_endpoint=True)
    options = CollectOptions(concurrency=2, timeout=2)
    counter = RequestCounter()
    seams = ecr.HttpSeams(probe=httpx.MockTransport(recording), tls_probe=fake_tls)
    facts = ecr.collect_with_clients(target, options, ecr.make_clients(target, options), counter=counter, seams=seams)
    return facts, counter, seen


def ecr_like(request: httpx.Request) -> httpx.Response:
    """How ECR's endpoint answers strangers: plain HTTP on 443 is a TLS port's
    complaint, and every `/v2/` call wants AWS-signed Basic credentials."""
    if request.url.scheme == "http":
        return httpx.Response(400, text="The plain HTTP request was sent to HTTPS port")
    return httpx.Response(401, headers={"WWW-Authenticate": ECR_CHALLENGE}, json={"errors": [{"code": "DENIED"}]})


def open_registry(request: httpx.Request) -> httpx.Response:
    """A registry in front of ECR that answers anyone, over HTTP too."""
    headers = {"Docker-Distribution-API-Version": "registry/2.0"}
    if request.url.path == "/v2/_catalog":
        return httpx.Response(200, headers=headers, json={"repositories": ["prod/api"]})
    if request.url.path.endswith("/tags/list"):
        return httpx.Response(200, headers=headers, json={"name": "prod/api", "tags": []})
    return httpx.Response(200, headers=headers, json={})


def test_ecr_endpoint_facts_come_from_probing_the_registry_host(aws: None) -> None:
    facts, counter, seen = probe(ecr_like)

    assert facts.facts[ENDPOINT].value.url == f"https://{HOST}"
    assert facts.facts[TLS].value.protocol == "TLSv1.3" and facts.facts[TLS].value.host == HOST

    plain = facts.facts[PLAIN_HTTP]
    assert plain.state is FactState.OK
    assert (plain.value.url, plain.value.status, plain.value.serves_api) == (f"http://{HOST}:443/v2/", 400, False)

    anon = facts.facts[ANONYMOUS_ACCESS]
    assert anon.state is FactState.OK
    assert (anon.value.v2_status, anon.value.catalog_status) == (401, 401)
    assert anon.value.challenge is not None
    assert (anon.value.challenge.scheme, anon.value.challenge.realm) == ("basic", f"https://{HOST}/")
    assert anon.value.anonymously_pullable == ()

    assert {u.split("/v2/")[0] for u in seen} == {f"GET http://{HOST}:443", f"GET https://{HOST}"}
    assert counter.by_call["GET v2"] == 2  # plain and TLS /v2/
    assert facts.requests == counter.total


def test_an_open_endpoint_is_reported_as_open(aws: None) -> None:
    facts, _, _ = probe(open_registry)
    assert facts.facts[PLAIN_HTTP].value.serves_api is True
    anon = facts.facts[ANONYMOUS_ACCESS].value
    assert (anon.v2_status, anon.catalog_status, anon.challenge) == (200, 200, None)


def test_an_unreachable_registry_host_is_an_error_not_a_pass(aws: None) -> None:
    def refuse(request: httpx.Request) -> Any:
        raise httpx.ConnectError("Connection refused", request=request)

    facts, _, _ = probe(refuse)
    assert facts.facts[ANONYMOUS_ACCESS].state is FactState.ERROR
    assert "connection refused" in (facts.facts[ANONYMOUS_ACCESS].detail or "")
    # an https endpoint refusing plain HTTP is the good answer, not an error
    assert facts.facts[PLAIN_HTTP].value.serves_api is False
