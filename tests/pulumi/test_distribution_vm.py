"""The Distribution VM component under Pulumi mocks: the prod and airgapped
stacks register a hardened VM, an opt-out shows in its tags, a bad entry
fails naming its key, and the rendered user data says what the VM runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from audits.config import parse_config
from audits.targets import DistributionTarget
from components.distribution_vm import CONFIG_PATH, HTPASSWD_PATH, written_files
from tests.pulumi.mocks import ProgramRun, RegisteredResource

RunStack = Callable[..., ProgramRun]
INSTANCE = "aws:ec2/instance:Instance"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
BUCKET_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SECRET_SIG = "4dabf18193072939515e22adb298388d"
VM = "regguard:distribution:DistributionVm"


def of_vm(run: ProgramRun, type_token: str) -> RegisteredResource:
    """The one `type_token` resource inside the stack's DistributionVm."""
    (found,) = [r for r in run.of_type(type_token) if run.by_urn(r.parent_urn).type == VM]
    return found


def user_data(run: ProgramRun) -> str:
    value = of_vm(run, INSTANCE).inputs["userData"]
    assert isinstance(value, dict) and value[SECRET_SIG], "user data holds the TLS key: it must be a secret"
    text = value["value"]
    assert isinstance(text, str)
    return text


def registry_config(run: ProgramRun) -> dict[str, Any]:
    config = yaml.safe_load(written_files(user_data(run))[CONFIG_PATH])
    assert isinstance(config, dict)
    return config


def distribution_entry(config: dict[str, Any]) -> dict[str, Any]:
    (entry,) = [e for e in config["regguard:registries"] if e["kind"] == "distribution"]
    assert isinstance(entry, dict)
    return entry


@pytest.mark.parametrize("env", ["prod", "airgapped"])
def test_stack_registers_a_hardened_vm(env: str, run_stack: RunStack) -> None:
    run = run_stack(env)
    instance = of_vm(run, INSTANCE)
    assert instance.inputs["metadataOptions"]["httpTokens"] == "required"  # IMDSv2 only
    assert instance.inputs["rootBlockDevice"]["encrypted"] is True
    assert instance.inputs["rootBlockDevice"]["kmsKeyId"].startswith("arn:aws:kms:")
    assert instance.inputs["associatePublicIpAddress"] is False
    assert instance.inputs["tags"]["regguard:managed"] == "true"
    (ingress,) = of_vm(run, SECURITY_GROUP).inputs["ingress"]
    assert ingress["fromPort"] == ingress["toPort"] == 443
    admitted = set(ingress["cidrBlocks"] + ingress.get("ipv6CidrBlocks", []))
    assert admitted and not {"0.0.0.0/0", "::/0"} & admitted
    (rule,) = run.one(BUCKET_ENCRYPTION).inputs["rules"]
    by_default = rule["applyServerSideEncryptionByDefault"]
    assert by_default["sseAlgorithm"] == "aws:kms" and by_default["kmsMasterKeyId"].startswith("arn:aws:kms:")
    assert run.one(PUBLIC_ACCESS_BLOCK).inputs["restrictPublicBuckets"] is True


def test_rendered_registry_config_is_tls_only_per_identity_with_gc_and_events(run_stack: RunStack) -> None:
    run = run_stack("prod")
    config = registry_config(run)
    assert config["http"]["tls"]["minimumtls"] == "tls1.2" and config["http"]["tls"]["certificate"]
    assert config["storage"]["delete"]["enabled"] is True
    assert config["storage"]["s3"]["encrypt"] is True and config["storage"]["s3"]["keyid"].startswith("arn:aws:kms:")
    assert [e["url"] for e in config["notifications"]["endpoints"]] == [
        "https://audit-sink.internal.example/registry-events"
    ]
    files = written_files(user_data(run))
    accounts = [line.split(":", 1)[0] for line in files[HTPASSWD_PATH].splitlines()]
    assert accounts == ["ci-release-publisher", "eks-prod-nodes", "regguard-auditor"]
    assert all(line.split(":", 1)[1].startswith("$2") for line in files[HTPASSWD_PATH].splitlines())  # bcrypt
    assert "OnCalendar=Sun *-*-* 03:00:00" in files["/etc/systemd/system/registry-gc.timer"]
    assert "garbage-collect --delete-untagged /etc/docker/registry/config.yml" in files[
        "/etc/systemd/system/registry-gc.service"
    ]
    assert "registry-gc.timer" in json.dumps(yaml.safe_load(user_data(run))["runcmd"])


def test_airgapped_installs_from_the_internal_mirror_and_stays_inside(run_stack: RunStack) -> None:
    run = run_stack("airgapped")
    document = yaml.safe_load(user_data(run))
    assert document["apt"]["primary"][0]["uri"] == "http://mirror.site.internal.example/debian"
    (egress,) = of_vm(run, SECURITY_GROUP).inputs["egress"]
    assert egress["cidrBlocks"] == ["10.50.0.0/16"]


def test_acme_renders_the_registrys_own_client(run_stack: RunStack) -> None:
    def acme(config: dict[str, Any]) -> None:
        distribution_entry(config).update(tls="acme", acme_email="platform@example.com")

    run = run_stack("prod", acme)
    tls = registry_config(run)["http"]["tls"]
    assert tls["letsencrypt"]["hosts"] == ["registry.edge.internal.example"] and "certificate" not in tls
    assert run.of_type("tls:index/locallySignedCert:LocallySignedCert") == []


def test_a_public_network_outside_prod_is_a_visible_opt_out(run_stack: RunStack) -> None:
    def staging_public(config: dict[str, Any]) -> None:
        config["regguard:environment"] = "staging"
        distribution_entry(config)["allowed_cidrs"] = ["0.0.0.0/0"]

    run = run_stack("prod", staging_public)
    tags = of_vm(run, INSTANCE).inputs["tags"]
    assert tags["regguard:opt-out:allowed_cidrs"] == "public"
    assert tags["regguard:opt-out:replicate_to"] == "none"


def test_audit_config_targets_the_vm_with_the_auditor_identity(run_stack: RunStack) -> None:
    run = run_stack("prod")
    model = parse_config(run.exports["auditConfig"], Path("stacks/Pulumi.prod.yaml"))
    (target,) = [t for t in model.targets if isinstance(t, DistributionTarget)]
    assert target.url == "https://registry.edge.internal.example"
    assert target.username_env == "REGGUARD_EDGE_USER" and target.password_env == "REGGUARD_EDGE_PASSWORD"
    assert run.exports["repositoryUrls"]["edge"] == target.url
    assert set(run.exports["edge-passwords"]) == {"ci-release-publisher", "eks-prod-nodes", "regguard-auditor"}
    assert run.exports["edge-ca-certificate"].startswith("MOCK-PEM certificate edge-ca")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda e: e.update(allowed_cidrs=["10.0.0.0/8", "0.0.0.0/0"]),
         "regguard:registries[1].allowed_cidrs[1]: 0.0.0.0/0 admits the whole internet; refused in production"),
        (lambda e: e.update(identities=["admin"]), "regguard:registries[1].identities: name one account per identity"),
        (lambda e: e.update(identities=["ci", "admin"]), "regguard:registries[1].identities[1]: 'admin' names no one"),
        (lambda e: e.pop("notifications_url"), "regguard:registries[1].notifications_url: required in production"),
        (lambda e: e.update(tls="acme"), "regguard:registries[1].acme_email: required with tls: acme"),
        (lambda e: e["placement"].update(ami_id="ubuntu"), "regguard:registries[1].placement.ami_id: expected an id"),
        (lambda e: e.update(auditor="nobody"), "regguard:registries[1].auditor: 'nobody' is not one of the identities"),
        (lambda e: e.update(hostname="https://x"), "regguard:registries[1].hostname: 'https://x' is not a DNS name"),
        (lambda e: e.update(cloud="gce"), "regguard:registries[1].cloud: 'gce' is not supported yet"),
        (lambda e: e.update(colour="red"), "regguard:registries[1].colour: unknown key"),
    ],
)
def test_a_bad_entry_fails_naming_the_key(
    edit: Callable[[dict[str, Any]], Any], message: str, run_stack: RunStack
) -> None:
    with pytest.raises(pulumi.RunError) as info:
        run_stack("prod", lambda config: edit(distribution_entry(config)))
    assert str(info.value).startswith(message), str(info.value)
