"""What a target entry of `regguard.yaml` may say, one pydantic model per kind.

The models import nothing but pydantic, so parsing a config never loads an SDK.
Each kind's model is named once, in the kind table (`audits.kinds`), which is
where the config's target list, the collector dispatch and the rule scopes
come from; this module only describes the fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

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
    secret_hint: ClassVar[str] = (
        "put it in an environment variable and name that variable with username_env / password_env"
    )


class EcrTarget(TargetConfig):
    """One AWS ECR private registry: one account, one region."""

    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$", description="an AWS region name like us-east-1")
    endpoint_url: str | None = Field(None, description="moto / LocalStack endpoint")
    profile: str | None = None
    probe_endpoint: bool = Field(False, description="also probe the registry's OCI endpoint (TLS, anonymous access)")

    secret_hint: ClassVar[str] = (
        "ECR credentials come from the AWS credential chain: set `profile:` or the AWS_* environment variables"
    )


class DockerConfigTarget(TargetConfig):
    """A docker client's `config.json`."""

    path: Path = Path("~/.docker/config.json")

    path_fields: ClassVar[frozenset[str]] = frozenset({"path"})


class ImageRefsTarget(TargetConfig):
    """Files whose image references are judged (Dockerfiles, manifests, stacks)."""

    paths: list[Path] = Field(min_length=1)

    path_fields: ClassVar[frozenset[str]] = frozenset({"paths"})


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
