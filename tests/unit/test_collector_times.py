"""Times from API answers (GHCR, Docker Hub, ACR share `base.parse_time`): a time
without a timezone is not known, so the rules never compare it with aware times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from audits.collectors.base import parse_time
from audits.collectors.ghcr import _version
from audits.model import RepositoryFacts, TagFacts
from audits.rules.scanning import newest_tag


@pytest.mark.parametrize(("value", "parsed"), [
    ("2026-05-01T10:00:00Z", datetime(2026, 5, 1, 10, tzinfo=UTC)),
    ("2026-05-01T10:00:00+00:00", datetime(2026, 5, 1, 10, tzinfo=UTC)),
    ("2026-05-01T10:00:00", None),  # naive: no timezone, not guessed
    ("2026-05-01T10:00:00Z" + " " * 40, None),
    ("yesterday", None),
    (1767225600, None),
    ("", None),
])
def test_parse_time(value: object, parsed: datetime | None) -> None:
    assert parse_time(value) == parsed


def test_a_naive_ghcr_push_time_is_unknown_never_a_type_error() -> None:
    raw = [
        {"name": "sha256:" + c * 64, "created_at": when, "metadata": {"container": {"tags": [tag]}}}
        for c, when, tag in (("a", "2026-05-01T00:00:00Z", "v1"), ("b", "2026-05-02T00:00:00", "v2"))
    ]
    versions = [v for r in raw if (v := _version(r)) is not None]
    assert [v.created_at for v in versions] == [datetime(2026, 5, 1, tzinfo=UTC), None]
    repo = RepositoryFacts("api", tags=tuple(TagFacts(v.tags[0], v.digest, None, pushed_at=v.created_at)
                                             for v in versions))
    assert newest_tag(repo) is None  # a push time is missing: "newest" is not decided
