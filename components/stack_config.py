"""Stack configuration (`stacks/Pulumi.<env>.yaml`) -> registry specs, kind-neutral.

`regguard:registries` lists registries of any kind regguard provisions; each
entry's `kind` picks its provisioner from the kind table (`audits.kinds`), the
component module whose `parse_registry(entry, stack, where)` turns the entry
into a spec that declares its resources (`declare()`) and names the
`auditConfig` targets that audit them (`audit_targets()`). This module only
reads what every stack has (environment, use cases, frameworks) and gives the
provisioners the shared parsing helpers, so a problem anywhere becomes one
`StackConfigError` naming the full key, e.g.
`regguard:registries[1].baseline.keep_last: expected a positive integer`.

Kept apart from `__main__.py` so it is testable without the Pulumi engine:
provider settings (`aws:region`) come through the `provider` lookup the
program passes in.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from audits import kinds
from audits.vocabulary import DEFAULT_FRAMEWORKS, FRAMEWORKS
from components.baseline import Baseline, BaselineError

_T = TypeVar("_T")

NAMESPACE = "regguard"
TARGET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

ProviderConfig = Callable[[str], "str | None"]
"""`"aws:region"` -> the stack's value (None when unset), as `pulumi.Config` gives it."""


class StackConfigError(ValueError):
    """One line naming the key and what is expected."""


@dataclass(frozen=True)
class StackContext:
    """What every registry entry of a stack is parsed in."""

    environment: str
    provider: ProviderConfig

    def provider_value(self, key: str) -> str:
        """A required provider setting such as `aws:region`."""
        return require_str(self.provider(key), key)


class RegistrySpec(Protocol):
    """A parsed `regguard:registries` entry of some kind."""

    name: str

    def declare(self) -> dict[str, Any]:
        """Create the kind's components; return the outputs to export (repository URLs by name)."""
        ...

    def audit_targets(self) -> list[dict[str, Any]]:
        """The `regguard.yaml` targets that audit what this spec declares."""
        ...


@dataclass(frozen=True)
class StackConfig:
    environment: str
    use_cases: tuple[str, ...]
    frameworks: tuple[str, ...]
    registries: tuple[RegistrySpec, ...]

    def audit_config(self) -> dict[str, Any]:
        """The `regguard.yaml` mapping that audits what this stack declares.

        Empty `use_cases` is left out rather than written as `[]` so the
        audit config's own default applies.
        """
        audit: dict[str, Any] = {
            "environment": self.environment,
            "frameworks": list(self.frameworks),
            "targets": [target for spec in self.registries for target in spec.audit_targets()],
        }
        if self.use_cases:
            audit["use_cases"] = list(self.use_cases)
        return audit


def parse_stack_config(
    *,
    environment: Any,
    registries: Any,
    provider: ProviderConfig,
    use_cases: Any = None,
    frameworks: Any = None,
) -> StackConfig:
    """Validate the stack's config values and build every registry's spec.

    Arguments are what `pulumi.Config` returned (None when unset), so this
    function is the single place that decides what a valid stack is.
    """
    env = require_str(environment, f"{NAMESPACE}:environment")
    cases = str_list(use_cases, f"{NAMESPACE}:use_cases", default=())
    fws = str_list(frameworks, f"{NAMESPACE}:frameworks", default=DEFAULT_FRAMEWORKS)
    _check_frameworks(fws)
    if not isinstance(registries, list) or not registries:
        raise StackConfigError(f"{NAMESPACE}:registries: expected a non-empty list of registries")
    stack = StackContext(env, provider)
    specs: list[RegistrySpec] = []
    for i, item in enumerate(registries):
        where = f"{NAMESPACE}:registries[{i}]"
        specs.append(_provisioner(item, where).parse_registry(item, stack, where, tuple(specs)))
    check_unique([s.name for s in specs], f"{NAMESPACE}:registries", "name")
    return StackConfig(env, cases, fws, tuple(specs))


def _provisioner(entry: Any, where: str) -> Any:
    """The component module that provisions this entry's kind (from the kind table)."""
    kind = require_str(mapping(entry, where, None).get("kind"), f"{where}.kind")
    provisioned = [k.name for k in kinds.with_provisioner()]
    if kind not in provisioned:
        raise StackConfigError(
            f"{where}.kind: {kind!r} is not provisioned by this program; expected one of {', '.join(provisioned)}"
        )
    return importlib.import_module(str(kinds.get(kind).provisioner))


def baseline_for(env: str, overrides: Mapping[str, Any], where: str) -> Baseline:
    """The environment's baseline with `overrides`; a bad value names `where.<field>`."""
    try:
        return Baseline.for_environment(env, overrides)
    except BaselineError as exc:
        raise StackConfigError(f"{where}.{exc.key}: {exc.problem}") from None


def build(where: str, make: Callable[[], _T]) -> _T:
    """Run an Args constructor; its `field: problem` ValueError gets `where.`
    in front. StackConfigErrors from nested parsing pass through unchanged."""
    try:
        return make()
    except StackConfigError:
        raise
    except ValueError as exc:
        raise StackConfigError(f"{where}.{exc}") from None


def _check_frameworks(frameworks: tuple[str, ...]) -> None:
    for i, fw in enumerate(frameworks):
        if fw not in FRAMEWORKS:
            raise StackConfigError(
                f"{NAMESPACE}:frameworks[{i}]: {fw!r} is unknown; expected one of "
                + ", ".join(FRAMEWORKS)
            )


def check_unique(names: list[str], where: str, key: str) -> None:
    for i, name in enumerate(names):
        if name in names[:i]:
            raise StackConfigError(f"{where}[{i}].{key}: {name!r} is used twice")


def mapping(raw: Any, where: str, allowed: frozenset[str] | None) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise StackConfigError(f"{where}: expected a mapping")
    if allowed is not None:
        for key in raw:
            if key not in allowed:
                raise StackConfigError(
                    f"{where}.{key}: unknown key; expected one of {', '.join(sorted(allowed))}"
                )
    return dict(raw)


def as_list(raw: Any, where: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise StackConfigError(f"{where}: expected a list")
    return raw


def require_str(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise StackConfigError(f"{where}: required; expected a non-empty string")
    return raw


def opt_str(raw: Any, where: str) -> str | None:
    return None if raw is None else require_str(raw, where)


def str_list(raw: Any, where: str, *, default: tuple[str, ...]) -> tuple[str, ...]:
    if raw is None:
        return default
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise StackConfigError(f"{where}: expected a list of strings")
    return tuple(raw)


def tags_mapping(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise StackConfigError(f"{where}: expected a mapping of string to string")
    return dict(raw)
