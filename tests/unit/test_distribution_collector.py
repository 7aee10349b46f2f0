"""`collect` end to end against an in-memory Distribution (httpx.MockTransport):
facts, pagination, auth modes, signatures, faults, request counts, secrets."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from audits.collectors.base import CollectOptions, RequestCounter
from audits.collectors.cosign import SIGNATURE_ANNOTATION, canonical_payload
from audits.collectors.distribution import collect, split_artifact_tags
from audits.collectors.oci import Credentials
from audits.model import (
    ANONYMOUS_ACCESS,
    CONTENT_TRUST,
    ENDPOINT,
    PLAIN_HTTP,
    PULL_COUNTS,
    REPLICATION,
    REPOSITORIES,
    RETENTION,
    SCANNING,
    TAG_IMMUTABILITY,
    TLS,
    FactState,
    RepositoryFacts,
    TagFacts,
    TargetFacts,
    TlsFacts,
)
from audits.targets import DistributionTarget

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
COSIGN_SIG_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
USER, PASSWORD = "ci-bot", "canary-Pa55word-7f3e"
TOKEN_SERVICE = "https://auth.test"  # FakeRegistry's token realm, another origin than the registry


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_bytes(seed: str, **extra: Any) -> bytes:
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"digest": sha(seed.encode())}, **extra}
    return json.dumps(body, sort_keys=True).encode()


@dataclass
class FakeRegistry:
    """Enough of Distribution 2.8 (and of an OCI 1.1 registry with
    `referrers=True`) to exercise the collector. `faults` maps a path prefix to
    a response or an exception raised instead of answering."""

    host: str = "reg.test:5000"
    scheme: str = "http"
    auth: str | None = None  # None, "basic" or "bearer"
    catalog_page: int | None = None  # Link-paginate the catalog by this many
    tags_page: int | None = None
    referrers: bool = False
    faults: dict[str, httpx.Response | Exception] = field(default_factory=dict)
    manifests: dict[str, dict[str, tuple[str, bytes]]] = field(default_factory=dict)  # repo -> digest -> (type, body)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # repo -> tag -> digest
    blobs: dict[str, bytes] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    # ---- seeding -------------------------------------------------------------

    def push(self, repo: str, tag: str | None, body: bytes, media_type: str = OCI_MANIFEST) -> str:
        digest = sha(body)
        self.manifests.setdefault(repo, {})[digest] = (media_type, body)
        if tag is not None:
            self.tags.setdefault(repo, {})[tag] = digest
        return digest

    def signature_manifest(
        self, key: ec.EllipticCurvePrivateKey, repo: str, digest: str, *, signed_digest: str | None = None,
        reference: str | None = None, subject: str | None = None,
    ) -> bytes:  # fmt: skip
        payload = canonical_payload(reference or f"{self.host}/{repo}", signed_digest or digest)
        self.blobs[sha(payload)] = payload
        signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
        layer = {
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": sha(payload),
            "size": len(payload),
            "annotations": {SIGNATURE_ANNOTATION: signature},
        }
        extra: dict[str, Any] = {"layers": [layer]}
        if subject:
            extra["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject}
            extra["artifactType"] = COSIGN_SIG_TYPE
        return manifest_bytes(f"sig-{digest}", **extra)

    def sign(self, key: ec.EllipticCurvePrivateKey, repo: str, digest: str, **kwargs: Any) -> str:
        """cosign's tag scheme: the signature manifest at `sha256-<hex>.sig`."""
        tag = digest.replace(":", "-") + ".sig"
        self.push(repo, tag, self.signature_manifest(key, repo, digest, **kwargs))
        return tag

    def attach_referrer(self, key: ec.EllipticCurvePrivateKey, repo: str, digest: str) -> str:
        return self.push(repo, None, self.signature_manifest(key, repo, digest, subject=digest))

    # ---- serving ---------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        for prefix, fault in self.faults.items():
            if path.startswith(prefix):
                if isinstance(fault, Exception):
                    raise fault
                return fault
        if request.url.host == "auth.test":
            return self._token(request)
        if request.url.scheme != self.scheme:
            return httpx.Response(400, text="Client sent an HTTP request to an HTTPS server.\n")
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        return self._route(request, path)

    def _check_auth(self, request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        if self.auth == "basic" and header != Credentials(USER, PASSWORD).basic_header():
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="Registry Realm"'})
        if self.auth == "bearer" and not header.startswith("Bearer good-token"):
            challenge = 'Bearer realm="https://auth.test/token",service="reg.test"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return None

    def _token(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != Credentials(USER, PASSWORD).basic_header():
            return httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED"}]})
        return httpx.Response(200, json={"access_token": f"good-token-{request.url.params.get('scope')}"})

    def _route(self, request: httpx.Request, path: str) -> httpx.Response:
        api = {"Docker-Distribution-API-Version": "registry/2.0"}
        if path == "/v2/":
            return httpx.Response(200, json={}, headers=api)
        if path == "/v2/_catalog":
            return self._paged(request, sorted(self.tags), "repositories", self.catalog_page)
        repo, _, rest = path.removeprefix("/v2/").rpartition("/")
        if path.endswith("/tags/list"):
            repo = path.removeprefix("/v2/").removesuffix("/tags/list")
            if repo not in self.tags:
                return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN"}]})
            return self._paged(request, sorted(self.tags[repo]), "tags", self.tags_page, name=repo)
        repo, kind = repo.rsplit("/", 1)
        if kind == "manifests":
            return self._manifest(request, repo, rest)
        if kind == "blobs" and rest in self.blobs:
            return httpx.Response(200, content=self.blobs[rest])
        if kind == "referrers" and self.referrers:
            return self._referrers(repo, rest)
        return httpx.Response(404, text="404 page not found\n")

    def _paged(
        self, request: httpx.Request, items: list[str], key: str, page: int | None, **extra: str
    ) -> httpx.Response:
        last = request.url.params.get("last")
        start = items.index(last) + 1 if last else 0
        end = len(items) if page is None else start + page
        headers = {}
        if end < len(items):
            headers["Link"] = f'<{request.url.path}?last={items[end - 1]}&n={page}>; rel="next"'
        return httpx.Response(200, json={**extra, key: items[start:end]}, headers=headers)

    def _manifest(self, request: httpx.Request, repo: str, ref: str) -> httpx.Response:
        digest = ref if ref.startswith("sha256:") else self.tags.get(repo, {}).get(ref)
        found = self.manifests.get(repo, {}).get(digest or "")
        if found is None:
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        media_type, body = found
        headers = {"Docker-Content-Digest": sha(body), "Content-Type": media_type}
        return httpx.Response(200, content=b"" if request.method == "HEAD" else body, headers=headers)

    def _referrers(self, repo: str, digest: str) -> httpx.Response:
        descriptors = []
        for candidate, (media_type, body) in self.manifests.get(repo, {}).items():
            parsed = json.loads(body)
            if parsed.get("subject", {}).get("digest") == digest:
                descriptors.append(
                    {
                        "mediaType": media_type,
                        "digest": candidate,
                        "size": len(body),
                        "artifactType": parsed["artifactType"],
                    }
                )
        return httpx.Response(200, json={"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors})

    # ---- inspecting ------------------------------------------------------

    def calls(self, predicate: Callable[[httpx.Request], bool]) -> int:
        return sum(1 for r in self.requests if predicate(r))


@pytest.fixture
def key_pair(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    pub = tmp_path / "release.pub"
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key, str(pub)


@pytest.fixture
def creds_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("REG_USER", USER)
    monkeypatch.setenv("REG_PASSWORD", PASSWORD)
    return {"username_env": "REG_USER", "password_env": "REG_PASSWORD"}


def target(url: str = "http://reg.test:5000", **kwargs: Any) -> DistributionTarget:
    return DistributionTarget(name="edge", kind="distribution", url=url, timeout=2, **kwargs)


def run(
    reg: FakeRegistry, tgt: DistributionTarget | None = None, *, keys: tuple[str, ...] = (), concurrency: int = 4,
    tls: TlsFacts | Exception | None = None, progress: list[tuple[str, int, int | None]] | None = None,
) -> TargetFacts:  # fmt: skip
    def probe(host: str, port: int, ca_file: Path | None, timeout: float) -> TlsFacts:
        if isinstance(tls, Exception):
            raise tls
        assert tls is not None, "the fake TLS probe was not expected to run"
        return tls

    options = CollectOptions(
        concurrency=concurrency,
        trusted_keys=keys,
        progress=(lambda *a: progress.append(a)) if progress is not None else None,
    )
    return collect(tgt or target(), options, transport=httpx.MockTransport(reg.handler), tls_probe=probe)


def repos_of(facts: TargetFacts) -> dict[str, RepositoryFacts]:
    fact = facts.facts[REPOSITORIES]
    assert fact.state is FactState.OK, fact.detail
    return {r.name: r for r in fact.value}


def tags_of(repo: RepositoryFacts) -> dict[str, TagFacts]:
    return {t.name: t for t in repo.tags}


def good_tls(**changes: Any) -> TlsFacts:
    base = TlsFacts("reg.test", 5000, "TLSv1.3", "TLS_AES_256_GCM_SHA384", True, None, True, "system")
    return replace(base, **changes)


# ---- an open plain-HTTP registry ---------------------------------------------


def test_open_registry_facts_and_minimal_request_count() -> None:
    reg = FakeRegistry(catalog_page=2)
    digests = {
        ("app/web", "v1.0.0"): reg.push("app/web", "v1.0.0", manifest_bytes("w1")),
        ("app/web", "latest"): reg.push("app/web", "latest", manifest_bytes("w1")),
        ("app/api", "v2"): reg.push("app/api", "v2", manifest_bytes("a2"), OCI_INDEX),
        ("tools/x", "1"): reg.push("tools/x", "1", manifest_bytes("x1")),
    }
    progress: list[tuple[str, int, int | None]] = []
    facts = run(reg, progress=progress)

    assert facts.kind == "distribution" and facts.target == "edge"
    assert facts.facts[ENDPOINT].value.scheme == "http"
    tls = facts.facts[TLS].value
    assert tls.protocol is None and tls.verified is False and tls.verify_error == "target is plain HTTP"
    plain = facts.facts[PLAIN_HTTP].value
    assert plain.serves_api is True and plain.status == 200 and plain.url == "http://reg.test:5000/v2/"
    anon = facts.facts[ANONYMOUS_ACCESS].value
    assert (anon.v2_status, anon.catalog_status, anon.challenge) == (200, 200, None)
    assert anon.anonymously_pullable == ("app/api", "app/web", "tools/x")

    repos = repos_of(facts)
    assert sorted(repos) == ["app/api", "app/web", "tools/x"]
    web = tags_of(repos["app/web"])
    assert web["v1.0.0"].digest == digests[("app/web", "v1.0.0")] == web["latest"].digest
    assert web["v1.0.0"].media_type == OCI_MANIFEST and web["v1.0.0"].signatures == ()
    assert tags_of(repos["app/api"])["v2"].media_type == OCI_INDEX
    assert all(r.anonymous_pull is True and r.error is None for r in repos.values())

    for name in (TAG_IMMUTABILITY, SCANNING, CONTENT_TRUST, REPLICATION, PULL_COUNTS):
        assert facts.facts[name].state is FactState.UNSUPPORTED
        assert facts.facts[name].detail == "not supported by distribution"
    assert facts.facts[RETENTION].state is FactState.NOT_OBSERVABLE
    assert "garbage-collect" in (facts.facts[RETENTION].detail or "")

    # probes: plain + anonymous v2 + anonymous catalog; catalog: 2 pages of 2;
    # one tags/list per repo; one HEAD per tag; one referrers probe (404)
    assert facts.requests == len(reg.requests) == 3 + 2 + 3 + 4 + 1
    assert reg.calls(lambda r: "/referrers/" in r.url.path) == 1
    assert progress[0] == ("repositories", 0, 3) and progress[-1] == ("repositories", 3, 3)


def test_request_counter_names_calls() -> None:
    reg = FakeRegistry()
    reg.push("a", "1", manifest_bytes("1"))
    counter = RequestCounter()
    collect(target(), CollectOptions(), transport=httpx.MockTransport(reg.handler), counter=counter)
    assert counter.by_call["HEAD manifest"] == 1
    assert counter.by_call["GET tags"] == 1
    assert counter.by_call["GET catalog"] == 2  # anonymous probe + listing
    assert counter.total == len(reg.requests)


def test_repository_filter_and_declared_public() -> None:
    reg = FakeRegistry()
    for repo in ("app/web", "app/api", "tools/x"):
        reg.push(repo, "1", manifest_bytes(repo))
    facts = run(reg, target(repositories=["app/*"], public_repositories=["app/web"]))
    repos = repos_of(facts)
    assert sorted(repos) == ["app/api", "app/web"]
    assert repos["app/web"].declared_public and not repos["app/api"].declared_public
    assert reg.calls(lambda r: r.url.path == "/v2/tools/x/tags/list") == 0


def test_tags_paginated_with_link_are_all_read() -> None:
    reg = FakeRegistry(tags_page=3)
    for i in range(8):
        reg.push("app", f"v{i}", manifest_bytes(f"v{i}"))
    facts = run(reg)
    assert sorted(tags_of(repos_of(facts)["app"])) == [f"v{i}" for i in range(8)]
    assert reg.calls(lambda r: r.url.path.endswith("/tags/list")) == 3


def test_cosign_artifact_tags_are_not_image_tags() -> None:
    hexd = "0" * 64
    images, artifacts = split_artifact_tags(
        ["v1", f"sha256-{hexd}.sig", f"sha256-{hexd}.att", f"sha256-{hexd}.sbom", f"sha256-{hexd}", "sha256-short.sig"]
    )
    assert images == ["v1", "sha256-short.sig"]
    assert len(artifacts) == 4


# ---- authentication ---------------------------------------------------------


def test_basic_auth_over_http(creds_env: dict[str, str]) -> None:
    reg = FakeRegistry(auth="basic")
    reg.push("app", "v1", manifest_bytes("1"))
    facts = run(reg, target(**creds_env))
    plain = facts.facts[PLAIN_HTTP].value
    assert plain.status == 401 and plain.serves_api and plain.challenge_schemes == ("basic",)
    anon = facts.facts[ANONYMOUS_ACCESS].value
    assert (anon.v2_status, anon.catalog_status) == (401, 401)
    assert anon.challenge.scheme == "basic" and anon.challenge.realm == "Registry Realm"
    assert anon.anonymously_pullable == ()
    repo = repos_of(facts)["app"]
    assert repo.anonymous_pull is False and tags_of(repo)["v1"].digest
    # the anonymous challenge is reused: no 401 round trip for authenticated calls
    authed = [r.url.path for r in reg.requests if "authorization" in r.headers]
    assert authed == ["/v2/_catalog", "/v2/app/tags/list", "/v2/app/manifests/v1", authed[-1]]
    assert authed[-1].startswith("/v2/app/referrers/")
    assert facts.requests == 3 + len(authed)


def test_bearer_token_flow(creds_env: dict[str, str]) -> None:
    reg = FakeRegistry(auth="bearer")
    reg.push("app/web", "v1", manifest_bytes("1"))
    reg.push("app/api", "v1", manifest_bytes("2"))
    facts = run(reg, target(**creds_env, allowed_token_realms=[TOKEN_SERVICE]))
    anon = facts.facts[ANONYMOUS_ACCESS].value
    assert anon.challenge.scheme == "bearer"
    assert anon.challenge.realm == "https://auth.test/token" and anon.challenge.service == "reg.test"
    repos = repos_of(facts)
    assert all(r.anonymous_pull is None for r in repos.values())  # token auth may allow some
    token_scopes = sorted(r.url.params["scope"] for r in reg.requests if r.url.host == "auth.test")
    assert token_scopes == ["registry:catalog:*", "repository:app/api:pull", "repository:app/web:pull"]


def test_missing_variable_is_named_and_probes_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REG_USER", USER)
    monkeypatch.delenv("REG_SECRET", raising=False)
    reg = FakeRegistry(auth="basic")
    facts = run(reg, target(username_env="REG_USER", password_env="REG_SECRET"))
    fact = facts.facts[REPOSITORIES]
    assert fact.state is FactState.ERROR
    assert fact.detail == "environment variable REG_SECRET is not set"
    assert facts.facts[ANONYMOUS_ACCESS].state is FactState.OK
    assert not any("authorization" in r.headers for r in reg.requests)


def test_wrong_password_is_an_error_without_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REG_USER", USER)
    monkeypatch.setenv("REG_PASSWORD", "canary-wrong-9c1d")
    reg = FakeRegistry(auth="basic")
    reg.push("app", "v1", manifest_bytes("1"))
    facts = run(reg, target(username_env="REG_USER", password_env="REG_PASSWORD"))
    fact = facts.facts[REPOSITORIES]
    assert fact.detail == "HTTP 401 from GET /v2/_catalog (credentials rejected)"
    assert "canary-wrong-9c1d" not in repr(facts)


@pytest.mark.parametrize("mode", ["basic", "bearer"])
def test_canary_password_never_reaches_facts(creds_env: dict[str, str], mode: str) -> None:
    """Failures of every kind, some of whose raw texts contain the password:
    nothing in the facts may carry it (nor its base64 Basic form)."""
    basic_b64 = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    reg = FakeRegistry(auth=mode)
    reg.push("app/ok", "v1", manifest_bytes("1"))
    reg.push("app/boom", "v1", manifest_bytes("2"))
    reg.push("app/echo", "v1", manifest_bytes("3"))
    reg.faults = {
        "/v2/app/boom/": httpx.ConnectError(f"cannot reach with password {PASSWORD}"),
        "/v2/app/echo/": httpx.Response(500, text=f"echo: Authorization: Basic {basic_b64} {PASSWORD}"),
    }
    facts = run(reg, target(**creds_env, allowed_token_realms=[TOKEN_SERVICE]))
    repos = repos_of(facts)
    assert repos["app/boom"].error == "cannot connect: cannot reach with password ***"
    assert repos["app/echo"].error == "HTTP 500 from GET /v2/app/echo/tags/list"
    text = repr(facts)
    assert PASSWORD not in text and basic_b64 not in text
    assert "good-token" not in text


# ---- faults --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "detail"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "connection refused"),
        (httpx.ReadTimeout("read timed out"), "timed out: no complete answer within 2 s"),
    ],
)
def test_unreachable_registry_gives_error_facts(fault: Exception, detail: str) -> None:
    reg = FakeRegistry(faults={"/": fault})
    facts = run(reg)
    for name in (PLAIN_HTTP, ANONYMOUS_ACCESS, REPOSITORIES):
        assert facts.facts[name].state is FactState.ERROR, name
        assert facts.facts[name].detail == detail
    assert facts.facts[ANONYMOUS_ACCESS].source.startswith("GET http://reg.test:5000/v2/")


@pytest.mark.parametrize(
    ("response", "detail"),
    [
        (httpx.Response(503, text="busy"), "HTTP 503 from GET /v2/_catalog"),
        (httpx.Response(200, text="<html>not json"), "invalid JSON from GET /v2/_catalog"),
    ],
)
def test_catalog_failure_is_an_error_fact(response: httpx.Response, detail: str) -> None:
    reg = FakeRegistry(faults={"/v2/_catalog": response})
    facts = run(reg)
    fact = facts.facts[REPOSITORIES]
    assert fact.state is FactState.ERROR and fact.detail == detail
    assert fact.source == "GET http://reg.test:5000/v2/_catalog?n=100"
    assert facts.facts[ANONYMOUS_ACCESS].value.catalog_status == response.status_code


def test_repository_and_tag_failures_stay_local() -> None:
    reg = FakeRegistry()
    reg.push("good", "v1", manifest_bytes("g"))
    reg.push("broken", "v1", manifest_bytes("b"))
    reg.push("partly", "v1", manifest_bytes("p1"))
    reg.push("partly", "v2", manifest_bytes("p2"))
    reg.faults = {
        "/v2/broken/tags/list": httpx.Response(500),
        "/v2/partly/manifests/v2": httpx.ReadTimeout("slow"),
    }
    repos = repos_of(run(reg))
    assert repos["broken"].error == "HTTP 500 from GET /v2/broken/tags/list" and repos["broken"].tags == ()
    assert repos["good"].error is None and tags_of(repos["good"])["v1"].digest
    partly = tags_of(repos["partly"])
    assert partly["v1"].error is None and partly["v1"].digest
    assert partly["v2"].error == "timed out: no complete answer within 2 s" and partly["v2"].digest is None


def test_unexpected_failure_never_escapes_collect() -> None:
    reg = FakeRegistry(scheme="https")
    facts = run(reg, target("https://reg.test:5000"), tls=RuntimeError("bug"))
    assert facts.facts[TLS].state is FactState.ERROR
    assert "internal error" in (facts.facts[TLS].detail or "")
    assert "bug" not in repr(facts)


# ---- TLS gate -------------------------------------------------------------------


def test_unverified_tls_sends_no_credentials_but_probes_anonymously(creds_env: dict[str, str]) -> None:
    reg = FakeRegistry(scheme="https", auth="basic")
    reg.push("app", "v1", manifest_bytes("1"))
    expired = good_tls(verified=False, verify_error="certificate has expired", days_remaining=-3.0)
    facts = run(reg, target("https://reg.test:5000", **creds_env), tls=expired)
    assert facts.facts[TLS].value.verify_error == "certificate has expired"
    fact = facts.facts[REPOSITORIES]
    assert fact.state is FactState.ERROR
    assert fact.detail == "not collected: TLS verification failed (certificate has expired)"
    assert facts.facts[ANONYMOUS_ACCESS].value.v2_status == 401
    assert not any("authorization" in r.headers for r in reg.requests)


def test_hostname_mismatch_also_blocks_credentials(creds_env: dict[str, str]) -> None:
    reg = FakeRegistry(scheme="https", auth="basic")
    facts = run(reg, target("https://reg.test:5000", **creds_env), tls=good_tls(hostname_matches=False))
    assert "certificate does not name reg.test" in (facts.facts[REPOSITORIES].detail or "")
    assert not any("authorization" in r.headers for r in reg.requests)


def test_https_target_plain_http_answers() -> None:
    reg = FakeRegistry(scheme="https")
    facts = run(reg, target("https://reg.test:5000"), tls=good_tls())
    plain = facts.facts[PLAIN_HTTP].value
    assert (plain.serves_api, plain.status, plain.redirects_to_https) == (False, 400, False)
    assert facts.facts[REPOSITORIES].state is FactState.OK

    def redirecting(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            return httpx.Response(301, headers={"Location": "https://reg.test:5000/v2/"})
        return reg.handler(request)

    options = CollectOptions()
    facts = collect(
        target("https://reg.test:5000"),
        options,
        transport=httpx.MockTransport(redirecting),
        tls_probe=lambda *a: good_tls(),
    )
    plain = facts.facts[PLAIN_HTTP].value
    assert (plain.serves_api, plain.status, plain.redirects_to_https) == (False, 301, True)


def test_https_target_refusing_plain_http_is_not_an_error() -> None:
    reg = FakeRegistry(scheme="https")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            raise httpx.ConnectError("[Errno 111] Connection refused")
        return reg.handler(request)

    facts = collect(
        target("https://reg.test:5000"),
        CollectOptions(),
        transport=httpx.MockTransport(handler),
        tls_probe=lambda *a: good_tls(),
    )
    plain = facts.facts[PLAIN_HTTP]
    assert plain.state is FactState.OK and plain.value.serves_api is False and plain.value.status is None


def test_tls_handshake_failure_is_an_error_fact() -> None:
    from audits.collectors.tls_probe import TlsProbeError

    reg = FakeRegistry(scheme="https")
    facts = run(reg, target("https://reg.test:5000"), tls=TlsProbeError("connection refused"))
    assert facts.facts[TLS].state is FactState.ERROR and facts.facts[TLS].detail == "connection refused"
    assert facts.facts[REPOSITORIES].detail == "not collected: TLS handshake failed (connection refused)"


# ---- signatures --------------------------------------------------------------------


def test_tag_scheme_signature_verifies_without_fetching_the_canonical_payload(
    key_pair: tuple[ec.EllipticCurvePrivateKey, str],
) -> None:
    key, pub = key_pair
    reg = FakeRegistry()
    digest = reg.push("app", "v1", manifest_bytes("1"))
    reg.push("app", "also-v1", manifest_bytes("1"))
    reg.push("app", "unsigned", manifest_bytes("2"))
    sig_tag = reg.sign(key, "app", digest)
    facts = run(reg, keys=(pub,))
    tags = tags_of(repos_of(facts)["app"])
    assert sorted(tags) == ["also-v1", "unsigned", "v1"]  # the .sig tag is not an image tag
    [sig] = tags["v1"].signatures
    assert (sig.format, sig.discovered_via, sig.reference) == ("cosign", "tag", sig_tag)
    assert sig.verified is True and sig.verified_by == pub and sig.verify_error is None
    assert tags["also-v1"].signatures == tags["v1"].signatures
    assert tags["unsigned"].signatures == ()
    assert reg.calls(lambda r: r.method == "GET" and r.url.path == f"/v2/app/manifests/{sig_tag}") == 1
    assert reg.calls(lambda r: "/blobs/" in r.url.path) == 0


def test_non_canonical_payload_is_fetched_and_verified(key_pair: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    key, pub = key_pair
    reg = FakeRegistry()
    digest = reg.push("app", "v1", manifest_bytes("1"))
    reg.sign(key, "app", digest, reference="registry.example.com/app")
    [sig] = tags_of(repos_of(run(reg, keys=(pub,)))["app"])["v1"].signatures
    assert sig.verified is True
    assert reg.calls(lambda r: "/blobs/" in r.url.path) == 1


def test_signature_for_another_digest_does_not_verify(key_pair: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    key, pub = key_pair
    reg = FakeRegistry()
    digest = reg.push("app", "v1", manifest_bytes("1"))
    other = reg.push("app", "v2", manifest_bytes("2"))
    reg.sign(key, "app", digest, signed_digest=other)  # v2's signature copied next to v1
    tags = tags_of(repos_of(run(reg, keys=(pub,)))["app"])
    [sig] = tags["v1"].signatures
    assert sig.verified is False and sig.verify_error == f"signature is for another image ({other})"


def test_wrong_key_and_no_key(tmp_path: Path, key_pair: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    key, _ = key_pair
    stranger = ec.generate_private_key(ec.SECP256R1())
    reg = FakeRegistry()
    digest = reg.push("app", "v1", manifest_bytes("1"))
    reg.sign(stranger, "app", digest)
    facts_wrong = run(reg, keys=(key_pair[1],))
    [sig] = tags_of(repos_of(facts_wrong)["app"])["v1"].signatures
    assert sig.verified is False and sig.verify_error == "no trusted key verifies the signature"
    [sig] = tags_of(repos_of(run(reg))["app"])["v1"].signatures
    assert sig.verified is None and sig.verify_error == "no trusted key configured"


def test_signature_manifest_failure_marks_the_tag(key_pair: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    key, pub = key_pair
    reg = FakeRegistry()
    digest = reg.push("app", "v1", manifest_bytes("1"))
    sig_tag = reg.sign(key, "app", digest)
    reg.faults = {f"/v2/app/manifests/{sig_tag}": httpx.Response(502)}
    tag = tags_of(repos_of(run(reg, keys=(pub,)))["app"])["v1"]
    assert tag.signatures is None
    assert tag.error == f"signature lookup failed: HTTP 502 from GET /v2/app/manifests/{sig_tag}"


def test_referrers_api_is_used_when_supported(key_pair: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    key, pub = key_pair
    reg = FakeRegistry(referrers=True)
    d1 = reg.push("app", "v1", manifest_bytes("1"))
    reg.push("app", "v2", manifest_bytes("2"))
    reg.push("app", "v3", manifest_bytes("3"))
    sig_digest = reg.attach_referrer(key, "app", d1)
    facts = run(reg, keys=(pub,), concurrency=1)
    tags = tags_of(repos_of(facts)["app"])
    [sig] = tags["v1"].signatures
    assert (sig.discovered_via, sig.reference, sig.verified) == ("referrers", sig_digest, True)
    assert tags["v2"].signatures == () and tags["v3"].signatures == ()
    referrer_calls = Counter(r.url.path for r in reg.requests if "/referrers/" in r.url.path)
    assert len(referrer_calls) == 3 and set(referrer_calls.values()) == {1}  # the probe is v1's lookup


def test_referrers_probe_happens_once_per_registry() -> None:
    reg = FakeRegistry()
    for repo in ("a", "b", "c"):
        for tag in ("1", "2"):
            reg.push(repo, tag, manifest_bytes(repo + tag))
    run(reg, concurrency=8)
    assert reg.calls(lambda r: "/referrers/" in r.url.path) == 1


def test_invalid_tag_names_from_the_registry_are_never_requested() -> None:
    """A hostile registry listing `../../x` must not steer requests elsewhere."""
    reg = FakeRegistry()
    reg.push("app", "v1", manifest_bytes("a"))
    reg.tags["app"]["../../v2/_catalog"] = reg.tags["app"]["v1"]
    tags = tags_of(repos_of(run(reg))["app"])
    assert tags["v1"].digest and tags["v1"].error is None
    assert "not allow" in (tags["../../v2/_catalog"].error or "")
    assert reg.calls(lambda r: "/manifests/.." in r.url.raw_path.decode()) == 0
