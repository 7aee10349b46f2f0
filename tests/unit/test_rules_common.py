"""Builders shared by the rule tests, and tests of the rules' shared helpers.

Rule tests build `TargetFacts` by hand (no collector, no I/O) and call the
registered rule function directly, so each test shows exactly which
observation leads to which verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from audits.engine import judge
from audits.model import (
    REPOSITORIES,
    Fact,
    Finding,
    RepositoryFacts,
    SignatureFacts,
    Status,
    TagFacts,
    TargetFacts,
    Verdict,
    VulnerabilityScan,
)
from audits.rules.common import (
    filters_covering,
    is_digest_tag,
    is_release_tag,
    is_semver_tag,
    is_signature_artifact,
    judge_repositories,
)
from audits.rules.registry import FactUnavailable, FactView, RuleContext, catalog, passed

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SIG_TAG = "sha256-" + "a" * 64 + ".sig"


def view(kind: str = "distribution", **facts: Any) -> FactView:
    """A FactView over `facts`; plain values become ok facts, Fact values are
    used as given (to test error/unsupported/... states)."""
    wrapped = {
        name: value if isinstance(value, Fact) else Fact.ok(value, source=f"test:{name}", at=NOW)
        for name, value in facts.items()
    }
    return FactView(TargetFacts(target="t1", kind=kind, facts=wrapped, started_at=NOW, finished_at=NOW))


def context(environment: str = "dev", **kw: Any) -> RuleContext:
    kw.setdefault("target_name", "t1")
    kw.setdefault("now", NOW)
    return RuleContext(environment=environment, **kw)


PROD = context("prod")
DEV = context("dev")


def run(rule_id: str, ctx: RuleContext, facts: FactView) -> list[Verdict]:
    return list(catalog()[rule_id].func(ctx, facts))


def run_engine(rule_id: str, ctx: RuleContext, facts: FactView) -> list[Finding]:
    """Through the engine, to see how fact states become verdicts."""
    return judge(facts.target, ctx, {rule_id: catalog()[rule_id]})


def statuses(verdicts: Iterable[Verdict | Finding]) -> list[Status]:
    return [v.status for v in verdicts]


def by_resource(verdicts: Iterable[Verdict]) -> dict[str, Verdict]:
    return {v.resource: v for v in verdicts}


def tag(
    name: str,
    *,
    pushed_days_ago: float | None = 1,
    signatures: tuple[SignatureFacts, ...] | None = None,
    scan: VulnerabilityScan | None = None,
    error: str | None = None,
) -> TagFacts:
    pushed = NOW - timedelta(days=pushed_days_ago) if pushed_days_ago is not None else None
    return TagFacts(
        name=name,
        digest="sha256:" + "b" * 64,
        media_type="application/vnd.oci.image.manifest.v1+json",
        pushed_at=pushed,
        signatures=signatures,
        scan=scan,
        error=error,
    )


def repo(name: str, *tags: TagFacts, **kw: Any) -> RepositoryFacts:
    return RepositoryFacts(name=name, tags=tuple(tags), **kw)


def repos(*items: RepositoryFacts) -> tuple[RepositoryFacts, ...]:
    return tuple(items)


def assert_evidence(verdicts: Iterable[Verdict], *keys: str) -> None:
    """Every verdict carries provenance (or, for errors of a whole repository,
    at least the source) plus the observed values named by `keys`."""
    for v in verdicts:
        assert v.evidence, f"{v.resource}: no evidence"
        for key in keys:
            assert key in v.evidence, f"{v.resource}: evidence lacks {key}: {v.evidence}"


def only(verdicts: list[Verdict]) -> Verdict:
    assert len(verdicts) == 1, verdicts
    return verdicts[0]


# --------------------------------------------------------------------------
# Tests of audits/rules/common.py
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["1.2.3", "v1.2.3", "1.2", "v10.0.1-rc.1", "1.0.0+build.7"])
def test_semver_tags(name: str) -> None:
    assert is_semver_tag(name)
    assert is_release_tag(name)


@pytest.mark.parametrize("name", ["latest", "stable", "v1", "main-abc", "1.2.3.4.x", "dev-1.2.3"])
def test_not_semver_tags(name: str) -> None:
    assert not is_semver_tag(name)


def test_release_prefix_and_digest_and_artifact_tags() -> None:
    assert is_release_tag("release-2024.06")
    assert is_digest_tag("sha256-" + "c" * 64)
    assert is_digest_tag("0123456789abcdef0123456789abcdef01234567")
    assert not is_digest_tag("abc123")
    assert is_signature_artifact(SIG_TAG)
    assert is_signature_artifact("sha256-" + "a" * 64 + ".att")
    assert is_signature_artifact("sha256-" + "a" * 64)  # an OCI referrers-tag-schema index, not an image


def test_filters_covering_is_case_sensitive_wildcard() -> None:
    covered = filters_covering(["v*", "dev-*", "*-RC"], ["v1.2.3", "dev-7", "1.0-rc"])
    assert covered == {"v*": ["v1.2.3"], "dev-*": ["dev-7"]}


def test_judge_repositories_errors_for_failed_repository_and_scopes_prod() -> None:
    facts = view(
        **{
            REPOSITORIES: repos(
                repo("prod/app", tag("1.0.0")),
                repo("prod/broken", error="403 on tags/list"),
                repo("dev/app", tag("latest")),
            )
        }
    )
    ctx = context("dev", production_patterns=("prod/*",))
    verdicts = list(judge_repositories(ctx, facts, lambda r: [passed(r.name, "ok")], prod_only=True))
    assert {v.resource: v.status for v in verdicts} == {"prod/app": Status.PASS, "prod/broken": Status.ERROR}
    assert "403" in by_resource(verdicts)["prod/broken"].message


def test_judge_repositories_not_applicable_without_prod_repositories() -> None:
    facts = view(**{REPOSITORIES: repos(repo("app", tag("1.0.0")))})
    verdict = only(list(judge_repositories(DEV, facts, lambda r: [passed(r.name, "ok")], prod_only=True)))
    assert verdict.status is Status.NOT_APPLICABLE
    assert "no production repositories" in verdict.message


def test_judge_repositories_refuses_missing_fact() -> None:
    with pytest.raises(FactUnavailable):
        list(judge_repositories(PROD, view(), lambda r: [], prod_only=False))


def mapping_of(verdicts: Iterable[Verdict]) -> Mapping[str, Status]:
    return {v.resource: v.status for v in verdicts}
