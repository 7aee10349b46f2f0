"""How the ECR collector turns raw API values into normalized facts: tag
mutability, encryption, scanning coverage, lifecycle summaries, CloudTrail
selectors, image scans and signature artifacts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from audits.collectors.ecr_facts import (
    build_repository_facts,
    encryption_setting,
    immutability_setting,
    management_events_logged,
    mask_key_id,
    scanning_facts,
    summarize_lifecycle,
    vulnerability_scan,
)

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64
D3 = "sha256:" + "c" * 64


@pytest.mark.parametrize(
    ("raw", "filters", "immutable"),
    [
        ("MUTABLE", [], False),
        ("IMMUTABLE", [], True),
        ("IMMUTABLE_WITH_EXCLUSION", ["dev-*", "pr-*"], True),
        ("MUTABLE_WITH_EXCLUSION", ["release-*"], False),
    ],
)
def test_immutability_normalized_raw_kept(raw: str, filters: list[str], immutable: bool) -> None:
    repo: Any = {
        "repositoryName": "app",
        "imageTagMutability": raw,
        "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": f} for f in filters],
    }
    setting = immutability_setting(repo)
    assert setting.immutable is immutable
    assert setting.exclusion_filters == tuple(filters)
    assert setting.detail == raw


def test_immutability_defaults_to_mutable_when_absent() -> None:
    assert immutability_setting({"repositoryName": "x"}).immutable is False


@pytest.mark.parametrize(
    ("config", "customer", "detail"),
    [
        ({"encryptionType": "AES256"}, False, "AES256"),
        ({}, False, "AES256"),
        ({"encryptionType": "KMS"}, False, "KMS aws/ecr"),
        ({"encryptionType": "KMS", "kmsKey": "arn:aws:kms:us-east-1:1:alias/aws/ecr"}, False, "KMS aws/ecr"),
        ({"encryptionType": "KMS", "kmsKey": "arn:aws:kms:us-east-1:1:key/k-1"}, True, "KMS customer key"),
        ({"encryptionType": "KMS_DSSE", "kmsKey": "arn:aws:kms:us-east-1:1:key/k-2"}, True, "KMS_DSSE customer key"),
    ],
)
def test_encryption_customer_key(config: dict[str, str], customer: bool, detail: str) -> None:
    setting = encryption_setting({"repositoryName": "x", "encryptionConfiguration": config})  # type: ignore[typeddict-item]
    assert setting.customer_managed is customer
    assert setting.detail == detail


def _repos(*specs: tuple[str, bool]) -> list[Any]:
    return [{"repositoryName": n, "imageScanningConfiguration": {"scanOnPush": s}} for n, s in specs]


def test_basic_scanning_rules_and_legacy_scan_on_push() -> None:
    config = {
        "scanType": "BASIC",
        "rules": [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "prod*"}]}],
    }
    facts = scanning_facts(config, _repos(("prod-api", False), ("dev/tool", True), ("misc", False)))
    assert facts.enabled is True
    assert facts.mode == "scan_on_push"
    assert facts.scanner == "ecr-basic"
    assert facts.uncovered_repositories == ("misc",)


def test_enhanced_scanning_ignores_legacy_flag_and_manual_rules() -> None:
    config = {
        "scanType": "ENHANCED",
        "rules": [
            {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "prod/*"}]},
            {"scanFrequency": "MANUAL", "repositoryFilters": [{"filter": "*"}]},
        ],
    }
    facts = scanning_facts(config, _repos(("prod/api", False), ("dev/tool", True)))
    assert facts.mode == "continuous"
    assert facts.scanner == "amazon-inspector"
    assert facts.uncovered_repositories == ("dev/tool",)


def test_no_scanning_at_all() -> None:
    facts = scanning_facts({"scanType": "BASIC", "rules": []}, _repos(("a1", False), ("b1", False)))
    assert facts.enabled is False
    assert facts.mode == "manual"
    assert facts.uncovered_repositories == ("a1", "b1")


def test_wildcard_filter_is_not_a_substring_match() -> None:
    config = {
        "scanType": "BASIC",
        "rules": [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "prod"}]}],
    }
    assert scanning_facts(config, _repos(("team/prod-x", False))).uncovered_repositories == ("team/prod-x",)


def test_lifecycle_summary() -> None:
    text = json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 2,
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPrefixList": ["v"],
                        "countType": "imageCountMoreThan",
                        "countNumber": 30,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 1,
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": 7,
                    },
                    "action": {"type": "expire"},
                },
            ]
        }
    )
    assert summarize_lifecycle(text) == (
        "1: expire untagged images pushed more than 7 days ago; 2: expire tagged images (v) beyond the newest 30"
    )
    assert summarize_lifecycle("{not json") == "lifecycle policy present (not valid JSON)"


def test_trail_without_custom_selectors_logs_everything() -> None:
    assert management_events_logged({"HasCustomEventSelectors": False}, None) == {"read", "write"}


@pytest.mark.parametrize(
    ("selectors", "covered"),
    [
        ({"EventSelectors": [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]}, {"write"}),
        ({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": False}]}, set()),
        ({"EventSelectors": [], "AdvancedEventSelectors": []}, set()),
        (
            {"AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}]},
            {"read", "write"},
        ),
        (
            {
                "AdvancedEventSelectors": [
                    {
                        "FieldSelectors": [
                            {"Field": "eventCategory", "Equals": ["Management"]},
                            {"Field": "readOnly", "Equals": ["true"]},
                        ]
                    },
                    {"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]}]},
                ]
            },
            {"read"},
        ),
    ],
)
def test_custom_selectors(selectors: dict[str, Any], covered: set[str]) -> None:
    assert management_events_logged({"HasCustomEventSelectors": True}, selectors) == covered


def test_scan_status_mapping_and_severity_keys() -> None:
    done = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    scan = vulnerability_scan(
        {
            "imageScanStatus": {"status": "COMPLETE"},
            "imageScanFindingsSummary": {
                "imageScanCompletedAt": done,
                "findingSeverityCounts": {"CRITICAL": 1, "HIGH": 2, "INFORMATIONAL": 4},
            },
        }
    )
    assert scan.status == "complete"
    assert dict(scan.severity_counts) == {"critical": 1, "high": 2, "info": 4}
    assert scan.completed_at == done.astimezone(UTC)
    assert vulnerability_scan({}).status == "none"
    assert vulnerability_scan({"imageScanStatus": {"status": "IN_PROGRESS"}}).status == "pending"
    assert vulnerability_scan({"imageScanStatus": {"status": "UNSUPPORTED_IMAGE"}}).status == "unsupported"
    assert vulnerability_scan({"imageScanStatus": {"status": "ACTIVE"}}).status == "complete"


def test_repository_tags_signatures_and_untagged() -> None:
    pushed = datetime(2026, 5, 1, tzinfo=UTC)
    images: list[Any] = [
        {"imageDigest": D1, "imageTags": ["v1.0.0", "stable"], "imagePushedAt": pushed,
         "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json"},
        {"imageDigest": D2, "imageTags": ["latest"]},
        {"imageDigest": "sha256:" + "d" * 64, "imageTags": ["sha256-" + "a" * 64 + ".sig"]},
        {"imageDigest": "sha256:" + "e" * 64, "imageTags": ["sha256-" + "a" * 64 + ".att"]},
        {"imageDigest": D3},  # untagged
        # a Notation signature stored as a referrer of D2
        {"imageDigest": "sha256:" + "f" * 64, "subjectManifestDigest": D2,
         "artifactMediaType": "application/vnd.cncf.notary.signature"},
    ]  # fmt: skip
    repo = build_repository_facts("app", images, anonymous_pull=False, declared_public=False)
    assert [t.name for t in repo.tags] == ["latest", "stable", "v1.0.0"]
    assert repo.untagged_digests == 1
    by_name = {t.name: t for t in repo.tags}
    v1 = by_name["v1.0.0"]
    assert v1.digest == D1 and v1.pushed_at == pushed
    assert v1.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert v1.signatures is not None and [(s.format, s.discovered_via, s.reference) for s in v1.signatures] == [
        ("cosign", "tag", "sha256-" + "a" * 64 + ".sig")
    ]
    assert by_name["stable"].signatures == v1.signatures
    latest = by_name["latest"].signatures
    assert latest is not None and [(s.format, s.discovered_via) for s in latest] == [("notation", "referrers")]
    assert all(s.verified is None for t in repo.tags for s in t.signatures or ())


def test_unsigned_tag_has_empty_signatures_not_none() -> None:
    repo = build_repository_facts(
        "app", [{"imageDigest": D1, "imageTags": ["v1"]}], anonymous_pull=None, declared_public=True
    )
    assert repo.tags[0].signatures == ()
    assert repo.declared_public is True and repo.anonymous_pull is None


def test_mask_key_id() -> None:
    assert mask_key_id("AKIAIOSFODNN7EXAMPLE") == "AKIA…MPLE"
    assert mask_key_id("short") == "…"
