"""The Bearer token realm is chosen by the registry, so it is untrusted: the
user's credentials go only to an HTTPS realm on the registry's own origin
(scheme, host and port) or to one the config lists in `allowed_token_realms`;
a plain-HTTP realm never gets them and RG-AUTH-002 fails it. Token answers are
bounded in time and size like every other answer."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from audits.config import ConfigError, parse_config
from audits.engine import judge
from audits.model import (
    ANONYMOUS_ACCESS,
    PLAIN_HTTP,
    REPOSITORIES,
    TLS,
    TOKEN_REALM_ORIGIN,
    FactState,
    Status,
    TargetFacts,
)
from audits.rules.registry import RuleContext, catalog
from tests.unit.hostile_server import (
    GIB,
    Chunk,
    HostileServer,
    Request,
    Route,
    answer,
    audit,
    digest_of,
    drip,
    json_answer,
    registry,
    repeated,
    tls_context,
)

USER, PASSWORD = "auditor", "canary-realm-Pa55-4b1e"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("HOSTILE_USER", USER)
    monkeypatch.setenv("HOSTILE_PASSWORD", PASSWORD)
    return {"username_env": "HOSTILE_USER", "password_env": "HOSTILE_PASSWORD"}


def token_service(request: Request) -> Iterable[Chunk]:
    if request.headers.get("authorization") != BASIC:
        return json_answer(401, {"errors": [{"code": "UNAUTHORIZED"}]})
    return json_answer(200, {"token": "good-token"})


def bearer_registry(realm: str, overrides: dict[str, Route] | None = None) -> Route:
    """Token auth in front of an open registry holding app:v1; `overrides`
    (e.g. a same-origin `/token`) answer before the auth check."""
    inner = registry({"app": ["v1"]})
    own = dict(overrides or {})

    def route(request: Request) -> Iterable[Chunk]:
        if request.path in own:
            return own[request.path](request)
        if request.headers.get("authorization") != "Bearer good-token":
            challenge = f'Bearer realm="{realm}",service="hostile"'
            return json_answer(401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": challenge})
        return inner(request)

    return route


def auth_002(facts: TargetFacts) -> Any:
    [finding] = [f for f in judge(facts, RuleContext(target_name="hostile"), catalog()) if f.rule == "RG-AUTH-002"]
    return finding


def test_a_plain_http_realm_on_another_port_never_gets_the_credentials(creds: dict[str, str]) -> None:
    with HostileServer(token_service) as tokens, HostileServer(bearer_registry(f"{tokens.origin}/token")) as reg:
        facts = audit(reg, timeout=1, **creds)
    assert tokens.requests == []
    listing = facts.facts[REPOSITORIES]
    assert listing.state is FactState.ERROR
    assert f"token realm {tokens.origin} is plain HTTP" in (listing.detail or "")

    realm = facts.facts[TOKEN_REALM_ORIGIN].value
    assert (realm.origin, realm.plain_http, realm.same_origin) == (tokens.origin, True, False)
    finding = auth_002(facts)
    assert finding.status is Status.FAIL and tokens.origin in finding.message


def test_a_foreign_https_realm_needs_allowed_token_realms(tmp_path: Path, creds: dict[str, str]) -> None:
    context, ca_file = tls_context(tmp_path)
    tokens = HostileServer(token_service, tls=context)
    with tokens, HostileServer(bearer_registry(f"{tokens.origin}/token"), tls=context) as reg:
        refused = audit(reg, timeout=1, ca_file=str(ca_file), **creds)
        asked_before_allowed = len(tokens.requests)
        allowed = audit(reg, timeout=1, ca_file=str(ca_file), allowed_token_realms=[tokens.origin], **creds)
    assert asked_before_allowed == 0
    detail = refused.facts[REPOSITORIES].detail or ""
    assert tokens.origin in detail and "allowed_token_realms" in detail
    assert refused.facts[TLS].value.verified is True

    [repo] = allowed.facts[REPOSITORIES].value
    assert repo.tags[0].digest == digest_of("app", "v1")
    realm = allowed.facts[TOKEN_REALM_ORIGIN].value
    assert (realm.origin, realm.plain_http, realm.same_origin, realm.allowed) == (tokens.origin, False, False, True)
    assert auth_002(allowed).status is Status.PASS


def dripping_token(request: Request) -> Iterable[Chunk]:
    return drip(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"token": "good-token"}', 0.1)


def gibibyte_token(request: Request) -> Iterable[Chunk]:
    return answer(200, repeated(b'{"token": "' + b"t" * 65525, GIB), length=GIB)


@pytest.mark.parametrize(
    ("token", "detail"),
    [(dripping_token, "no complete answer within 1 s"), (gibibyte_token, "exceeds the 1 MiB cap for a token")],
    ids=["drip", "gibibyte"],
)
def test_a_same_origin_token_service_is_bounded(
    tmp_path: Path, creds: dict[str, str], token: Route, detail: str
) -> None:
    context, ca_file = tls_context(tmp_path)
    server = HostileServer(lambda r: (), tls=context)
    server.route = bearer_registry(f"{server.origin}/token", {"/token": token})
    with server:
        facts = audit(server, timeout=1, ca_file=str(ca_file), **creds)
    assert detail in (facts.facts[REPOSITORIES].detail or "")
    assert facts.facts[TOKEN_REALM_ORIGIN].value.same_origin is True


def test_an_unparseable_realm_costs_only_the_listing(creds: dict[str, str]) -> None:
    with HostileServer(bearer_registry("https://[::1/token")) as reg:
        facts = audit(reg, timeout=1, **creds)
    assert "not a valid URL" in (facts.facts[REPOSITORIES].detail or "")
    assert facts.facts[TOKEN_REALM_ORIGIN].state is FactState.ERROR
    for name in (TLS, PLAIN_HTTP, ANONYMOUS_ACCESS):
        assert facts.facts[name].state is FactState.OK, name


def test_allowed_token_realms_must_be_https_origins(tmp_path: Path) -> None:
    base = {"name": "edge", "kind": "distribution", "url": "https://reg.example:5000"}
    ok = parse_config({"targets": [{**base, "allowed_token_realms": ["https://auth.example"]}]}, tmp_path / "c.yaml")
    assert ok.targets[0].allowed_token_realms == ["https://auth.example"]
    for bad in ("http://auth.example", "https://auth.example/token"):
        with pytest.raises(ConfigError, match=r"allowed_token_realms\[0\]"):
            parse_config({"targets": [{**base, "allowed_token_realms": [bad]}]}, tmp_path / "c.yaml")


@pytest.mark.parametrize("token", ["caf\u00e9-token", "good-token\r\nX-Injected: 1"], ids=["non-ascii", "crlf"])
def test_a_token_that_is_no_header_value_costs_only_the_listing(
    tmp_path: Path, creds: dict[str, str], token: str
) -> None:
    context, ca_file = tls_context(tmp_path)
    server = HostileServer(lambda r: (), tls=context)
    server.route = bearer_registry(f"{server.origin}/token", {"/token": lambda r: json_answer(200, {"token": token})})
    with server:
        facts = audit(server, timeout=1, ca_file=str(ca_file), **creds)
    assert "token service answered with a token that is not a valid header value" in (
        facts.facts[REPOSITORIES].detail or ""
    )
    assert token not in repr(facts)
    for name in (TLS, PLAIN_HTTP, ANONYMOUS_ACCESS):
        assert facts.facts[name].state is FactState.OK, name
