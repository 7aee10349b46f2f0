"""GHCR components: the publish workflow text (validated against GitHub's workflow
schema, steps checked) and the org settings / workflow file under Pulumi mocks."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.resources import files
from typing import Any

import jsonschema
import pulumi
import pytest
import yaml

from components.ghcr import (
    GhcrOrgSettings,
    GhcrOrgSettingsArgs,
    GhcrPublishWorkflow,
    GhcrPublishWorkflowArgs,
    parse_registry,
    publish_workflow,
)
from components.stack_config import StackConfigError, StackContext
from tests.pulumi.mocks import ProgramRun

SHA = "0123456789abcdef0123456789abcdef01234567"
ARGS = GhcrPublishWorkflowArgs(repository="api", image="api", owner="Acme")


def workflow_schema() -> dict[str, Any]:
    """check-jsonschema's vendored copy of the GitHub workflow schema (offline)."""
    text = files("check_jsonschema.builtin_schemas.vendor").joinpath("github-workflows.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate(text: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(text)
    validator_class = jsonschema.validators.validator_for(workflow_schema())
    validator_class(workflow_schema()).validate(document)
    return document


def steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = document["jobs"]["publish"]["steps"]
    return result


@pytest.mark.parametrize("signing", ["keyless", "key"])
def test_the_workflow_is_valid_against_githubs_schema(signing: str) -> None:
    args = GhcrPublishWorkflowArgs(repository="api", image="api", owner="acme", signing=signing)  # type: ignore[arg-type]
    validate(publish_workflow(args))


def test_the_schema_check_is_real() -> None:
    broken = yaml.safe_load(publish_workflow(ARGS))
    del broken["jobs"]["publish"]["steps"][0]["uses"]  # a step with neither `uses` nor `run`
    with pytest.raises(jsonschema.ValidationError):
        validate(yaml.safe_dump(broken))


def test_it_signs_the_pushed_digest_with_cosign_and_attaches_provenance() -> None:
    document = validate(publish_workflow(ARGS))
    all_steps = steps(document)
    build = next(s for s in all_steps if s.get("id") == "build")
    assert "push-by-digest=true" in build["with"]["outputs"] and build["with"]["provenance"] == "mode=max"
    assert "tags" not in build["with"]  # tags come after, pointed at the pushed digest
    tagging = next(s for s in all_steps if "imagetools create" in s.get("run", ""))
    assert "ghcr.io/acme/api@${DIGEST}" in tagging["run"] and all_steps.index(tagging) > all_steps.index(build)
    sign = next(s for s in all_steps if "cosign sign" in s.get("run", ""))
    assert "ghcr.io/acme/api@${DIGEST}" in sign["run"] and sign["env"]["DIGEST"] == "${{ steps.build.outputs.digest }}"
    assert any(s.get("uses", "").startswith("sigstore/cosign-installer@") for s in all_steps)
    attest = next(s for s in all_steps if s.get("uses", "").startswith("actions/attest-build-provenance@"))
    assert attest["with"]["subject-digest"] == "${{ steps.build.outputs.digest }}"
    assert document["jobs"]["publish"]["permissions"] == {
        "contents": "read", "packages": "write", "id-token": "write", "attestations": "write"
    }
    assert document["permissions"] == {}  # nothing beyond the one job's grant


def test_latest_is_tagged_only_on_the_default_branch() -> None:
    document = validate(publish_workflow(ARGS))
    meta = next(s for s in steps(document) if s.get("id") == "meta")
    rules = meta["with"]["tags"].split()
    latest = [r for r in rules if "latest" in r]
    assert latest == ["type=raw,value=latest,enable={{is_default_branch}}"]
    assert meta["with"]["flavor"] == "latest=false"  # metadata-action's own automatic latest is off
    assert document["on"]["push"] == {"branches": ["main"], "tags": ["v*"]}
    without = GhcrPublishWorkflowArgs("api", "api", "acme", latest_on_default_branch=False)
    no_latest = validate(publish_workflow(without))
    assert "latest," not in next(s for s in steps(no_latest) if s.get("id") == "meta")["with"]["tags"]


def test_key_signing_reads_the_key_from_an_actions_secret() -> None:
    args = GhcrPublishWorkflowArgs("api", "api", "acme", signing="key", provenance=False)
    document = validate(publish_workflow(args))
    sign = next(s for s in steps(document) if "cosign sign" in s.get("run", ""))
    assert "--key env://COSIGN_KEY" in sign["run"]
    assert sign["env"]["COSIGN_KEY"] == "${{ secrets.COSIGN_PRIVATE_KEY }}"
    assert "id-token" not in document["jobs"]["publish"]["permissions"]


def test_sha_pinning_refuses_tag_pins_and_accepts_commit_shas() -> None:
    with pytest.raises(ValueError, match="require_sha_pins: pin"):
        GhcrPublishWorkflowArgs("api", "api", "acme", require_sha_pins=True)
    pins = {step: f"{ref.split('@')[0]}@{SHA}" for step, ref in ARGS.actions().items()}
    pinned = GhcrPublishWorkflowArgs("api", "api", "acme", action_pins=pins, require_sha_pins=True)
    uses = [s["uses"] for s in steps(validate(publish_workflow(pinned))) if "uses" in s]
    assert uses and all(u.endswith("@" + SHA) for u in uses)


def _org_and_workflow(mocked: Callable[..., ProgramRun]) -> ProgramRun:
    def program() -> None:
        settings = GhcrOrgSettings("acme", GhcrOrgSettingsArgs("acme"))
        flow = GhcrPublishWorkflow("api", GhcrPublishWorkflowArgs("api", "api", "acme", visibility="public"),
                                   pulumi.ResourceOptions(depends_on=[settings]))
        pulumi.export("visibility", flow.intended_visibility)

    return mocked(program, {})


def test_org_actions_policy_is_read_only_and_selected_actions(mocked: Callable[..., ProgramRun]) -> None:
    run = _org_and_workflow(mocked)
    component = run.one("regguard:ghcr:GhcrOrgSettings")
    assert {r.parent_urn for r in run.children_of(component)} == {component.urn}
    workflow = run.one("github:index/actionsOrganizationWorkflowPermissions:ActionsOrganizationWorkflowPermissions")
    assert workflow.inputs["defaultWorkflowPermissions"] == "read"
    assert workflow.inputs["canApprovePullRequestReviews"] is False
    actions = run.one("github:index/actionsOrganizationPermissions:ActionsOrganizationPermissions").inputs
    assert actions["allowedActions"] == "selected"
    assert actions["allowedActionsConfig"]["githubOwnedAllowed"] is True
    oidc = run.one(
        "github:index/actionsOrganizationOidcSubjectClaimCustomizationTemplate:"
        "ActionsOrganizationOidcSubjectClaimCustomizationTemplate"
    ).inputs
    assert oidc["includeClaimKeys"] == ["repo", "context", "job_workflow_ref"]


def test_the_workflow_file_is_committed_and_visibility_recorded(mocked: Callable[..., ProgramRun]) -> None:
    run = _org_and_workflow(mocked)
    component = run.one("regguard:ghcr:GhcrPublishWorkflow")
    file = run.one("github:index/repositoryFile:RepositoryFile")
    assert file.parent_urn == component.urn
    assert file.inputs["file"] == ".github/workflows/publish-api.yml" and file.inputs["branch"] == "main"
    validate(file.inputs["content"])
    assert run.exports["visibility"] == "public"


def test_the_provisioner_declares_the_audit_target() -> None:
    entry = {"name": "gh", "kind": "ghcr", "owner": "acme",
             "packages": [{"image": "api", "repository": "api"}, {"image": "web", "repository": "web",
                                                                  "visibility": "public"}]}
    spec = parse_registry(entry, StackContext("prod", lambda key: None), "regguard:registries[0]")
    assert spec.audit_targets() == [{
        "name": "gh", "kind": "ghcr", "owner": "acme", "owner_type": "org", "token_env": "GHCR_AUDIT_TOKEN",
        "packages": ["api", "web"], "public_repositories": ["web"],
    }]
    with pytest.raises(StackConfigError, match=r"registries\[0\]\.default_workflow_permissions"):
        parse_registry({**entry, "default_workflow_permissions": "admin"}, StackContext("prod", lambda key: None),
                       "regguard:registries[0]")


def test_the_program_declares_a_ghcr_entry_and_exports_its_audit_target(
    program: Any, mocked: Callable[..., ProgramRun]
) -> None:
    registries = [{"name": "oss", "kind": "ghcr", "owner": "acme",
                   "packages": [{"image": "cli", "repository": "cli", "visibility": "public"}]}]
    config = {"regguard:environment": "prod", "regguard:registries": json.dumps(registries)}
    run = mocked(program.main, config, stack="prod")
    assert run.one("regguard:ghcr:GhcrPublishWorkflow").name == "oss-cli"
    (target,) = run.exports["auditConfig"]["targets"]
    assert target["kind"] == "ghcr" and target["public_repositories"] == ["cli"]
