"""The raw TLS handshake an auditor needs to see, done by hand with `ssl`.

Two handshakes, on purpose:

1. an *observing* one that accepts anything (no chain check, lowest protocol
   and security level the local OpenSSL allows) so the negotiated protocol,
   cipher and the peer certificate are recorded even when the certificate is
   expired, self-signed or for another name — that is exactly the evidence an
   auditor wants;
2. a *verifying* one against `ca_file` (or the system store) whose failure
   text (`certificate has expired`, `self-signed certificate`, ...) becomes
   `verify_error`.

Each handshake, connect included, ends within the probe's `timeout`.

Hostname matching is checked separately against the certificate's subject
alternative names (DNS names with RFC 6125 left-most wildcards, IP addresses
for IP targets); the subject CN is not used, as modern clients do not.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtensionOID

from audits.model import TlsFacts, utcnow


class TlsProbeError(Exception):
    """No handshake could be completed; `detail` is a short human sentence."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class _Observed:
    protocol: str | None
    cipher: str | None
    der: bytes | None


def probe_tls(host: str, port: int, ca_file: Path | None, timeout: float) -> TlsFacts:
    """Handshake with `host:port` and describe what was negotiated and whether
    the certificate is trustworthy. Raises TlsProbeError when not even the
    permissive handshake completes (refused, timed out, not TLS)."""
    observed = _observe(host, port, timeout)
    verify_error = _verify(host, port, ca_file, timeout)
    cert = x509.load_der_x509_certificate(observed.der) if observed.der else None
    now = utcnow()
    not_after = cert.not_valid_after_utc if cert is not None else None
    return TlsFacts(
        host=host,
        port=port,
        protocol=observed.protocol,
        cipher=observed.cipher,
        verified=verify_error is None,
        verify_error=verify_error,
        hostname_matches=hostname_matches(cert, host) if cert is not None else None,
        trust_source=str(ca_file) if ca_file is not None else "system",
        subject=cert.subject.rfc4514_string() if cert is not None else None,
        issuer=cert.issuer.rfc4514_string() if cert is not None else None,
        not_after=not_after,
        days_remaining=_days_between(now, not_after) if not_after is not None else None,
        self_signed=is_self_signed(cert) if cert is not None else None,
    )


def _observe(host: str, port: int, timeout: float) -> _Observed:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers("ALL:@SECLEVEL=0")  # observe weak servers instead of failing on them
    try:
        with _connect(host, port, timeout) as raw, ctx.wrap_socket(raw, server_hostname=_sni(host)) as tls:
            cipher = tls.cipher()
            return _Observed(tls.version(), cipher[0] if cipher else None, tls.getpeercert(binary_form=True))
    except TimeoutError:
        raise TlsProbeError(_timed_out("TLS handshake", timeout)) from None
    except ConnectionRefusedError:
        raise TlsProbeError("connection refused") from None
    except ssl.SSLError as exc:
        raise TlsProbeError(f"TLS handshake failed: {exc.reason or exc.__class__.__name__}") from None
    except OSError as exc:
        raise TlsProbeError(f"cannot connect: {exc.strerror or exc.__class__.__name__}") from None


def _verify(host: str, port: int, ca_file: Path | None, timeout: float) -> str | None:
    """None when the chain verifies against the trust source, else why not.
    The hostname is deliberately not checked here (see `hostname_matches`)."""
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except (OSError, ssl.SSLError) as exc:
        return f"cannot load CA file {ca_file}: {getattr(exc, 'strerror', None) or exc.__class__.__name__}"
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        with _connect(host, port, timeout) as raw, ctx.wrap_socket(raw, server_hostname=_sni(host)):
            return None
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message or exc.reason or "certificate verification failed")
    except ssl.SSLError as exc:
        return f"TLS handshake failed: {exc.reason or exc.__class__.__name__}"
    except TimeoutError:
        return _timed_out("verifying handshake", timeout)
    except OSError as exc:
        return f"verifying handshake failed: {exc.strerror or exc.__class__.__name__}"


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection left with what remains of `timeout` as its socket
    timeout. CPython's ssl bounds a whole handshake by the socket timeout (not
    each read), so connect plus handshake end within `timeout` even against a
    server that drips one byte at a time."""
    deadline = time.monotonic() + timeout
    raw = socket.create_connection((host, port), timeout=timeout)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raw.close()
        raise TimeoutError
    raw.settimeout(remaining)
    return raw


def _timed_out(what: str, timeout: float) -> str:
    return f"{what} timed out: not complete within {timeout:g} s"


def _sni(host: str) -> str | None:
    """SNI must not carry an IP address (RFC 6066)."""
    return None if _ip(host) is not None else host


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _days_between(now: datetime, then: datetime) -> float:
    return round((then - now).total_seconds() / 86400.0, 2)


def hostname_matches(cert: x509.Certificate, host: str) -> bool:
    """Does the certificate name `host`? IP targets match IP SANs only; names
    match DNS SANs, where `*` may stand for exactly one whole left-most label."""
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return False
    assert isinstance(san, x509.SubjectAlternativeName)
    ip = _ip(host)
    if ip is not None:
        return ip in san.get_values_for_type(x509.IPAddress)
    return any(_dns_match(pattern, host) for pattern in san.get_values_for_type(x509.DNSName))


def _dns_match(pattern: str, host: str) -> bool:
    pattern_labels = pattern.lower().rstrip(".").split(".")
    host_labels = host.lower().rstrip(".").split(".")
    if len(pattern_labels) != len(host_labels):
        return False
    first, *rest = pattern_labels
    if rest != host_labels[1:]:
        return False
    if first == "*":
        return len(rest) >= 2  # no wildcard directly under a public suffix like *.com
    return first == host_labels[0]


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issued by itself: same name and its own key verifies its signature."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):  # bad signature or unsupported key type
        return False
    return True
