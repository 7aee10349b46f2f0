"""Every paginated call (catalog, tags, referrers) stops at a loop, at a page cap
and at an entry cap, and a listing cut short is an error on what it lists, never
a complete-looking result."""

from __future__ import annotations

import time
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from audits.model import REPOSITORIES, FactState
from tests.unit.hostile_server import (
    Chunk,
    Request,
    Route,
    audit_route,
    digest_of,
    json_answer,
    registry,
    repositories,
)

IMAGE = digest_of("app", "v1")
REFERRERS = f"/v2/app/referrers/{IMAGE}"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def page_number(request: Request) -> int:
    return int(parse_qs(urlsplit(request.target).query).get("page", ["0"])[0])


def endless(key: str, items: Iterable[str] = ("x",), **extra: str) -> Route:
    """Every page links to the next one, with a new URL each time."""

    def route(request: Request) -> Iterable[Chunk]:
        link = f'<{request.path}?page={page_number(request) + 1}>; rel="next"'
        return json_answer(200, {**extra, key: list(items)}, {"Link": link})

    return route


def referrer_index(link: str | None) -> Route:
    def route(request: Request) -> Iterable[Chunk]:
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        return json_answer(200, body, {"Content-Type": OCI_INDEX, **({"Link": link} if link else {})})

    return route


def test_a_self_pointing_referrers_link_is_a_loop_not_10000_requests() -> None:
    facts, paths = audit_route(registry({"app": ["v1"]}, {REFERRERS: referrer_index(f'<{REFERRERS}>; rel="next"')}))
    [tag] = repositories(facts)["app"].tags
    assert tag.signatures is None
    assert "referrers listing cut" in (tag.error or "") and "loop" in (tag.error or "")
    assert paths.count(REFERRERS) == 1


def test_endless_referrers_pages_stop_at_the_page_cap() -> None:
    facts, paths = audit_route(registry({"app": ["v1"]}, {REFERRERS: endless("manifests", (), mediaType=OCI_INDEX)}))
    [tag] = repositories(facts)["app"].tags
    assert "referrers listing cut after 100 pages" in (tag.error or "")
    assert paths.count(REFERRERS) == 100


def test_a_referrers_listing_whose_next_page_vanishes_is_cut() -> None:
    route = registry({"app": ["v1"]}, {REFERRERS: referrer_index(f'<{REFERRERS}?page=2>; rel="next"')})

    def second_page_gone(request: Request) -> Iterable[Chunk]:
        if page_number(request) == 2:
            return json_answer(404, {"errors": [{"code": "NOT_FOUND"}]})
        return route(request)

    facts, _ = audit_route(second_page_gone)
    [tag] = repositories(facts)["app"].tags
    assert "referrers listing cut" in (tag.error or "") and "HTTP 404" in (tag.error or "")


def test_endless_tag_pages_mark_the_repository_as_cut() -> None:
    facts, paths = audit_route(
        registry({"app": ["v1"], "ok": ["v1"]}, {"/v2/app/tags/list": endless("tags", name="app")})
    )
    repos = repositories(facts)
    assert "tag listing cut after 1,000 pages" in (repos["app"].error or "")
    assert repos["ok"].error is None and repos["ok"].tags[0].digest
    assert paths.count("/v2/app/tags/list") == 1000


def test_endless_catalog_pages_make_the_listing_an_error() -> None:
    facts, _ = audit_route(registry({}, {"/v2/_catalog": endless("repositories", [f"r{i}" for i in range(1000)])}))
    fact = facts.facts[REPOSITORIES]
    assert fact.state is FactState.ERROR
    assert "catalog listing cut at 100,000 entries" in (fact.detail or "")


def test_a_tag_list_longer_than_the_entry_cap_is_cut() -> None:
    many = [f"t{i}" for i in range(100_001)]
    facts, _ = audit_route(registry({"app": many}, {}))
    assert "tag listing cut at 100,000 entries" in (repositories(facts)["app"].error or "")


def test_a_link_header_built_to_make_parsing_slow_costs_no_time() -> None:
    def angle_brackets(request: Request) -> Iterable[Chunk]:
        return json_answer(200, {"name": "app", "tags": ["v1"]}, {"Link": "<" * 60_000})  # no link at all

    started = time.monotonic()
    facts, _ = audit_route(registry({"app": ["v1"]}, {"/v2/app/tags/list": angle_brackets}))
    assert time.monotonic() - started < 3
    assert repositories(facts)["app"].tags[0].digest == IMAGE
