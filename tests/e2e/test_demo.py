"""`regguard demo` end to end, as a user runs it: real registries and moto
start, the audit runs, every report is written, and nothing is left running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REPORTS = (
    "report.html",
    "report.md",
    "report.json",
    "report.sarif",
    "report.junit.xml",
    "oscal-assessment-results.json",
    "evidence-bundle.zip",
)


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


SERVER_MARKERS = (
    "docker-registry",
    "moto.server",
    "moto_server",
    "sandbox.moto_strict",
    "sandbox.harbor_emulator",
    "sandbox.github_emulator",
    "sandbox.dockerhub_emulator",
    "sandbox.gar_estate",
    "sandbox.acr_estate",
)
_before: set[str] = set()


def servers_running() -> set[str]:
    return {p.split(":", 1)[0] for marker in SERVER_MARKERS for p in processes_mentioning(marker)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    _before.update(servers_running())
    base = tmp_path_factory.mktemp("demo")
    out, work = base / "out", base / "work"
    proc = subprocess.run(
        [sys.executable, "-m", "audits.cli", "demo", "--output", str(out), "--workdir", str(work)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, out, work


def statuses(out: Path) -> dict[str, dict[str, set[str]]]:
    report = json.loads((out / "report.json").read_text())
    table: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for f in report["findings"]:
        table[f["target"]][f["rule"]].add(f["status"])
    return table


def test_demo_runs_to_the_end_and_writes_every_format(
    demo: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    proc, out, _ = demo
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in REPORTS:
        assert (out / name).stat().st_size > 0, name
        assert str(out / name) in proc.stdout
    assert "hardened" in proc.stdout and "aws-core" in proc.stdout  # the summary table
    with zipfile.ZipFile(out / "evidence-bundle.zip") as bundle:
        assert "MANIFEST.json" in bundle.namelist()


def test_hardened_registry_passes_tls_auth_and_signature_rules(
    demo: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    hardened = statuses(demo[1])["hardened"]
    for rule in (
        "RG-TLS-001",
        "RG-TLS-002",
        "RG-TLS-003",
        "RG-AUTH-001",
        "RG-AUTH-002",
        "RG-SIGN-001",
        "RG-SIGN-002",
        "RG-TAG-001",
    ):
        assert hardened[rule] == {"pass"}, (rule, hardened[rule])


def test_the_rendered_distribution_vm_is_served_and_passes_tls_auth_and_signatures(
    demo: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    """`edge-vm` runs the prod stack's Distribution VM user data (sandbox/distribution_vm.py)."""
    _, out, work = demo
    vm = statuses(out)["edge-vm"]
    for rule in ("RG-TLS-001", "RG-TLS-002", "RG-TLS-003", "RG-AUTH-001", "RG-AUTH-002", "RG-AUTH-003",
                 "RG-SIGN-001", "RG-SIGN-002", "RG-MON-001"):
        assert vm[rule] == {"pass"}, (rule, vm[rule])
    assert (work / "rendered-vm" / "user-data.yml").read_text().startswith("#cloud-config\n")


def test_insecure_registries_fail_the_expected_rules(demo: tuple[subprocess.CompletedProcess[str], Path, Path]) -> None:
    table = statuses(demo[1])
    insecure, basic = table["insecure"], table["basic-http"]
    for rule in ("RG-TLS-001", "RG-AUTH-001", "RG-TAG-001", "RG-SIGN-001"):
        assert "fail" in insecure[rule], (rule, insecure[rule])
    assert "fail" in basic["RG-AUTH-002"]
    assert "fail" in basic["RG-TLS-001"]


def test_ghcr_orgs_are_audited_one_compliant_one_weak(
    demo: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    table = statuses(demo[1])
    secure, legacy = table["ghcr-acme-secure"], table["ghcr-acme-legacy"]
    for rule in ("RG-TLS-001", "RG-TLS-002", "RG-AUTH-001", "RG-SIGN-001", "RG-SIGN-002", "RG-TAG-001", "RG-CRED-001"):
        assert secure[rule] == {"pass"}, (rule, secure[rule])
    for rule in ("RG-AUTH-001", "RG-TAG-001", "RG-SIGN-001", "RG-CRED-001"):
        assert "fail" in legacy[rule], (rule, legacy[rule])
    assert "ghcr-acme-secure" in demo[0].stdout and "GitHub API rate limit:" in demo[0].stdout
    for name in ("report.html", "report.md", "report.sarif", "report.junit.xml", "oscal-assessment-results.json"):
        assert "ghcr-acme-legacy" in (demo[1] / name).read_text(), name


def test_ecr_estate_is_audited_with_its_seeded_failures(
    demo: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    ecr = statuses(demo[1])["aws-core"]
    for rule in ("RG-TAG-002", "RG-RET-001", "RG-AUTH-001", "RG-TAG-001", "RG-CRED-001"):
        assert "fail" in ecr[rule], (rule, ecr[rule])
    assert "pass" in ecr["RG-TAG-002"], "the compliant repository passes"


def test_sandbox_harbor_is_audited_and_in_every_report_format(
    demo: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    harbor = statuses(demo[1])["harbor"]
    for rule in ("RG-TAG-002", "RG-SIGN-002", "RG-AUTH-001", "RG-RET-001", "RG-CRED-001"):
        assert {"pass", "fail"} <= harbor[rule], (rule, harbor[rule])  # prod passes, legacy fails
    assert harbor["RG-TLS-002"] == {"pass"}
    for name in REPORTS[:-1]:
        assert "legacy/app" in (demo[1] / name).read_text(), name
def test_acr_subscription_is_audited_with_a_compliant_and_a_weak_registry(
    demo: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    table = statuses(demo[1])
    compliant, weak = table["acr-contosoprod"], table["acr-contosoweak"]
    for rule in ("RG-NET-001", "RG-AUTH-003", "RG-MON-001", "RG-REP-001", "RG-SIGN-002"):
        assert compliant[rule] == {"pass"}, (rule, compliant[rule])
        assert "fail" in weak[rule], (rule, weak[rule])
    assert "error" not in {s for rule in compliant.values() for s in rule}


def test_each_finding_has_its_own_identity_and_only_failures_a_fix(
    demo: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    """(rule, target, resource) names one finding (history, diffs and waivers rely on
    it); per-repository settings are per repository; the fix shown is the finding's kind's."""
    findings = json.loads((demo[1] / "report.json").read_text())["findings"]
    identities = [(f["rule"], f["target"], f["resource"]) for f in findings]
    assert len(identities) == len(set(identities))
    ecr_retention = {f["resource"] for f in findings if f["rule"] == "RG-RET-001" and f["target"] == "aws-core"}
    assert len(ecr_retention) > 1 and "aws-core" not in ecr_retention
    for f in findings:
        assert (f["remediation"] is not None) == (f["status"] == "fail"), f
        if f["kind"] == "distribution" and f["remediation"]:
            assert "aws " not in f["remediation"]["cli"], f
        if f["kind"] == "ecr" and f["remediation"]:
            assert "Harbor" not in f["remediation"]["cli"] and "config.yml" not in f["remediation"]["cli"], f


def test_demo_leaves_no_process_behind(demo: tuple[subprocess.CompletedProcess[str], Path, Path]) -> None:
    _, _, work = demo
    assert processes_mentioning(str(work)) == []
    assert servers_running() - _before == set(), "a registry or moto server outlived the demo"


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupted_demo_stops_everything(tmp_path: Path, sig: str) -> None:
    """Ctrl-C (or a SIGTERM from a CI runner) mid-demo still stops every server."""
    import signal
    import time

    before = servers_running()
    work = tmp_path / "work"
    proc = subprocess.Popen(
        [sys.executable, "-m", "audits.cli", "demo", "--output", str(tmp_path / "out"), "--workdir", str(work)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not processes_mentioning(str(work)):
        time.sleep(0.1)
    assert processes_mentioning(str(work)), "the estate started"
    time.sleep(1.0)  # let it get into seeding
    proc.send_signal(getattr(signal, sig))
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, proc.stderr.read()[-3000:] if proc.stderr else ""
    time.sleep(0.5)
    assert processes_mentioning(str(work)) == []
    assert servers_running() - before == set()


def test_demo_reports_validate_against_the_official_schemas(
    demo: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    """The schema tests in tests/unit use hand-made findings; this checks what a
    real audit of real registries produced."""
    import xmlschema

    from tests.unit.report_fixtures import COMPLIANCE_DATA, oscal_validator, sarif_validator

    out = demo[1]
    sarif_validator().validate(json.loads((out / "report.sarif").read_text()))
    oscal_validator().validate(json.loads((out / "oscal-assessment-results.json").read_text()))
    xmlschema.XMLSchema(str(COMPLIANCE_DATA / "junit.xsd")).validate(str(out / "report.junit.xml"))


def test_docker_hub_organizations_are_in_every_report(
    demo: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    """The compliant organization passes what the weak one fails; both are in every format."""
    out = demo[1]
    table = statuses(out)
    good, weak = table["hub-good"], table["hub-weak"]
    for rule in ("RG-AUTH-001", "RG-TAG-001", "RG-TAG-002", "RG-SIGN-001", "RG-SIGN-002", "RG-CRED-001",
                 "RG-CRED-002", "RG-SRC-001", "RG-MON-001"):  # fmt: skip
        assert "fail" in weak[rule] and good[rule] == {"pass"}, (rule, good[rule], weak[rule])
    for name in REPORTS[:-1]:
        text = (out / name).read_text()
        assert "hub-good" in text and "hub-weak" in text, name
