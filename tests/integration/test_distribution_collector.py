"""The distribution collector against real `docker-registry` 2.8 processes on
127.0.0.1. The shared `estate` (hardened: TLS with the sandbox CA + htpasswd +
notifications, images pushed with skopeo and signed by `sandbox.signing`;
insecure: plain HTTP, no auth; basic-http: htpasswd over plain HTTP) gives the
expected digests and signatures; `registry_factory` starts the expired and
self-signed certificate registries. Every process is stopped by the fixtures.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from audits.collectors.base import CollectOptions
from audits.collectors.distribution import collect
from audits.model import (
    ADMIN_ACCOUNT,
    ANONYMOUS_ACCESS,
    CREDENTIALS,
    ENCRYPTION,
    LOGGING,
    NETWORK_EXPOSURE,
    PLAIN_HTTP,
    REPOSITORIES,
    TLS,
    FactState,
    RepositoryFacts,
    TargetFacts,
)
from audits.targets import DistributionTarget
from sandbox.estate import Estate
from sandbox.process import free_port
from sandbox.registry import RegistrySpec, RunningRegistry

pytestmark = pytest.mark.integration

PASSWORD = "integration-canary-5b9e0c"
RegistryFactory = Callable[[RegistrySpec], RunningRegistry]  # the conftest fixture


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


def seen_digests(facts: TargetFacts) -> dict[str, str | None]:
    return {f"{r.name}:{t.name}": t.digest for r in by_name(facts).values() for t in r.tags}


# ---- hardened: TLS with the sandbox CA, htpasswd, notifications ----------------


def test_hardened_registry_tls_auth_tags_and_signatures(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = estate.registries["hardened"]
    facts = audit(reg, monkeypatch, trusted_keys=(str(estate.trusted_key),))

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

    assert seen_digests(facts) == estate.pushed["hardened"]  # signature tags are not image tags
    repos = by_name(facts)
    assert all(r.anonymous_pull is False for r in repos.values())
    for ref in estate.signatures["hardened"]:
        repo, tag = ref.split(":")
        found = {t.name: t for t in repos[repo].tags}[tag]
        [sig] = found.signatures or ()
        assert (sig.format, sig.discovered_via, sig.verified) == ("cosign", "tag", True), ref
        assert sig.verified_by == str(estate.trusted_key)
    multi = [t for r in repos.values() for t in r.tags if t.media_type == "application/vnd.oci.image.index.v1+json"]
    assert [t.name for t in multi] == ["v2.0.0"]

    users = {c.id: c for c in facts.facts[CREDENTIALS].value}
    assert set(users) == {"regguard-auditor", "ci-publisher"} and not any(c.shared for c in users.values())
    assert facts.facts[ADMIN_ACCOUNT].value.shared_admin_enabled is False
    assert facts.facts[LOGGING].value.enabled is True
    assert facts.facts[NETWORK_EXPOSURE].value.publicly_reachable is False  # bound to 127.0.0.1
    assert facts.facts[ENCRYPTION].value.registry_wide.customer_managed is False
    assert all(secret not in repr(facts) for secret in reg.env.values() if secret != reg.username)


def test_hardened_registry_wrong_key_and_filter(
    estate: Estate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.pub"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    facts = audit(estate.registries["hardened"], monkeypatch, trusted_keys=(str(other),), repositories=["app/w*"])
    repos = by_name(facts)
    assert list(repos) == ["app/web"]
    for tag in repos["app/web"].tags:
        [sig] = tag.signatures or ()
        assert sig.verified is False and sig.verify_error == "no trusted key verifies the signature"


def test_hardened_registry_rejects_a_wrong_password(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = estate.registries["hardened"]
    monkeypatch.setenv(reg.username_env or "", reg.username or "")
    monkeypatch.setenv(reg.password_env or "", PASSWORD)
    facts = collect(DistributionTarget(**{**reg.targets[0], "timeout": 5}), CollectOptions())
    assert facts.facts[REPOSITORIES].detail == "HTTP 401 from GET /v2/_catalog (credentials rejected)"
    assert PASSWORD not in repr(facts)


def test_without_the_ca_the_hardened_registry_is_unverified(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    facts = audit(estate.registries["hardened"], monkeypatch, ca_file=None)
    tls = facts.facts[TLS].value
    assert tls.verified is False and tls.trust_source == "system"
    assert facts.facts[REPOSITORIES].detail.startswith("not collected: TLS verification failed")


# ---- insecure and basic-over-http ------------------------------------------------


def test_insecure_registry_serves_the_api_anonymously(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    facts = audit(estate.registries["insecure"], monkeypatch)
    assert facts.facts[TLS].value.verify_error == "target is plain HTTP"
    plain = facts.facts[PLAIN_HTTP].value
    assert plain.serves_api is True and plain.status == 200
    anon = facts.facts[ANONYMOUS_ACCESS].value
    assert (anon.v2_status, anon.catalog_status) == (200, 200)
    assert anon.anonymously_pullable == ("app/web",)
    assert seen_digests(facts) == estate.pushed["insecure"]
    assert by_name(facts)["app/web"].anonymous_pull is True
    assert facts.facts[CREDENTIALS].value == ()


def test_basic_auth_over_plain_http(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = estate.registries["basic-http"]
    facts = audit(reg, monkeypatch)
    plain = facts.facts[PLAIN_HTTP].value
    assert plain.status == 401 and plain.challenge_schemes == ("basic",)
    assert facts.facts[ANONYMOUS_ACCESS].value.challenge.scheme == "basic"
    assert seen_digests(facts) == estate.pushed["basic-http"]
    [cred] = facts.facts[CREDENTIALS].value
    assert cred.id == "admin" and cred.shared is True
    assert facts.facts[ADMIN_ACCOUNT].value.shared_admin_enabled is True
    assert reg.password and reg.password not in repr(facts)


# ---- broken certificates and a dead port ----------------------------------------


@pytest.mark.parametrize(("kind", "error"), [("expired", "certificate has expired"), ("self-signed", "self")])
def test_bad_certificates_show_in_tls_facts(
    registry_factory: RegistryFactory, monkeypatch: pytest.MonkeyPatch, kind: Any, error: str
) -> None:
    reg = registry_factory(RegistrySpec(f"cert-{kind}", tls=True, users={"ci": PASSWORD}, cert=kind, bcrypt_rounds=4))
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
