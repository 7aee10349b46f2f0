"""The scheduled-audit recipes under deploy/ are valid for the tools that run
them: the workflow against GitHub's workflow schema (check-jsonschema's
vendored copy, offline), the Kubernetes manifests against the Kubernetes
schemas (kubernetes-validate, strict), the systemd units with
`systemd-analyze verify`, the Dockerfile by parsing it. Each check is shown
to reject a broken copy."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from audits.cli import EXIT_INCOMPLETE, EXIT_USAGE, _parse_shard, build_parser
from audits.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# The newest Kubernetes kubernetes-validate ships schemas for; the sharded recipe's backoffLimitPerIndex and
# podFailurePolicy FailIndex need >= 1.29.
K8S_VERSION = "1.37.0"
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


def test_the_workflow_points_at_the_role_documents_and_names_no_action_they_do_not_grant() -> None:
    """A hand-written action list goes stale (it once named cloudtrail:LookupEvents, which nothing calls);
    the comment names the component's documents, which the tests keep in step with the collector."""
    from components import ecr_audit_role

    lines = (DEPLOY / "github" / "regguard-nightly.yml").read_text().splitlines()
    comment = "\n".join(line for line in lines if line.lstrip().startswith("#"))
    assert "components/ecr_audit_role.py" in comment
    named_documents = re.findall(r"\b(\w+_policy_document)\(\)", comment)
    assert {"audit_policy_document", "auditor_policy_document"} <= set(named_documents)
    documents = [getattr(ecr_audit_role, name)() for name in named_documents]
    granted = {action for document in documents for statement in document["Statement"]
               for action in statement["Action"]}  # fmt: skip
    named_actions = set(re.findall(r"\b(?:ecr|iam|cloudtrail|sts|organizations):[A-Za-z*]+", comment))
    assert named_actions <= granted, named_actions - granted


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def _document(name: str, kind: str) -> dict[str, Any]:
    return next(d for d in _documents(name) if d["kind"] == kind)


def _job_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """The Job spec of a Job, or the one a CronJob stamps out."""
    spec: dict[str, Any] = workload["spec"]
    return spec["jobTemplate"]["spec"] if workload["kind"] == "CronJob" else spec


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = _job_spec(workload)["template"]["spec"]
    return spec


def _workloads() -> list[dict[str, Any]]:
    """Every Job and CronJob of every file under deploy/k8s."""
    return [d for f in sorted(K8S.glob("*.yaml")) for d in _documents(f.name) if d["kind"] in ("Job", "CronJob")]


def _rejected(document: dict[str, Any]) -> bool:
    try:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError:
        return True
    return False


def test_every_kubernetes_manifest_matches_the_kubernetes_schemas() -> None:
    kinds = {f.name: [kubernetes_validate.validate(d, K8S_VERSION, strict=True) and d["kind"]
                      for d in _documents(f.name)] for f in sorted(K8S.glob("*.yaml"))}
    assert kinds == {"cronjob.yaml": ["ServiceAccount", "ConfigMap", "CronJob"],
                     "report-job.yaml": ["Job"],
                     "sharded-cronjob.yaml": ["ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "CronJob"]}
    nightly = _document("cronjob.yaml", "CronJob")
    _pod_spec(nightly)["containers"][0]["securityContext"]["readOnly"] = 1
    assert _rejected(nightly)
    sharded = _document("sharded-cronjob.yaml", "CronJob")
    _job_spec(sharded)["completions"] = "four"
    assert _rejected(sharded)
    sharded = _document("sharded-cronjob.yaml", "CronJob")
    _job_spec(sharded)["backoffLimitsPerIndex"] = 1  # misspelt: strict schemas refuse unknown fields
    assert _rejected(sharded)
    # The schemas carry no enum for completionMode or a rule's action ("Sideways" passes them): the tests
    # below check those values themselves.


def _shard_count(container: dict[str, Any]) -> int:
    """N of the container's `--shard $(JOB_COMPLETION_INDEX)/N`."""
    shard = container["args"][container["args"].index("--shard") + 1]
    match = re.fullmatch(r"\$\(JOB_COMPLETION_INDEX\)/([1-9]\d*)", shard)
    assert match, shard
    return int(match.group(1))


def _failure_action(job: dict[str, Any], exit_code: int) -> str | None:
    """What the Job does when the container exits with `exit_code`: the first
    podFailurePolicy rule that matches it; None means counted against the
    backoff limit (a retry)."""
    for rule in job["podFailurePolicy"]["rules"]:
        codes = rule.get("onExitCodes")
        if not codes or codes.get("containerName", "regguard") != "regguard":
            continue
        if (exit_code in codes["values"]) is (codes["operator"] == "In"):
            return str(rule["action"])
    return None


def test_the_sharded_cronjob_runs_one_indexed_pod_per_shard_and_keeps_audit_verdicts_from_retrying() -> None:
    cronjob = _document("sharded-cronjob.yaml", "CronJob")
    job = _job_spec(cronjob)
    [container] = _pod_spec(cronjob)["containers"]
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] == _shard_count(container)
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert job["activeDeadlineSeconds"] > 0 and job["ttlSecondsAfterFinished"] > 0
    assert job["backoffLimitPerIndex"] >= 1 and _pod_spec(cronjob)["restartPolicy"] == "Never"
    assert {rule["action"] for rule in job["podFailurePolicy"]["rules"]} <= {"FailJob", "FailIndex", "Ignore", "Count"}
    assert _failure_action(job, EXIT_USAGE) == "FailJob"  # the same bad config in every shard
    assert _failure_action(job, 1) == _failure_action(job, EXIT_INCOMPLETE) == "FailIndex"  # stored; a verdict
    assert _failure_action(job, 137) is None  # OOMKilled: one retry


def test_the_run_id_is_the_cronjob_s_job_name_and_fits_regguard_s_limit() -> None:
    cronjob = _document("sharded-cronjob.yaml", "CronJob")
    [container] = _pod_spec(cronjob)["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["RUN_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['batch.kubernetes.io/job-name']"
    longest_job_name = f"{cronjob['metadata']['name']}-{'9' * 10}"  # the CronJob controller appends <= 11 characters
    assert _parse_shard("0/4", longest_job_name) is not None, longest_job_name  # regguard's own --run-id check


REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _expanded_args(container: dict[str, Any], job: dict[str, Any], values: dict[str, str]) -> list[str]:
    """The args as the kubelet hands them to regguard: each $(VAR) replaced by
    the value of VAR from the container's env (`values` for those that come
    from a fieldRef or the Job controller). An undeclared $(VAR) would reach
    regguard literally, so it fails the test."""
    declared = {e["name"] for e in container.get("env", [])}
    if job.get("completionMode") == "Indexed":
        declared.add("JOB_COMPLETION_INDEX")  # the Job controller sets it in every pod of an Indexed Job
    known = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e} | values

    def value_of(reference: re.Match[str]) -> str:
        assert reference.group(1) in declared, f"$({reference.group(1)}) is not in the container's env"
        return known[reference.group(1)]

    return [REFERENCE.sub(value_of, arg) for arg in container["args"]]


def _parsed(args: list[str]) -> argparse.Namespace:
    """`args` through regguard's own parser, which refuses any flag it does not know."""
    namespace, unknown = build_parser().parse_known_args(args)
    assert not unknown, unknown
    return namespace


def _mount_path(pod: dict[str, Any], volume_kind: str) -> Path:
    """Where the container mounts the pod's volume of `volume_kind`."""
    [volume] = [v["name"] for v in pod["volumes"] if volume_kind in v]
    [container] = pod["containers"]
    return Path(next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == volume))


def test_each_shard_s_args_parse_with_regguard_s_parser_into_one_run_on_the_shared_claim() -> None:
    cronjob = _document("sharded-cronjob.yaml", "CronJob")
    pod, job = _pod_spec(cronjob), _job_spec(cronjob)
    [container] = pod["containers"]
    run_id = f"{cronjob['metadata']['name']}-29312345"
    shards = [_parsed(_expanded_args(container, job, {"JOB_COMPLETION_INDEX": str(i), "RUN_ID": run_id}))
              for i in range(job["completions"])]
    assert [s.shard for s in shards] == [f"{i}/{job['completions']}" for i in range(job["completions"])]
    assert {s.command for s in shards} == {"audit"} and {s.run_id for s in shards} == {run_id}
    assert len({s.output for s in shards}) == len(shards)  # each shard its own reports
    assert len({s.merged_output for s in shards}) == 1
    reports = _mount_path(pod, "persistentVolumeClaim")
    assert all(Path(s.output).is_relative_to(reports) and Path(s.merged_output).is_relative_to(reports) for s in shards)
    config_map = _document("sharded-cronjob.yaml", "ConfigMap")
    assert shards[0].config.parent == _mount_path(pod, "configMap") and shards[0].config.name in config_map["data"]
    claim = _document("sharded-cronjob.yaml", "PersistentVolumeClaim")
    [volume] = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # N pods, possibly on N nodes


def test_the_report_job_re_renders_the_run_it_is_given_into_the_shards_merged_directory() -> None:
    report_job = _document("report-job.yaml", "Job")
    [container] = _pod_spec(report_job)["containers"]
    args = _parsed(_expanded_args(container, _job_spec(report_job), {}))
    run_id = next(e["value"] for e in container["env"] if e["name"] == "RUN_ID")
    assert args.command == "report" and args.run == run_id
    cronjob = _document("sharded-cronjob.yaml", "CronJob")
    [shard] = _pod_spec(cronjob)["containers"]
    shard_args = _parsed(_expanded_args(shard, _job_spec(cronjob), {"JOB_COMPLETION_INDEX": "0", "RUN_ID": run_id}))
    assert Path(args.output) == Path(shard_args.merged_output)
    claims = [v["persistentVolumeClaim"]["claimName"] for w in (report_job, cronjob)
              for v in _pod_spec(w)["volumes"] if "persistentVolumeClaim" in v]
    assert claims[0] == claims[1]


def test_every_pod_is_hardened_pinned_and_takes_secrets_only_from_secrets() -> None:
    for workload in _workloads():
        pod = _pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["limits"] and container["resources"]["requests"]
            assert re.fullmatch(r"[\w./:-]+@sha256:[0-9a-f]{64}", container["image"]), container["image"]
            for env in container["env"]:
                if SECRET_NAME.search(env["name"]) or env["name"] == "REGGUARD_HISTORY_URL":
                    assert "secretKeyRef" in env["valueFrom"], env  # no secret inline
                assert not SECRET_NAME.search(env.get("value", "")), env


def test_the_sharded_auditor_gets_aws_through_irsa_and_no_keys() -> None:
    account = _document("sharded-cronjob.yaml", "ServiceAccount")
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", role), role
    assert account["automountServiceAccountToken"] is False  # the IRSA webhook projects its own token
    assert _pod_spec(_document("sharded-cronjob.yaml", "CronJob"))["serviceAccountName"] == account["metadata"]["name"]
    assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret_access_key", (K8S / "sharded-cronjob.yaml").read_text(), re.I)


def test_the_shipped_configs_are_valid_audit_configs() -> None:
    nightly = yaml.safe_load(_document("cronjob.yaml", "ConfigMap")["data"]["regguard.yaml"])
    parse_config(nightly, Path("cronjob.yaml"))
    estate = yaml.safe_load(_document("sharded-cronjob.yaml", "ConfigMap")["data"]["regguard.yaml"])
    assert any(t["kind"] == "ecr" and "organization" in t for t in estate["targets"])  # the multi-account example
    assert len({t["kind"] for t in estate["targets"]}) > 1
    parse_config(estate, Path("sharded-cronjob.yaml"))


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
