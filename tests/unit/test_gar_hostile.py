"""What the Artifact Registry API sends is untrusted: a repository name or an
image URI that steps outside its documented shape is never put into a request
path or a host name (the audit's access token would go with it); it is
reported, and the rest of the project is audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from audits.collectors import gar
from audits.collectors.base import CollectOptions, RequestCounter
from audits.collectors.gar_signatures import verify_signatures
from audits.model import REPOSITORIES, RepositoryFacts, SignatureFacts, TagFacts
from audits.targets import GarTarget
from sandbox.gar_emulator import EmulatedRepository, GarEmulator
from sandbox.gar_estate import PROJECT, compliant_settings, seeded_emulator
from sandbox.signing import generate_key_pair

DIGEST = "sha256:" + "a" * 64
SIG_TAG = "sha256-" + "a" * 64 + ".sig"


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GarEmulator]:
    with seeded_emulator(tmp_path) as (emu, key_file):
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
        yield emu


def test_a_repository_name_outside_the_documented_shape_is_reported_not_requested(emulator: GarEmulator) -> None:
    hostile = f"projects/{PROJECT}/locations/evil.invalid#/repositories/x"
    emulator.add_repository(
        EmulatedRepository("europe", "hostile", {**compliant_settings(PROJECT, "europe"), "name": hostile})
    )
    target = GarTarget(name="g", kind="gar", project=PROJECT, locations=["europe"], endpoint_url=emulator.url,
                       resource_manager_url=emulator.url)  # fmt: skip
    facts = gar.collect(target, CollectOptions(concurrency=2, timeout=5))
    repos = {r.name: r for r in facts.facts[REPOSITORIES].value}
    refused = [r for r in repos.values() if r.error and "not requested" in r.error]
    assert len(refused) == 1 and "europe/release/api" in repos  # the rest is audited
    assert emulator.calls["artifactregistry.projects.locations.repositories.getIamPolicy"] == 1  # only release


@pytest.mark.parametrize("name", ["evil.invalid#/r/api", "europe/r/../../other", "EUROPE/r/api"])
def test_no_signature_request_leaves_for_a_name_that_is_not_a_gar_path(name: str, tmp_path: Path) -> None:
    keys = generate_key_pair(tmp_path, "k")
    signature = SignatureFacts("cosign", "tag", SIG_TAG, None, None, "no trusted key configured")
    repo = RepositoryFacts(name, tags=(TagFacts("1.0.0", DIGEST, None, signatures=(signature,)),))
    counter = RequestCounter()
    target = GarTarget(name="g", kind="gar", project=PROJECT)
    options = CollectOptions(timeout=1, trusted_keys=(str(keys.public_key),))
    [checked] = verify_signatures((repo,), target, options, counter, "ya29.secret")
    assert counter.total == 0
    [result] = checked.tags[0].signatures or ()
    assert result.verified is None and "not requested" in (result.verify_error or "")
