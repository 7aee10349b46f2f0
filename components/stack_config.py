"""Stack configuration (`stacks/Pulumi.<env>.yaml`) -> component arguments.

Kept apart from `__main__.py` so it is testable without the Pulumi engine:
`parse_stack_config` takes the plain values the program read from
`pulumi.Config`, and every problem becomes one `StackConfigError` whose
message names the full key, e.g.
`regguard:registries[1].baseline.keep_last: expected a positive integer`.

It also builds `auditConfig`, the `regguard.yaml` mapping (see
`audits/config.py`) that audits what the stack created.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from audits.vocabulary import DEFAULT_FRAMEWORKS, FRAMEWORKS
from components.baseline import Baseline, BaselineError
from components.ecr import (
    EcrRegistryArgs,
    EcrRepositoryArgs,
    PullThroughCache,
    check_principals,
)

_T = TypeVar("_T")

NAMESPACE = "regguard"
KINDS = ("ecr",)
# Settings that exist once per account/region; a repository cannot change them.
REGISTRY_WIDE_FIELDS = frozenset({"scan_mode", "replicate_to"})

_TARGET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_REGISTRY_KEYS = frozenset(
    {
        "name",
        "kind",
        "baseline",
        "account_id",
        "replication_source_accounts",
        "pull_through_caches",
        "pull_principals",
        "push_principals",
        "tags",
        "repositories",
    }
)
_REPOSITORY_KEYS = frozenset(
    {"name", "baseline", "pull_principals", "push_principals", "kms_key_arn", "tags"}
)
_CACHE_KEYS = frozenset({"ecr_repository_prefix", "upstream_registry_url", "credential_arn"})


class StackConfigError(ValueError):
    """One line naming the key and what is expected."""


@dataclass(frozen=True)
class EcrRegistrySpec:
    """One `kind: ecr` entry: its registry-wide args and its repositories."""

    name: str
    registry: EcrRegistryArgs
    repositories: tuple[EcrRepositoryArgs, ...]


@dataclass(frozen=True)
class StackConfig:
    environment: str
    region: str
    use_cases: tuple[str, ...]
    frameworks: tuple[str, ...]
    registries: tuple[EcrRegistrySpec, ...]

    def audit_config(self) -> dict[str, Any]:
        """The `regguard.yaml` mapping that audits what this stack declares.

        Empty `use_cases` is left out rather than written as `[]` so the
        audit config's own default applies.
        """
        audit: dict[str, Any] = {
            "environment": self.environment,
            "frameworks": list(self.frameworks),
            "targets": [_audit_target(spec, self.region) for spec in self.registries],
        }
        if self.use_cases:
            audit["use_cases"] = list(self.use_cases)
        return audit


def parse_stack_config(
    *,
    environment: Any,
    region: Any,
    registries: Any,
    use_cases: Any = None,
    frameworks: Any = None,
) -> StackConfig:
    """Validate the stack's config values and build component args.

    Arguments are what `pulumi.Config` returned (None when unset), so this
    function is the single place that decides what a valid stack is.
    """
    env = _require_str(environment, f"{NAMESPACE}:environment")
    reg = _require_str(region, "aws:region")
    cases = _str_list(use_cases, f"{NAMESPACE}:use_cases", default=())
    fws = _str_list(frameworks, f"{NAMESPACE}:frameworks", default=DEFAULT_FRAMEWORKS)
    _check_frameworks(fws)
    if not isinstance(registries, list) or not registries:
        raise StackConfigError(f"{NAMESPACE}:registries: expected a non-empty list of registries")
    specs = tuple(
        _parse_registry(item, env, reg, f"{NAMESPACE}:registries[{i}]")
        for i, item in enumerate(registries)
    )
    _check_unique([s.name for s in specs], f"{NAMESPACE}:registries", "name")
    if len(specs) > 1:
        raise StackConfigError(
            f"{NAMESPACE}:registries[1]: one ecr registry per stack "
            "(an account/region has exactly one registry); use another stack for another region"
        )
    return StackConfig(env, reg, cases, fws, specs)


def _parse_registry(raw: Any, env: str, region: str, where: str) -> EcrRegistrySpec:
    entry = _mapping(raw, where, _REGISTRY_KEYS)
    name = _require_str(entry.get("name"), f"{where}.name")
    if not _TARGET_NAME_RE.match(name):
        raise StackConfigError(f"{where}.name: letters, digits, '.', '_' and '-' only")
    kind = _require_str(entry.get("kind"), f"{where}.kind")
    if kind not in KINDS:
        raise StackConfigError(
            f"{where}.kind: {kind!r} is not provisioned by this program; expected one of "
            + ", ".join(KINDS)
        )
    overrides = _mapping(entry.get("baseline", {}), f"{where}.baseline", None)
    baseline = _baseline(env, overrides, f"{where}.baseline")
    caches = tuple(
        _cache(c, f"{where}.pull_through_caches[{i}]")
        for i, c in enumerate(_list(entry.get("pull_through_caches"), f"{where}.pull_through_caches"))
    )
    registry = _build(
        where,
        lambda: EcrRegistryArgs(
            baseline=baseline,
            region=region,
            account_id=_opt_str(entry.get("account_id"), f"{where}.account_id"),
            replication_source_accounts=_str_list(
                entry.get("replication_source_accounts"),
                f"{where}.replication_source_accounts",
                default=(),
            ),
            pull_through_caches=caches,
        ),
    )
    defaults = {
        "pull_principals": _principals(entry, "pull_principals", where, allow_star=baseline.public),
        "push_principals": _principals(entry, "push_principals", where, allow_star=False),
        "tags": _tags(entry.get("tags"), f"{where}.tags"),
    }
    repos_raw = entry.get("repositories")
    if not isinstance(repos_raw, list) or not repos_raw:
        raise StackConfigError(f"{where}.repositories: expected a non-empty list of repositories")
    repositories = tuple(
        _parse_repository(item, env, overrides, defaults, f"{where}.repositories[{i}]")
        for i, item in enumerate(repos_raw)
    )
    _check_unique([r.name for r in repositories], f"{where}.repositories", "name")
    return EcrRegistrySpec(name, registry, repositories)


def _parse_repository(
    raw: Any, env: str, registry_overrides: Mapping[str, Any], defaults: Mapping[str, Any], where: str
) -> EcrRepositoryArgs:
    """A repository is a name, or a mapping that adds principals, tags and
    repository-level baseline overrides on top of the registry's."""
    entry = {"name": raw} if isinstance(raw, str) else _mapping(raw, where, _REPOSITORY_KEYS)
    name = _require_str(entry.get("name"), f"{where}.name")
    own = _mapping(entry.get("baseline", {}), f"{where}.baseline", None)
    for key in own:
        if key in REGISTRY_WIDE_FIELDS:
            raise StackConfigError(
                f"{where}.baseline.{key}: registry-wide setting; set it on the registry"
            )
    baseline = _baseline(env, {**registry_overrides, **own}, f"{where}.baseline")
    own_pull = _principals(entry, "pull_principals", where, allow_star=baseline.public)
    own_push = _principals(entry, "push_principals", where, allow_star=False)
    pull = defaults["pull_principals"] + own_pull
    push = defaults["push_principals"] + own_push
    tags = {**defaults["tags"], **_tags(entry.get("tags"), f"{where}.tags")}
    return _build(
        where,
        lambda: EcrRepositoryArgs(
            name=name,
            baseline=baseline,
            environment=env,
            pull_principals=tuple(dict.fromkeys(pull)),
            push_principals=tuple(dict.fromkeys(push)),
            kms_key_arn=_opt_str(entry.get("kms_key_arn"), f"{where}.kms_key_arn"),
            tags=tags,
        ),
    )


def _principals(
    entry: Mapping[str, Any], key: str, where: str, *, allow_star: bool
) -> tuple[str, ...]:
    """Check principals where they are written, so the error names that key."""
    found = _str_list(entry.get(key), f"{where}.{key}", default=())
    _build(where, lambda: check_principals(key, found, allow_star=allow_star))
    return found


def _cache(raw: Any, where: str) -> PullThroughCache:
    entry = _mapping(raw, where, _CACHE_KEYS)
    return _build(
        where,
        lambda: PullThroughCache(
            ecr_repository_prefix=_require_str(
                entry.get("ecr_repository_prefix"), f"{where}.ecr_repository_prefix"
            ),
            upstream_registry_url=_require_str(
                entry.get("upstream_registry_url"), f"{where}.upstream_registry_url"
            ),
            credential_arn=_opt_str(entry.get("credential_arn"), f"{where}.credential_arn"),
        ),
    )


def _baseline(env: str, overrides: Mapping[str, Any], where: str) -> Baseline:
    try:
        return Baseline.for_environment(env, overrides)
    except BaselineError as exc:
        raise StackConfigError(f"{where}.{exc.key}: {exc.problem}") from None


def _build(where: str, make: Callable[[], _T]) -> _T:
    """Run an Args constructor; its `field: problem` ValueError gets `where.`
    in front. StackConfigErrors from nested parsing pass through unchanged."""
    try:
        return make()
    except StackConfigError:
        raise
    except ValueError as exc:
        raise StackConfigError(f"{where}.{exc}") from None


def _audit_target(spec: EcrRegistrySpec, region: str) -> dict[str, Any]:
    target: dict[str, Any] = {
        "name": spec.name,
        "kind": "ecr",
        "region": region,
        "repositories": [r.name for r in spec.repositories],
    }
    public = [r.name for r in spec.repositories if r.baseline.public]
    if public:
        target["public_repositories"] = public
    return target


def _check_frameworks(frameworks: tuple[str, ...]) -> None:
    for i, fw in enumerate(frameworks):
        if fw not in FRAMEWORKS:
            raise StackConfigError(
                f"{NAMESPACE}:frameworks[{i}]: {fw!r} is unknown; expected one of "
                + ", ".join(FRAMEWORKS)
            )


def _check_unique(names: list[str], where: str, key: str) -> None:
    for i, name in enumerate(names):
        if name in names[:i]:
            raise StackConfigError(f"{where}[{i}].{key}: {name!r} is used twice")


def _mapping(raw: Any, where: str, allowed: frozenset[str] | None) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise StackConfigError(f"{where}: expected a mapping")
    if allowed is not None:
        for key in raw:
            if key not in allowed:
                raise StackConfigError(
                    f"{where}.{key}: unknown key; expected one of {', '.join(sorted(allowed))}"
                )
    return dict(raw)


def _list(raw: Any, where: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise StackConfigError(f"{where}: expected a list")
    return raw


def _require_str(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise StackConfigError(f"{where}: required; expected a non-empty string")
    return raw


def _opt_str(raw: Any, where: str) -> str | None:
    return None if raw is None else _require_str(raw, where)


def _str_list(raw: Any, where: str, *, default: tuple[str, ...]) -> tuple[str, ...]:
    if raw is None:
        return default
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise StackConfigError(f"{where}: expected a list of strings")
    return tuple(raw)


def _tags(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise StackConfigError(f"{where}: expected a mapping of string to string")
    return dict(raw)
