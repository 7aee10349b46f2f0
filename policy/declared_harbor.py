"""Harbor's policy-pack declarer: the Harbor projects and robot accounts a stack
declares (pulumiverse-harbor resources), as the facts a live Harbor audit would
produce, so the same rules judge them.

What declared state shows, and how (each project is a "repository" of the
Harbor target, as the live audit reports per project):

* REPOSITORIES: every `harbor:index/project:Project`; `anonymous_pull` is its
  `public` input, `declared_public` the `regguard-opt-out-public` label beside it.
* TAG_IMMUTABILITY: the project's immutable tag rule (same component, or its
  `projectId`): immutable when its tag pattern covers release tags (1.2.3,
  v1.2.3) and is not disabled; its `tagExcluding` patterns are the exclusions.
* SCANNING: `vulnerabilityScanning` (Harbor's scan on push) of every project.
* CREDENTIALS: every robot account; a `duration` of -1 or none never expires.
* ANONYMOUS_ACCESS is `managed`: Harbor's endpoint only serves public projects
  anonymously, which REPOSITORIES judges project by project.

Everything else is `not_observable`. Pure: no I/O, no Pulumi engine, no SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from audits.collectors.harbor_api import Selector, TagRule
from audits.collectors.harbor_facts import immutability
from audits.model import (
    ANONYMOUS_ACCESS,
    CREDENTIALS,
    REPOSITORIES,
    SCANNING,
    TAG_IMMUTABILITY,
    CredentialFacts,
    Fact,
    Finding,
    ImmutabilitySetting,
    RepositoryFacts,
    ScanningFacts,
    TagImmutabilityFacts,
    TargetFacts,
    utcnow,
)
from audits.rules.registry import RuleContext
from audits.vocabulary import DEFAULT_FRAMEWORKS, is_production_environment
from policy.declared import ENVIRONMENT_TAG, DeclaredResource, Location, is_unknown

KIND = "harbor"
PROJECT = "harbor:index/project:Project"
IMMUTABLE_RULE = "harbor:index/immutableTagRule:ImmutableTagRule"
ROBOT = "harbor:index/robotAccount:RobotAccount"
LABEL = "harbor:index/label:Label"
TYPE_PREFIX = "harbor:index/"
MANAGED_REMEDIATION = (
    "Declare Harbor projects with components.harbor_project.HarborProject (and system settings with "
    "HarborSystem) instead of raw pulumiverse-harbor resources."
)
DECLARED_STATE_RULES: tuple[str, ...] = ("RG-AUTH-001", "RG-CRED-001", "RG-SCAN-001", "RG-TAG-002")
OPT_OUT_LABELS: Mapping[str, str] = {"RG-TAG-002": "regguard-opt-out-immutable-tags"}
_NOT_DECLARED = "cannot be seen in declared state (Pulumi resource inputs); the live audit checks it"
_OTHER_FACTS = ("endpoint", "tls", "plain_http", "token_realm_origin", "retention", "logging", "encryption",
                "network_exposure", "replication", "admin_account", "content_trust", "pull_counts")


@dataclass(frozen=True)
class DeclaredHarbor:
    """The declared projects and robots as one Harbor target."""

    facts: TargetFacts
    context: RuleContext
    urns: Mapping[str, DeclaredResource]  # finding resource (project name / robot id) -> resource
    labels: Mapping[str, frozenset[str]]  # project name -> its label names
    environment: str

    def locate(self, finding: Finding) -> list[Location]:
        resource = self.urns.get(finding.resource)
        opted = OPT_OUT_LABELS.get(finding.rule) in self.labels.get(finding.resource, frozenset())
        return [Location(resource.urn if resource else None, self.environment, opted)]


def declare(
    resources: Sequence[DeclaredResource],
    *,
    frameworks: tuple[str, ...] = DEFAULT_FRAMEWORKS,
    at: datetime | None = None,
) -> DeclaredHarbor | None:
    """The stack's Harbor facts, or None when it declares no Harbor project."""
    at = at or utcnow()
    projects = {_name(p): p for p in resources if p.type == PROJECT}
    if not projects:
        return None
    labels = {name: _labels_of(p, resources) for name, p in projects.items()}
    rules = {name: _rule_of(p, resources) for name, p in projects.items()}
    robots = [r for r in resources if r.type == ROBOT]
    source = f"declared {PROJECT}"
    facts: dict[str, Fact[Any]] = {
        REPOSITORIES: Fact.ok(tuple(_repository(n, p, labels[n]) for n, p in projects.items()), source, at),
        ANONYMOUS_ACCESS: Fact.managed(
            "Harbor serves only public projects anonymously (judged per project)", source="declared", at=at
        ),
        TAG_IMMUTABILITY: Fact.ok(
            TagImmutabilityFacts({n: _immutability(rules[n]) for n in projects}), f"declared {IMMUTABLE_RULE}", at
        ),
        SCANNING: Fact.ok(_scanning(projects), source, at),
        CREDENTIALS: Fact.ok(tuple(_robot(r, at) for r in robots), f"declared {ROBOT}", at),
    }
    for name in _OTHER_FACTS:
        facts[name] = Fact.not_observable(_NOT_DECLARED, source="declared", at=at)
    environment = _environment(resources)
    target = "pulumi:harbor"
    urns: dict[str, DeclaredResource] = {**projects, **{_robot_id(r): r for r in robots}}
    context = RuleContext(
        environment=environment or "unknown", frameworks=frameworks, target_name=target, target_kind=KIND, now=at
    )
    return DeclaredHarbor(
        facts=TargetFacts(target=target, kind=KIND, facts=facts, started_at=at, finished_at=at),
        context=context,
        urns=urns,
        labels=labels,
        environment=environment,
    )


def _name(resource: DeclaredResource) -> str:
    name = resource.props.get("name")
    return name if isinstance(name, str) and name and not is_unknown(name) else resource.name


def _siblings(
    project: DeclaredResource, resources: Sequence[DeclaredResource], type_token: str
) -> list[DeclaredResource]:
    """`type_token` resources of this project: the same parent component, or its id as `projectId`/`scope`."""
    project_id = project.props.get("id")
    return [
        r for r in resources
        if r.type == type_token
        and ((project.parent_urn and r.parent_urn == project.parent_urn)
             or (project_id and r.props.get("projectId") == project_id))
    ]


def _labels_of(project: DeclaredResource, resources: Sequence[DeclaredResource]) -> frozenset[str]:
    return frozenset(str(r.props.get("name")) for r in _siblings(project, resources, LABEL))


def _rule_of(project: DeclaredResource, resources: Sequence[DeclaredResource]) -> DeclaredResource | None:
    found = _siblings(project, resources, IMMUTABLE_RULE)
    return found[0] if found else None


def _repository(name: str, project: DeclaredResource, labels: frozenset[str]) -> RepositoryFacts:
    return RepositoryFacts(
        name=name,
        anonymous_pull=project.props.get("public") is True,
        declared_public="regguard-opt-out-public" in labels,
        source=project.urn,
    )


def _immutability(rule: DeclaredResource | None) -> ImmutabilitySetting:
    """The declared rule read the way the live audit reads Harbor's answer:
    the same doublestar matching (`audits.collectors.harbor_facts`)."""
    if rule is None or rule.props.get("disabled") is True:
        return ImmutabilitySetting(immutable=False, detail="no immutable tag rule")
    return immutability([_as_tag_rule(rule.props)], "*", ())


def _as_tag_rule(props: Mapping[str, Any]) -> TagRule:
    """pulumiverse-harbor's ImmutableTagRule inputs as Harbor's API shape."""
    tags = [Selector(kind="doublestar", decoration="matches", pattern=str(props.get("tagMatching") or "**"))]
    if props.get("tagExcluding"):
        tags.append(Selector(kind="doublestar", decoration="excludes", pattern=str(props["tagExcluding"])))
    repos = [Selector(kind="doublestar", decoration="repoMatches", pattern=str(props.get("repoMatching") or "**"))]
    if props.get("repoExcluding"):
        repos.append(Selector(kind="doublestar", decoration="repoExcludes", pattern=str(props["repoExcluding"])))
    return TagRule(tag_selectors=tags, scope_selectors={"repository": repos})


def _scanning(projects: Mapping[str, DeclaredResource]) -> ScanningFacts:
    # The provider's default for vulnerabilityScanning is true.
    off = tuple(sorted(n for n, p in projects.items() if p.props.get("vulnerabilityScanning") is False))
    return ScanningFacts(
        enabled=True, mode="scan_on_push", uncovered_repositories=off,
        detail="Harbor scan on push per project" + (f"; off in {', '.join(off)}" if off else ""),
    )


def _robot_id(robot: DeclaredResource) -> str:
    return f"robot:{_name(robot)}"


def _robot(robot: DeclaredResource, at: datetime) -> CredentialFacts:
    duration = robot.props.get("duration")
    days = int(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else -1
    actions = {
        a.get("action") for p in robot.props.get("permissions") or [] if isinstance(p, Mapping)
        for a in p.get("accesses") or [] if isinstance(a, Mapping)
    }
    return CredentialFacts(
        id=_robot_id(robot), kind="robot", created_at=at,
        expires_at=at + timedelta(days=days) if days > 0 else None,
        can_push="push" in actions, detail=f"duration {days} days" if days > 0 else "duration -1 (never expires)",
    )


def _environment(resources: Sequence[DeclaredResource]) -> str:
    """Harbor resources take no tags: the stack's `regguard:environment` tags (prod wins)."""
    envs = {r.tags[ENVIRONMENT_TAG] for r in resources if ENVIRONMENT_TAG in r.tags}
    if any(is_production_environment(e) for e in envs):
        return "prod"
    return envs.pop() if len(envs) == 1 else ""
