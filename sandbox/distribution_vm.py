"""The Distribution VM's rendered user data, served by the real `docker-registry`.

`components.distribution_vm` renders a VM's cloud-init; this module takes that
text, writes the files it would write under a local root, and runs the
registry on its `config.yml` — so the configuration regguard provisions is the
one that is audited here. Only what the cloud would provide is substituted:
the TLS files (the sandbox CA's certificate for 127.0.0.1), the S3 bucket
(a filesystem folder: no S3 here), the listen address (a free loopback port),
the notifications URL (a loopback port) and the paths (re-rooted). Everything
else (TLS minimum, htpasswd accounts and hashes, delete, headers, ...) runs as
rendered.

`start_distribution_vm_estate` is the distribution kind's demo service: it
renders the prod stack's Distribution VM with generated passwords, serves it
and pushes one cosign-signed release image into it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sandbox.certs import ServerCertificate, server_certificate
from sandbox.estate import SANDBOX_BCRYPT_ROUNDS
from sandbox.htpasswd import hash_password
from sandbox.images import build_image
from sandbox.process import free_port, process_start_ticks
from sandbox.pusher import OciPusher
from sandbox.registry import HOST, RunningRegistry, serve_config
from sandbox.signing import KeyPair, generate_key_pair, sign_image

STACK_FILE = Path(__file__).resolve().parents[1] / "stacks" / "Pulumi.prod.yaml"
ESTATE_KEY = Path("keys") / "release.key"
_SECRET_FILE_MODES = {"0600", "0640"}


class NotRunnableHere(ValueError):
    """Rendered user data that cannot run on loopback (e.g. ACME needs a public name)."""


@dataclass(frozen=True)
class Localized:
    """The rendered files under `root`, with `config_file` ready for `docker-registry serve`."""

    root: Path
    config_file: Path
    files: Mapping[str, Path]
    tls: bool


def localize(
    cloud_init: str, root: Path, certificate: ServerCertificate, *, port: int, notifications_url: str
) -> Localized:
    """Write the user data's files under `root` with the substitutions named in
    the module docstring; return where the config landed."""
    from components.distribution_vm import CA_PATH, CERT_PATH, CONFIG_PATH, KEY_PATH, written_files

    rendered = written_files(cloud_init)
    modes = _file_modes(cloud_init)
    substitutes = {
        CERT_PATH: certificate.cert_file.read_text() + certificate.ca_file.read_text(),
        KEY_PATH: certificate.key_file.read_text(),
        CA_PATH: certificate.ca_file.read_text(),
    }
    files: dict[str, Path] = {}
    for path, content in rendered.items():
        local = root / path.lstrip("/")
        _write(local, substitutes.get(path, content), modes.get(path, "0644"))
        files[path] = local
    config = _local_config(yaml.safe_load(rendered[CONFIG_PATH]), root, port, notifications_url)
    _write(files[CONFIG_PATH], yaml.safe_dump(config, sort_keys=False), "0600")
    return Localized(root, files[CONFIG_PATH], files, tls="tls" in config["http"])


def _file_modes(cloud_init: str) -> dict[str, str]:
    document = yaml.safe_load(cloud_init)
    return {str(f["path"]): str(f.get("permissions", "0644")) for f in document.get("write_files") or []}


def _write(path: Path, content: str, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = mode in _SECRET_FILE_MODES
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(content)


def _local_config(config: dict[str, Any], root: Path, port: int, notifications_url: str) -> dict[str, Any]:
    """The rendered config with cloud-provided parts swapped for local ones."""
    storage = config["storage"]
    if "s3" in storage:
        del storage["s3"]
        storage["filesystem"] = {"rootdirectory": str(root / "var/lib/docker-registry")}
    http = config["http"]
    http["addr"] = f"{HOST}:{port}"
    tls = http.get("tls") or {}
    if "letsencrypt" in tls:
        raise NotRunnableHere("tls: acme needs a public DNS name and port 443; render with tls: internal-ca")
    for key in ("certificate", "key"):
        if key in tls:
            tls[key] = str(root / str(tls[key]).lstrip("/"))
    htpasswd = (config.get("auth") or {}).get("htpasswd")
    if htpasswd:
        htpasswd["path"] = str(root / str(htpasswd["path"]).lstrip("/"))
    for endpoint in (config.get("notifications") or {}).get("endpoints") or []:
        endpoint["url"] = notifications_url
    return config


def serve_rendered(
    name: str,
    cloud_init: str,
    workdir: Path,
    *,
    username: str,
    password: str,
    detach: bool = False,
) -> RunningRegistry:
    """Localize `cloud_init` under `workdir/name` and serve it; `username` /
    `password` are the identity the audit and the pusher use."""
    workdir = workdir.resolve()
    certificate = server_certificate(workdir / "certs", name, "ca")
    sink = f"http://{HOST}:{free_port(HOST)}/registry-events"
    root = workdir / name
    log_file = root / "registry.log"
    root.mkdir(parents=True, exist_ok=True)
    localized: list[Localized] = []

    def write_config(port: int) -> Path:
        localized.append(localize(cloud_init, root / "vm", certificate, port=port, notifications_url=sink))
        return localized[-1].config_file

    proc, port = serve_config(name, write_config, log_file, detach=detach)
    serves_tls = bool(localized[-1].tls)
    return RunningRegistry(
        name=name,
        url=f"{'https' if serves_tls else 'http'}://{HOST}:{port}",
        host=HOST,
        port=port,
        ca_file=certificate.ca_file if serves_tls else None,
        username=username,
        password=password,
        config_file=localized[-1].config_file,
        data_dir=root / "vm" / "var/lib/docker-registry",
        pid=proc.pid,
        log_file=log_file,
        start_ticks=process_start_ticks(proc.pid),
        cert="ca" if serves_tls else None,
        _process=proc,
    )


def prod_vm_spec() -> Any:
    """The prod stack's first Distribution VM (a `DistributionVmSpec`)."""
    from components.distribution_vm import DistributionVmSpec

    return next(s for s in prod_stack().registries if isinstance(s, DistributionVmSpec))


def render_vm(spec: Any, certificate: ServerCertificate, passwords: Mapping[str, str]) -> str:
    """The user data of `spec`'s VM rendered with `certificate` and bcrypt
    hashes of `passwords` (identity -> password), where the cloud would give
    the certificate pulumi-tls made and pulumi-random's hashes."""
    from components.distribution_vm import CloudValues, render_cloud_init

    values = CloudValues(
        bucket="substituted-by-the-sandbox",
        kms_key_arn=f"arn:aws:kms:{spec.args.region}:123456789012:key/sandbox",
        htpasswd_hashes={i: hash_password(passwords[i], SANDBOX_BCRYPT_ROUNDS) for i in spec.args.identities},
        certificate_pem=certificate.cert_file.read_text(),
        private_key_pem=certificate.key_file.read_text(),
        ca_pem=certificate.ca_file.read_text(),
    )
    return render_cloud_init(spec.args, values)


def prod_stack() -> Any:
    """stacks/Pulumi.prod.yaml parsed as `pulumi up` would (no engine needed)."""
    from components.stack_config import parse_stack_config

    config = yaml.safe_load(STACK_FILE.read_text(encoding="utf-8"))["config"]
    return parse_stack_config(
        environment=config.get("regguard:environment"),
        provider=lambda key: config.get(key),
        registries=config.get("regguard:registries"),
        use_cases=config.get("regguard:use_cases"),
        frameworks=config.get("regguard:frameworks"),
    )


def _signing_keys(workdir: Path) -> KeyPair:
    """The estate's release key when `start_estate` wrote one, so one trusted key covers every target."""
    private = workdir / ESTATE_KEY
    if private.is_file() and private.with_suffix(".pub").is_file():
        return KeyPair(private, private.with_suffix(".pub"))
    return generate_key_pair(workdir / "distribution-vm-keys", "release")


def start_distribution_vm_estate(workdir: Path, *, detach: bool = False) -> RunningRegistry:
    """The prod stack's Distribution VM as rendered, on loopback, with one signed release image."""
    workdir = workdir.resolve()
    certificate = server_certificate(workdir / "certs", "rendered-vm", "ca")
    spec = prod_vm_spec()
    passwords = {identity: secrets.token_urlsafe(24) for identity in spec.args.identities}
    cloud_init = render_vm(spec, certificate, passwords)
    (workdir / "rendered-vm").mkdir(parents=True, exist_ok=True)
    (workdir / "rendered-vm" / "user-data.yml").write_text(cloud_init, encoding="utf-8")
    auditor = spec.args.auditor
    registry = serve_rendered(
        f"{spec.name}-vm", cloud_init, workdir, username=auditor, password=passwords[auditor], detach=detach
    )
    try:
        _seed(registry, passwords, spec.args.identities, _signing_keys(workdir))
    except BaseException:
        registry.stop()
        raise
    return registry


def _seed(registry: RunningRegistry, passwords: Mapping[str, str], identities: tuple[str, ...], keys: KeyPair) -> None:
    """Push `app/api:v1.0.0` as the first (publisher) identity and sign it."""
    publisher = identities[0]
    pusher = OciPusher(registry.url, username=publisher, password=passwords[publisher], ca_file=registry.ca_file)
    (digest,) = pusher.push_many_sync([("app/api", "v1.0.0", build_image("rendered-vm-api-1.0.0"))])
    sign_image(pusher, "app/api", digest, keys.private_key)
