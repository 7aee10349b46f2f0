"""docs/rules.md is the rule catalog as `regguard rules --format md` prints it,
regenerated with `make docs`: it must match the code, and it must read right
once rendered (every rule with its rationale and both fixes, placeholders such
as `<repo>` visible instead of swallowed as HTML tags)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from audits.cli import main
from audits.rules.registry import RuleMeta, catalog

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
REGENERATE = "make docs  (= regguard rules --format md > docs/rules.md)"
_CODE_SPAN = re.compile(r"`[^`]+`")


def rule_sections(text: str) -> dict[str, str]:
    """rule id -> the Markdown under its `## <id> ...` heading."""
    chunks = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    return {chunk.split(maxsplit=1)[0]: chunk for chunk in chunks}


def test_docs_rules_md_is_what_regguard_rules_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--format", "md"]) == 0
    printed = capsys.readouterr().out
    committed = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert committed == printed, f"{DOC} is stale or missing; regenerate it with: {REGENERATE}"


def _code_spans(meta: RuleMeta) -> list[str]:
    texts = [meta.rationale, *(fix.cli for fix in meta.remediation.values())]
    return [span for text in texts for span in _CODE_SPAN.findall(text)]


@pytest.mark.parametrize("rule_id", sorted(catalog()))
def test_each_rule_has_a_section_with_rationale_and_both_fixes(rule_id: str) -> None:
    meta = catalog()[rule_id].meta
    section = rule_sections(DOC.read_text(encoding="utf-8"))[rule_id]
    assert section.splitlines()[0] == f"{rule_id} {meta.title}"
    assert f"**{meta.severity.value}**" in section
    for kind, fix in meta.remediation.items():
        assert f"Fix on {kind} by hand (CLI):" in section, (rule_id, kind)
        if fix.component:
            assert f"Fix on {kind} with the regguard component: `{fix.component}`" in section
    for span in _code_spans(meta):
        assert span in section, (rule_id, span)


def test_the_document_renders_with_every_rule_and_visible_placeholders() -> None:
    html = MarkdownIt().enable("table").render(DOC.read_text(encoding="utf-8"))
    assert html.count("<tr>") == 1 + len(catalog())  # the overview table: header + one row per rule
    # RG-AUTH-003's distribution fix has a placeholder inside a code span, RG-TAG-001's outside one
    assert "&lt;shared-user&gt;" in html and "<shared-user>" not in html
    for rule_id in catalog():
        assert f"<h2>{rule_id} " in html, rule_id
