"""The harbor kind's provisioner for tests, until its kind-table line lands.

The `harbor` line of `audits/kinds.py` (target model, collector) comes from the
harbor-audit branch; this branch adds its provisioner (`components.harbor_vm`) and policy-pack
declarer (`policy.declared_harbor`).
Until both are merged, tests that run a stack with a `kind: harbor` entry
register a stand-in line with that provisioner; once the real line exists it
is used, and it must name the provisioner (the assertion says what to add).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import Field

from audits import kinds
from audits.targets import OciAuth, TargetConfig

PROVISIONER = "components.harbor_vm"
DECLARER = "policy.declared_harbor"


class StandInHarborTarget(TargetConfig, OciAuth):
    """The keys issue 8 gives a harbor target (url, credentials by env var, CA, project globs)."""

    url: str = Field(pattern=r"^https://[^/\s]+/?$")
    ca_file: Path | None = None
    projects: list[str] = Field(default_factory=list)


@contextmanager
def harbor_provisioned() -> Iterator[kinds.Kind]:
    try:
        kind = kinds.get("harbor")
    except kinds.UnknownKind:
        stand_in = kinds.Kind(
            "harbor", "Harbor", StandInHarborTarget, "audits.collectors.harbor", registry=True,
            provisioner=PROVISIONER, declarer=DECLARER,
        )
        with kinds.registered(stand_in) as registered:
            yield registered
        return
    assert (kind.provisioner, kind.declarer) == (PROVISIONER, DECLARER), (
        f'the harbor kind line needs provisioner="{PROVISIONER}", declarer="{DECLARER}"'
    )
    yield kind
