"""Start and stop real Docker Distribution registries on 127.0.0.1.

Each registry gets its own folder under the work directory (config.yml, storage,
htpasswd, log) and a free port. The same config template the self-hosted VM
component ships is rendered here and run by `/usr/bin/docker-registry`, so what
the audit sees is what production would serve.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.certs import CertKind, server_certificate
from sandbox.htpasswd import DEFAULT_ROUNDS, write_htpasswd
from sandbox.process import (
    StopsOnExit,
    child_alive,
    free_port,
    port_open,
    process_start_ticks,
    spawn,
    stop_child,
)
from sandbox.registry_config import (
    HtpasswdSettings,
    NotificationEndpoint,
    RegistryConfig,
    TlsSettings,
    render_registry_config,
)

REGISTRY_BINARY = "/usr/bin/docker-registry"
HOST = "127.0.0.1"
READY_TIMEOUT = 10.0
_PORT_ATTEMPTS = 5
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class RegistryStartError(RuntimeError):
    """The registry process exited or did not listen in time; carries its log tail."""


class _PortTaken(Exception):
    """Someone else bound the port between our probe and the registry's bind."""


@dataclass(frozen=True)
class RegistrySpec:
    """What to run. `users` maps username -> password (None: no authentication);
    the first user is the identity handed to clients (audit, pushers)."""

    name: str
    tls: bool = True
    users: Mapping[str, str] | None = None
    cert: CertKind = "ca"
    notifications_url: str | None = None
    bcrypt_rounds: int = DEFAULT_ROUNDS


def env_var_prefix(name: str) -> str:
    """`REGGUARD_SANDBOX_<NAME>` — where a registry's credentials live in the environment."""
    return "REGGUARD_SANDBOX_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


@dataclass
class RunningRegistry(StopsOnExit):
    """A live registry process and everything a client needs to reach it."""

    name: str
    url: str
    host: str
    port: int
    ca_file: Path | None
    username: str | None
    password: str | None = field(repr=False)
    config_file: Path
    data_dir: Path
    pid: int
    log_file: Path
    start_ticks: int | None = None
    cert: CertKind | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    # -- the Service protocol -------------------------------------------------
    @property
    def pids(self) -> list[int]:
        return [self.pid]

    @property
    def username_env(self) -> str | None:
        return f"{env_var_prefix(self.name)}_USER" if self.username else None

    @property
    def password_env(self) -> str | None:
        return f"{env_var_prefix(self.name)}_PASSWORD" if self.password else None

    @property
    def env(self) -> dict[str, str]:
        """Secret values by variable name, for the audit's environment."""
        out: dict[str, str] = {}
        if self.username_env and self.username:
            out[self.username_env] = self.username
        if self.password_env and self.password:
            out[self.password_env] = self.password
        return out

    @property
    def targets(self) -> list[dict[str, Any]]:
        """The audit-config target entry for this registry (secrets by reference only)."""
        target: dict[str, Any] = {"name": self.name, "kind": "distribution", "url": self.url}
        if self.ca_file is not None:
            target["ca_file"] = str(self.ca_file)
        if self.username_env:
            target["username_env"] = self.username_env
        if self.password_env:
            target["password_env"] = self.password_env
        target["config_file"] = str(self.config_file)
        return [target]

    @property
    def address(self) -> str:
        """`host:port`, as image references and cosign's docker-reference spell it."""
        return f"{self.host}:{self.port}"

    def alive(self) -> bool:
        return child_alive(self._process, self.pid, self.start_ticks)

    def stop(self) -> None:
        """Terminate, then kill after 5 s; wait until it is gone. Idempotent."""
        stop_child(self._process, self.pid, self.start_ticks)


def _prepare(spec: RegistrySpec, workdir: Path, reg_dir: Path) -> tuple[
    TlsSettings | None, HtpasswdSettings | None, Path | None
]:
    tls = ca_file = None
    if spec.tls:
        cert = server_certificate(workdir / "certs", spec.name, spec.cert)
        tls, ca_file = TlsSettings(cert.cert_file, cert.key_file), cert.ca_file
    htpasswd = None
    if spec.users is not None:
        path = write_htpasswd(reg_dir / "htpasswd", spec.users, rounds=spec.bcrypt_rounds)
        htpasswd = HtpasswdSettings(path=path, realm=f"regguard-{spec.name}")
    return tls, htpasswd, ca_file


def _log_tail(log_file: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log_file: Path, name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            tail = _log_tail(log_file)
            if "address already in use" in tail:
                raise _PortTaken()
            raise RegistryStartError(f"registry {name} exited with code {code}:\n{tail}")
        if port_open(HOST, port):
            return
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RegistryStartError(
        f"registry {name} did not listen on {HOST}:{port} within {READY_TIMEOUT:.0f}s:\n"
        f"{_log_tail(log_file)}"
    )


def _launch(config_file: Path, log_file: Path, detach: bool) -> subprocess.Popen[bytes]:
    with log_file.open("ab") as log:
        return spawn([REGISTRY_BINARY, "serve", str(config_file)], log=log, detach=detach)


def serve_config(
    name: str, write_config: Callable[[int], Path], log_file: Path, *, detach: bool = False
) -> tuple[subprocess.Popen[bytes], int]:
    """Run `docker-registry serve` on the config `write_config(port)` writes for a
    free loopback port, retrying another port when someone took it meanwhile;
    return the process (listening) and its port."""
    for _attempt in range(_PORT_ATTEMPTS):
        port = free_port(HOST)
        proc = _launch(write_config(port), log_file, detach)
        try:
            _wait_ready(proc, port, log_file, name)
        except _PortTaken:
            continue
        return proc, port
    raise RegistryStartError(f"registry {name}: no free port after {_PORT_ATTEMPTS} tries")


def start_registry(spec: RegistrySpec, workdir: Path, *, detach: bool = False) -> RunningRegistry:
    """Render the config, start `docker-registry serve`, return once it listens.

    detach=True starts it in a new session so it survives the calling process
    (`sandbox up`); stop it later by pid. Raises RegistryStartError with the log tail.
    """
    if not _NAME.match(spec.name):
        raise ValueError(f"registry name {spec.name!r}: use lowercase letters, digits, '-'")
    workdir = workdir.resolve()
    reg_dir = workdir / spec.name
    data_dir = reg_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    tls, htpasswd, ca_file = _prepare(spec, workdir, reg_dir)
    notifications = (
        (NotificationEndpoint(name="audit-sink", url=spec.notifications_url),)
        if spec.notifications_url
        else ()
    )
    config_file, log_file = reg_dir / "config.yml", reg_dir / "registry.log"

    def write_config(port: int) -> Path:
        config = RegistryConfig(
            storage_root=data_dir,
            http_addr=f"{HOST}:{port}",
            tls=tls,
            htpasswd=htpasswd,
            notifications=notifications,
        )
        config_file.write_text(render_registry_config(config))
        return config_file

    proc, port = serve_config(spec.name, write_config, log_file, detach=detach)
    username = password = None
    if spec.users:
        username, password = next(iter(spec.users.items()))
    scheme = "https" if spec.tls else "http"
    return RunningRegistry(
        name=spec.name,
        url=f"{scheme}://{HOST}:{port}",
        host=HOST,
        port=port,
        ca_file=ca_file,
        username=username,
        password=password,
        config_file=config_file,
        data_dir=data_dir,
        pid=proc.pid,
        log_file=log_file,
        start_ticks=process_start_ticks(proc.pid),
        cert=spec.cert if spec.tls else None,
        _process=proc,
    )
