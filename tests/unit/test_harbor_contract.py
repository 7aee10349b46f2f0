"""Contract: the harbor collector asks only what Harbor's swagger documents, and
the emulator it is tested against answers only what the swagger allows (a
broken answer is refused, so the check is real)."""

from __future__ import annotations

import pytest

from audits.model import (
    CREDENTIALS,
    LOGGING,
    PULL_COUNTS,
    REPLICATION,
    REPOSITORIES,
    RETENTION,
    TAG_IMMUTABILITY,
    FactState,
    RepositoryFacts,
)
from sandbox.apispec import SpecViolation
from sandbox.harbor_emulator import harbor_spec
from tests.unit.harbor_fixtures import ADMIN_PASSWORD, PASSWORD_ENV, USER_ENV, audit, running_harbor, seeded_state

EXPECTED_OPERATIONS = {
    ("get", "/systeminfo"),
    ("get", "/configurations"),
    ("get", "/scanners"),
    ("get", "/robots"),
    ("get", "/replication/policies"),
    ("get", "/audit-logs"),
    ("get", "/projects"),
    ("get", "/projects/{project_name_or_id}/immutabletagrules"),
    ("get", "/retentions/{id}"),
    ("get", "/projects/{project_name}/repositories"),
    ("get", "/projects/{project_name}/repositories/{repository_name}/artifacts"),
}


@pytest.fixture
def admin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(USER_ENV, "admin")
    monkeypatch.setenv(PASSWORD_ENV, ADMIN_PASSWORD)


def test_every_request_is_a_documented_operation_with_documented_parameters(admin_env: None) -> None:
    with running_harbor() as harbor:
        facts = audit(harbor.url)
    spec = harbor_spec()
    seen = set()
    for method, path, query in harbor.emulator.requests:
        operation = spec.check_request(method, path, query)  # raises on anything undocumented
        seen.add((operation.method, operation.template))
    assert seen == EXPECTED_OPERATIONS
    assert facts.facts[REPOSITORIES].state is FactState.OK
    assert facts.requests >= len(harbor.emulator.requests)


def test_every_emulator_answer_validates_against_the_swagger(admin_env: None) -> None:
    with running_harbor() as harbor:
        facts = audit(harbor.url)
    assert harbor.emulator.violations == []
    for name in (REPOSITORIES, TAG_IMMUTABILITY, RETENTION, LOGGING, REPLICATION, CREDENTIALS, PULL_COUNTS):
        assert facts.facts[name].state is FactState.OK, (name, facts.facts[name].detail)


def test_a_broken_answer_is_refused_by_the_emulator_and_is_an_error_for_the_collector(admin_env: None) -> None:
    state = seeded_state()
    state.robots[0]["duration"] = "thirty days"  # the swagger says integer
    with running_harbor(state) as harbor:
        facts = audit(harbor.url)
    assert any("/robots" in v and "duration" in v for v in harbor.emulator.violations)
    robots = facts.facts[CREDENTIALS]
    assert robots.state is FactState.ERROR and "HTTP 500" in (robots.detail or "")


def test_the_spec_check_itself_refuses_a_wrong_type() -> None:
    spec = harbor_spec()
    project = seeded_state().projects[0]
    spec.check_response("get", "/api/v2.0/projects", 200, [project])
    with pytest.raises(SpecViolation, match="project_id"):
        spec.check_response("get", "/api/v2.0/projects", 200, [{**project, "project_id": "one"}])


def test_pagination_is_followed_across_pages(admin_env: None) -> None:
    state = seeded_state()
    builder_repos = state.repositories["legacy"]
    for n in range(130):  # more than one page of 100
        name = f"legacy/svc-{n:03d}"
        builder_repos.append({"id": 1000 + n, "name": name})
        state.artifacts[name] = []
    with running_harbor(state) as harbor:
        facts = audit(harbor.url)
    repos: tuple[RepositoryFacts, ...] = facts.facts[REPOSITORIES].value or ()
    assert len([r for r in repos if r.name.startswith("legacy/svc-")]) == 130
    pages = [q.get("page") for m, p, q in harbor.emulator.requests if p == "/api/v2.0/projects/legacy/repositories"]
    assert pages == ["1", "2"]
