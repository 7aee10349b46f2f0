"""RG-TAG-001..004: latest, immutability, versioned tags, digest pins."""

from __future__ import annotations

import pytest

from audits.model import (
    IMAGE_REFERENCES,
    REPOSITORIES,
    TAG_IMMUTABILITY,
    Fact,
    ImageReference,
    ImageReferencesFacts,
    ImmutabilitySetting,
    RepositoryFacts,
    Status,
    TagImmutabilityFacts,
)
from tests.unit.test_rules_common import (
    DEV,
    PROD,
    SIG_TAG,
    assert_evidence,
    context,
    mapping_of,
    only,
    repo,
    run,
    run_engine,
    statuses,
    tag,
    view,
)

DIGEST = "sha256:" + "d" * 64


def ref(raw: str, repository: str, tag: str | None, digest: str | None = None, registry: str = "docker.io"):
    return ImageReference(
        raw=raw, file="k8s/app.yaml", line=7, registry=registry, repository=repository, tag=tag, digest=digest
    )


def refs_view(*items: ImageReference):
    return view("image-refs", **{IMAGE_REFERENCES: ImageReferencesFacts(references=items, files_scanned=1)})


def repo_view(*items: RepositoryFacts, kind: str = "distribution"):
    return view(kind, **{REPOSITORIES: tuple(items)})


# RG-TAG-001 ----------------------------------------------------------------


def test_latest_tag_in_prod_repository_fails() -> None:
    verdicts = run("RG-TAG-001", PROD, repo_view(repo("app", tag("latest"), tag("1.0.0")), repo("lib", tag("2.0.0"))))
    assert mapping_of(verdicts) == {"app": Status.FAIL, "lib": Status.PASS}
    assert_evidence(verdicts, "repository", "source")


def test_latest_in_dev_is_not_applicable() -> None:
    verdict = only(run("RG-TAG-001", DEV, repo_view(repo("app", tag("latest")))))
    assert verdict.status is Status.NOT_APPLICABLE


def test_production_pattern_selects_repositories_outside_prod() -> None:
    ctx = context("staging", production_patterns=("prod/*",))
    verdicts = run("RG-TAG-001", ctx, repo_view(repo("prod/app", tag("latest")), repo("dev/app", tag("latest"))))
    assert mapping_of(verdicts) == {"prod/app": Status.FAIL}


def test_repository_error_is_error_for_latest() -> None:
    verdict = only(run("RG-TAG-001", PROD, repo_view(repo("app", error="HTTP 500 on tags/list"))))
    assert verdict.status is Status.ERROR


def test_latest_and_untagged_references_fail_in_prod() -> None:
    verdicts = run(
        "RG-TAG-001",
        PROD,
        refs_view(
            ref("nginx:latest", "library/nginx", "latest"),
            ref("nginx", "library/nginx", None),
            ref("nginx@" + DIGEST, "library/nginx", None, DIGEST),
            ref("nginx:1.27.0", "library/nginx", "1.27.0"),
        ),
    )
    assert statuses(verdicts) == [Status.FAIL, Status.FAIL, Status.PASS, Status.PASS]
    assert "untagged" in verdicts[1].message
    assert_evidence(verdicts, "file", "line", "reference", "source")


def test_references_in_dev_are_not_applicable() -> None:
    verdict = only(run("RG-TAG-001", DEV, refs_view(ref("nginx:latest", "library/nginx", "latest"))))
    assert verdict.status is Status.NOT_APPLICABLE


# RG-TAG-002 ----------------------------------------------------------------


def immut_view(settings: dict[str, ImmutabilitySetting], *items: RepositoryFacts, kind: str = "ecr"):
    return view(kind, **{TAG_IMMUTABILITY: TagImmutabilityFacts(by_repository=settings), REPOSITORIES: tuple(items)})


def judge_setting(setting: ImmutabilitySetting, *tag_names: str) -> Status:
    facts = immut_view({"app": setting}, repo("app", *(tag(n) for n in tag_names)))
    return only(run("RG-TAG-002", DEV, facts)).status


def test_immutable_passes_mutable_fails() -> None:
    assert judge_setting(ImmutabilitySetting(True, detail="IMMUTABLE")) is Status.PASS
    assert judge_setting(ImmutabilitySetting(False, detail="MUTABLE")) is Status.FAIL


def test_mutable_with_exclusion_fails() -> None:
    setting = ImmutabilitySetting(False, ("v*",), detail="MUTABLE_WITH_EXCLUSION")
    assert judge_setting(setting) is Status.FAIL


def test_immutable_with_exclusion_not_covering_release_tags_passes() -> None:
    setting = ImmutabilitySetting(True, ("dev-*", "sha-*", "*-snapshot"), detail="IMMUTABLE_WITH_EXCLUSION")
    assert judge_setting(setting, "1.2.3", "dev-42") is Status.PASS


@pytest.mark.parametrize("exclusion", ["v*", "*", "1*", "*.3", "release-*", "*.*.*"])
def test_immutable_with_exclusion_covering_release_tags_fails(exclusion: str) -> None:
    setting = ImmutabilitySetting(True, ("dev-*", exclusion), detail="IMMUTABLE_WITH_EXCLUSION")
    assert judge_setting(setting) is Status.FAIL


def test_exclusion_matching_the_repositorys_own_release_tags_fails() -> None:
    # `release-v9*` matches none of the sample release tags, only the repository's own one.
    setting = ImmutabilitySetting(True, ("release-v9*",), detail="IMMUTABLE_WITH_EXCLUSION")
    facts = immut_view({"app": setting}, repo("app", tag("release-v9.1")))
    verdict = only(run("RG-TAG-002", DEV, facts))
    assert verdict.status is Status.FAIL
    assert verdict.evidence["covered"] == {"release-v9*": ["release-v9.1"]}


def test_missing_setting_and_repository_error_are_errors() -> None:
    facts = immut_view(
        {"ok": ImmutabilitySetting(True)},
        repo("ok"),
        repo("nosetting"),
        repo("broken", error="AccessDenied"),
    )
    assert mapping_of(run("RG-TAG-002", DEV, facts)) == {
        "ok": Status.PASS,
        "nosetting": Status.ERROR,
        "broken": Status.ERROR,
    }


def test_unsupported_kind_fails_through_the_engine() -> None:
    facts = view("distribution", **{TAG_IMMUTABILITY: Fact.unsupported("Distribution has no tag immutability")})
    findings = run_engine("RG-TAG-002", DEV, facts)
    assert statuses(findings) == [Status.FAIL]
    assert findings[0].message == "not supported by distribution: Distribution has no tag immutability"
    assert "aws" not in findings[0].remediation.cli  # the fix for distribution, not ECR's


# RG-TAG-003 ----------------------------------------------------------------


def test_versioned_tags_pass_and_others_fail_in_prod() -> None:
    facts = repo_view(
        repo("good", tag("1.2.3"), tag("v2.0.0-rc.1"), tag("sha256-" + "e" * 64), tag(SIG_TAG)),
        repo("bad", tag("1.0.0"), tag("stable"), tag("prod")),
    )
    verdicts = run("RG-TAG-003", PROD, facts)
    assert mapping_of(verdicts) == {"good": Status.PASS, "bad": Status.FAIL}
    bad = [v for v in verdicts if v.resource == "bad"][0]
    assert bad.evidence["unversioned"] == ["stable", "prod"]


def test_versioned_tags_in_dev_not_applicable() -> None:
    assert statuses(run("RG-TAG-003", DEV, repo_view(repo("x", tag("stable"))))) == [Status.NOT_APPLICABLE]


def test_empty_prod_repository_is_not_applicable() -> None:
    assert statuses(run("RG-TAG-003", PROD, repo_view(repo("x", tag(SIG_TAG))))) == [Status.NOT_APPLICABLE]


# RG-TAG-004 ----------------------------------------------------------------


def test_prod_references_must_carry_a_digest() -> None:
    verdicts = run(
        "RG-TAG-004",
        PROD,
        refs_view(ref("app:1.0@" + DIGEST, "team/app", "1.0", DIGEST), ref("app:1.0", "team/app", "1.0")),
    )
    assert statuses(verdicts) == [Status.PASS, Status.FAIL]


def test_pinning_uses_production_patterns_outside_prod() -> None:
    ctx = context("dev", production_patterns=("prod/*",))
    verdicts = run("RG-TAG-004", ctx, refs_view(ref("r/prod/a:1", "prod/a", "1"), ref("r/dev/a:1", "dev/a", "1")))
    assert [v.evidence["repository"] for v in verdicts] == ["prod/a"]
    assert statuses(verdicts) == [Status.FAIL]


def test_no_references_in_dev_is_not_applicable() -> None:
    assert statuses(run("RG-TAG-004", DEV, refs_view(ref("a:1", "a", "1")))) == [Status.NOT_APPLICABLE]
