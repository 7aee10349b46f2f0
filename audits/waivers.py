"""Waivers: a failure accepted as a risk by a named approver until a date.

    waivers:
      - {rule: RG-TAG-002, target: edge, resource: "legacy/*", reason: "...",
         approved_by: "jane@example.com", expires: 2027-03-31}

`target` names a configured target — which covers all of its scopes
(`org-ecr` covers `org-ecr/123456789012/us-east-1`) — or one scope, or a glob
over scopes (`org-ecr/*/eu-west-1`).

A waived failure is reported as `waived` with its reason, approver and expiry —
never as `pass` — and still counts in the evidence. Only failures are waived:
an `error` was never judged, so there is nothing to accept.

Two ways a waiver can be wrong, handled differently on purpose:
- **malformed** (a key missing, an unknown rule, an empty reason, not a date):
  a config error (exit 2). It is a typo the author fixes now; silently ignoring
  it would report failures the author believes waived, or the reverse.
- **expired**: the failure stays `fail`, and its message says which waiver
  expired when. Expiry is the control working as intended — the risk must be
  accepted again — and a scheduled audit must not stop reporting the night it
  lapses.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Sequence
from datetime import date

from pydantic import Field, field_validator

from audits.model import Finding, Status, WaiverNote, names_scope_of
from audits.targets import Strict


class Waiver(Strict):
    rule: str = Field(pattern=r"^RG-[A-Z]+-[0-9]{3}$")
    target: str | None = None
    resource: str | None = Field(None, description="a glob over the finding's resource (`legacy/*`)")
    reason: str = Field(min_length=1, max_length=2000)
    approved_by: str = Field(min_length=1, max_length=200)
    expires: date

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, rule: str) -> str:
        from audits.rules.registry import catalog

        if rule not in catalog():
            raise ValueError(f"unknown rule {rule!r} (see `regguard rules`)")
        return rule

    @field_validator("reason", "approved_by")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("must not be blank")
        return text

    def covers(self, finding: Finding) -> bool:
        return (
            finding.rule == self.rule
            and (self.target is None or names_scope_of(finding.target, self.target))
            and (self.resource is None or fnmatch.fnmatchcase(finding.resource, self.resource))
        )

    def note(self) -> WaiverNote:
        return WaiverNote(self.reason, self.approved_by, self.expires.isoformat())


def apply_waivers(findings: Iterable[Finding], waivers: Sequence[Waiver], today: date) -> list[Finding]:
    """Each failure a current waiver covers becomes `waived`; a failure only
    expired waivers cover stays `fail` and says so."""
    return [_waive(f, waivers, today) if f.status is Status.FAIL else f for f in findings]


def _waive(finding: Finding, waivers: Sequence[Waiver], today: date) -> Finding:
    covering = [w for w in waivers if w.covers(finding)]
    current = [w for w in covering if w.expires >= today]
    if current:
        waiver = max(current, key=lambda w: w.expires)
        return dataclasses.replace(
            finding,
            status=Status.WAIVED,
            waiver=waiver.note(),
            message=f"{finding.message} (waived until {waiver.expires}: {waiver.reason}; approved by "
            f"{waiver.approved_by})",
        )
    if covering:
        lapsed = max(covering, key=lambda w: w.expires)
        return dataclasses.replace(
            finding, message=f"{finding.message} (waiver expired on {lapsed.expires}; approved by "
            f"{lapsed.approved_by})"
        )
    return finding
