"""What a target entry of `regguard.yaml` may say, one pydantic model per kind.

The models import nothing but pydantic, so parsing a config never loads an SDK.
Each kind's model is named once, in the kind table (`audits.kinds`), which is
where the config's target list, the collector dispatch and the rule scopes
come from; this module only describes the fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_TARGET_DEADLINE_S = 600.0
"""Ten minutes: 10,000 repositories of ten tags at a 20 ms round trip take about
two and a half minutes at concurrency 16, so only a stuck or hostile registry hits it."""
DEFAULT_MAX_REPOSITORIES = 10_000
"""Repositories audited per target at most; a larger estate is audited up to the
cap and reported incomplete (`max_repositories` / `--max-repositories` raise it)."""

# A URL with a scheme and a host[:port] and nothing after it (a trailing `/` is fine).
_BASE_URL_PATTERN = r"^https?://[^/\s]+/?$"


class Strict(BaseModel):
    """Unknown keys are errors and values are frozen once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetConfig(Strict):
    """The keys every target has. `kind` is checked against the kind table
    before the kind's own model sees the entry."""

    name: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="a name of letters, digits, '.', '_' and '-', starting with a letter or digit",
    )
    kind: str
    repositories: list[str] = Field(default_factory=list, description="fnmatch filters; empty means every repository")
    public_repositories: list[str] = Field(
        default_factory=list, description="repositories meant to be public (RG-AUTH-001)"
    )
    environment: str | None = Field(None, description="overrides the top-level environment")
    deadline: float = Field(
        DEFAULT_TARGET_DEADLINE_S,
        gt=0,
        description="seconds the whole collection of this target may take; facts still missing then are errors",
    )
    max_repositories: int = Field(
        DEFAULT_MAX_REPOSITORIES, ge=1, description="repositories audited at most; more make the target incomplete"
    )

    # Keys of this model that hold a path, resolved against the config file's folder.
    path_fields: ClassVar[frozenset[str]] = frozenset()
    # What to write instead of an inline secret, for the config error that refuses one.
    secret_hint: ClassVar[str] = "this kind of target takes no secrets; remove the key"

    def resolved(self, fix: Any) -> TargetConfig:
        """A copy whose path fields went through `fix` (Path -> Path)."""
        updates: dict[str, Any] = {}
        for name in type(self).model_fields:
            if name not in self.path_fields:
                continue
            value = getattr(self, name)
            if isinstance(value, list):
                updates[name] = [fix(p) for p in value]
            elif value is not None:
                updates[name] = fix(value)
        return self.model_copy(update=updates) if updates else self


class OciAuth(Strict):
    """Credentials of an OCI registry, only ever by environment variable name."""

    username_env: str | None = None
    password_env: str | None = None


class DistributionTarget(TargetConfig, OciAuth):
    """A self-hosted Docker Distribution (`registry:2`) endpoint."""

    url: str = Field(
        pattern=_BASE_URL_PATTERN,
        description="the registry's base URL: http(s)://host[:port], without a path",
    )
    ca_file: Path | None = None
    config_file: Path | None = Field(
        None, description="the registry's config.yml, when the audit runs where it is readable"
    )
    timeout: float = Field(10.0, gt=0, description="seconds per request (the target's total is `deadline`)")
    allowed_token_realms: list[Annotated[str, Field(pattern=r"^https://[^/\s]+/?$")]] = Field(
        default_factory=list, description="HTTPS origins of token services trusted besides the registry's own"
    )

    path_fields: ClassVar[frozenset[str]] = frozenset({"ca_file", "config_file"})

    @field_validator("url")
    @classmethod
    def _port_in_range(cls, url: str) -> str:
        """`https://h:99999` matches the pattern but no socket can reach it."""
        try:
            port = urlsplit(url).port
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError("the port must be a number from 1 to 65535")
        return url
    secret_hint: ClassVar[str] = (
        "put it in an environment variable and name that variable with username_env / password_env"
    )


_AWS_REGION = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"
_ACCOUNT_ID = r"^\d{12}$"
# An IAM role ARN: partition, account, optional path, name (IAM's limits: 64-character names).
_ROLE_ARN = r"^arn:aws(-us-gov|-cn)?:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$"
AwsRegion = Annotated[str, Field(pattern=_AWS_REGION)]
AccountId = Annotated[str, Field(pattern=_ACCOUNT_ID)]


class EcrOrganization(Strict):
    """Every active account of an AWS Organization, listed with ListAccounts from
    the management or a delegated administrator account, each audited through
    the role `role_name` assumed in it."""

    role_name: str = Field(
        pattern=r"^([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$", description="the read-only audit role in each account"
    )
    exclude_accounts: list[AccountId] = Field(default_factory=list, description="account ids not to audit")


class EcrTarget(TargetConfig):
    """AWS ECR private registries: one region of the caller's account, or the
    (account, region) scopes of several accounts (`role_arns`, `organization`)
    and regions (`regions`), each audited as its own scope."""

    region: AwsRegion | None = Field(None, description="one AWS region like us-east-1 (or use `regions`)")
    regions: list[AwsRegion] | Literal["all"] | None = Field(
        None, description="several regions, or `all`: every ECR region of the partition in botocore's data"
    )
    partition: Literal["aws", "aws-us-gov", "aws-cn"] = Field("aws", description="the partition `regions: all` lists")
    role_arns: list[Annotated[str, Field(pattern=_ROLE_ARN)]] = Field(
        default_factory=list, description="roles to assume, one per account (or use `organization`)"
    )
    organization: EcrOrganization | None = None
    session_name: str = Field(
        "regguard-audit", pattern=r"^[\w+=,.@-]{2,64}$", description="the AssumeRole session name"
    )
    external_id: str | None = Field(
        None,
        pattern=r"^[\w+=,.@:/-]+$",
        min_length=2,
        max_length=1224,
        description="the sts:ExternalId the audit roles' trust policy asks for",
    )
    external_id_env: str | None = Field(None, description="the environment variable holding the external id")
    endpoint_url: str | None = Field(None, description="moto / LocalStack endpoint")
    profile: str | None = None
    probe_endpoint: bool = Field(False, description="also probe the registry's OCI endpoint (TLS, anonymous access)")

    secret_hint: ClassVar[str] = (
        "ECR credentials come from the AWS credential chain: set `profile:` or the AWS_* environment variables"
    )

    @model_validator(mode="after")
    def _one_way_to_say_each_thing(self) -> EcrTarget:
        if (self.region is None) == (self.regions is None):
            raise ValueError("give exactly one of `region` (one region) and `regions` (a list, or `all`)")
        if isinstance(self.regions, list) and not self.regions:
            raise ValueError("`regions` must name at least one region (or say `all`)")
        if self.role_arns and self.organization is not None:
            raise ValueError("give `role_arns` or `organization`, not both")
        if self.external_id is not None and self.external_id_env is not None:
            raise ValueError("give `external_id` or `external_id_env`, not both")
        return self

    def scope_region(self) -> str:
        """The one region a collection works in; a multi-region target is
        audited scope by scope (`audits.scopes.plan`), never as a whole."""
        if self.region is None:
            raise ValueError(f"target {self.name} spans regions: audit its scopes (audits.scopes.plan)")
        return self.region


class EcrScope(EcrTarget):
    """One (account, region) of an `EcrTarget`, as the engine audits it: made by
    `audits.collectors.ecr_scopes.expand`, never written in a config. Its name is
    `<target>/<account>/<region>` (or `<target>/<region>` without roles)."""

    name: str = Field(min_length=1)  # the configured name with the scope appended, so `/` is allowed
    assume_role_arn: str | None = None  # None: the caller's own account
    iam_scope: str | None = None  # the scope that judges the account-wide IAM facts; None: this one


class DockerConfigTarget(TargetConfig):
    """A docker client's `config.json`."""

    path: Path = Path("~/.docker/config.json")

    path_fields: ClassVar[frozenset[str]] = frozenset({"path"})


class ImageRefsTarget(TargetConfig):
    """Files whose image references are judged (Dockerfiles, manifests, stacks)."""

    paths: list[Path] = Field(min_length=1)

    path_fields: ClassVar[frozenset[str]] = frozenset({"paths"})


class HarborTarget(TargetConfig, OciAuth):
    """A Harbor instance, audited through its API v2.0 and its OCI endpoint."""

    url: str = Field(
        pattern=_BASE_URL_PATTERN,
        description="Harbor's base URL: http(s)://host[:port], without a path (the API is under /api/v2.0)",
    )
    ca_file: Path | None = None
    projects: list[str] = Field(default_factory=list, description="fnmatch filters on project names; empty: all")
    timeout: float = Field(10.0, gt=0, description="seconds per request (the target's total is `deadline`)")
    allowed_token_realms: list[Annotated[str, Field(pattern=r"^https://[^/\s]+/?$")]] = Field(
        default_factory=list, description="HTTPS origins of token services trusted besides Harbor's own"
    )
    db_auth_declared: bool = Field(
        False, description="local database accounts (auth_mode db_auth) are intended, also in production"
    )
    probe_default_password: bool = Field(
        False,
        description="opt-in: try the installer's default admin password once (RG-AUTH-003); off by default",
    )

    path_fields: ClassVar[frozenset[str]] = frozenset({"ca_file"})
    secret_hint: ClassVar[str] = DistributionTarget.secret_hint


class GarTarget(TargetConfig):
    """One Google Cloud project's Artifact Registry (and its gcr.io redirection)."""

    project: str = Field(
        pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", description="a Google Cloud project id like acme-prod"
    )
    locations: list[Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]] = Field(
        default_factory=lambda: ["all"],
        min_length=1,
        description="locations to audit (us-central1, europe, ...); `all` lists the project's locations",
    )
    endpoint_url: str | None = Field(
        None,
        pattern=_BASE_URL_PATTERN,
        description="Artifact Registry API endpoint (Private Service Connect, emulator); Google's by default",
    )
    docker_url: str | None = Field(
        None,
        pattern=_BASE_URL_PATTERN,
        description="Docker (OCI) endpoint for signatures, for every location; https://<location>-docker.pkg.dev "
        "by default",
    )
    resource_manager_url: str | None = Field(
        None,
        pattern=_BASE_URL_PATTERN,
        description="Cloud Resource Manager endpoint for the Data Access audit log config; Google's by default",
    )
    timeout: float = Field(10.0, gt=0, description="seconds per request (the target's total is `deadline`)")

    secret_hint: ClassVar[str] = (
        "GAR credentials come from Application Default Credentials: set GOOGLE_APPLICATION_CREDENTIALS to a "
        "service-account key file, or run `gcloud auth application-default login`"
    )


class AcrTarget(TargetConfig):
    """Azure Container Registries of one subscription (optionally one resource group).

    Credentials come from azure-identity: a service principal whose secret is
    named by `client_secret_env` (with `tenant_id` and `client_id_env`), else
    DefaultAzureCredential (environment, workload identity, managed identity,
    Azure CLI). `endpoint_url` / `authority_host` point the SDKs at a sovereign
    cloud or a local emulator; `ca_file` is the CA bundle both are verified with.
    """

    subscription_id: str = Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="the subscription id (a UUID)",
    )
    resource_group: str | None = Field(None, min_length=1, max_length=90)
    registries: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9]{5,50}$")]] = Field(
        default_factory=list, description="registry names to audit; empty means every registry found"
    )
    endpoint_url: str | None = Field(
        None, pattern=r"^https://[^/\s]+/?$", description="Azure Resource Manager endpoint (sovereign cloud, emulator)"
    )
    authority_host: str | None = Field(
        None, pattern=r"^https://[^/\s]+/?$", description="Microsoft Entra authority (default: AZURE_AUTHORITY_HOST)"
    )
    tenant_id: str | None = Field(None, min_length=1)
    client_id_env: str | None = None
    client_secret_env: str | None = None
    ca_file: Path | None = None
    timeout: float = Field(10.0, gt=0, description="seconds per request (the target's total is `deadline`)")

    path_fields: ClassVar[frozenset[str]] = frozenset({"ca_file"})
    secret_hint: ClassVar[str] = (
        "put the service principal's secret in an environment variable and name it with client_secret_env "
        "(or use DefaultAzureCredential: managed identity, workload identity, `az login`)"
    )


DOCKER_HUB_API = "https://hub.docker.com"
DOCKER_HUB_REGISTRY = "https://registry-1.docker.io"
DOCKER_HUB_TOKEN_REALM = "https://auth.docker.io"


class DockerHubTarget(TargetConfig):
    """One Docker Hub namespace (an organization or a personal account), audited
    through the Hub API and the registry's OCI API. `hub_url` and `registry_url`
    point elsewhere only for a Hub-compatible endpoint (or the sandbox emulator).
    Repository names in findings and filters are `namespace/repository`."""

    namespace: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,254}$", description="the organization or user name, lower case"
    )
    username_env: str | None = Field(None, description="variable holding the Docker ID the token belongs to")
    token_env: str | None = Field(
        None, description="variable holding a read-only personal or organization access token"
    )
    hub_url: str = Field(DOCKER_HUB_API, pattern=_BASE_URL_PATTERN, description="the Hub API's base URL")
    registry_url: str = Field(DOCKER_HUB_REGISTRY, pattern=_BASE_URL_PATTERN, description="the OCI registry's base URL")
    ca_file: Path | None = Field(None, description="CA bundle for both URLs; the system store otherwise")
    allowed_token_realms: list[Annotated[str, Field(pattern=r"^https://[^/\s]+/?$")]] = Field(
        default_factory=lambda: [DOCKER_HUB_TOKEN_REALM],
        description="token services the registry may send credentials to (Docker Hub's own by default)",
    )
    timeout: float = Field(10.0, gt=0, description="seconds per request (the target's total is `deadline`)")
    rate_limit_wait: float = Field(
        60.0, ge=0, description="seconds the collector may wait in total on Retry-After before skipping work"
    )

    path_fields: ClassVar[frozenset[str]] = frozenset({"ca_file"})
    secret_hint: ClassVar[str] = (
        "put the access token in an environment variable and name it with token_env (the Docker ID with username_env)"
    )


class GhcrTarget(TargetConfig):
    """The container packages of one GitHub organization or user on GHCR.

    `api_url` and `registry_url` exist for GitHub Enterprise Server and for the
    sandbox's emulator; a user auditing github.com keeps the defaults."""

    owner: str = Field(
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$", description="the organization or user login owning the packages"
    )
    owner_type: Literal["org", "user"] = Field("org", description="org: /orgs/{owner}/packages; user: /users/{owner}")
    token_env: str | None = Field(
        None, description="environment variable holding a token with read:packages (read:org for Actions settings)"
    )
    packages: list[str] = Field(default_factory=list, description="fnmatch filters on package names; empty: all")
    api_url: str = Field("https://api.github.com", pattern=_BASE_URL_PATTERN, description="GitHub REST API base URL")
    registry_url: str = Field("https://ghcr.io", pattern=_BASE_URL_PATTERN, description="the OCI registry base URL")
    ca_file: Path | None = Field(None, description="CA bundle for api_url and registry_url; system store otherwise")
    timeout: float = Field(10.0, gt=0, description="seconds per request (the target's total is `deadline`)")
    max_rate_limit_wait: float = Field(
        60.0, ge=0, description="seconds the audit may wait for a GitHub rate limit to reset before skipping work"
    )

    path_fields: ClassVar[frozenset[str]] = frozenset({"ca_file"})
    secret_hint: ClassVar[str] = "put the GitHub token in an environment variable and name it with token_env"
