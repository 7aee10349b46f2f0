"""The airgapped stack's Harbor under Pulumi mocks: a hardened VM, hardened
projects, finite least-privilege robots, replication and LDAP in production;
opt-outs as project labels; a bad entry fails naming its key."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from audits.config import parse_config
from components.harbor_vm import harbor_yml_of
from tests.pulumi.mocks import ProgramRun

RunStack = Callable[..., ProgramRun]
PROJECT = "harbor:index/project:Project"
ROBOT = "harbor:index/robotAccount:RobotAccount"
IMMUTABLE = "harbor:index/immutableTagRule:ImmutableTagRule"
RETENTION = "harbor:index/retentionPolicy:RetentionPolicy"
LABEL = "harbor:index/label:Label"
INSTANCE = "aws:ec2/instance:Instance"


def harbor_entry(config: dict[str, Any]) -> dict[str, Any]:
    (entry,) = [e for e in config["regguard:registries"] if e["kind"] == "harbor"]
    assert isinstance(entry, dict)
    return entry


def test_the_harbor_vm_is_hardened_and_installs_from_the_mirror(run_stack: RunStack) -> None:
    run = run_stack("airgapped")
    instance = run.one(INSTANCE, "site-harbor-vm")
    assert run.by_urn(instance.parent_urn).type == "regguard:harbor:HarborVm"
    assert instance.inputs["metadataOptions"]["httpTokens"] == "required"
    assert instance.inputs["rootBlockDevice"]["encrypted"] is True
    volume = run.one("aws:ebs/volume:Volume")
    assert volume.inputs["encrypted"] is True and volume.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    user_data = instance.inputs["userData"]["value"]
    harbor_yml = harbor_yml_of(user_data)
    assert harbor_yml["harbor_admin_password"] == "mock-password-site-harbor-admin"
    assert harbor_yml["external_database"]["harbor"]["password"] == "mock-password-site-harbor-database"
    assert harbor_yml["trivy"]["offline_scan"] is True
    assert "http://mirror.site.internal.example/harbor/harbor-offline-installer-v2.15.0.tgz" in user_data
    (group,) = [r for r in run.of_type("aws:ec2/securityGroup:SecurityGroup") if r.name == "site-harbor-sg"]
    assert [(i["fromPort"], i["cidrBlocks"]) for i in group.inputs["ingress"]] == [(443, ["10.50.0.0/16"])]


def test_projects_are_private_scanned_signed_and_block_high_in_prod(run_stack: RunStack) -> None:
    run = run_stack("airgapped")
    projects = run.of_type(PROJECT)
    assert {p.inputs["name"] for p in projects} == {"platform", "apps"}
    for project in projects:
        assert project.inputs["public"] is False and project.inputs["vulnerabilityScanning"] is True
        assert project.inputs["enableContentTrustCosign"] is True
        assert project.inputs["deploymentSecurity"] == "high"
    for rule in run.of_type(IMMUTABLE):
        assert fnmatch.fnmatch("v1.2.3", rule.inputs["tagMatching"]) and "tagExcluding" not in rule.inputs
    keep = {r.name: r.inputs["rules"][0]["mostRecentlyPushed"] for r in run.of_type(RETENTION)}
    assert keep == {"site-harbor-platform-retention": 100, "site-harbor-apps-retention": 50}
    assert len(run.of_type("harbor:index/replication:Replication")) == 2
    assert run.of_type(LABEL) == []  # nothing opted out


def test_robots_expire_and_reach_their_own_project_only(run_stack: RunStack) -> None:
    run = run_stack("airgapped")
    for robot in run.of_type(ROBOT):
        assert 0 < robot.inputs["duration"] <= 365
        (permission,) = robot.inputs["permissions"]
        assert permission["kind"] == "project" and permission["namespace"] in {"platform", "apps"}
        actions = {a["action"] for a in permission["accesses"]}
        assert actions == ({"pull", "push"} if "publisher" in robot.inputs["name"] else {"pull"})


def test_system_uses_ldap_finite_robot_tokens_and_forwards_audit_logs(run_stack: RunStack) -> None:
    run = run_stack("airgapped")
    system = run.one("harbor:index/configSystem:ConfigSystem")
    assert system.inputs["robotTokenExpiration"] == 30
    assert system.inputs["auditLogForwardEndpoint"] == "syslog.site.internal.example:514"
    assert system.inputs["skipAuditLogDatabase"] is False
    auth = run.one("harbor:index/configAuth:ConfigAuth")
    assert auth.inputs["authMode"] == "ldap_auth"
    assert auth.inputs["ldapSearchPassword"]["value"] == "ldap-bind-test-secret"  # a secret from stack config


def test_audit_config_targets_harbor_and_its_projects(run_stack: RunStack) -> None:
    run = run_stack("airgapped")
    model = parse_config(run.exports["auditConfig"], Path("stacks/Pulumi.airgapped.yaml"))
    kinds = {t.name: t.kind for t in model.targets}
    assert kinds == {"site-registry": "distribution", "site-harbor": "harbor"}
    harbor = next(t for t in run.exports["auditConfig"]["targets"] if t["kind"] == "harbor")
    assert harbor["url"] == "https://harbor.site.internal.example" and harbor["projects"] == ["platform", "apps"]


def test_staging_opt_outs_show_as_project_labels(run_stack: RunStack) -> None:
    def staging(config: dict[str, Any]) -> None:
        config["regguard:environment"] = "staging"
        project = harbor_entry(config)["projects"][1]
        project["baseline"] = {"require_signing": False, "immutable_tags": False}
        del project["replication"]

    run = run_stack("airgapped", staging)
    labels = {label.inputs["name"]: label.inputs["description"] for label in run.of_type(LABEL)}
    assert labels == {
        "regguard-opt-out-require-signing": "false",
        "regguard-opt-out-immutable-tags": "false",
        "regguard-opt-out-replication": "none",
    }
    apps = next(p for p in run.of_type(PROJECT) if p.inputs["name"] == "apps")
    assert apps.inputs["enableContentTrustCosign"] is False and apps.inputs["deploymentSecurity"] == "critical"
    mutable = run.one(IMMUTABLE, "site-harbor-apps-immutable").inputs["tagMatching"]
    assert fnmatch.fnmatch("1.2.3", "[0-9]*") and "[0-9]*" in mutable  # release tags stay immutable


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda e: e["projects"][0]["robots"][0].update(duration_days=-1),
         "regguard:registries[1].projects[0].robots[0].duration_days: a positive number of days"),
        (lambda e: e["system"].update(auth_mode="db_auth"),
         "regguard:registries[1].system.auth_mode: db_auth (local accounts) is refused in production"),
        (lambda e: e["projects"][0].pop("replication"),
         "regguard:registries[1].projects[0].replication: production projects replicate"),
        (lambda e: e["projects"][0].update(baseline={"require_signing": False}),
         "regguard:registries[1].projects[0].baseline.require_signing: production projects enforce cosign"),
        (lambda e: e["system"].pop("audit_log_forward_endpoint"),
         "regguard:registries[1].system.audit_log_forward_endpoint: required in production"),
        (lambda e: e.update(allowed_cidrs=["::/0"]),
         "regguard:registries[1].allowed_cidrs[0]: ::/0 admits the whole internet"),
        (lambda e: e["external_database"].update(ssl_mode="disable"),
         "regguard:registries[1].external_database.ssl_mode: expected one of"),
        (lambda e: e["system"]["secrets"].update(oidc_token="x"),
         "regguard:registries[1].system.secrets.oidc_token: unknown key"),
    ],
)
def test_a_bad_entry_fails_naming_the_key(
    edit: Callable[[dict[str, Any]], Any], message: str, run_stack: RunStack
) -> None:
    with pytest.raises(pulumi.RunError) as info:
        run_stack("airgapped", lambda config: edit(harbor_entry(config)))
    assert str(info.value).startswith(message), str(info.value)
