"""The Docker Hub collector against the spec-checked Hub API emulator and a real
docker-registry for the OCI side, through the same target settings users have
(`hub_url`, `registry_url`, `ca_file`): the estate's two organizations, and the
faults a real Docker Hub answers (401, 403, 404, 429 with Retry-After)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from audits.cli import main
from audits.collectors.base import CollectOptions
from audits.collectors.dockerhub import collect
from audits.model import (
    CREDENTIALS,
    LOGGING,
    PULL_COUNTS,
    REPOSITORIES,
    SOURCE_RESTRICTION,
    TAG_IMMUTABILITY,
    FactState,
    TargetFacts,
)
from audits.targets import DockerHubTarget
from sandbox.dockerhub_emulator import Fault, HubEmulator, HubRepository
from sandbox.dockerhub_estate import AUDITOR, TOKEN_ENV, USER_ENV, DockerHubEstate, estate_state, start_dockerhub_estate

pytestmark = pytest.mark.integration

CANARY = "dckr_pat_canary-7Hq2-do-not-leak"


@pytest.fixture(scope="module")
def hub_estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerHubEstate]:
    estate = start_dockerhub_estate(tmp_path_factory.mktemp("dockerhub"))
    try:
        yield estate
    finally:
        estate.stop()


@pytest.fixture
def hub_env(hub_estate: DockerHubEstate, monkeypatch: pytest.MonkeyPatch) -> DockerHubEstate:
    for key, value in hub_estate.env.items():
        monkeypatch.setenv(key, value)
    return hub_estate


def target(estate: DockerHubEstate, namespace: str, hub_url: str | None = None, **extra: Any) -> DockerHubTarget:
    entry = next(t for t in estate.targets if t["namespace"] == namespace)
    return DockerHubTarget.model_validate({**entry, "hub_url": hub_url or entry["hub_url"], **extra})


def emulator(estate: DockerHubEstate, *faults: Fault, owners: bool = True, organization: bool = True) -> HubEmulator:
    """An in-process emulator holding the estate's namespaces, with `faults`."""
    state = estate_state(estate.token, datetime.now(UTC))
    state.faults.extend(faults)
    for ns in state.namespaces.values():
        ns.organization = organization
        if not owners:
            ns.owners = []
    return HubEmulator(state)


def collected(t: DockerHubTarget, keys: tuple[str, ...] = (), **kw: Any) -> tuple[TargetFacts, CollectOptions]:
    options = CollectOptions(concurrency=8, trusted_keys=keys)
    return collect(t, options, **kw), options


def test_a_compliant_and_a_weak_organization(hub_env: DockerHubEstate) -> None:
    good, _ = collected(target(hub_env, "regguard-good"), (str(hub_env.keys.public_key),))
    repos = {r.name: r for r in good.facts[REPOSITORIES].value}
    assert set(repos) == {"regguard-good/api", "regguard-good/site"}
    assert repos["regguard-good/api"].anonymous_pull is False and repos["regguard-good/site"].declared_public
    signatures = [s for r in repos.values() for t in r.tags for s in t.signatures or ()]
    assert len(signatures) == 3 and all(s.verified for s in signatures)
    assert all(t.pushed_at is not None for r in repos.values() for t in r.tags)
    settings = good.facts[TAG_IMMUTABILITY].value.by_repository
    assert settings["regguard-good/site"].immutable_patterns == ("v.*", "[0-9].*", "release-.*")
    pulls = good.facts[PULL_COUNTS].value
    assert pulls.cumulative and list(pulls.daily["regguard-good/site"].values()) == [56000]
    tokens = {c.id: c for c in good.facts[CREDENTIALS].value}
    assert any("regguard audit" in i for i in tokens) and any("ci-pull" in i for i in tokens)
    assert all(c.expires_at is not None and c.usage_tracked for c in tokens.values())
    assert good.facts[SOURCE_RESTRICTION].value.enabled and good.facts[LOGGING].value.enabled

    weak, _ = collected(target(hub_env, "regguard-weak"))
    assert {r.name: r.anonymous_pull for r in weak.facts[REPOSITORIES].value}["regguard-weak/app"] is True
    assert not weak.facts[SOURCE_RESTRICTION].value.enabled and not weak.facts[LOGGING].value.enabled
    legacy = next(c for c in weak.facts[CREDENTIALS].value if "legacy-push" in c.id)
    assert legacy.expires_at is None and legacy.last_used_at is not None


def test_requests_per_repository_stay_within_three_beyond_the_oci_tag_walk(hub_env: DockerHubEstate) -> None:
    with emulator(hub_env) as hub:
        facts, _ = collected(target(hub_env, "regguard-good", hub.url))
        per_repo = [r for r in hub.api.requests if "/repositories/" in r]
    assert len(facts.facts[REPOSITORIES].value) == 2 and len(per_repo) == 2 * 2
    assert hub.api.violations == []


def test_a_token_the_hub_refuses_makes_every_hub_fact_an_error(hub_env: DockerHubEstate) -> None:
    with emulator(hub_env) as hub:
        hub.state.accounts[AUDITOR] = "another-token"
        facts, _ = collected(target(hub_env, "regguard-good", hub.url))
    for name in (REPOSITORIES, CREDENTIALS, SOURCE_RESTRICTION, LOGGING):
        assert facts.facts[name].state is FactState.ERROR
        assert "HTTP 401 from POST /v2/auth/token (token rejected)" in (facts.facts[name].detail or "")


def test_what_the_account_may_not_read_is_manual_naming_the_role(hub_env: DockerHubEstate) -> None:
    with emulator(hub_env, owners=False) as hub:
        facts, _ = collected(target(hub_env, "regguard-good", hub.url))
        assert hub.api.violations == []
    for name in (CREDENTIALS, SOURCE_RESTRICTION, LOGGING):
        assert facts.facts[name].state is FactState.NOT_OBSERVABLE
        assert "organization owner role" in (facts.facts[name].detail or "")
    assert [r.name for r in facts.facts[REPOSITORIES].value] == ["regguard-good/site"]  # public only


def test_a_missing_repository_is_an_error_on_it_alone_and_a_personal_namespace_has_no_org_settings(
    hub_env: DockerHubEstate,
) -> None:
    fault = Fault(r"/repositories/api$", 404, times=None)
    with emulator(hub_env, fault, organization=False) as hub:
        facts, _ = collected(target(hub_env, "regguard-good", hub.url))
    repos = {r.name: r for r in facts.facts[REPOSITORIES].value}
    assert "HTTP 404" in (repos["regguard-good/api"].error or "") and repos["regguard-good/site"].error is None
    assert facts.facts[SOURCE_RESTRICTION].state is FactState.UNSUPPORTED
    assert facts.facts[LOGGING].value.enabled is False
    assert facts.facts[CREDENTIALS].state is FactState.OK  # personal tokens; no organization tokens to list


def test_retry_after_is_waited_out_within_the_budget(hub_env: DockerHubEstate) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    fault = Fault(r"/v2/namespaces/regguard-good/repositories$", 429, times=1, retry_after="7")
    with emulator(hub_env, fault) as hub:
        facts, options = collected(target(hub_env, "regguard-good", hub.url), sleep=sleep)
    assert facts.facts[REPOSITORIES].state is FactState.OK and waits and 6 < waits[0] <= 7
    assert any("waited 7.0 s on Retry-After" in w and "requests left" in w for w in options.published.warnings())


def test_a_wait_beyond_the_budget_is_skipped_work_with_the_reason(hub_env: DockerHubEstate) -> None:
    fault = Fault(r"/v2/orgs/regguard-good/settings$", 429, times=None, retry_after="3600")
    with emulator(hub_env, fault) as hub:
        facts, options = collected(target(hub_env, "regguard-good", hub.url, rate_limit_wait=30))
    restriction = facts.facts[SOURCE_RESTRICTION]
    assert restriction.state is FactState.ERROR
    assert "rate limited (HTTP 429, Retry-After 3600 s): skipped" in (restriction.detail or "")
    assert facts.facts[REPOSITORIES].state is FactState.OK
    assert any("1 call(s) skipped" in w for w in options.published.warnings())


def _texts(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in root.rglob("*"):
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                out.update({f"{path}!{n}": zf.read(n).decode("utf-8", "replace") for n in zf.namelist()})
        elif path.is_file():
            out[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return out


@pytest.mark.parametrize("hub_accepts", [True, False])
def test_a_canary_token_never_reaches_any_output(
    hub_env: DockerHubEstate,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    hub_accepts: bool,
) -> None:
    """Sent to the Hub login and as the registry password (which rejects it):
    never in a report, the evidence bundle, history or the terminal."""
    monkeypatch.setenv(TOKEN_ENV, CANARY)
    monkeypatch.setenv(USER_ENV, AUDITOR)
    with emulator(hub_env) as hub:
        if hub_accepts:
            hub.state.accounts[AUDITOR] = CANARY
        config = {"environment": "prod", "history_dir": str(tmp_path / "history"),
                  "targets": [target(hub_env, "regguard-weak", hub.url).model_dump(mode="json")]}  # fmt: skip
        (tmp_path / "regguard.yaml").write_text(yaml.safe_dump(config))
        code = main(["audit", "-c", str(tmp_path / "regguard.yaml"), "--format", "html,md,json,sarif,junit,oscal",
                     "--output", str(tmp_path / "out"), "--evidence"])  # fmt: skip
        assert hub.api.sessions or not hub_accepts
    captured = capsys.readouterr()
    assert code in (1, 3)
    texts = _texts(tmp_path / "out") | _texts(tmp_path / "history")
    texts |= {"stdout": captured.out, "stderr": captured.err}
    assert [name for name, text in texts.items() if CANARY in text] == []
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert any(f["target"] == "hub-weak" for f in report["findings"])


def test_every_page_of_a_large_namespace_is_read(hub_env: DockerHubEstate) -> None:
    """105 repositories: two pages of the Hub listing (100 a page), the second reached by its `next` link."""
    with emulator(hub_env) as hub:
        repos = hub.state.namespaces["regguard-weak"].repositories
        repos.update({f"svc-{i:03d}": HubRepository(f"svc-{i:03d}") for i in range(103)})
        facts, _ = collected(target(hub_env, "regguard-weak", hub.url))
        listing_pages = [r for r in hub.api.requests if r.endswith("/regguard-weak/repositories")]
    names = [r.name for r in facts.facts[REPOSITORIES].value]
    assert len(names) == 105 and len(listing_pages) == 2
    unknown = [r for r in facts.facts[REPOSITORIES].value if r.name.startswith("regguard-weak/svc-")]
    assert all("HTTP 404" in (r.error or "") for r in unknown)  # listed by the Hub, absent from the registry
