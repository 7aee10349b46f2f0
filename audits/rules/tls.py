"""RG-TLS-*: the registry API is reachable only over TLS with a certificate
clients can trust, and that certificate is not about to lapse."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from audits.model import (
    ENDPOINT,
    PLAIN_HTTP,
    TLS,
    EndpointFacts,
    PlainHttpFacts,
    Severity,
    TlsFacts,
    Verdict,
)
from audits.rules.common import REGISTRY_KINDS, evidence
from audits.rules.registry import (
    FactView,
    Remediation,
    RuleContext,
    RuleMeta,
    errored,
    failed,
    not_applicable,
    passed,
    rule,
)

MIN_TLS = (1, 2)
VerdictFunc = Callable[..., Verdict]
_PROTOCOL_RE = re.compile(r"^(SSLv|TLSv)(\d+)(?:\.(\d+))?$")

# Docker Hub's TLS is Docker's: the one thing to fix is where the audit points and what it trusts.
_DOCKER_HUB_TLS = Remediation(
    cli=(
        "Docker Hub runs its own TLS: set `registry_url: https://registry-1.docker.io` (the default) "
        "and check the audit host's trust store (`ca_file`)"
    ),
)


def protocol_version(protocol: str | None) -> tuple[int, int] | None:
    """`TLSv1.2` -> (1, 2); `TLSv1` -> (1, 0); SSL versions rank below TLS 1.0."""
    if not protocol:
        return None
    m = _PROTOCOL_RE.match(protocol)
    if m is None:
        return None
    major, minor = int(m.group(2)), int(m.group(3) or 0)
    return (0, major) if m.group(1) == "SSLv" else (major, minor)


def _plain_http_target(facts: FactView, verdict: VerdictFunc, message: str) -> Verdict | None:
    """For an http:// target the TLS rules need no more facts: `verdict` with
    `message`. None for an https:// target, which is judged in full."""
    endpoint: EndpointFacts = facts.require(ENDPOINT)
    if endpoint.scheme == "https":
        return None
    return verdict(endpoint.url, message, **evidence(facts, ENDPOINT, url=endpoint.url, scheme=endpoint.scheme))


@rule(
    RuleMeta(
        id="RG-TLS-001",
        title="Registry API only over HTTPS",
        rationale=(
            "A registry reachable over plain HTTP sends credentials, bearer tokens and image "
            "layers in clear text and lets anyone on the path swap the content clients pull. "
            "The guide's TLS section requires the /v2/ API to answer only over TLS; a plain-HTTP "
            "listener on the same address must refuse or redirect rather than serve the API."
        ),
        seed_section="TLS",
        severity=Severity.HIGH,
        kinds=REGISTRY_KINDS,
        soc2=("CC6.7",),
        nist_800_53=("SC-8", "SC-8(1)"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "set `http.tls.certificate` and `http.tls.key` in the registry's config.yml, restart it "
                    "(`systemctl restart docker-registry`), and remove any plain-HTTP listener or make it redirect "
                    "to HTTPS"
                ),
                component='DistributionVmArgs(tls_mode="internal-ca")',
            ),
            "ecr": Remediation(
                cli=(
                    "ECR's own endpoint (`<account>.dkr.ecr.<region>.amazonaws.com`) serves HTTPS only: a "
                    "plain-HTTP answer comes from something placed in front of it (a proxy or mirror); stop that "
                    "listener or make it redirect to HTTPS"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "serve Harbor over HTTPS only: set `https.certificate` and `https.private_key` in harbor.yml and "
                    "remove the `http` block, then `./prepare && docker compose up -d`"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "Artifact Registry's own endpoint (`<location>-docker.pkg.dev`) serves HTTPS only: a plain-HTTP "
                    "answer comes from something placed in front of it; close it or make it redirect to HTTPS"
                ),
            ),
            "acr": Remediation(
                cli="nothing to change: ACR's login server answers only HTTPS (TLS 1.2+)",
            ),
            "dockerhub": _DOCKER_HUB_TLS,
            "ghcr": Remediation(
                cli=(
                    "ghcr.io serves the registry API over HTTPS only: a plain-HTTP answer means the audit reached "
                    "something else (a proxy, or a wrong `registry_url`)"
                ),
            ),
        },
    )
)
def api_only_over_https(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """Fails an http:// target outright; for an https:// target, fails when the
    same host:port also serves the API over plain HTTP without redirecting."""
    if http := _plain_http_target(facts, failed, "registry API is served over plain HTTP (target URL is not https)"):
        yield http
        return
    endpoint: EndpointFacts = facts.require(ENDPOINT)
    # "Only over HTTPS" needs the HTTPS side observed too: a dead host refuses
    # plain HTTP as well, which says nothing about how it serves when it is up.
    facts.require(TLS)
    plain: PlainHttpFacts = facts.require(PLAIN_HTTP)
    seen = evidence(
        facts,
        PLAIN_HTTP,
        url=endpoint.url,
        plain_http_url=plain.url,
        plain_http_status=plain.status,
        serves_api=plain.serves_api,
        redirects_to_https=plain.redirects_to_https,
    )
    if plain.serves_api and not plain.redirects_to_https:
        yield failed(endpoint.url, f"{plain.url} also serves the registry API over plain HTTP", **seen)
    elif plain.redirects_to_https:
        yield passed(endpoint.url, "HTTPS only; plain HTTP redirects to HTTPS", **seen)
    else:
        yield passed(endpoint.url, "HTTPS only; plain HTTP does not serve the API", **seen)


@rule(
    RuleMeta(
        id="RG-TLS-002",
        title="Certificate trustworthy",
        rationale=(
            "TLS only protects clients that verify who they talk to. An untrusted chain, a "
            "certificate for another name, an expired certificate or a protocol older than "
            "TLS 1.2 pushes teams to `insecure-registries` and `--tls-verify=false`, which "
            "removes the protection for every pull and push. Clients must be able to verify "
            "the registry against the system store or a distributed internal CA."
        ),
        seed_section="TLS",
        severity=Severity.HIGH,
        kinds=REGISTRY_KINDS,
        soc2=("CC6.7",),
        nist_800_53=("SC-8", "SC-12", "SC-23"),
        remediation={
            "distribution": Remediation(
                cli=(
                    "issue a certificate for the registry's host name from a trusted CA (`certbot certonly -d "
                    "registry.example.com` or your internal CA), put it in config.yml `http.tls`, and set "
                    "`http.tls.minimumtls: tls1.2`"
                ),
                component='DistributionVmArgs(tls_mode="internal-ca")',
            ),
            "ecr": Remediation(
                cli=(
                    "ECR's endpoint carries an AWS certificate: a failure means the audit reached something else (a "
                    "proxy or a DNS override); check the host the target resolves to and the target's `ca_file`"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "install a certificate from a CA your clients trust (full chain, the hostname in subjectAltName, "
                    "TLS 1.2 or later) as harbor.yml `https.certificate` / `https.private_key`, then `./prepare && "
                    "docker compose up -d`"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "Artifact Registry's endpoint carries a Google certificate: a failure means the audit reached "
                    "something else (a proxy or a DNS override); check the host the target resolves to"
                ),
            ),
            "acr": Remediation(
                cli="nothing to change: ACR's login server answers only HTTPS; use `https://` references",
            ),
            "dockerhub": _DOCKER_HUB_TLS,
            "ghcr": Remediation(
                cli=(
                    "ghcr.io carries a certificate GitHub manages: a failure means a TLS-intercepting proxy or a "
                    "wrong `registry_url` / `ca_file`"
                ),
            ),
        },
    )
)
def certificate_trustworthy(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """Chain verifies, hostname matches, not expired, protocol >= TLS 1.2."""
    if http := _plain_http_target(facts, failed, "no TLS: the target is plain HTTP, there is no certificate to trust"):
        yield http
        return
    tls: TlsFacts = facts.require(TLS)
    seen = evidence(
        facts,
        TLS,
        protocol=tls.protocol,
        verified=tls.verified,
        verify_error=tls.verify_error,
        hostname_matches=tls.hostname_matches,
        trust_source=tls.trust_source,
        subject=tls.subject,
        issuer=tls.issuer,
        not_after=tls.not_after.isoformat() if tls.not_after else None,
        self_signed=tls.self_signed,
    )
    resource = f"{tls.host}:{tls.port}"
    problems = _certificate_problems(ctx, tls)
    if problems:
        yield failed(resource, "; ".join(problems), **seen)
    elif tls.hostname_matches is None:
        yield errored(resource, "chain verified but the hostname check was not observed", **seen)
    else:
        yield passed(resource, f"certificate verifies against {tls.trust_source} ({tls.protocol})", **seen)


def _certificate_problems(ctx: RuleContext, tls: TlsFacts) -> list[str]:
    if tls.protocol is None:
        return [f"no TLS handshake completed: {tls.verify_error or 'unknown reason'}"]
    problems: list[str] = []
    if not tls.verified:
        problems.append(f"chain does not verify against {tls.trust_source}: {tls.verify_error}")
    if tls.hostname_matches is False:
        problems.append(f"certificate does not match host {tls.host}")
    days = _days_remaining(ctx, tls)
    if days is not None and days < 0:
        problems.append(f"certificate expired {-days:.0f} day(s) ago")
    version = protocol_version(tls.protocol)
    if version is None or version < MIN_TLS:
        problems.append(f"protocol {tls.protocol} is older than TLSv1.2")
    return problems


def _days_remaining(ctx: RuleContext, tls: TlsFacts) -> float | None:
    """Days until expiry measured at the judgement's clock when the expiry date
    is known (keeps the judgement reproducible), else the collector's figure."""
    if tls.not_after is not None:
        return (tls.not_after - ctx.now).total_seconds() / 86400
    return tls.days_remaining


@rule(
    RuleMeta(
        id="RG-TLS-003",
        title="Certificate not about to expire",
        rationale=(
            "An expired registry certificate stops every deployment at once, usually at the "
            "worst moment, and the quick fix people reach for is disabling verification. "
            "Renewing ahead of `cert_min_days` keeps pulls working and verification on."
        ),
        seed_section="TLS",
        severity=Severity.MEDIUM,
        kinds=REGISTRY_KINDS,
        soc2=("CC6.7",),
        nist_800_53=("SC-12",),
        remediation={
            "distribution": Remediation(
                cli=(
                    "renew the certificate (`certbot renew --cert-name registry.example.com`), reload the registry, "
                    "and automate renewal with a timer"
                ),
                component='DistributionVmArgs(tls_mode="internal-ca")',
            ),
            "ecr": Remediation(
                cli=(
                    "AWS renews the certificate of ECR's endpoint; renew the certificate of whatever proxy serves "
                    "your registry name in front of it"
                ),
            ),
            "harbor": Remediation(
                cli=(
                    "renew the certificate harbor.yml `https.certificate` names before it expires and run `./prepare "
                    "&& docker compose up -d` (automate it with ACME or your internal CA)"
                ),
            ),
            "gar": Remediation(
                cli=(
                    "Google renews the certificate of Artifact Registry's endpoint; renew the certificate of whatever "
                    "proxy serves your registry name in front of it"
                ),
            ),
            "acr": Remediation(
                cli="nothing to change: Microsoft renews the login server's certificate",
            ),
            "dockerhub": _DOCKER_HUB_TLS,
            "ghcr": Remediation(
                cli=(
                    "GitHub renews the certificate of ghcr.io; renew the certificate of any proxy in front of it"
                ),
            ),
        },
    )
)
def certificate_not_expiring(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    if http := _plain_http_target(facts, not_applicable, "plain-HTTP target has no certificate (see RG-TLS-001/002)"):
        yield http
        return
    tls: TlsFacts = facts.require(TLS)
    resource = f"{tls.host}:{tls.port}"
    days = _days_remaining(ctx, tls)
    minimum = ctx.thresholds.cert_min_days
    seen = evidence(
        facts,
        TLS,
        not_after=tls.not_after.isoformat() if tls.not_after else None,
        days_remaining=round(days, 1) if days is not None else None,
        cert_min_days=minimum,
    )
    if days is None:
        yield errored(resource, "certificate expiry date was not observed", **seen)
    elif days < 0:
        yield failed(resource, f"certificate expired {-days:.0f} day(s) ago", Severity.HIGH, **seen)
    elif days <= minimum:
        yield failed(resource, f"certificate expires in {days:.0f} day(s) (minimum {minimum})", **seen)
    else:
        yield passed(resource, f"certificate valid for {days:.0f} more day(s)", **seen)
