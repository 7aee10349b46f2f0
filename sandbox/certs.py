"""Certificates for the sandbox registries.

One CA per sandbox work directory signs the server certificates, so an audit
configured with that CA (`ca_file`) verifies the chain exactly as it would with a
company's internal CA. Two deliberately broken variants exist for fault tests: an
EXPIRED certificate (signed by the CA, but no longer valid) and a SELF-SIGNED one
(valid dates, but no configured CA vouches for it). Keys are ECDSA P-256 because
they are generated in microseconds, which keeps every test fast.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CertKind = Literal["ca", "expired", "self-signed"]

CA_CERT_NAME = "ca.crt"
CA_KEY_NAME = "ca.key"
_SERVER_SANS: tuple[x509.GeneralName, ...] = (
    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
    x509.DNSName("localhost"),
)


@dataclass(frozen=True)
class CertificateAuthority:
    """The sandbox CA: its PEM files and the loaded objects used to sign with."""

    cert_file: Path
    key_file: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class ServerCertificate:
    """PEM files a registry serves; `ca_file` is the CA a client should trust."""

    cert_file: Path
    key_file: Path
    ca_file: Path
    not_after: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key readable by the owner only."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "regguard sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def ensure_ca(directory: Path, common_name: str = "regguard sandbox CA") -> CertificateAuthority:
    """Load the CA in `directory`, creating it on first use.

    Reusing it means every registry of one estate chains to the same root, so one
    `ca_file` serves all of them.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / CA_CERT_NAME, directory / CA_KEY_NAME
    if cert_file.exists() and key_file.exists():
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_file}: expected an ECDSA private key")
        return CertificateAuthority(cert_file, key_file, cert, key)
    key = _new_key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_file, key)
    _write_cert(cert_file, cert)
    return CertificateAuthority(cert_file, key_file, cert, key)


def _validity(kind: CertKind, days: int) -> tuple[dt.datetime, dt.datetime]:
    now = _now()
    if kind == "expired":
        return now - dt.timedelta(days=days + 1), now - dt.timedelta(days=1)
    return now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)


def issue_server_certificate(
    ca: CertificateAuthority,
    directory: Path,
    name: str,
    *,
    kind: CertKind = "ca",
    days: int = 365,
) -> ServerCertificate:
    """Write `<name>.crt`/`<name>.key` for a server on 127.0.0.1 / localhost.

    kind "ca": signed by `ca`, valid for `days`. "expired": signed by `ca`, but its
    validity ended yesterday. "self-signed": signed by its own key, so the chain does
    not verify against `ca` (which is still returned as the CA a client was told to
    trust — exactly the misconfiguration a fault test wants).
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = _new_key()
    subject = _name(name)
    not_before, not_after = _validity(kind, days)
    if kind == "self-signed":
        issuer, signing_key = subject, key
    else:
        issuer, signing_key = ca.cert.subject, ca.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(list(_SERVER_SANS)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    )
    if kind != "self-signed":
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    cert = builder.sign(signing_key, hashes.SHA256())
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    _write_key(key_file, key)
    _write_cert(cert_file, cert)
    return ServerCertificate(cert_file, key_file, ca.cert_file, not_after)


def server_certificate(
    directory: Path, name: str, kind: CertKind = "ca", *, days: int = 365
) -> ServerCertificate:
    """The CA in `directory` (created if needed) plus a fresh server certificate."""
    ca = ensure_ca(directory)
    return issue_server_certificate(ca, directory, name, kind=kind, days=days)
