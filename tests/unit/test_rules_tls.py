"""RG-TLS-001..003 on hand-built endpoint, plain-HTTP and certificate facts."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from audits.model import ENDPOINT, PLAIN_HTTP, TLS, EndpointFacts, Fact, PlainHttpFacts, Severity, Status, TlsFacts
from audits.rules.tls import protocol_version
from tests.unit.test_rules_common import DEV, NOW, PROD, assert_evidence, context, only, run, run_engine, statuses, view

HTTPS = EndpointFacts(url="https://registry.test:5000", scheme="https")
HTTP = EndpointFacts(url="http://registry.test:5000", scheme="http")
REFUSED = PlainHttpFacts(url="http://registry.test:5000/v2/", serves_api=False, status=400, redirects_to_https=False)
GOOD_CERT = TlsFacts(
    host="registry.test",
    port=5000,
    protocol="TLSv1.3",
    cipher="TLS_AES_256_GCM_SHA384",
    verified=True,
    verify_error=None,
    hostname_matches=True,
    trust_source="/etc/regguard/ca.pem",
    subject="CN=registry.test",
    issuer="CN=Test CA",
    not_after=NOW + timedelta(days=200),
    days_remaining=200,
    self_signed=False,
)


def tls_view(endpoint: EndpointFacts = HTTPS, plain: PlainHttpFacts = REFUSED, cert: TlsFacts = GOOD_CERT):
    return view(**{ENDPOINT: endpoint, PLAIN_HTTP: plain, TLS: cert})


# RG-TLS-001 -----------------------------------------------------------------


def test_https_only_passes_when_plain_http_does_not_serve_the_api() -> None:
    verdict = only(run("RG-TLS-001", PROD, tls_view()))
    assert verdict.status is Status.PASS
    assert verdict.evidence["source"] == f"test:{PLAIN_HTTP}"
    assert_evidence([verdict], "serves_api", "plain_http_status", "observed_at")


def test_plain_http_redirect_passes() -> None:
    plain = replace(REFUSED, serves_api=True, status=301, redirects_to_https=True)
    assert only(run("RG-TLS-001", PROD, tls_view(plain=plain))).status is Status.PASS


def test_plain_http_serving_the_api_fails() -> None:
    plain = replace(REFUSED, serves_api=True, status=401)
    verdict = only(run("RG-TLS-001", PROD, tls_view(plain=plain)))
    assert verdict.status is Status.FAIL
    assert "plain HTTP" in verdict.message


def test_http_only_target_fails_without_needing_plain_http_fact() -> None:
    facts = view(**{ENDPOINT: HTTP})
    verdict = only(run("RG-TLS-001", DEV, facts))
    assert verdict.status is Status.FAIL
    assert verdict.evidence["scheme"] == "http"


def test_dead_host_is_error_not_https_only() -> None:
    facts = view(
        **{ENDPOINT: HTTPS, PLAIN_HTTP: replace(REFUSED, status=None), TLS: Fact.error("connection refused", "tls")}
    )
    assert statuses(run_engine("RG-TLS-001", PROD, facts)) == [Status.ERROR]


def test_plain_http_probe_error_is_error_not_pass() -> None:
    facts = view(
        **{ENDPOINT: HTTPS, TLS: GOOD_CERT, PLAIN_HTTP: Fact.error("connection reset", source="GET http://x/v2/")}
    )
    assert statuses(run_engine("RG-TLS-001", PROD, facts)) == [Status.ERROR]


# RG-TLS-002 -----------------------------------------------------------------


def test_trusted_certificate_passes() -> None:
    verdict = only(run("RG-TLS-002", PROD, tls_view()))
    assert verdict.status is Status.PASS
    assert verdict.resource == "registry.test:5000"
    assert_evidence([verdict], "protocol", "verified", "hostname_matches", "not_after", "source")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"verified": False, "verify_error": "self-signed certificate in chain"}, "does not verify"),
        ({"hostname_matches": False}, "does not match host"),
        ({"not_after": NOW - timedelta(days=3), "days_remaining": -3}, "expired"),
        ({"protocol": "TLSv1.1"}, "older than TLSv1.2"),
        ({"protocol": "TLSv1"}, "older than TLSv1.2"),
        ({"protocol": "SSLv3"}, "older than TLSv1.2"),
        ({"protocol": None, "verify_error": "handshake failure"}, "no TLS handshake"),
    ],
)
def test_untrustworthy_certificates_fail(change: dict[str, object], expected: str) -> None:
    verdict = only(run("RG-TLS-002", PROD, tls_view(cert=replace(GOOD_CERT, **change))))
    assert verdict.status is Status.FAIL
    assert expected in verdict.message


def test_tls12_is_enough() -> None:
    assert only(run("RG-TLS-002", PROD, tls_view(cert=replace(GOOD_CERT, protocol="TLSv1.2")))).status is Status.PASS


def test_several_problems_are_all_reported() -> None:
    cert = replace(GOOD_CERT, verified=False, verify_error="unknown CA", hostname_matches=False, protocol="TLSv1.1")
    message = only(run("RG-TLS-002", PROD, tls_view(cert=cert))).message
    assert "does not verify" in message and "does not match" in message and "TLSv1.1" in message


def test_expiry_is_judged_at_the_context_clock() -> None:
    cert = replace(GOOD_CERT, not_after=NOW + timedelta(days=1), days_remaining=1)
    later = context("prod", now=NOW + timedelta(days=2))
    assert only(run("RG-TLS-002", later, tls_view(cert=cert))).status is Status.FAIL


def test_unobserved_hostname_check_is_error() -> None:
    verdict = only(run("RG-TLS-002", PROD, tls_view(cert=replace(GOOD_CERT, hostname_matches=None))))
    assert verdict.status is Status.ERROR


def test_plain_http_target_has_no_trustworthy_certificate() -> None:
    assert only(run("RG-TLS-002", PROD, view(**{ENDPOINT: HTTP}))).status is Status.FAIL


def test_protocol_versions_order() -> None:
    assert protocol_version("TLSv1.3") == (1, 3)
    assert protocol_version("TLSv1") == (1, 0)
    assert protocol_version("SSLv3") is not None and protocol_version("SSLv3") < (1, 0)  # type: ignore[operator]
    assert protocol_version("QUIC") is None


# RG-TLS-003 -----------------------------------------------------------------


def test_certificate_far_from_expiry_passes() -> None:
    verdict = only(run("RG-TLS-003", PROD, tls_view()))
    assert verdict.status is Status.PASS
    assert verdict.evidence["cert_min_days"] == 30


def test_certificate_expiring_within_threshold_fails() -> None:
    cert = replace(GOOD_CERT, not_after=NOW + timedelta(days=10), days_remaining=10)
    verdict = only(run("RG-TLS-003", PROD, tls_view(cert=cert)))
    assert verdict.status is Status.FAIL
    assert verdict.severity is None
    assert "10 day" in verdict.message


def test_threshold_comes_from_the_context() -> None:
    from audits.rules.registry import Thresholds

    cert = replace(GOOD_CERT, not_after=NOW + timedelta(days=10), days_remaining=10)
    relaxed = context("prod", thresholds=Thresholds(cert_min_days=5))
    assert only(run("RG-TLS-003", relaxed, tls_view(cert=cert))).status is Status.PASS


def test_expired_certificate_fails_with_high_severity() -> None:
    cert = replace(GOOD_CERT, not_after=NOW - timedelta(days=1), days_remaining=-1)
    verdict = only(run("RG-TLS-003", PROD, tls_view(cert=cert)))
    assert verdict.status is Status.FAIL
    assert verdict.severity is Severity.HIGH


def test_unknown_expiry_is_error() -> None:
    cert = replace(GOOD_CERT, not_after=None, days_remaining=None)
    assert only(run("RG-TLS-003", PROD, tls_view(cert=cert))).status is Status.ERROR


def test_plain_http_target_has_no_certificate_to_expire() -> None:
    assert only(run("RG-TLS-003", PROD, view(**{ENDPOINT: HTTP}))).status is Status.NOT_APPLICABLE


def test_managed_tls_is_not_applicable_through_the_engine() -> None:
    facts = view("ecr", **{ENDPOINT: HTTPS, TLS: Fact.managed("AWS terminates TLS")})
    assert statuses(run_engine("RG-TLS-003", PROD, facts)) == [Status.NOT_APPLICABLE]
