"""The ECR collector applies the repository cap to DescribeRepositories and
publishes its facts as it assembles them (in-process moto)."""

from __future__ import annotations

import boto3
import pytest

from audits.collectors import ecr
from audits.collectors.base import CollectOptions
from audits.model import CREDENTIALS, LOGGING, REPOSITORIES, TAG_IMMUTABILITY
from audits.targets import EcrTarget
from tests.unit.test_ecr_collect import aws  # noqa: F401 - the in-process moto fixture


@pytest.mark.usefixtures("aws")
def test_capped_ecr_listing_audits_the_first_by_name_and_publishes_its_facts() -> None:
    client = boto3.client("ecr", region_name="us-east-1")
    for name in ("team/e", "team/b", "team/d", "team/a", "team/c"):
        client.create_repository(repositoryName=name)
    options = CollectOptions(concurrency=2, max_repositories=2)
    facts = ecr.collect(EcrTarget(name="core", kind="ecr", region="us-east-1"), options)

    assert [r.name for r in facts.facts[REPOSITORIES].value] == ["team/a", "team/b"]
    assert sorted(facts.facts[TAG_IMMUTABILITY].value.by_repository) == ["team/a", "team/b"]
    (gap,) = options.published.gaps()
    assert gap.startswith("repositories: audited 2 of 5")
    published = options.published.facts()
    for name in (REPOSITORIES, LOGGING, CREDENTIALS):
        assert published[name] == facts.facts[name], f"{name} was published as well as returned"
