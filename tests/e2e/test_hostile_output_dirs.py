"""Output locations someone else prepared or that cannot hold reports.

Reports are written to a temporary name and renamed over the final one, so a
planted link is replaced, never written through; an output directory that is
a link, world-writable without the sticky bit, a file, under a file, or in
/proc or /sys is refused before anything is audited (exit 2, one line)."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest
import yaml

from audits.cli import main
from audits.safe_files import output_dir_refusal


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose audit needs no network: one Dockerfile, history beside it."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM nginx:1.27\n")
    path = tmp_path / "regguard.yaml"
    path.write_text(yaml.safe_dump({
        "environment": "dev",
        "history_dir": str(tmp_path / "history"),
        "targets": [{"name": "refs", "kind": "image-refs", "paths": [str(tmp_path / "app")]}],
    }))
    return path


def _audit(config: Path, output: Path, *extra: str) -> int:
    return main(["audit", "-c", str(config), "--output", str(output), "--format", "html,json", *extra])


def test_a_planted_report_link_is_replaced_not_followed(tmp_path: Path, config: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / "report.html").symlink_to(victim)
    (out / "evidence-bundle.zip").symlink_to(victim)

    assert _audit(config, out, "--evidence") == 0

    assert victim.read_text() == "precious"
    for name in ("report.html", "evidence-bundle.zip"):
        assert not (out / name).is_symlink()
        assert stat.S_ISREG((out / name).lstat().st_mode)
    assert "<!DOCTYPE html>" in (out / "report.html").read_text()
    assert zipfile.is_zipfile(out / "evidence-bundle.zip")
    assert sorted(p.name for p in out.iterdir()) == ["evidence-bundle.zip", "report.html", "report.json"]


def test_a_dangling_report_link_creates_nothing_where_it_points(tmp_path: Path, config: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    pointed_at = tmp_path / "elsewhere" / "created-by-link.json"
    pointed_at.parent.mkdir()
    (out / "report.json").symlink_to(pointed_at)

    assert _audit(config, out) == 0

    assert not pointed_at.exists()
    assert not (out / "report.json").is_symlink()
    assert '"findings"' in (out / "report.json").read_text()


def _refused(capsys: pytest.CaptureFixture[str], config: Path, output: Path) -> str:
    """Run the audit at `output`; assert it was refused before auditing and return the one line."""
    code = _audit(config, output)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(output) in lines[0]
    assert not (config.parent / "history").exists(), "the audit must not run (nor write history)"
    return lines[0]


def test_a_symlinked_output_dir_is_refused(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "out").symlink_to(real)
    assert "symbolic link" in _refused(capsys, config, tmp_path / "out")
    assert list(real.iterdir()) == []


def test_a_world_writable_output_dir_without_sticky_bit_is_refused(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    assert "writable by every user" in _refused(capsys, config, out)


def test_a_sticky_world_writable_output_dir_is_accepted(tmp_path: Path, config: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o1777)
    assert _audit(config, out) == 0
    assert (out / "report.json").is_file()


def test_a_file_as_output_is_refused(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a-file"
    out.write_text("x")
    assert "not a directory" in _refused(capsys, config, out)


def test_an_output_under_a_file_is_refused(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a-file").write_text("x")
    assert "not a directory" in _refused(capsys, config, tmp_path / "a-file" / "out")


@pytest.mark.parametrize("location", ["/proc/regguard-out", "/proc", "/sys/regguard-out", "/sys/kernel"])
def test_outputs_in_proc_and_sys_are_refused(
    location: str, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "cannot" in _refused(capsys, config, Path(location))


def _stat(uid: int, mode: int) -> os.stat_result:
    return os.stat_result((stat.S_IFDIR | mode, 0, 0, 1, uid, 0, 0, 0, 0, 0))


def test_ownership_rule_refuses_a_directory_another_user_owns() -> None:
    me = os.geteuid()
    other = me + 1000 if me else 1000
    assert output_dir_refusal(_stat(me, 0o755)) is None
    assert output_dir_refusal(_stat(0, 0o755)) is None  # root's directories: the system's layout
    assert "owned by another user" in str(output_dir_refusal(_stat(other, 0o755)))
    assert "writable by every user" in str(output_dir_refusal(_stat(me, 0o777)))
    assert output_dir_refusal(_stat(me, 0o1777)) is None
