"""Small helpers the rule modules share, so each rule body reads as the
judgement it makes: which resources are in scope, what counts as a release
tag, how evidence is attached.

Nothing here does I/O or judges on its own; every helper is pure.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from audits.kinds import REGISTRIES
from audits.model import (
    IMAGE_REFERENCES,
    REPOSITORIES,
    ImageReference,
    ImageReferencesFacts,
    RepositoryFacts,
    TagFacts,
    Verdict,
)
from audits.rules.registry import (
    FactView,
    RuleContext,
    errored,
    failed,
    not_applicable,
    passed,
)
from audits.vocabulary import is_artifact_tag

# Kinds judged on image references / the client's docker config instead of a registry.
IMAGE_REFS_KIND = "image-refs"
DOCKER_CONFIG_KIND = "docker-config"
# The one registry kind whose organizations can restrict which public images members pull (RG-SRC-001).
DOCKERHUB_KIND = "dockerhub"
# Rule scope: every kind the kind table marks as a registry (today's and later ones).
REGISTRY_KINDS = frozenset({REGISTRIES})

# `v1.2.3`, `1.2.3`, `1.2`, with an optional pre-release/build suffix (`-rc.1`, `+build.5`).
_SEMVER_RE = re.compile(r"^v?\d+\.\d+(\.\d+)?([-+][0-9A-Za-z][0-9A-Za-z.+-]*)?$")
_DIGEST_TAG_RE = re.compile(r"^(sha256[-:])?[0-9a-f]{40,64}$")

def evidence(facts: FactView, *names: str, **values: Any) -> dict[str, Any]:
    """Observed values plus where/when each named fact came from.

    With one fact name the provenance keys are flat (`source`, `observed_at`);
    with several they are nested under each fact name.
    """
    out: dict[str, Any] = dict(values)
    if len(names) == 1:
        out.update(facts.source(names[0]))
    else:
        for name in names:
            out[name] = facts.source(name)
    return out


def registry_resource(ctx: RuleContext, facts: FactView) -> str:
    """The resource name of a registry-wide verdict: the target's name."""
    return ctx.target_name or facts.target.target


def is_semver_tag(tag: str) -> bool:
    return bool(_SEMVER_RE.match(tag))


def is_digest_tag(tag: str) -> bool:
    """A tag that names content (`sha256-<hex>` or a bare commit/digest hex)."""
    return bool(_DIGEST_TAG_RE.match(tag))


def is_release_tag(tag: str) -> bool:
    """Tags people deploy as releases: semver-ish or `release-*`."""
    return is_semver_tag(tag) or tag.startswith("release-")


def is_signature_artifact(tag: str) -> bool:
    """cosign signature/attestation/SBOM tags and referrers indexes are artifacts, not images."""
    return is_artifact_tag(tag)


def image_tags(repo: RepositoryFacts) -> list[TagFacts]:
    """The repository's image tags, without signature artifacts."""
    return [t for t in repo.tags if not is_signature_artifact(t.name)]


def filters_covering(filters: Iterable[str], tags: Iterable[str]) -> dict[str, list[str]]:
    """filter -> the tags among `tags` it matches (wildcard `*`, case-sensitive
    like ECR's exclusion filters); filters matching nothing are left out."""
    tag_list = list(tags)
    covered: dict[str, list[str]] = {}
    for flt in filters:
        hits = [t for t in tag_list if fnmatch.fnmatchcase(t, flt)]
        if hits:
            covered[flt] = hits
    return covered


def target_is_prod(ctx: RuleContext, facts: FactView) -> bool:
    """A registry-wide question is a production one when the environment is
    prod or any of the target's repositories matches a production pattern.
    The repository list is only required when patterns make it matter."""
    if ctx.is_prod_environment:
        return True
    if not ctx.production_patterns:
        return False
    repos: tuple[RepositoryFacts, ...] = facts.require(REPOSITORIES)
    return ctx.any_prod(r.name for r in repos)


RepoJudge = Callable[[RepositoryFacts], Iterable[Verdict]]


def judge_repositories(
    ctx: RuleContext,
    facts: FactView,
    judge: RepoJudge,
    *,
    prod_only: bool,
) -> Iterator[Verdict]:
    """Apply `judge` to every repository in scope.

    A repository whose collection failed yields `error` (never a pass); with
    `prod_only` non-production repositories are out of scope; when nothing is
    in scope, one `not_applicable` says why.
    """
    repos: tuple[RepositoryFacts, ...] = facts.require(REPOSITORIES)
    source = facts.source(REPOSITORIES)
    in_scope = [r for r in repos if not prod_only or ctx.is_prod(r.name)]
    if not in_scope:
        why = "no production repositories" if prod_only and repos else "no repositories"
        yield not_applicable(
            registry_resource(ctx, facts),
            f"{why} in {ctx.environment}",
            repositories=len(repos),
            environment=ctx.environment,
            **source,
        )
        return
    for repo in in_scope:
        if repo.error:
            yield errored(
                repo.name,
                f"repository could not be read: {repo.error}",
                repository=repo.name,
                **source,
            )
        else:
            yield from judge(repo)


def judge_tags(
    repo: RepositoryFacts,
    facts: FactView,
    judge: Callable[[TagFacts], Verdict],
) -> Iterator[Verdict]:
    """Apply `judge` to every image tag of `repo` (signature artifacts skipped);
    a tag whose collection failed yields `error`; an empty repository yields
    one `not_applicable`."""
    tags = image_tags(repo)
    if not tags:
        yield not_applicable(repo.name, "repository has no image tags", **facts.source(REPOSITORIES))
        return
    for tag in tags:
        if tag.error:
            yield errored(
                tag_resource(repo, tag),
                f"tag could not be read: {tag.error}",
                **facts.source(REPOSITORIES),
            )
        else:
            yield judge(tag)


def tag_resource(repo: RepositoryFacts, tag: TagFacts) -> str:
    return f"{repo.name}:{tag.name}"


def reference_resource(ref: ImageReference) -> str:
    return f"{ref.file}:{ref.line} {ref.raw}"


def prod_references(ctx: RuleContext, facts: FactView) -> tuple[list[ImageReference], ImageReferencesFacts]:
    """References judged by production-only rules: all of them in a prod
    environment, else those whose repository matches a production pattern."""
    found: ImageReferencesFacts = facts.require(IMAGE_REFERENCES)
    return [r for r in found.references if r.error is None and ctx.is_prod(r.repository)], found


def reference_errors(facts: FactView, found: ImageReferencesFacts) -> list[Verdict]:
    """References that could not be parsed or resolved (`FROM ${BASE}` with no
    default) and files that could not be read cannot be judged: each is an
    `error`, never a guess at what it would resolve to."""
    verdicts = [
        errored(reference_resource(ref), f"cannot judge this reference: {ref.error}", **reference_evidence(facts, ref))
        for ref in found.references
        if ref.error is not None
    ]
    verdicts += [
        errored(entry.split(": ", 1)[0], f"file not scanned: {entry}", **facts.source(IMAGE_REFERENCES))
        for entry in found.unreadable
    ]
    return verdicts


def prod_reference_scope(ctx: RuleContext, facts: FactView) -> tuple[list[ImageReference], list[Verdict]]:
    """The production references a rule can judge, and the verdicts it must
    emit before judging them: an error per reference or file it cannot judge,
    or one not_applicable when nothing at all is in scope."""
    refs, found = prod_references(ctx, facts)
    preface = reference_errors(facts, found)
    if not refs and not preface:
        preface = [no_prod_references(ctx, facts, found)]
    return refs, preface


def no_prod_references(ctx: RuleContext, facts: FactView, found: ImageReferencesFacts) -> Verdict:
    return not_applicable(
        registry_resource(ctx, facts),
        f"no production image references in {ctx.environment}",
        references=len(found.references),
        files_scanned=found.files_scanned,
        **facts.source(IMAGE_REFERENCES),
    )


def reference_evidence(facts: FactView, ref: ImageReference) -> dict[str, Any]:
    return evidence(
        facts,
        IMAGE_REFERENCES,
        reference=ref.raw,
        file=ref.file,
        line=ref.line,
        registry=ref.registry,
        repository=ref.repository,
        tag=ref.tag,
        digest=ref.digest,
        context=ref.context,
    )


def registry_verdict(
    ctx: RuleContext,
    facts: FactView,
    fact_name: str,
    problem: str | None,
    ok_message: str,
    **values: Any,
) -> Verdict:
    """One registry-wide verdict: fail with `problem` when there is one, else
    pass with `ok_message`; evidence is `values` plus the fact's provenance."""
    resource = registry_resource(ctx, facts)
    ev = evidence(facts, fact_name, **values)
    if problem:
        return failed(resource, problem, **ev)
    return passed(resource, ok_message, **ev)
