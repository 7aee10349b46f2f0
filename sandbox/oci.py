"""OCI content as plain values: blobs, manifests and indexes with their digests.

Everything the builders, the layout writer, the pushers and the signer exchange is
one of these two frozen types, so a manifest built in memory can go to disk for
skopeo or straight to a registry over HTTP without conversion.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_MEDIA_TYPES = (
    MEDIA_MANIFEST,
    MEDIA_INDEX,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Compact JSON; the bytes are what gets digested, so they must be stable."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Blob:
    """A config or layer blob."""

    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    def descriptor(self, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
        desc: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.data),
        }
        if annotations:
            desc["annotations"] = dict(annotations)
        return desc


@dataclass(frozen=True)
class Manifest:
    """An image manifest (with its blobs) or an image index (with its child manifests)."""

    media_type: str
    data: bytes
    blobs: tuple[Blob, ...] = ()
    children: tuple[Manifest, ...] = ()
    platform: Mapping[str, str] | None = field(default=None, compare=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def is_index(self) -> bool:
        return self.media_type == MEDIA_INDEX

    def descriptor(self, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
        desc: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.data),
        }
        if self.platform:
            desc["platform"] = dict(self.platform)
        if annotations:
            desc["annotations"] = dict(annotations)
        return desc

    def walk(self) -> Iterator[Manifest]:
        """Children first, then self: the order a registry needs them pushed in."""
        for child in self.children:
            yield from child.walk()
        yield self

    def all_blobs(self) -> Iterator[Blob]:
        for manifest in self.walk():
            yield from manifest.blobs


def image_manifest(
    config: Blob,
    layers: tuple[Blob, ...],
    *,
    annotations: Mapping[str, str] | None = None,
    layer_annotations: Mapping[str, Mapping[str, str]] | None = None,
    platform: Mapping[str, str] | None = None,
) -> Manifest:
    """An OCI image manifest over `config` and `layers` (annotations keyed by layer digest)."""
    per_layer = layer_annotations or {}
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor(per_layer.get(layer.digest)) for layer in layers],
    }
    if annotations:
        body["annotations"] = dict(annotations)
    return Manifest(MEDIA_MANIFEST, canonical_json(body), (config, *layers), platform=platform)


def image_index(manifests: tuple[Manifest, ...]) -> Manifest:
    """An OCI image index over platform manifests (each must carry its platform)."""
    body = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [m.descriptor() for m in manifests],
    }
    return Manifest(MEDIA_INDEX, canonical_json(body), children=manifests)


def with_annotations(manifest: Manifest, annotations: Mapping[str, str]) -> Manifest:
    """The same content under a new digest: `manifest` plus manifest-level annotations.

    Tags of one repository can then have distinct digests while sharing every blob,
    which is what lets bulk seeding cost one manifest PUT per tag.
    """
    body = json.loads(manifest.data)
    body["annotations"] = {**body.get("annotations", {}), **annotations}
    return Manifest(
        manifest.media_type,
        canonical_json(body),
        manifest.blobs,
        manifest.children,
        platform=manifest.platform,
    )
