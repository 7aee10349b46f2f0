"""The demo's Azure subscription: a compliant and a weak registry in the ACR emulator.

`contosoprod` is what `components/acr.py` provisions in prod (Premium, admin user
and anonymous pull off, public network access disabled with a private endpoint,
bypass None, export disabled, untagged retention, customer-managed key with
rotation, geo-replication, a CI token whose password expires in 30 days, both
registry log categories sent to Log Analytics, release tags locked and signed).
`contosoweak` is an Azure default left alone (Standard, admin user on, anonymous
pull on, public and open network rules, no retention, Microsoft-managed key,
a token password that never expires, no diagnostic settings, `latest`).
Each is its own audit target, so every registry-wide finding names one registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audits.vocabulary import cosign_artifact
from sandbox.acr_emulator import AcrEmulator, EmulatedRegistry, Faults
from sandbox.ecr_estate import ESTATE_KEY
from sandbox.process import StopsOnExit, child_alive, spawn, stop_child
from sandbox.signing import generate_key_pair, signature_for

SUBSCRIPTION_ID = "8f3c2a1e-4b5d-4c6e-9f70-1a2b3c4d5e6f"
STATE_FILE = "acr-estate.json"
READY_TIMEOUT_S = 30.0
RESOURCE_GROUP = "rg-registries"
WORKSPACE = (
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-monitoring/providers/"
    "Microsoft.OperationalInsights/workspaces/regguard-logs"
)
KEY_ID = "https://kv-contoso.vault.azure.net/keys/acr-cmk"
IDENTITY = (
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-acr-cmk"
)


def _stamp(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def digest_of(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def tag(name: str, digest: str, *, locked: bool, days_ago: float = 3.0) -> dict[str, Any]:
    """One `_tags` entry as the data plane returns it."""
    return {
        "name": name,
        "digest": digest,
        "createdTime": _stamp(days_ago),
        "lastUpdateTime": _stamp(days_ago),
        "signed": False,
        "changeableAttributes": {
            "deleteEnabled": not locked,
            "writeEnabled": not locked,
            "readEnabled": True,
            "listEnabled": True,
        },
    }


def signed_release(repository: str, version: str) -> list[dict[str, Any]]:
    """A locked release tag and its cosign signature tag (`sha256-<hex>.sig`)."""
    digest = digest_of(f"{repository}:{version}")
    signature = digest.replace(":", "-", 1) + ".sig"
    return [tag(version, digest, locked=True), tag(signature, digest_of(signature), locked=True)]


def compliant_registry(name: str = "contosoprod") -> EmulatedRegistry:
    properties = {
        "adminUserEnabled": False,
        "anonymousPullEnabled": False,
        "publicNetworkAccess": "Disabled",
        "networkRuleSet": {"defaultAction": "Deny", "ipRules": []},
        "networkRuleBypassOptions": "None",
        "networkRuleBypassAllowedForTasks": False,
        "zoneRedundancy": "Enabled",
        "privateEndpointConnections": [_private_endpoint(name)],
        "policies": {
            "quarantinePolicy": {"status": "disabled"},
            "trustPolicy": {"type": "Notary", "status": "disabled"},
            "retentionPolicy": {"days": 7, "status": "enabled", "lastUpdatedTime": _stamp(30)},
            "exportPolicy": {"status": "disabled"},
            "azureADAuthenticationAsArmPolicy": {"status": "disabled"},
        },
        "encryption": {
            "status": "enabled",
            "keyVaultProperties": {"keyIdentifier": KEY_ID, "identity": IDENTITY, "keyRotationEnabled": True},
        },
    }
    return EmulatedRegistry(
        name=name,
        resource_group=RESOURCE_GROUP,
        properties=properties,
        replica_locations=["northeurope"],
        scope_maps={"ci-push": [f"repositories/{r}/content/write" for r in ("payments/api", "web/frontend")]},
        tokens=[
            {
                "name": "ci",
                "scope_map": "ci-push",
                "passwords": [{"name": "password1", "creationTime": _stamp(5), "expiry": _stamp(-25)}],
            }
        ],
        diagnostic_settings=[
            {
                "workspaceId": WORKSPACE,
                "logs": [
                    {"category": "ContainerRegistryLoginEvents", "enabled": True},
                    {"category": "ContainerRegistryRepositoryEvents", "enabled": True},
                ],
                "metrics": [{"category": "AllMetrics", "enabled": True}],
            }
        ],
        repositories={
            "payments/api": signed_release("payments/api", "1.4.2") + signed_release("payments/api", "1.5.0"),
            "web/frontend": signed_release("web/frontend", "2.0.1"),
        },
    )


def weak_registry(name: str = "contosoweak") -> EmulatedRegistry:
    properties = {
        "adminUserEnabled": True,
        "anonymousPullEnabled": True,
        "publicNetworkAccess": "Enabled",
        "networkRuleSet": {"defaultAction": "Allow", "ipRules": []},
        "networkRuleBypassOptions": "AzureServices",
        "zoneRedundancy": "Disabled",
        "policies": {
            "quarantinePolicy": {"status": "disabled"},
            "retentionPolicy": {"days": 7, "status": "disabled"},
            "exportPolicy": {"status": "enabled"},
            "azureADAuthenticationAsArmPolicy": {"status": "enabled"},
        },
        "encryption": {"status": "disabled"},
    }
    return EmulatedRegistry(
        name=name,
        resource_group=RESOURCE_GROUP,
        sku="Standard",
        properties=properties,
        scope_maps={"everything": ["repositories/*/content/write", "repositories/*/content/delete"]},
        tokens=[
            {
                "name": "legacy",
                "scope_map": "everything",
                "passwords": [{"name": "password1", "creationTime": _stamp(400)}],
            }
        ],
        repositories={
            "tools/builder": [
                tag("latest", digest_of("builder:latest"), locked=False, days_ago=1),
                tag("stable", digest_of("builder:stable"), locked=False, days_ago=20),
            ],
        },
    )


def _private_endpoint(registry: str) -> dict[str, Any]:
    base = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}"
    connections = f"{base}/providers/Microsoft.ContainerRegistry/registries/{registry}/privateEndpointConnections"
    return {
        "id": f"{connections}/pe-{registry}",
        "name": f"pe-{registry}",
        "type": "Microsoft.ContainerRegistry/registries/privateEndpointConnections",
        "properties": {
            "privateEndpoint": {"id": f"{base}/providers/Microsoft.Network/privateEndpoints/pe-{registry}"},
            "privateLinkServiceConnectionState": {
                "status": "Approved",
                "description": "Auto-Approved",
                "actionsRequired": "None",
            },
            "provisioningState": "Succeeded",
        },
    }


@dataclass
class AcrEstate(StopsOnExit):
    """The emulated subscription as one sandbox service (`name`, `targets`, `env`, `pids`, `stop`):
    in this process (`emulator` set) or, detached, in a child process of its own (`process`)."""

    targets: list[dict[str, Any]]
    env: dict[str, str]
    emulator: AcrEmulator | None = None
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None
    trusted_key: Path | None = None  # the public key the `.sig` tags verify with
    name: str = "acr"

    @property
    def pids(self) -> list[int]:
        return [self.pid] if self.pid is not None else []

    def alive(self) -> bool:
        if self.pid is not None:
            return child_alive(self.process, self.pid, None)
        return self.emulator is not None and bool(self.emulator.base_url)

    def stop(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
        if self.pid is not None:
            stop_child(self.process, self.pid, None)


def demo_emulator(workdir: Path, faults: Faults | None = None, private_key: Path | None = None) -> AcrEmulator:
    """The emulator holding the demo subscription, started, its `.sig` tags holding real
    cosign signatures made with `private_key` (the estate's release key when there is one)."""
    registries = [compliant_registry(), weak_registry()]
    emulator = AcrEmulator(workdir, SUBSCRIPTION_ID, registries, faults=faults).start()
    try:
        key = private_key or release_key(workdir.parent)
        for registry in emulator.registries.values():
            sign_registry(registry, key)
    except BaseException:
        emulator.stop()
        raise
    return emulator


def release_key(estate_dir: Path) -> Path:
    """The estate's release key (what the demo's `trusted_keys` verify), else a new pair here."""
    if (estate_dir / ESTATE_KEY).is_file():
        return estate_dir / ESTATE_KEY
    return generate_key_pair(estate_dir / "acr" / "keys", "cosign").private_key


def sign_registry(registry: EmulatedRegistry, private_key: Path) -> None:
    """Replace each `sha256-<hex>.sig` placeholder with a cosign signature manifest over
    `<loginServer>/<repo>@sha256:<hex>` (the login server is known once the emulator runs)."""
    for repository, tags in registry.repositories.items():
        for entry in tags:
            artifact = cosign_artifact(str(entry["name"]))
            if artifact is None or artifact[1] != "sig":
                continue
            tag_name, manifest = signature_for(registry.login_server, repository, artifact[0], private_key)
            registry.manifests[f"{repository}:{tag_name}"] = json.loads(manifest.data)
            entry["digest"] = manifest.digest


def _service_of(emulator: AcrEmulator) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One audit target per registry, so each registry-wide finding names one registry."""
    targets = [emulator.target(f"acr-{name}", [name]) for name in emulator.registries]
    return targets, emulator.env()


def start_acr_estate(workdir: Path, *, detach: bool = False) -> AcrEstate:
    """Start the emulated subscription with a compliant and a weak registry: in this
    process's threads, or (`detach`, for `sandbox up`) in a child process that
    outlives this one until it is sent SIGTERM."""
    if not detach:
        key = release_key(workdir)
        emulator = demo_emulator(workdir / "acr", private_key=key)
        targets, env = _service_of(emulator)
        return AcrEstate(targets, env, emulator=emulator, trusted_key=key.with_suffix(".pub"))
    state = workdir / "acr" / STATE_FILE
    state.parent.mkdir(parents=True, exist_ok=True)
    state.unlink(missing_ok=True)
    with (workdir / "acr" / "emulator.log").open("ab") as log:
        proc = spawn([sys.executable, "-m", "sandbox.acr_estate", str(workdir / "acr")], log=log, detach=True)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not state.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_child(proc, proc.pid, None)
            raise RuntimeError(f"the ACR emulator did not start (see {workdir / 'acr' / 'emulator.log'})")
        time.sleep(0.05)
    served = json.loads(state.read_text(encoding="utf-8"))
    return AcrEstate(served["targets"], served["env"], process=proc, pid=proc.pid)


def _serve(directory: Path) -> None:
    """The detached child: serve the demo subscription until SIGTERM/SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    emulator = demo_emulator(directory)
    try:
        targets, env = _service_of(emulator)
        tmp = directory / f".{STATE_FILE}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the emulated client secret
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"targets": targets, "env": env}, out)
        tmp.replace(directory / STATE_FILE)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        (directory / STATE_FILE).unlink(missing_ok=True)


if __name__ == "__main__":
    _serve(Path(sys.argv[1]))
