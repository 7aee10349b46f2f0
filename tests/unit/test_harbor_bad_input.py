"""A Harbor that refuses, fails or answers nonsense: what the audit reports.

401 everywhere is an error (never a pass); a non-admin auditor gets `manual`
findings naming what to grant; one failing project leaves the others judged;
answers the collector cannot use are errors on that call; the opt-in
default-password probe never shows its password anywhere."""

from __future__ import annotations

import json
import threading
import time

import pytest

from audits.collectors.base import CollectOptions
from audits.collectors.harbor import collect
from audits.engine import judge
from audits.model import (
    ADMIN_ACCOUNT,
    CREDENTIALS,
    LOGGING,
    REPLICATION,
    REPOSITORIES,
    FactState,
    Finding,
    RepositoryFacts,
    Status,
    TargetFacts,
)
from audits.rules.registry import RuleContext, catalog
from audits.targets import HarborTarget
from tests.unit.harbor_fixtures import (
    ADMIN_PASSWORD,
    AUDITOR_PASSWORD,
    PASSWORD_ENV,
    USER_ENV,
    Fault,
    FaultProxy,
    audit,
    running_harbor,
    seeded_state,
)

API_FACTS_SEEN_BY_ADMIN = (LOGGING, REPLICATION, CREDENTIALS)


def login(monkeypatch: pytest.MonkeyPatch, user: str, password: str) -> None:
    monkeypatch.setenv(USER_ENV, user)
    monkeypatch.setenv(PASSWORD_ENV, password)


def findings(facts: TargetFacts, environment: str = "prod") -> list[Finding]:
    return judge(facts, RuleContext(environment=environment, target_name=facts.target), catalog())


def by_rule(found: list[Finding], rule: str) -> list[Finding]:
    return [f for f in found if f.rule == rule]


def test_rejected_credentials_are_errors_and_nothing_passes_on_api_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    login(monkeypatch, "admin", "wrong-password-value")
    with running_harbor() as harbor:
        facts = audit(harbor.url)
    for name in (REPOSITORIES, *API_FACTS_SEEN_BY_ADMIN, ADMIN_ACCOUNT):
        fact = facts.facts[name]
        assert fact.state is FactState.ERROR and "HTTP 401" in (fact.detail or ""), name
    found = findings(facts)
    for rule in ("RG-CRED-001", "RG-MON-001", "RG-TAG-002", "RG-SIGN-001"):
        assert {f.status for f in by_rule(found, rule)} == {Status.ERROR}, rule
    assert "wrong-password-value" not in json.dumps([f.as_dict() for f in found], default=str)


def test_a_non_admin_auditor_gets_manual_findings_naming_what_to_grant(monkeypatch: pytest.MonkeyPatch) -> None:
    login(monkeypatch, "auditor", AUDITOR_PASSWORD)
    with running_harbor() as harbor:
        facts = audit(harbor.url)
    assert not harbor.emulator.violations
    for name in API_FACTS_SEEN_BY_ADMIN:
        fact = facts.facts[name]
        assert fact.state is FactState.NOT_OBSERVABLE and "grant the auditor" in (fact.detail or ""), name
    assert facts.facts[REPOSITORIES].state is FactState.OK
    found = findings(facts)
    [logged] = by_rule(found, "RG-MON-001")
    assert logged.status is Status.MANUAL and "configuration:read" in logged.message
    assert {f.status for f in by_rule(found, "RG-CRED-001")} == {Status.MANUAL}
    assert Status.FAIL in {f.status for f in by_rule(found, "RG-AUTH-001")}  # the public project is still judged


def test_a_500_on_one_project_leaves_the_others_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    login(monkeypatch, "admin", ADMIN_PASSWORD)
    broken = {"/api/v2.0/projects/legacy/repositories": Fault(500, b'{"errors": [{"code": "INTERNAL"}]}')}
    with running_harbor() as harbor, FaultProxy(harbor.url, broken) as proxy:
        facts = audit(proxy.url)
    repos: tuple[RepositoryFacts, ...] = facts.facts[REPOSITORIES].value or ()
    by_name = {r.name: r for r in repos}
    assert by_name["legacy"].error is not None and "HTTP 500" in by_name["legacy"].error
    assert {"prod/api", "prod/web"} <= set(by_name) and by_name["prod/api"].error is None
    immutability = {f.resource: f.status for f in by_rule(findings(facts), "RG-TAG-002")}
    assert immutability == {"legacy": Status.ERROR, "prod/api": Status.PASS, "prod/web": Status.PASS}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'[{"project_id": 1, "name": 7}]', "unexpected answer from GET /api/v2.0/projects: name: string_type"),
        (b'{"projects": []}', "not a list"),
        (b"[{not json", "invalid JSON"),
    ],
)
def test_an_answer_the_swagger_does_not_allow_is_an_error_not_a_guess(
    monkeypatch: pytest.MonkeyPatch, body: bytes, expected: str
) -> None:
    login(monkeypatch, "admin", ADMIN_PASSWORD)
    with running_harbor() as harbor, FaultProxy(harbor.url, {"/api/v2.0/projects": Fault(200, body)}) as proxy:
        facts = audit(proxy.url)
    listing = facts.facts[REPOSITORIES]
    assert listing.state is FactState.ERROR and expected in (listing.detail or "")
    assert facts.facts[LOGGING].state is FactState.OK  # other calls are unaffected
    assert {f.status for f in by_rule(findings(facts), "RG-SCAN-001")} == {Status.ERROR}


def test_the_default_password_probe_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    login(monkeypatch, "admin", ADMIN_PASSWORD)
    with running_harbor() as harbor:
        facts = audit(harbor.url)
    assert not any(path.endswith("/users/current") for _, path, _ in harbor.emulator.requests)
    admin = facts.facts[ADMIN_ACCOUNT].value
    assert admin is not None and not admin.default_password and "not probed" in admin.detail


def test_the_opt_in_probe_finds_the_installer_password_and_never_shows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    state = seeded_state()
    state.users["admin"].password = "Harbor12345"  # the installer's default, never changed
    login(monkeypatch, "auditor", AUDITOR_PASSWORD)
    with running_harbor(state) as harbor:
        facts = audit(harbor.url, probe_default_password=True)
    [finding] = by_rule(findings(facts), "RG-AUTH-003")
    assert finding.status is Status.FAIL and "default password" in finding.message
    shown = json.dumps([f.as_dict() for f in findings(facts)], default=str) + repr(facts)
    assert "Harbor12345" not in shown


def test_the_probe_with_a_changed_password_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    login(monkeypatch, "auditor", AUDITOR_PASSWORD)
    with running_harbor() as harbor:
        facts = audit(harbor.url, probe_default_password=True)
    [finding] = by_rule(findings(facts), "RG-AUTH-003")
    assert finding.status is Status.PASS


def test_system_facts_are_published_while_the_projects_are_still_being_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deadline that strikes during a slow project listing keeps what was already seen."""
    login(monkeypatch, "admin", ADMIN_PASSWORD)
    options = CollectOptions(concurrency=4)
    slow = {"/api/v2.0/projects": Fault(200, b"[]", delay_s=3.0)}
    with running_harbor() as harbor, FaultProxy(harbor.url, slow) as proxy:
        target = HarborTarget(name="harbor", kind="harbor", url=proxy.url, timeout=5,
                              username_env=USER_ENV, password_env=PASSWORD_ENV)  # fmt: skip
        worker = threading.Thread(target=collect, args=(target, options))
        worker.start()
        deadline = time.monotonic() + 2.5
        while LOGGING not in options.published.facts() and time.monotonic() < deadline:
            time.sleep(0.05)
        seen_early = options.published.facts()
        worker.join(timeout=10)
    assert seen_early[LOGGING].state is FactState.OK and seen_early[CREDENTIALS].state is FactState.OK
    assert REPOSITORIES not in seen_early  # still being read (a deadline now makes it an error)
