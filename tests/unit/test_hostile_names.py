"""Names and documents a registry makes up: a name the OCI spec forbids is never
requested and is reported as an error on that resource; a URL httpx refuses or
JSON nested too deeply to parse costs only the request that met it, never the
facts already collected for the target (TLS evidence included)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from audits.collectors.oci import valid_digest, valid_repository, valid_tag
from audits.engine import judge
from audits.model import ANONYMOUS_ACCESS, PLAIN_HTTP, TLS, FactState, Status, TargetFacts
from audits.rules.registry import RuleContext, catalog
from tests.unit.hostile_server import (
    Chunk,
    Request,
    answer,
    audit_route,
    json_answer,
    registry,
    repositories,
    signed_image,
    trusted_key,
)

NOT_ALLOWED = "name not allowed by the OCI distribution spec"


def assert_endpoint_facts_kept(facts: TargetFacts) -> None:
    for name in (TLS, PLAIN_HTTP, ANONYMOUS_ACCESS):
        assert facts.facts[name].state is FactState.OK, (name, facts.facts[name].detail)


def test_a_trailing_newline_is_not_part_of_a_valid_name() -> None:
    assert not valid_repository("app\n") and not valid_tag("v1\n") and not valid_digest("sha256:" + "a" * 64 + "\n")
    assert valid_repository("app/web") and valid_tag("v1") and valid_digest("sha256:" + "a" * 64)


def test_forbidden_repository_names_are_reported_not_requested_nor_dropped() -> None:
    listed = ["good", "evil\n", "Upper", "a" * 300, "../etc"]

    def listing(request: Request) -> Iterable[Chunk]:
        return json_answer(200, {"repositories": listed})

    facts, paths = audit_route(registry({"good": ["v1"]}, {"/v2/_catalog": listing}))
    assert_endpoint_facts_kept(facts)
    repos = repositories(facts)
    assert repos["good"].error is None and repos["good"].tags[0].digest
    refused = {name: repo for name, repo in repos.items() if name != "good"}
    assert len(refused) == 4 and "evil\n" in refused  # the facts keep the name as listed; reports escape it
    assert all((repo.error or "").startswith(NOT_ALLOWED) for repo in refused.values())
    assert not any(bad in path for path in paths for bad in ("evil", "Upper", "a" * 300, ".."))

    findings = judge(facts, RuleContext(environment="prod", target_name="hostile"), catalog())
    auth = {f.resource: f for f in findings if f.rule == "RG-AUTH-001"}
    for name in refused:
        assert auth[name].status is Status.ERROR and NOT_ALLOWED in auth[name].message


def test_a_tag_with_a_trailing_newline_costs_only_that_tag() -> None:
    facts, paths = audit_route(registry({"app": ["v1", "v2\n"]}))
    assert_endpoint_facts_kept(facts)
    tags = {t.name: t for t in repositories(facts)["app"].tags}
    assert tags["v1"].digest and tags["v1"].error is None
    assert "not allow" in (tags["v2\n"].error or "")
    assert "/v2/app/manifests/v2" not in [p.rstrip() for p in paths]


def test_a_link_httpx_refuses_costs_only_that_repository() -> None:
    def overlong_link(request: Request) -> Iterable[Chunk]:
        link = f'</v2/app/tags/list?last={"a" * 70_000}>; rel="next"'  # httpx: "URL too long"
        return json_answer(200, {"name": "app", "tags": ["v1"]}, {"Link": link})

    facts, _ = audit_route(registry({"app": ["v1"], "ok": ["v1"]}, {"/v2/app/tags/list": overlong_link}))
    assert_endpoint_facts_kept(facts)
    repos = repositories(facts)
    assert "not a valid URL" in (repos["app"].error or "")
    assert repos["ok"].error is None and repos["ok"].tags[0].digest


def test_json_nested_too_deeply_costs_only_that_repository() -> None:
    def nested(request: Request) -> Iterable[Chunk]:
        return answer(200, b"[" * 200_000, headers={"Content-Type": "application/json"})

    facts, _ = audit_route(registry({"app": ["v1"], "ok": ["v1"]}, {"/v2/app/tags/list": nested}))
    assert_endpoint_facts_kept(facts)
    repos = repositories(facts)
    assert "invalid JSON" in (repos["app"].error or "")
    assert repos["ok"].error is None and repos["ok"].tags[0].digest


def test_a_signature_payload_nested_too_deeply_costs_only_that_signature(tmp_path: Path) -> None:
    payload = b"[" * 200_000
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    facts, _ = audit_route(signed_image(lambda request: answer(200, payload), digest), keys=(trusted_key(tmp_path),))
    assert_endpoint_facts_kept(facts)
    [signature] = repositories(facts)["app"].tags[0].signatures or ()
    assert signature.verified is False and "not a cosign simple-signing document" in (signature.verify_error or "")
