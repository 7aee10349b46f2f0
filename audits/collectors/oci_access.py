"""What every collector that logs in to an OCI endpoint decides the same way:
whether credentials may be sent at all (TLS verified), where they come from
(environment variables named by the target, never values in the config), and
how a cosign signature layer found through the OCI API is verified.

Shared by the distribution and harbor collectors so the refusal texts, the
redaction of the password and the verification stay one piece of code.
"""

from __future__ import annotations

import os

from audits.collectors.oci import Credentials, Redactor
from audits.collectors.oci_probe import Endpoint
from audits.model import Fact, TlsFacts


class MissingCredential(Exception):
    """A credential variable the target names is not set (the text names it)."""


def tls_refusal(endpoint: Endpoint, tls: Fact[TlsFacts]) -> str | None:
    """Why authenticated collection must not run (credentials would go to an
    endpoint whose certificate did not verify), or None when it may."""
    if endpoint.scheme != "https":
        return None
    if tls.value is None:
        return f"not collected: TLS handshake failed ({tls.detail})"
    if not tls.value.verified:
        return f"not collected: TLS verification failed ({tls.value.verify_error})"
    if tls.value.hostname_matches is False:
        return f"not collected: TLS verification failed (certificate does not name {endpoint.host})"
    return None


def credentials_from_env(username_env: str | None, password_env: str | None, redact: Redactor) -> Credentials | None:
    """Credentials from the variables the target names (None when it names
    none); the password is added to `redact` before anything else happens."""
    if not username_env and not password_env:
        return None
    for var in (username_env, password_env):
        if not var:
            raise MissingCredential("username_env and password_env must both be set")
        if not os.environ.get(var):
            raise MissingCredential(f"environment variable {var} is not set")
    assert username_env is not None and password_env is not None
    password = os.environ[password_env]
    redact.add(password)
    return Credentials(os.environ[username_env], password)
