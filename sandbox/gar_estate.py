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

The images themselves live in a real `docker-registry` (the OCI side: GAR's
`<location>-docker.pkg.dev`), pushed by `sandbox.pusher` under
`<project>/<repository>/<image>` and cosign-signed for their GAR reference
(`europe-docker.pkg.dev/acme-gar/release/api@<digest>`) with the estate's release
key; the emulator lists exactly those digests. The audit reads signatures there
through the target's `docker_url`.

The emulator runs as its own process (`python -m sandbox.gar_estate serve`) so
`sandbox up` can leave it running (`detach`), like moto. It writes the auditor's
service-account key (its `token_uri` the emulator's) and its URL into the workdir;
the audit reaches it through ADC (`GOOGLE_APPLICATION_CREDENTIALS`) and the
target's `endpoint_url`, exactly as a user's audit reaches Google.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audits.collectors.gar_signatures import docker_host
from sandbox.ecr_estate import ESTATE_KEY
from sandbox.gar_emulator import EmulatedRepository, GarEmulator
from sandbox.images import build_image
from sandbox.process import EmulatorBesideRegistry, process_start_ticks, spawn, stop_child
from sandbox.pusher import OciPusher
from sandbox.registry import RegistrySpec, RunningRegistry, start_registry
from sandbox.signing import KeyPair, generate_key_pair, signature_for, signature_tag

PROJECT = "acme-gar"
TARGET_NAME = "gcp-artifacts"
READY_TIMEOUT = 30.0
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(seed: str) -> str:
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


ImagePlan = dict[str, list[dict[str, Any]]]  # "location/repository" -> DockerImage seeds


def demo_images() -> ImagePlan:
    """The demo's images with made-up digests (when no registry holds them)."""
    signed = _digest("release/api:1.4.2")
    return {
        "europe/release": [
            _image("api", signed, ["1.4.2"], "2026-11-20T09:00:00Z"),
            _image("api", _digest("release/api:sig"), [signature_tag(signed)], "2026-11-20T09:01:00Z"),
        ],
        "us-central1/scratch": [
            _image("tool", _digest("scratch/tool:latest"), ["latest", "0.9"], "2026-10-02T12:00:00Z"),
            _image("tool", _digest("scratch/tool:old"), [], "2026-08-02T12:00:00Z"),
        ],
    }


def push_demo_images(pusher: OciPusher, project: str, private_key: Path) -> ImagePlan:
    """Push the demo's images (and the release signature) to a real registry under
    `<project>/<repository>/<image>`; the plan names the digests it stored."""
    api, tool, old = build_image("gar-release-api"), build_image("gar-scratch-tool"), build_image("gar-old-tool")
    api_repo, tool_repo = f"{project}/release/api", f"{project}/scratch/tool"
    sig_tag, sig = signature_for(docker_host("europe"), api_repo, api.digest, private_key)
    pusher.push_many_sync([
        (api_repo, "1.4.2", api), (api_repo, sig_tag, sig),
        (tool_repo, "latest", tool), (tool_repo, "0.9", tool), (tool_repo, old.digest, old),
    ])  # fmt: skip
    return {
        "europe/release": [
            _image("api", api.digest, ["1.4.2"], "2026-11-20T09:00:00Z"),
            _image("api", sig.digest, [sig_tag], "2026-11-20T09:01:00Z"),
        ],
        "us-central1/scratch": [
            _image("tool", tool.digest, ["latest", "0.9"], "2026-10-02T12:00:00Z"),
            _image("tool", old.digest, [], "2026-08-02T12:00:00Z"),
        ],
    }


def seed_gar_project(emu: GarEmulator, images: ImagePlan | None = None) -> None:
    """The compliant and the weak repository (see the module docstring)."""
    plan = images if images is not None else demo_images()
    emu.add_repository(
        EmulatedRepository(
            "europe",
            "release",
            compliant_settings(emu.project, "europe"),
            bindings=[{"role": "roles/artifactregistry.reader", "members": ["group:deployers@acme.example"]}],
            images=plan.get("europe/release", []),
        )
    )
    emu.add_repository(
        EmulatedRepository(
            "us-central1",
            "scratch",
            weak_settings(),
            bindings=[{"role": "roles/artifactregistry.reader", "members": ["allUsers"]}],
            images=plan.get("us-central1/scratch", []),
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


@contextmanager
def seeded_emulator(workdir: Path, images: ImagePlan | None = None) -> Iterator[tuple[GarEmulator, Path]]:
    """An in-process emulator of the demo project and the auditor's key file
    (for GOOGLE_APPLICATION_CREDENTIALS); stopped on the way out."""
    with GarEmulator(PROJECT, workdir) as emu:
        seed_gar_project(emu, images)
        yield emu, emu.write_key_file()


def _image(package: str, digest: str, tags: list[str], uploaded: str, media_type: str = MANIFEST) -> dict[str, Any]:
    return {"package": package, "digest": digest, "tags": tags, "uploadTime": uploaded, "mediaType": media_type}


# ---- the service the demo and `sandbox up` start ---------------------------------


@dataclass
class GarEstate(EmulatorBesideRegistry):
    """The emulator process and the registry behind it as one sandbox service
    (`name`, `targets`, `env`, `pids`, `stop`)."""

    name: str
    url: str
    key_file: Path
    registry: RunningRegistry
    keys: KeyPair
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
                "docker_url": self.registry.url,
            }
        ]

    @property
    def trusted_keys(self) -> list[Path]:
        return [self.keys.public_key]

    @property
    def env(self) -> dict[str, str]:
        """Application Default Credentials: the emulated auditor's key file."""
        return {"GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file)}



def start_gar_estate(workdir: Path, *, detach: bool = False, name: str = TARGET_NAME) -> GarEstate:
    """Start the registry, push and sign the images, then the seeded emulator under
    `workdir/gar`; return once both serve (everything started is stopped on failure)."""
    home = workdir / "gar"
    home.mkdir(parents=True, exist_ok=True)
    keys = signing_keys(workdir)
    registry = start_registry(RegistrySpec("gar-docker", tls=False), home, detach=detach)
    try:
        plan = push_demo_images(OciPusher.for_registry(registry), PROJECT, keys.private_key)
        (home / "images.json").write_text(json.dumps(plan), encoding="utf-8")
        proc, url, key_file = _start_emulator(home, detach)
    except BaseException:
        registry.stop()
        raise
    return GarEstate(name, url, key_file, registry, keys, proc.pid, process_start_ticks(proc.pid), proc)


def signing_keys(workdir: Path) -> KeyPair:
    """The estate's release key when `start_estate` wrote one (one `trusted_keys`
    entry then covers every target), else a pair generated under `workdir/gar/keys`."""
    release = workdir / ESTATE_KEY
    if release.is_file() and release.with_suffix(".pub").is_file():
        return KeyPair(release, release.with_suffix(".pub"))
    return generate_key_pair(workdir / "gar" / "keys", "cosign")


def _start_emulator(home: Path, detach: bool) -> tuple[subprocess.Popen[bytes], str, Path]:
    ready = home / "ready.json"
    ready.unlink(missing_ok=True)
    with (home / "emulator.log").open("ab") as log:
        proc = spawn([sys.executable, "-m", "sandbox.gar_estate", "serve", str(home)], log=log, detach=detach)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if ready.is_file():
            info = json.loads(ready.read_text(encoding="utf-8"))
            return proc, str(info["url"]), Path(info["key_file"])
        if proc.poll() is not None:
            raise RuntimeError(f"the GAR emulator exited with code {proc.returncode}; see {home / 'emulator.log'}")
        time.sleep(0.05)
    stop_child(proc, proc.pid, None)
    raise RuntimeError(f"the GAR emulator did not start within {READY_TIMEOUT:.0f}s")


def _serve(home: Path) -> None:
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    plan_file = home / "images.json"
    plan = json.loads(plan_file.read_text(encoding="utf-8")) if plan_file.is_file() else None
    with GarEmulator(PROJECT, home) as emu:
        seed_gar_project(emu, plan)
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
