"""GAR answers -> facts (pure): the normalization the collector and the policy
pack share. Judgement stays in the rules; these only check what each setting
becomes."""

from __future__ import annotations

from audits.collectors.gar_facts import (
    ImageListing,
    RepositoryRecord,
    image_path,
    logging_facts,
    replication_facts,
    repository_facts,
    retention_facts,
    short_name,
    summarize_cleanup,
)

DIGEST = "sha256:" + "b" * 64


def record(name: str, images: tuple[dict[str, object], ...] = (), **settings: object) -> RepositoryRecord:
    return RepositoryRecord({"name": name, **settings}, ImageListing(images), members=())


def test_resource_names_and_image_paths_keep_to_their_documented_shape() -> None:
    assert short_name("projects/acme-prod/locations/europe/repositories/release") == "europe/release"
    assert short_name("projects/acme-prod/locations/us/repositories/us.gcr.io") == "us/us.gcr.io"
    assert short_name("projects/p/locations/evil.example/repositories/r") is None
    assert short_name("projects/p/locations/us/repositories/r/extra") is None
    uri = f"europe-docker.pkg.dev/acme-prod/release/team/api@{DIGEST}"
    assert image_path(uri, "europe/release") == ("europe/release/team/api", DIGEST)
    assert image_path(f"europe-docker.pkg.dev/acme-prod/other/api@{DIGEST}", "europe/release") is None


def test_cleanup_policies_are_summarized_and_dry_run_is_per_repository() -> None:
    policies = {
        "keep": {"action": "KEEP", "most_recent_versions": {"keep_count": 10}},
        "old": {"action": "DELETE", "condition": {"tag_state": "UNTAGGED", "older_than": "2592000s"}},
    }
    assert summarize_cleanup(policies) == "keep: KEEP 10 most recent; old: DELETE untagged older than 2592000s"
    facts = retention_facts([
        record("europe/a", cleanup_policies=policies), record("us/b", cleanup_policies=policies, cleanup_dry_run=True),
        record("us/c"),
    ])  # fmt: skip
    assert facts.dry_run_repositories == ("us/b",) and facts.uncovered_repositories == ("us/c",)
    assert not facts.dry_run  # no registry-wide dry run


def test_data_access_logs_need_both_reads_and_writes() -> None:
    both = [{"service": "artifactregistry.googleapis.com",
             "auditLogConfigs": [{"logType": "DATA_READ"}, {"logType": "DATA_WRITE"}]}]  # fmt: skip
    assert logging_facts(both).enabled
    assert not logging_facts([{"service": "allServices", "auditLogConfigs": [{"logType": "DATA_READ"}]}]).enabled
    other_service = [{**both[0], "service": "storage.googleapis.com"}]
    assert not logging_facts(other_service).enabled
    assert not logging_facts("not a list").enabled


def test_only_multi_region_locations_count_as_replicated() -> None:
    assert replication_facts([record("europe/a"), record("us/b")]).enabled
    assert not replication_facts([record("europe/a"), record("europe-west1/b")]).enabled


def test_signature_tags_become_signatures_of_the_digest_they_name() -> None:
    sig = "sha256-" + "b" * 64 + ".sig"
    images = (
        {"uri": f"us-docker.pkg.dev/p/r/api@{DIGEST}", "tags": ("1.0.0",)},
        {"uri": f"us-docker.pkg.dev/p/r/api@sha256:{'c' * 64}", "tags": (sig,)},
        {"uri": f"us-docker.pkg.dev/p/r/api@sha256:{'d' * 64}", "tags": ()},
    )
    [repo] = repository_facts([record("us/r", images, immutable_tags=True)])
    assert [t.name for t in repo.tags] == ["1.0.0"] and repo.untagged_digests == 1
    [signature] = repo.tags[0].signatures or ()
    assert signature.reference == sig and repo.signature_tags_immutable
