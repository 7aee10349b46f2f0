"""RG-CRED-*: registry credentials are short-lived, rotated, and never sit in
plain text in a client's docker config."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from audits.model import (
    CREDENTIALS,
    DOCKER_CONFIG,
    CredentialFacts,
    DockerClientConfigFacts,
    Severity,
    Verdict,
)
from audits.rules.common import DOCKER_CONFIG_KIND, REGISTRY_KINDS, evidence, registry_resource, target_is_prod
from audits.rules.registry import (
    FactView,
    Remediation,
    RuleContext,
    RuleMeta,
    failed,
    manual,
    not_applicable,
    passed,
    rule,
)

# Credential kinds whose provider can put an expiry on them.
EXPIRING_KINDS = frozenset({"robot", "token"})
LONG_LIVED_KEY = "iam-access-key"


def _credential_evidence(facts: FactView, cred: CredentialFacts, **extra: object) -> dict[str, Any]:
    """The credential's id and dates, never its secret (the fact has none)."""
    return evidence(
        facts,
        CREDENTIALS,
        credential=cred.id,
        credential_kind=cred.kind,
        created_at=cred.created_at.isoformat() if cred.created_at else None,
        expires_at=cred.expires_at.isoformat() if cred.expires_at else None,
        can_push=cred.can_push,
        **extra,
    )


# NIST mapping corrected from RULES.md (IA-5(1), AC-2(3)) to (IA-5, AC-2(3)): in rev5,
# IA-5(1) covers password handling only (lists of compromised passwords, salted storage,
# transmission); authenticator lifetime and refresh are IA-5 items f/g.
@rule(
    RuleMeta(
        id="RG-CRED-001",
        title="Short-lived credentials",
        rationale=(
            "A robot account or token without an expiry, or an IAM user access key that can "
            "push to production repositories, stays valid long after the pipeline or person "
            "that needed it is gone; a leaked copy gives an attacker the power to replace "
            "production images. Credentials should expire on their own and pushes should use "
            "role-based, short-lived tokens."
        ),
        seed_section="Authentication",
        severity=Severity.HIGH,
        kinds=REGISTRY_KINDS,
        soc2=("CC6.1",),
        nist_800_53=("IA-5", "AC-2(3)"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "htpasswd passwords never expire: front the registry with `auth.token` and a token service that "
                    "issues short-lived tokens, or rotate htpasswd passwords on a schedule"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "push from CI with an assumed role (`aws sts assume-role`, or OIDC from the CI system) and "
                    "delete the IAM user's key: `aws iam delete-access-key --user-name <user> --access-key-id <id>`"
                ),
                component="EcrRepositoryArgs(push_principals=('arn:aws:iam::<account>:role/ci-push',))",
            ),
            "harbor": Remediation(
                cli=(
                    "replace the robot with one that expires: `POST https://<harbor>/api/v2.0/robots` with "
                    "`\"duration\": 30` (days), delete the never-expiring one, and set `robot_token_duration` (`PUT "
                    "https://<harbor>/api/v2.0/configurations`)"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "push from CI with Workload Identity Federation (`gcloud iam workload-identity-pools "
                    "create-cred-config ...`) or `gcloud auth print-access-token` (one hour), and delete "
                    "service-account keys: `gcloud iam service-accounts keys delete <key-id> --iam-account <sa>`"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "`az acr token credential generate --registry <registry> --name <token> --password1 "
                    "--expiration-in-days 30`"
                ),
                component="AcrTokenArgs(password_expiry='<ISO 8601 time at most 90 days away>')",
            ),
            "dockerhub": Remediation(
                cli=(
                    "create a token that expires: `curl -X POST https://hub.docker.com/v2/access-tokens -H "
                    "'Authorization: Bearer <jwt from POST /v2/auth/token>' -H 'Content-Type: application/json' "
                    '-d \'{"token_label": "ci", "scopes": ["repo:read"], "expires_at": "<date within 90 days>"}\'` '
                    "(organization tokens: `POST /v2/orgs/<org>/access-tokens` with `expires_at`), move the "
                    "clients (`docker login --password-stdin`), then `DELETE /v2/access-tokens/<uuid>`"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "publish from Actions with the job's `GITHUB_TOKEN` (`permissions: packages: write` in the "
                    "publish workflow only) and audit with a fine-grained, expiring read-only token; then delete the "
                    "classic token (Settings -> Developer settings -> Personal access tokens)"
                ),
                component="GhcrOrgSettingsArgs(organization='<org>', default_workflow_permissions='read')",
            ),
        },
    )
)
def short_lived_credentials(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """Robots/tokens must expire within `credential_max_age_days` of creation;
    IAM user access keys must not have push rights in production. Other
    credential kinds have no expiry mechanism and are left to RG-CRED-002."""
    creds: tuple[CredentialFacts, ...] = facts.require(CREDENTIALS)
    prod = target_is_prod(ctx, facts)
    judged = 0
    for cred in creds:
        if cred.kind in EXPIRING_KINDS:
            judged += 1
            yield _judge_expiry(ctx, facts, cred)
        elif cred.kind == LONG_LIVED_KEY and cred.can_push and prod:
            judged += 1
            yield failed(
                cred.id,
                "long-lived IAM user access key can push to production repositories",
                **_credential_evidence(facts, cred),
            )
    if not judged:
        yield not_applicable(
            registry_resource(ctx, facts),
            "no expiring credentials or production push keys found",
            credentials=len(creds),
            **facts.source(CREDENTIALS),
        )


def _judge_expiry(ctx: RuleContext, facts: FactView, cred: CredentialFacts) -> Verdict:
    max_days = ctx.thresholds.credential_max_age_days
    if cred.expires_at is None:
        return failed(cred.id, f"{cred.kind} never expires", **_credential_evidence(facts, cred))
    if cred.created_at is not None:
        lifetime = (cred.expires_at - cred.created_at).days
        ev = _credential_evidence(facts, cred, lifetime_days=lifetime, max_days=max_days)
        if lifetime > max_days:
            return failed(cred.id, f"{cred.kind} lives {lifetime} days (more than {max_days})", **ev)
        return passed(cred.id, f"{cred.kind} expires after {lifetime} days", **ev)
    # Creation unknown (GitHub reports only a PAT's expiry): judge the lifetime it has left.
    left = (cred.expires_at - ctx.now).days
    ev = _credential_evidence(facts, cred, days_left=left, max_days=max_days)
    if left > max_days:
        return failed(cred.id, f"{cred.kind} stays valid another {left} days (more than {max_days})", **ev)
    return passed(cred.id, f"{cred.kind} expires {cred.expires_at.date()}", **ev)


# NIST mapping corrected from RULES.md (IA-5(1)) to IA-5: rotation ("change or refresh
# authenticators") is IA-5 item f; rev5 IA-5(1) no longer carries lifetime rules.
@rule(
    RuleMeta(
        id="RG-CRED-002",
        title="Credentials rotated",
        rationale=(
            "The older a credential, the more places it has been copied to (CI variables, "
            "laptops, chat) and the longer a silent leak stays usable. Rotating every registry "
            "credential within `credential_max_age_days` bounds that window."
        ),
        seed_section="Pro tips",
        severity=Severity.MEDIUM,
        kinds=REGISTRY_KINDS,
        soc2=("CC6.1",),
        nist_800_53=("IA-5",),
        remediation={
            "distribution": Remediation(
                cli=(
                    "set a new password with `htpasswd -B /etc/docker/registry/htpasswd <user>` and update the "
                    "clients' credential stores"
                ),
            ),
            "ecr": Remediation(
                cli=(
                    "`aws iam create-access-key --user-name <user>`, move the clients to the new key, then `aws iam "
                    "delete-access-key --user-name <user> --access-key-id <old-id>` (better: replace the user with "
                    "a role)"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "refresh the robot's secret (`PATCH https://<harbor>/api/v2.0/robots/<id>` with `{\"secret\": "
                    "\"<new>\"}`, or recreate the robot) and update the jobs that use it"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "rotate the upstream credential: `gcloud secrets versions add <secret> --data-file=-`, then point "
                    "the remote repository at the new version (`gcloud artifacts repositories update <repository> "
                    "--location <location> --remote-password-secret-version=<version>`)"
                ),
                component=(
                    "ArtifactRegistryRepositoryArgs(remote=RemoteUpstream(username='<user>', "
                    "password_secret_version='projects/<project>/secrets/<secret>/versions/<new>'))"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "rotate: `az acr token credential generate --registry <registry> --name <token> --password2 "
                    "--expiration-in-days 30`, move clients to the new password, then `az acr token credential delete"
                    " --registry <registry> --name <token> --password1`"
                ),
                component="AcrTokenArgs(password_expiry='<ISO 8601 time at most 90 days away>')",
            ),
            "dockerhub": Remediation(
                cli=(
                    "create a new token (`POST https://hub.docker.com/v2/access-tokens`), update the clients, "
                    "then revoke the old or unused one: `curl -X DELETE "
                    "https://hub.docker.com/v2/access-tokens/<uuid> -H 'Authorization: Bearer <jwt from POST "
                    "/v2/auth/token>'` (organization tokens: `DELETE /v2/orgs/<org>/access-tokens/<id>`)"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "regenerate the token (Settings -> Developer settings -> Personal access tokens -> Regenerate) "
                    "and update the secret holding it: `gh secret set <NAME> --org <org>`"
                ),
            ),
        },
    )
)
def credentials_rotated(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    creds: tuple[CredentialFacts, ...] = facts.require(CREDENTIALS)
    max_days = ctx.thresholds.credential_max_age_days
    if not creds:
        yield not_applicable(
            registry_resource(ctx, facts), "no registry credentials found", **facts.source(CREDENTIALS)
        )
    for cred in creds:
        if cred.created_at is None:
            yield manual(
                cred.id,
                f"{facts.kind} does not record when this {cred.kind} was created; "
                f"check its last rotation is within {max_days} days",
                **_credential_evidence(facts, cred),
            )
            continue
        age = (ctx.now - cred.created_at).days
        ev = _credential_evidence(facts, cred, age_days=age, max_days=max_days)
        unused = _unused_days(ctx, cred)
        if unused is not None and unused > max_days:  # unused long enough to be revoked, not rotated
            last = cred.last_used_at.isoformat() if cred.last_used_at else None
            message = f"{cred.kind} unused for {unused} days (max {max_days}): revoke it"
            yield failed(cred.id, message, last_used_at=last, unused_days=unused, **ev)
        elif age > max_days:
            yield failed(cred.id, f"{cred.kind} is {age} days old (max {max_days})", **ev)
        else:
            yield passed(cred.id, f"{cred.kind} is {age} days old", **ev)


def _unused_days(ctx: RuleContext, cred: CredentialFacts) -> int | None:
    """Days since the credential was last used (since creation if never),
    where the registry records use; None where it does not."""
    if not cred.usage_tracked:
        return None
    last = cred.last_used_at or cred.created_at
    return (ctx.now - last).days if last is not None else None


# NIST mapping corrected from RULES.md (IA-5(1), IA-5(7)) to (IA-5(6), IA-5(7)): the
# risk is authenticators stored unprotected on the client; rev5 IA-5(1) is about how a
# verifier handles passwords, IA-5(6) is "Protection of Authenticators".
@rule(
    RuleMeta(
        id="RG-CRED-003",
        title="No plaintext client credentials",
        rationale=(
            "`docker login` without a credential helper writes `auths.<registry>.auth`, the "
            "base64 of user:password, into ~/.docker/config.json. Any process or backup that "
            "reads the home directory gets reusable registry credentials. A credsStore or "
            "credHelpers entry keeps them in the OS keychain or a cloud helper instead."
        ),
        seed_section="Authentication",
        severity=Severity.HIGH,
        kinds=frozenset({DOCKER_CONFIG_KIND}),
        soc2=("CC6.1",),
        nist_800_53=("IA-5(6)", "IA-5(7)"),
        remediation={
            DOCKER_CONFIG_KIND: Remediation(
                cli=(
                    'install a credential helper and set it, e.g. `"credsStore": "pass"` (or "osxkeychain") or '
                    '`"credHelpers": {"<account>.dkr.ecr.<region>.amazonaws.com": "ecr-login"}`; '
                    "then `docker logout <registry> && docker login <registry>`"
                ),
            ),
        },
    )
)
def no_plaintext_client_credentials(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """Per RULES.md an inline entry passes when a store or helper covers its
    registry (Docker then ignores the inline copy); the evidence still says the
    unused copy is on disk."""
    config: DockerClientConfigFacts = facts.require(DOCKER_CONFIG)
    if not config.plaintext_registries:
        yield passed(
            config.path,
            "no inline credentials",
            **evidence(facts, DOCKER_CONFIG, creds_store=config.creds_store),
        )
        return
    for registry in config.plaintext_registries:
        helper = config.cred_helpers.get(registry) or config.creds_store
        ev = evidence(
            facts,
            DOCKER_CONFIG,
            path=config.path,
            registry=registry,
            creds_store=config.creds_store,
            cred_helper=config.cred_helpers.get(registry),
        )
        if helper:
            yield passed(
                f"{config.path}#{registry}",
                f"credentials served by helper {helper!r}; remove the unused inline entry",
                inline_entry_unused=True,
                **ev,
            )
        else:
            yield failed(f"{config.path}#{registry}", "plaintext credentials stored in the file", **ev)
