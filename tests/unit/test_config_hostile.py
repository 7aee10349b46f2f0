"""Config files built to hurt the loader: alias bombs, recursive aliases,
deep nesting, non-UTF-8 bytes, values YAML cannot construct, huge files.
Each is refused in well under a second with exit 2 and one line
`file: what`; ordinary anchors and merge keys keep working."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from audits.cli import main
from audits.config import MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH, ConfigError, load_config


def _alias_bomb(levels: int) -> str:
    """About 400 bytes that expand to 10**levels strings (billion laughs)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append(f"targets: [{{name: x, kind: image-refs, paths: [*a{levels - 1}]}}]")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "alias bomb, 9 levels": (_alias_bomb(9), "aliases expand to more than"),
    "alias bomb, 10 levels": (_alias_bomb(10), "aliases expand to more than"),
    "recursive alias": ("targets: &t [{name: x, kind: image-refs, paths: *t}]\n", "refers to itself"),
    "deep lists": ("targets: " + "[" * 5000 + "]" * 5000 + "\n", f"nested deeper than {MAX_CONFIG_DEPTH}"),
    "deep mappings": ("a: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", f"nested deeper than {MAX_CONFIG_DEPTH}"),
    "chained aliases nesting deeper": (
        "".join(f"a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]\n" for i in range(1, 200)).replace("*a0", "x"),
        "nested deeper than",
    ),
    "an impossible date": ("environment: 2024-13-45\ntargets: []\n", "month must be in 1..12"),
    "a bad explicit int": ("environment: !!int 0xZZ\n", "not valid YAML"),
    "an unhashable key": ("? [a]\n: b\n", "not valid YAML"),
}


@pytest.mark.timeout(20)  # before the fix the 10-level bomb took minutes
@pytest.mark.parametrize(("text", "expected"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_yaml_is_one_line_and_exit_2(
    text: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "regguard.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    code = main(["audit", "-c", str(path), "--output", str(tmp_path / "out")])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2, err
    assert elapsed < 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"regguard: {path}")
    assert expected in err


def test_a_config_that_is_not_utf8_names_the_byte(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "regguard.yaml"
    path.write_bytes("environment: d\xe9v\n".encode("latin-1"))
    assert main(["audit", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"regguard: {path}: not UTF-8 text (byte 0xe9 at offset 14)\n"


@pytest.mark.timeout(10)
def test_a_config_larger_than_the_cap_is_refused_without_reading_it_all(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["audit", "-c", "/dev/zero"]) == 2  # endless: only the cap is read
    err = capsys.readouterr().err
    assert err == f"regguard: /dev/zero: larger than {MAX_CONFIG_BYTES // 1024} KiB; not an audit config\n"


def test_anchors_and_merge_keys_still_work(tmp_path: Path) -> None:
    path = tmp_path / "regguard.yaml"
    path.write_text(
        "targets:\n"
        "  - &refs {name: a, kind: image-refs, paths: [k8s/], repositories: &repos [app/*, web/*]}\n"
        "  - {<<: *refs, name: b, public_repositories: *repos}\n"
    )
    config = load_config(path)
    assert [t.name for t in config.targets] == ["a", "b"]
    assert config.targets[1].public_repositories == ["app/*", "web/*"]


def test_a_config_at_the_depth_cap_loads(tmp_path: Path) -> None:
    nested = "[" * (MAX_CONFIG_DEPTH - 4) + "x" + "]" * (MAX_CONFIG_DEPTH - 4)
    path = tmp_path / "regguard.yaml"
    path.write_text(f"targets: [{{name: a, kind: image-refs, paths: [k8s/], repositories: {nested}}}]\n")
    with pytest.raises(ConfigError, match="repositories"):  # too deep for the model, not for the loader
        load_config(path)
