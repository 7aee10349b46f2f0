"""The scheduled-audit recipes under deploy/ are valid for the tools that run
them: the workflow against GitHub's workflow schema (check-jsonschema's
vendored copy, offline), the Kubernetes manifests against the Kubernetes
schemas (kubernetes-validate, strict), the systemd units with
`systemd-analyze verify`, the Dockerfile by parsing it. Each check is shown
to reject a broken copy."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30.0"
SECRET_NAME = re.compile(r"(PASSWORD|TOKEN|SECRET|ACCESS_KEY|PRIVATE_KEY)", re.I)


def _check_workflow(path: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run([str(tool), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_the_workflow_matches_the_github_workflow_schema(tmp_path: Path) -> None:
    workflow = DEPLOY / "github" / "regguard-nightly.yml"
    assert _check_workflow(workflow).returncode == 0
    broken = yaml.safe_load(workflow.read_text())
    broken["jobs"]["audit"]["runs-on"] = {"not": "a runner"}
    broken["jobs"]["audit"]["timeout-minutes"] = "soon"
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert _check_workflow(tmp_path / "broken.yml").returncode == 1


def test_the_workflow_uses_oidc_uploads_sarif_and_keeps_no_keys() -> None:
    workflow = yaml.safe_load((DEPLOY / "github" / "regguard-nightly.yml").read_text())
    job = workflow["jobs"]["audit"]
    assert workflow[True]["schedule"][0]["cron"]  # YAML 1.1 reads the key `on` as True
    assert job["permissions"]["id-token"] == "write" and job["permissions"]["security-events"] == "write"
    uses = [s.get("uses", "") for s in job["steps"]]
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    aws = next(s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert "role-to-assume" in aws["with"] and "aws-access-key-id" not in aws["with"]


def _manifests() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "cronjob.yaml").read_text()) if d]


def test_the_kubernetes_manifests_match_the_kubernetes_schemas() -> None:
    kinds = [kubernetes_validate.validate(d, K8S_VERSION, strict=True) and d["kind"] for d in _manifests()]
    assert kinds == ["ServiceAccount", "ConfigMap", "CronJob"]
    cronjob = _manifests()[2]
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnly"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, K8S_VERSION, strict=True)


def test_the_cronjob_is_non_root_read_only_and_takes_secrets_from_a_secret() -> None:
    pod = _manifests()[2]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "@sha256:" in container["image"]
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["REGGUARD_HISTORY_URL"]["valueFrom"]
    assert all("value" not in e for e in env.values())  # no secret inline
    config = yaml.safe_load(_manifests()[1]["data"]["regguard.yaml"])
    from audits.config import parse_config

    parse_config(config, Path("cronjob.yaml"))  # the shipped config is a valid audit config


def _verify_units(directory: Path) -> subprocess.CompletedProcess[str]:
    units = [str(directory / "regguard-audit.service"), str(directory / "regguard-audit.timer")]
    return subprocess.run([shutil.which("systemd-analyze") or "systemd-analyze", "verify", "--man=no", *units],
                          capture_output=True, text=True, timeout=60, cwd=directory)


def _installed_units(tmp_path: Path) -> Path:
    """The units as installed: /opt/regguard replaced by this checkout's
    environment, because `verify` checks that ExecStart's program exists."""
    prefix = str(Path(sys.executable).parent.parent)
    for unit in ("regguard-audit.service", "regguard-audit.timer"):
        text = (DEPLOY / "systemd" / unit).read_text().replace("/opt/regguard", prefix)
        (tmp_path / unit).write_text(text)
    return tmp_path


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    checked = _verify_units(_installed_units(tmp_path))
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
    service = tmp_path / "regguard-audit.service"
    service.write_text(service.read_text().replace("Type=oneshot", "Type=sometimes\nProtectSytem=strict"))
    broken = _verify_units(tmp_path)
    assert "service type" in broken.stderr and "ProtectSytem" in broken.stderr


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuations joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip())
            for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, re.M)]


def test_the_dockerfile_pins_its_base_runs_unprivileged_and_bakes_in_no_secret() -> None:
    steps = _instructions((DEPLOY / "Dockerfile").read_text())
    known = {"FROM", "RUN", "COPY", "ENV", "WORKDIR", "USER", "LABEL", "VOLUME", "ENTRYPOINT", "CMD", "ARG"}
    assert {name for name, _ in steps} <= known
    bases = [args.split()[0] for name, args in steps if name == "FROM"]
    assert bases and all(re.fullmatch(r"[\w./:-]+@sha256:[0-9a-f]{64}", b) for b in bases)
    final = steps[max(i for i, (name, _) in enumerate(steps) if name == "FROM"):]
    users = [args for name, args in final if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    for name, args in steps:
        if name in ("ENV", "ARG"):
            assert not SECRET_NAME.search(args), f"{name} {args}"
        assert not (name == "COPY" and re.search(r"\.env\b|\.pem\b|id_rsa|credentials", args))
    assert not any(name == "ADD" for name, _ in steps)
    assert next(args for name, args in final if name == "ENTRYPOINT") == '["regguard"]'
