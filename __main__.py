"""The regguard Pulumi program: stack config -> components -> `auditConfig`.

`pulumi up` runs this file as `__main__`; tests import it and call `main()`
under mocks. All parsing and validation lives in `components.stack_config`
so a bad stack fails before any resource is registered, with one message
naming the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi

from audits.config import ConfigError, parse_config
from components.stack_config import NAMESPACE, StackConfig, StackConfigError, parse_stack_config


def read_stack_config() -> StackConfig:
    """Read `regguard:*` (and, through `provider`, the provider settings a
    kind needs, such as `aws:region`) and validate them; a problem becomes a
    `pulumi.RunError` (shown without a traceback)."""
    cfg = pulumi.Config(NAMESPACE)
    try:
        return parse_stack_config(
            environment=cfg.get("environment"),
            provider=_provider_value,
            registries=_object(cfg, "registries"),
            use_cases=_object(cfg, "use_cases"),
            frameworks=_object(cfg, "frameworks"),
        )
    except StackConfigError as exc:
        raise pulumi.RunError(str(exc)) from None


def _provider_value(key: str) -> str | None:
    """`aws:region` -> pulumi.Config("aws").get("region")."""
    namespace, _, name = key.partition(":")
    return pulumi.Config(namespace).get(name)


def _object(cfg: pulumi.Config, key: str) -> Any:
    """A structured config value; the CLI hands them over as JSON text."""
    text = cfg.get(key)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise StackConfigError(f"{NAMESPACE}:{key}: expected a list or mapping") from None


def build(stack: StackConfig) -> dict[str, Any]:
    """Declare every registry's components (each kind's spec knows its own);
    return the repository URLs by name."""
    urls: dict[str, Any] = {}
    for spec in stack.registries:
        urls.update(spec.declare())
    return urls


def checked_audit_config(stack: StackConfig) -> dict[str, Any]:
    """`auditConfig`, validated by the auditor's own model so `regguard audit`
    always accepts what the program exports."""
    audit = stack.audit_config()
    source = Path(f"stacks/Pulumi.{pulumi.get_stack()}.yaml")
    try:
        parse_config(audit, source)
    except ConfigError as exc:
        # `<file>: use_cases: ...` -> `regguard:use_cases: ...`: name the stack key.
        problem = str(exc).removeprefix(f"{source}: ")
        copied = problem.startswith(("use_cases", "frameworks", "environment"))
        raise pulumi.RunError(
            f"{NAMESPACE}:{problem}" if copied else f"auditConfig: {problem}"
        ) from None
    return audit


def main() -> StackConfig:
    """The whole program; returns the parsed stack for tests."""
    stack = read_stack_config()
    audit = checked_audit_config(stack)
    urls = build(stack)
    pulumi.export("auditConfig", audit)
    pulumi.export("repositoryUrls", urls)
    return stack


if __name__ == "__main__":
    main()
