"""Audit history: what earlier audits saw, kept as one JSON file per audit.

RG-MON-002 needs a trailing baseline of pulls per day, and platform teams want
to see a registry's findings over time. Each audit appends one record; the
baseline is rebuilt from the records, so deleting a file simply shortens the
history. Records hold counts and statuses only — never evidence or secrets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audits.model import PULL_COUNTS, AuditResult, FactState, TargetFacts

MAX_RECORDS_READ = 400  # about a year of daily audits


@dataclass(frozen=True)
class HistoryStore:
    directory: Path

    def pull_baseline(self) -> dict[str, dict[str, dict[str, int]]]:
        """target -> repository -> {day: pulls}, merged over earlier audits
        (a later audit's count for the same day wins)."""
        merged: dict[str, dict[str, dict[str, int]]] = {}
        for record in self._records():
            for target, repos in record.get("pull_counts", {}).items():
                for repo, days in repos.items():
                    merged.setdefault(target, {}).setdefault(repo, {}).update(
                        {str(d): int(n) for d, n in days.items()}
                    )
        return merged

    def record(self, result: AuditResult, facts: Mapping[str, TargetFacts]) -> Path:
        """Append this audit; return the file written."""
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = result.started_at.strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"audit-{stamp}.json"
        payload = {
            "started_at": result.started_at.isoformat(),
            "finished_at": result.finished_at.isoformat(),
            "environment": result.environment,
            "summary": result.summary(),
            "targets": {t.name: {"kind": t.kind, "complete": t.complete} for t in result.targets},
            "failing": sorted(
                {f"{f.rule} {f.target}" for f in result.findings if f.status.value == "fail"}
            ),
            "pull_counts": _pull_counts(facts),
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
        return path

    def summaries(self) -> list[dict[str, Any]]:
        """Earlier audits, oldest first: when, environment, status counts."""
        return [
            {
                "started_at": r.get("started_at"),
                "environment": r.get("environment"),
                "summary": r.get("summary", {}),
            }
            for r in self._records()
        ]

    def _records(self) -> list[dict[str, Any]]:
        if not self.directory.is_dir():
            return []
        files = sorted(self.directory.glob("audit-*.json"))[-MAX_RECORDS_READ:]
        records = []
        for f in files:
            try:
                records.append(json.loads(f.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                continue  # a torn or foreign file must not stop the audit
        return records


def _pull_counts(facts: Mapping[str, TargetFacts]) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for target, tf in facts.items():
        fact = tf.facts.get(PULL_COUNTS)
        if fact is None or fact.state is not FactState.OK or fact.value is None:
            continue
        out[target] = {repo: dict(days) for repo, days in fact.value.daily.items()}
    return out
