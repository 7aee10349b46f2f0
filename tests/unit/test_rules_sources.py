"""RG-SRC-001..002 and RG-FIT-001: where images come from, and whether the
registry kind suits the declared use cases."""

from __future__ import annotations

import pytest

from audits.model import IMAGE_REFERENCES, ImageReference, ImageReferencesFacts, Status
from audits.refs import is_ip_registry
from audits.rules.sources import is_allow_listed, split_host_port
from tests.unit.test_rules_common import DEV, PROD, assert_evidence, context, only, run, statuses, view


def ref(registry: str, repository: str, tag: str = "1.0", scheme: str | None = None) -> ImageReference:
    raw = f"{scheme + '://' if scheme else ''}{registry}/{repository}:{tag}"
    return ImageReference(
        raw=raw,
        file="Dockerfile",
        line=1,
        registry=registry,
        repository=repository,
        tag=tag,
        digest=None,
        explicit_scheme=scheme,
    )


def refs_view(*items: ImageReference):
    return view("image-refs", **{IMAGE_REFERENCES: ImageReferencesFacts(items, files_scanned=2)})


# RG-SRC-001 -----------------------------------------------------------------


def test_official_and_allow_listed_namespaces_pass_others_fail() -> None:
    ctx = context("prod", allowed_namespaces=("bitnami",))
    verdicts = run(
        "RG-SRC-001",
        ctx,
        refs_view(
            ref("docker.io", "library/nginx"),
            ref("docker.io", "bitnami/redis"),
            ref("index.docker.io", "randomuser/miner"),
            ref("ghcr.io", "org/app"),
        ),
    )
    assert statuses(verdicts) == [Status.PASS, Status.PASS, Status.FAIL]
    assert verdicts[2].evidence["namespace"] == "randomuser"
    assert_evidence(verdicts, "reference", "file", "line", "source")


def test_no_docker_hub_references_is_not_applicable() -> None:
    assert statuses(run("RG-SRC-001", PROD, refs_view(ref("ghcr.io", "org/app")))) == [Status.NOT_APPLICABLE]


def test_sources_rule_is_prod_only() -> None:
    assert statuses(run("RG-SRC-001", DEV, refs_view(ref("docker.io", "someone/x")))) == [Status.NOT_APPLICABLE]


# RG-SRC-002 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (ref("registry.internal:5000", "app"), Status.PASS),
        (ref("ghcr.io", "org/app"), Status.PASS),
        (ref("localhost:5000", "app"), Status.PASS),
        (ref("10.0.0.5:5000", "app"), Status.FAIL),
        (ref("10.0.0.5", "app"), Status.FAIL),
        (ref("[fd00::1]:5000", "app"), Status.FAIL),
        (ref("registry.internal", "app", scheme="http"), Status.FAIL),
        (ref("registry.internal", "app", scheme="https"), Status.PASS),
    ],
)
def test_insecure_registries(item: ImageReference, expected: Status) -> None:
    assert only(run("RG-SRC-002", DEV, refs_view(item))).status is expected


def test_allow_list_exact_or_host_only() -> None:
    ctx = context("dev", allowed_registries=("10.0.0.5:5000", "10.0.0.9"))
    verdicts = run(
        "RG-SRC-002",
        ctx,
        refs_view(ref("10.0.0.5:5000", "a"), ref("10.0.0.5:6000", "a"), ref("10.0.0.9:443", "a")),
    )
    assert statuses(verdicts) == [Status.PASS, Status.FAIL, Status.PASS]


def test_no_references_is_not_applicable() -> None:
    assert statuses(run("RG-SRC-002", DEV, refs_view())) == [Status.NOT_APPLICABLE]


def test_host_port_parsing() -> None:
    assert split_host_port("[::1]:5000") == ("::1", "5000")
    assert split_host_port("h:5000") == ("h", "5000")
    assert split_host_port("h") == ("h", None)
    assert is_ip_registry("127.0.0.1:5000") and is_ip_registry("[::1]") and not is_ip_registry("reg.example:5000")
    assert is_allow_listed("h:1", ("h",)) and not is_allow_listed("h:1", ("h:2",))


# RG-FIT-001 -----------------------------------------------------------------


def fit(kind: str, *use_cases: str):
    ctx = context("prod", use_cases=use_cases, target_kind=kind)
    return only(run("RG-FIT-001", ctx, view(kind)))


def test_kind_recommended_for_all_use_cases_passes() -> None:
    verdict = fit("harbor", "air-gapped", "compliance-audit-trail")
    assert verdict.status is Status.PASS
    assert "content trust" in verdict.message  # the condition is carried along
    assert verdict.evidence["recommended"][0] == "harbor"


def test_kind_not_recommended_fails_with_alternatives() -> None:
    verdict = fit("ecr", "air-gapped")
    assert verdict.status is Status.FAIL
    assert "harbor or distribution" in verdict.message


def test_cloud_native_match() -> None:
    assert fit("ecr", "aws-native", "vulnerability-scanning").status is Status.PASS
    assert fit("gar", "aws-native").status is Status.FAIL


def test_no_use_cases_is_not_applicable_with_a_hint() -> None:
    verdict = fit("ecr")
    assert verdict.status is Status.NOT_APPLICABLE
    assert "use_cases" in verdict.message and "air-gapped" in verdict.message


def test_fit_does_not_apply_to_reference_scans() -> None:
    ctx = context("prod", use_cases=("air-gapped",), target_kind="image-refs")
    assert only(run("RG-FIT-001", ctx, view("image-refs"))).status is Status.NOT_APPLICABLE


UNRESOLVED = ImageReference(
    raw="${BASE_IMAGE}",
    file="Dockerfile",
    line=2,
    registry="",
    repository="",
    tag=None,
    digest=None,
    context="dockerfile",
    error="ARG BASE_IMAGE has no default",
)


def test_unresolved_reference_is_error_in_every_reference_rule() -> None:
    """Regression: `FROM ${BASE_IMAGE}` with no default was judged as 'untagged -> latest'."""
    facts = view("image-refs", **{IMAGE_REFERENCES: ImageReferencesFacts((UNRESOLVED,), files_scanned=1)})
    for rule_id in ("RG-TAG-001", "RG-TAG-004", "RG-SRC-001", "RG-SRC-002"):
        verdict = only(run(rule_id, PROD, facts))
        assert verdict.status is Status.ERROR, rule_id
        assert "no default" in verdict.message


def test_unreadable_file_is_error_not_silence() -> None:
    found = ImageReferencesFacts((), files_scanned=1, unreadable=("k8s/broken.yaml: not valid YAML at line 11",))
    verdict = only(run("RG-TAG-001", PROD, view("image-refs", **{IMAGE_REFERENCES: found})))
    assert verdict.status is Status.ERROR
    assert verdict.resource == "k8s/broken.yaml"
