"""Words the auditor, the components and the policy pack must mean the same
thing by: which environments are production, what a release tag is, which
tags are cosign artifacts rather than images, which frameworks a report maps to.

It sits below `audits.rules`, `components` and `policy` and imports none of
them, so each can use it without a package cycle; it imports nothing but the
standard library.
"""

from __future__ import annotations

import re

# Environment names that mean production, compared case-insensitively. The baseline
# profiles, the rule context and the policy pack all ask `is_production_environment`.
PRODUCTION_ENVIRONMENTS = frozenset({"prod", "production"})

FRAMEWORKS = ("soc2", "nist-800-53", "fedramp-low", "fedramp-moderate", "fedramp-high")
# What a report maps to when the audit config (or the stack config) names no framework.
DEFAULT_FRAMEWORKS = ("soc2", "nist-800-53")

# Release tags a tag-immutability setting must never leave mutable (checked with
# fnmatch by the rules, and against Harbor's immutable-tag rules by its collector).
SAMPLE_RELEASE_TAGS = (
    "1.2.3",
    "v1.2.3",
    "10.20.30",
    "v10.20.30",
    "1.2",
    "v1.2",
    "1.2.3-rc.1",
    "v1.2.3-rc.1",
    "release-1.2.3",
    "release-2024.06",
)

# cosign's tag scheme for the artifacts it attaches to a manifest `sha256:<hex>`:
# `sha256-<hex>.sig` (signature), `.att` (attestation), `.sbom`.
COSIGN_ARTIFACT_TAG = re.compile(r"sha256-([0-9a-f]{64})\.(sig|att|sbom)")


# The OCI 1.1 referrers tag schema: a registry without the referrers API lists a
# manifest's referrers in an index tagged `sha256-<hex>`.
REFERRERS_INDEX_TAG = re.compile(r"sha256-[0-9a-f]{64}")


def is_artifact_tag(tag: str) -> bool:
    """A tag that holds signatures/attestations/SBOMs or a referrers index, not an image."""
    return cosign_artifact(tag) is not None or REFERRERS_INDEX_TAG.fullmatch(tag) is not None


def is_production_environment(environment: str) -> bool:
    return environment.lower() in PRODUCTION_ENVIRONMENTS


def cosign_artifact(tag: str) -> tuple[str, str] | None:
    """(`sha256:<hex>` subject digest, "sig"/"att"/"sbom") for a cosign artifact tag, else None."""
    m = COSIGN_ARTIFACT_TAG.fullmatch(tag)
    return (f"sha256:{m[1]}", m[2]) if m else None


def matches_release_tag(pattern: str) -> bool:
    """True when the wildcard `pattern` (`*` = any run of characters) matches
    at least one release tag `1.2.3` or `v1.2.3`.

    Exact, not sampled: walks the product of the glob's positions and a small
    automaton for release tags, so `v*`, `*.3`, `1*` and `*` are caught while
    `dev-*`, `sha-*` and `*-rc` are not.
    """
    alphabet = set(pattern.replace("*", "")) | {"0", "v", ".", "x"}
    start = (0, 0)
    seen = {start}
    todo = [start]
    while todo:
        pos, state = todo.pop()
        for p in _glob_closure(pattern, pos):
            if p == len(pattern) and state in _RELEASE_ACCEPT:
                return True
        for ch in alphabet:
            nxt_state = _release_step(state, ch)
            if nxt_state is None:
                continue
            for p in _glob_closure(pattern, pos):
                for q in _glob_step(pattern, p, ch):
                    item = (q, nxt_state)
                    if item not in seen:
                        seen.add(item)
                        todo.append(item)
    return False


# Release tag automaton: v? D+ . D+ . D+   (states 0..5; 5 accepts)
_RELEASE_ACCEPT = frozenset({5})


def _release_step(state: int, ch: str) -> int | None:
    digit = ch.isdigit() and ch.isascii()
    if state == 0:
        return 6 if ch == "v" else (1 if digit else None)
    if state == 6:  # after the optional `v`
        return 1 if digit else None
    if state in (1, 3):
        return state if digit else (state + 1 if ch == "." else None)
    if state in (2, 4):
        return state + 1 if digit else None
    if state == 5:
        return 5 if digit else None
    return None


def _glob_closure(pattern: str, pos: int) -> list[int]:
    """Positions reachable from `pos` by letting `*` match nothing."""
    out = [pos]
    while pos < len(pattern) and pattern[pos] == "*":
        pos += 1
        out.append(pos)
    return out


def _glob_step(pattern: str, pos: int, ch: str) -> list[int]:
    if pos >= len(pattern):
        return []
    if pattern[pos] == "*":
        return [pos]
    return [pos + 1] if pattern[pos] == ch else []
