"""Control mappings checked against the official lists.

The NIST SP 800-53 rev5 catalog extract and the FedRAMP rev5 baselines in
`audits/data/` are the authority: a rule's labels (`IA-5(1)`) are resolved to
OSCAL ids (`ia-5.1`) to get titles and baseline membership, and
`validate_catalog` refuses labels that are unknown or withdrawn so a report
never cites a control that does not exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from audits.model import Controls
from audits.rules.registry import Rule, RuleMeta, catalog

NIST_FILE = "nist-800-53-rev5-controls.json"
FEDRAMP_FILE = "fedramp-rev5-baselines.json"
FEDRAMP_LEVELS = ("LOW", "MODERATE", "HIGH")

_LABEL_RE = re.compile(r"^([A-Z]{2})-(\d+)(?:\((\d+)\))?$")


def _load(name: str) -> Any:
    return json.loads(resources.files("audits").joinpath("data", name).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def nist_catalog() -> dict[str, dict[str, Any]]:
    """OSCAL id -> {id, label, title, family, withdrawn}."""
    return {entry["id"]: entry for entry in _load(NIST_FILE)}


@lru_cache(maxsize=1)
def fedramp_baselines() -> dict[str, frozenset[str]]:
    """Baseline level -> the OSCAL control ids it includes."""
    data = _load(FEDRAMP_FILE)
    return {level: frozenset(data[level]) for level in FEDRAMP_LEVELS}


def label_to_id(label: str) -> str:
    """`IA-5(1)` -> `ia-5.1`; `SC-8` -> `sc-8`. ValueError for anything else."""
    m = _LABEL_RE.match(label)
    if m is None:
        raise ValueError(f"{label!r} is not a NIST 800-53 control label like AC-3 or IA-5(1)")
    family, number, enhancement = m.groups()
    base = f"{family.lower()}-{number}"
    return f"{base}.{enhancement}" if enhancement else base


def label_sort_key(label: str) -> tuple[str, int, int, str]:
    """Controls in catalog order: AC-2 < AC-2(3) < AC-14; SOC 2 CC6.1 < CC6.10."""
    m = _LABEL_RE.match(label)
    if m is not None:
        family, number, enhancement = m.groups()
        return (family, int(number), int(enhancement or 0), label)
    soc2 = re.match(r"^([A-Za-z]+)(\d+)(?:\.(\d+))?", label)
    if soc2 is None:
        return (label, 0, 0, label)
    return (soc2[1], int(soc2[2]), int(soc2[3] or 0), label)


def nist_title(label: str) -> str:
    """The control's title from the catalog; ValueError when unknown."""
    entry = nist_catalog().get(label_to_id(label))
    if entry is None:
        raise ValueError(f"{label} is not in NIST SP 800-53 rev5")
    title: str = entry["title"]
    return title


def fedramp_levels(label: str) -> tuple[str, ...]:
    """The FedRAMP rev5 baselines (LOW/MODERATE/HIGH) that include the control."""
    oscal_id = label_to_id(label)
    return tuple(level for level, ids in fedramp_baselines().items() if oscal_id in ids)


def controls_for(meta: RuleMeta) -> Controls:
    """The rule's controls with, per FedRAMP level, which of its NIST labels
    that baseline includes (every level is present, possibly empty)."""
    levels: dict[str, list[str]] = {level: [] for level in FEDRAMP_LEVELS}
    for label in meta.nist_800_53:
        for level in _levels_or_none(label):
            levels[level].append(label)
    return Controls(
        soc2=meta.soc2,
        nist_800_53=meta.nist_800_53,
        fedramp={level: tuple(labels) for level, labels in levels.items()},
    )


def _levels_or_none(label: str) -> tuple[str, ...]:
    """Baseline levels, or none for a malformed label (validate_catalog reports it)."""
    try:
        return fedramp_levels(label)
    except ValueError:
        return ()


def validate_catalog(rules: Mapping[str, Rule] | None = None) -> list[str]:
    """Problems with the NIST mappings of `rules` (default: the whole
    catalog): malformed, unknown or withdrawn control labels. Empty when
    every mapping is sound."""
    problems: list[str] = []
    for rule_id, rule in (catalog() if rules is None else rules).items():
        if not rule.meta.nist_800_53:
            problems.append(f"{rule_id}: no NIST 800-53 control mapped")
        for label in rule.meta.nist_800_53:
            problem = _label_problem(label)
            if problem:
                problems.append(f"{rule_id}: {problem}")
    return problems


def _label_problem(label: str) -> str | None:
    try:
        entry = nist_catalog().get(label_to_id(label))
    except ValueError as exc:
        return str(exc)
    if entry is None:
        return f"{label} is not in NIST SP 800-53 rev5"
    if entry["withdrawn"]:
        return f"{label} ({entry['title']}) is withdrawn in rev5"
    return None
