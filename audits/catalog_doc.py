"""`regguard rules`: the catalog as Markdown or JSON, with control mappings."""

from __future__ import annotations

import json
from typing import Any

from audits.controls import controls_for
from audits.rules.registry import Rule, catalog


def rule_data(rule: Rule) -> dict[str, Any]:
    meta = rule.meta
    return {
        "id": meta.id,
        "title": meta.title,
        "severity": meta.severity.value,
        "seed_section": meta.seed_section,
        "kinds": sorted(meta.implemented_for()),
        "prod_only": meta.prod_only,
        "rationale": meta.rationale,
        "controls": controls_for(meta).as_dict(),
        "remediation": {kind: fix.as_dict() for kind, fix in sorted(meta.remediation.items())},
    }


def catalog_json() -> str:
    return json.dumps([rule_data(r) for r in catalog().values()], indent=2)


def catalog_markdown() -> str:
    lines = [
        "| id | title | severity | seed | kinds | SOC2 | NIST 800-53 | FedRAMP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rule in catalog().values():
        d = rule_data(rule)
        fedramp = ", ".join(
            f"{lvl}: {' '.join(ids)}" for lvl, ids in d["controls"]["fedramp"].items() if ids
        )
        lines.append(
            "| {id} | {title} | {severity} | {seed} | {kinds} | {soc2} | {nist} | {fedramp} |".format(
                id=d["id"],
                title=d["title"].replace("|", "\\|"),
                severity=d["severity"],
                seed=d["seed_section"],
                kinds=", ".join(d["kinds"]),
                soc2=", ".join(d["controls"]["soc2"]),
                nist=", ".join(d["controls"]["nist_800_53"]),
                fedramp=fedramp or "-",
            )
        )
    return "\n".join(lines)
