"""The Docker Hub part of the local estate: the Hub API emulator (a process,
`sandbox.dockerhub_emulator`) in front of a real `docker-registry` holding the
images, with two organizations so every Docker Hub rule has something to pass
and something to fail.

* `regguard-good`: `api` private, every tag immutable, v1.0.0 and v1.1.0;
  `site` public and declared public, immutable by rules `v.*`, `[0-9].*` and
  `release-.*`, v2.0.0; every tag cosign-signed with the estate's release key.
  Restricted images on (official and verified publishers), audit log on, one
  organization token that expires after 30 days and was used today.
* `regguard-weak`: `app` public but not declared public, mutable, `latest`
  and 0.9; `tools` private, immutable only for `v.*` (so `release-1` stays
  mutable); nothing signed. Restricted images off, no audit log on its plan, an
  organization token that never expires and was last used 200 days ago.

The auditor is one Docker ID (`regguard-auditor`, owner of both organizations)
with a personal access token; the same token is its password on the registry
(htpasswd over TLS), as `docker login` uses a Docker Hub token. Signatures name
`index.docker.io/<org>/<repo>`, as cosign writes them for Docker Hub images.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.dockerhub_emulator import HOST, HubNamespace, HubRepository, HubState, OrgToken, PersonalToken
from sandbox.estate import SANDBOX_BCRYPT_ROUNDS
from sandbox.images import build_image, push_with_skopeo, write_layout
from sandbox.process import EmulatorBesideRegistry, free_port, process_start_ticks, spawn_listening
from sandbox.pusher import OciPusher
from sandbox.registry import RegistrySpec, RunningRegistry, start_registry
from sandbox.signing import KeyPair, generate_key_pair, signature_for

AUDITOR = "regguard-auditor"
USER_ENV = "REGGUARD_SANDBOX_DOCKERHUB_USER"
TOKEN_ENV = "REGGUARD_SANDBOX_DOCKERHUB_TOKEN"
SIGNED_REFERENCE_HOST = "index.docker.io"
READY_TIMEOUT = 20.0
ESTATE_KEY = Path("keys") / "release.key"  # where sandbox.estate.start_estate writes the release key


@dataclass(frozen=True)
class _Image:
    namespace: str
    repo: str
    tag: str
    sign: bool


IMAGES = (
    _Image("regguard-good", "api", "v1.0.0", True),
    _Image("regguard-good", "api", "v1.1.0", True),
    _Image("regguard-good", "site", "v2.0.0", True),
    _Image("regguard-weak", "app", "latest", False),
    _Image("regguard-weak", "app", "0.9", False),
    _Image("regguard-weak", "tools", "release-1", False),
)
PUBLIC_REPOSITORIES = {"regguard-good": ["regguard-good/site"], "regguard-weak": []}


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def estate_state(token: str, now: datetime) -> HubState:
    """The two organizations, the auditor and its tokens, dated relative to `now`."""
    pushed = _iso(now - timedelta(days=3))
    good = HubNamespace(
        "regguard-good",
        owners=[AUDITOR],
        repositories={
            "api": HubRepository("api", True, 1200, True, [], {"v1.0.0": pushed, "v1.1.0": pushed}),
            "site": HubRepository("site", False, 56000, True, ["v.*", "[0-9].*", "release-.*"], {"v2.0.0": pushed}),
        },
        org_tokens=[OrgToken("a3c1e7f0-good", "ci-pull", AUDITOR, _iso(now - timedelta(days=10)),
                             _iso(now + timedelta(days=20)), _iso(now))],  # fmt: skip
        restricted_images={"enabled": True, "allow_official_images": True, "allow_verified_publishers": True},
    )
    weak = HubNamespace(
        "regguard-weak",
        owners=[AUDITOR],
        repositories={
            "app": HubRepository("app", False, 9000, False, [], {"latest": pushed, "0.9": pushed}),
            "tools": HubRepository("tools", True, 40, True, ["v.*"], {"release-1": pushed}),
        },
        org_tokens=[OrgToken("9b2d4c11-weak", "legacy-push", "former-admin", _iso(now - timedelta(days=400)),
                             None, _iso(now - timedelta(days=200)))],  # fmt: skip
        restricted_images={"enabled": False, "allow_official_images": False, "allow_verified_publishers": False},
        audit_log=False,
    )
    auditor_token = PersonalToken("5f0e9d3a-auditor", "regguard audit (read-only)", ["repo:read"],
                                  _iso(now - timedelta(days=5)), _iso(now + timedelta(days=25)), _iso(now))  # fmt: skip
    return HubState(
        accounts={AUDITOR: token},
        personal_tokens={AUDITOR: [auditor_token]},
        namespaces={ns.name: ns for ns in (good, weak)},
    )


@dataclass
class DockerHubEstate(EmulatorBesideRegistry):
    """The emulator process and the registry as one sandbox service."""

    name: str
    hub_url: str
    registry: RunningRegistry
    token: str = field(repr=False)
    pid: int
    keys: KeyPair
    start_ticks: int | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def targets(self) -> list[dict[str, Any]]:
        return [
            {
                "name": f"hub-{namespace.removeprefix('regguard-')}",
                "kind": "dockerhub",
                "namespace": namespace,
                "username_env": USER_ENV,
                "token_env": TOKEN_ENV,
                "hub_url": self.hub_url,
                "registry_url": self.registry.url,
                "ca_file": str(self.registry.ca_file),
                "allowed_token_realms": [],
                "public_repositories": PUBLIC_REPOSITORIES[namespace],
            }
            for namespace in PUBLIC_REPOSITORIES
        ]

    @property
    def env(self) -> dict[str, str]:
        return {USER_ENV: AUDITOR, TOKEN_ENV: self.token}



def _keys(workdir: Path) -> KeyPair:
    """The estate's release key when `start_estate` wrote one (one `trusted_keys` entry covers every target)."""
    private = workdir / ESTATE_KEY
    if private.is_file() and private.with_suffix(".pub").is_file():
        return KeyPair(private, private.with_suffix(".pub"))
    return generate_key_pair(workdir / "dockerhub" / "keys", "cosign")


def _seed_registry(reg: RunningRegistry, workdir: Path, key: Path) -> None:
    refs = {f"{i.namespace}_{i.repo}_{i.tag}": i for i in IMAGES}
    layout = write_layout(workdir / "dockerhub" / "layout", {r: build_image(f"hub-{r}") for r in refs})
    signatures = []
    for ref, image in refs.items():
        repo = f"{image.namespace}/{image.repo}"
        digest = push_with_skopeo(layout, reg, repo, image.tag, ref=ref)
        if image.sign:
            signatures.append((repo, *signature_for(SIGNED_REFERENCE_HOST, repo, digest, key)))
    OciPusher.for_registry(reg, concurrency=4).push_many_sync(signatures)


def start_emulator(state: HubState, directory: Path, *, detach: bool = False) -> tuple[subprocess.Popen[bytes], int]:
    """The emulator over `state` as a subprocess on a free port, its state file and
    log in `directory`: (process, port)."""
    state_file = directory / "hub-state.json"
    state_file.write_text(state.to_json())
    state_file.chmod(0o600)  # holds the auditor's token
    port = free_port(HOST)
    proc = spawn_listening([sys.executable, "-m", "sandbox.dockerhub_emulator", str(state_file), str(port)],
                           host=HOST, port=port, log_file=directory / "emulator.log", detach=detach,
                           timeout=READY_TIMEOUT, name="the Docker Hub emulator")  # fmt: skip
    return proc, port


def start_dockerhub_estate(workdir: Path, *, detach: bool = False, name: str = "dockerhub") -> DockerHubEstate:
    """Start the registry and the emulator under `workdir/dockerhub`, seed and sign;
    whatever started is stopped again if a later step fails."""
    workdir = workdir.resolve()
    (workdir / "dockerhub").mkdir(parents=True, exist_ok=True)
    token = "dckr_pat_" + secrets.token_urlsafe(24)
    keys = _keys(workdir)
    spec = RegistrySpec(name="dockerhub-oci", tls=True, users={AUDITOR: token}, bcrypt_rounds=SANDBOX_BCRYPT_ROUNDS)
    registry = start_registry(spec, workdir, detach=detach)
    try:
        _seed_registry(registry, workdir, keys.private_key)
        proc, port = start_emulator(estate_state(token, datetime.now(UTC)), workdir / "dockerhub", detach=detach)
    except BaseException:
        registry.stop()
        raise
    return DockerHubEstate(
        name=name, hub_url=f"http://{HOST}:{port}", registry=registry, token=token, pid=proc.pid, keys=keys,
        start_ticks=process_start_ticks(proc.pid), _process=proc,
    )  # fmt: skip
