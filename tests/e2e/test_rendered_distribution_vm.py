"""The prod stack's Distribution VM configuration really works: the user data
the program renders (under Pulumi mocks, whose bcrypt hashes are real) is
served by the real `docker-registry` on loopback with test certificates in
place of pulumi-tls's, and audited. Every TLS and AUTH rule passes and the
signature is found; a weakened copy (no TLS, one shared account) fails the
rules that say so."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pulumi
import pytest
import yaml

from audits.config import parse_config
from audits.engine import run_audit
from audits.model import Status
from components.distribution_vm import CONFIG_PATH, HTPASSWD_PATH, written_files
from sandbox.distribution_vm import serve_rendered
from sandbox.images import build_image
from sandbox.pusher import OciPusher
from sandbox.registry import RunningRegistry
from sandbox.signing import KeyPair, generate_key_pair, sign_image
from tests.pulumi.mocks import mock_password, run_program, stack_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VM = "edge"
AUDITOR, PUBLISHER = "regguard-auditor", "ci-release-publisher"


def _program() -> ModuleType:
    spec = importlib.util.spec_from_file_location("regguard_program_e2e", ROOT / "__main__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def prod_user_data() -> str:
    """The prod VM's user data exactly as `pulumi up` would hand it to EC2."""
    try:
        run = run_program(_program().main, stack_config(ROOT / "stacks" / "Pulumi.prod.yaml"), stack="prod")
    finally:
        pulumi.runtime.settings.set_root_resource(None)
    (instance,) = [r for r in run.resources if r.type == "aws:ec2/instance:Instance" and r.name == f"{VM}-vm"]
    text = instance.inputs["userData"]["value"]
    assert isinstance(text, str)
    return text


def _weakened(user_data: str) -> str:
    """The same user data with TLS removed and one account left for everybody."""
    document = yaml.safe_load(user_data)
    for entry in document["write_files"]:
        if entry["path"] == CONFIG_PATH:
            config = yaml.safe_load(entry["content"])
            del config["http"]["tls"]
            entry["content"] = yaml.safe_dump(config)
        elif entry["path"] == HTPASSWD_PATH:
            entry["content"] = entry["content"].splitlines(keepends=True)[0]
    return "#cloud-config\n" + yaml.safe_dump(document)


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    return generate_key_pair(tmp_path / "keys", "release")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[RunningRegistry]]:
    running: list[RunningRegistry] = []
    try:
        yield running
    finally:
        for registry in running:
            registry.stop()


def _start(user_data: str, user: str, tmp_path: Path, running: list[RunningRegistry]) -> RunningRegistry:
    registry = serve_rendered(VM, user_data, tmp_path / "work", username=user, password=mock_password(f"{VM}-{user}"))
    running.append(registry)
    return registry


def _audit(registry: RunningRegistry, keys: KeyPair, monkeypatch: pytest.MonkeyPatch) -> dict[str, set[Status]]:
    for name, value in registry.env.items():
        monkeypatch.setenv(name, value)
    raw = {"environment": "prod", "trusted_keys": [str(keys.public_key)], "targets": registry.targets}
    run = run_audit(parse_config(raw, registry.config_file.parent / "regguard.yaml"), concurrency=4)
    statuses: dict[str, set[Status]] = {}
    for finding in run.result.findings:
        statuses.setdefault(finding.rule, set()).add(finding.status)
    return statuses


def test_the_rendered_prod_config_passes_every_tls_and_auth_rule_with_signatures_found(
    prod_user_data: str, tmp_path: Path, serve: list[RunningRegistry], keys: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = _start(prod_user_data, AUDITOR, tmp_path, serve)
    publisher = OciPusher(registry.url, username=PUBLISHER, password=mock_password(f"{VM}-{PUBLISHER}"),
                          ca_file=registry.ca_file)
    (digest,) = publisher.push_many_sync([("app/api", "v1.0.0", build_image("vm-e2e-api"))])
    sign_image(publisher, "app/api", digest, keys.private_key)

    statuses = _audit(registry, keys, monkeypatch)
    tls_and_auth = {rule: s for rule, s in statuses.items() if rule.startswith(("RG-TLS-", "RG-AUTH-"))}
    assert set(tls_and_auth) == {"RG-TLS-001", "RG-TLS-002", "RG-TLS-003", "RG-AUTH-001", "RG-AUTH-002", "RG-AUTH-003"}
    assert all(s == {Status.PASS} for s in tls_and_auth.values()), tls_and_auth
    assert statuses["RG-SIGN-001"] == {Status.PASS} and statuses["RG-SIGN-002"] == {Status.PASS}
    assert statuses["RG-MON-001"] == {Status.PASS}  # the notifications endpoint


def test_a_weakened_copy_fails_the_rules_that_say_so(
    prod_user_data: str, tmp_path: Path, serve: list[RunningRegistry], keys: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = _start(_weakened(prod_user_data), PUBLISHER, tmp_path, serve)
    assert registry.url.startswith("http://")
    statuses = _audit(registry, keys, monkeypatch)
    assert Status.FAIL in statuses["RG-TLS-001"]  # plain HTTP
    assert Status.FAIL in statuses["RG-AUTH-002"]  # Basic auth over plain HTTP
    assert Status.FAIL in statuses["RG-AUTH-003"]  # one account shared by every client
    assert statuses["RG-AUTH-001"] == {Status.PASS}  # still no anonymous access


def test_user_data_hashes_belong_to_the_generated_passwords(prod_user_data: str) -> None:
    import bcrypt

    lines = dict(line.split(":", 1) for line in written_files(prod_user_data)[HTPASSWD_PATH].splitlines())
    assert bcrypt.checkpw(mock_password(f"{VM}-{AUDITOR}").encode(), lines[AUDITOR].encode())
    assert not bcrypt.checkpw(mock_password(f"{VM}-{PUBLISHER}").encode(), lines[AUDITOR].encode())
