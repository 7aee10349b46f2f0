"""The ACR collector against the local ACR emulator: MSAL's client-credentials flow
against an HTTPS authority, ARM 2025-11-01 through azure-mgmt-containerregistry's
`base_url`, and the data plane's token exchange, every request and response held
to the committed REST descriptions. Each assertion names something the emulated
subscription holds (sandbox/acr_estate.py) or a fault it was told to inject."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from audits.collectors import acr
from audits.collectors.base import CollectionRecord, CollectOptions
from audits.engine import judge
from audits.model import (
    ADMIN_ACCOUNT,
    CREDENTIALS,
    ENCRYPTION,
    LOGGING,
    NETWORK_EXPOSURE,
    REPLICATION,
    REPOSITORIES,
    RETENTION,
    TAG_IMMUTABILITY,
    FactState,
    Status,
    TargetFacts,
)
from audits.rules.registry import RuleContext, catalog
from audits.targets import AcrTarget
from sandbox.acr_emulator import AcrEmulator, EmulatedRegistry, Faults
from sandbox.acr_estate import SUBSCRIPTION_ID, AcrEstate, compliant_registry, start_acr_estate, weak_registry
from sandbox.signing import generate_key_pair

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcrEstate]:
    running = start_acr_estate(tmp_path_factory.mktemp("acr-estate"))
    try:
        yield running
    finally:
        running.stop()


def _emulator(estate: AcrEstate) -> AcrEmulator:
    assert estate.emulator is not None
    return estate.emulator


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _collect(emulator: AcrEmulator, entry: dict[str, Any], **options: Any) -> TargetFacts:
    with _env(emulator.env()):
        return acr.collect(AcrTarget.model_validate(entry), CollectOptions(**options))


@pytest.fixture(scope="module")
def compliant(estate: AcrEstate) -> TargetFacts:
    return _collect(_emulator(estate), _emulator(estate).target("prod", ["contosoprod"]))


@pytest.fixture(scope="module")
def weak(estate: AcrEstate) -> TargetFacts:
    return _collect(_emulator(estate), _emulator(estate).target("weak", ["contosoweak"]))


def _findings(
    facts: TargetFacts, environment: str = "prod", trusted_keys: tuple[str, ...] = ()
) -> dict[tuple[str, str], Status]:
    context = RuleContext(environment=environment, target_name=facts.target, trusted_keys=trusted_keys)
    found = judge(facts, context, catalog())
    return {(f.rule, f.resource): f.status for f in found}


def test_every_request_and_response_was_documented(
    estate: AcrEstate, compliant: TargetFacts, weak: TargetFacts
) -> None:
    assert _emulator(estate).violations == []
    arm = [line for plane, line in _emulator(estate).requests if plane == "arm" and "/subscriptions/" in line]
    assert arm and all("api-version=2025-11-01" in line or "api-version=2021-05-01-preview" in line for line in arm)


def test_the_compliant_registry_passes_what_it_was_built_for(compliant: TargetFacts) -> None:
    facts = compliant.facts
    assert facts[ADMIN_ACCOUNT].value.shared_admin_enabled is False
    assert facts[NETWORK_EXPOSURE].value.publicly_reachable is False
    assert "private endpoints approved=1" in facts[NETWORK_EXPOSURE].value.detail
    assert facts[REPLICATION].value.destinations == ("northeurope",)
    assert facts[LOGGING].value.enabled and facts[LOGGING].value.destination.endswith("/regguard-logs")
    [token] = facts[CREDENTIALS].value
    assert token.id == "contosoprod/tokens/ci/password1" and token.can_push and token.expires_at is not None
    assert facts[ENCRYPTION].value.by_repository["contosoprod/payments/api"].customer_managed
    locks = facts[TAG_IMMUTABILITY].value.by_repository
    assert locks["contosoprod/payments/api"].immutable
    repos = {r.name: r for r in facts[REPOSITORIES].value}
    release = next(t for t in repos["contosoprod/payments/api"].tags if t.name == "1.4.2")
    assert release.signatures and release.signatures[0].discovered_via == "tag"
    statuses = _findings(compliant)
    for rule in ("RG-AUTH-003", "RG-NET-001", "RG-REP-001", "RG-MON-001"):
        assert statuses[(rule, "prod")] is Status.PASS, rule
    assert statuses[("RG-TAG-002", "contosoprod/payments/api")] is Status.PASS
    assert statuses[("RG-CRED-001", "contosoprod/tokens/ci/password1")] is Status.PASS
    assert statuses[("RG-SIGN-001", "contosoprod/payments/api:1.4.2")] is Status.PASS


def test_the_weak_registry_fails_each_weakness_by_rule_id(weak: TargetFacts) -> None:
    statuses = _findings(weak)
    for rule in ("RG-AUTH-003", "RG-NET-001", "RG-REP-001", "RG-MON-001"):
        assert statuses[(rule, "weak")] is Status.FAIL, rule
    repo = "contosoweak/tools/builder"
    assert statuses[("RG-AUTH-001", repo)] is Status.FAIL  # anonymousPullEnabled
    assert statuses[("RG-TAG-001", repo)] is Status.FAIL  # latest
    assert statuses[("RG-TAG-002", repo)] is Status.FAIL  # no tag locks
    assert statuses[("RG-RET-001", repo)] is Status.FAIL
    assert statuses[("RG-ENC-001", repo)] is Status.FAIL
    assert statuses[("RG-CRED-001", "contosoweak/tokens/legacy/password1")] is Status.FAIL  # never expires
    assert statuses[("RG-SCAN-001", "weak")] is Status.MANUAL  # Defender for Containers is not read


def test_requests_per_repository_stay_within_three(estate: AcrEstate, compliant: TargetFacts) -> None:
    per_registry = 1 + 4 + 3  # list; replications, tokens, scope maps, diagnostics; exchange, catalog token, catalog
    repositories = len(compliant.facts[REPOSITORIES].value)
    assert (compliant.requests - per_registry) / repositories <= 3


# --------------------------------------------------------------------------
# Faults, each on its own emulator (seconds each)
# --------------------------------------------------------------------------


@pytest.fixture
def faulty(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[AcrEmulator]:
    faults: Faults = request.param
    registries: list[EmulatedRegistry] = [compliant_registry(), weak_registry()]
    emulator = AcrEmulator(tmp_path, SUBSCRIPTION_ID, registries, faults=faults).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.mark.parametrize("faulty", [Faults(forbidden_diagnostics={"contosoprod"})], indirect=True)
def test_a_403_on_diagnostic_settings_is_manual_naming_monitoring_reader(faulty: AcrEmulator) -> None:
    facts = _collect(faulty, faulty.target("prod", ["contosoprod"]))
    logging = facts.facts[LOGGING]
    assert logging.state is FactState.NOT_OBSERVABLE and "Monitoring Reader" in (logging.detail or "")
    assert _findings(facts)[("RG-MON-001", "prod")] is Status.MANUAL
    assert facts.facts[ADMIN_ACCOUNT].state is FactState.OK  # the rest was still read


@pytest.mark.parametrize("faulty", [Faults(forbidden_data_plane={"contosoprod"})], indirect=True)
def test_a_403_on_the_data_plane_is_manual_naming_acrpull(faulty: AcrEmulator) -> None:
    facts = _collect(faulty, faulty.target("prod", ["contosoprod"]))
    repos = facts.facts[REPOSITORIES]
    assert repos.state is FactState.NOT_OBSERVABLE and "AcrPull" in (repos.detail or "")
    assert facts.facts[RETENTION].state is FactState.OK


@pytest.mark.parametrize("faulty", [Faults(throttle_first_arm=2, retry_after_s=1)], indirect=True)
def test_429_with_retry_after_is_waited_for_and_retried(faulty: AcrEmulator) -> None:
    started = time.monotonic()
    facts = _collect(faulty, faulty.target("prod", ["contosoprod"]))
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert facts.facts[ADMIN_ACCOUNT].state is FactState.OK
    assert all(f.state is not FactState.ERROR for f in facts.facts.values())


@pytest.mark.parametrize("faulty", [Faults(throttle_first_data=2, retry_after_s=1)], indirect=True)
def test_429_on_the_data_plane_is_waited_for_and_retried(faulty: AcrEmulator) -> None:
    started = time.monotonic()
    facts = _collect(faulty, faulty.target("prod", ["contosoprod"]))
    assert time.monotonic() - started >= 1.0
    repos = facts.facts[REPOSITORIES]
    assert repos.state is FactState.OK and repos.value and not any(r.error for r in repos.value)
    throttled = [line for plane, line in faulty.requests if plane == "data"]
    assert throttled[0] == throttled[1] == throttled[2]  # the same exchange, answered 429 twice, then served


@pytest.mark.parametrize("faulty", [Faults(broken_registry="contosoweak")], indirect=True)
def test_a_500_on_one_registry_errors_only_what_depends_on_it(faulty: AcrEmulator) -> None:
    broken = _collect(faulty, faulty.target("weak", ["contosoweak"]))
    assert broken.facts[CREDENTIALS].state is FactState.ERROR
    assert "contosoweak" in (broken.facts[CREDENTIALS].detail or "")
    assert broken.facts[ADMIN_ACCOUNT].state is FactState.OK  # from the registry listing itself
    healthy = _collect(faulty, faulty.target("prod", ["contosoprod"]))
    assert all(f.state is not FactState.ERROR for f in healthy.facts.values())


@pytest.mark.parametrize("faulty", [Faults(endless_registry_list=True)], indirect=True)
def test_a_next_link_that_never_ends_is_an_error_not_a_hang(faulty: AcrEmulator) -> None:
    started = time.monotonic()
    facts = _collect(faulty, faulty.target("prod"))
    assert time.monotonic() - started < 30
    admin = facts.facts[ADMIN_ACCOUNT]
    assert admin.state is FactState.ERROR and f"{acr.MAX_PAGES} pages" in (admin.detail or "")
    listed = [line for plane, line in faulty.requests if plane == "arm" and line.startswith("GET /subscriptions/")]
    assert len(listed) == acr.MAX_PAGES + 1  # bounded: the page past the cap is where it stopped


@pytest.mark.parametrize("faulty", [Faults()], indirect=True)
def test_a_response_that_breaks_the_spec_is_caught_by_the_emulator(faulty: AcrEmulator) -> None:
    def break_tags(path: str, body: Any) -> Any:
        if path.endswith("/_tags") and isinstance(body, dict):
            return {**body, "tags": [{"name": 7}]}  # name must be a string; digest etc. are required
        return body

    faulty.mutate_response = break_tags
    facts = _collect(faulty, faulty.target("prod", ["contosoprod"]))
    assert any("/acr/v1/{name}/_tags 200" in v for v in faulty.violations)
    assert all(r.error for r in facts.facts[REPOSITORIES].value)


@pytest.mark.parametrize("faulty", [Faults()], indirect=True)
def test_a_wrong_client_secret_makes_every_fact_an_error(faulty: AcrEmulator) -> None:
    entry = faulty.target("prod", ["contosoprod"], client_secret_env="REGGUARD_TEST_WRONG_SECRET")
    os.environ["REGGUARD_TEST_WRONG_SECRET"] = "not-the-secret"
    try:
        facts = _collect(faulty, entry)
    finally:
        os.environ.pop("REGGUARD_TEST_WRONG_SECRET")
    assert {f.state for f in facts.facts.values()} >= {FactState.ERROR}
    assert facts.facts[ADMIN_ACCOUNT].state is FactState.ERROR


@pytest.mark.parametrize("faulty", [Faults()], indirect=True)
def test_a_named_registry_that_does_not_exist_makes_the_target_incomplete(faulty: AcrEmulator) -> None:
    record = CollectionRecord()
    _collect(faulty, faulty.target("prod", ["contosoprod", "missingone"]), published=record)
    assert any("missingone" in gap for gap in record.gaps())


def test_a_detached_estate_outlives_its_caller_until_stopped(tmp_path: Path) -> None:
    """`sandbox up`: the emulator runs in its own process; its targets answer; stop ends it."""
    detached = start_acr_estate(tmp_path, detach=True)
    try:
        assert detached.pids and detached.alive()
        with _env(detached.env):
            facts = acr.collect(AcrTarget.model_validate(detached.targets[0]), CollectOptions())
        assert facts.facts[ADMIN_ACCOUNT].state is FactState.OK
    finally:
        detached.stop()
    assert not detached.alive()


def test_cosign_signatures_verify_with_the_trusted_key_and_not_with_another(estate: AcrEstate, tmp_path: Path) -> None:
    emulator = _emulator(estate)
    assert estate.trusted_key is not None
    entry = emulator.target("prod", ["contosoprod"])
    trusted = (str(estate.trusted_key),)
    statuses = _findings(_collect(emulator, entry, trusted_keys=trusted), trusted_keys=trusted)
    assert statuses[("RG-SIGN-002", "contosoprod/payments/api:1.4.2")] is Status.PASS
    other = (str(generate_key_pair(tmp_path, "other").public_key),)
    bad = _findings(_collect(emulator, entry, trusted_keys=other), trusted_keys=other)
    assert bad[("RG-SIGN-002", "contosoprod/payments/api:1.4.2")] is Status.FAIL
    assert emulator.violations == []
