"""The Google part of the local estate: the Artifact Registry emulator
(`sandbox.gar_emulator`) holding project `acme-gar` with one compliant and one
weak Docker repository, so every GAR rule has something to pass and to fail.

* `europe/release` (multi-region europe): immutable tags, cleanup policies
  (keep the 10 most recent, delete untagged older than 30 days) in force, a
  customer-managed key, scanning active, readers a group only; `api:1.4.2`
  with a cosign `.sig` tag.
* `us-central1/scratch`: mutable tags, cleanup policies in dry-run only, no
  CMEK, scanning disabled, `allUsers` may read; `tool:latest`, `tool:0.9` and one
  untagged image.
* `us-central1/hub-cache`: a remote (pull-through) repository for Docker Hub with
  an upstream credential from Secret Manager.

Data Access audit logs are off; the project still has gcr.io redirection enabled.

The emulator runs as its own process (`python -m sandbox.gar_estate serve`) so
`sandbox up` can leave it running (`detach`), like moto. It writes the auditor's
service-account key (its `token_uri` the emulator's) and its URL into the workdir;
the audit reaches it through ADC (`GOOGLE_APPLICATION_CREDENTIALS`) and the
target's `endpoint_url`, exactly as a user's audit reaches Google.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.gar_emulator import EmulatedRepository, GarEmulator
from sandbox.process import StopsOnExit, child_alive, process_start_ticks, spawn, stop_child

PROJECT = "acme-gar"
TARGET_NAME = "gcp-artifacts"
READY_TIMEOUT = 30.0
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(seed: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def compliant_settings(project: str, location: str) -> dict[str, Any]:
    return {
        "format": "DOCKER",
        "mode": "STANDARD_REPOSITORY",
        "description": "release images",
        "dockerConfig": {"immutableTags": True},
        "cleanupPolicies": {
            "keep-recent": {"id": "keep-recent", "action": "KEEP", "mostRecentVersions": {"keepCount": 10}},
            "delete-untagged": {
                "id": "delete-untagged",
                "action": "DELETE",
                "condition": {"tagState": "UNTAGGED", "olderThan": "2592000s"},
            },
        },
        "cleanupPolicyDryRun": False,
        "kmsKeyName": f"projects/{project}/locations/{location}/keyRings/registry/cryptoKeys/images",
        "vulnerabilityScanningConfig": {"enablementConfig": "INHERITED", "enablementState": "SCANNING_ACTIVE"},
    }


def weak_settings() -> dict[str, Any]:
    return {
        "format": "DOCKER",
        "mode": "STANDARD_REPOSITORY",
        "dockerConfig": {"immutableTags": False},
        "cleanupPolicies": {
            "delete-old": {"id": "delete-old", "action": "DELETE", "condition": {"olderThan": "7776000s"}},
        },
        "cleanupPolicyDryRun": True,
        "vulnerabilityScanningConfig": {"enablementConfig": "DISABLED", "enablementState": "SCANNING_DISABLED"},
    }


def seed_gar_project(emu: GarEmulator) -> None:
    """The compliant and the weak repository (see the module docstring)."""
    signed = _digest("release/api:1.4.2")
    emu.add_repository(
        EmulatedRepository(
            "europe",
            "release",
            compliant_settings(emu.project, "europe"),
            bindings=[{"role": "roles/artifactregistry.reader", "members": ["group:deployers@acme.example"]}],
            images=[
                _image("api", signed, ["1.4.2"], "2026-11-20T09:00:00Z"),
                _image("api", _digest("release/api:sig"), ["sha256-" + signed.split(":")[1] + ".sig"],
                       "2026-11-20T09:01:00Z", "application/vnd.oci.image.manifest.v1+json"),
            ],
        )
    )
    emu.add_repository(
        EmulatedRepository(
            "us-central1",
            "scratch",
            weak_settings(),
            bindings=[{"role": "roles/artifactregistry.reader", "members": ["allUsers"]}],
            images=[
                _image("tool", _digest("scratch/tool:latest"), ["latest", "0.9"], "2026-10-02T12:00:00Z"),
                _image("tool", _digest("scratch/tool:old"), [], "2026-08-02T12:00:00Z"),
            ],
        )
    )
    emu.add_repository(
        EmulatedRepository(
            "us-central1",
            "hub-cache",
            {
                **weak_settings(),
                "mode": "REMOTE_REPOSITORY",
                "remoteRepositoryConfig": {
                    "description": "Docker Hub pull-through cache",
                    "dockerRepository": {"publicRepository": "DOCKER_HUB"},
                    "upstreamCredentials": {
                        "usernamePasswordCredentials": {
                            "username": "acme-bot",
                            "passwordSecretVersion": f"projects/{emu.project}/secrets/dockerhub-token/versions/3",
                        }
                    },
                },
            },
        )
    )


def _image(package: str, digest: str, tags: list[str], uploaded: str, media_type: str = MANIFEST) -> dict[str, Any]:
    return {"package": package, "digest": digest, "tags": tags, "uploadTime": uploaded, "mediaType": media_type}


# ---- the service the demo and `sandbox up` start ---------------------------------


@dataclass
class GarEstate(StopsOnExit):
    """The emulator process as one sandbox service (`name`, `targets`, `env`, `pids`, `stop`)."""

    name: str
    url: str
    key_file: Path
    pid: int
    start_ticks: int | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def targets(self) -> list[dict[str, Any]]:
        return [
            {
                "name": self.name,
                "kind": "gar",
                "project": PROJECT,
                "endpoint_url": self.url,
                "resource_manager_url": self.url,
            }
        ]

    @property
    def env(self) -> dict[str, str]:
        """Application Default Credentials: the emulated auditor's key file."""
        return {"GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file)}

    @property
    def pids(self) -> list[int]:
        return [self.pid]

    def alive(self) -> bool:
        return child_alive(self._process, self.pid, self.start_ticks)

    def stop(self) -> None:
        stop_child(self._process, self.pid, self.start_ticks)


def start_gar_estate(workdir: Path, *, detach: bool = False, name: str = TARGET_NAME) -> GarEstate:
    """Start the seeded emulator under `workdir/gar` and return once it serves."""
    home = workdir / "gar"
    home.mkdir(parents=True, exist_ok=True)
    ready = home / "ready.json"
    ready.unlink(missing_ok=True)
    with (home / "emulator.log").open("ab") as log:
        proc = spawn([sys.executable, "-m", "sandbox.gar_estate", "serve", str(home)], log=log, detach=detach)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if ready.is_file():
            info = json.loads(ready.read_text(encoding="utf-8"))
            return GarEstate(name, info["url"], Path(info["key_file"]), proc.pid, process_start_ticks(proc.pid), proc)
        if proc.poll() is not None:
            raise RuntimeError(f"the GAR emulator exited with code {proc.returncode}; see {home / 'emulator.log'}")
        time.sleep(0.05)
    stop_child(proc, proc.pid, None)
    raise RuntimeError(f"the GAR emulator did not start within {READY_TIMEOUT:.0f}s")


def _serve(home: Path) -> None:
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    with GarEmulator(PROJECT, home) as emu:
        seed_gar_project(emu)
        key = emu.write_key_file(home / "auditor-key.json")
        temporary = home / "ready.json.tmp"
        temporary.write_text(json.dumps({"url": emu.url, "key_file": str(key)}), encoding="utf-8")
        temporary.replace(home / "ready.json")
        stopped.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="serve the seeded GAR emulator until SIGTERM")
    parser.add_argument("command", choices=("serve",))
    parser.add_argument("home", type=Path)
    _serve(parser.parse_args().home)
