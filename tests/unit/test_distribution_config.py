"""Registry-side facts read from Distribution's config.yml (and htpasswd)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from audits.collectors.distribution_config import bind_exposure, config_facts, htpasswd_users, storage_encryption
from audits.model import (
    ADMIN_ACCOUNT,
    CREDENTIALS,
    ENCRYPTION,
    LOGGING,
    NETWORK_EXPOSURE,
    RETENTION,
    FactState,
)


def write_config(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


BASE: dict[str, Any] = {
    "version": 0.1,
    "storage": {"filesystem": {"rootdirectory": "/srv/registry"}, "delete": {"enabled": True}},
    "http": {"addr": "127.0.0.1:5000"},
}


def test_without_config_file_everything_is_not_observable() -> None:
    facts = config_facts(None)
    for name in (LOGGING, ENCRYPTION, NETWORK_EXPOSURE, CREDENTIALS, ADMIN_ACCOUNT, RETENTION):
        assert facts[name].state is FactState.NOT_OBSERVABLE, name
    assert "config_file" in (facts[LOGGING].detail or "")
    assert "registry garbage-collect" in (facts[RETENTION].detail or "")


def test_unreadable_and_invalid_config_are_errors(tmp_path: Path) -> None:
    missing = config_facts(tmp_path / "nope.yml")
    assert missing[LOGGING].state is FactState.ERROR
    assert "cannot read" in (missing[LOGGING].detail or "")
    bad = tmp_path / "bad.yml"
    bad.write_text("http: [unclosed")
    assert config_facts(bad)[ENCRYPTION].detail == f"{bad} is not valid YAML"
    scalar = tmp_path / "scalar.yml"
    scalar.write_text("just text")
    assert "expected a mapping" in (config_facts(scalar)[NETWORK_EXPOSURE].detail or "")


def test_notifications_endpoints_are_logging(tmp_path: Path) -> None:
    endpoints = [
        {"name": "audit", "url": "https://user:hunter2@siem.internal/events", "headers": {"Authorization": ["x"]}},
        {"name": "off", "url": "https://old/events", "disabled": True},
    ]
    facts = config_facts(write_config(tmp_path, {**BASE, "notifications": {"endpoints": endpoints}}))
    logging = facts[LOGGING].value
    assert logging.enabled is True
    assert logging.destination == "https://siem.internal/events"  # embedded credentials dropped
    assert "hunter2" not in repr(facts)
    none = config_facts(write_config(tmp_path, {**BASE, "notifications": {"endpoints": endpoints[1:]}}))
    assert none[LOGGING].value.enabled is False and "disabled" in none[LOGGING].value.detail
    assert config_facts(write_config(tmp_path, BASE))[LOGGING].value.enabled is False


@pytest.mark.parametrize(
    ("driver", "options", "customer", "key"),
    [
        (
            "s3",
            {"bucket": "b", "encrypt": True, "keyid": "arn:aws:kms:us-east-1:1:key/k"},
            True,
            "arn:aws:kms:us-east-1:1:key/k",
        ),
        ("s3", {"bucket": "b", "encrypt": True}, False, None),
        ("s3", {"bucket": "b"}, False, None),
        ("filesystem", {"rootdirectory": "/srv"}, False, None),
        ("gcs", {"bucket": "b"}, False, None),
        ("inmemory", {}, False, None),
    ],
)
def test_storage_encryption(driver: str, options: dict[str, Any], customer: bool, key: str | None) -> None:
    setting = storage_encryption(driver, options)
    assert (setting.customer_managed, setting.key_id) == (customer, key)
    assert driver in setting.detail


def test_encryption_fact_is_registry_wide(tmp_path: Path) -> None:
    facts = config_facts(write_config(tmp_path, BASE))
    enc = facts[ENCRYPTION].value
    assert enc.by_repository == {}
    assert enc.registry_wide.customer_managed is False
    assert "not encrypted by the registry" in enc.registry_wide.detail
    two = {**BASE, "storage": {"filesystem": {}, "s3": {}}}
    assert config_facts(write_config(tmp_path, two))[ENCRYPTION].state is FactState.ERROR


@pytest.mark.parametrize(
    ("addr", "public"),
    [
        (":5000", True),
        ("0.0.0.0:5000", True),
        ("[::]:5000", True),
        ("127.0.0.1:5000", False),
        ("[::1]:5000", False),
        ("10.1.2.3:5000", False),
        ("192.168.0.9:443", False),
        ("8.8.8.8:5000", True),
        ("localhost:5000", False),
    ],
)
def test_bind_address_exposure(tmp_path: Path, addr: str, public: bool) -> None:
    facts = config_facts(write_config(tmp_path, {**BASE, "http": {"addr": addr}}))
    exposure = facts[NETWORK_EXPOSURE].value
    assert exposure.publicly_reachable is public, exposure.detail
    assert addr in exposure.detail


def test_unix_socket_and_missing_addr(tmp_path: Path) -> None:
    unix = config_facts(write_config(tmp_path, {**BASE, "http": {"net": "unix", "addr": "/run/reg.sock"}}))
    assert unix[NETWORK_EXPOSURE].value.publicly_reachable is False
    no_addr = config_facts(write_config(tmp_path, {**BASE, "http": {}}))
    assert no_addr[NETWORK_EXPOSURE].state is FactState.ERROR


def test_unresolvable_host_is_assumed_reachable() -> None:
    assert bind_exposure("no-such-host.invalid", "no-such-host.invalid:5000").publicly_reachable is True


def htpasswd(tmp_path: Path, users: list[str], mtime: float = 1_700_000_000) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text("".join(f"{u}:$2y$05$abcdefghijklmnopqrstuuJXK0oZb5Sj1v3sDqEdD6fPX9X1kmLuy\n" for u in users))
    os.utime(path, (mtime, mtime))
    return path


def test_single_htpasswd_account_is_shared(tmp_path: Path) -> None:
    path = htpasswd(tmp_path, ["admin"])
    facts = config_facts(write_config(tmp_path, {**BASE, "auth": {"htpasswd": {"realm": "r", "path": str(path)}}}))
    [cred] = facts[CREDENTIALS].value
    assert (cred.id, cred.kind, cred.shared, cred.can_push) == ("admin", "htpasswd-user", True, True)
    assert cred.created_at == datetime.fromtimestamp(1_700_000_000, UTC)
    admin = facts[ADMIN_ACCOUNT].value
    assert admin.shared_admin_enabled is True and "admin" in admin.detail
    assert "$2y$" not in repr(facts)


def test_several_htpasswd_accounts_relative_path(tmp_path: Path) -> None:
    htpasswd(tmp_path, ["alice", "bob", "ci"])
    facts = config_facts(write_config(tmp_path, {**BASE, "auth": {"htpasswd": {"realm": "r", "path": "htpasswd"}}}))
    assert [c.id for c in facts[CREDENTIALS].value] == ["alice", "bob", "ci"]
    assert not any(c.shared for c in facts[CREDENTIALS].value)
    assert facts[ADMIN_ACCOUNT].value.shared_admin_enabled is False


def test_missing_htpasswd_file_is_an_error(tmp_path: Path) -> None:
    config = {**BASE, "auth": {"htpasswd": {"realm": "r", "path": str(tmp_path / "gone")}}}
    facts = config_facts(write_config(tmp_path, config))
    assert facts[CREDENTIALS].state is FactState.ERROR and "cannot read htpasswd" in (facts[CREDENTIALS].detail or "")


def test_no_auth_and_token_auth(tmp_path: Path) -> None:
    none = config_facts(write_config(tmp_path, BASE))
    assert none[CREDENTIALS].value == ()
    assert none[ADMIN_ACCOUNT].value.shared_admin_enabled is False
    token = {**BASE, "auth": {"token": {"realm": "https://auth/token", "service": "s", "issuer": "i"}}}
    facts = config_facts(write_config(tmp_path, token))
    assert facts[CREDENTIALS].state is FactState.NOT_OBSERVABLE
    assert "https://auth/token" in (facts[CREDENTIALS].detail or "")


def test_retention_mentions_delete_setting(tmp_path: Path) -> None:
    on = config_facts(write_config(tmp_path, BASE))[RETENTION]
    assert on.state is FactState.NOT_OBSERVABLE and "storage.delete.enabled is true" in (on.detail or "")
    off = config_facts(write_config(tmp_path, {**BASE, "storage": {"filesystem": {}}}))[RETENTION]
    assert "cannot remove" in (off.detail or "")


def test_htpasswd_users_skips_comments_and_blanks() -> None:
    assert htpasswd_users("# c\n\nalice:x\nbroken\n bob:y \n") == ["alice", "bob"]
