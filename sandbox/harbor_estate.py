"""The sandbox Harbor for the demo: the API emulator (`sandbox.harbor_emulator`,
run as its own process so `sandbox up` can leave it running) in front of a
real `docker-registry` holding the images and cosign signatures the emulator's
artifacts describe (see `sandbox.harbor_seed` for what is seeded).

The registry behind it is plain HTTP on loopback without authentication,
reached only through the emulator (Harbor's registry is likewise internal);
the emulator serves HTTPS with a certificate from the sandbox CA and asks for
Harbor's bearer token on `/v2/`. Signatures name `127.0.0.1:<emulator port>/<repo>`,
the reference clients pull by, so the port is chosen before signing.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.certs import server_certificate
from sandbox.harbor_seed import DEMO_IMAGES, SeededImage, demo_state
from sandbox.images import build_image
from sandbox.process import (
    EmulatorBesideRegistry,
    free_port,
    port_open,
    process_start_ticks,
    spawn,
)
from sandbox.pusher import OciPusher
from sandbox.registry import RegistrySpec, RunningRegistry, env_var_prefix, start_registry
from sandbox.signing import generate_key_pair, signature_for

HOST = "127.0.0.1"
TARGET_NAME = "harbor"
AUDITOR = "regguard-auditor"
READY_TIMEOUT = 15.0
ESTATE_KEY = Path("keys") / "release.key"
"""The demo estate's signing key (written by `sandbox.estate.start_estate`), so one
`trusted_keys` entry covers every target; otherwise a pair of our own."""


class HarborStartError(RuntimeError):
    """The emulator did not come up; carries its log tail."""


@dataclass
class HarborService(EmulatorBesideRegistry):
    """The running sandbox Harbor: emulator process plus its registry."""

    url: str
    ca_file: Path
    password: str = field(repr=False)
    pid: int
    registry: RunningRegistry
    log_file: Path
    images: tuple[SeededImage, ...] = ()
    public_key: Path | None = None
    start_ticks: int | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    name = TARGET_NAME

    @property
    def username_env(self) -> str:
        return f"{env_var_prefix(TARGET_NAME)}_USER"

    @property
    def password_env(self) -> str:
        return f"{env_var_prefix(TARGET_NAME)}_PASSWORD"

    @property
    def targets(self) -> list[dict[str, Any]]:
        return [
            {
                "name": TARGET_NAME,
                "kind": "harbor",
                "url": self.url,
                "ca_file": str(self.ca_file),
                "username_env": self.username_env,
                "password_env": self.password_env,
            }
        ]

    @property
    def env(self) -> dict[str, str]:
        return {self.username_env: AUDITOR, self.password_env: self.password}



def _signing_key(workdir: Path) -> tuple[Path, Path]:
    shared = workdir / ESTATE_KEY
    if shared.exists():
        return shared, shared.with_suffix(".pub")
    keys = generate_key_pair(workdir / "harbor" / "keys", "release")
    return keys.private_key, keys.public_key


def _push(registry: RunningRegistry, harbor_address: str, private_key: Path) -> tuple[SeededImage, ...]:
    """Push the demo images and sign the `signed` ones for `harbor_address/<repo>`."""
    images = [(repo, tag, build_image(f"harbor-{repo}-{tag}"), signed, crit) for repo, tag, signed, crit in DEMO_IMAGES]
    pusher = OciPusher(registry.url, verify_tls=False, concurrency=4)
    pusher.push_many_sync([(repo, tag, manifest) for repo, tag, manifest, _, _ in images])
    seeded: list[SeededImage] = []
    signatures = []
    for repo, tag, manifest, signed, critical in images:
        signature = None
        if signed:
            sig_tag, sig_manifest = signature_for(harbor_address, repo, manifest.digest, private_key)
            signatures.append((repo, sig_tag, sig_manifest))
            signature = sig_manifest.digest
        seeded.append(SeededImage(repo, tag, manifest.digest, signature, critical))
    OciPusher(registry.url, verify_tls=False, concurrency=4).push_many_sync(signatures)
    return tuple(seeded)


def start_harbor_estate(workdir: Path, *, detach: bool = False) -> HarborService:
    """Start the registry, seed it, write the emulator's state and start the emulator."""
    workdir = workdir.resolve()
    home = workdir / "harbor"
    home.mkdir(parents=True, exist_ok=True)
    registry = start_registry(RegistrySpec(name="harbor-storage", tls=False, users=None), workdir, detach=detach)
    try:
        port = free_port(HOST)
        private_key, public_key = _signing_key(workdir)
        images = _push(registry, f"{HOST}:{port}", private_key)
        password = secrets.token_urlsafe(24)
        state = demo_state(images, {AUDITOR: (password, True), "admin": (secrets.token_urlsafe(24), True)})
        state_file = home / "state.json"
        state_file.touch(mode=0o600)
        state_file.write_text(state.to_json(), encoding="utf-8")
        cert = server_certificate(home / "certs", "harbor")
        log_file = home / "emulator.log"
        proc = _launch(state_file, port, registry.url, cert.cert_file, cert.key_file, log_file, detach)
        service = HarborService(
            f"https://{HOST}:{port}", cert.ca_file, password, proc.pid, registry, log_file, images, public_key,
            process_start_ticks(proc.pid), proc,
        )  # fmt: skip
        _wait_ready(service)
    except BaseException:
        registry.stop()
        raise
    return service


def _launch(
    state: Path, port: int, registry_url: str, cert: Path, key: Path, log_file: Path, detach: bool
) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "sandbox.harbor_emulator", "--state", str(state), "--port", str(port),
            "--registry", registry_url, "--cert", str(cert), "--key", str(key)]  # fmt: skip
    with log_file.open("ab") as log:
        return spawn(args, log=log, detach=detach)


def _wait_ready(service: HarborService) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not service.alive():
            break
        if port_open(HOST, int(service.url.rsplit(":", 1)[1])):
            return
        time.sleep(0.1)
    tail = service.log_file.read_text(errors="replace")[-2000:] if service.log_file.exists() else ""
    service.stop()
    raise HarborStartError(f"the Harbor emulator did not listen within {READY_TIMEOUT:.0f}s:\n{tail}")
