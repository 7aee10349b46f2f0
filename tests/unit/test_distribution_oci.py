"""The OCI client: header parsing, pagination and the auth flows, against
`httpx.MockTransport` handlers that answer like Distribution does."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from audits.collectors.oci import (
    Challenge,
    Credentials,
    HttpPool,
    OciClient,
    OciError,
    parse_link_next,
    parse_www_authenticate,
)

BASE = "https://reg.test:5000"
TOKEN_SERVICE = ["https://auth.test"]  # a separate token service, as allowed_token_realms lists it
Handler = Callable[[httpx.Request], httpx.Response]


def run_client(handler: Handler, body: Callable[[OciClient], Any], **kwargs: Any) -> Any:
    """Run `body(client)` against `handler`, returning its result."""

    async def main() -> Any:
        transport = httpx.MockTransport(handler)
        async with HttpPool(asyncio.Semaphore(4), lambda: httpx.AsyncClient(transport=transport)) as pool:
            client = OciClient(BASE, pool, timeout=3, **kwargs)
            return await body(client)

    return asyncio.run(main())


# ---- WWW-Authenticate -------------------------------------------------------


def test_parses_distribution_bearer_challenge() -> None:
    header = 'Bearer realm="https://auth.test/token",service="registry.test",scope="registry:catalog:*"'
    [ch] = parse_www_authenticate(header)
    assert ch.scheme == "bearer"
    assert ch.realm == "https://auth.test/token"
    assert ch.service == "registry.test"
    assert ch.scope == "registry:catalog:*"


def test_parses_basic_challenge_case_insensitively() -> None:
    [ch] = parse_www_authenticate('BASIC Realm="Registry Realm"')
    assert ch.scheme == "basic"
    assert ch.realm == "Registry Realm"


def test_parses_several_challenges_separated_by_commas() -> None:
    header = 'Basic realm="a, b", Bearer realm="https://t/x", service=reg , Negotiate abc=='
    challenges = parse_www_authenticate(header)
    assert [c.scheme for c in challenges] == ["basic", "bearer", "negotiate"]
    assert challenges[0].realm == "a, b"  # comma inside a quoted string is not a separator
    assert challenges[1].realm == "https://t/x"
    assert challenges[1].service == "reg"  # token value, whitespace around the comma
    assert challenges[2].token68 == "abc=="


def test_unescapes_quoted_pairs_and_tolerates_whitespace_around_equals() -> None:
    [ch] = parse_www_authenticate(r'Bearer realm = "say \"hi\" \\ there" , error="invalid_token"')
    assert ch.realm == 'say "hi" \\ there'
    assert ch.params["error"] == "invalid_token"


def test_scope_with_several_actions_is_kept_whole() -> None:
    [ch] = parse_www_authenticate('Bearer realm="r",scope="repository:app/web:pull,push"')
    assert ch.scope == "repository:app/web:pull,push"


def test_empty_and_garbage_headers_give_what_could_be_understood() -> None:
    assert parse_www_authenticate("") == []
    assert parse_www_authenticate("   ") == []
    [ch] = parse_www_authenticate('Bearer realm="unterminated')
    assert ch.scheme == "bearer" and ch.realm is None
    [ch] = parse_www_authenticate("Basic")
    assert ch == Challenge("basic", {}, None)


# ---- Link --------------------------------------------------------------------


def test_link_next_from_distribution_header() -> None:
    assert parse_link_next('</v2/_catalog?last=b&n=2>; rel="next"') == "/v2/_catalog?last=b&n=2"


def test_link_next_among_several_links_and_relations() -> None:
    header = '<https://x/prev>; rel="prev", <https://x/next?a=1>; title="p"; rel="last next"'
    assert parse_link_next(header) == "https://x/next?a=1"
    assert parse_link_next('<https://x/prev>; rel="prev"') is None
    assert parse_link_next("garbage") is None


# ---- pagination ------------------------------------------------------------


def paged(items: list[str], key: str, page: int, path: str) -> Handler:
    """A handler that pages `items` by `page` with Link headers, honouring `last`."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == path
        last = request.url.params.get("last")
        start = items.index(last) + 1 if last else 0
        chunk = items[start : start + page]
        headers = {}
        if start + page < len(items):
            headers["Link"] = f'<{path}?last={chunk[-1]}&n={page}>; rel="next"'
        return httpx.Response(200, json={key: chunk}, headers=headers)

    return handler


def test_catalog_follows_link_headers_over_several_pages() -> None:
    repos = [f"repo{i:03d}" for i in range(250)]
    calls: list[str] = []
    inner = paged(repos, "repositories", 100, "/v2/_catalog")

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return inner(request)

    assert run_client(handler, lambda c: c.catalog(100)) == repos
    assert len(calls) == 3
    assert calls[0] == f"{BASE}/v2/_catalog?n=100"


def test_tags_follow_link_and_stop_without_one() -> None:
    tags = [f"v{i}" for i in range(7)]
    got = run_client(paged(tags, "tags", 3, "/v2/app/web/tags/list"), lambda c: c.tags("app/web"))
    assert got == tags

    def ignores_n(request: httpx.Request) -> httpx.Response:  # Distribution 2.8: everything, no Link
        return httpx.Response(200, json={"name": "app/web", "tags": tags})

    assert run_client(ignores_n, lambda c: c.tags("app/web")) == tags


def test_null_tags_is_an_empty_list() -> None:
    got = run_client(lambda r: httpx.Response(200, json={"name": "x", "tags": None}), lambda c: c.tags("x"))
    assert got == []


def test_pagination_refuses_links_to_another_origin() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        link = '<https://evil.test/v2/_catalog>; rel="next"'
        return httpx.Response(200, json={"repositories": ["a"]}, headers={"Link": link})

    with pytest.raises(OciError, match="outside the registry"):
        run_client(handler, lambda c: c.catalog())


def test_pagination_stops_on_a_loop() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"repositories": ["a"]}, headers={"Link": '</v2/_catalog?n=100>; rel="next"'})

    with pytest.raises(OciError, match=r"catalog listing cut: .*\(a loop at /v2/_catalog\)"):
        run_client(handler, lambda c: c.catalog())


def test_garbage_json_and_wrong_shapes_are_errors() -> None:
    with pytest.raises(OciError, match="invalid JSON from GET /v2/_catalog"):
        run_client(lambda r: httpx.Response(200, content=b"<html>oops"), lambda c: c.catalog())
    with pytest.raises(OciError, match="repositories is not a list"):
        run_client(lambda r: httpx.Response(200, json={"repositories": "a"}), lambda c: c.catalog())
    with pytest.raises(OciError, match="not an object"):
        run_client(lambda r: httpx.Response(200, json=["a"]), lambda c: c.catalog())


# ---- faults -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "connection refused"),
        (httpx.ReadTimeout("timed out"), "timed out: no complete answer within 3 s"),
        (httpx.ConnectTimeout("timed out"), "timed out: no complete answer within 3 s"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), "protocol error"),
    ],
)
def test_transport_failures_become_readable_errors(exc: Exception, expected: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(OciError) as info:
        run_client(handler, lambda c: c.catalog())
    assert info.value.detail.startswith(expected)
    assert info.value.source == f"GET {BASE}/v2/_catalog?n=100"


def test_server_error_names_status_and_call() -> None:
    with pytest.raises(OciError) as info:
        run_client(lambda r: httpx.Response(503), lambda c: c.catalog())
    assert info.value.detail == "HTTP 503 from GET /v2/_catalog"
    assert info.value.status == 503


# ---- manifests ---------------------------------------------------------------


def test_head_manifest_sends_every_manifest_media_type() -> None:
    seen: dict[str, str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["method"], seen["accept"] = request.method, request.headers["accept"]
        return httpx.Response(
            200,
            headers={
                "Docker-Content-Digest": "sha256:" + "a" * 64,
                "Content-Type": "application/vnd.oci.image.index.v1+json",
            },
        )

    ref = run_client(handler, lambda c: c.head_manifest("app/web", "v1"))
    assert ref.digest == "sha256:" + "a" * 64
    assert ref.media_type == "application/vnd.oci.image.index.v1+json"
    assert seen["method"] == "HEAD"
    for media_type in (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ):
        assert media_type in seen["accept"]


def test_head_without_digest_header_falls_back_to_hashing_the_body() -> None:
    body = b'{"schemaVersion":2}'

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            return httpx.Response(200, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        return httpx.Response(200, content=body, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})

    ref = run_client(handler, lambda c: c.head_manifest("app", "v1"))
    import hashlib

    assert ref.digest == "sha256:" + hashlib.sha256(body).hexdigest()


def test_blob_with_wrong_content_is_refused() -> None:
    with pytest.raises(OciError, match="does not match its digest"):
        digest = "sha256:" + "0" * 64
        run_client(lambda r: httpx.Response(200, content=b"tampered"), lambda c: c.get_blob("app", digest))


def test_referrers_404_means_unsupported_and_index_is_read() -> None:
    assert run_client(lambda r: httpx.Response(404), lambda c: c.referrers("app", "sha256:" + "1" * 64)) is None
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"digest": "x"}]}
    got = run_client(lambda r: httpx.Response(200, json=index), lambda c: c.referrers("app", "sha256:" + "1" * 64))
    assert got == [{"digest": "x"}]


# ---- authentication -----------------------------------------------------------


def basic_registry(user: str, password: str, calls: list[httpx.Request]) -> Handler:
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if request.headers.get("authorization") != expected:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="Registry Realm"'})
        return httpx.Response(200, json={"repositories": ["a"]})

    return handler


def test_basic_auth_learnt_from_401_then_sent_preemptively() -> None:
    calls: list[httpx.Request] = []

    async def body(c: OciClient) -> None:
        assert await c.catalog() == ["a"]
        assert await c.catalog() == ["a"]

    run_client(basic_registry("alice", "s3cret", calls), body, credentials=Credentials("alice", "s3cret"))
    assert [r.headers.get("authorization") is not None for r in calls] == [False, True, True]


def test_known_challenge_saves_the_first_401() -> None:
    calls: list[httpx.Request] = []
    run_client(
        basic_registry("alice", "s3cret", calls),
        lambda c: c.catalog(),
        credentials=Credentials("alice", "s3cret"),
        challenge=Challenge("basic", {"realm": "Registry Realm"}),
    )
    assert len(calls) == 1


def test_rejected_basic_credentials_are_not_retried_forever() -> None:
    calls: list[httpx.Request] = []
    with pytest.raises(OciError) as info:
        run_client(
            basic_registry("alice", "right", calls),
            lambda c: c.catalog(),
            credentials=Credentials("alice", "wrong"),
            challenge=Challenge("basic", {}),
        )
    assert info.value.detail == "HTTP 401 from GET /v2/_catalog (credentials rejected)"
    assert len(calls) == 1


class TokenServer:
    """Distribution token auth: 401 with a Bearer challenge naming the scope,
    a token endpoint that wants Basic credentials, tokens valid per scope."""

    def __init__(self, field: str = "token") -> None:
        self.field = field
        self.token_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            self.token_requests.append(request)
            if request.headers.get("authorization") != Credentials("bob", "pw").basic_header():
                return httpx.Response(401)
            scope = request.url.params.get("scope", "")
            assert request.url.params.get("service") == "reg.test"
            return httpx.Response(200, json={self.field: f"tok[{scope}]", "expires_in": 300})
        self.api_requests.append(request)
        scope = (
            "registry:catalog:*"
            if request.url.path.startswith("/v2/_catalog")
            else f"repository:{request.url.path.split('/tags/')[0].removeprefix('/v2/')}:pull"
        )
        if request.headers.get("authorization") != f"Bearer tok[{scope}]":
            challenge = f'Bearer realm="https://auth.test/token",service="reg.test",scope="{scope}"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        if request.url.path == "/v2/_catalog":
            return httpx.Response(200, json={"repositories": ["app/a", "app/b"]})
        return httpx.Response(200, json={"tags": ["v1"]})


@pytest.mark.parametrize("field", ["token", "access_token"])
def test_bearer_flow_fetches_one_token_per_scope_and_reuses_it(field: str) -> None:
    server = TokenServer(field)

    async def body(c: OciClient) -> list[Any]:
        repos = await c.catalog()
        tags = await asyncio.gather(*(c.tags(r) for r in repos), c.tags("app/a"))
        return [repos, tags]

    repos, tags = run_client(server.handler, body, credentials=Credentials("bob", "pw"), allowed_realms=TOKEN_SERVICE)
    assert repos == ["app/a", "app/b"]
    assert tags == [["v1"], ["v1"], ["v1"]]
    scopes = sorted(r.url.params["scope"] for r in server.token_requests)
    assert scopes == ["registry:catalog:*", "repository:app/a:pull", "repository:app/b:pull"]


def test_bearer_with_known_challenge_skips_the_401_round_trip() -> None:
    server = TokenServer()
    challenge = parse_www_authenticate('Bearer realm="https://auth.test/token",service="reg.test"')[0]
    run_client(
        server.handler,
        lambda c: c.catalog(),
        credentials=Credentials("bob", "pw"),
        challenge=challenge,
        allowed_realms=TOKEN_SERVICE,
    )
    assert len(server.api_requests) == 1
    assert len(server.token_requests) == 1


def test_token_service_rejecting_credentials_is_an_error() -> None:
    server = TokenServer()
    with pytest.raises(OciError, match=r"token service .*\(credentials rejected\)"):
        run_client(
            server.handler, lambda c: c.catalog(), credentials=Credentials("bob", "nope"), allowed_realms=TOKEN_SERVICE
        )


def test_credentials_never_go_to_a_plain_http_realm_of_an_https_registry() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="http://auth.test/token"'})

    with pytest.raises(OciError, match="token realm http://auth.test:80 is plain HTTP"):
        run_client(handler, lambda c: c.catalog(), credentials=Credentials("bob", "pw"), allowed_realms=TOKEN_SERVICE)
    assert all(r.url.host != "auth.test" for r in sent)


def test_token_response_without_token_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            return httpx.Response(200, content=json.dumps({"nothing": 1}))
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.test/t"'})

    with pytest.raises(OciError, match="without a token"):
        run_client(handler, lambda c: c.catalog(), credentials=Credentials("bob", "pw"), allowed_realms=TOKEN_SERVICE)


def test_credentials_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(Credentials("bob", "hunter2"))
