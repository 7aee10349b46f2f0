"""The GitHub emulator holds itself to the committed upstream description: what it
serves validates, a broken body is refused, an undocumented path is not served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.certs import server_certificate
from sandbox.github_emulator import GitHubEmulator, GitHubState, Owner, Package, Token, Version

TOKEN = "github_pat_" + "a" * 30
DIGEST = "sha256:" + "b" * 64


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[GitHubEmulator]:
    owner = Owner("acme", "org")
    version = Version(1, DIGEST, ["v1.0.0"], "2026-01-02T03:04:05Z")
    owner.packages["api"] = Package("api", "private", "acme/api", [version])
    state = GitHubState(owners={"acme": owner}, tokens={TOKEN: Token("fine-grained", (), None, True)})
    cert = server_certificate(tmp_path / "certs", "github-api")
    served = GitHubEmulator(state, cert.cert_file, cert.key_file)
    yield served
    served.stop()


AUTH = {"authorization": f"Bearer {TOKEN}"}


def test_documented_answers_validate(emulator: GitHubEmulator) -> None:
    status, body, headers = emulator.answer("GET", "/orgs/acme/packages?package_type=container", AUTH)
    assert status == 200 and body[0]["name"] == "api" and headers["X-RateLimit-Limit"] == "5000"
    status, body, _ = emulator.answer("GET", "/orgs/acme/packages/container/api/versions?per_page=100", AUTH)
    assert status == 200 and body[0]["metadata"]["container"]["tags"] == ["v1.0.0"]
    status, body, _ = emulator.answer("GET", "/orgs/acme/actions/permissions/workflow", AUTH)
    assert status == 200 and body == {"default_workflow_permissions": "read", "can_approve_pull_request_reviews": False}


def test_a_body_the_description_does_not_allow_is_refused(emulator: GitHubEmulator) -> None:
    emulator.state.owners["acme"].packages["api"].visibility = "internal"  # not in the `package` enum
    status, body, _ = emulator.answer("GET", "/orgs/acme/packages?package_type=container", AUTH)
    assert status == 500 and "refused its own answer" in body["message"] and "visibility" in body["message"]


def test_undocumented_paths_and_parameters_are_not_served(emulator: GitHubEmulator) -> None:
    assert emulator.answer("GET", "/orgs/acme/repos", AUTH)[0] == 400
    assert emulator.answer("GET", "/orgs/acme/packages?package_type=container&sort=name", AUTH)[0] == 400


def test_an_unknown_token_is_a_401_with_githubs_error_shape(emulator: GitHubEmulator) -> None:
    status, body, _ = emulator.answer("GET", "/orgs/acme/packages?package_type=container", {})
    assert status == 401 and body["message"] == "Bad credentials"
