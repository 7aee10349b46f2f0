"""The TLS probe against real local TLS listeners (127.0.0.1, free ports)
serving certificates generated here: CA-issued, expired, self-signed, wrong
name; plus the pure name-matching helpers."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from audits.collectors.tls_probe import TlsProbeError, hostname_matches, is_self_signed, probe_tls

NOW = dt.datetime.now(dt.UTC)
Serve = Callable[..., int]  # serve(issued, max_version=None) -> port


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def make_cert(
    cn: str,
    *,
    issuer: Issued | None = None,
    ips: tuple[str, ...] = (),
    dns: tuple[str, ...] = (),
    days: tuple[int, int] = (-1, 90),
    ca: bool = False,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + dt.timedelta(days=days[0]))
        .not_valid_after(NOW + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(cert, key)


def pem(issued: Issued) -> tuple[bytes, bytes]:
    return (
        issued.cert.public_bytes(serialization.Encoding.PEM),
        issued.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_cert("test CA", ca=True, days=(-1, 365))


@pytest.fixture(scope="module")
def ca_file(ca: Issued, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_bytes(pem(ca)[0])
    return path


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """`serve(issued, max_version=None) -> port`: a TLS listener that completes
    handshakes and closes; every listener is stopped after the test."""
    stops: list[tuple[socket.socket, threading.Thread]] = []

    def start(issued: Issued, max_version: ssl.TLSVersion | None = None) -> int:
        cert_pem, key_pem = pem(issued)
        cert_path, key_path = tmp_path / f"{id(issued)}.crt", tmp_path / f"{id(issued)}.key"
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        if max_version is not None:
            ctx.maximum_version = max_version
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)

        def loop() -> None:
            while listener.fileno() != -1:
                try:
                    conn, _ = listener.accept()
                except (TimeoutError, OSError):
                    continue
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.settimeout(1)
                        tls.recv(1)  # wait for the client to close
                except (ssl.SSLError, OSError):
                    pass

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        stops.append((listener, thread))
        return int(listener.getsockname()[1])

    yield start
    for listener, thread in stops:
        listener.close()
        thread.join(timeout=2)


def test_ca_issued_certificate_verifies_with_the_ca(serve: Serve, ca: Issued, ca_file: Path) -> None:
    port = serve(make_cert("registry", issuer=ca, ips=("127.0.0.1",), dns=("localhost",)))
    facts = probe_tls("127.0.0.1", port, ca_file, timeout=3)
    assert facts.verified is True and facts.verify_error is None
    assert facts.hostname_matches is True
    assert facts.protocol in ("TLSv1.2", "TLSv1.3") and facts.cipher
    assert facts.trust_source == str(ca_file)
    assert facts.subject == "CN=registry" and facts.issuer == "CN=test CA"
    assert facts.self_signed is False
    assert facts.days_remaining is not None and 89 < facts.days_remaining <= 90
    assert facts.not_after is not None and facts.not_after.tzinfo is not None


def test_same_certificate_fails_against_the_system_store(serve: Serve, ca: Issued) -> None:
    port = serve(make_cert("registry", issuer=ca, ips=("127.0.0.1",)))
    facts = probe_tls("127.0.0.1", port, None, timeout=3)
    assert facts.verified is False and facts.trust_source == "system"
    assert "unable to get local issuer certificate" in (facts.verify_error or "")


def test_expired_certificate_is_observed_and_fails_verification(serve: Serve, ca: Issued, ca_file: Path) -> None:
    port = serve(make_cert("registry", issuer=ca, ips=("127.0.0.1",), days=(-30, -2)))
    facts = probe_tls("127.0.0.1", port, ca_file, timeout=3)
    assert facts.verified is False and facts.verify_error == "certificate has expired"
    assert facts.days_remaining is not None and facts.days_remaining < -1.9
    assert facts.hostname_matches is True  # the two checks are separate


def test_self_signed_certificate(serve: Serve, ca_file: Path) -> None:
    port = serve(make_cert("selfie", ips=("127.0.0.1",)))
    facts = probe_tls("127.0.0.1", port, ca_file, timeout=3)
    assert facts.self_signed is True and facts.verified is False
    assert "self-signed" in (facts.verify_error or "") or "self signed" in (facts.verify_error or "")


def test_certificate_for_another_name(serve: Serve, ca: Issued, ca_file: Path) -> None:
    port = serve(make_cert("other", issuer=ca, dns=("other.example",)))
    facts = probe_tls("127.0.0.1", port, ca_file, timeout=3)
    assert facts.verified is True and facts.hostname_matches is False


def test_tls12_only_server_is_reported(serve: Serve, ca: Issued, ca_file: Path) -> None:
    port = serve(make_cert("registry", issuer=ca, ips=("127.0.0.1",)), max_version=ssl.TLSVersion.TLSv1_2)
    assert probe_tls("127.0.0.1", port, ca_file, timeout=3).protocol == "TLSv1.2"


def test_refused_port_raises_a_readable_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    with pytest.raises(TlsProbeError) as info:
        probe_tls("127.0.0.1", port, None, timeout=2)
    assert info.value.detail == "connection refused"


def test_plain_tcp_server_is_not_tls() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(TlsProbeError, match="TLS handshake failed"):
            probe_tls("127.0.0.1", listener.getsockname()[1], None, timeout=2)
    finally:
        listener.close()
        thread.join(timeout=2)


def test_silent_server_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener, pytest.raises(TlsProbeError) as info:
        probe_tls("127.0.0.1", listener.getsockname()[1], None, timeout=0.3)
    assert info.value.detail == "TLS handshake timed out: not complete within 0.3 s"


def test_a_server_dripping_its_handshake_is_cut_at_the_deadline() -> None:
    """One byte every 0.1 s never trips a 1 s per-read timeout; the handshake
    as a whole must still end within the timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)  # the ClientHello
            record = b"\x16\x03\x03\x40\x00" + b"\x02" * 80  # a 16 KiB handshake record, a byte at a time
            for i in range(len(record)):
                if stop.wait(0.1):
                    return
                try:
                    conn.sendall(record[i : i + 1])
                except OSError:
                    return

    thread = threading.Thread(target=drip)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(TlsProbeError) as info:
            probe_tls("127.0.0.1", listener.getsockname()[1], None, timeout=1)
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)
    assert time.monotonic() - started < 2.5
    assert info.value.detail == "TLS handshake timed out: not complete within 1 s"


def test_missing_ca_file_is_a_verify_error(serve: Serve, ca: Issued, tmp_path: Path) -> None:
    port = serve(make_cert("registry", issuer=ca, ips=("127.0.0.1",)))
    facts = probe_tls("127.0.0.1", port, tmp_path / "missing.pem", timeout=3)
    assert facts.verified is False and "cannot load CA file" in (facts.verify_error or "")


# ---- name matching ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sans", "host", "expected"),
    [
        (("registry.internal",), "registry.internal", True),
        (("REGISTRY.internal",), "registry.INTERNAL", True),
        (("*.corp.example",), "reg.corp.example", True),
        (("*.corp.example",), "a.reg.corp.example", False),  # one label only
        (("*.corp.example",), "corp.example", False),
        (("*.com",), "example.com", False),  # no wildcard under a bare suffix
        (("other.example",), "registry.internal", False),
    ],
)
def test_dns_name_matching(sans: tuple[str, ...], host: str, expected: bool) -> None:
    assert hostname_matches(make_cert("cn-is-ignored", dns=sans).cert, host) is expected


def test_ip_targets_match_ip_sans_only() -> None:
    cert = make_cert("127.0.0.1", dns=("127.0.0.1",), ips=("10.0.0.1", "::1")).cert
    assert hostname_matches(cert, "127.0.0.1") is False  # a DNS SAN or CN does not name an IP
    assert hostname_matches(cert, "10.0.0.1") is True
    assert hostname_matches(cert, "::1") is True


def test_certificate_without_san_matches_nothing() -> None:
    assert hostname_matches(make_cert("registry.internal").cert, "registry.internal") is False


def test_self_signed_detection(ca: Issued) -> None:
    assert is_self_signed(ca.cert) is True
    assert is_self_signed(make_cert("leaf", issuer=ca).cert) is False
