"""RG-SIGN-001..003: signatures exist, verify, and are enforced."""

from __future__ import annotations

from audits.model import CONTENT_TRUST, REPOSITORIES, ContentTrustFacts, RepositoryFacts, SignatureFacts, Status
from tests.unit.test_rules_common import (
    DEV,
    PROD,
    SIG_TAG,
    assert_evidence,
    context,
    mapping_of,
    only,
    repo,
    run,
    statuses,
    tag,
    view,
)

COSIGN_OK = SignatureFacts("cosign", "referrers", "sha256:" + "1" * 64, verified=True, verified_by="keys/release.pub")
COSIGN_BAD = SignatureFacts("cosign", "tag", SIG_TAG, verified=False, verify_error="signature mismatch")
COSIGN_UNCHECKED = SignatureFacts("cosign", "tag", SIG_TAG)
KEYED = context("prod", trusted_keys=("keys/release.pub",))


def sign_view(*items: RepositoryFacts):
    return view(**{REPOSITORIES: tuple(items)})


# RG-SIGN-001 ----------------------------------------------------------------


def test_signed_tag_passes_unsigned_fails_signature_tags_skipped() -> None:
    facts = sign_view(
        repo("app", tag("1.0.0", signatures=(COSIGN_UNCHECKED,)), tag("1.1.0", signatures=()), tag(SIG_TAG))
    )
    verdicts = run("RG-SIGN-001", PROD, facts)
    assert mapping_of(verdicts) == {"app:1.0.0": Status.PASS, "app:1.1.0": Status.FAIL}
    assert_evidence(verdicts, "repository", "tag", "signatures", "source")


def test_signatures_not_looked_up_or_tag_error_is_error() -> None:
    facts = sign_view(repo("app", tag("1.0.0", signatures=None), tag("1.1.0", error="referrers API 500")))
    assert statuses(run("RG-SIGN-001", PROD, facts)) == [Status.ERROR, Status.ERROR]


def test_repository_error_is_error_for_signing() -> None:
    assert statuses(run("RG-SIGN-001", PROD, sign_view(repo("app", error="denied")))) == [Status.ERROR]


def test_signing_is_prod_only() -> None:
    facts = sign_view(repo("app", tag("1.0.0", signatures=())))
    assert statuses(run("RG-SIGN-001", DEV, facts)) == [Status.NOT_APPLICABLE]


# RG-SIGN-002 ----------------------------------------------------------------


def test_verified_signature_passes() -> None:
    facts = sign_view(repo("app", tag("1.0.0", signatures=(COSIGN_BAD, COSIGN_OK))))
    verdict = only(run("RG-SIGN-002", KEYED, facts))
    assert verdict.status is Status.PASS
    assert "keys/release.pub" in verdict.message


def test_signature_not_verifying_fails() -> None:
    verdict = only(run("RG-SIGN-002", KEYED, sign_view(repo("app", tag("1.0.0", signatures=(COSIGN_BAD,))))))
    assert verdict.status is Status.FAIL
    assert "signature mismatch" in verdict.message


def test_unsigned_fails_and_unattempted_verification_errors() -> None:
    facts = sign_view(repo("app", tag("1.0.0", signatures=()), tag("2.0.0", signatures=(COSIGN_UNCHECKED,))))
    assert mapping_of(run("RG-SIGN-002", KEYED, facts)) == {"app:1.0.0": Status.FAIL, "app:2.0.0": Status.ERROR}


def test_no_trusted_key_configured_fails() -> None:
    facts = sign_view(repo("app", tag("1.0.0", signatures=(COSIGN_OK,))))
    verdict = only(run("RG-SIGN-002", PROD, facts))
    assert verdict.status is Status.FAIL
    assert "no trusted key configured" in verdict.message


def test_verification_is_prod_only() -> None:
    facts = sign_view(repo("app", tag("1.0.0", signatures=())))
    assert statuses(run("RG-SIGN-002", context("dev", trusted_keys=("k.pub",)), facts)) == [Status.NOT_APPLICABLE]


# RG-SIGN-003 ----------------------------------------------------------------


def trust(enforced: bool, mechanism: str | None):
    return view("harbor", **{CONTENT_TRUST: ContentTrustFacts(enforced, mechanism)})


def test_cosign_or_notation_enforcement_passes() -> None:
    assert only(run("RG-SIGN-003", DEV, trust(True, "cosign"))).status is Status.PASS
    assert only(run("RG-SIGN-003", DEV, trust(True, "notation"))).status is Status.PASS


def test_no_enforcement_fails() -> None:
    assert only(run("RG-SIGN-003", DEV, trust(False, None))).status is Status.FAIL


def test_docker_content_trust_is_deprecated_even_when_enforced() -> None:
    verdict = only(run("RG-SIGN-003", DEV, trust(True, "dct")))
    assert verdict.status is Status.FAIL
    assert "deprecated" in verdict.message and "Notation" in verdict.message


def test_unverifiable_signature_error_says_why() -> None:
    unreadable = SignatureFacts("cosign", "tag", SIG_TAG, verify_error="BatchGetImage: ImageNotFound")
    verdict = only(run("RG-SIGN-002", KEYED, sign_view(repo("app", tag("1.0.0", signatures=(unreadable,))))))
    assert verdict.status is Status.ERROR
    assert "BatchGetImage: ImageNotFound" in verdict.message
