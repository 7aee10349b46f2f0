"""Remediation is for the finding in front of the reader: every (rule, kind)
pair regguard implements has a fix for that kind, the fix names no other
provider's CLI, and every component argument it names exists."""

from __future__ import annotations

import ast
import dataclasses
import re

import pytest

from audits import kinds
from audits.engine import judge
from audits.model import (
    REPOSITORIES,
    TAG_IMMUTABILITY,
    Fact,
    ImmutabilitySetting,
    RepositoryFacts,
    Status,
    TagImmutabilityFacts,
    TargetFacts,
    utcnow,
)
from audits.rules.registry import RuleContext, catalog

# Words that give a fix away as another provider's.
CLOUD_CLIS = re.compile(r"\b(aws|gcloud|az|GAR|ACR|Harbor|Docker Hub|GHCR)\b")
NOT_ECR = re.compile(r"\b(gcloud|az|GAR|ACR|Harbor|Docker Hub|GHCR|htpasswd|config\.yml)\b")
NOT_ACR = re.compile(r"\b(aws|gcloud|ECR|GAR|Harbor|Docker Hub|GHCR|htpasswd|config\.yml|amazonaws)\b")
NOT_GHCR = re.compile(r"\b(aws|gcloud|az|GAR|ACR|Harbor|Docker Hub|htpasswd|config\.yml)\b")


def implemented_pairs() -> list[tuple[str, str]]:
    return sorted((rule_id, kind) for rule_id, rule in catalog().items() for kind in rule.meta.implemented_for())


def test_every_implemented_rule_and_kind_has_a_remediation() -> None:
    missing = [f"{rule_id} on {kind}" for rule_id, kind in implemented_pairs()
               if catalog()[rule_id].meta.remediation_for(kind) is None]
    assert missing == [], "rules without a fix for a kind they judge: " + ", ".join(missing)


def test_no_remediation_for_a_kind_the_rule_does_not_judge() -> None:
    stray = [f"{rule_id} on {kind}" for rule_id, rule in catalog().items()
             for kind in rule.meta.remediation if kind not in rule.meta.implemented_for()]
    assert stray == []


@pytest.mark.parametrize("rule_id", sorted(catalog()))
def test_a_distribution_fix_names_no_cloud_and_an_ecr_fix_no_other_provider(rule_id: str) -> None:
    meta = catalog()[rule_id].meta
    if (fix := meta.remediation_for("distribution")) is not None:
        assert not CLOUD_CLIS.search(fix.cli), fix.cli
        assert fix.component is None or fix.component.startswith("DistributionVmArgs("), fix.component
    if (fix := meta.remediation_for("ecr")) is not None:
        assert not NOT_ECR.search(fix.cli), fix.cli
    if (fix := meta.remediation_for("ghcr")) is not None:
        assert not NOT_GHCR.search(fix.cli), fix.cli


NOT_GAR = re.compile(r"\b(aws|az|ECR|ACR|Harbor|Docker Hub|GHCR|htpasswd|config\.yml)\b")


@pytest.mark.parametrize("rule_id", sorted(catalog()))
def test_a_gar_fix_names_no_other_provider(rule_id: str) -> None:
    if (fix := catalog()[rule_id].meta.remediation_for("gar")) is not None:
        assert not NOT_GAR.search(fix.cli), fix.cli


def _component_modules() -> list[object]:
    """Every module of the components package (each kind's component module and the baseline)."""
    import importlib
    import pkgutil

    import components

    return [importlib.import_module(f"components.{m.name}") for m in pkgutil.iter_modules(components.__path__)]


@pytest.mark.parametrize("rule_id", sorted(r for r, rule in catalog().items() if rule.meta.applies_to("acr")))
def test_an_acr_fix_names_no_other_provider(rule_id: str) -> None:
    fix = catalog()[rule_id].meta.remediation_for("acr")
    assert fix is not None, f"{rule_id} judges acr without a fix"
    assert not NOT_ACR.search(fix.as_text()), fix.as_text()


def _component_namespace() -> dict[str, type]:
    """Every class a remediation may name: the shipped components' Args and the Baseline."""
    found: dict[str, type] = {}
    for module in _component_modules():
        found.update({n: c for n, c in vars(module).items() if isinstance(c, type) and dataclasses.is_dataclass(c)})
    return found


def _calls(expression: str) -> list[ast.Call]:
    tree = ast.parse(expression, mode="eval")
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


@pytest.mark.parametrize(("rule_id", "kind"), implemented_pairs())
def test_component_arguments_exist(rule_id: str, kind: str) -> None:
    fix = catalog()[rule_id].meta.remediation_for(kind)
    if fix is None or fix.component is None:
        return
    namespace = _component_namespace()
    calls = _calls(fix.component)
    assert calls, f"{fix.component!r} names no component class"
    for call in calls:
        assert isinstance(call.func, ast.Name), ast.unparse(call)
        cls = namespace.get(call.func.id)
        assert cls is not None, f"{rule_id}/{kind}: {call.func.id} is not a regguard component class"
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = [k.arg for k in call.keywords if k.arg not in fields]
        assert not unknown and not call.args, f"{rule_id}/{kind}: {call.func.id} has no argument {unknown}"


def test_the_component_check_is_real() -> None:
    calls = _calls("EcrRepositoryArgs(baseline=Baseline(require_sigining=True))")
    fields = {f.name for f in dataclasses.fields(_component_namespace()["Baseline"])}
    assert any(k.arg not in fields for call in calls for k in call.keywords)


def _tag_facts(kind: str, immutable: bool) -> TargetFacts:
    now = utcnow()
    setting = Fact.ok(TagImmutabilityFacts({"app": ImmutabilitySetting(immutable=immutable)}), "test")
    if kind == "distribution":
        setting = Fact.unsupported("Distribution has no tag immutability")
    return TargetFacts(
        target="t", kind=kind, started_at=now, finished_at=now,
        facts={TAG_IMMUTABILITY: setting, REPOSITORIES: Fact.ok((RepositoryFacts("app"),), "test")},
    )


@pytest.mark.parametrize(("kind", "wanted", "unwanted"), [
    ("distribution", "Distribution cannot", "aws ecr"),
    ("ecr", "aws ecr put-image-tag-mutability", "Harbor"),
    ("gar", "gcloud artifacts repositories update", "aws ecr"),
])
def test_a_failing_finding_carries_the_fix_for_its_own_kind(kind: str, wanted: str, unwanted: str) -> None:
    rules = {"RG-TAG-002": catalog()["RG-TAG-002"]}
    [finding] = judge(_tag_facts(kind, immutable=False), RuleContext(environment="dev"), rules)
    assert finding.status is Status.FAIL and finding.remediation is not None
    assert wanted in finding.remediation.cli and unwanted not in finding.remediation.as_text()


def test_passing_findings_carry_no_remediation() -> None:
    rules = {"RG-TAG-002": catalog()["RG-TAG-002"]}
    [finding] = judge(_tag_facts("ecr", immutable=True), RuleContext(environment="dev"), rules)
    assert finding.status is Status.PASS and finding.remediation is None


def test_kind_table_names_every_kind_with_a_collector() -> None:
    registries = {"distribution", "ecr", "harbor", "gar", "acr", "dockerhub", "ghcr"}
    assert set(kinds.names()) == registries | {"docker-config", "image-refs"}
