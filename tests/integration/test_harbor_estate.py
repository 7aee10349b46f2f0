"""The sandbox Harbor end to end: the emulator process in front of a real
docker-registry, audited the way a user's audit runs (HTTPS with the sandbox
CA, Harbor's bearer token for /v2/, cosign signatures fetched and verified),
its compliant project passing and its non-compliant project failing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from audits.collectors.base import CollectOptions
from audits.collectors.harbor import collect
from audits.engine import judge
from audits.model import REPOSITORIES, TLS, Finding, RepositoryFacts, Status
from audits.rules.registry import RuleContext, catalog
from audits.targets import HarborTarget
from sandbox.harbor_estate import HarborService, start_harbor_estate
from sandbox.process import is_alive

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def harbor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HarborService]:
    service = start_harbor_estate(tmp_path_factory.mktemp("harbor"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def findings(harbor: HarborService) -> list[Finding]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in harbor.env.items():
            patch.setenv(name, value)
        assert harbor.public_key is not None
        facts = collect(HarborTarget(**harbor.targets[0]), CollectOptions(trusted_keys=(str(harbor.public_key),)))
    tls = facts.facts[TLS].value
    assert tls is not None and tls.verified
    repos: tuple[RepositoryFacts, ...] = facts.facts[REPOSITORIES].value or ()
    assert {r.name for r in repos} == {"prod/api", "prod/web", "legacy/app"}
    keys = (str(harbor.public_key),)
    return judge(facts, RuleContext(environment="prod", target_name="harbor", trusted_keys=keys), catalog())


def statuses(found: list[Finding], rule: str) -> dict[str, Status]:
    return {f.resource: f.status for f in found if f.rule == rule}


def test_signatures_from_accessories_verify_through_the_real_registry(findings: list[Finding]) -> None:
    verified = statuses(findings, "RG-SIGN-002")
    assert verified == {"prod/api:v1.0.0": Status.PASS, "prod/api:v1.1.0": Status.PASS, "prod/web:v2.0.0": Status.PASS,
                        "legacy/app:0.9": Status.FAIL, "legacy/app:latest": Status.FAIL}  # fmt: skip


def test_the_compliant_project_passes_and_the_other_fails(findings: list[Finding]) -> None:
    for rule in ("RG-TAG-002", "RG-RET-001", "RG-AUTH-001", "RG-SCAN-001", "RG-TAG-003"):
        got = statuses(findings, rule)
        assert got["prod/api"] is Status.PASS and got["legacy/app"] is Status.FAIL, (rule, got)
    scan = statuses(findings, "RG-SCAN-002")
    assert scan["prod/api:v1.1.0"] is Status.PASS and scan["legacy/app:latest"] is Status.FAIL
    latest = statuses(findings, "RG-TAG-001")
    assert latest == {"prod/api": Status.PASS, "prod/web": Status.PASS, "legacy/app": Status.FAIL}
    assert statuses(findings, "RG-SIGN-003") == {"harbor": Status.FAIL}  # legacy enforces nothing
    assert statuses(findings, "RG-REP-001") == {"harbor": Status.PASS}
    assert statuses(findings, "RG-MON-001") == {"harbor": Status.PASS}


def test_stopping_the_service_ends_both_processes(tmp_path: Path) -> None:
    service = start_harbor_estate(tmp_path)
    pids = service.pids
    service.stop()
    assert not any(is_alive(pid) for pid in pids)
