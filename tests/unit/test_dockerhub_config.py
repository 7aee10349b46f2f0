"""A `kind: dockerhub` entry: Docker Hub's own endpoints by default, secrets
only by environment variable name, and a missing variable named in the facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from audits.collectors.base import CollectOptions
from audits.collectors.dockerhub import HUB_FACTS, collect
from audits.config import ConfigError, parse_config
from audits.model import FactState
from audits.targets import DockerHubTarget

WHERE = Path("/nonexistent/regguard.yaml")


def entry(**extra: object) -> dict[str, object]:
    return {"name": "hub", "kind": "dockerhub", "namespace": "acme", "token_env": "HUB_TOKEN", **extra}


def test_defaults_are_docker_hubs_own_endpoints_and_token_service() -> None:
    [target] = parse_config({"targets": [entry()]}, WHERE).targets
    assert isinstance(target, DockerHubTarget)
    assert target.hub_url == "https://hub.docker.com" and target.registry_url == "https://registry-1.docker.io"
    assert target.allowed_token_realms == ["https://auth.docker.io"]


def test_an_inline_token_is_refused_with_what_to_write_instead() -> None:
    with pytest.raises(ConfigError, match="token_env"):
        parse_config({"targets": [entry(token="dckr_pat_inline")]}, WHERE)


@pytest.mark.parametrize("bad", [{"namespace": "Acme Corp"}, {"hub_url": "https://hub.docker.com/v2"}])
def test_a_bad_namespace_or_base_url_is_a_config_error(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        parse_config({"targets": [entry(**bad)]}, WHERE)


def test_a_missing_token_variable_is_named_on_every_hub_fact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_TOKEN", raising=False)
    target = DockerHubTarget.model_validate(entry(registry_url="http://127.0.0.1:9", timeout=1))
    facts = collect(target, CollectOptions())
    for name in HUB_FACTS:
        assert facts.facts[name].state is FactState.ERROR
        assert facts.facts[name].detail == "environment variable HUB_TOKEN is not set"
