"""The GHCR collector against the GitHub emulator (spec-validated, in this process so
faults can be injected) in front of a real docker-registry seeded and cosign-signed
like `sandbox.ghcr_estate` seeds it — the same code path a user's audit of
api.github.com and ghcr.io takes, with only the two base URLs changed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from audits.cli import main
from audits.collectors.base import CollectOptions
from audits.collectors.cosign import COSIGN_ARTIFACT_TYPE
from audits.collectors.ghcr import collect
from audits.collectors.oci import OCI_INDEX
from audits.config import parse_config
from audits.engine import judge
from audits.model import CREDENTIALS, REPOSITORIES, FactState, RepositoryFacts, Status, TargetFacts
from audits.rules.registry import RuleContext, catalog
from audits.targets import GhcrTarget
from sandbox.certs import server_certificate
from sandbox.ghcr_estate import LEGACY, SECURE, _token_value, sandbox_tokens, seed_registry
from sandbox.github_emulator import Fault, GitHubEmulator, GitHubState, Owner, Package, Token, Version
from sandbox.images import build_image
from sandbox.pusher import OciPusher
from sandbox.registry import RegistrySpec, RunningRegistry, start_registry
from sandbox.signing import KeyPair, generate_key_pair, signature_for
from tests.integration.test_canary_secret import _texts

pytestmark = pytest.mark.integration


@dataclass
class Ghcr:
    emulator: GitHubEmulator
    registry: RunningRegistry
    tokens: dict[str, str]
    keys: KeyPair
    workdir: Path

    @property
    def state(self) -> GitHubState:
        return self.emulator.state

    def target(self, owner: str, token_env: str = "GHCR_TEST_TOKEN", **extra: Any) -> GhcrTarget:
        entry = {
            "name": f"gh-{owner}", "kind": "ghcr", "owner": owner, "token_env": token_env,
            "api_url": self.emulator.url, "registry_url": self.registry.url,
            "ca_file": str(self.registry.ca_file), "public_repositories": ["web"] if owner == SECURE else [],
            **extra,
        }
        (target,) = parse_config({"targets": [entry]}, self.workdir / "regguard.yaml").targets
        assert isinstance(target, GhcrTarget)
        return target


@pytest.fixture(scope="module")
def ghcr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ghcr]:
    workdir = tmp_path_factory.mktemp("ghcr")
    tokens = sandbox_tokens()
    values = {owner: _token_value(t) for owner, t in tokens.items()}
    registry = start_registry(RegistrySpec("ghcr", tls=True, users=values, bcrypt_rounds=6), workdir)
    try:
        keys = generate_key_pair(workdir / "keys", "release")
        state, _ = seed_registry(registry, keys.private_key)
        state.tokens = {values[o]: t for o, t in tokens.items()}
        cert = server_certificate(workdir / "certs", "github-api")
        emulator = GitHubEmulator(state, cert.cert_file, cert.key_file).start()
        try:
            yield Ghcr(emulator, registry, values, keys, workdir)
        finally:
            emulator.stop()
    finally:
        registry.stop()


@pytest.fixture(autouse=True)
def fresh_limits(ghcr: Ghcr) -> Iterator[None]:
    ghcr.state.faults.clear()
    ghcr.state.rate_used = 0
    yield
    ghcr.state.faults.clear()
    ghcr.state.rate_used = 0


def run(ghcr: Ghcr, monkeypatch: pytest.MonkeyPatch, owner: str, token: str | None = None, concurrency: int = 16,
        **extra: Any) -> tuple[TargetFacts, CollectOptions]:
    monkeypatch.setenv("GHCR_TEST_TOKEN", token if token is not None else ghcr.tokens[owner])
    options = CollectOptions(trusted_keys=(str(ghcr.keys.public_key),), concurrency=concurrency)
    return collect(ghcr.target(owner, **extra), options), options


def repos(facts: TargetFacts) -> dict[str, RepositoryFacts]:
    fact = facts.facts[REPOSITORIES]
    assert fact.state is FactState.OK, fact.detail
    return {r.name: r for r in fact.value or ()}


PROD = RuleContext(environment="prod", trusted_keys=("release.pub",))


def verdicts(facts: TargetFacts, rule: str) -> dict[str, Status]:
    findings = judge(facts, PROD, {rule: catalog()[rule]})
    return {f.resource: f.status for f in findings}


def test_a_compliant_org_is_read_from_the_api_and_its_signatures_from_the_registry(
    ghcr: Ghcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts, options = run(ghcr, monkeypatch, SECURE)
    found = repos(facts)
    assert sorted(found) == ["api", "web"]
    api = {t.name: t for t in found["api"].tags}
    assert sorted(api) == ["v1.0.0", "v1.1.0"]
    assert all(t.signatures and t.signatures[0].verified for t in api.values())
    assert api["v1.0.0"].pushed_at is not None and found["api"].linked_repository == f"{SECURE}/api"
    assert set(verdicts(facts, "RG-SIGN-002").values()) == {Status.PASS}
    assert verdicts(facts, "RG-AUTH-001")["web"] is Status.PASS  # public and declared public
    (token,) = facts.facts[CREDENTIALS].value or ()
    assert "fine-grained" in token.id and token.expires_at is not None and not token.can_push
    assert "default GITHUB_TOKEN permission: read" in token.detail
    cred = judge(facts, PROD, {"RG-CRED-001": catalog()["RG-CRED-001"]})
    assert {f.status for f in cred} == {Status.PASS}, [f.message for f in cred]
    assert any("GitHub API rate limit:" in w and "of 5,000 requests left" in w for w in options.published.warnings())


def test_the_weak_org_fails_where_it_is_weak(ghcr: Ghcr, monkeypatch: pytest.MonkeyPatch) -> None:
    facts, _ = run(ghcr, monkeypatch, LEGACY)
    found = repos(facts)
    assert found["app"].untagged_digests == 1 and found["tool"].linked_repository is None
    assert verdicts(facts, "RG-TAG-001")["app"] is Status.FAIL
    assert verdicts(facts, "RG-AUTH-001")["tool"] is Status.FAIL  # public, not declared public
    assert verdicts(facts, "RG-SIGN-001")["app:0.9"] is Status.FAIL
    (token,) = facts.facts[CREDENTIALS].value or ()
    assert "classic" in token.id and token.can_push and token.expires_at is None
    assert "default GITHUB_TOKEN permission: write" in token.detail
    assert set(verdicts(facts, "RG-CRED-001").values()) == {Status.FAIL}


def test_requests_per_package_stay_within_three_beyond_the_signatures(
    ghcr: Ghcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = ghcr.state.requests
    run(ghcr, monkeypatch, LEGACY)  # unsigned: no signature manifest to fetch
    api_requests = ghcr.state.requests - before
    assert api_requests == 1 + 2 + 1  # package list, one versions page per package, Actions settings


def test_a_rejected_token_is_an_error_naming_the_401(ghcr: Ghcr, monkeypatch: pytest.MonkeyPatch) -> None:
    facts, _ = run(ghcr, monkeypatch, SECURE, token="ghp_" + "0" * 36)
    fact = facts.facts[REPOSITORIES]
    assert fact.state is FactState.ERROR and "HTTP 401" in (fact.detail or "") and "rejected" in (fact.detail or "")
    assert facts.facts[CREDENTIALS].state is FactState.ERROR


def test_a_token_without_read_packages_makes_the_findings_manual_naming_the_scope(
    ghcr: Ghcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    narrow = "ghp_" + "1" * 36
    ghcr.state.tokens[narrow] = Token("classic", ("read:org",))
    facts, _ = run(ghcr, monkeypatch, SECURE, token=narrow)
    fact = facts.facts[REPOSITORIES]
    assert fact.state is FactState.NOT_OBSERVABLE and "grant the token read:packages" in (fact.detail or "")
    assert set(verdicts(facts, "RG-TAG-001").values()) == {Status.MANUAL}


def test_a_missing_package_is_an_error_on_that_package_only(ghcr: Ghcr, monkeypatch: pytest.MonkeyPatch) -> None:
    ghcr.state.faults.append(Fault("/container/api/versions", 404))
    found = repos(run(ghcr, monkeypatch, SECURE)[0])
    assert found["api"].error is not None and "HTTP 404" in found["api"].error
    assert found["web"].error is None and found["web"].tags


def test_a_429_with_retry_after_is_waited_out_and_the_wait_reported(
    ghcr: Ghcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    ghcr.state.faults.append(Fault("/container/web/versions", 429, retry_after=1))
    started = time.monotonic()
    facts, options = run(ghcr, monkeypatch, SECURE)
    assert 1.0 <= time.monotonic() - started < 8
    assert repos(facts)["web"].error is None
    assert any("waited 1 s for rate limits" in w for w in options.published.warnings())


def test_a_secondary_limit_longer_than_the_allowed_wait_skips_the_work_with_the_reason(
    ghcr: Ghcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    ghcr.state.faults.append(Fault("/versions", 403, times=50, retry_after=120, secondary=True))
    started = time.monotonic()
    before = ghcr.state.requests
    facts, _ = run(ghcr, monkeypatch, SECURE, concurrency=1, max_rate_limit_wait=5)
    assert time.monotonic() - started < 8
    errors = [r.error or "" for r in repos(facts).values()]
    assert errors and all("skipped: GitHub secondary rate limit" in e and "120 s" in e for e in errors)
    # once skipped, nothing more is requested: the package list and the versions calls already under way
    asked = ghcr.state.paths[before:]
    assert asked[0].endswith("/packages") and len(asked) <= 3
    assert not any("/actions/" in p for p in asked)
    assert set(verdicts(facts, "RG-TAG-001").values()) == {Status.ERROR}


def test_an_exhausted_primary_limit_is_skipped_not_waited_for_an_hour(
    ghcr: Ghcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    ghcr.state.rate_used = ghcr.state.rate_limit
    started = time.monotonic()
    facts, _ = run(ghcr, monkeypatch, SECURE)
    assert time.monotonic() - started < 8
    fact = facts.facts[REPOSITORIES]
    assert fact.state is FactState.ERROR and "skipped: GitHub rate limit" in (fact.detail or "")


CANARY = "ghp_canaryZq8v3141donotleak000000000000"


@pytest.mark.parametrize("accepted", [True, False])
def test_a_canary_token_never_reaches_any_output(
    ghcr: Ghcr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], accepted: bool
) -> None:
    """Reports of every format, the evidence bundle, history and the terminal,
    whether GitHub accepts the token (and sends it on to the registry) or not."""
    if accepted:
        ghcr.state.tokens[CANARY] = Token("classic", ("read:packages",))
    monkeypatch.setenv("GHCR_CANARY", CANARY)
    entry = ghcr.target(SECURE, token_env="GHCR_CANARY").model_dump(mode="json")
    config = {"environment": "prod", "history_dir": str(tmp_path / "history"), "targets": [entry]}
    config_path = tmp_path / "regguard.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    code = main(["audit", "-c", str(config_path), "--format", "html,md,json,sarif,junit,oscal",
                 "--output", str(out), "--evidence"])
    captured = capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert report["findings"] and code in (1, 3)
    assert "GitHub API rate limit:" in captured.out  # the remaining budget is in the run summary
    needles = {CANARY, base64.b64encode(f"{SECURE}:{CANARY}".encode()).decode(), CANARY[4:]}
    haystacks = {"stdout": captured.out, "stderr": captured.err, **_texts(out), **_texts(tmp_path / "history")}
    for where, text in haystacks.items():
        for needle in needles:
            assert needle not in text, f"the token leaked into {where}"
    ghcr.state.tokens.pop(CANARY, None)


def test_a_package_name_the_oci_spec_forbids_is_reported_and_never_requested_at_the_registry(
    ghcr: Ghcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = "sha256:" + "d" * 64
    sig = "sha256-" + "d" * 64 + ".sig"
    odd = Owner("acme-odd", "org")
    when = "2026-05-01T00:00:00Z"
    versions = [Version(1, digest, ["v1.0.0"], when), Version(2, "sha256:" + "e" * 64, [sig], when)]
    odd.packages["../../x"] = Package("../../x", "private", None, versions)
    ghcr.state.owners["acme-odd"] = odd
    try:
        facts, _ = run(ghcr, monkeypatch, "acme-odd", token=ghcr.tokens[SECURE])
    finally:
        del ghcr.state.owners["acme-odd"]
    (repo,) = repos(facts).values()
    assert repo.error is not None and "not allowed by the OCI distribution spec" in repo.error
    assert not repo.tags
    assert "../../x" not in ghcr.registry.log_file.read_text()


def test_a_user_account_is_read_from_the_users_paths_and_an_actions_token_is_short_lived(
    ghcr: Ghcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    actions = "ghs_" + "2" * 36
    ghcr.state.tokens[actions] = Token("actions")
    user = Owner("octo", "user")
    user.packages["tool"] = Package("tool", "private", "octo/tool", [])
    ghcr.state.owners["octo"] = user
    try:
        facts, _ = run(ghcr, monkeypatch, "octo", token=actions, owner_type="user")
    finally:
        del ghcr.state.owners["octo"]
    assert list(repos(facts)) == ["tool"]
    assert not any("/orgs/" in p for p in ghcr.state.paths[-2:])
    (token,) = facts.facts[CREDENTIALS].value or ()
    assert "Actions" in token.id and token.expires_at is not None and "a user account" in token.detail
    assert set(verdicts(facts, "RG-CRED-001").values()) == {Status.PASS}


def test_a_signature_listed_in_the_referrers_fallback_index_is_found_and_verified(
    ghcr: Ghcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cosign in OCI 1.1 mode on a registry without the referrers API keeps an index
    under the `sha256-<hex>` tag; its cosign descriptors are the image's signatures."""
    image = build_image("ghcr-referrers")
    repo = f"{SECURE}/ref"
    _, signature = signature_for(ghcr.registry.address, repo, image.digest, ghcr.keys.private_key)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
        "mediaType": signature.media_type, "digest": signature.digest, "size": len(signature.data),
        "artifactType": COSIGN_ARTIFACT_TYPE}]}).encode()
    index_tag = image.digest.replace(":", "-", 1)
    pusher = OciPusher.for_registry(ghcr.registry)
    pusher.push_many_sync([(repo, "v3.0.0", image), (repo, signature.digest, signature)])
    asyncio.run(_put(pusher, repo, index_tag, index))
    when = "2026-05-01T00:00:00Z"
    versions = [Version(1, image.digest, ["v3.0.0"], when), Version(2, "sha256:" + hashlib.sha256(index).hexdigest(),
                                                                    [index_tag], when)]
    ghcr.state.owners[SECURE].packages["ref"] = Package("ref", "private", repo, versions)
    try:
        facts, _ = run(ghcr, monkeypatch, SECURE)
    finally:
        del ghcr.state.owners[SECURE].packages["ref"]
    (tag,) = repos(facts)["ref"].tags
    assert tag.signatures and tag.signatures[0].discovered_via == "referrers" and tag.signatures[0].verified


async def _put(pusher: OciPusher, repo: str, tag: str, body: bytes) -> None:
    async with pusher:
        await pusher.put_manifest(repo, tag, OCI_INDEX, body)
