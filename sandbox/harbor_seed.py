"""What the sandbox Harbor holds: a builder of swagger-shaped emulator state
and the demo's seed, one compliant and one non-compliant project.

* `prod` (compliant): private, scan on push with the default Trivy scanner,
  cosign content trust, deployment blocked at high, an immutable-tag rule
  covering release tags (`{v*,*.*,release-*}`), a scheduled retention policy,
  replicated to a second Harbor; `prod/api` v1.0.0 and v1.1.0, `prod/web`
  v2.0.0, every tag cosign-signed and scanned clean; a robot that expires in
  30 days.
* `legacy` (non-compliant): public, no scan on push, no content trust, an
  immutable rule for `latest` only, no retention; `legacy/app` `latest` and
  `0.9`, unsigned, with a critical finding; a robot that never expires,
  created 400 days ago.

System: OIDC authentication, audit-log forwarding, robot token duration 30
days, read-only off, three days of pulls of `prod/api` in the audit log.
Digests and signature digests are the real ones of what the estate pushed to
the registry behind the emulator (`SeededImage`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.harbor_emulator import HarborState, HarborUser, harbor_time

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REPORT_MIME = "application/vnd.security.vulnerability.report; version=1.1"
TRIVY = {"name": "Trivy", "vendor": "Aqua Security", "version": "v0.58.0"}
COMPLIANT_TAGS = "{v*,*.*,release-*}"


@dataclass(frozen=True)
class SeededImage:
    """One tagged image as pushed: where, its digest, and its signature's digest (None: unsigned)."""

    repo: str
    tag: str
    digest: str
    signature_digest: str | None = None
    critical: int = 0


class StateBuilder:
    """Adds projects, repositories and artifacts with consistent ids and times."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)
        self.state = HarborState()
        self._ids = itertools.count(1)

    def ago(self, days: float) -> str:
        return harbor_time(self.now - timedelta(days=days))

    def project(self, name: str, *, public: bool, secure: bool, retention_id: int | None = None) -> int:
        pid = next(self._ids)
        flag = "true" if secure else "false"
        metadata = {
            "public": "true" if public else "false",
            "auto_scan": flag,
            "enable_content_trust_cosign": flag,
            "enable_content_trust": "false",
            "prevent_vul": flag,
            "severity": "high",
            "reuse_sys_cve_allowlist": "true",
        }
        if retention_id is not None:
            metadata["retention_id"] = str(retention_id)
        self.state.projects.append(
            {"project_id": pid, "name": name, "owner_name": "admin", "creation_time": self.ago(300),
             "update_time": self.ago(1), "repo_count": 0, "metadata": metadata,
             "cve_allowlist": {"id": pid, "project_id": pid, "items": [], "expires_at": 0}}
        )  # fmt: skip
        self.state.repositories[name] = []
        return pid

    def repository(self, project: str, name: str) -> None:
        entry = {"id": next(self._ids), "name": name, "artifact_count": 0, "pull_count": 0,
                 "creation_time": self.ago(200), "update_time": self.ago(1)}  # fmt: skip
        self.state.repositories[project].append(entry)
        self.state.artifacts[name] = []
        for p in self.state.projects:
            if p["name"] == project:
                p["repo_count"] += 1

    def artifact(self, image: SeededImage, *, pushed_days_ago: float) -> None:
        if image.repo not in self.state.artifacts:
            self.repository(image.repo.split("/", 1)[0], image.repo)
        artifacts = self.state.artifacts[image.repo]
        existing = next((a for a in artifacts if a["digest"] == image.digest), None)
        if existing is None:
            existing = self._artifact_body(image, pushed_days_ago)
            artifacts.append(existing)
        existing["tags"].append(
            {"id": next(self._ids), "name": image.tag, "artifact_id": existing["id"],
             "push_time": self.ago(pushed_days_ago), "pull_time": self.ago(0), "immutable": False}
        )  # fmt: skip

    def _artifact_body(self, image: SeededImage, pushed_days_ago: float) -> dict[str, Any]:
        aid = next(self._ids)
        counts = {"Critical": image.critical, "High": 0, "Medium": 1, "Low": 2}
        body: dict[str, Any] = {
            "id": aid, "type": "IMAGE", "media_type": OCI_MANIFEST, "manifest_media_type": OCI_MANIFEST,
            "repository_name": image.repo, "digest": image.digest, "size": 1024,
            "push_time": self.ago(pushed_days_ago), "pull_time": self.ago(0), "tags": [],
            "scan_overview": {REPORT_MIME: {
                "report_id": f"report-{aid}", "scan_status": "Success",
                "severity": "Critical" if image.critical else "Medium", "duration": 3,
                "summary": {"total": sum(counts.values()), "fixable": 1, "summary": counts},
                "start_time": self.ago(pushed_days_ago), "end_time": self.ago(pushed_days_ago),
                "complete_percent": 100, "scanner": TRIVY,
            }},
            "accessories": [],
        }  # fmt: skip
        if image.signature_digest:
            body["accessories"].append(
                {"id": next(self._ids), "artifact_id": next(self._ids), "subject_artifact_id": aid,
                 "subject_artifact_digest": image.digest, "subject_artifact_repo": image.repo, "size": 512,
                 "digest": image.signature_digest, "type": "signature.cosign",
                 "creation_time": self.ago(pushed_days_ago)}
            )  # fmt: skip
        return body

    def immutable_rule(self, project_id: int, tags: str, *, repos: str = "**") -> None:
        rule = {"id": next(self._ids), "priority": 0, "disabled": False, "action": "immutable",
                "template": "immutable_template",
                "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tags}],
                "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches",
                                                    "pattern": repos}]}}  # fmt: skip
        self.state.immutable_rules.setdefault(project_id, []).append(rule)

    def retention(self, policy_id: int, project_id: int, *, cron: str = "0 0 0 * * *") -> None:
        """A scheduled `latestPushedK` rule. Its `params` stay empty: the swagger types every
        parameter value as an object, which Harbor's own number (`{"latestPushedK": 10}`) is not."""
        self.state.retentions[policy_id] = {
            "id": policy_id, "algorithm": "or",
            "rules": [{"id": 1, "priority": 1, "disabled": False, "action": "retain",
                       "template": "latestPushedK", "params": {},
                       "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
                       "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches",
                                                           "pattern": "**"}]}}],
            "trigger": {"kind": "Schedule", "settings": {"cron": cron}},
            "scope": {"level": "project", "ref": project_id},
        }  # fmt: skip

    def robot(self, name: str, *, namespace: str, days_valid: int, created_days_ago: int) -> None:
        created = self.now - timedelta(days=created_days_ago)
        never = days_valid < 0
        expires = -1 if never else int((created + timedelta(days=days_valid)).timestamp())
        self.state.robots.append(
            {"id": next(self._ids), "name": name, "description": "", "level": "project",
             "duration": -1 if never else days_valid, "editable": True, "disable": False, "expires_at": expires,
             "permissions": [{"kind": "project", "namespace": namespace,
                              "access": [{"resource": "repository", "action": "push"},
                                         {"resource": "repository", "action": "pull"}]}],
             "creation_time": harbor_time(created), "update_time": harbor_time(created)}
        )  # fmt: skip

    def pulls(self, repo: str, tag: str, per_day: Sequence[int]) -> None:
        for day, count in enumerate(reversed(per_day)):
            for i in range(count):
                self.state.audit_logs.append(
                    {"id": next(self._ids), "username": "ci", "resource": f"{repo}:{tag}",
                     "resource_type": "artifact", "operation": "pull",
                     "op_time": harbor_time(self.now - timedelta(days=day, minutes=i + 1))}
                )  # fmt: skip

    def system(self, *, forward_logs: str | None = "syslog://logs.internal:514") -> None:
        state = self.state
        state.systeminfo = {"auth_mode": "oidc_auth", "self_registration": False, "read_only": False,
                            "harbor_version": "v2.15.0", "registry_url": "", "external_url": "",
                            "has_ca_root": True, "primary_auth_mode": False}  # fmt: skip
        state.configurations = {
            "auth_mode": {"value": "oidc_auth", "editable": False},
            "self_registration": {"value": False, "editable": True},
            "audit_log_forward_endpoint": {"value": forward_logs or "", "editable": True},
            "skip_audit_log_database": {"value": False, "editable": True},
            "read_only": {"value": False, "editable": True},
            "robot_token_duration": {"value": 30, "editable": True},
        }
        state.scanners = [{"uuid": "trivy", "name": "Trivy", "url": "http://trivy-adapter:8080", "disabled": False,
                           "is_default": True, "health": "healthy", "adapter": "Trivy", "vendor": "Aqua Security",
                           "version": "v0.58.0"}]  # fmt: skip

    def replicate(self, name: str, destination: str) -> None:
        self.state.replication_policies.append(
            {"id": next(self._ids), "name": name, "enabled": True, "deletion": False, "override": True,
             "dest_registry": {"id": 2, "name": destination, "url": f"https://{destination}", "type": "harbor"},
             "filters": [{"type": "name", "value": "prod/**"}], "trigger": {"type": "event_based"}}
        )  # fmt: skip

    def user(self, name: str, password: str, *, sysadmin: bool) -> None:
        self.state.users[name] = HarborUser(password, sysadmin)


DEMO_IMAGES = (
    ("prod/api", "v1.0.0", True, 0),
    ("prod/api", "v1.1.0", True, 0),
    ("prod/web", "v2.0.0", True, 0),
    ("legacy/app", "0.9", False, 2),
    ("legacy/app", "latest", False, 2),
)
"""(repository, tag, signed, critical findings) of what the demo Harbor holds."""


def demo_state(images: Iterable[SeededImage], users: dict[str, tuple[str, bool]]) -> HarborState:
    """The demo's Harbor: `images` as pushed, `users` name -> (password, sysadmin)."""
    b = StateBuilder()
    b.system()
    prod = b.project("prod", public=False, secure=True, retention_id=1)
    legacy = b.project("legacy", public=True, secure=False)
    b.immutable_rule(prod, COMPLIANT_TAGS)
    b.immutable_rule(legacy, "latest")
    b.retention(1, prod)
    for age, image in enumerate(images):
        b.artifact(image, pushed_days_ago=10 - age)
    b.robot("robot$prod+ci", namespace="prod", days_valid=30, created_days_ago=10)
    b.robot("robot$legacy+deployer", namespace="legacy", days_valid=-1, created_days_ago=400)
    b.replicate("prod-to-dr", "harbor-dr.internal")
    b.pulls("prod/api", "v1.1.0", [12, 10, 11])
    for name, (password, sysadmin) in users.items():
        b.user(name, password, sysadmin=sysadmin)
    return b.state
