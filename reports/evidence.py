"""The evidence bundle: one zip an auditor can file as-is.

Layout (also written to README.txt inside the zip):

    report.json                        the full report (same as --format json)
    controls/soc2/<criterion>.json     per SOC 2 criterion: the findings that evidence it
    controls/nist-800-53/<id>.json     per NIST SP 800-53 control (OSCAL id, e.g. ia-5.1)
    facts/<target>.json                raw collected facts per target, when supplied
    reports/<file>                     every report the audit wrote (html, md, sarif, ...)
    config.json                        the audit config (secrets are only ever env var names)
    run.json                           tool version, run id and the run's hash in the history chain
    README.txt                         this layout
    MANIFEST.json                      sha256 and size of every other file

Everything is redacted like the reports, entries are sorted and carry the
audit's finish time, so the same audit always gives a byte-identical zip
whose MANIFEST hashes an auditor can re-check (`regguard verify-evidence`).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from audits.controls import label_to_id, nist_title
from audits.model import AuditResult, Finding, count_statuses
from audits.rules.registry import Rule
from audits.safe_files import write_replacing
from reports.base import (
    control_index,
    control_state,
    fedramp_levels,
    isoformat,
    prepare_findings,
    redact,
    to_jsonable,
)
from reports.json_report import report_dict

BUNDLE_NAME = "evidence-bundle.zip"

README = """\
regguard evidence bundle
========================

Audit: {tool} {version}, environment "{environment}"
Started {started_at}, finished {finished_at}.

Layout
------
report.json
    The complete audit report: targets, summary counts and every finding
    with its status, severity, controls, evidence and remediation.
controls/soc2/<criterion>.json
    One file per SOC 2 trust services criterion (e.g. CC6.1). Lists every
    finding mapped to that criterion with its evidence block: what was
    observed, where (endpoint or API call) and when.
controls/nist-800-53/<control-id>.json
    The same per NIST SP 800-53 rev5 control, named by OSCAL control id
    (ia-5.1 is IA-5(1)), with the FedRAMP rev5 baselines that include it.
    Each control file also lists the catalog rules that test the control.
facts/<target>.json
    The raw facts collected from each target, when the audit supplied them.
reports/<file>
    The reports exactly as the audit wrote them.
config.json
    The audit configuration (secrets appear only as environment variable names).
run.json
    Tool and version, the run id and the SHA-256 of the run in the history
    chain: `regguard verify-evidence BUNDLE --history URL` checks it there.
MANIFEST.json
    SHA-256 and size of every other file in this bundle, to verify the
    bundle was not altered: sha256sum <file> must match its entry.

Statuses: pass, fail, error (could not be judged: no evidence of
compliance), not_applicable, manual (a person must check; the message says
what), waived (a failure accepted by a dated, approved waiver: never a pass).
Secrets are redacted from all evidence.
"""


def _safe_name(name: str) -> str:
    """A file name from untrusted text: no path separators, no dot-dot."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "unnamed"


def _evidence_entry(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "title": finding.title,
        "status": finding.status.value,
        "severity": finding.severity.value,
        "target": finding.target,
        "kind": finding.kind,
        "resource": finding.resource,
        "message": finding.message,
        "evidence": dict(finding.evidence),
        "remediation": finding.remediation.as_dict() if finding.remediation else None,
    }


def _mapped_rules(framework: str, label: str, rules: Mapping[str, Rule]) -> list[dict[str, str]]:
    """Catalog rules mapped to the control: what the audit tests for it."""
    mapped = []
    for rule_id, rule in sorted(rules.items()):
        labels = rule.meta.soc2 if framework == "soc2" else rule.meta.nist_800_53
        if label in labels:
            mapped.append({"id": rule_id, "title": rule.meta.title,
                           "rationale": rule.meta.rationale})
    return mapped


def _control_doc(
    framework: str,
    label: str,
    findings: Sequence[Finding],
    all_findings: Sequence[Finding],
    rules: Mapping[str, Rule],
) -> dict[str, Any]:
    doc: dict[str, Any] = {"framework": framework, "control": label}
    if framework == "nist_800_53":
        doc["control_id"] = label_to_id(label)
        doc["title"] = nist_title(label)
        doc["fedramp_baselines"] = fedramp_levels(label, all_findings)
    doc["standing"] = control_state(findings)
    doc["summary"] = count_statuses(findings)
    doc["rules"] = _mapped_rules(framework, label, rules)
    doc["findings"] = [_evidence_entry(f) for f in findings]
    return doc


def _dump(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
            + "\n").encode()


def bundle_files(
    result: AuditResult,
    rules: Mapping[str, Rule],
    facts_by_target: Mapping[str, Mapping[str, Any]] | None = None,
    reports: Mapping[str, bytes] | None = None,
    config: Mapping[str, Any] | None = None,
) -> dict[str, bytes]:
    """Every file of the bundle except the manifest, by archive path."""
    findings = prepare_findings(result)
    files: dict[str, bytes] = {"report.json": _dump(report_dict(result)), "run.json": _dump(run_record(result))}
    for name, data in sorted((reports or {}).items()):
        files[f"reports/{_safe_name(name)}"] = data
    if config is not None:
        files["config.json"] = _dump(redact(to_jsonable(config)))
    index = control_index(findings)
    for label, fs in index["soc2"].items():
        files[f"controls/soc2/{_safe_name(label)}.json"] = _dump(
            _control_doc("soc2", label, fs, findings, rules)
        )
    for label, fs in index["nist_800_53"].items():
        files[f"controls/nist-800-53/{_safe_name(label_to_id(label))}.json"] = _dump(
            _control_doc("nist_800_53", label, fs, findings, rules)
        )
    for target, facts in sorted((facts_by_target or {}).items()):
        path = f"facts/{_safe_name(target)}.json"
        if path in files:  # two names that sanitise alike: keep both
            path = f"facts/{_safe_name(target)}-{hashlib.sha256(target.encode()).hexdigest()[:8]}.json"
        files[path] = _dump({"target": target, "facts": redact(to_jsonable(facts))})
    files["README.txt"] = README.format(
        tool=result.tool,
        version=result.version,
        environment=result.environment,
        started_at=isoformat(result.started_at),
        finished_at=isoformat(result.finished_at),
    ).encode()
    return files


def run_record(result: AuditResult) -> dict[str, Any]:
    return {
        "tool": result.tool,
        "version": result.version,
        "run_id": result.run_id,
        "run_sha256": result.run_sha256,
        "started_at": isoformat(result.started_at),
        "finished_at": isoformat(result.finished_at),
    }


def manifest(files: Mapping[str, bytes]) -> dict[str, Any]:
    return {
        "algorithm": "sha256",
        "files": [
            {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for path, data in sorted(files.items())
        ],
    }


def write_evidence_bundle(
    result: AuditResult,
    rules: Mapping[str, Rule],
    output_dir: Path,
    facts_by_target: Mapping[str, Mapping[str, Any]] | None = None,
    reports: Mapping[str, bytes] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write `evidence-bundle.zip` into `output_dir` and return its path.

    `facts_by_target` (target name -> facts, e.g. `TargetFacts.facts`) adds
    the raw observations; dataclasses are converted and redacted. `reports`
    (file name -> bytes) and `config` (the audit config as data) are filed too."""
    files = bundle_files(result, rules, facts_by_target, reports, config)
    files["MANIFEST.json"] = _dump(manifest(files))
    finished = result.finished_at
    stamp = (max(finished.year, 1980), finished.month, finished.day,
             finished.hour, finished.minute, finished.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    return write_replacing(output_dir, BUNDLE_NAME, buffer.getvalue())  # never through a planted link
