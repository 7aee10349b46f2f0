"""The rule catalog (RULES.md) as code: one module per area, each rule a pure
function registered with its metadata by `@rule`."""

from __future__ import annotations

import importlib

RULE_MODULES = (
    "tls",
    "auth",
    "credentials",
    "tags",
    "scanning",
    "signing",
    "retention",
    "monitoring",
    "encryption",
    "network",
    "replication",
    "fit",
    "sources",
)

_loaded = False


def load_all() -> None:
    """Import every rule module once so their `@rule` decorators register."""
    global _loaded
    if _loaded:
        return
    for name in RULE_MODULES:
        importlib.import_module(f"audits.rules.{name}")
    _loaded = True
