"""Untrusted text on the terminal: control, bidi and separator characters
become visible escapes, long values are capped, and every place the CLI
prints such text (progress, lint output, error lines) uses that helper."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from audits.cli import main
from audits.progress import terminal_progress
from audits.untrusted import terminal_text, visible_controls

HOSTILE = "[/x]\x1b[2J\x1b]8;;https://evil.example/\x07\u202e"
VISIBLE = "[/x]\\x1b[2J\\x1b]8;;https://evil.example/\\x07\\u202e"


def _assert_inert(output: str) -> None:
    """None of the hostile sequences reached the stream raw; rich's own
    colour and cursor sequences may be there."""
    for raw in ("\x1b[2J", "\x1b]8;", "\x07", "\u202e"):
        assert raw not in output, f"raw {raw!r} reached the terminal"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred", "\\x1b[31mred"),
        ("bell\x07", "bell\\x07"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("c1\x9b2J", "c1\\x9b2J"),
        ("rtl\u202eevil\u2066x\u2069", "rtl\\u202eevil\\u2066x\\u2069"),
        ("line\nforged\r", "line\\x0aforged\\x0d"),
        ("ünïcode ✓ [ok]", "ünïcode ✓ [ok]"),
    ],
)
def test_terminal_text_makes_control_characters_visible(raw: str, shown: str) -> None:
    assert terminal_text(raw) == shown


def test_documents_keep_their_line_breaks() -> None:
    assert visible_controls("one\ntwo\tthree\x1b", keep_lines=True) == "one\ntwo\tthree\\x1b"


def test_terminal_text_caps_a_huge_value_quickly() -> None:
    started = time.monotonic()
    shown = terminal_text("\x1b" * 5_000_000, limit=100)
    assert time.monotonic() - started < 1
    assert shown.startswith("\\x1b" * 100)
    assert shown.endswith("(4999900 more characters)")


def test_progress_shows_a_hostile_description_as_text(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    with terminal_progress(force=True) as update:
        assert update is not None
        update(f"evil: {HOSTILE}", 1, 2)
    err = capsys.readouterr().err
    _assert_inert(err)
    assert VISIBLE in err


def test_lint_output_shows_a_hostile_file_name_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    folder = tmp_path / HOSTILE.replace("/", "_")
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM nginx:latest\n")
    code = main(["lint-refs", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    _assert_inert(out)
    assert VISIBLE.replace("/", "_") in out
    assert "Dockerfile:1" in out


def test_config_error_line_shows_a_hostile_key_as_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "regguard.yaml"
    config.write_text(yaml.safe_dump({HOSTILE: 1, "targets": [{"name": "a", "kind": "image-refs", "paths": ["."]}]}))
    code = main(["audit", "-c", str(config), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    _assert_inert(err)
    assert f"{VISIBLE}: unknown key" in err


def test_markdown_cells_escape_their_syntax_and_show_controls() -> None:
    from reports.markdown import md_cell

    assert md_cell("a|b`c<d>\x1b\u202e\x1c") == r"a\|b\`c&lt;d&gt;\\x1b\\u202e\\x1c"
