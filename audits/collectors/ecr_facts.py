"""ECR's raw API shapes -> regguard facts: the pure half of the ECR collector.

Everything here turns an ECR, IAM or CloudTrail answer (or the same shape
written by hand) into a normalized setting or fact: tag mutability, encryption,
repository policies, scanning coverage, lifecycle summaries, CloudTrail
selectors, image scans, cosign signature artifacts and repository facts. None
of it needs a client or the network.

Why it is its own module: the same normalization serves two callers, the live
collector (`audits.collectors.ecr`, which does the I/O: clients, paginators, the
thread pool, signature reads) and the policy pack's declared state
(`policy.declared`), so a declared `MUTABLE` and an observed `MUTABLE` become the
very same fact. The policy pack runs inside every `pulumi preview`; importing
it from here keeps boto3/botocore (and their second or so of start-up) out of
that process. Keep it that way: no SDK import at run time; the `mypy_boto3_*`
stubs are imported for type checking only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from audits.model import (
    EncryptionSetting,
    ImmutabilitySetting,
    ReplicationFacts,
    RepositoryFacts,
    ScanningFacts,
    SignatureFacts,
    TagFacts,
    VulnerabilityScan,
)
from audits.vocabulary import cosign_artifact

if TYPE_CHECKING:
    from mypy_boto3_ecr.type_defs import ImageDetailTypeDef, RepositoryTypeDef

    from audits.collectors import cosign

# ECR's IAM actions, one vocabulary for what the components grant and what the
# audit looks for. A statement "can pull" when it grants an action that reads
# image content, and "can push" when it grants one that writes it;
# BatchCheckLayerAvailability is needed for both but reveals or changes nothing.
IMAGE_READ_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
IMAGE_WRITE_ACTIONS = ("ecr:CompleteLayerUpload", "ecr:InitiateLayerUpload", "ecr:PutImage", "ecr:UploadLayerPart")
LAYER_CHECK_ACTION = "ecr:BatchCheckLayerAvailability"
PULL_ACTIONS = (LAYER_CHECK_ACTION, *IMAGE_READ_ACTIONS)  # what a puller is granted
PUSH_ACTIONS = (LAYER_CHECK_ACTION, *IMAGE_WRITE_ACTIONS)  # what a pusher is granted

# Condition keys that narrow *who* (or from where) a statement applies to. A
# condition on anything else (transport, time, user agent) leaves a `*` principal
# as open as it was.
_RESTRICTING_CONDITION_KEYS = frozenset(
    {
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:principaltype",
        "aws:principalservicename",
        "aws:principalisawsservice",
        "aws:userid",
        "aws:username",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceip",
        "aws:vpcsourceip",
    }
)

_RESTRICTING_CONDITION_PREFIXES = ("aws:principaltag/",)


_SIGNATURE_ARTIFACT_TYPES = {
    "application/vnd.dev.cosign.artifact.sig.v1+json": "cosign",
    "application/vnd.cncf.notary.signature": "notation",
}

_SCAN_STATUS = {
    "COMPLETE": "complete",
    "ACTIVE": "complete",  # enhanced (continuous) scanning with findings available
    "IN_PROGRESS": "pending",
    "PENDING": "pending",
    "FAILED": "failed",
    "FINDINGS_UNAVAILABLE": "failed",
    "SCAN_ELIGIBILITY_EXPIRED": "failed",
    "LIMIT_EXCEEDED": "failed",
    "UNSUPPORTED_IMAGE": "unsupported",
}

_SEVERITY_NAMES = {"informational": "info"}


# --------------------------------------------------------------------------
# Registry and repository references
# --------------------------------------------------------------------------


def registry_host(registry_id: str, region: str) -> str:
    """The registry's OCI endpoint host (what `docker login` talks to)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{registry_id}.dkr.ecr.{region}.{suffix}"


def repository_reference(repo: RepositoryTypeDef) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com/<name>`: what images are pulled (and
    cosign signatures signed) by. `repositoryUri` says it; the ARN is the fallback."""
    uri = repo.get("repositoryUri", "")
    if uri:
        return uri
    arn = repo.get("repositoryArn", "").split(":")
    name = repo.get("repositoryName", "")
    if len(arn) > 4 and arn[3] and arn[4]:
        return f"{registry_host(arn[4], arn[3])}/{name}"
    return name


# --------------------------------------------------------------------------
# Images, tags and signatures
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureArtifact:
    """A cosign signature manifest stored as an image of the repository: found by
    cosign's tag (`sha256-<hex>.sig`) or as a referrer (`subjectManifestDigest`)."""

    reference: str  # the tag, or the artifact digest for a referrer
    image_digest: str  # the signature manifest's own digest (what BatchGetImage asks for)
    subject: str  # the digest of the image it signs


def signature_artifacts(images: Iterable[ImageDetailTypeDef]) -> list[SignatureArtifact]:
    """Every cosign signature artifact among a repository's images."""
    found: list[SignatureArtifact] = []
    for img in images:
        digest = img.get("imageDigest", "")
        if not digest:
            continue
        for tag in img.get("imageTags", []):
            artifact = cosign_artifact(tag)
            if artifact and artifact[1] == "sig":
                found.append(SignatureArtifact(tag, digest, artifact[0]))
        subject = img.get("subjectManifestDigest")
        if subject and _SIGNATURE_ARTIFACT_TYPES.get(img.get("artifactMediaType", "")) == "cosign":
            found.append(SignatureArtifact(digest, digest, subject))
    return found


def build_repository_facts(
    name: str,
    images: Sequence[ImageDetailTypeDef],
    *,
    anonymous_pull: bool | None,
    declared_public: bool,
    error: str | None = None,
    source: str = "",
    verifications: Mapping[str, Sequence[cosign.Verification]] | None = None,
    unverified_reason: str | None = None,
) -> RepositoryFacts:
    """One TagFacts per release tag. cosign artifact tags (`sha256-<hex>.sig/.att/.sbom`)
    and referrer artifacts (images with `subjectManifestDigest`) are evidence about
    other images, so they are not listed as tags nor counted as untagged.

    `verifications` (signature reference -> one result per signature layer) come
    from `SignatureReader`; a signature without one stays unverified, with
    `unverified_reason` (e.g. no trusted key configured) as its verify_error."""
    all_tags = {t for img in images for t in img.get("imageTags", [])}
    referrers = _referrer_signatures(images)
    checks = verifications if verifications is not None else {}
    tags: list[TagFacts] = []
    untagged = 0
    for img in images:
        if img.get("subjectManifestDigest"):
            continue
        image_tags = img.get("imageTags", [])
        if not image_tags:
            untagged += 1
            continue
        digest = img.get("imageDigest")
        signatures = _verified(_signatures(digest, all_tags, referrers), checks, unverified_reason)
        scan = vulnerability_scan(img)
        pushed = img.get("imagePushedAt")
        for tag in image_tags:
            if cosign_artifact(tag):  # cosign's signature/attestation/SBOM tags are not images
                continue
            tags.append(
                TagFacts(
                    name=tag,
                    digest=digest,
                    media_type=img.get("imageManifestMediaType") or img.get("artifactMediaType"),
                    pushed_at=as_utc(pushed),
                    signatures=signatures,
                    scan=scan,
                )
            )
    tags.sort(key=lambda t: t.name)
    return RepositoryFacts(
        name=name,
        tags=tuple(tags),
        untagged_digests=untagged,
        anonymous_pull=anonymous_pull,
        declared_public=declared_public,
        error=error,
        source=source,
    )


def _referrer_signatures(images: Iterable[ImageDetailTypeDef]) -> dict[str, list[SignatureFacts]]:
    out: dict[str, list[SignatureFacts]] = {}
    for img in images:
        subject = img.get("subjectManifestDigest")
        fmt = _SIGNATURE_ARTIFACT_TYPES.get(img.get("artifactMediaType", ""))
        if subject and fmt:
            out.setdefault(subject, []).append(
                SignatureFacts(format=fmt, discovered_via="referrers", reference=img.get("imageDigest", ""))
            )
    return out


def _signatures(
    digest: str | None, all_tags: set[str], referrers: Mapping[str, list[SignatureFacts]]
) -> tuple[SignatureFacts, ...]:
    """Signatures found without extra calls; not verified (that needs the payload)."""
    if not digest:
        return ()
    found = list(referrers.get(digest, []))
    sig_tag = digest.replace(":", "-", 1) + ".sig"
    if sig_tag in all_tags:
        found.append(SignatureFacts(format="cosign", discovered_via="tag", reference=sig_tag))
    return tuple(found)


def _verified(
    found: Sequence[SignatureFacts],
    checks: Mapping[str, Sequence[cosign.Verification]],
    unverified_reason: str | None,
) -> tuple[SignatureFacts, ...]:
    """One SignatureFacts per verified signature layer; a cosign manifest that was
    read and holds no signature layer is no signature. Notation is not verified."""
    out: list[SignatureFacts] = []
    for sig in found:
        if sig.format == "notation":
            out.append(replace(sig, verify_error="notation signatures are not verified"))
        elif sig.reference in checks:
            out.extend(
                replace(sig, verified=c.verified, verified_by=c.verified_by, verify_error=c.error)
                for c in checks[sig.reference]
            )
        else:
            out.append(replace(sig, verify_error=unverified_reason))
    return tuple(out)


def vulnerability_scan(image: ImageDetailTypeDef) -> VulnerabilityScan:
    """ECR omits `imageScanStatus` for an image never scanned (and moto always
    omits it): that is `none`, an observation, not an unknown."""
    status_raw = image.get("imageScanStatus", {}).get("status")
    summary = image.get("imageScanFindingsSummary", {})
    counts = {
        _SEVERITY_NAMES.get(k.lower(), k.lower()): int(v) for k, v in summary.get("findingSeverityCounts", {}).items()
    }
    if status_raw is None:
        return VulnerabilityScan(status="none", severity_counts=counts)
    return VulnerabilityScan(
        status=_SCAN_STATUS.get(status_raw, "failed"),
        severity_counts=counts,
        completed_at=as_utc(summary.get("imageScanCompletedAt")),
    )


def as_utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


# --------------------------------------------------------------------------
# Normalized settings
# --------------------------------------------------------------------------

_IMMUTABLE_VALUES = frozenset({"IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION"})


def immutability_setting(repo: RepositoryTypeDef) -> ImmutabilitySetting:
    """`immutable` is the base behaviour; `exclusion_filters` are the tag wildcards
    for which the opposite holds (mutable tags under IMMUTABLE_WITH_EXCLUSION,
    immutable ones under MUTABLE_WITH_EXCLUSION). The raw value stays in `detail`."""
    raw = repo.get("imageTagMutability", "MUTABLE")
    filters = tuple(f.get("filter", "") for f in repo.get("imageTagMutabilityExclusionFilters", []))
    return ImmutabilitySetting(immutable=raw in _IMMUTABLE_VALUES, exclusion_filters=filters, detail=raw)


def encryption_setting(repo: RepositoryTypeDef) -> EncryptionSetting:
    """KMS with a key other than the AWS managed `aws/ecr` one is a customer key.

    A key ARN is taken as customer managed without a KMS DescribeKey call; an
    account that points repositories at the aws/ecr key by ARN would be
    over-credited (rare: the console and APIs default to the alias)."""
    config = repo.get("encryptionConfiguration", {})
    kind = config.get("encryptionType", "AES256")
    key = config.get("kmsKey")
    if kind.startswith("KMS"):
        if not key or "alias/aws/ecr" in key:
            return EncryptionSetting(customer_managed=False, key_id=key, detail=f"{kind} aws/ecr")
        return EncryptionSetting(customer_managed=True, key_id=key, detail=f"{kind} customer key")
    return EncryptionSetting(customer_managed=False, key_id=None, detail=kind)


# --------------------------------------------------------------------------
# Policies (IAM JSON)
# --------------------------------------------------------------------------


def load_policy(document: str | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The statements of a policy given as JSON text (URL-encoded or not) or a dict."""
    if isinstance(document, str):
        text = document.strip()
        if text.startswith("%7B") or text.startswith("%7b"):
            from urllib.parse import unquote

            text = unquote(text)
        parsed: Any = json.loads(text) if text else {}
    else:
        parsed = document
    statements = parsed.get("Statement", []) if isinstance(parsed, Mapping) else []
    if isinstance(statements, Mapping):
        statements = [statements]
    return [s for s in statements if isinstance(s, Mapping)]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _wildcard(pattern: str, value: str, *, ignore_case: bool) -> bool:
    """IAM/ECR wildcard match: `*` any run, `?` one character, nothing else special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _grants(statement: Mapping[str, Any], actions: Sequence[str]) -> bool:
    """True when the statement's Action (or NotAction) covers any of `actions`."""
    if "NotAction" in statement:
        excluded = _as_list(statement["NotAction"])
        return any(not any(_wildcard(p, a, ignore_case=True) for p in excluded) for a in actions)
    patterns = _as_list(statement.get("Action"))
    return any(_wildcard(p, a, ignore_case=True) for p in patterns for a in actions)


def _everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return "*" in _as_list(principal.get("AWS"))
    return False


def _restricts_who(condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return False
    for operator_block in condition.values():
        if not isinstance(operator_block, Mapping):
            continue
        for key in operator_block:
            k = str(key).lower()
            if k in _RESTRICTING_CONDITION_KEYS or k.startswith(_RESTRICTING_CONDITION_PREFIXES):
                return True
    return False


def grants_anonymous_pull(policy: str | Mapping[str, Any]) -> bool:
    """Whether a repository policy lets any AWS principal (`*`) pull.

    An Allow to `*` counts unless its Condition narrows who (org, account, ARN,
    VPC endpoint, source IP...); a Deny to `*` that is unconditional or narrows
    who the same way takes it back (the usual "deny outside my org" pattern).
    ECR still needs an AWS-signed token, but any AWS account would do."""
    allowed = denied = False
    for st in load_policy(policy):
        if not (_everyone(st.get("Principal")) and _grants(st, IMAGE_READ_ACTIONS)):
            continue
        effect = str(st.get("Effect", "")).lower()
        condition = st.get("Condition")
        if effect == "allow" and not _restricts_who(condition):
            allowed = True
        elif effect == "deny" and (not condition or _restricts_who(condition)):
            denied = True
    return allowed and not denied


def _covers_ecr(statement: Mapping[str, Any]) -> bool:
    if "NotResource" in statement:
        return True  # conservative: "everything but X" almost always includes ECR
    for resource in _as_list(statement.get("Resource")):
        if resource == "*":
            return True
        parts = resource.split(":")
        if len(parts) > 2 and _wildcard(parts[2], "ecr", ignore_case=True):
            return True
    return False


def grants_push(policy: str | Mapping[str, Any]) -> bool:
    """Whether an identity policy allows pushing to ECR. Conditions, Deny statements
    and permission boundaries are not evaluated: a key that *may* push is listed."""
    return any(
        str(st.get("Effect", "")).lower() == "allow" and _grants(st, IMAGE_WRITE_ACTIONS) and _covers_ecr(st)
        for st in load_policy(policy)
    )


def push_grants(
    user: Mapping[str, Any], groups: Mapping[str, Mapping[str, Any]], resolve: Callable[[str], Any]
) -> list[str]:
    """Names of the policies (inline, attached, via groups) that let `user` push."""
    found: list[str] = []

    def check(owner: Mapping[str, Any], inline_key: str, via: str) -> None:
        for inline in owner.get(inline_key, []):
            if grants_push(inline.get("PolicyDocument", {})):
                found.append(f"{via}inline {inline.get('PolicyName')}")
        for attached in owner.get("AttachedManagedPolicies", []):
            if grants_push(resolve(attached.get("PolicyArn", ""))):
                found.append(f"{via}{attached.get('PolicyName')}")

    check(user, "UserPolicyList", "")
    for group_name in user.get("GroupList", []):
        if group_name in groups:
            check(groups[group_name], "GroupPolicyList", f"group {group_name}: ")
    return found


# --------------------------------------------------------------------------
# Scanning and retention
# --------------------------------------------------------------------------


def scanning_facts(config: Mapping[str, Any], repos: Sequence[RepositoryTypeDef]) -> ScanningFacts:
    """Registry scanning rules (wildcard repository filters) plus, for BASIC, the
    legacy per-repository `scanOnPush` flag. MANUAL rules scan nothing by themselves."""
    scan_type = str(config.get("scanType", "BASIC"))
    active = [
        (str(rule.get("scanFrequency", "")), [str(f.get("filter", "")) for f in rule.get("repositoryFilters", [])])
        for rule in config.get("rules", [])
        if rule.get("scanFrequency") in ("SCAN_ON_PUSH", "CONTINUOUS_SCAN")
    ]
    modes: set[str] = set()
    uncovered: list[str] = []
    for repo in repos:
        name = repo.get("repositoryName", "")
        freqs = {f for f, filters in active if any(_wildcard(p, name, ignore_case=False) for p in filters)}
        legacy = scan_type == "BASIC" and repo.get("imageScanningConfiguration", {}).get("scanOnPush")
        if legacy:
            freqs.add("SCAN_ON_PUSH")
        if not freqs:
            uncovered.append(name)
        modes |= freqs
    if not repos:
        modes = {f for f, _ in active}
    mode = "continuous" if "CONTINUOUS_SCAN" in modes else "scan_on_push" if modes else "manual"
    rules_text = "; ".join(f"{f} on {', '.join(filters) or '(no filter)'}" for f, filters in active)
    return ScanningFacts(
        enabled=bool(modes),
        mode=mode,
        scanner="amazon-inspector" if scan_type == "ENHANCED" else "ecr-basic",
        uncovered_repositories=tuple(sorted(uncovered)),
        detail=f"{scan_type} scanning; rules: {rules_text or 'none'}",
    )


def summarize_lifecycle(text: str) -> str:
    """`"1: expire untagged images pushed more than 14 days ago; 2: ..."`."""
    try:
        rules = json.loads(text).get("rules", [])
    except (ValueError, AttributeError):
        return "lifecycle policy present (not valid JSON)"
    parts: list[str] = []
    for rule in sorted(rules, key=lambda r: int(r.get("rulePriority", 0))):
        sel = rule.get("selection", {})
        status = str(sel.get("tagStatus", "any")).lower()
        filters = [*sel.get("tagPrefixList", []), *sel.get("tagPatternList", [])]
        which = f"{status} images" + (f" ({', '.join(filters)})" if filters else "")
        number = sel.get("countNumber")
        if sel.get("countType") == "sinceImagePushed":
            when = f"pushed more than {number} {sel.get('countUnit', 'days')} ago"
        else:
            when = f"beyond the newest {number}"
        action = str(rule.get("action", {}).get("type", "expire"))
        parts.append(f"{rule.get('rulePriority', '?')}: {action} {which} {when}")
    return "; ".join(parts) or "lifecycle policy with no rules"


# --------------------------------------------------------------------------
# CloudTrail
# --------------------------------------------------------------------------


def management_events_logged(trail: Mapping[str, Any], selectors: Mapping[str, Any] | None) -> set[str]:
    """Which management events (`read`, `write`) a trail records. Pulls
    (BatchGetImage) are read events, pushes write events. A trail without custom
    selectors logs all management events (`selectors` is then not needed)."""
    if not trail.get("HasCustomEventSelectors") or selectors is None:
        return {"read", "write"}
    covered: set[str] = set()
    for sel in selectors.get("EventSelectors", []) or []:
        if sel.get("IncludeManagementEvents", True):
            rw = sel.get("ReadWriteType", "All")
            covered |= {"read", "write"} if rw == "All" else {"read"} if rw == "ReadOnly" else {"write"}
    for adv in selectors.get("AdvancedEventSelectors", []) or []:
        fields = {f.get("Field"): f for f in adv.get("FieldSelectors", [])}
        if "Management" not in fields.get("eventCategory", {}).get("Equals", []):
            continue
        read_only = fields.get("readOnly", {}).get("Equals", [])
        covered |= {"read"} if read_only == ["true"] else {"write"} if read_only == ["false"] else {"read", "write"}
    return covered


def trail_destination(trail: Mapping[str, Any]) -> str:
    parts = [f"s3://{trail['S3BucketName']}"] if trail.get("S3BucketName") else []
    if trail.get("CloudWatchLogsLogGroupArn"):
        parts.append(str(trail["CloudWatchLogsLogGroupArn"]))
    return ", ".join(parts) or str(trail.get("TrailARN", ""))


# --------------------------------------------------------------------------
# Credentials
# --------------------------------------------------------------------------


def mask_key_id(key_id: str) -> str:
    """`AKIAIOSFODNN7EXAMPLE` -> `AKIA…MPLE`: enough to find the key, useless to use it."""
    return f"{key_id[:4]}…{key_id[-4:]}" if len(key_id) >= 8 else "…"


def replication_facts(
    rules: Iterable[Mapping[str, Any]], none_detail: str = "no replication rules"
) -> ReplicationFacts:
    """ECR's `replicationConfiguration.rules` (live from DescribeRegistry, or as a
    Pulumi program declares them) as ReplicationFacts; repository filters are
    kept in `detail` since they limit what survives a regional outage."""
    destinations: list[str] = []
    notes: list[str] = []
    for rule in rules:
        for dest in rule.get("destinations") or []:
            destinations.append(f"{dest.get('registryId', '?')}/{dest.get('region', '?')}")
        filters = [str(f.get("filter", "")) for f in rule.get("repositoryFilters") or []]
        if filters:
            notes.append(f"only repositories starting with {', '.join(filters)}")
    return ReplicationFacts(
        enabled=bool(destinations),
        destinations=tuple(destinations),
        detail="; ".join(notes) or ("all repositories" if destinations else none_detail),
    )
