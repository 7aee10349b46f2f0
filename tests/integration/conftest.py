"""Shared fixtures for tests against real local servers.

`estate` is the demo estate (three docker-registry processes, seeded and signed),
started once per session and always stopped. `registry_factory` starts single
registries for one test and stops every one it started, whatever the test did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.estate import Estate, start_estate
from sandbox.registry import RegistrySpec, RunningRegistry, start_registry

RegistryFactory = Callable[[RegistrySpec], RunningRegistry]


@pytest.fixture(scope="session")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    started = start_estate(tmp_path_factory.mktemp("estate"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[RegistryFactory]:
    running: list[RunningRegistry] = []

    def start(spec: RegistrySpec) -> RunningRegistry:
        reg = start_registry(spec, tmp_path / "registries")
        running.append(reg)
        return reg

    try:
        yield start
    finally:
        for reg in running:
            reg.stop()
