"""The canonical content of a stored run and its SHA-256.

A run's hash covers everything the store keeps about it — the run's fields,
each finding (identity, status, severity, message, evidence digest, waiver)
and the hash of the run before it — serialised one way only (sorted keys, no
whitespace, UTF-8), so any later change to a row changes the hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

GENESIS = "0" * 64  # the "previous run" of the first run


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def evidence_digest(evidence: Mapping[str, Any]) -> str:
    """The stored trace of a finding's evidence: its hash, never the evidence
    (which may name hosts and users). Values JSON cannot hold hash as text."""
    data = json.dumps(evidence, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return sha256_hex(data.encode("utf-8"))


RUN_FIELDS = (
    "run_id", "seq", "source", "tool_version", "started_at", "finished_at", "environment",
    "targets", "summary", "pull_counts", "previous_sha256",
)
FINDING_FIELDS = ("rule", "target", "resource", "status", "severity", "message", "evidence_sha256", "waiver")


# Revisions 0002 and 0003; hashed only when set, so earlier runs keep their hashes.
SHARD_FIELDS = ("group_id", "shard", "plan_sha256")


def run_content_hash(run: Mapping[str, Any], findings: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 of the run row (JSON columns as stored text) and its findings
    in identity order."""
    rows = sorted(([f[k] for k in FINDING_FIELDS] for f in findings), key=lambda r: (r[0], r[1], r[2]))
    fields = {k: run[k] for k in RUN_FIELDS}
    fields.update({k: run[k] for k in SHARD_FIELDS if run.get(k) is not None})
    return sha256_hex(canonical_json({"run": fields, "findings": rows}))
