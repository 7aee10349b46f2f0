"""An AWS endpoint (a tiny local server posing as ECR, IAM and CloudTrail
through `endpoint_url`) that answers some calls with garbage: only the facts
those calls feed become errors, and their messages are short and carry no
raw body or control characters."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

import pytest

from audits.collectors import ecr
from audits.collectors.base import CollectOptions
from audits.model import CREDENTIALS, LOGGING, REPLICATION, REPOSITORIES, FactState, TargetFacts
from audits.targets import EcrTarget
from tests.e2e.fake_servers import serve_http

MARKER = "RAW-BODY-MARKER"
XML_GARBAGE = (f"<oops>\x1b[2J{MARKER}\u202e" * 20_000).encode()  # not XML: IAM's parser raises
NOT_UTF8 = b"\xff\xfe" + MARKER.encode() * 20_000  # not UTF-8: the JSON parser raises
HUGE_ERROR = json.dumps({"__type": "ServerException", "message": f"\x1b]8;;https://evil.example/\x07{MARKER}" * 5_000})


class _FakeAws(BaseHTTPRequestHandler):
    """JSON 1.1 calls (ECR, CloudTrail) name their operation in X-Amz-Target,
    query calls (IAM) in the form body's Action."""

    answers: Mapping[str, tuple[int, bytes]] = {}

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = self.headers.get("X-Amz-Target")
        if target:
            operation = target.rsplit(".", 1)[-1]
            status, answer = self.answers.get(operation, (200, b"{}"))
        else:
            operation = parse_qs(body.decode())["Action"][0]
            empty = f"<{operation}Response><{operation}Result/></{operation}Response>".encode()
            status, answer = self.answers.get(operation, (200, empty))
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE",
        "AWS_SECRET_ACCESS_KEY": "fake",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def answers() -> dict[str, tuple[int, bytes]]:
    return {}


@pytest.fixture
def collected(answers: dict[str, tuple[int, bytes]]) -> Iterator[TargetFacts]:
    handler = type("FakeAws", (_FakeAws,), {"answers": answers})
    with serve_http(handler) as url:
        target = EcrTarget(name="core", kind="ecr", region="us-east-1", endpoint_url=url)
        yield ecr.collect(target, CollectOptions(timeout=5, concurrency=2))


def _assert_short_and_clean(detail: str | None) -> None:
    assert detail is not None
    assert len(detail) < 600, "a raw response body must not be echoed into a message"
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in detail


@pytest.mark.parametrize("answers", [{"GetAccountAuthorizationDetails": (200, XML_GARBAGE)}])
def test_garbage_from_iam_is_an_error_of_the_credentials_fact_only(collected: TargetFacts) -> None:
    credentials = collected.facts[CREDENTIALS]
    assert credentials.state is FactState.ERROR
    assert "parse" in str(credentials.detail).lower()
    _assert_short_and_clean(credentials.detail)
    for name in (REPOSITORIES, LOGGING, REPLICATION):
        assert collected.facts[name].state is FactState.OK, name


@pytest.mark.parametrize("answers", [{"DescribeRepositories": (200, NOT_UTF8)}])
def test_non_utf8_from_ecr_is_an_error_of_the_facts_that_call_feeds(collected: TargetFacts) -> None:
    repositories = collected.facts[REPOSITORIES]
    assert repositories.state is FactState.ERROR
    _assert_short_and_clean(repositories.detail)
    assert collected.facts[LOGGING].state is FactState.OK
    assert collected.facts[CREDENTIALS].state is FactState.OK


@pytest.mark.parametrize("answers", [{"DescribeRegistry": (400, HUGE_ERROR.encode())}])
def test_a_huge_hostile_aws_error_message_is_capped_and_made_visible(collected: TargetFacts) -> None:
    replication = collected.facts[REPLICATION]
    assert replication.state is FactState.ERROR
    assert str(replication.detail).startswith("ServerException: \\x1b]8;;https://evil.example/\\x07")
    _assert_short_and_clean(replication.detail)
    assert collected.facts[REPOSITORIES].state is FactState.OK
