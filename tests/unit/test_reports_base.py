"""The shared reporter pieces: redaction, ordering, format lookup, writing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audits.controls import label_to_id
from audits.model import STATUS_ORDER, Severity, Status
from reports import FORMATS, get_reporter, write_reports
from reports.base import (
    REDACTED,
    is_secret_key,
    prepare_findings,
    redact,
    redact_text,
    to_jsonable,
)
from tests.unit import report_fixtures as fx


@pytest.mark.parametrize(
    "key",
    ["password", "Password", "registry_password", "auth", "Authorization", "access-token",
     "refreshToken", "client_secret", "secret_access_key", "api_key", "apiKey", "x-registry-auth"],
)
def test_secret_keys_are_recognised(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["password_env", "token_expires_at", "access_key_id", "auth_scheme", "author", "status",
     "key_id", "username", "challenge_schemes", "authenticated", "credential", "credential_kind"],
)
def test_harmless_keys_are_kept(key: str) -> None:
    assert not is_secret_key(key)


def test_redact_masks_nested_secret_values_and_keeps_the_rest() -> None:
    evidence = {
        "status": 401,
        "password": "pw",
        "auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz", "email": "a@b.c"}},
        "headers": [{"Authorization": "Basic dXNlcjpwYXNz"}],
        "password_env": "EDGE_REGISTRY_PASSWORD",
        "empty_token": "",
        "default_password": True,
        "token": None,
    }
    out = redact(evidence)
    assert out["status"] == 401
    assert out["password"] == REDACTED
    assert out["auths"]["ghcr.io"] == {"auth": REDACTED, "email": "a@b.c"}
    assert out["headers"] == [{"Authorization": REDACTED}]
    assert out["password_env"] == "EDGE_REGISTRY_PASSWORD"
    assert out["empty_token"] == ""  # nothing to hide, and the absence is evidence
    assert out["default_password"] is True  # a flag is the finding, not a secret
    assert out["token"] is None
    assert evidence["password"] == "pw"  # the input is not modified


def test_redact_text_masks_url_userinfo_and_auth_headers() -> None:
    assert redact_text("https://bob:s3cr3t@reg.example:5000/v2/") == (
        f"https://bob:{REDACTED}@reg.example:5000/v2/"
    )
    assert redact_text("sent Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc") == (
        f"sent Authorization: Bearer {REDACTED}"
    )
    # A challenge header is not a credential and stays readable.
    challenge = 'Basic realm="Registry Realm"'
    assert redact_text(challenge) == challenge
    assert redact_text("https://reg.example/v2/ user@host") == "https://reg.example/v2/ user@host"


def test_redaction_applies_to_findings_before_any_format() -> None:
    prepared = prepare_findings(fx.audit_result())
    text = json.dumps([f.as_dict() for f in prepared])
    assert not fx.has_secret(text)
    assert REDACTED in text


def test_findings_sorted_failing_first_then_severity_rule_target_resource() -> None:
    """One order everywhere (engine and every report): what needs doing comes first."""
    prepared = prepare_findings(fx.audit_result())
    keys = [(STATUS_ORDER.index(f.status), -f.severity.rank, f.rule, f.target, f.resource) for f in prepared]
    assert keys == sorted(keys)
    assert prepared[0].status is Status.FAIL and prepared[0].severity is Severity.CRITICAL
    assert prepared[-1].status is Status.NOT_APPLICABLE


def test_nist_labels_become_oscal_ids() -> None:
    assert label_to_id("IA-5(1)") == "ia-5.1"
    assert label_to_id("SC-8") == "sc-8"
    assert label_to_id("AC-2(3)") == "ac-2.3"
    with pytest.raises(ValueError, match="not a NIST"):
        label_to_id("CC6.1")


def test_to_jsonable_flattens_dataclasses_enums_and_datetimes() -> None:
    @dataclass(frozen=True)
    class Probe:
        status: Status
        at: datetime
        tags: frozenset[str]

    value = to_jsonable({"p": Probe(Status.FAIL, datetime(2026, 1, 2, tzinfo=UTC),
                                    frozenset({"b", "a"}))})
    assert value == {"p": {"status": "fail", "at": "2026-01-02T00:00:00Z", "tags": ["a", "b"]}}


def test_get_reporter_knows_every_format_and_rejects_others() -> None:
    assert FORMATS == ("html", "md", "json", "sarif", "junit", "oscal")
    filenames = {get_reporter(f).filename for f in FORMATS}
    assert filenames == {"report.html", "report.md", "report.json", "report.sarif",
                         "report.junit.xml", "oscal-assessment-results.json"}
    assert get_reporter("JSON").format == "json"
    with pytest.raises(ValueError, match="unknown report format 'pdf'.*html, md, json"):
        get_reporter("pdf")


def test_write_reports_writes_each_format_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    paths = write_reports(fx.audit_result(), fx.rules(), ["json", "md", "json"], out)
    assert paths == [out / "report.json", out / "report.md"]
    assert json.loads(paths[0].read_text())["tool"] == "regguard"


def test_write_reports_checks_formats_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_reports(fx.audit_result(), fx.rules(), ["json", "nope"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_without_secrets_and_deterministically(fmt: str) -> None:
    reporter = get_reporter(fmt)
    first = reporter.render(fx.audit_result(), fx.rules())
    assert not fx.has_secret(first)
    assert reporter.render(fx.audit_result(), fx.rules()) == first


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_an_empty_audit(fmt: str) -> None:
    assert get_reporter(fmt).render(fx.empty_result(), {}).strip()


def test_redact_text_keeps_prose_after_basic_and_bearer() -> None:
    """Regression: 'no Basic challenge over plain HTTP' came out as 'no Basic ***'."""
    assert redact_text("no Basic challenge over plain HTTP") == "no Basic challenge over plain HTTP"
    assert redact_text("Bearer Authentication required") == "Bearer Authentication required"
    assert "dXNlcjpwYXNzd29yZA" not in redact_text("sent Basic dXNlcjpwYXNzd29yZA==")
    assert "abcdefghijklmnopqrstuvwxyz" not in redact_text("Bearer abcdefghijklmnopqrstuvwxyz.sig123")
