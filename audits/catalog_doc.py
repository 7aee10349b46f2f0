"""`regguard rules`: the catalog as Markdown or JSON, with control mappings.

The Markdown form is also the committed `docs/rules.md` (`make docs` writes it;
a test fails when it differs from what the code prints), so the document a
reviewer reads can never drift from the rules the audit applies.
"""

from __future__ import annotations

import json
import re
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


DOC_INTRO = (
    "# regguard rule catalog",
    "",
    "Generated from the rule metadata in `audits/rules/` by `make docs` (`regguard rules --format md`);",
    "do not edit by hand. Ids are stable across reports, SARIF and the policy pack. FedRAMP lists, per rev5",
    "baseline, the rule's NIST SP 800-53 rev5 controls that baseline includes.",
)
# Outside `code spans`, what Markdown would act on: `<repo>` would otherwise be read as an HTML tag and vanish.
_MARKDOWN_ACTIVE = re.compile(r"([\\<>*_\[\]])")
_CODE_SPAN = re.compile(r"(`[^`]*`)")


def markdown_prose(text: str) -> str:
    """Rule metadata is written as Markdown with `code spans`; escape everything else."""
    parts = _CODE_SPAN.split(text)
    return "".join(part if i % 2 else _MARKDOWN_ACTIVE.sub(r"\\\1", part) for i, part in enumerate(parts))


def _fedramp_summary(data: dict[str, Any]) -> str:
    levels = data["controls"]["fedramp"].items()
    return ", ".join(f"{level}: {' '.join(ids)}" for level, ids in levels if ids) or "-"


def _table_row(data: dict[str, Any]) -> str:
    cells = (
        data["id"],
        data["title"].replace("|", "\\|"),
        data["severity"],
        data["seed_section"],
        ", ".join(data["kinds"]),
        ", ".join(data["controls"]["soc2"]),
        ", ".join(data["controls"]["nist_800_53"]),
        _fedramp_summary(data),
    )
    return "| " + " | ".join(cells) + " |"


def catalog_table() -> list[str]:
    """One line per rule: id, title, severity, seed section, kinds and controls."""
    lines = [
        "| id | title | severity | seed | kinds | SOC2 | NIST 800-53 | FedRAMP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    return lines + [_table_row(rule_data(rule)) for rule in catalog().values()]


def rule_section(data: dict[str, Any]) -> list[str]:
    """A rule in full: what it judges, why, which controls, and how to fix a failure."""
    scope = "production targets and repositories only" if data["prod_only"] else "every environment"
    controls = data["controls"]
    return [
        f"## {data['id']} {data['title']}",
        "",
        f"Severity **{data['severity']}** · seed section {data['seed_section']} · judged in {scope} · "
        f"kinds: {', '.join(data['kinds'])}",
        "",
        markdown_prose(data["rationale"]),
        "",
        f"Controls: SOC 2 {', '.join(controls['soc2']) or '-'} · NIST SP 800-53 rev5 "
        f"{', '.join(controls['nist_800_53']) or '-'} · FedRAMP {_fedramp_summary(data)}",
        "",
        *_fixes(data["remediation"]),
    ]


def _fixes(remediation: dict[str, dict[str, str | None]]) -> list[str]:
    """How to fix a failure, kind by kind: the CLI, and the component argument where one exists."""
    lines: list[str] = []
    for kind, fix in remediation.items():
        lines += ["", f"Fix on {kind} by hand (CLI): {markdown_prose(fix['cli'] or '')}"]
        if fix["component"]:
            lines += ["", f"Fix on {kind} with the regguard component: `{fix['component']}`"]
    return lines[1:]


def catalog_markdown() -> str:
    """The catalog document: the overview table, then one section per rule."""
    lines = [*DOC_INTRO, "", *catalog_table()]
    for rule in catalog().values():
        lines += ["", *rule_section(rule_data(rule))]
    return "\n".join(lines)
