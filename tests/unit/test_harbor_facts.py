"""How Harbor's settings become findings: immutable-tag rules judged on the
release tags they cover (not on one literal), retention only when it runs,
robots by their lifetime, local accounts only in production unless declared."""

from __future__ import annotations

import time

import pytest

from audits.collectors import harbor_facts
from audits.collectors.harbor_api import Project, RetentionPolicy, SystemInfo, TagRule
from audits.engine import judge
from audits.model import (
    ADMIN_ACCOUNT,
    CREDENTIALS,
    REPOSITORIES,
    TAG_IMMUTABILITY,
    Fact,
    RepositoryFacts,
    Status,
    TagImmutabilityFacts,
    TargetFacts,
    utcnow,
)
from audits.rules.registry import RuleContext, catalog
from tests.unit.harbor_fixtures import ADMIN_PASSWORD, PASSWORD_ENV, USER_ENV, audit, running_harbor, seeded_state


def rule(tags: str, repos: str = "**", *, decoration: str = "matches", disabled: bool = False) -> TagRule:
    return TagRule.model_validate({
        "disabled": disabled,
        "tag_selectors": [{"kind": "doublestar", "decoration": decoration, "pattern": tags}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": repos}]},
    })


def immutability_status(rules: list[TagRule], repo: str = "api", tags: tuple[str, ...] = ()) -> Status:
    setting = harbor_facts.immutability(rules, repo, tags)
    now = utcnow()
    facts = TargetFacts("h", "harbor", {
        TAG_IMMUTABILITY: Fact.ok(TagImmutabilityFacts({f"prod/{repo}": setting}), "test"),
        REPOSITORIES: Fact.ok((RepositoryFacts(f"prod/{repo}"),), "test"),
    }, now, now)  # fmt: skip
    [finding] = judge(facts, RuleContext(environment="prod"), {"RG-TAG-002": catalog()["RG-TAG-002"]})
    return finding.status


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([rule("{v*,*.*,release-*}")], Status.PASS),
        ([rule("**")], Status.PASS),
        ([rule("v*")], Status.FAIL),  # 1.2.3 and release-* stay mutable
        ([rule("latest")], Status.FAIL),
        ([rule("v*"), rule("*.*"), rule("release-*")], Status.PASS),  # several rules together
        ([rule("**", disabled=True)], Status.FAIL),
        ([rule("**", repos="web")], Status.FAIL),  # a rule for another repository
        ([rule("dev-*", decoration="excludes")], Status.PASS),  # everything but dev-* is immutable
        ([], Status.FAIL),
    ],
)
def test_immutable_rules_are_judged_on_the_release_tags_they_cover(rules: list[TagRule], expected: Status) -> None:
    assert immutability_status(rules) is expected


def test_a_repositorys_own_release_tag_counts_too() -> None:
    covers_samples_not_2024 = rule("{v*,1.*,10.*,release-1*,release-2024.06}")
    assert immutability_status([covers_samples_not_2024]) is Status.PASS
    assert immutability_status([covers_samples_not_2024], tags=("2.0.0",)) is Status.FAIL


def test_a_hostile_pattern_costs_no_backtracking() -> None:
    started = time.perf_counter()
    assert not harbor_facts.doublestar_match("*a" * 100 + "b", "a" * 128)
    assert not harbor_facts.doublestar_match("{a,b}" * 20, "ab")  # too many alternatives: matches nothing
    assert time.perf_counter() - started < 1.0


def test_retention_counts_only_when_scheduled() -> None:
    policy = {"rules": [{"template": "latestPushedK", "tag_selectors": [], "scope_selectors": {}}]}
    def with_cron(cron: str) -> RetentionPolicy:
        return RetentionPolicy.model_validate({**policy, "trigger": {"kind": "Schedule", "settings": {"cron": cron}}})

    scheduled, manual = with_cron("0 0 * * *"), with_cron("")
    assert harbor_facts.retention_summary(scheduled, "api") == "latestPushedK, schedule 0 0 * * *"
    assert harbor_facts.retention_summary(manual, "api") is None
    assert harbor_facts.retention_summary(None, "api") is None


def test_local_accounts_fail_only_in_production_unless_declared() -> None:
    def status(environment: str, declared: bool) -> Status:
        admin = harbor_facts.admin_account(SystemInfo(auth_mode="db_auth"), declared, None)
        now = utcnow()
        facts = TargetFacts("h", "harbor", {ADMIN_ACCOUNT: Fact.ok(admin, "test"),
                                           REPOSITORIES: Fact.ok((), "test")}, now, now)  # fmt: skip
        [finding] = judge(facts, RuleContext(environment=environment), {"RG-AUTH-003": catalog()["RG-AUTH-003"]})
        return finding.status

    assert status("prod", declared=False) is Status.FAIL
    assert status("prod", declared=True) is Status.PASS
    assert status("dev", declared=False) is Status.NOT_APPLICABLE


def test_robots_never_expiring_fail_and_old_ones_are_not_rotated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(USER_ENV, "admin")
    monkeypatch.setenv(PASSWORD_ENV, ADMIN_PASSWORD)
    with running_harbor(seeded_state()) as harbor:
        facts = audit(harbor.url)
    creds = {c.id: c for c in facts.facts[CREDENTIALS].value or ()}
    assert creds["robot robot$legacy+deployer"].expires_at is None and creds["robot robot$legacy+deployer"].can_push
    found = judge(facts, RuleContext(environment="prod", target_name="harbor"), catalog())
    short = {f.resource: f.status for f in found if f.rule == "RG-CRED-001"}
    rotated = {f.resource: f.status for f in found if f.rule == "RG-CRED-002"}
    assert short == {"robot robot$prod+ci": Status.PASS, "robot robot$legacy+deployer": Status.FAIL}
    assert rotated == {"robot robot$prod+ci": Status.PASS, "robot robot$legacy+deployer": Status.FAIL}


def test_an_expired_project_cve_allowlist_is_named_in_the_scanning_evidence() -> None:
    state = seeded_state()
    legacy = next(p for p in state.projects if p["name"] == "legacy")
    legacy["cve_allowlist"] = {"items": [{"cve_id": "CVE-2024-0001"}], "expires_at": int(time.time()) - 86_400}
    projects = [Project.model_validate(p) for p in state.projects]
    scanning = harbor_facts.scanning(projects, {}, [])
    assert "CVE allowlist expired in: legacy" in scanning.detail
    assert "prod" not in scanning.detail.split("expired in:")[1]
