"""The discovery-document contract the GAR emulator holds itself to: schemas
converted to JSON Schema validate real bodies and refuse broken ones, only
documented methods and query parameters are accepted, and the emulator answers
a broken body with a 500 naming the violation instead of sending it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sandbox.apispec import SpecViolation
from sandbox.discovery import DiscoveryDocument, to_json_schema
from sandbox.gar_emulator import SPEC_PATH, EmulatedRepository, GarEmulator
from sandbox.gar_estate import PROJECT, compliant_settings

SPEC = DiscoveryDocument.load(SPEC_PATH)
REPO = f"projects/{PROJECT}/locations/europe/repositories/release"


def test_discovery_types_become_json_schema() -> None:
    converted = to_json_schema(
        {"type": "object", "properties": {"n": {"type": "string", "format": "int64"}, "r": {"$ref": "Expr"},
                                          "m": {"type": "object", "additionalProperties": {"type": "boolean"}},
                                          "a": {"type": "any"}, "e": {"type": "string", "enum": ["A", "B"]}}}
    )
    assert converted["properties"]["n"] == {"type": "string"}  # 64-bit integers travel as strings
    assert converted["properties"]["r"] == {"$ref": "#/definitions/Expr"}
    assert converted["properties"]["m"]["additionalProperties"] == {"type": "boolean"}
    assert converted["properties"]["a"] == {} and converted["properties"]["e"]["enum"] == ["A", "B"]


def test_a_valid_repository_passes_and_a_broken_one_is_refused() -> None:
    body = {"name": REPO, **compliant_settings(PROJECT, "europe")}
    SPEC.check_schema("Repository", body)
    broken = {**body, "dockerConfig": {"immutableTags": "yes"}}
    with pytest.raises(SpecViolation, match="dockerConfig/immutableTags"):
        SPEC.check_schema("Repository", broken)
    with pytest.raises(SpecViolation, match="format"):
        SPEC.check_schema("Repository", {**body, "format": "DOCKERISH"})


def test_methods_are_matched_by_their_documented_paths() -> None:
    policy = SPEC.method("GET", f"/v1/{REPO}:getIamPolicy")
    assert policy is not None and policy.id.endswith("repositories.getIamPolicy")
    get = SPEC.method("GET", f"/v1/{REPO}")
    assert get is not None and get.id.endswith("repositories.get")
    assert SPEC.method("GET", f"/v1/{REPO}/secrets") is None
    with pytest.raises(SpecViolation, match="undocumented query"):
        SPEC.check_request("GET", f"/v1/{REPO}/dockerImages", {"pageSize": "10", "limit": "5"})
    SPEC.check_request("GET", f"/v1/{REPO}/dockerImages", {"pageSize": "10", "$alt": "json;enum-encoding=int"})


def _get(url: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"Authorization": "Bearer nope"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback emulator
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_emulator_refuses_undocumented_paths_and_unauthenticated_calls(tmp_path: Path) -> None:
    with GarEmulator(PROJECT, tmp_path) as emu:
        status, body = _get(f"{emu.url}/v1/{REPO}/secrets")
        assert status == 404 and emu.violations and "not a documented method" in emu.violations[0]
        status, body = _get(f"{emu.url}/v1/projects/{PROJECT}/projectSettings")
        assert status == 401 and body["error"]["status"] == "UNAUTHENTICATED"  # type: ignore[index]


def test_the_emulator_never_sends_a_body_the_document_refuses(tmp_path: Path) -> None:
    with GarEmulator(PROJECT, tmp_path) as emu:
        settings = {**compliant_settings(PROJECT, "europe"), "cleanupPolicyDryRun": "no"}  # a broken body
        emu.add_repository(EmulatedRepository("europe", "release", settings))
        emu.authorized = lambda header: True  # type: ignore[method-assign]
        status, body = _get(f"{emu.url}/v1/projects/{PROJECT}/locations/europe/repositories")
        assert status == 500 and "cleanupPolicyDryRun" in str(body)
        assert any("cleanupPolicyDryRun" in v for v in emu.violations)
