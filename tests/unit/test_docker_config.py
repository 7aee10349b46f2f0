"""The docker-config collector: which registries keep credentials in the
file, which store/helpers are set, and that no secret ever leaves the file."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from audits.collectors.base import CollectOptions
from audits.collectors.docker_config import collect, config_path, read_docker_config
from audits.model import DOCKER_CONFIG, FactState
from audits.targets import DockerConfigTarget

CANARY = "CANARY-7f3c1e-do-not-leak"
CANARY_AUTH = base64.b64encode(f"ci-bot:{CANARY}".encode()).decode()


def _write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document, indent=2))
    return path


def _target(path: Path) -> DockerConfigTarget:
    return DockerConfigTarget(name="laptop", kind="docker-config", path=path)


@pytest.fixture
def leaky_config(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "config.json",
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": CANARY_AUTH},
                "registry.example.com:5000": {"username": "ci-bot", "password": CANARY},
                "http://10.0.0.5:5000/v2/": {"identitytoken": CANARY},
                "ghcr.io": {"registrytoken": CANARY},
                "quay.io": {},
                "gcr.io": {"auth": "", "email": "x@example.com"},
            },
            "credsStore": "desktop",
            "credHelpers": {"123456789012.dkr.ecr.us-east-1.amazonaws.com": "ecr-login", "empty.io": ""},
            "HttpHeaders": {"User-Agent": "Docker-Client"},
        },
    )


def test_inline_credentials_are_named_by_registry(leaky_config: Path) -> None:
    result = collect(_target(leaky_config), CollectOptions())
    assert (result.target, result.kind, set(result.facts)) == ("laptop", "docker-config", {DOCKER_CONFIG})
    fact = result.facts[DOCKER_CONFIG]
    assert fact.state is FactState.OK
    assert fact.source == f"file {leaky_config}"
    value = fact.value
    assert value.path == str(leaky_config)
    assert value.plaintext_registries == (
        "10.0.0.5:5000",
        "ghcr.io",
        "index.docker.io",
        "registry.example.com:5000",
    )
    assert value.creds_store == "desktop"
    assert dict(value.cred_helpers) == {"123456789012.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"}


def test_canary_secret_never_appears_in_the_facts(leaky_config: Path) -> None:
    result = collect(_target(leaky_config), CollectOptions())
    text = repr(result)
    assert CANARY not in text
    assert CANARY_AUTH not in text
    assert "ci-bot" not in text  # not even the username


def test_canary_never_appears_in_a_json_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    before_error = '    "r.example.com": {"auth": "' + CANARY + '" '
    path.write_text('{\n  "auths": {\n' + before_error + '"oops"}\n  }\n}\n')
    fact = read_docker_config(path)
    assert fact.state is FactState.ERROR
    column = len(before_error) + 1
    assert fact.detail == f"{path}: not valid JSON: Expecting ',' delimiter at line 3 column {column}"
    assert CANARY not in repr(fact)


def test_store_only_config_has_no_plaintext(tmp_path: Path) -> None:
    path = _write(tmp_path / "config.json", {"auths": {"ghcr.io": {}}, "credsStore": "pass"})
    value = read_docker_config(path).value
    assert (value.plaintext_registries, value.creds_store, dict(value.cred_helpers)) == ((), "pass", {})


def test_empty_object_and_empty_store_name(tmp_path: Path) -> None:
    value = read_docker_config(_write(tmp_path / "config.json", {"credsStore": ""})).value
    assert (value.plaintext_registries, value.creds_store, dict(value.cred_helpers)) == ((), None, {})


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    fact = collect(_target(tmp_path / "nope.json"), CollectOptions()).facts[DOCKER_CONFIG]
    assert fact.state is FactState.ERROR
    assert fact.detail == f"no such file: {tmp_path / 'nope.json'}"


def test_directory_instead_of_file_is_an_error(tmp_path: Path) -> None:
    fact = read_docker_config(tmp_path)
    assert fact.state is FactState.ERROR
    assert fact.detail == f"{tmp_path} is a directory, not a config file"


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], "expected a JSON object at the top level"),
        ({"auths": []}, "'auths' must be an object"),
        ({"auths": {"https://r.example.com/v1/": "secret"}}, "'auths' entry for 'r.example.com' must be an object"),
        ({"credsStore": 3}, "'credsStore' must be a string"),
        ({"credHelpers": {"r": 1}}, "'credHelpers' must map registry names to helper names"),
        ({"credHelpers": []}, "'credHelpers' must map registry names to helper names"),
    ],
)
def test_wrong_shapes_are_errors_naming_the_key(tmp_path: Path, document: object, problem: str) -> None:
    path = _write(tmp_path / "config.json", document)
    fact = read_docker_config(path)
    assert fact.state is FactState.ERROR
    assert fact.detail == f"{path}: {problem}"
    assert "secret" not in (fact.detail or "").replace(str(tmp_path), "")


def test_docker_config_env_replaces_only_the_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_dir = tmp_path / "env-docker"
    env_dir.mkdir()
    _write(env_dir / "config.json", {"auths": {"env.example.com": {"auth": CANARY_AUTH}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(env_dir))

    default = collect(_target(Path("~/.docker/config.json")), CollectOptions()).facts[DOCKER_CONFIG]
    assert default.value.plaintext_registries == ("env.example.com",)
    expanded = collect(_target(Path("~/.docker/config.json").expanduser()), CollectOptions())
    assert expanded.facts[DOCKER_CONFIG].value.path == str(env_dir / "config.json")

    explicit = _write(tmp_path / "explicit.json", {"auths": {}})
    fact = collect(_target(explicit), CollectOptions()).facts[DOCKER_CONFIG]
    assert fact.value.path == str(explicit)


def test_config_path_without_env_is_the_expanded_default() -> None:
    assert config_path(Path("~/.docker/config.json"), {}) == Path("~/.docker/config.json").expanduser()
    assert config_path(Path("~/.docker/config.json"), {"DOCKER_CONFIG": ""}) == Path(
        "~/.docker/config.json"
    ).expanduser()


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"auths": {"a.io": {"password": CANARY}}}).encode())
    assert read_docker_config(path).value.plaintext_registries == ("a.io",)
