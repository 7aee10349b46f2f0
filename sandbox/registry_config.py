"""Render Distribution's config.yml from the shared template.

The template lives in `components/templates/` because the self-hosted VM component
renders the very same file into cloud-init; the sandbox runs it in the real
`docker-registry` binary, which is how that rendering is verified end to end here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2

import components

TEMPLATE_NAME = "registry-config.yml.j2"
TEMPLATE_DIR = Path(components.__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class TlsSettings:
    certificate: Path
    key: Path
    minimum: Literal["tls1.2", "tls1.3"] = "tls1.2"


@dataclass(frozen=True)
class AcmeSettings:
    """The registry's built-in ACME (Let's Encrypt) client instead of certificate files."""

    cachefile: Path
    email: str
    hosts: tuple[str, ...]
    minimum: Literal["tls1.2", "tls1.3"] = "tls1.2"


@dataclass(frozen=True)
class S3Storage:
    """S3 blob storage, always server-side encrypted; `keyid` is the customer KMS
    key (RG-ENC-001), None for the provider-managed key."""

    bucket: str
    region: str
    keyid: str | None
    rootdirectory: str = "/registry"


@dataclass(frozen=True)
class HtpasswdSettings:
    path: Path
    realm: str = "regguard"


@dataclass(frozen=True)
class NotificationEndpoint:
    """One webhook Distribution posts push/pull events to (the registry's audit trail)."""

    name: str
    url: str
    timeout: str = "1s"
    threshold: int = 5
    backoff: str = "10s"


@dataclass(frozen=True)
class RegistryConfig:
    """Every value the template needs; None switches an optional section off."""

    storage_root: Path
    http_addr: str
    tls: TlsSettings | AcmeSettings | None = None
    htpasswd: HtpasswdSettings | None = None
    notifications: tuple[NotificationEndpoint, ...] = field(default_factory=tuple)
    http_secret: str | None = None
    delete_enabled: bool = True
    log_level: str = "info"
    s3: S3Storage | None = None

    def context(self) -> dict[str, Any]:
        """The template context, with paths as strings."""
        return {
            "log_level": self.log_level,
            "storage_root": str(self.storage_root),
            "delete_enabled": self.delete_enabled,
            "http_addr": self.http_addr,
            "http_secret": self.http_secret,
            "tls": _tls_context(self.tls),
            "s3": None
            if self.s3 is None
            else {
                "bucket": self.s3.bucket,
                "region": self.s3.region,
                "keyid": self.s3.keyid,
                "rootdirectory": self.s3.rootdirectory,
            },
            "htpasswd": None
            if self.htpasswd is None
            else {"realm": self.htpasswd.realm, "path": str(self.htpasswd.path)},
            "notifications": [
                {
                    "name": ep.name,
                    "url": ep.url,
                    "timeout": ep.timeout,
                    "threshold": ep.threshold,
                    "backoff": ep.backoff,
                }
                for ep in self.notifications
            ],
        }


def _tls_context(tls: TlsSettings | AcmeSettings | None) -> dict[str, Any] | None:
    if tls is None:
        return None
    if isinstance(tls, AcmeSettings):
        acme = {"cachefile": str(tls.cachefile), "email": tls.email, "hosts": list(tls.hosts)}
        return {"certificate": None, "key": None, "minimum": tls.minimum, "acme": acme}
    return {"certificate": str(tls.certificate), "key": str(tls.key), "minimum": tls.minimum, "acme": None}


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML; values are escaped with `tojson`
    )


def render_registry_config(config: RegistryConfig) -> str:
    """The config.yml text for `config`."""
    return _environment().get_template(TEMPLATE_NAME).render(config.context())
