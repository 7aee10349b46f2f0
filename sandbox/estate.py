"""The demo estate: three real Distribution registries seeded the way teams seed them.

* `hardened` — TLS from the sandbox CA, htpasswd (bcrypt) with two generated
  accounts, a notifications endpoint, release tags only (one of them a multi-platform
  image index), every tag cosign-signed with the estate's release key.
* `insecure` — plain HTTP, no authentication, `app/web:latest` and `v0.9.0`, unsigned.
* `basic-http` — plain HTTP with Basic auth (one shared account), a couple of tags.

Images go in with skopeo, the real client; signatures with the OCI pusher. Other
services (the ECR moto server) join through the `Service` protocol, so stopping the
estate and recording its state treat every process alike.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sandbox.images import build_image, build_index, push_with_skopeo, write_layout
from sandbox.oci import Manifest
from sandbox.process import StopsOnExit, free_port, spawned_processes, stop_each
from sandbox.pusher import OciPusher
from sandbox.registry import RegistrySpec, RunningRegistry, start_registry
from sandbox.signing import generate_key_pair, signature_for

DEMO_FRAMEWORKS = ("soc2", "nist-800-53", "fedramp-moderate")
SANDBOX_BCRYPT_ROUNDS = 6
"""Distribution checks the bcrypt hash on every request; at the production cost (10)
one request costs ~70 ms of CPU, which on a shared 2-core machine turns seeding and
auditing into tens of seconds. The hash format is the same; only the cost differs."""


@runtime_checkable
class Service(Protocol):
    """Anything the estate runs: its audit targets, the secret env vars those targets
    name, and the processes to stop."""

    @property
    def name(self) -> str: ...

    @property
    def targets(self) -> list[dict[str, Any]]: ...

    @property
    def env(self) -> dict[str, str]: ...

    @property
    def pids(self) -> list[int]: ...

    def stop(self) -> None: ...


ServiceFactory = Callable[[Path, bool], Service]
"""Starts an extra service under (workdir, detach) — e.g. `lambda w, d: start_ecr_estate(w, detach=d)`."""


@dataclass(frozen=True)
class _Seed:
    """One tag to push: (registry, repo, tag) and the image it points at."""

    registry: str
    repo: str
    tag: str
    image: Manifest
    sign: bool


@dataclass
class Estate(StopsOnExit):
    """A running estate. `targets` and `env` cover every service, attached ones included."""

    workdir: Path
    registries: dict[str, RunningRegistry]
    trusted_key: Path
    services: list[Service] = field(default_factory=list)
    pushed: dict[str, dict[str, str]] = field(default_factory=dict)
    """registry name -> {"repo:tag": manifest digest} for everything seeded."""
    signatures: dict[str, dict[str, str]] = field(default_factory=dict)
    """registry name -> {"repo:tag": signature tag} for signed tags."""

    @property
    def targets(self) -> list[dict[str, Any]]:
        return [t for service in self.services for t in service.targets]

    @property
    def env(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for service in self.services:
            merged.update(service.env)
        return merged

    def attach(self, service: Service) -> None:
        """Add a running service; the estate stops it with the rest."""
        self.services.append(service)

    def audit_config(
        self, environment: str = "prod", *, use_cases: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The full `regguard.yaml` mapping for this estate (secrets by env var name only)."""
        config: dict[str, Any] = {
            "environment": environment,
            "frameworks": list(DEMO_FRAMEWORKS),
            "trusted_keys": [str(self.trusted_key)],
            "history_dir": str(self.workdir / "history"),
            "targets": self.targets,
        }
        if use_cases:
            config["use_cases"] = list(use_cases)
        return config

    def stop(self) -> None:
        """Stop every service (last started first); all are tried even if one fails."""
        stop_each(self.services)


def _password() -> str:
    return secrets.token_urlsafe(24)


def estate_specs() -> list[RegistrySpec]:
    """The three registries, with freshly generated passwords."""
    return [
        RegistrySpec(
            name="hardened",
            tls=True,
            users={"regguard-auditor": _password(), "ci-publisher": _password()},
            notifications_url=f"http://127.0.0.1:{free_port()}/registry-events",
            bcrypt_rounds=SANDBOX_BCRYPT_ROUNDS,
        ),
        RegistrySpec(name="insecure", tls=False, users=None),
        RegistrySpec(
            name="basic-http",
            tls=False,
            users={"admin": _password()},
            bcrypt_rounds=SANDBOX_BCRYPT_ROUNDS,
        ),
    ]


def estate_images() -> list[_Seed]:
    """What each registry holds. Seeds are fixed, so digests are the same every run."""
    v090 = build_image("web-0.9.0")
    return [
        _Seed("hardened", "app/api", "v1.0.0", build_image("api-1.0.0"), True),
        _Seed("hardened", "app/api", "v1.1.0", build_image("api-1.1.0"), True),
        _Seed("hardened", "app/api", "1.2.3", build_image("api-1.2.3"), True),
        _Seed("hardened", "app/web", "v2.0.0", build_index("web-2.0.0"), True),
        _Seed("hardened", "app/web", "v2.1.0", build_image("web-2.1.0"), True),
        _Seed("insecure", "app/web", "v0.9.0", v090, False),
        _Seed("insecure", "app/web", "latest", v090, False),
        _Seed("basic-http", "app/tool", "1.0.0", build_image("tool-1.0.0"), False),
        _Seed("basic-http", "app/tool", "1.0.1", build_image("tool-1.0.1"), False),
    ]


def _layout_ref(seed: _Seed) -> str:
    return f"{seed.repo.replace('/', '_')}_{seed.tag}"


def _push_registry(reg: RunningRegistry, seeds: list[_Seed], layout_dir: Path) -> dict[str, str]:
    write_layout(layout_dir, {_layout_ref(s): s.image for s in seeds})
    return {
        f"{s.repo}:{s.tag}": push_with_skopeo(layout_dir, reg, s.repo, s.tag, ref=_layout_ref(s))
        for s in seeds
    }


def _sign_registry(
    reg: RunningRegistry, seeds: list[_Seed], digests: dict[str, str], key: Path
) -> dict[str, str]:
    items = []
    tags: dict[str, str] = {}
    for s in seeds:
        tag, manifest = signature_for(reg.address, s.repo, digests[f"{s.repo}:{s.tag}"], key)
        items.append((s.repo, tag, manifest))
        tags[f"{s.repo}:{s.tag}"] = tag
    OciPusher.for_registry(reg, concurrency=4).push_many_sync(items)
    return tags


def _seed(estate: Estate, private_key: Path) -> None:
    """Push every image with skopeo (registries in parallel), then sign."""
    seeds = estate_images()
    by_registry = {name: [s for s in seeds if s.registry == name] for name in estate.registries}
    with ThreadPoolExecutor(max_workers=len(by_registry)) as pool:
        futures = {
            name: pool.submit(
                _push_registry, estate.registries[name], group, estate.workdir / "layouts" / name
            )
            for name, group in by_registry.items()
        }
        estate.pushed = {name: future.result() for name, future in futures.items()}
    for name, group in by_registry.items():
        to_sign = [s for s in group if s.sign]
        if to_sign:
            estate.signatures[name] = _sign_registry(
                estate.registries[name], to_sign, estate.pushed[name], private_key
            )


def start_estate(
    workdir: Path,
    *,
    detach: bool = False,
    extra_services: Sequence[ServiceFactory] = (),
) -> Estate:
    """Start, seed and sign the estate under `workdir`; on any failure stop what started.

    detach=True lets the processes outlive this Python process (`sandbox up`).
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    keys = generate_key_pair(workdir / "keys", "release")
    estate = Estate(workdir=workdir, registries={}, trusted_key=keys.public_key)
    with spawned_processes() as spawned:
        try:
            for spec in estate_specs():
                reg = start_registry(spec, workdir, detach=detach)
                estate.registries[spec.name] = reg
                estate.attach(reg)
            _seed(estate, keys.private_key)
            for factory in extra_services:
                estate.attach(factory(workdir, detach))
        except BaseException:
            # A server still starting when this struck (a signal in its readiness
            # wait) is not attached yet: `spawned` has it anyway.
            estate.stop()
            spawned.stop_all()
            raise
    return estate
