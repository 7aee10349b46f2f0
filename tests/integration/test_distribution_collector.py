"""The distribution collector against real `docker-registry` 2.8 processes on
127.0.0.1: hardened (TLS with a private CA + htpasswd), insecure (plain HTTP,
no auth), Basic auth over HTTP, expired and self-signed certificates, and a
port nobody listens on. Registries are started per module and always stopped.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from audits.collectors.base import CollectOptions
from audits.collectors.cosign import SIGNATURE_ANNOTATION, canonical_payload
from audits.collectors.distribution import collect
from audits.config import DistributionTarget
from audits.model import (
    ADMIN_ACCOUNT,
    ANONYMOUS_ACCESS,
    CREDENTIALS,
    ENCRYPTION,
    NETWORK_EXPOSURE,
    PLAIN_HTTP,
    REPOSITORIES,
    TLS,
    FactState,
    RepositoryFacts,
    TargetFacts,
)
from sandbox.images import build_image, build_index, push_with_skopeo, write_layout
from sandbox.oci import Blob, image_manifest
from sandbox.process import free_port
from sandbox.pusher import OciPusher
from sandbox.registry import RegistrySpec, RunningRegistry, start_registry

pytestmark = pytest.mark.integration

PASSWORD = "integration-canary-5b9e0c"
StartRegistry = Callable[[RegistrySpec], RunningRegistry]


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartRegistry]:
    workdir = tmp_path_factory.mktemp("registries")
    running: list[RunningRegistry] = []

    def _start(spec: RegistrySpec) -> RunningRegistry:
        reg = start_registry(spec, workdir)
        running.append(reg)
        return reg

    try:
        yield _start
    finally:
        for reg in running:
            reg.stop()


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    pub = tmp_path_factory.mktemp("keys") / "release.pub"
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key, str(pub)


def cosign_signature(key: ec.EllipticCurvePrivateKey, reference: str, digest: str) -> Any:
    """The manifest cosign pushes at `sha256-<hex>.sig`: one simple-signing
    layer whose annotation is the ECDSA signature of the payload."""
    payload = Blob("application/vnd.dev.cosign.simplesigning.v1+json", canonical_payload(reference, digest))
    signature = base64.b64encode(key.sign(payload.data, ec.ECDSA(hashes.SHA256()))).decode()
    config = Blob("application/vnd.oci.image.config.v1+json", b"{}")
    return image_manifest(config, (payload,), layer_annotations={payload.digest: {SIGNATURE_ANNOTATION: signature}})


def audit(reg: RunningRegistry, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> TargetFacts:
    for name, value in reg.env.items():
        monkeypatch.setenv(name, value)
    fields: dict[str, Any] = {**reg.targets[0], "timeout": 5}
    keys = overrides.pop("trusted_keys", ())
    fields.update(overrides)
    return collect(DistributionTarget(**fields), CollectOptions(concurrency=8, trusted_keys=keys))


def by_name(facts: TargetFacts) -> dict[str, RepositoryFacts]:
    fact = facts.facts[REPOSITORIES]
    assert fact.state is FactState.OK, fact.detail
    return {r.name: r for r in fact.value}


# ---- hardened: TLS with the sandbox CA, htpasswd --------------------------------


@pytest.fixture(scope="module")
def hardened(
    start: StartRegistry, signing_key: tuple[ec.EllipticCurvePrivateKey, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[RunningRegistry, dict[tuple[str, str], str]]:
    reg = start(RegistrySpec("hardened", tls=True, users={"ci": PASSWORD}, bcrypt_rounds=4))
    key, _ = signing_key
    web, api, multi = build_image("web-1"), build_image("api-1"), build_index("multi-1")
    layout = write_layout(tmp_path_factory.mktemp("layout"), {"web": web})
    pushed = {("app/web", "v1.0.0"): push_with_skopeo(layout, reg, "app/web", "v1.0.0", ref="web")}
    digests = OciPusher.for_registry(reg).push_many_sync(
        [("app/web", "latest", web), ("app/api", "v2.0.0", api), ("app/multi", "v3", multi)]
    )
    pushed.update(dict(zip([("app/web", "latest"), ("app/api", "v2.0.0"), ("app/multi", "v3")], digests, strict=True)))
    sig = cosign_signature(key, f"{reg.address}/app/web", web.digest)
    OciPusher.for_registry(reg).push_many_sync([("app/web", web.digest.replace(":", "-") + ".sig", sig)])
    return reg, pushed


def test_hardened_registry_tls_auth_tags_and_signatures(
    hardened: tuple[RunningRegistry, dict[tuple[str, str], str]],
    signing_key: tuple[ec.EllipticCurvePrivateKey, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reg, pushed = hardened
    facts = audit(reg, monkeypatch, trusted_keys=(signing_key[1],))

    tls = facts.facts[TLS].value
    assert tls.verified is True and tls.hostname_matches is True, tls.verify_error
    assert tls.protocol in ("TLSv1.2", "TLSv1.3") and tls.self_signed is False
    assert tls.days_remaining is not None and tls.days_remaining > 300

    plain = facts.facts[PLAIN_HTTP].value
    assert plain.serves_api is False and plain.status == 400  # Go: "Client sent an HTTP request to an HTTPS server"

    anon = facts.facts[ANONYMOUS_ACCESS].value
    assert (anon.v2_status, anon.catalog_status) == (401, 401)
    assert anon.challenge is not None and anon.challenge.scheme == "basic"
    assert anon.anonymously_pullable == ()

    repos = by_name(facts)
    assert sorted(repos) == ["app/api", "app/multi", "app/web"]
    for (repo, tag), digest in pushed.items():
        found = {t.name: t for t in repos[repo].tags}[tag]
        assert found.digest == digest, (repo, tag)
        assert found.error is None
    web = {t.name: t for t in repos["app/web"].tags}
    assert sorted(web) == ["latest", "v1.0.0"]  # the .sig tag is not an image tag
    assert {t.name: t for t in repos["app/multi"].tags}["v3"].media_type == "application/vnd.oci.image.index.v1+json"
    [sig] = web["latest"].signatures or ()
    assert (sig.format, sig.discovered_via, sig.verified) == ("cosign", "tag", True)
    assert sig.verified_by == signing_key[1]
    assert {t.name: t for t in repos["app/api"].tags}["v2.0.0"].signatures == ()
    assert all(r.anonymous_pull is False for r in repos.values())

    [cred] = facts.facts[CREDENTIALS].value
    assert cred.id == "ci" and cred.shared is True
    assert facts.facts[ADMIN_ACCOUNT].value.shared_admin_enabled is True
    assert facts.facts[NETWORK_EXPOSURE].value.publicly_reachable is False  # bound to 127.0.0.1
    assert facts.facts[ENCRYPTION].value.registry_wide.customer_managed is False
    assert PASSWORD not in repr(facts)


def test_hardened_registry_wrong_key_and_filter(
    hardened: tuple[RunningRegistry, dict[tuple[str, str], str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg, _ = hardened
    other = tmp_path / "other.pub"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    facts = audit(reg, monkeypatch, trusted_keys=(str(other),), repositories=["app/w*"])
    repos = by_name(facts)
    assert list(repos) == ["app/web"]
    [sig] = {t.name: t for t in repos["app/web"].tags}["latest"].signatures or ()
    assert sig.verified is False and sig.verify_error == "no trusted key verifies the signature"


def test_hardened_registry_rejects_a_wrong_password(
    hardened: tuple[RunningRegistry, dict[tuple[str, str], str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    reg, _ = hardened
    monkeypatch.setenv(reg.username_env or "", reg.username or "")
    monkeypatch.setenv(reg.password_env or "", "wrong-canary-77")
    facts = collect(DistributionTarget(**{**reg.targets[0], "timeout": 5}), CollectOptions())
    assert facts.facts[REPOSITORIES].detail == "HTTP 401 from GET /v2/_catalog (credentials rejected)"
    assert "wrong-canary-77" not in repr(facts)


def test_without_the_ca_the_hardened_registry_is_unverified(
    hardened: tuple[RunningRegistry, dict[tuple[str, str], str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    reg, _ = hardened
    facts = audit(reg, monkeypatch, ca_file=None)
    tls = facts.facts[TLS].value
    assert tls.verified is False and tls.trust_source == "system"
    assert facts.facts[REPOSITORIES].detail.startswith("not collected: TLS verification failed")


# ---- insecure and basic-over-http ------------------------------------------------


def test_insecure_registry_serves_the_api_anonymously(start: StartRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = start(RegistrySpec("insecure", tls=False, users=None))
    OciPusher.for_registry(reg).push_many_sync([("lib/tool", "latest", build_image("tool"))])
    facts = audit(reg, monkeypatch)
    assert facts.facts[TLS].value.verify_error == "target is plain HTTP"
    plain = facts.facts[PLAIN_HTTP].value
    assert plain.serves_api is True and plain.status == 200
    anon = facts.facts[ANONYMOUS_ACCESS].value
    assert (anon.v2_status, anon.catalog_status) == (200, 200)
    assert anon.anonymously_pullable == ("lib/tool",)
    assert by_name(facts)["lib/tool"].anonymous_pull is True
    assert facts.facts[CREDENTIALS].value == ()


def test_basic_auth_over_plain_http(start: StartRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = start(RegistrySpec("basic-http", tls=False, users={"dev": PASSWORD, "ops": "x-other"}, bcrypt_rounds=4))
    OciPusher.for_registry(reg).push_many_sync([("team/app", "1.0.0", build_image("team"))])
    facts = audit(reg, monkeypatch)
    plain = facts.facts[PLAIN_HTTP].value
    assert plain.status == 401 and plain.challenge_schemes == ("basic",)
    assert facts.facts[ANONYMOUS_ACCESS].value.challenge.scheme == "basic"
    assert [t.name for t in by_name(facts)["team/app"].tags] == ["1.0.0"]
    assert facts.facts[ADMIN_ACCOUNT].value.shared_admin_enabled is False
    assert PASSWORD not in repr(facts)


# ---- broken certificates and a dead port ----------------------------------------


@pytest.mark.parametrize(("kind", "error"), [("expired", "certificate has expired"), ("self-signed", "self")])
def test_bad_certificates_show_in_tls_facts(
    start: StartRegistry, monkeypatch: pytest.MonkeyPatch, kind: Any, error: str
) -> None:
    reg = start(RegistrySpec(f"cert-{kind}", tls=True, users={"ci": PASSWORD}, cert=kind, bcrypt_rounds=4))
    facts = audit(reg, monkeypatch)
    tls = facts.facts[TLS].value
    assert tls.verified is False and error in (tls.verify_error or "")
    assert tls.self_signed is (kind == "self-signed")
    if kind == "expired":
        assert tls.days_remaining is not None and tls.days_remaining < 0
    assert facts.facts[REPOSITORIES].state is FactState.ERROR
    assert facts.facts[ANONYMOUS_ACCESS].value.v2_status == 401  # probed without verification, no credentials


def test_stopped_port_gives_error_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    for scheme in ("https", "http"):
        target = DistributionTarget(name="gone", kind="distribution", url=f"{scheme}://127.0.0.1:{port}", timeout=2)
        facts = collect(target, CollectOptions())
        names = (ANONYMOUS_ACCESS, REPOSITORIES) + ((TLS,) if scheme == "https" else (PLAIN_HTTP,))
        for name in names:
            fact = facts.facts[name]
            assert fact.state is FactState.ERROR, (scheme, name)
            assert "connection refused" in (fact.detail or ""), (scheme, name, fact.detail)
