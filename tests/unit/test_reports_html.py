"""HTML: one self-contained page, untrusted names escaped, failing first."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

from audits.model import Status
from reports import get_reporter
from tests.unit import report_fixtures as fx


def render() -> str:
    return get_reporter("html").render(fx.audit_result(), fx.rules())


class _Collector(HTMLParser):
    """Collects tags, attributes and the text of <pre> blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.pre: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in {"meta", "br", "input"}:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"unbalanced </{tag}> after {self.open[-3:]}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.open and self.open[-1] == "pre":
            self.pre.append(data)


def parse(html: str) -> _Collector:
    parser = _Collector()
    parser.feed(html)
    parser.close()
    assert parser.open == [], f"unclosed tags: {parser.open}"
    return parser


def test_page_is_well_formed_and_self_contained() -> None:
    html = render()
    page = parse(html)
    tags = [t for t, _ in page.tags]
    assert tags.count("script") == 1  # the findings filters, inline
    assert "link" not in tags and "img" not in tags and "iframe" not in tags
    assert all("src" not in attrs and "href" not in attrs for _, attrs in page.tags)
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style is not None
    assert "url(" not in style.group(1) and "@import" not in style.group(1)
    script = re.search(r"<script>(.*?)</script>", html, re.S)
    assert script is not None
    for call in ("fetch(", "XMLHttpRequest", "innerHTML", "eval(", "import(", "WebSocket", "sendBeacon"):
        assert call not in script.group(1)


def test_the_content_security_policy_allows_only_the_page_itself() -> None:
    html = render()
    [csp] = [attrs["content"] for tag, attrs in parse(html).tags
             if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp is not None and csp.startswith("default-src 'none';")
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    script = re.search(r"<script>(.*?)</script>", html, re.S)
    assert style and script
    for kind, body in (("style-src", style.group(1)), ("script-src", script.group(1))):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{kind} 'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp


def test_charts_and_filters_are_in_the_page() -> None:
    page = parse(render())
    tags = [t for t, _ in page.tags]
    assert tags.count("svg") >= 2 and "rect" in tags
    selects = {attrs.get("data-filter") for tag, attrs in page.tags if tag == "select"}
    assert selects == {"status", "severity", "target", "rule", "control"}
    rows = [attrs for tag, attrs in page.tags if tag == "tr" and "data-status" in attrs]
    assert len(rows) == 7 and {r["data-target"] for r in rows} == {"edge", "core", "manifests"}


def test_untrusted_names_are_escaped() -> None:
    html = render()
    assert fx.SCRIPT not in html
    assert "app/&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # and the browser would show the original text
    assert f"app/{fx.SCRIPT}" in "".join(parse(html).text)


def test_summary_targets_and_controls() -> None:
    text = " ".join(" ".join(parse(render()).text).split())
    for heading in ("Summary", "Targets", "SOC 2 trust services criteria",
                    "NIST SP 800-53 rev5 (with FedRAMP rev5 baselines)", "Findings", "Posture",
                    "Since the last run", "Trend"):
        assert heading in text
    assert "core ecr no" in text
    assert "plain_http: connection refused" in text
    assert "IA-5(1) Password-based Authentication MODERATE not_applicable" in text
    assert "AC-3 Access Enforcement LOW, MODERATE fail" in text
    assert "Audit incomplete" in text


def test_findings_failing_first_with_evidence_and_remediation() -> None:
    html = render()
    order = re.findall(r'<div class="finding st-(\w+)">', html)
    statuses = [s.value for s in (Status.FAIL, Status.ERROR, Status.MANUAL, Status.PASS,
                                  Status.NOT_APPLICABLE)]
    assert order == sorted(order, key=statuses.index)
    assert order[:2] == ["fail", "fail"]
    assert len(order) == 7
    pre = "\n".join(parse(html).pre)
    assert '"Authorization": "***REDACTED***"' in pre
    assert '"reference": "nginx:latest"' in pre
    assert "fix-rg-auth-001 on distribution --now" in pre
    assert not fx.has_secret(html)


def test_pass_findings_show_no_remediation() -> None:
    html = render()
    block = re.search(r'<div class="finding st-pass">.*?</div>', html, re.S)
    assert block is not None and "Remediation" not in block.group(0)
