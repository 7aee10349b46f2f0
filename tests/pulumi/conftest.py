"""Fixtures for the Pulumi program and component tests (mocks only; no CLI)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi
import pytest

from tests.pulumi.mocks import ProgramRun, run_program, stack_config

ROOT = Path(__file__).resolve().parents[2]
STACKS = ROOT / "stacks"


@pytest.fixture(scope="session")
def program() -> ModuleType:
    """`__main__.py` imported under another name, so `main()` does not run on import."""
    spec = importlib.util.spec_from_file_location("regguard_program", ROOT / "__main__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def mocked() -> Iterator[Callable[..., ProgramRun]]:
    """`run_program` with the root resource reset afterwards, even on failure,
    so one test's stack never becomes the next test's parent."""
    try:
        yield run_program
    finally:
        pulumi.runtime.settings.set_root_resource(None)


@pytest.fixture
def run_stack(
    program: ModuleType, mocked: Callable[..., ProgramRun]
) -> Callable[..., ProgramRun]:
    """Run the program with a stack file's config, optionally edited first."""

    def run(env: str, edit: Callable[[dict[str, Any]], None] | None = None) -> ProgramRun:
        config = stack_config(STACKS / f"Pulumi.{env}.yaml")
        if edit is not None:
            config = edit_structured(config, edit)
        return mocked(program.main, config, stack=env)

    return run


def edit_structured(
    config: Mapping[str, str], edit: Callable[[dict[str, Any]], None]
) -> dict[str, str]:
    """Let a test change the stack config as YAML-shaped data."""
    import json

    decoded: dict[str, Any] = {}
    for key, value in config.items():
        try:
            decoded[key] = json.loads(value)
        except json.JSONDecodeError:
            decoded[key] = value
    edit(decoded)
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in decoded.items()}


