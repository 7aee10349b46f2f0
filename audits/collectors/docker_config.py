"""Collector for `docker-config` targets: the Docker client's `config.json`.

Reports which registries have a credential written into the file itself
(`auths.<registry>.auth`, `password`, `identitytoken` or `registrytoken`),
and which credential store / helpers are configured. It reads secrets only to
see whether they are empty: no value is ever copied into a fact, an error
message or a log, only registry names (RG-CRED-003 judges them).

As the Docker CLI does, `$DOCKER_CONFIG/config.json` replaces the default
`~/.docker/config.json`; a path configured explicitly is read as given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audits.collectors.base import CollectOptions
from audits.model import DOCKER_CONFIG, DockerClientConfigFacts, Fact, TargetFacts, utcnow
from audits.targets import DockerConfigTarget

DEFAULT_PATH = Path("~/.docker/config.json")
# Keys of an `auths` entry whose non-empty value is a usable secret.
SECRET_KEYS = ("auth", "password", "identitytoken", "registrytoken")


class _ConfigProblem(Exception):
    """A one-line reason the file cannot be used; never carries file content."""


def collect(target: DockerConfigTarget, options: CollectOptions) -> TargetFacts:
    """Read the client config; the only fact is `DOCKER_CONFIG`."""
    started = utcnow()
    path = config_path(target.path, os.environ)
    fact = read_docker_config(path)
    options.report("docker config read", 1, 1)
    return TargetFacts(
        target=target.name,
        kind=target.kind,
        facts={DOCKER_CONFIG: fact},
        started_at=started,
        finished_at=utcnow(),
    )


def config_path(configured: Path, environ: Mapping[str, str]) -> Path:
    """The file the Docker CLI would read: `$DOCKER_CONFIG/config.json` when
    the target keeps the default path, otherwise the configured path."""
    default = DEFAULT_PATH.expanduser()
    configured = configured.expanduser()
    docker_config_dir = environ.get("DOCKER_CONFIG", "")
    if configured == default and docker_config_dir:
        return Path(docker_config_dir).expanduser() / "config.json"
    return configured


def read_docker_config(path: Path) -> Fact[DockerClientConfigFacts]:
    source = f"file {path}"
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return Fact.error(f"no such file: {path}", source)
    except IsADirectoryError:
        return Fact.error(f"{path} is a directory, not a config file", source)
    except OSError as exc:
        return Fact.error(f"cannot read {path}: {exc.strerror or type(exc).__name__}", source)
    except UnicodeDecodeError:
        return Fact.error(f"{path} is not UTF-8 text", source)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        # exc.msg is the parser's phrase ("Expecting ',' delimiter"); exc.doc
        # (the file content) must not leak into the message.
        return Fact.error(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", source)
    try:
        facts = _facts(document, path)
    except _ConfigProblem as exc:
        return Fact.error(f"{path}: {exc}", source)
    return Fact.ok(facts, source)


def _facts(document: Any, path: Path) -> DockerClientConfigFacts:
    if not isinstance(document, dict):
        raise _ConfigProblem("expected a JSON object at the top level")
    auths = document.get("auths")
    auths = {} if auths is None else auths
    if not isinstance(auths, dict):
        raise _ConfigProblem("'auths' must be an object")
    plaintext = sorted({_hostname(key) for key, entry in auths.items() if _has_inline_secret(key, entry)})
    creds_store = document.get("credsStore")
    if creds_store is not None and not isinstance(creds_store, str):
        raise _ConfigProblem("'credsStore' must be a string")
    helpers = document.get("credHelpers")
    helpers = {} if helpers is None else helpers
    if not isinstance(helpers, dict) or not all(isinstance(v, str) for v in helpers.values()):
        raise _ConfigProblem("'credHelpers' must map registry names to helper names")
    return DockerClientConfigFacts(
        path=str(path),
        plaintext_registries=tuple(plaintext),
        creds_store=creds_store or None,
        cred_helpers={str(k): v for k, v in helpers.items() if v},
    )


def _has_inline_secret(registry: str, entry: Any) -> bool:
    if not isinstance(entry, dict):
        raise _ConfigProblem(f"'auths' entry for {_hostname(registry)!r} must be an object")
    return any(entry.get(key) not in (None, "") for key in SECRET_KEYS)


def _hostname(key: str) -> str:
    """The registry host of an `auths` key, as the Docker CLI's
    `ConvertToHostname` derives it (`https://index.docker.io/v1/` ->
    `index.docker.io`)."""
    host = key
    for scheme in ("http://", "https://"):
        if host.startswith(scheme):
            host = host[len(scheme) :]
            break
    return host.split("/", 1)[0]
