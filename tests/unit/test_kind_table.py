"""A new kind is one line in the kind table: registered there alone, a
throwaway kind is parsed from regguard.yaml, dispatched to its collector,
judged by the registry rules and listed by `regguard rules`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from audits import kinds
from audits.cli import main
from audits.config import ConfigError, load_config
from audits.engine import run_audit
from audits.model import Status
from tests.unit import throwaway_kind
from tests.unit.throwaway_kind import FloppyTarget

FLOPPY = kinds.Kind(
    "floppy", "Floppy registry", FloppyTarget, "tests.unit.throwaway_kind", registry=True
)
CONFIG = """
environment: prod
targets:
  - {name: a-drive, kind: floppy, drive: "A:"}
"""


@pytest.fixture
def floppy() -> Iterator[kinds.Kind]:
    throwaway_kind.COLLECTED.clear()
    with kinds.registered(FLOPPY) as kind:
        yield kind


def write_config(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "regguard.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_config_parses_the_new_kinds_own_model(floppy: kinds.Kind, tmp_path: Path) -> None:
    (target,) = load_config(write_config(tmp_path)).targets
    assert isinstance(target, FloppyTarget) and target.drive == "A:"


def test_its_own_keys_are_checked_and_named(floppy: kinds.Kind, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"targets\[0\]\.drive: required key is missing"):
        load_config(write_config(tmp_path, "targets: [{name: a, kind: floppy}]"))


def test_without_its_table_line_the_kind_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"targets\[0\]\.kind: unknown target kind 'floppy'"):
        load_config(write_config(tmp_path))


def test_the_audit_dispatches_to_its_collector_and_registry_rules_judge_it(
    floppy: kinds.Kind, tmp_path: Path
) -> None:
    run = run_audit(load_config(write_config(tmp_path)))
    assert throwaway_kind.COLLECTED == ["a-drive"]
    by_rule = {f.rule: f for f in run.result.findings if f.resource == "disk/app"}
    assert by_rule["RG-TAG-001"].status is Status.FAIL and by_rule["RG-TAG-001"].kind == "floppy"
    assert by_rule["RG-TAG-002"].status is Status.FAIL
    # facts the collector never produced are errors, never passes
    tls = [f for f in run.result.findings if f.rule == "RG-TLS-002"]
    assert tls and all(f.status is Status.ERROR for f in tls)
    # no fix is recorded for this kind, so none is invented
    assert by_rule["RG-TAG-002"].remediation is None


def test_regguard_rules_lists_it_where_registry_rules_apply(
    floppy: kinds.Kind, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", "--format", "json"]) == 0
    listed = {r["id"]: r["kinds"] for r in json.loads(capsys.readouterr().out)}
    assert "floppy" in listed["RG-TAG-002"]
    assert "floppy" not in listed["RG-TAG-004"]  # an image-refs rule


def test_regguard_rules_lists_only_kinds_that_can_be_audited(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--format", "json"]) == 0
    every_kind = {k for r in json.loads(capsys.readouterr().out) for k in r["kinds"]}
    assert every_kind == set(kinds.names())  # no gar/acr/harbor before their collectors exist


SCOPED_FLOPPY = kinds.Kind(
    "floppy", "Floppy registry", FloppyTarget, "tests.unit.throwaway_kind", registry=True,
    scopes="tests.unit.throwaway_kind:drives",
)


def test_a_kind_with_scopes_is_audited_scope_by_scope_and_a_listing_failure_stays_its_own(tmp_path: Path) -> None:
    throwaway_kind.COLLECTED.clear()
    config = write_config(tmp_path, "targets:\n  - {name: pc, kind: floppy, drive: AB}\n"
                                    "  - {name: broken, kind: floppy, drive: X}\n")
    with kinds.registered(SCOPED_FLOPPY):
        run = run_audit(load_config(config))
        second = run_audit(load_config(config), shard=(1, 2))
    assert sorted(throwaway_kind.COLLECTED) == ["pc/A", "pc/A", "pc/B", "pc/B"]
    assert [t.name for t in run.result.targets] == ["pc/A", "pc/B", "broken"]
    broken = [f for f in run.result.findings if f.target == "broken"]
    assert broken and {f.status for f in broken} == {Status.ERROR}
    assert all("drive X of broken is not inserted" in f.message for f in broken)
    assert not next(t for t in run.result.targets if t.name == "broken").complete
    # shards part the scopes in name order, not the targets: "broken" in 0/2, "pc/A" and "pc/B" in 1/2
    assert [t.name for t in second.result.targets] == ["pc/A", "pc/B"]
