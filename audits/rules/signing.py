"""RG-SIGN-*: production images carry a signature, the signature verifies
against a key we trust, and the registry itself enforces signing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from audits.model import (
    CONTENT_TRUST,
    REPOSITORIES,
    ContentTrustFacts,
    RepositoryFacts,
    Severity,
    TagFacts,
    Verdict,
)
from audits.rules.common import (
    REGISTRY_KINDS,
    evidence,
    judge_repositories,
    judge_tags,
    registry_resource,
    tag_resource,
)
from audits.rules.registry import (
    FactView,
    Remediation,
    RuleContext,
    RuleMeta,
    errored,
    failed,
    passed,
    rule,
)

MODERN_MECHANISMS = frozenset({"cosign", "notation"})


def _tag_evidence(facts: FactView, repo: RepositoryFacts, tag: TagFacts) -> dict[str, Any]:
    sigs = tag.signatures or ()
    return evidence(
        facts,
        REPOSITORIES,
        repository=repo.name,
        tag=tag.name,
        digest=tag.digest,
        signatures=[
            {
                "format": s.format,
                "discovered_via": s.discovered_via,
                "reference": s.reference,
                "verified": s.verified,
                "verified_by": s.verified_by,
                "verify_error": s.verify_error,
            }
            for s in sigs
        ],
    )


def _immutable_note(repo: RepositoryFacts) -> str:
    """Where signatures are tags (no referrers API) and tags are immutable, the
    first `.sig` tag is final: re-signing or a second signer is refused."""
    if not repo.signature_tags_immutable:
        return ""
    return (
        "; note: tags are immutable here, so cosign's `sha256-<hex>.sig` tag cannot be rewritten once pushed "
        "(re-signing or adding a second signature fails): sign once, with every key, right after the push"
    )


@rule(
    RuleMeta(
        id="RG-SIGN-001",
        title="Production images signed",
        rationale=(
            "A signature ties an image digest to the pipeline that built it. Without one, a "
            "pushed image from a compromised credential looks exactly like a release. Every "
            "production tag should carry a cosign or Notation signature, found through the OCI "
            "referrers API or cosign's `sha256-<hex>.sig` tag scheme."
        ),
        seed_section="Signing",
        severity=Severity.HIGH,
        kinds=REGISTRY_KINDS,
        soc2=("CC8.1",),
        nist_800_53=("SI-7", "SI-7(15)", "CM-14"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "sign in CI right after the push: `cosign sign --key <kms-or-file key> "
                    "<registry>/<repo>@sha256:<digest>` (or `notation sign <registry>/<repo>@sha256:<digest>`)"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "sign in CI right after the push: `cosign sign --key <kms-or-file key> "
                    "<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:<digest>` (or `notation sign "
                    "<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:<digest>`)"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "sign each release with cosign (`cosign sign --key <key> <harbor>/<project>/<repo>@<digest>`); "
                    "Harbor lists the signature as the artifact's accessory"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "sign in CI right after the push, once, with every key (immutable tags refuse a rewritten `.sig` "
                    "tag): `cosign sign --key <kms-or-file key> "
                    "<location>-docker.pkg.dev/<project>/<repository>/<image>@sha256:<digest>`"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "sign in CI right after the push: `notation sign <registry>.azurecr.io/<repo>@sha256:<digest>` "
                    "(Notation with Azure Key Vault) or `cosign sign --key <key> "
                    "<registry>.azurecr.io/<repo>@sha256:<digest>`"
                ),
            ),
            "dockerhub": Remediation(
                cli=(
                    "sign each pushed digest in the publish job: `cosign sign --key <key> "
                    "docker.io/<org>/<repo>@<digest>` (after `docker login --password-stdin`)"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "sign in the publish workflow right after the push: `cosign sign --yes "
                    "ghcr.io/<org>/<package>@<digest>` (keyless through the job's OIDC token)"
                ),
                component="GhcrPublishWorkflowArgs(signing='keyless')",
            ),
        },
        prod_only=True,
    )
)
def prod_images_signed(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    def judge(repo: RepositoryFacts) -> Iterator[Verdict]:
        def one(tag: TagFacts) -> Verdict:
            ev = _tag_evidence(facts, repo, tag)
            resource = tag_resource(repo, tag)
            if tag.signatures is None:
                return errored(resource, "signatures were not looked up", **ev)
            if not tag.signatures:
                return failed(resource, "no cosign or Notation signature found" + _immutable_note(repo), **ev)
            formats = sorted({s.format for s in tag.signatures})
            return passed(resource, f"signed ({', '.join(formats)})" + _immutable_note(repo), **ev)

        yield from judge_tags(repo, facts, one)

    yield from judge_repositories(ctx, facts, judge, prod_only=True)


@rule(
    RuleMeta(
        id="RG-SIGN-002",
        title="Signatures verify",
        rationale=(
            "Anybody can attach a signature; only one made by a key you trust means anything. "
            "A production tag's signature must verify against a configured trusted key, "
            "otherwise the signature check is decoration."
        ),
        seed_section="Signing",
        severity=Severity.HIGH,
        kinds=REGISTRY_KINDS,
        soc2=("CC8.1",),
        nist_800_53=("SI-7(15)",),
        remediation={
            "distribution": Remediation(
                cli=(
                    "add the release public key to `trusted_keys` in regguard.yaml, check with `cosign verify --key "
                    "release.pub <registry>/<repo>@sha256:<digest>`, and re-sign images signed with an unknown key"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "add the release public key to `trusted_keys` in regguard.yaml, check with `cosign verify --key "
                    "release.pub <account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:<digest>`, and re-sign "
                    "images signed with an unknown key"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "re-sign with a trusted key (`cosign sign --key <trusted key> "
                    "<harbor>/<project>/<repo>@<digest>`), delete signatures made with other keys, and list the "
                    "public key in `trusted_keys`"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "add the release public key to `trusted_keys` in regguard.yaml, check with `cosign verify --key "
                    "release.pub <location>-docker.pkg.dev/<project>/<repository>/<image>@sha256:<digest>`, and "
                    "re-sign with the release key"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "add the release public key to `trusted_keys` in regguard.yaml, check with `cosign verify --key "
                    "release.pub <registry>.azurecr.io/<repo>@sha256:<digest>`, and re-sign images signed with an "
                    "unknown key"
                ),
            ),
            "dockerhub": Remediation(
                cli=(
                    "sign with the release key (`cosign sign --key release.key docker.io/<org>/<repo>@<digest>`) "
                    "and list its public key in `trusted_keys`"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "add the release public key to `trusted_keys` in regguard.yaml and check with `cosign verify "
                    "--key <key.pub> ghcr.io/<org>/<package>@<digest>`; re-sign what another key signed"
                ),
                component="GhcrPublishWorkflowArgs(signing='key')",
            ),
        },
        prod_only=True,
    )
)
def signatures_verify(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """With no trusted key configured each production repository fails once:
    nothing can be verified, and that is a configuration gap, not a pass."""

    def judge(repo: RepositoryFacts) -> Iterator[Verdict]:
        if not ctx.trusted_keys:
            yield failed(
                repo.name,
                "no trusted key configured: signatures cannot be verified",
                repository=repo.name,
                trusted_keys=0,
                **facts.source(REPOSITORIES),
            )
            return

        def one(tag: TagFacts) -> Verdict:
            return _judge_verification(facts, repo, tag)

        yield from judge_tags(repo, facts, one)

    yield from judge_repositories(ctx, facts, judge, prod_only=True)


def _judge_verification(facts: FactView, repo: RepositoryFacts, tag: TagFacts) -> Verdict:
    ev = _tag_evidence(facts, repo, tag)
    resource = tag_resource(repo, tag)
    if tag.signatures is None:
        return errored(resource, "signatures were not looked up", **ev)
    if not tag.signatures:
        return failed(resource, "unsigned: nothing to verify", **ev)
    good = [s for s in tag.signatures if s.verified is True]
    if good:
        return passed(resource, f"signature verifies with {good[0].verified_by}", **ev)
    bad = [s for s in tag.signatures if s.verified is False]
    if bad:
        reasons = "; ".join(s.verify_error or "did not verify" for s in bad)
        return failed(resource, f"no signature verifies against a trusted key: {reasons}", **ev)
    why = "; ".join(s.verify_error for s in tag.signatures if s.verify_error)
    return errored(resource, f"signature could not be verified: {why or 'verification was not attempted'}", **ev)


@rule(
    RuleMeta(
        id="RG-SIGN-003",
        title="Registry enforces signing",
        rationale=(
            "Signing only protects production if unsigned content is refused. Harbor can "
            "enforce cosign/Notation signatures per project; Docker Content Trust (Notary v1) "
            "is deprecated and ACR's content trust is retired, so registries relying on them "
            "should move to Notation or cosign with admission-time verification."
        ),
        seed_section="Signing",
        severity=Severity.MEDIUM,
        kinds=REGISTRY_KINDS,
        soc2=("CC8.1",),
        nist_800_53=("SI-7", "CM-14"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "Distribution accepts any push: enforce signatures where images run (Kyverno `verifyImages` or "
                    "Sigstore policy-controller with your cosign key) and sign in CI"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "ECR accepts unsigned pushes: sign in CI (cosign, or Notation with AWS Signer) and enforce at "
                    "admission (Kyverno `verifyImages`, Ratify, or Sigstore policy-controller)"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "enforce cosign signatures on the project: `PUT https://<harbor>/api/v2.0/projects/<project>` "
                    "with `{\"metadata\": {\"enable_content_trust_cosign\": \"true\"}}`"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "Artifact Registry accepts unsigned pushes: sign in CI (cosign) and enforce at deploy with Binary "
                    "Authorization (`gcloud container binauthz policy import policy.yaml`) or an admission policy"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "ACR accepts unsigned pushes and content trust is retired: sign with Notation or cosign and "
                    "enforce at admission (Ratify with Azure Policy on AKS, Kyverno `verifyImages`)"
                ),
            ),
            "dockerhub": Remediation(
                cli=(
                    "Docker Hub accepts unsigned pushes (Docker Content Trust is retired): sign in CI with "
                    "cosign and enforce at admission (Kyverno `verifyImages`, Sigstore policy-controller)"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "GHCR accepts unsigned pushes: sign in the publish workflow and enforce signatures at admission "
                    "(e.g. a Kubernetes policy verifying cosign)"
                ),
                component="GhcrPublishWorkflowArgs(signing='keyless')",
            ),
        },
    )
)
def registry_enforces_signing(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    trust: ContentTrustFacts = facts.require(CONTENT_TRUST)
    resource = registry_resource(ctx, facts)
    ev = evidence(facts, CONTENT_TRUST, enforced=trust.enforced, mechanism=trust.mechanism, detail=trust.detail)
    if trust.mechanism == "dct":
        yield failed(
            resource,
            "relies on Docker Content Trust / Notary v1, which is deprecated (ACR content trust "
            "is retired): move to cosign or Notation",
            **ev,
        )
    elif not trust.enforced:
        yield failed(resource, "unsigned images are accepted", **ev)
    elif trust.mechanism not in MODERN_MECHANISMS:
        yield failed(resource, f"enforcement mechanism {trust.mechanism!r} is not cosign or Notation", **ev)
    else:
        yield passed(resource, f"{trust.mechanism} signatures enforced", **ev)
