"""The GAR collector against the local Artifact Registry emulator, reached as a
user's audit reaches Google: ADC reads a service-account key file
(GOOGLE_APPLICATION_CREDENTIALS), the SDK signs with it, the target's
`endpoint_url` is the SDK's `api_endpoint`. Every request the collector makes is
a documented method and every body the emulator sends validates against the
committed discovery document (the emulator records any violation)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audits.collectors import gar
from audits.collectors.base import CollectOptions
from audits.collectors.gar_facts import LEGACY_REDIRECTION
from audits.engine import judge
from audits.model import (
    ANONYMOUS_ACCESS,
    CREDENTIALS,
    ENCRYPTION,
    LOGGING,
    REPOSITORIES,
    RETENTION,
    SCANNING,
    TAG_IMMUTABILITY,
    FactState,
    Status,
    TargetFacts,
)
from audits.rules.registry import RuleContext, catalog
from audits.targets import GarTarget
from sandbox.gar_emulator import GarEmulator
from sandbox.gar_estate import PROJECT, push_demo_images, seed_gar_project, seeded_emulator
from sandbox.pusher import OciPusher
from sandbox.registry import RegistrySpec
from sandbox.signing import KeyPair, generate_key_pair
from tests.integration.conftest import RegistryFactory

pytestmark = pytest.mark.integration


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GarEmulator]:
    with seeded_emulator(tmp_path) as (emu, key_file):
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
        yield emu
        assert emu.violations == [], "the collector or the emulator left the documented contract"


def target(emu: GarEmulator, **extra: Any) -> GarTarget:
    return GarTarget(
        name="gcp", kind="gar", project=PROJECT, endpoint_url=emu.url, resource_manager_url=emu.url, **extra
    )


def collect(emu: GarEmulator, **extra: Any) -> TargetFacts:
    return gar.collect(target(emu, **extra), CollectOptions(concurrency=4, timeout=5))


def findings(facts: TargetFacts, rule_id: str, trusted_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    ctx = RuleContext(environment="prod", frameworks=("soc2",), target_name="gcp", trusted_keys=trusted_keys)
    return {f.resource: f for f in judge(facts, ctx, {rule_id: catalog()[rule_id]})}


def test_the_compliant_and_the_weak_repository_are_told_apart(emulator: GarEmulator) -> None:
    facts = collect(emulator)
    repos = {r.name: r for r in facts.facts[REPOSITORIES].value}
    assert set(repos) == {"europe/release/api", "us-central1/scratch/tool", "us-central1/hub-cache"}
    api, tool = repos["europe/release/api"], repos["us-central1/scratch/tool"]
    assert [t.name for t in api.tags] == ["1.4.2"] and api.tags[0].pushed_at is not None
    assert api.tags[0].signatures and api.tags[0].signatures[0].discovered_via == "tag"
    assert tool.anonymous_pull is True and api.anonymous_pull is False and tool.untagged_digests == 1

    assert findings(facts, "RG-TAG-002")["europe/release/api"].status is Status.PASS
    assert findings(facts, "RG-TAG-002")["us-central1/scratch/tool"].status is Status.FAIL
    assert findings(facts, "RG-AUTH-001")["us-central1/scratch/tool"].status is Status.FAIL
    assert findings(facts, "RG-ENC-001")["europe/release/api"].status is Status.PASS
    assert findings(facts, "RG-ENC-001")["us-central1/scratch/tool"].status is Status.FAIL
    assert findings(facts, "RG-SCAN-001")["us-central1/scratch/tool"].status is Status.FAIL
    retention = findings(facts, "RG-RET-001")
    assert retention["europe/release/api"].status is Status.PASS
    assert "dry-run" in retention["us-central1/scratch/tool"].message
    assert findings(facts, "RG-MON-001")["gcp"].status is Status.FAIL  # Data Access logs are off


def test_settings_come_from_one_listing_and_two_calls_per_repository(emulator: GarEmulator) -> None:
    facts = collect(emulator)
    calls = emulator.calls
    assert calls["artifactregistry.projects.locations.repositories.getIamPolicy"] == 3
    assert calls["artifactregistry.projects.locations.repositories.dockerImages.list"] == 3
    assert facts.requests == sum(calls.values()) + 1  # + the token exchange
    assert facts.facts[TAG_IMMUTABILITY].value.by_repository["europe/release/api"].immutable
    assert facts.facts[ENCRYPTION].value.by_repository["europe/release/api"].customer_managed
    assert facts.facts[SCANNING].value.uncovered_repositories == ("us-central1/hub-cache", "us-central1/scratch/tool")
    assert facts.facts[RETENTION].value.dry_run_repositories == ("us-central1/hub-cache", "us-central1/scratch/tool")
    assert facts.facts[LEGACY_REDIRECTION].value == "REDIRECTION_FROM_GCR_IO_ENABLED"
    [credential] = facts.facts[CREDENTIALS].value
    assert "dockerhub-token/versions/3" in credential.detail and credential.kind == "upstream-credential"


def test_immutable_tags_are_named_in_the_signature_finding(emulator: GarEmulator) -> None:
    signed = findings(collect(emulator), "RG-SIGN-001")["europe/release/api:1.4.2"]
    assert signed.status is Status.PASS and ".sig` tag cannot be rewritten" in signed.message


def test_data_access_logs_on_pass(emulator: GarEmulator) -> None:
    emulator.audit_configs = [
        {"service": "allServices", "auditLogConfigs": [{"logType": "DATA_READ"}, {"logType": "DATA_WRITE"}]}
    ]
    facts = collect(emulator)
    assert facts.facts[LOGGING].value.enabled
    assert findings(facts, "RG-MON-001")["gcp"].status is Status.PASS


def test_forbidden_iam_policies_are_manual_naming_the_permission(emulator: GarEmulator) -> None:
    emulator.faults.iam_forbidden = True
    emulator.faults.project_policy_forbidden = True
    facts = collect(emulator)
    assert facts.facts[ANONYMOUS_ACCESS].state is FactState.NOT_OBSERVABLE
    [anonymous] = findings(facts, "RG-AUTH-001").values()
    assert anonymous.status is Status.MANUAL and "artifactregistry.repositories.getIamPolicy" in anonymous.message
    [logged] = findings(facts, "RG-MON-001").values()
    assert logged.status is Status.MANUAL and "resourcemanager.projects.getIamPolicy" in logged.message
    assert facts.facts[REPOSITORIES].state is FactState.OK  # the rest is still audited


def test_a_429_is_retried_after_its_retry_after(emulator: GarEmulator) -> None:
    emulator.faults.throttle_first = 1
    emulator.faults.retry_after_s = 1
    started = time.monotonic()
    facts = collect(emulator, locations=["europe"])
    assert time.monotonic() - started >= 1.0
    assert facts.facts[REPOSITORIES].state is FactState.OK
    assert [r.name for r in facts.facts[REPOSITORIES].value] == ["europe/release/api"]


def test_a_500_on_one_repository_is_an_error_on_that_repository_only(emulator: GarEmulator) -> None:
    emulator.faults.failing_repositories = {"scratch"}
    facts = collect(emulator)
    repos = {r.name: r for r in facts.facts[REPOSITORIES].value}
    assert repos["us-central1/scratch"].error and "HTTP 500" in repos["us-central1/scratch"].error
    assert repos["europe/release/api"].error is None
    assert findings(facts, "RG-TAG-002")["us-central1/scratch"].status is Status.ERROR


def test_a_page_token_that_never_ends_is_cut_with_an_error(emulator: GarEmulator) -> None:
    emulator.faults.endless_repository_pages = True
    started = time.monotonic()
    facts = collect(emulator, locations=["europe"])
    assert time.monotonic() - started < 20
    fact = facts.facts[REPOSITORIES]
    assert fact.state is FactState.ERROR and f"did not end after {gar.MAX_PAGES} pages" in (fact.detail or "")
    assert emulator.calls["artifactregistry.projects.locations.repositories.list"] == gar.MAX_PAGES


def test_a_key_the_token_endpoint_refuses_makes_every_fact_an_error(
    emulator: GarEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = GarEmulator(PROJECT, tmp_path / "other")  # a different key, never started
    foreign_key = other.write_key_file(tmp_path / "k.json", emulator.token_uri)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(foreign_key))
    facts = collect(emulator)
    assert {f.state for f in facts.facts.values()} == {FactState.ERROR}
    assert "cannot get an access token" in (facts.facts[REPOSITORIES].detail or "")


def test_scan_results_are_left_to_a_person_naming_where_they_are(emulator: GarEmulator) -> None:
    newest = findings(collect(emulator), "RG-SCAN-002")["europe/release/api:1.4.2"]
    assert newest.status is Status.MANUAL and "--show-package-vulnerability" in newest.message


@pytest.fixture
def signed_project(
    emulator: GarEmulator, registry_factory: RegistryFactory, tmp_path: Path
) -> tuple[GarEmulator, str, KeyPair]:
    """The OCI side is a real docker-registry holding the images and the cosign
    signature the emulator lists (same digests)."""
    registry = registry_factory(RegistrySpec("gar-docker", tls=False))
    keys = generate_key_pair(tmp_path / "keys", "release")
    plan = push_demo_images(OciPusher.for_registry(registry), PROJECT, keys.private_key)
    emulator.repositories.clear()
    seed_gar_project(emulator, plan)
    return emulator, registry.url, keys


def test_signatures_are_verified_through_the_oci_api(signed_project: tuple[GarEmulator, str, KeyPair]) -> None:
    emu, docker_url, keys = signed_project
    options = CollectOptions(concurrency=4, timeout=5, trusted_keys=(str(keys.public_key),))
    facts = gar.collect(target(emu, docker_url=docker_url), options)
    verified = findings(facts, "RG-SIGN-002", options.trusted_keys)["europe/release/api:1.4.2"]
    assert verified.status is Status.PASS, verified.message
    assert findings(facts, "RG-SIGN-001")["us-central1/scratch/tool:0.9"].status is Status.FAIL


def test_a_signature_by_an_untrusted_key_fails(
    signed_project: tuple[GarEmulator, str, KeyPair], tmp_path: Path
) -> None:
    emu, docker_url, _ = signed_project
    stranger = generate_key_pair(tmp_path / "other", "stranger")
    options = CollectOptions(concurrency=4, timeout=5, trusted_keys=(str(stranger.public_key),))
    facts = gar.collect(target(emu, docker_url=docker_url), options)
    refused = findings(facts, "RG-SIGN-002", options.trusted_keys)["europe/release/api:1.4.2"]
    assert refused.status is Status.FAIL and "no trusted key verifies" in refused.message
