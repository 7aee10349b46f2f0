"""Distribution's registry-side facts, read from its `config.yml` (and the
htpasswd file it names) when the audit runs on the registry host, plus the
facts no request can observe because Distribution has no such feature.

Pure file parsing: no network. Without `config_file` the config facts are
`not_observable` with what a person must check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from audits.model import (
    ADMIN_ACCOUNT,
    CONTENT_TRUST,
    CREDENTIALS,
    ENCRYPTION,
    LOGGING,
    NETWORK_EXPOSURE,
    PULL_COUNTS,
    REPLICATION,
    RETENTION,
    SCANNING,
    TAG_IMMUTABILITY,
    AdminAccountFacts,
    CredentialFacts,
    EncryptionFacts,
    EncryptionSetting,
    Fact,
    LoggingFacts,
    NetworkExposureFacts,
)

_UNSUPPORTED = "not supported by distribution"
CONFIG_FACTS = (LOGGING, ENCRYPTION, NETWORK_EXPOSURE, CREDENTIALS, ADMIN_ACCOUNT)


def static_facts() -> dict[str, Fact[Any]]:
    """What Distribution does not have at all: no request can observe it."""
    return {
        TAG_IMMUTABILITY: Fact.unsupported(_UNSUPPORTED),
        SCANNING: Fact.unsupported(_UNSUPPORTED),
        CONTENT_TRUST: Fact.unsupported(_UNSUPPORTED),
        REPLICATION: Fact.unsupported(_UNSUPPORTED),
        PULL_COUNTS: Fact.unsupported(_UNSUPPORTED),
    }


def config_facts(config_file: Path | None) -> dict[str, Fact[Any]]:
    """LOGGING, ENCRYPTION, NETWORK_EXPOSURE, CREDENTIALS, ADMIN_ACCOUNT and
    RETENTION from the registry's `config.yml` (readable only on its host)."""
    retention_hint = (
        "Distribution has no retention API: check the registry host for a scheduled "
        "`registry garbage-collect` (cron or systemd timer) and a job that deletes old tags"
    )
    if config_file is None:
        hint = "set config_file to the registry's config.yml (audit on the registry host) to observe this"
        facts: dict[str, Fact[Any]] = {name: Fact.not_observable(hint) for name in CONFIG_FACTS}
        facts[RETENTION] = Fact.not_observable(retention_hint)
        return facts
    source = f"config {config_file}"
    try:
        raw = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except OSError as exc:
        return _all_config_errors(f"cannot read {config_file}: {exc.strerror or exc.__class__.__name__}", source)
    except yaml.YAMLError:
        return _all_config_errors(f"{config_file} is not valid YAML", source)
    if not isinstance(raw, dict):
        return _all_config_errors(f"{config_file}: expected a mapping at the top level", source)
    facts = {
        LOGGING: logging_fact(raw, source),
        ENCRYPTION: encryption_fact(raw, source),
        NETWORK_EXPOSURE: network_fact(raw, source),
        **account_facts(raw, config_file, source),
    }
    delete = _get(raw, "storage", "delete", "enabled") is True
    facts[RETENTION] = Fact.not_observable(
        f"{retention_hint}; storage.delete.enabled is {'true' if delete else 'false'}"
        + ("" if delete else " (garbage collection cannot remove deleted manifests)"),
        source,
    )
    return facts


def _all_config_errors(detail: str, source: str) -> dict[str, Fact[Any]]:
    facts: dict[str, Fact[Any]] = {name: Fact.error(detail, source) for name in CONFIG_FACTS}
    facts[RETENTION] = Fact.error(detail, source)
    return facts


def _get(node: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def logging_fact(config: dict[str, Any], source: str) -> Fact[LoggingFacts]:
    """Notification endpoints (the registry's event stream of pushes/pulls)."""
    endpoints = _get(config, "notifications", "endpoints") or []
    if not isinstance(endpoints, list):
        return Fact.error("notifications.endpoints is not a list", source)
    active = [e for e in endpoints if isinstance(e, dict) and not e.get("disabled") and e.get("url")]
    urls = [_strip_userinfo(str(e["url"])) for e in active]
    if not active:
        detail = "no enabled notifications endpoint" + (" (all disabled)" if endpoints else "")
        return Fact.ok(LoggingFacts(False, None, detail), source)
    names = ", ".join(str(e.get("name", "?")) for e in active)
    return Fact.ok(LoggingFacts(True, ", ".join(urls), f"notifications endpoints: {names}"), source)


def _strip_userinfo(url: str) -> str:
    """A notification URL may embed credentials (`https://u:p@host`): drop them."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


_STORAGE_OPTIONS = frozenset({"maintenance", "cache", "delete", "redirect", "tag"})


def encryption_fact(config: dict[str, Any], source: str) -> Fact[EncryptionFacts]:
    storage = config.get("storage")
    if not isinstance(storage, dict):
        return Fact.error("config has no storage section", source)
    drivers = [k for k in storage if k not in _STORAGE_OPTIONS]
    if len(drivers) != 1:
        return Fact.error(f"expected one storage driver, found {', '.join(drivers) or 'none'}", source)
    driver = drivers[0]
    options = storage[driver] if isinstance(storage[driver], dict) else {}
    setting = storage_encryption(driver, options)
    return Fact.ok(EncryptionFacts(by_repository={}, registry_wide=setting), source)


def storage_encryption(driver: str, options: Mapping[str, Any]) -> EncryptionSetting:
    """What a storage driver's settings say about encryption at rest."""
    if driver in ("s3", "oss"):
        key_option = "keyid" if driver == "s3" else "encryptionkeyid"
        encrypt = options.get("encrypt") is True or str(options.get("encrypt")).lower() == "true"
        key = options.get(key_option)
        if encrypt and key:
            return EncryptionSetting(True, str(key), f"{driver}: server-side encryption with customer key")
        if encrypt:
            return EncryptionSetting(False, None, f"{driver}: server-side encryption with the provider-managed key")
        return EncryptionSetting(
            False, None, f"{driver}: encrypt is off; the bucket's default encryption is not visible"
        )
    if driver == "filesystem":
        root = options.get("rootdirectory", "/var/lib/registry")
        return EncryptionSetting(
            False,
            None,
            f"filesystem storage at {root}: not encrypted by the registry; check the host's disk encryption",
        )
    if driver == "inmemory":
        return EncryptionSetting(False, None, "inmemory storage (testing only)")
    return EncryptionSetting(False, None, f"{driver}: provider-managed encryption; no customer key configured")


def network_fact(config: dict[str, Any], source: str) -> Fact[NetworkExposureFacts]:
    """Where the registry listens (`http.addr`): all interfaces or a public
    address is reachable from outside the host, loopback/private is not."""
    http = config.get("http")
    if isinstance(http, dict) and http.get("net") == "unix":
        return Fact.ok(NetworkExposureFacts(False, f"listens on unix socket {http.get('addr')}"), source)
    addr = http.get("addr") if isinstance(http, dict) else None
    if not isinstance(addr, str) or not addr:
        return Fact.error("config has no http.addr", source)
    host = addr.rsplit(":", 1)[0] if ":" in addr else addr
    host = host.strip("[]")
    return Fact.ok(bind_exposure(host, addr), source)


def bind_exposure(host: str, addr: str) -> NetworkExposureFacts:
    if host in ("", "0.0.0.0", "::"):
        return NetworkExposureFacts(True, f"http.addr {addr} listens on all interfaces")
    addresses = _resolve(host)
    if not addresses:
        return NetworkExposureFacts(True, f"http.addr {addr}: {host} does not resolve; assuming reachable")
    public = [a for a in addresses if a.is_global or a.is_unspecified]
    if public:
        return NetworkExposureFacts(True, f"http.addr {addr} binds public address {public[0]}")
    kind = "loopback" if all(a.is_loopback for a in addresses) else "private"
    return NetworkExposureFacts(False, f"http.addr {addr} binds {kind} address {addresses[0]}")


def _resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def account_facts(config: dict[str, Any], config_file: Path, source: str) -> dict[str, Fact[Any]]:
    """CREDENTIALS and ADMIN_ACCOUNT from the auth section. htpasswd users are
    listed by name only; the hashes are never read into a fact."""
    auth = config.get("auth")
    if not isinstance(auth, dict) or not auth:
        none = AdminAccountFacts(False, detail="no authentication configured: the registry has no accounts")
        return {CREDENTIALS: Fact.ok((), source), ADMIN_ACCOUNT: Fact.ok(none, source)}
    if "token" in auth:
        realm = _get(auth, "token", "realm")
        hint = f"accounts live in the token service ({realm}); review them there"
        return {CREDENTIALS: Fact.not_observable(hint, source), ADMIN_ACCOUNT: Fact.not_observable(hint, source)}
    if "htpasswd" in auth:
        return _htpasswd_facts(_get(auth, "htpasswd", "path"), config_file, source)
    scheme = next(iter(auth))
    detail = f"auth scheme {scheme!r} has no accounts to review"
    return {CREDENTIALS: Fact.ok((), source), ADMIN_ACCOUNT: Fact.ok(AdminAccountFacts(False, detail=detail), source)}


def _htpasswd_facts(path_value: Any, config_file: Path, source: str) -> dict[str, Fact[Any]]:
    if not isinstance(path_value, str) or not path_value:
        error: Fact[Any] = Fact.error("auth.htpasswd.path is not set", source)
        return {CREDENTIALS: error, ADMIN_ACCOUNT: error}
    path = Path(path_value)
    if not path.is_absolute():
        path = config_file.parent / path  # best guess: the registry's working directory is unknown
    htpasswd_source = f"htpasswd {path}"
    try:
        text = path.read_text(encoding="utf-8")
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError as exc:
        error = Fact.error(
            f"cannot read htpasswd file {path}: {exc.strerror or exc.__class__.__name__}", htpasswd_source
        )
        return {CREDENTIALS: error, ADMIN_ACCOUNT: error}
    users = htpasswd_users(text)
    shared = len(users) == 1
    creds = tuple(
        CredentialFacts(
            id=user,
            kind="htpasswd-user",
            created_at=mtime,
            can_push=True,
            shared=shared,
            detail=f"htpasswd file {path}; created_at is the file's modification time",
        )
        for user in users
    )
    admin_detail = (
        f"a single htpasswd account ({users[0]}) is shared by every client"
        if shared
        else f"{len(users)} htpasswd accounts; every account can push and pull"
    )
    admin = AdminAccountFacts(shared_admin_enabled=shared, detail=admin_detail, mechanism="htpasswd")
    return {CREDENTIALS: Fact.ok(creds, htpasswd_source), ADMIN_ACCOUNT: Fact.ok(admin, htpasswd_source)}


def htpasswd_users(text: str) -> list[str]:
    """User names in an htpasswd file (`user:hash` lines)."""
    users: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        users.append(line.split(":", 1)[0])
    return users
