"""RG-AUTH-*: nobody pulls without credentials unless a repository is meant
to be public, passwords never cross plain HTTP, and no shared admin account
stands in for named identities."""

from __future__ import annotations

from collections.abc import Iterator

from audits.model import (
    ADMIN_ACCOUNT,
    ANONYMOUS_ACCESS,
    PLAIN_HTTP,
    REPOSITORIES,
    TOKEN_REALM_ORIGIN,
    AdminAccountFacts,
    AnonymousAccessFacts,
    PlainHttpFacts,
    RepositoryFacts,
    Severity,
    TokenRealmFacts,
    Verdict,
)
from audits.rules.common import REGISTRY_KINDS, evidence, registry_resource, target_is_prod
from audits.rules.registry import (
    FactManaged,
    FactUnavailable,
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

_AUTH_REQUIRED = frozenset({401, 403})
# Shared-account mechanisms RULES.md judges in production only: one htpasswd account, Harbor's local accounts.
PROD_ONLY_MECHANISMS = frozenset({"htpasswd", "local-accounts"})


def _answers_anonymously(status: int | None) -> bool:
    """A 2xx to an unauthenticated request means the endpoint is open."""
    return status is not None and 200 <= status < 300


@rule(
    RuleMeta(
        id="RG-AUTH-001",
        title="No anonymous access",
        rationale=(
            "An open /v2/ or catalog endpoint lists every repository and lets anyone pull "
            "internal images, which carry source, configuration and sometimes secrets baked "
            "into layers. Private repositories must demand credentials; only repositories the "
            "configuration declares public may be pulled anonymously (ECR policy Principal `*`, "
            "ACR anonymous pull, GAR `allUsers`, Harbor public projects, public GHCR/Docker Hub "
            "packages)."
        ),
        seed_section="Authentication",
        severity=Severity.CRITICAL,
        kinds=REGISTRY_KINDS,
        soc2=("CC6.1",),
        nist_800_53=("AC-3", "AC-14"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "configure authentication in config.yml (`auth.htpasswd.path` with `htpasswd -Bc "
                    "/etc/docker/registry/htpasswd <user>`, or `auth.token` with your token service) and restart"
                ),
                component='DistributionVmArgs(identities=("ci-publisher", "regguard-auditor"))',
            ),
            "ecr": Remediation(
                cli=(
                    "remove the Principal `*` statement: `aws ecr delete-repository-policy --repository-name "
                    "<repo>`, or `aws ecr set-repository-policy` with named principals only"
                ),
                component=(
                    "EcrRepositoryArgs(baseline=Baseline(public=False))"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "make the project private: `curl -u <admin> -X PUT https://<harbor>/api/v2.0/projects/<project> "
                    "-H 'Content-Type: application/json' -d '{\"metadata\": {\"public\": \"false\"}}'`, or list its "
                    "repositories in `public_repositories` if they are meant to be public"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "remove the public members: `gcloud artifacts repositories remove-iam-policy-binding <repository> "
                    "--location <location> --member allUsers --role roles/artifactregistry.reader` (and the same for "
                    "`allAuthenticatedUsers`); grant named groups instead"
                ),
                component=(
                    "ArtifactRegistryRepositoryArgs(readers=('group:<team>@<domain>',), "
                    "baseline=Baseline(public=False))"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "`az acr update --name <registry> --anonymous-pull-enabled false`; keep public images in a "
                    "separate registry meant to be public"
                ),
                component="AcrRegistryArgs(anonymous_pull_enabled=False)",
            ),
            "dockerhub": Remediation(
                cli=(
                    "make the repository private (Docker Hub: Repository → Settings → Visibility → Private), or "
                    "list it in the target's `public_repositories` if it is meant to be public"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "GitHub has no API for package visibility: make the package private in its settings (Package "
                    "settings -> Danger Zone -> Change visibility), or list it in `public_repositories` when it is "
                    "meant to be public"
                ),
                component="GhcrPublishWorkflowArgs(visibility='private')",
            ),
        },
    )
)
def no_anonymous_access(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """The endpoint must refuse unauthenticated /v2/ and /v2/_catalog, and no
    repository not declared public may be pulled anonymously. Where the
    provider runs the endpoint (managed), only the repositories are judged."""
    try:
        anonymous: AnonymousAccessFacts | None = facts.require(ANONYMOUS_ACCESS)
    except FactManaged:
        anonymous = None
    if anonymous is not None:
        yield _judge_endpoint(ctx, facts, anonymous)
    try:
        repos: tuple[RepositoryFacts, ...] = facts.require(REPOSITORIES)
    except FactUnavailable as exc:
        if anonymous is None:
            raise
        # An open endpoint must not be hidden by a failed repository listing:
        # report both, the listing as an error.
        yield errored(
            registry_resource(ctx, facts),
            f"repositories could not be judged: {exc}",
            fact=REPOSITORIES,
            detail=exc.fact.detail if exc.fact else "not collected",
            **facts.source(REPOSITORIES),
        )
        return
    pullable = set(anonymous.anonymously_pullable) if anonymous else set()
    judged = [v for repo in repos if (v := _judge_repository(facts, repo, repo.name in pullable)) is not None]
    if anonymous is None and not judged:
        yield not_applicable(registry_resource(ctx, facts), "no repositories", **facts.source(REPOSITORIES))
    yield from judged


def _judge_endpoint(ctx: RuleContext, facts: FactView, seen: AnonymousAccessFacts) -> Verdict:
    resource = registry_resource(ctx, facts)
    ev = evidence(
        facts,
        ANONYMOUS_ACCESS,
        v2_status=seen.v2_status,
        catalog_status=seen.catalog_status,
        challenge=seen.challenge.scheme if seen.challenge else None,
    )
    open_paths = [
        path
        for path, status in (("/v2/", seen.v2_status), ("/v2/_catalog", seen.catalog_status))
        if _answers_anonymously(status)
    ]
    if open_paths:
        return failed(resource, f"unauthenticated requests succeed on {', '.join(open_paths)}", **ev)
    if seen.v2_status is None:
        return errored(resource, "no answer to an unauthenticated /v2/ request", **ev)
    inconclusive = [
        f"{path} answered {status}"
        for path, status in (("/v2/", seen.v2_status), ("/v2/_catalog", seen.catalog_status))
        if status is not None and status not in _AUTH_REQUIRED
    ]
    if inconclusive:
        # A 5xx or 404 is not a refusal: the registry may be open once it recovers.
        return errored(resource, f"inconclusive: {', '.join(inconclusive)} (expected 401)", **ev)
    return passed(resource, f"unauthenticated /v2/ refused ({seen.v2_status})", **ev)


def _judge_repository(facts: FactView, repo: RepositoryFacts, probed_open: bool) -> Verdict | None:
    """None when the kind has no per-repository anonymous setting and the probe
    did not pull it: the endpoint verdict already covers such a repository."""
    ev = evidence(
        facts,
        REPOSITORIES,
        repository=repo.name,
        anonymous_pull=repo.anonymous_pull,
        anonymously_pulled=probed_open,
        declared_public=repo.declared_public,
    )
    if repo.error:
        return errored(repo.name, f"repository could not be read: {repo.error}", **ev)
    if not (repo.anonymous_pull or probed_open):
        return passed(repo.name, "not pullable anonymously", **ev) if repo.anonymous_pull is False else None
    if repo.declared_public:
        return passed(repo.name, "pullable anonymously and declared public", **ev)
    return failed(repo.name, "private repository can be pulled without credentials", **ev)


@rule(
    RuleMeta(
        id="RG-AUTH-002",
        title="Basic auth never over plain HTTP",
        rationale=(
            "A `WWW-Authenticate: Basic` challenge on plain HTTP makes every docker client send "
            "the username and password base64-encoded in clear text with each request. Anyone "
            "on the network path collects reusable registry credentials. The same holds for a "
            "Bearer challenge whose token realm is plain HTTP: clients send it their password."
        ),
        seed_section="Authentication",
        severity=Severity.CRITICAL,
        kinds=REGISTRY_KINDS,
        soc2=("CC6.1", "CC6.7"),
        nist_800_53=("IA-5(1)", "SC-8"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "enable `http.tls` in config.yml (or put a TLS-terminating proxy in front) and stop the "
                    "plain-HTTP listener; never serve `auth.htpasswd` over plain HTTP"
                ),
                component='DistributionVmArgs(tls_mode="internal-ca")',
            ),
            "ecr": Remediation(
                cli=(
                    "ECR sends no Basic challenge over plain HTTP: the answer came from a plain-HTTP endpoint in "
                    "front of it; close it or make it redirect to HTTPS"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "Harbor's token challenge belongs on HTTPS: remove the `http` listener from harbor.yml (or make "
                    "it only redirect to HTTPS) so no client sends its password in clear"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "Artifact Registry serves only HTTPS (`<location>-docker.pkg.dev`): a plain-HTTP answer came from "
                    "a proxy in front of it; close it or make it redirect to HTTPS"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "nothing to change: ACR's token service is the registry's own login server (`/oauth2/token`); "
                    "clients log in with `az acr login --name <registry>`"
                ),
            ),
            "dockerhub": Remediation(
                cli=(
                    "Docker Hub serves its API over HTTPS only, with the token service https://auth.docker.io: "
                    "set `registry_url` to `https://registry-1.docker.io` and drop other `allowed_token_realms`"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "ghcr.io sends no Basic challenge over plain HTTP: the answer came from another endpoint; check "
                    "`registry_url`"
                ),
            ),
        },
    )
)
def no_basic_auth_over_http(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """A Basic challenge over HTTP fails, and so does a plain-HTTP token realm
    (where the collector observed one: TOKEN_REALM_ORIGIN). A pass needs a conclusive answer: the
    API itself without Basic, a redirect, a non-API answer (e.g. 400 from a TLS
    port), or a refusal while the registry answers on its own URL. A 5xx, or a
    refusal from a host that is down, says nothing about its configuration."""
    plain: PlainHttpFacts = facts.require(PLAIN_HTTP)
    ev = evidence(
        facts,
        PLAIN_HTTP,
        url=plain.url,
        status=plain.status,
        serves_api=plain.serves_api,
        challenge_schemes=list(plain.challenge_schemes),
        redirects_to_https=plain.redirects_to_https,
    )
    if "basic" in plain.challenge_schemes:
        yield failed(plain.url, "plain HTTP answers with a Basic authentication challenge", **ev)
        return
    realm = _token_realm(facts)
    if realm is not None and realm.plain_http:
        ev.update(token_realm_origin=realm.origin, token_realm_same_origin=realm.same_origin)
        message = f"the Bearer challenge sends clients to token realm {realm.origin} over plain HTTP"
        yield failed(plain.url, message, **ev)
    elif plain.status is not None and plain.status >= 500 and not plain.redirects_to_https:
        yield errored(plain.url, f"plain HTTP answered {plain.status}: cannot tell which challenge it sends", **ev)
    else:
        if plain.status is None:
            facts.require(ANONYMOUS_ACCESS)
        yield passed(plain.url, "no Basic challenge over plain HTTP", **ev)


def _token_realm(facts: FactView) -> TokenRealmFacts | None:
    """The Bearer realm clients are sent to, for kinds whose collector probes
    it (a failed probe raises, so the rule errors rather than passes)."""
    if not facts.has(TOKEN_REALM_ORIGIN):
        return None
    realm: TokenRealmFacts = facts.require(TOKEN_REALM_ORIGIN)
    return realm


@rule(
    RuleMeta(
        id="RG-AUTH-003",
        title="No shared admin credentials",
        rationale=(
            "A shared admin account (ACR's admin user, Harbor's installer-default admin "
            "password, one htpasswd user everybody knows) cannot be attributed to a person, "
            "cannot be revoked for one leaver, and is usually the first credential tried by an "
            "attacker. Access should go through named identities and scoped robot accounts."
        ),
        seed_section="Authentication",
        severity=Severity.HIGH,
        kinds=REGISTRY_KINDS,
        soc2=("CC6.1",),
        nist_800_53=("AC-2", "IA-2", "IA-5"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "one htpasswd entry per person or CI job (`htpasswd -B /etc/docker/registry/htpasswd <user>`), "
                    "then remove the shared account (`htpasswd -D /etc/docker/registry/htpasswd <shared-user>`)"
                ),
                component='DistributionVmArgs(identities=("ci-publisher", "regguard-auditor"))',
            ),
            "ecr": Remediation(
                cli=(
                    "ECR has no admin user; keep it that way by granting pushes to named IAM roles rather than "
                    "sharing one IAM user's keys"
                ),
                component="EcrRepositoryArgs(push_principals=('arn:aws:iam::<account>:role/ci-push',))",
            ),
            "harbor": Remediation(
                cli=(
                    "change the admin password (`PUT https://<harbor>/api/v2.0/users/<id>/password`), switch "
                    "`auth_mode` to `oidc_auth` or `ldap_auth` and turn `self_registration` off (`PUT "
                    "https://<harbor>/api/v2.0/configurations`); set `db_auth_declared: true` on the target only "
                    "where local accounts are intended"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "Artifact Registry has no admin user; keep it that way by granting "
                    "`roles/artifactregistry.writer` to the CI service account (Workload Identity Federation) rather "
                    "than sharing one key"
                ),
            ),
            "acr": Remediation(
                cli=(
                    "`az acr update --name <registry> --admin-enabled false`; give people and pipelines Entra "
                    "identities with AcrPull/AcrPush, or scope-map tokens"
                ),
                component="AcrRegistryArgs(admin_user_enabled=False)",
            ),
            "dockerhub": Remediation(
                cli=(
                    "give every person their own Docker ID with an organization role and automation an "
                    "organization access token (`POST https://hub.docker.com/v2/orgs/<org>/access-tokens`); stop "
                    "sharing one account"
                ),
            ),
            "ghcr": Remediation(
                cli=(
                    "GHCR has no shared admin account: grant package access to teams and repositories (Package "
                    "settings -> Manage access) instead of sharing one account's token"
                ),
            ),
        },
    )
)
def no_shared_admin(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """A default admin password always fails; a single shared account fails,
    except a shared htpasswd account outside production (RULES.md scopes that
    one to prod)."""
    admin: AdminAccountFacts = facts.require(ADMIN_ACCOUNT)
    resource = registry_resource(ctx, facts)
    ev = evidence(
        facts,
        ADMIN_ACCOUNT,
        shared_admin_enabled=admin.shared_admin_enabled,
        default_password=admin.default_password,
        detail=admin.detail,
    )
    if admin.default_password:
        yield failed(resource, "admin account still uses the installer's default password", Severity.CRITICAL, **ev)
    elif not admin.shared_admin_enabled:
        yield passed(resource, "no shared admin account enabled", **ev)
    elif admin.mechanism in PROD_ONLY_MECHANISMS and not target_is_prod(ctx, facts):
        yield not_applicable(
            resource, f"shared {admin.mechanism} account is only judged in production ({ctx.environment})", **ev
        )
    else:
        yield failed(resource, f"shared admin account enabled: {admin.detail or 'admin user'}", **ev)
