"""harbor.yml as the Harbor VM renders it is a configuration Harbor 2.15's
installer reads: every key exists in the installer template's key/type
extract (sandbox/api-specs/harbor/), with the template's type; the passwords
are generated, never the installer defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.distribution_vm import AwsVmPlacement
from components.harbor_vm import (
    HARBOR_VERSION,
    ExternalDatabase,
    HarborSecrets,
    HarborVmArgs,
    harbor_yml_of,
    render_cloud_init,
    render_harbor_yml,
)

ROOT = Path(__file__).resolve().parents[2]
KEYS = json.loads((ROOT / "sandbox" / "api-specs" / "harbor" / "harbor.yml.keys.json").read_text(encoding="utf-8"))
REQUIRED = ("hostname", "https", "harbor_admin_password", "data_volume", "trivy", "_version", "log", "jobservice")
PLACEMENT = AwsVmPlacement("vpc-0123456789abcdef0", "subnet-0123456789abcdef0", "ami-0123456789abcdef0",
                           availability_zone="eu-central-1a")
SECRETS = HarborSecrets("generated-admin-pw", "generated-db-pw", "CERT\n", "KEY\n", "CA\n", "vol-0123456789abcdef0")


def args(**changes: Any) -> HarborVmArgs:
    return HarborVmArgs(**{"hostname": "harbor.internal.example", "environment": "prod", "placement": PLACEMENT,
                           "allowed_cidrs": ("10.0.0.0/8",), **changes})


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, list):
        return "list"
    return "string"


def mismatches(rendered: dict[str, Any], schema: dict[str, Any], where: str = "") -> list[str]:
    """Keys the template does not have, or values of another type than the template's."""
    found: list[str] = []
    for key, value in rendered.items():
        path = f"{where}{key}"
        if key not in schema:
            found.append(f"{path}: not a key of harbor.yml {HARBOR_VERSION}")
        elif isinstance(schema[key], dict):
            if not isinstance(value, dict):
                found.append(f"{path}: expected a mapping")
            else:
                found += mismatches(value, schema[key], path + ".")
        elif value is not None and _type_of(value) != schema[key]:
            found.append(f"{path}: {_type_of(value)}, the template has {schema[key]}")
    return found


@pytest.mark.parametrize("variant", [{}, {"external_database": ExternalDatabase("pg.internal.example")},
                                     {"trivy_offline": True}])
def test_rendered_harbor_yml_matches_the_installer_template(variant: dict[str, Any]) -> None:
    rendered = yaml.safe_load(render_harbor_yml(args(**variant), SECRETS))
    assert mismatches(rendered, KEYS) == []
    assert all(key in rendered for key in REQUIRED)
    assert rendered["_version"] == HARBOR_VERSION


def test_the_check_is_real() -> None:
    rendered = yaml.safe_load(render_harbor_yml(args(), SECRETS))
    rendered["https"]["port"] = "443"
    rendered["trivy"]["enabled"] = True
    assert mismatches(rendered, KEYS) == [
        "https.port: string, the template has integer",
        f"trivy.enabled: not a key of harbor.yml {HARBOR_VERSION}",
    ]


def test_generated_passwords_https_and_trivy() -> None:
    rendered = harbor_yml_of(render_cloud_init(args(), SECRETS))
    assert rendered["harbor_admin_password"] == "generated-admin-pw"
    assert rendered["database"]["password"] == "generated-db-pw"
    assert rendered["https"]["certificate"] and rendered["https"]["private_key"]
    assert rendered["trivy"]["offline_scan"] is False


def test_external_database_replaces_the_bundled_one() -> None:
    rendered = yaml.safe_load(render_harbor_yml(args(external_database=ExternalDatabase("pg.internal.example")),
                                                SECRETS))
    assert "database" not in rendered
    db = rendered["external_database"]["harbor"]
    assert (db["host"], db["port"], db["password"], db["ssl_mode"]) == (
        "pg.internal.example", 5432, "generated-db-pw", "verify-full")


@pytest.mark.parametrize("password", ["Harbor12345", "root123"])
def test_installer_default_passwords_are_refused(password: str) -> None:
    with pytest.raises(ValueError, match="installer default"):
        HarborSecrets(password, "x" * 20, "C", "K", "CA", "vol-1")


def test_installer_comes_from_the_configured_url_and_is_checked() -> None:
    digest = "ab" * 32
    user_data = render_cloud_init(args(installer_url="http://mirror.internal/harbor.tgz", installer_sha256=digest),
                                  SECRETS)
    script = yaml.safe_load(user_data)["write_files"][-1]["content"]
    assert "--output /var/tmp/harbor-installer.tgz http://mirror.internal/harbor.tgz" in script
    assert f"echo {digest}'  /var/tmp/harbor-installer.tgz' | sha256sum --check --strict" in script
    assert "./install.sh --with-trivy" in script
    assert "nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0" in script


@pytest.mark.parametrize(("changes", "message"), [
    ({"allowed_cidrs": ("0.0.0.0/0",)}, "allowed_cidrs[0]: 0.0.0.0/0 admits the whole internet"),
    ({"installer_url": "http://mirror/$(reboot)"}, "installer_url: expected a plain http(s) URL"),
    ({"installer_sha256": "abc"}, "installer_sha256: expected 64 lowercase hex digits"),
    ({"placement": AwsVmPlacement("vpc-0123456789abcdef0", "subnet-0123456789abcdef0", "ami-0123456789abcdef0")},
     "placement.availability_zone: required"),
])
def test_bad_args_are_refused_by_name(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        args(**changes)
    assert str(info.value).startswith(message)
