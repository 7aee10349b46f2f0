"""`make demo` twice, as a user would: the second report says what changed
since the first and shows a trend, `verify-evidence` accepts the demo bundle
against the demo's history and rejects a tampered copy, and the HTML report
works in a real browser (headless Chromium) without a single request."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from audits.cli import main
from tests.e2e.browser import console_problems, headless_chromium, requested_urls

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_TAG = "<script>document.title='pwned'</script>"


def _demo(out: Path, work: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audits.cli", "demo", "--output", str(out), "--workdir", str(work)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("demo-twice")
    out = base / "out"
    for n in (1, 2):
        proc = _demo(out, base / f"work{n}")
        assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def _history(out: Path) -> str:
    return str(out / ".regguard" / "history.sqlite")


def test_the_second_demo_reports_changes_since_the_first_and_a_trend(twice: Path) -> None:
    report = json.loads((twice / "report.json").read_text())
    since = report["since_last_run"]
    assert since is not None and since["head"] == report["run_id"]
    assert len(since["persisting"]) > 10  # the same estate fails the same rules again
    runs_per_target: dict[str, int] = {}
    for point in report["trend"]:
        runs_per_target[point["target"]] = runs_per_target.get(point["target"], 0) + 1
    assert set(runs_per_target.values()) == {2}
    md = (twice / "report.md").read_text()
    assert f"Compared with run `{since['base']}`" in md and "## Trend" in md
    line = f"since run {since['base']}: {len(since['new_failures'])} new"
    assert line in (twice / "report.junit.xml").read_text()
    oscal = json.loads((twice / "oscal-assessment-results.json").read_text())
    props = {p["name"]: p["value"] for p in oscal["assessment-results"]["results"][0]["props"]}
    assert props["run-id"] == report["run_id"] and props["since-last-run"].startswith(line)


def test_history_commands_on_the_demo_history(twice: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--history", _history(twice)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["history", "verify", "--history", _history(twice)]) == 0
    assert "2 run(s); chain intact" in capsys.readouterr().out
    assert main(["diff", "--format", "json", "--history", _history(twice)]) == 0
    assert json.loads(capsys.readouterr().out)["persisting"]


def test_verify_evidence_accepts_the_demo_bundle_and_rejects_a_tampered_copy(
    twice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = twice / "evidence-bundle.zip"
    assert main(["verify-evidence", str(bundle), "--history", _history(twice)]) == 0, capsys.readouterr().err
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(tampered, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            target.writestr(name, data.replace(b'"fail"', b'"waived"', 1) if name == "reports/report.json" else data)
    assert main(["verify-evidence", str(tampered)]) == 1
    assert "reports/report.json: content differs from the manifest" in capsys.readouterr().err


def _visible_rows(driver: object) -> list[object]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#findings-table tbody tr")  # type: ignore[attr-defined]
    return [r for r in rows if r.is_displayed()]


def test_the_demo_report_in_a_real_browser(twice: Path, tmp_path: Path) -> None:
    report = json.loads((twice / "report.json").read_text())
    findings = report["findings"]
    with headless_chromium(tmp_path) as driver:
        driver.get_log("performance")  # the browser's own start-up pages are not the report's requests
        driver.get((twice / "report.html").as_uri())
        assert driver.title.startswith("regguard audit report")
        assert len(_visible_rows(driver)) == len(findings)

        Select(driver.find_element(By.ID, "filter-status")).select_by_value("fail")
        fails = [f for f in findings if f["status"] == "fail"]
        assert len(_visible_rows(driver)) == len(fails)
        Select(driver.find_element(By.ID, "filter-target")).select_by_value("insecure")
        rows = _visible_rows(driver)
        assert len(rows) == len([f for f in fails if f["target"] == "insecure"]) > 0
        assert all(r.get_attribute("data-target") == "insecure" for r in rows)  # type: ignore[attr-defined]
        assert driver.find_element(By.ID, "findings-shown").text == f"{len(rows)} of {len(findings)} findings shown"

        driver.find_element(By.ID, "filter-reset").click()
        Select(driver.find_element(By.ID, "filter-control")).select_by_value("AC-3")
        assert len(_visible_rows(driver)) == len([f for f in findings if "AC-3" in f["controls"]["nist_800_53"]])
        driver.find_element(By.ID, "filter-reset").click()
        driver.find_element(By.ID, "filter-search").send_keys("RG-TLS-001")
        assert 0 < len(_visible_rows(driver)) < len(findings)

        driver.save_screenshot(str(tmp_path / "report.png"))
        assert (tmp_path / "report.png").stat().st_size > 10_000
        assert console_problems(driver) == []
        assert requested_urls(driver, (twice / "report.html").as_uri()) == [(twice / "report.html").as_uri()]


def test_hostile_names_stay_inert_in_the_browser(tmp_path: Path) -> None:
    import dataclasses

    from reports import get_reporter
    from tests.unit import report_fixtures as fx

    result = fx.audit_result()
    hostile = dataclasses.replace(result.findings[0], target=HOSTILE_TAG, resource="\x1b[2J\x1b]8;;https://evil\x07x")
    page = tmp_path / "report.html"
    page.write_text(get_reporter("html").render(dataclasses.replace(result, findings=(*result.findings, hostile)),
                                                fx.rules()))
    with headless_chromium(tmp_path) as driver:
        driver.get_log("performance")
        driver.get(page.as_uri())
        assert driver.title.startswith("regguard audit report")  # the injected script never ran
        assert driver.execute_script("return document.scripts.length") == 1  # only the filters' own script
        Select(driver.find_element(By.ID, "filter-target")).select_by_value(HOSTILE_TAG)
        [row] = _visible_rows(driver)
        assert HOSTILE_TAG in row.text and "\\x1b[2J" in row.text  # type: ignore[attr-defined]
        assert console_problems(driver) == []
        assert requested_urls(driver, page.as_uri()) == [page.as_uri()]
