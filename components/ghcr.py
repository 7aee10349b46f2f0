"""GitHub Container Registry components (pulumi-github): what GitHub lets code
manage around GHCR.

`GhcrOrgSettings` sets the organization's Actions policy: the default
`GITHUB_TOKEN` is read-only (`packages: write` is granted per workflow, in the
workflow file, never org-wide), workflows cannot approve pull requests, only
selected actions run (GitHub-owned plus listed patterns, SHA pinning required
when asked), and the OIDC subject claim names repository, context and the job's
workflow so a cloud trust policy can tell publish jobs apart.

`GhcrPublishWorkflow` commits `.github/workflows/publish-<image>.yml`
(`RepositoryFile`): it builds with Buildx and pushes **by digest**, points the
version tags at that digest, signs the digest with cosign (keyless through the job's OIDC token, or with a
key from an Actions secret), attaches build provenance, and tags `latest` only
on the default branch (never from another branch). The text is built by the
pure `publish_workflow(...)` so tests validate it against the GitHub workflow
JSON schema without the Pulumi engine.

Package visibility has no write API: the component records the intended
visibility (output and audit target `public_repositories`), and the audit
compares it with what GHCR reports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_github as github
import yaml

from components import stack_config as sc
from components.stack_config import StackConfigError, StackContext

REGISTRY = "ghcr.io"
DEFAULT_CLAIM_KEYS = ("repo", "context", "job_workflow_ref")
# Actions the publish workflow uses, at their major-version tags; an org that
# requires SHA pinning passes `action_pins` with full commit SHAs instead.
DEFAULT_ACTIONS: Mapping[str, str] = {
    "checkout": "actions/checkout@v4",
    "buildx": "docker/setup-buildx-action@v3",
    "login": "docker/login-action@v3",
    "metadata": "docker/metadata-action@v5",
    "build": "docker/build-push-action@v6",
    "cosign": "sigstore/cosign-installer@v3",
    "provenance": "actions/attest-build-provenance@v2",
}
_SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
_IMAGE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")


@dataclass(frozen=True)
class GhcrOrgSettingsArgs:
    organization: str
    default_workflow_permissions: Literal["read", "write"] = "read"
    can_approve_pull_request_reviews: bool = False
    allowed_action_patterns: tuple[str, ...] = ("sigstore/cosign-installer@*", "docker/*")
    verified_creators_allowed: bool = False
    sha_pinning_required: bool = False
    oidc_claim_keys: tuple[str, ...] = DEFAULT_CLAIM_KEYS

    def __post_init__(self) -> None:
        if not _OWNER.match(self.organization):
            raise ValueError(f"organization {self.organization!r}: a GitHub login (letters, digits, '-')")
        if not self.oidc_claim_keys:
            raise ValueError("oidc_claim_keys: at least one claim (e.g. 'repo')")
        if self.default_workflow_permissions not in ("read", "write"):
            raise ValueError("default_workflow_permissions: 'read' (recommended) or 'write'")


@dataclass(frozen=True)
class GhcrPublishWorkflowArgs:
    repository: str  # the repository (name, in the organization) whose workflow publishes the image
    image: str  # the package name: ghcr.io/<owner>/<image>
    owner: str
    default_branch: str = "main"
    signing: Literal["keyless", "key"] = "keyless"
    cosign_key_secret: str = "COSIGN_PRIVATE_KEY"  # Actions secret names, only for signing="key"
    cosign_password_secret: str = "COSIGN_PASSWORD"
    provenance: bool = True
    latest_on_default_branch: bool = True
    visibility: Literal["private", "public"] = "private"  # intended; GHCR has no API to set it
    action_pins: Mapping[str, str] = field(default_factory=dict)
    require_sha_pins: bool = False

    def __post_init__(self) -> None:
        if not _IMAGE.match(self.image):
            raise ValueError(f"image {self.image!r}: lower-case OCI repository name")
        if self.signing not in ("keyless", "key") or self.visibility not in ("private", "public"):
            raise ValueError("signing: 'keyless' or 'key'; visibility: 'private' or 'public'")
        unknown = sorted(set(self.action_pins) - set(DEFAULT_ACTIONS))
        if unknown:
            raise ValueError(f"action_pins: unknown step(s) {unknown}; expected {sorted(DEFAULT_ACTIONS)}")
        if self.require_sha_pins:
            loose = [k for k, v in self.actions().items() if not _SHA_PIN.match(v)]
            if loose:
                raise ValueError(f"require_sha_pins: pin {loose} as owner/repo@<40-hex commit SHA> in action_pins")

    def actions(self) -> dict[str, str]:
        return {**DEFAULT_ACTIONS, **self.action_pins}

    @property
    def image_ref(self) -> str:
        return f"{REGISTRY}/{self.owner.lower()}/{self.image}"

    @property
    def path(self) -> str:
        return f".github/workflows/publish-{self.image.replace('/', '-')}.yml"


def _tag_step(args: GhcrPublishWorkflowArgs) -> dict[str, Any]:
    """Tags point at the digest that was pushed (and is signed next), never at a rebuild."""
    return {
        "name": "Tag the pushed digest",
        "env": {"DIGEST": "${{ steps.build.outputs.digest }}", "TAGS": "${{ steps.meta.outputs.tags }}"},
        "run": (
            "for tag in $TAGS; do\n"
            f'  docker buildx imagetools create --tag "$tag" "{args.image_ref}@${{DIGEST}}"\n'
            "done\n"
        ),
    }


def _sign_step(args: GhcrPublishWorkflowArgs) -> dict[str, Any]:
    """cosign signs `image@digest` from the build step: never a tag, which could move."""
    step: dict[str, Any] = {
        "name": "Sign the pushed digest with cosign",
        "env": {"DIGEST": "${{ steps.build.outputs.digest }}"},
        "run": f'cosign sign --yes "{args.image_ref}@${{DIGEST}}"',
    }
    if args.signing == "key":
        step["env"].update({
            "COSIGN_KEY": f"${{{{ secrets.{args.cosign_key_secret} }}}}",
            "COSIGN_PASSWORD": f"${{{{ secrets.{args.cosign_password_secret} }}}}",
        })
        step["run"] = f'cosign sign --yes --key env://COSIGN_KEY "{args.image_ref}@${{DIGEST}}"'
    return step


def publish_workflow(args: GhcrPublishWorkflowArgs) -> str:
    """The workflow file's text (YAML)."""
    uses = args.actions()
    tag_rules = ["type=semver,pattern={{version}}", "type=sha,format=long"]
    if args.latest_on_default_branch:
        tag_rules.append("type=raw,value=latest,enable={{is_default_branch}}")
    permissions = {"contents": "read", "packages": "write"}
    if args.signing == "keyless" or args.provenance:
        permissions["id-token"] = "write"
    if args.provenance:
        permissions["attestations"] = "write"
    steps: list[dict[str, Any]] = [
        {"uses": uses["checkout"]},
        {"uses": uses["buildx"]},
        {"uses": uses["login"], "with": {"registry": REGISTRY, "username": "${{ github.actor }}",
                                          "password": "${{ secrets.GITHUB_TOKEN }}"}},
        {"id": "meta", "uses": uses["metadata"],
         "with": {"images": args.image_ref, "tags": "\n".join(tag_rules) + "\n", "flavor": "latest=false"}},
        {"id": "build", "uses": uses["build"],
         "with": {"outputs": f"type=image,name={args.image_ref},push-by-digest=true,name-canonical=true,push=true",
                  "labels": "${{ steps.meta.outputs.labels }}", "provenance": "mode=max", "sbom": True}},
        _tag_step(args),
        {"uses": uses["cosign"]},
        _sign_step(args),
    ]
    if args.provenance:
        steps.append({"uses": uses["provenance"], "with": {
            "subject-name": args.image_ref, "subject-digest": "${{ steps.build.outputs.digest }}",
            "push-to-registry": True}})
    workflow = {
        "name": f"publish {args.image}",
        "on": {"push": {"branches": [args.default_branch], "tags": ["v*"]}},
        "permissions": {},
        "concurrency": {"group": f"publish-{args.image}-${{{{ github.ref }}}}", "cancel-in-progress": False},
        "jobs": {"publish": {"runs-on": "ubuntu-latest", "permissions": permissions, "steps": steps}},
    }
    return yaml.dump(workflow, Dumper=_WorkflowDumper, sort_keys=False, width=200)


class _WorkflowDumper(yaml.SafeDumper):
    """Multi-line strings (`run:` scripts, tag rules) as literal blocks, as people write them."""


def _literal_blocks(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_WorkflowDumper.add_representer(str, _literal_blocks)


class GhcrOrgSettings(pulumi.ComponentResource):
    """The organization's Actions policy for publishing to GHCR."""

    def __init__(self, name: str, args: GhcrOrgSettingsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("regguard:ghcr:GhcrOrgSettings", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.workflow_permissions = github.ActionsOrganizationWorkflowPermissions(
            f"{name}-workflow-permissions",
            organization_slug=args.organization,
            default_workflow_permissions=args.default_workflow_permissions,
            can_approve_pull_request_reviews=args.can_approve_pull_request_reviews,
            opts=child,
        )
        self.permissions = github.ActionsOrganizationPermissions(
            f"{name}-actions",
            enabled_repositories="all",
            allowed_actions="selected",
            allowed_actions_config=github.ActionsOrganizationPermissionsAllowedActionsConfigArgs(
                github_owned_allowed=True,
                verified_allowed=args.verified_creators_allowed,
                patterns_alloweds=list(args.allowed_action_patterns),
            ),
            sha_pinning_required=args.sha_pinning_required,
            opts=child,
        )
        self.oidc_template = github.ActionsOrganizationOidcSubjectClaimCustomizationTemplate(
            f"{name}-oidc-subject", include_claim_keys=list(args.oidc_claim_keys), opts=child
        )
        self.register_outputs({"default_workflow_permissions": args.default_workflow_permissions})


class GhcrPublishWorkflow(pulumi.ComponentResource):
    """The publish workflow committed to its repository, and the intended visibility."""

    def __init__(self, name: str, args: GhcrPublishWorkflowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("regguard:ghcr:GhcrPublishWorkflow", name, None, opts)
        self.file = github.RepositoryFile(
            f"{name}-workflow",
            repository=args.repository,
            file=args.path,
            content=publish_workflow(args),
            branch=args.default_branch,
            commit_message=f"regguard: publish workflow for {args.image_ref}",
            overwrite_on_create=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.image_ref = pulumi.Output.from_input(args.image_ref)
        self.intended_visibility = pulumi.Output.from_input(args.visibility)
        self.register_outputs({"image_ref": self.image_ref, "intended_visibility": self.intended_visibility})


# --------------------------------------------------------------------- provisioner

_REGISTRY_KEYS = frozenset({
    "name", "kind", "owner", "token_env", "default_workflow_permissions", "allowed_action_patterns",
    "sha_pinning_required", "oidc_claim_keys", "packages",
})
_PACKAGE_KEYS = frozenset({"image", "repository", "visibility", "signing", "default_branch", "action_pins"})


@dataclass(frozen=True)
class GhcrRegistrySpec:
    """One `kind: ghcr` entry: the org settings and one publish workflow per package."""

    name: str
    org: GhcrOrgSettingsArgs
    workflows: tuple[GhcrPublishWorkflowArgs, ...]
    token_env: str

    def declare(self) -> dict[str, Any]:
        settings = GhcrOrgSettings(self.name, self.org)
        refs: dict[str, Any] = {}
        for workflow in self.workflows:
            resource_name = f"{self.name}-{workflow.image.replace('/', '-')}"
            component = GhcrPublishWorkflow(resource_name, workflow, pulumi.ResourceOptions(depends_on=[settings]))
            refs[workflow.image] = component.image_ref
        return refs

    def audit_targets(self) -> list[dict[str, Any]]:
        target: dict[str, Any] = {
            "name": self.name, "kind": "ghcr", "owner": self.org.organization, "owner_type": "org",
            "token_env": self.token_env, "packages": [w.image for w in self.workflows],
        }
        public = [w.image for w in self.workflows if w.visibility == "public"]
        if public:
            target["public_repositories"] = public
        return [target]


def parse_registry(raw: Any, stack: StackContext, where: str, earlier: Sequence[Any] = ()) -> GhcrRegistrySpec:
    entry = sc.mapping(raw, where, _REGISTRY_KEYS)
    name = sc.require_str(entry.get("name"), f"{where}.name")
    if not re.match(sc.TARGET_NAME_PATTERN, name):
        raise StackConfigError(f"{where}.name: letters, digits, '.', '_' and '-' only")
    owner = sc.require_str(entry.get("owner"), f"{where}.owner")
    org = sc.build(where, lambda: GhcrOrgSettingsArgs(
        organization=owner,
        default_workflow_permissions=entry.get("default_workflow_permissions", "read"),
        allowed_action_patterns=sc.str_list(
            entry.get("allowed_action_patterns"), f"{where}.allowed_action_patterns",
            default=GhcrOrgSettingsArgs.allowed_action_patterns),
        sha_pinning_required=bool(entry.get("sha_pinning_required", False)),
        oidc_claim_keys=sc.str_list(entry.get("oidc_claim_keys"), f"{where}.oidc_claim_keys",
                                    default=DEFAULT_CLAIM_KEYS),
    ))
    packages = sc.as_list(entry.get("packages"), f"{where}.packages")
    workflows = tuple(_workflow(p, org, f"{where}.packages[{i}]") for i, p in enumerate(packages))
    sc.check_unique([w.image for w in workflows], f"{where}.packages", "image")
    token_env = sc.opt_str(entry.get("token_env"), f"{where}.token_env") or "GHCR_AUDIT_TOKEN"
    return GhcrRegistrySpec(name, org, workflows, token_env)


def _workflow(raw: Any, org: GhcrOrgSettingsArgs, where: str) -> GhcrPublishWorkflowArgs:
    entry = sc.mapping(raw, where, _PACKAGE_KEYS)
    pins = sc.mapping(entry.get("action_pins", {}), f"{where}.action_pins", None)
    return sc.build(where, lambda: GhcrPublishWorkflowArgs(
        repository=sc.require_str(entry.get("repository"), f"{where}.repository"),
        image=sc.require_str(entry.get("image"), f"{where}.image"),
        owner=org.organization,
        default_branch=sc.opt_str(entry.get("default_branch"), f"{where}.default_branch") or "main",
        signing=entry.get("signing", "keyless"),
        visibility=entry.get("visibility", "private"),
        action_pins={str(k): str(v) for k, v in pins.items()},
        require_sha_pins=org.sha_pinning_required,
    ))
