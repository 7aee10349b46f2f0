"""A registry offering gigabytes (plain, or as a gzip bomb) must neither exhaust
memory nor be believed: bodies are read as a stream, counted after
decompression, and cut at a cap per kind of answer; over the cap is an error
naming the cap. The servers offer 1 GiB each, generated while sent."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from audits.model import ANONYMOUS_ACCESS, REPOSITORIES, FactState, TagFacts, TargetFacts
from tests.unit.hostile_server import (
    GIB,
    MIB,
    Chunk,
    HostileServer,
    Request,
    Route,
    answer,
    audit,
    digest_of,
    gzip_bomb,
    huge_json_list,
    peak_memory,
    registry,
    repeated,
    repositories,
    signed_image,
    trusted_key,
)

MEMORY_BOUND = 128 * MIB  # what the audit may allocate while a server offers 1 GiB
JSON = {"Content-Type": "application/json"}


def audit_bounded(route: Route, keys: tuple[str, ...] = ()) -> TargetFacts:
    """The audit's facts, after checking it allocated less than MEMORY_BOUND."""
    with HostileServer(route) as server:
        facts, peak = peak_memory(lambda: audit(server, keys=keys, timeout=5))
    assert peak < MEMORY_BOUND, f"allocated {peak / MIB:.0f} MiB"
    return facts


def the_tag(facts: TargetFacts, repo: str, tag: str) -> TagFacts:
    return {t.name: t for t in repositories(facts)[repo].tags}[tag]


def gibibyte_catalog(request: Request) -> Iterable[Chunk]:
    length, body = huge_json_list("repositories")
    return answer(200, body, headers=JSON, length=length)


def gzip_bomb_catalog(request: Request) -> Iterable[Chunk]:
    length, body = gzip_bomb()
    return answer(200, body, headers={**JSON, "Content-Encoding": "gzip"}, length=length)


@pytest.mark.parametrize("catalog", [gibibyte_catalog, gzip_bomb_catalog], ids=["plain", "gzip-bomb"])
def test_a_gibibyte_catalog_is_cut_at_the_listing_cap(catalog: Route) -> None:
    facts = audit_bounded(registry({}, {"/v2/_catalog": catalog}))
    for name in (REPOSITORIES, ANONYMOUS_ACCESS):
        fact = facts.facts[name]
        assert fact.state is FactState.ERROR, name
        assert "exceeds the 8 MiB cap for a listing" in (fact.detail or ""), name


def test_a_streamed_gibibyte_manifest_is_not_accepted_as_an_image() -> None:
    def endless_manifest(request: Request) -> Iterable[Chunk]:
        headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}  # and no digest header
        if request.method == "HEAD":
            return answer(200, headers=headers)
        return answer(200, repeated(b"{" * 65536, GIB), headers=headers, length=GIB)

    facts = audit_bounded(registry({"app": ["good", "huge"]}, {"/v2/app/manifests/huge": endless_manifest}))
    huge = the_tag(facts, "app", "huge")
    assert huge.digest is None
    assert "exceeds the 4 MiB cap for a manifest" in (huge.error or "")
    assert the_tag(facts, "app", "good").digest == digest_of("app", "good")


def test_a_head_claiming_a_huge_length_is_fine() -> None:
    def claims_ten_gib(request: Request) -> Iterable[Chunk]:
        headers = {"Docker-Content-Digest": digest_of("app", "v1"), "Content-Type": "application/json"}
        return answer(200, headers=headers, length=10 * GIB)

    facts = audit_bounded(registry({"app": ["v1"]}, {"/v2/app/manifests/v1": claims_ten_gib}))
    tag = the_tag(facts, "app", "v1")
    assert tag.error is None and tag.digest == digest_of("app", "v1")


def test_a_gibibyte_error_answer_is_cut_at_the_error_cap() -> None:
    def huge_404(request: Request) -> Iterable[Chunk]:
        return answer(404, repeated(b"x" * 65536, GIB), length=GIB)

    facts = audit_bounded(registry({"app": ["v1"], "ok": ["v1"]}, {"/v2/app/tags/list": huge_404}))
    repos = repositories(facts)
    assert "exceeds the 64 KiB cap for an error answer" in (repos["app"].error or "")
    assert repos["ok"].error is None


def test_a_gibibyte_signature_payload_is_cut_at_the_payload_cap(tmp_path: Path) -> None:
    def endless_payload(request: Request) -> Iterable[Chunk]:
        return answer(200, repeated(b"\0" * 65536, GIB), length=GIB)

    facts = audit_bounded(signed_image(endless_payload), keys=(trusted_key(tmp_path),))
    [signature] = the_tag(facts, "app", "v1").signatures or ()
    assert signature.verified is False
    assert "exceeds the 1 MiB cap for a signature payload" in (signature.verify_error or "")
