"""RG-TAG-*: what a production tag or reference names must not change under
it: no `latest`, immutable release tags, versioned names, digest pins."""

from __future__ import annotations

import re
from collections.abc import Iterator

from audits.model import (
    REPOSITORIES,
    TAG_IMMUTABILITY,
    ImmutabilitySetting,
    RepositoryFacts,
    Severity,
    TagImmutabilityFacts,
    Verdict,
)
from audits.rules.common import (
    IMAGE_REFS_KIND,
    REGISTRY_KINDS,
    evidence,
    filters_covering,
    image_tags,
    is_digest_tag,
    is_release_tag,
    is_semver_tag,
    judge_repositories,
    prod_reference_scope,
    reference_evidence,
    reference_resource,
    registry_resource,
)
from audits.rules.registry import (
    FactView,
    Remediation,
    RuleContext,
    RuleMeta,
    errored,
    failed,
    not_applicable,
    passed,
    rule,
)
from audits.vocabulary import SAMPLE_RELEASE_TAGS, matches_release_tag

LATEST = "latest"


@rule(
    RuleMeta(
        id="RG-TAG-001",
        title="No `latest` in production",
        rationale=(
            "`latest` is whatever was pushed last: two nodes pulling it minutes apart can run "
            "different code, a rollback cannot name what ran before, and an audit cannot say "
            "which build is in production. Production repositories should not carry it and "
            "production manifests must not reference it, explicitly or by omitting the tag."
        ),
        seed_section="Tagging",
        severity=Severity.HIGH,
        kinds=REGISTRY_KINDS | {IMAGE_REFS_KIND},
        soc2=("CC8.1",),
        nist_800_53=("CM-2", "CM-3"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "delete the tag with `regctl tag delete <registry>/<repo>:latest` (needs "
                    "`storage.delete.enabled: true`) and push only versioned tags from CI"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "`aws ecr batch-delete-image --repository-name <repo> --image-ids imageTag=latest`, and push "
                    "only versioned tags from CI"
                ),
            ),
            "image-refs": Remediation(
                cli=(
                    "reference a version, pinned by digest: `image: <registry>/<repo>:1.4.2@sha256:<digest>` "
                    "(`crane digest <registry>/<repo>:1.4.2` resolves it)"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "deploy by a versioned tag and delete `latest` from production projects (`DELETE "
                    "https://<harbor>/api/v2.0/projects/<project>/repositories/<repo>/artifacts/<digest>/tags/latest`)"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "`gcloud artifacts docker tags delete "
                    "<location>-docker.pkg.dev/<project>/<repository>/<image>:latest`, and push only versioned tags "
                    "from CI"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "`az acr repository untag --name <registry> --image <repo>:latest`, and push only versioned tags "
                    "from CI"
                ),
            ),
            "dockerhub": Remediation(
                cli=(
                    "push version tags only and delete `latest` (Docker Hub: Repository → Tags → Delete); deploy "
                    "by version or digest"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "delete the version tagged `latest`: `gh api -X DELETE "
                    "/orgs/<org>/packages/container/<package>/versions/<version-id>`, and deploy by version tag or "
                    "digest"
                ),
                component="GhcrPublishWorkflowArgs(latest_on_default_branch=False)",
            ),
        },
        prod_only=True,
    )
)
def no_latest_in_prod(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """Registry kinds: the prod repository has no `latest` tag. image-refs: the
    prod reference names neither `:latest` nor omits both tag and digest."""
    if facts.kind == IMAGE_REFS_KIND:
        yield from _latest_references(ctx, facts)
        return

    def judge(repo: RepositoryFacts) -> Iterator[Verdict]:
        names = [t.name for t in repo.tags]
        ev = evidence(facts, REPOSITORIES, repository=repo.name, tags=len(names))
        if LATEST in names:
            yield failed(repo.name, "production repository carries a `latest` tag", **ev)
        else:
            yield passed(repo.name, "no `latest` tag", **ev)

    yield from judge_repositories(ctx, facts, judge, prod_only=True)


def _latest_references(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    refs, preface = prod_reference_scope(ctx, facts)
    yield from preface
    for ref in refs:
        ev = reference_evidence(facts, ref)
        if ref.tag == LATEST and ref.digest is None:
            yield failed(reference_resource(ref), "production reference uses `:latest`", **ev)
        elif ref.tag is None and ref.digest is None:
            yield failed(reference_resource(ref), "untagged reference resolves to `latest`", **ev)
        else:
            yield passed(reference_resource(ref), "reference names a fixed tag or digest", **ev)


@rule(
    RuleMeta(
        id="RG-TAG-002",
        title="Tags immutable",
        rationale=(
            "If a release tag can be overwritten, `app:1.4.2` in a manifest proves nothing: "
            "anyone with push rights (or a stolen CI token) can replace what it points to and "
            "every later pull runs the new content. Release tags must be immutable; exclusions "
            "are fine for scratch tags (`dev-*`, `sha-*`) but must never cover release tags."
        ),
        seed_section="Tagging",
        severity=Severity.HIGH,
        kinds=REGISTRY_KINDS,
        soc2=("CC8.1",),
        nist_800_53=("CM-2", "CM-3", "SI-7"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "Distribution cannot make tags immutable: restrict pushes to release tags in the token service "
                    "or a proxy in front of it, or keep release repositories on a kind with immutable tags "
                    "(`regguard recommend --use-case ...`)"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "`aws ecr put-image-tag-mutability --repository-name <repo> --image-tag-mutability "
                    "IMMUTABLE_WITH_EXCLUSION --image-tag-mutability-exclusion-filters "
                    "filterType=WILDCARD,filter=dev-*` (or `--image-tag-mutability IMMUTABLE`)"
                ),
                component=(
                    "EcrRepositoryArgs(baseline=Baseline(immutable_tags=True, immutable_tag_exclusions=('dev-*',)))"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "add an immutable tag rule covering release tags: `POST "
                    "https://<harbor>/api/v2.0/projects/<project>/immutabletagrules` with the tag selector "
                    "`{v*,*.*,release-*}` and the repository selector `**`"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "`gcloud artifacts repositories update <repository> --location <location> --immutable-tags`"
                ),
                component="ArtifactRegistryRepositoryArgs(baseline=Baseline(immutable_tags=True))",
            ),
            "acr": Remediation(
                cli=(
                    "lock each release tag after the push: `az acr repository update --name <registry> --image "
                    "<repo>:<tag> --write-enabled false --delete-enabled false`"
                ),
            ),
            "dockerhub": Remediation(
                cli=(
                    "`curl -X PATCH https://hub.docker.com/v2/namespaces/<ns>/repositories/<repo>/immutabletags "
                    "-H 'Authorization: Bearer <jwt from POST /v2/auth/token>' -H 'Content-Type: "
                    'application/json\' -d \'{"immutable_tags": true, "immutable_tags_rules": ["v.*", "[0-9].*", '
                    '"release-.*"]}\'` (an empty rule list makes every tag immutable; check rules first with '
                    "`POST .../immutabletags/verify`)"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "GHCR cannot make tags immutable: deploy by digest (`@sha256:`) and grant `packages: write` only "
                    "to the publish workflow"
                ),
            ),
        },
    )
)
def tags_immutable(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """Immutable passes unless an exclusion filter covers a release tag: any
    semver tag (exact check), the sample release tags, or the repository's
    own release tags. Mutable (incl. MUTABLE_WITH_EXCLUSION) fails."""
    settings: TagImmutabilityFacts = facts.require(TAG_IMMUTABILITY)
    repos: tuple[RepositoryFacts, ...] = facts.require(REPOSITORIES)
    by_name = {r.name: r for r in repos}
    names = sorted(set(by_name) | set(settings.by_repository))
    if not names:
        yield not_applicable(registry_resource(ctx, facts), "no repositories", **facts.source(REPOSITORIES))
    for name in names:
        repo = by_name.get(name)
        if repo is not None and repo.error:
            yield errored(name, f"repository could not be read: {repo.error}", **facts.source(REPOSITORIES))
            continue
        setting = settings.by_repository.get(name)
        if setting is None:
            yield errored(name, "no tag immutability setting observed", **facts.source(TAG_IMMUTABILITY))
            continue
        release_tags = [t.name for t in repo.tags if is_release_tag(t.name)] if repo else []
        yield _judge_immutability(facts, name, setting, release_tags)


def _judge_immutability(facts: FactView, name: str, setting: ImmutabilitySetting, release_tags: list[str]) -> Verdict:
    ev = evidence(
        facts,
        TAG_IMMUTABILITY,
        repository=name,
        immutable=setting.immutable,
        exclusion_filters=list(setting.exclusion_filters),
        setting=setting.detail,
    )
    if not setting.immutable:
        return failed(name, f"tags are mutable ({setting.detail or 'MUTABLE'})", **ev)
    if setting.immutable_patterns:
        return _judge_immutable_patterns(facts, name, setting, release_tags)
    covered = filters_covering(setting.exclusion_filters, [*SAMPLE_RELEASE_TAGS, *release_tags])
    for flt in setting.exclusion_filters:
        if flt not in covered and matches_release_tag(flt):
            covered[flt] = ["<any x.y.z release tag>"]
    if covered:
        shown = "; ".join(f"{f!r} matches {', '.join(tags[:3])}" for f, tags in covered.items())
        return failed(name, f"immutability exclusions leave release tags mutable: {shown}", covered=covered, **ev)
    if setting.exclusion_filters:
        return passed(name, "immutable; exclusions cover no release tag", **ev)
    return passed(name, "tags immutable", **ev)


def _judge_immutable_patterns(
    facts: FactView, name: str, setting: ImmutabilitySetting, release_tags: list[str]
) -> Verdict:
    """Only tags matching a pattern are immutable (Docker Hub's rules): every
    sample release tag and the repository's own release tags must match one."""
    ev = evidence(
        facts,
        TAG_IMMUTABILITY,
        repository=name,
        immutable=True,
        immutable_patterns=list(setting.immutable_patterns),
        setting=setting.detail,
    )
    patterns = [compiled for p in setting.immutable_patterns if (compiled := _pattern(p)) is not None]
    mutable = [t for t in (*SAMPLE_RELEASE_TAGS, *release_tags) if not any(p.fullmatch(t) for p in patterns)]
    if mutable:
        shown = ", ".join(dict.fromkeys(mutable[:5]))
        return failed(name, f"immutability rules leave release tags mutable: {shown}", mutable=mutable[:20], **ev)
    return passed(name, "release tags immutable (every release tag matches an immutability rule)", **ev)


# Python's `re` backtracks: a rule with a quantified group or a backreference, such
# as `(a+)+$`, can take exponential time on a long tag, and the rule came from the
# registry. Such rules (and very long ones) are not evaluated: they protect nothing here.
_UNSAFE_PATTERN = re.compile(r"\)[*+?{]|\\[1-9]|\(\?P=")
_MAX_QUANTIFIERS = 6


def _pattern(text: str) -> re.Pattern[str] | None:
    """A registry's rule as a regular expression; one that does not compile, or
    that this audit cannot evaluate in bounded time, protects nothing."""
    if _UNSAFE_PATTERN.search(text) or sum(text.count(q) for q in "*+{") > _MAX_QUANTIFIERS or len(text) > 256:
        return None
    try:
        return re.compile(text)
    except (re.error, RecursionError, OverflowError):
        return None


@rule(
    RuleMeta(
        id="RG-TAG-003",
        title="Versioned tags",
        rationale=(
            "Tags such as `stable`, `prod` or `fix` say nothing about which build they hold, "
            "so rollbacks, change records and vulnerability reports cannot refer to a version. "
            "Production tags should be semantic versions (`v1.2.0` / `1.2.0`) or content digests."
        ),
        seed_section="Tagging",
        severity=Severity.LOW,
        kinds=REGISTRY_KINDS,
        soc2=("CC8.1",),
        nist_800_53=("CM-2",),
        remediation={
            "distribution": Remediation(
                cli=(
                    "copy the image to a version tag (`skopeo copy docker://<registry>/<repo>:stable "
                    "docker://<registry>/<repo>:1.4.2`), then delete the unversioned tag (`regctl tag delete "
                    "<registry>/<repo>:stable`)"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "tag the same manifest with a version (`aws ecr batch-get-image --repository-name <repo> "
                    "--image-ids imageTag=stable --query 'images[0].imageManifest' --output text > m.json && aws "
                    "ecr put-image --repository-name <repo> --image-tag 1.4.2 --image-manifest file://m.json`), "
                    "then delete the old tag (`aws ecr batch-delete-image --repository-name <repo> --image-ids "
                    "imageTag=stable`)"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "push releases to production projects with semantic-version tags (`v1.2.3`) and keep other tags "
                    "out of them"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "tag the same manifest with a version (`gcloud artifacts docker tags add "
                    "<location>-docker.pkg.dev/<project>/<repository>/<image>:stable "
                    "<location>-docker.pkg.dev/<project>/<repository>/<image>:1.4.2`), then delete the unversioned "
                    "tag (`gcloud artifacts docker tags delete "
                    "<location>-docker.pkg.dev/<project>/<repository>/<image>:stable`)"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "copy the image to a version tag (`az acr import --name <registry> --source "
                    "<registry>.azurecr.io/<repo>:stable --image <repo>:1.4.2`), then `az acr repository untag --name"
                    " <registry> --image <repo>:stable`"
                ),
            ),
            "dockerhub": Remediation(
                cli=(
                    "push the same image under a version tag (`docker buildx imagetools create -t "
                    "docker.io/<org>/<repo>:1.4.2 docker.io/<org>/<repo>:stable`), then delete the unversioned "
                    "tag in Docker Hub"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "push a semantic-version tag for the same digest: tag the commit `v1.2.3` so the publish "
                    "workflow's `type=semver` rule tags the image"
                ),
            ),
        },
        prod_only=True,
    )
)
def versioned_tags(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """Judged on tag names only (the name is observed even when a tag's
    manifest could not be read); signature artifacts are skipped."""

    def judge(repo: RepositoryFacts) -> Iterator[Verdict]:
        names = [t.name for t in image_tags(repo)]
        bad = [n for n in names if not (is_semver_tag(n) or is_digest_tag(n))]
        ev = evidence(facts, REPOSITORIES, repository=repo.name, tags=len(names), unversioned=bad)
        if not names:
            yield not_applicable(repo.name, "repository has no image tags", **ev)
        elif bad:
            yield failed(repo.name, f"unversioned tags: {', '.join(bad[:10])}", **ev)
        else:
            yield passed(repo.name, "all tags are versions or digests", **ev)

    yield from judge_repositories(ctx, facts, judge, prod_only=True)


@rule(
    RuleMeta(
        id="RG-TAG-004",
        title="References pinned",
        rationale=(
            "A tag is a pointer the registry resolves at pull time; a digest is the content "
            "itself. Production references pinned with `@sha256:` run exactly the image that "
            "was tested and signed, whatever happens to the tag later."
        ),
        seed_section="Tagging",
        severity=Severity.MEDIUM,
        kinds=frozenset({IMAGE_REFS_KIND}),
        soc2=("CC8.1",),
        # NIST mapping corrected from RULES.md (SI-7, CM-14) to (SI-7, CM-2): CM-14 "Signed
        # Components" is about verifying signatures (RG-SIGN-*); a digest pin fixes the
        # baseline artifact and lets the runtime check its integrity.
        nist_800_53=("SI-7", "CM-2"),
        remediation={
            IMAGE_REFS_KIND: Remediation(
                cli=(
                    "resolve and pin: `crane digest <image>:<tag>` (or `docker buildx imagetools inspect`), then "
                    "write `<image>:<tag>@sha256:<digest>`; `regguard lint-refs` checks it in CI"
                ),
            ),
        },
        prod_only=True,
    )
)
def references_pinned(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    refs, preface = prod_reference_scope(ctx, facts)
    yield from preface
    for ref in refs:
        ev = reference_evidence(facts, ref)
        if ref.digest:
            yield passed(reference_resource(ref), "pinned by digest", **ev)
        else:
            yield failed(reference_resource(ref), "reference is not pinned by digest", **ev)
