"""Registries that name their tags and pages with rich markup, terminal
escapes and bidi overrides: the real CLI (on a forced colour terminal) shows
them as inert text, the HTML and Markdown reports show control characters
visibly, and report.json keeps the exact value."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.hostile_servers import CLOSING_TAG, ESCAPES, FAKE_PASS, hostile_registry

ROOT = Path(__file__).resolve().parents[2]
_SGR = re.compile(r"\x1b\[[0-9;]*m")  # the colours rich itself writes on a terminal


@dataclass(frozen=True)
class HostileRun:
    returncode: int
    stdout: str
    stderr: str
    output: Path


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileRun]:
    """One `regguard audit` on a forced colour terminal against four hostile registries."""
    work = tmp_path_factory.mktemp("hostile")
    with ExitStack() as stack:
        urls = {
            "closing": stack.enter_context(hostile_registry(tags=[CLOSING_TAG])),
            "fakepass": stack.enter_context(hostile_registry(tags=[FAKE_PASS])),
            "escapes": stack.enter_context(hostile_registry(tags=[ESCAPES])),
            "link": stack.enter_context(hostile_registry(next_link="/v2/_catalog/[/x]")),
        }
        config = {
            "environment": "prod",
            "targets": [{"name": n, "kind": "distribution", "url": u, "timeout": 5} for n, u in urls.items()],
        }
        (work / "regguard.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "250", "TERM": "xterm-256color"}
        env.pop("NO_COLOR", None)
        proc = subprocess.run(
            [sys.executable, "-m", "audits.cli", "audit", "-c", str(work / "regguard.yaml"),
             "--format", "json,md,html", "--output", str(work / "out")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
    yield HostileRun(proc.returncode, proc.stdout, proc.stderr, work / "out")


def test_hostile_names_do_not_crash_the_cli(hostile_run: HostileRun) -> None:
    assert "Traceback" not in hostile_run.stderr, hostile_run.stderr
    assert hostile_run.returncode == 3  # incomplete: the tags could not be read
    assert f"wrote {hostile_run.output / 'report.json'}" in hostile_run.stdout


def test_terminal_shows_markup_and_escapes_as_inert_text(hostile_run: HostileRun) -> None:
    terminal = hostile_run.stdout + hostile_run.stderr
    assert "\x1b]8;" not in terminal, "no OSC 8 hyperlink"
    plain = _SGR.sub("", terminal)
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in plain, f"raw {raw!r} reached the terminal"
    assert "[bold green]ALL CHECKS PASSED[/]" in plain, "markup is shown, not obeyed"
    assert CLOSING_TAG in plain
    assert "a\\x1b[2Jb\\x1b]8;;https://evil.example/\\x07c\\u202ed" in plain, "escapes are shown visibly"


def test_html_report_shows_control_characters_visibly(hostile_run: HostileRun) -> None:
    html = (hostile_run.output / "report.html").read_text(encoding="utf-8")
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in html
    assert "a\\x1b[2Jb\\x1b]8;;https://evil.example/\\x07c\\u202ed" in html


def test_markdown_report_shows_control_characters_visibly_and_escapes_syntax(hostile_run: HostileRun) -> None:
    md = (hostile_run.output / "report.md").read_text(encoding="utf-8")
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in md
    # Backslashes are Markdown-escaped too, so the rendered text reads `\x1b`.
    assert "a\\\\x1b\\[2Jb\\\\x1b\\]8;;https://evil.example/\\\\x07c\\\\u202ed" in md
    assert "\\[bold green\\]ALL CHECKS PASSED\\[/\\]" in md


def test_json_report_keeps_the_exact_values(hostile_run: HostileRun) -> None:
    report = json.loads((hostile_run.output / "report.json").read_text(encoding="utf-8"))
    strings = set(_strings(report))
    for tag in (CLOSING_TAG, FAKE_PASS, ESCAPES):
        assert f"app:{tag}" in strings, tag


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_hostile_file_names_never_reach_html_or_markdown_raw(tmp_path: Path) -> None:
    from audits.cli import main

    folder = tmp_path / ESCAPES.replace("/", "_")
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM nginx:latest\n")
    config = tmp_path / "regguard.yaml"
    config.write_text(yaml.safe_dump({"targets": [{"name": "refs", "kind": "image-refs", "paths": [str(tmp_path)]}]}))
    out = tmp_path / "out"
    main(["audit", "-c", str(config), "--output", str(out), "--format", "html,md,json"])
    for name in ("report.html", "report.md"):
        text = (out / name).read_text(encoding="utf-8")
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in text, name
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "a\\x1b[2Jb\\x1b]8;;https:__evil.example_\\x07c\\u202ed" in html  # in the finding's evidence
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert any(str(folder) in s for s in _strings(report)), "JSON keeps the exact file name"
