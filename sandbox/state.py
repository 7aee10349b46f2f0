"""`regguard sandbox up|down|status`: an estate that outlives the command that started it.

`up` starts the estate detached and records it in `<workdir>/state.json`: every
service's pids (with their start times, so a recycled pid is never signalled),
URLs, audit targets and the NAMES of the env vars the audit needs. The values of
those variables — passwords — go only to `<workdir>/secrets.env`, mode 0600,
in a form a shell can source. `down` stops what the record names, including
each process group, and forgets it; running it twice is harmless.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sandbox.estate import Estate, ServiceFactory, start_estate
from sandbox.process import is_alive, process_start_ticks, terminate_pid

STATE_FILE = "state.json"
SECRETS_FILE = "secrets.env"
STATE_VERSION = 1


class SandboxError(RuntimeError):
    """A user-facing problem with the sandbox state (one line, no secrets)."""


def _urls(targets: list[dict[str, Any]]) -> list[str]:
    return [str(t[key]) for t in targets for key in ("url", "endpoint_url") if key in t]


def _state_record(estate: Estate) -> dict[str, Any]:
    services = []
    for service in estate.services:
        services.append(
            {
                "name": service.name,
                "pids": [{"pid": p, "start_ticks": process_start_ticks(p)} for p in service.pids],
                "urls": _urls(service.targets),
                "targets": service.targets,
                "env_vars": sorted(service.env),
            }
        )
    return {
        "version": STATE_VERSION,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "workdir": str(estate.workdir),
        "services": services,
        "env_vars": sorted(estate.env),
        "audit_config": estate.audit_config(),
    }


def _write_secrets(path: Path, env: dict[str, str]) -> None:
    """`export NAME='value'` lines, owner-only, so `. secrets.env` works in any shell."""
    lines = [f"export {name}={shlex.quote(value)}\n" for name, value in sorted(env.items())]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.writelines(lines)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through os.open


def load_secrets(workdir: Path) -> dict[str, str]:
    """The env vars `sandbox up` wrote, for a caller that runs the audit in-process."""
    path = workdir / SECRETS_FILE
    if not path.exists():
        return {}
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = shlex.split(line)
        if len(parts) == 2 and parts[0] == "export" and "=" in parts[1]:
            name, value = parts[1].split("=", 1)
            env[name] = value
    return env


def read_state(workdir: Path) -> dict[str, Any] | None:
    """The recorded state, or None when the sandbox is not up (or the record is unreadable)."""
    path = workdir / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state


def _service_alive(record: dict[str, Any]) -> bool:
    pids = record.get("pids", [])
    return bool(pids) and all(is_alive(p["pid"], p.get("start_ticks")) for p in pids)


def sandbox_up(workdir: Path, *, extra_services: Sequence[ServiceFactory] = ()) -> Estate:
    """Start the estate detached and record it. Refuses when a recorded estate still
    runs (run `down` first); a stale record whose processes are gone is replaced."""
    workdir = workdir.resolve()
    state = read_state(workdir)
    if state is not None:
        if any(_service_alive(s) for s in state.get("services", [])):
            raise SandboxError(f"a sandbox is already up in {workdir}; run `regguard sandbox down`")
        sandbox_down(workdir)
    estate = start_estate(workdir, detach=True, extra_services=extra_services)
    try:
        _write_secrets(workdir / SECRETS_FILE, estate.env)
        tmp = workdir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(_state_record(estate), indent=2), encoding="utf-8")
        tmp.replace(workdir / STATE_FILE)
    except BaseException:
        estate.stop()
        raise
    return estate


def sandbox_down(workdir: Path) -> list[str]:
    """Stop every recorded process (and its process group); remove the state and
    secrets files. Returns "<service>:<pid>" for each process actually stopped."""
    workdir = workdir.resolve()
    state = read_state(workdir)
    stopped: list[str] = []
    for service in reversed((state or {}).get("services", [])):
        for entry in service.get("pids", []):
            if terminate_pid(int(entry["pid"]), entry.get("start_ticks"), group=True):
                stopped.append(f"{service.get('name')}:{entry['pid']}")
    for name in (STATE_FILE, SECRETS_FILE):
        with contextlib.suppress(FileNotFoundError):
            (workdir / name).unlink()
    return stopped


def sandbox_status(workdir: Path) -> dict[str, Any]:
    """What is recorded and what of it still runs. No secret values, only names."""
    workdir = workdir.resolve()
    state = read_state(workdir)
    if state is None:
        return {"workdir": str(workdir), "up": False, "running": False, "services": []}
    services = [
        {
            "name": s.get("name"),
            "alive": _service_alive(s),
            "pids": [p["pid"] for p in s.get("pids", [])],
            "urls": s.get("urls", []),
        }
        for s in state.get("services", [])
    ]
    return {
        "workdir": str(workdir),
        "up": True,
        "running": bool(services) and all(s["alive"] for s in services),
        "started_at": state.get("started_at"),
        "services": services,
        "env_vars": state.get("env_vars", []),
        "secrets_file": str(workdir / SECRETS_FILE),
        "audit_config": state.get("audit_config"),
    }
