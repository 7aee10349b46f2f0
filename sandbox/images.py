"""Tiny, reproducible OCI images, an OCI image layout on disk, and a skopeo push.

Images are built in Python from seeded random bytes: the same seed always gives
the same digests (tar and gzip timestamps are pinned), different seeds give
different images. Pushing goes through `skopeo`, a real registry client, so the
estate is seeded exactly as a CI pipeline would seed it; `OciPusher`
(re-exported from `sandbox.pusher`) is the fast path for bulk seeding.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
from base64 import b64encode
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sandbox.oci import (
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_LAYER,
    Blob,
    Manifest,
    canonical_json,
    image_index,
    image_manifest,
    sha256_digest,
    with_annotations,
)
from sandbox.pusher import OciPusher, PushError
from sandbox.registry import RunningRegistry

__all__ = [
    "OciPusher",
    "PushError",
    "SkopeoError",
    "build_image",
    "build_index",
    "build_layer",
    "push_with_skopeo",
    "seed_plan",
    "write_layout",
]

SKOPEO = "/usr/bin/skopeo"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
DEFAULT_PLATFORMS: tuple[tuple[str, str], ...] = (("linux", "amd64"), ("linux", "arm64"))
_CREATED = "2024-01-01T00:00:00Z"


class SkopeoError(RuntimeError):
    """skopeo failed; the message names the destination and skopeo's own error."""


def build_layer(seed: int | str, *, files: int = 3, size: int = 512) -> tuple[Blob, str]:
    """A gzip tar layer of `files` seeded random files; returns (blob, diff_id)."""
    rng = random.Random(f"layer:{seed}")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(files):
            content = rng.randbytes(size)
            info = tarfile.TarInfo(f"opt/sandbox/{seed}/file-{i}.bin")
            info.size, info.mtime, info.mode = len(content), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(content))
    uncompressed = raw.getvalue()
    return Blob(MEDIA_LAYER, gzip.compress(uncompressed, mtime=0)), sha256_digest(uncompressed)


def build_image(
    seed: int | str,
    *,
    files: int = 3,
    platform: tuple[str, str] = ("linux", "amd64"),
    base: tuple[Blob, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Manifest:
    """A one- or two-layer OCI image: an optional shared `base` layer, then its own."""
    layers = [base] if base is not None else []
    layers.append(build_layer(f"{seed}:{platform[0]}/{platform[1]}", files=files))
    os_name, arch = platform
    config: dict[str, Any] = {
        "created": _CREATED,
        "architecture": arch,
        "os": os_name,
        "config": {"Labels": {"org.opencontainers.image.revision": str(seed), **(labels or {})}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
        "history": [{"created": _CREATED, "created_by": "regguard sandbox"} for _ in layers],
    }
    return image_manifest(
        Blob(MEDIA_CONFIG, canonical_json(config)),
        tuple(blob for blob, _ in layers),
        platform={"architecture": arch, "os": os_name},
    )


def build_index(
    seed: int | str, platforms: tuple[tuple[str, str], ...] = DEFAULT_PLATFORMS
) -> Manifest:
    """An OCI image index pointing at one image per platform."""
    return image_index(tuple(build_image(seed, platform=p) for p in platforms))


def seed_plan(
    repos: Sequence[str], tags: Sequence[str], *, seed: int | str = 0
) -> list[tuple[str, str, Manifest]]:
    """(repo, tag, manifest) items for bulk seeding with `OciPusher.push_many`.

    All repositories share one base layer (mounted across repositories, not
    re-sent); each repository has its own config and app layer; each tag is a
    distinct manifest (its version annotation differs) over that repository's blobs.
    The upload cost is then a few blob requests per repository plus one manifest
    PUT per tag, while every tag still has its own digest.
    """
    base = build_layer(f"base:{seed}", files=4)
    items: list[tuple[str, str, Manifest]] = []
    for repo in repos:
        image = build_image(f"{seed}:{repo}", base=base)
        for tag in tags:
            variant = with_annotations(image, {"org.opencontainers.image.version": tag})
            items.append((repo, tag, variant))
    return items


def _write_blob(blobs_dir: Path, digest: str, data: bytes) -> None:
    path = blobs_dir / digest.split(":", 1)[1]
    if not path.exists():
        path.write_bytes(data)


def write_layout(layout_dir: Path, images: Mapping[str, Manifest]) -> Path:
    """Write (or add to) an OCI image layout: `oci-layout`, `index.json`, `blobs/sha256/`.

    Each image is listed in index.json under its ref name (the key in `images`), which
    is the `<ref>` in skopeo's `oci:<dir>:<ref>`.
    """
    blobs_dir = layout_dir / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    (layout_dir / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index_file = layout_dir / "index.json"
    entries: list[dict[str, Any]] = []
    if index_file.exists():
        entries = json.loads(index_file.read_text())["manifests"]
    entries = [e for e in entries if e.get("annotations", {}).get(REF_NAME_ANNOTATION) not in images]
    for ref, manifest in images.items():
        for part in manifest.walk():
            _write_blob(blobs_dir, part.digest, part.data)
            for blob in part.blobs:
                _write_blob(blobs_dir, blob.digest, blob.data)
        desc = manifest.descriptor({REF_NAME_ANNOTATION: ref})
        desc.pop("platform", None)
        entries.append(desc)
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": entries}
    index_file.write_text(json.dumps(index, indent=2))
    return layout_dir


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _skopeo_dest_args(reg: RunningRegistry, scratch: Path, tls_verify: bool) -> list[str]:
    """Credentials go in an auth file (0600) rather than `--dest-creds`, so the
    password never appears in the process list."""
    args: list[str] = []
    if reg.username and reg.password:
        token = b64encode(f"{reg.username}:{reg.password}".encode()).decode()
        auth_file = scratch / "auth.json"
        _write_private(auth_file, json.dumps({"auths": {reg.address: {"auth": token}}}))
        args += ["--dest-authfile", str(auth_file)]
    if reg.url.startswith("http://") or not tls_verify:
        args.append("--dest-tls-verify=false")
    elif reg.ca_file is not None:
        cert_dir = scratch / "certs.d"
        cert_dir.mkdir()
        shutil.copyfile(reg.ca_file, cert_dir / "ca.crt")
        args += ["--dest-cert-dir", str(cert_dir)]
    return args


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def push_with_skopeo(
    layout_dir: Path,
    reg: RunningRegistry,
    repo: str,
    tag: str,
    *,
    ref: str | None = None,
    tls_verify: bool = True,
    timeout: float = 120.0,
) -> str:
    """`skopeo copy oci:<layout>:<ref> docker://host:port/repo:tag`; returns the manifest digest.

    `ref` defaults to `tag`. Indexes are copied whole (`--all`) and digests are
    preserved, so the digest returned is the one built. TLS is verified against the
    registry's CA unless the registry is plain HTTP or `tls_verify` is False.
    """
    with tempfile.TemporaryDirectory(prefix="regguard-skopeo-") as tmp:
        scratch = Path(tmp)
        digest_file = scratch / "digest"
        cmd = [
            SKOPEO,
            "copy",
            "--quiet",
            "--all",
            "--preserve-digests",
            "--digestfile",
            str(digest_file),
            *_skopeo_dest_args(reg, scratch, tls_verify),
            f"oci:{layout_dir}:{ref or tag}",
            f"docker://{reg.address}/{repo}:{tag}",
        ]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise SkopeoError(
                f"skopeo copy to {reg.address}/{repo}:{tag} timed out after {timeout:.0f}s"
            ) from None
        if proc.returncode != 0:
            err = _redact(proc.stderr.strip(), reg.password)[-800:]
            raise SkopeoError(
                f"skopeo copy to {reg.address}/{repo}:{tag} failed (exit {proc.returncode}): {err}"
            )
        return digest_file.read_text().strip()
