"""The shared hardening model every registry component translates.

A `Baseline` says *what* a registry must guarantee (immutable release tags,
retention, scanning, signing, a customer key, no anonymous access,
replication); each component says *how* its provider expresses that. The
secure default is the strictest profile; anything weaker is an explicit
opt-out, and `opt_outs()` names every one so components can put them in tags
where reviewers and the auditor see them.

This module imports no Pulumi or cloud SDK: it is plain data plus validation,
so the stack-config parser, the components and the policy pack share it. The
words it shares with the auditor (which environments are production, what a
release tag is) come from `audits.vocabulary`, which both sides import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args

from audits.vocabulary import is_production_environment, matches_release_tag

ScanMode = Literal["scan_on_push", "continuous"]
SCAN_MODES: tuple[str, ...] = get_args(ScanMode)

# ECR's ImageTagMutabilityExclusionFilter pattern; other providers accept a subset.
_EXCLUSION_RE = re.compile(r"^[0-9A-Za-z._*-]{1,128}$")
# AWS regions (us-west-2) and Azure regions (northeurope, westus2).
_REGION_RE = re.compile(r"^(?:[a-z]{2}(-gov)?-[a-z]+-\d|[a-z]{4,}[0-9]?)$")


class BaselineError(ValueError):
    """A bad baseline value; `key` names the offending field so callers can
    prefix it with where it came from (`regguard:registries[1].baseline.`)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class Baseline:
    """What a registry must guarantee. Defaults are the secure default."""

    immutable_tags: bool = True
    immutable_tag_exclusions: tuple[str, ...] = ()
    keep_last: int = 100
    expire_untagged_days: int = 7
    scan_mode: ScanMode = "continuous"
    require_signing: bool = True
    customer_managed_key: bool = True
    public: bool = False
    replicate_to: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_bool(self, "immutable_tags", "require_signing", "customer_managed_key", "public")
        _check_positive_int(self.keep_last, "keep_last")
        _check_positive_int(self.expire_untagged_days, "expire_untagged_days")
        if self.scan_mode not in SCAN_MODES:
            raise BaselineError("scan_mode", f"expected one of {', '.join(SCAN_MODES)}")
        _check_exclusions(self.immutable_tag_exclusions, self.immutable_tags)
        _check_regions(self.replicate_to)

    def opt_outs(self) -> dict[str, str]:
        """Every field that is weaker than the secure default, as `field -> value`.

        Values are tag-safe (AWS tag values allow letters, digits, spaces and
        `_ . : / = + - @`), so a component can write them unchanged as
        `regguard:opt-out:<field>` tags. `keep_last`/`expire_untagged_days`
        are tuning, not opt-outs: any value still sets a retention policy.
        """
        found: dict[str, str] = {}
        if not self.immutable_tags:
            found["immutable_tags"] = "false"
        if self.immutable_tag_exclusions:
            found["immutable_tag_exclusions"] = tag_safe(" ".join(self.immutable_tag_exclusions))
        if self.scan_mode != "continuous":
            found["scan_mode"] = self.scan_mode
        if not self.require_signing:
            found["require_signing"] = "false"
        if not self.customer_managed_key:
            found["customer_managed_key"] = "false"
        if self.public:
            found["public"] = "true"
        if not self.replicate_to:
            found["replicate_to"] = "none"
        return found

    def with_overrides(self, overrides: Mapping[str, Any]) -> Baseline:
        """A copy with `overrides` applied; unknown keys and wrong types raise
        BaselineError naming the key."""
        return replace(self, **_coerce_overrides(overrides))

    @classmethod
    def for_environment(cls, env: str, overrides: Mapping[str, Any] | None = None) -> Baseline:
        """The environment's profile with `overrides` on top.

        prod: the strictest profile and replication is required, so a prod
        baseline without `replicate_to` is refused (`replicate_to: []` is the
        explicit, tagged opt-out). dev: relaxed but never public and still
        immutable except `dev-*` tags. Any other name gets the staging
        profile: strict, no replication required.
        """
        if not isinstance(env, str) or not env:
            raise BaselineError("environment", "expected a non-empty string")
        overrides = dict(overrides or {})
        coerced = _coerce_overrides(overrides)
        if coerced.get("immutable_tags") is False:
            # Mutable tags make the profile's exclusions moot; drop them
            # instead of refusing the combination the user did not write.
            coerced.setdefault("immutable_tag_exclusions", ())
        baseline = replace(_PROFILES[_profile_name(env)], **coerced)
        if is_production_environment(env) and "replicate_to" not in coerced:
            raise BaselineError(
                "replicate_to",
                "prod needs one or more regions to replicate to (set [] to opt out explicitly)",
            )
        return baseline


_FIELD_NAMES = tuple(f.name for f in fields(Baseline))


def _profile_name(env: str) -> str:
    """prod (any spelling the audit treats as production), dev, else staging."""
    if is_production_environment(env):
        return "prod"
    return "dev" if env == "dev" else "staging"


def tag_safe(value: str) -> str:
    """Make `value` a valid AWS/GCP-ish tag value: `*` becomes `...` (readable
    for wildcard filters), other disallowed characters become `_`, max 256."""
    value = value.replace("*", "...")
    return re.sub(r"[^\w .:/=+\-@]", "_", value)[:256]


def _check_bool(baseline: Baseline, *names: str) -> None:
    for name in names:
        if not isinstance(getattr(baseline, name), bool):
            raise BaselineError(name, "expected true or false")


def _check_positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BaselineError(name, "expected a positive integer")


def _check_exclusions(exclusions: tuple[str, ...], immutable: bool) -> None:
    if not isinstance(exclusions, tuple):
        raise BaselineError("immutable_tag_exclusions", "expected a list of tag filters")
    if exclusions and not immutable:
        raise BaselineError(
            "immutable_tag_exclusions", "only meaningful when immutable_tags is true"
        )
    for item in exclusions:
        if not isinstance(item, str) or not _EXCLUSION_RE.match(item):
            raise BaselineError(
                "immutable_tag_exclusions",
                f"{item!r} is not a tag filter (letters, digits, . _ - and * only)",
            )
        if matches_release_tag(item):
            raise BaselineError(
                "immutable_tag_exclusions",
                f"{item!r} would make release tags (1.2.3 / v1.2.3) mutable; "
                "use a prefix such as dev-* or sha-*",
            )


def _check_regions(regions: tuple[str, ...]) -> None:
    if not isinstance(regions, tuple):
        raise BaselineError("replicate_to", "expected a list of regions")
    for region in regions:
        if not isinstance(region, str) or not _REGION_RE.match(region):
            raise BaselineError("replicate_to", f"{region!r} is not a region name like us-west-2 or northeurope")
    if len(set(regions)) != len(regions):
        raise BaselineError("replicate_to", "a region is listed twice")


def _coerce_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """YAML lists become tuples; unknown keys are refused by name. Types are
    checked by Baseline itself so the message is the same from every path."""
    if not isinstance(overrides, Mapping):
        raise BaselineError("baseline", "expected a mapping of baseline fields")
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in _FIELD_NAMES:
            raise BaselineError(
                str(key), f"unknown baseline key; expected one of {', '.join(_FIELD_NAMES)}"
            )
        if key in ("immutable_tag_exclusions", "replicate_to"):
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise BaselineError(key, "expected a list")
            value = tuple(value)
        out[key] = value
    return out


_PROFILES: dict[str, Baseline] = {
    "prod": Baseline(keep_last=100, expire_untagged_days=7),
    "staging": Baseline(keep_last=30, expire_untagged_days=7),
    "dev": Baseline(
        immutable_tag_exclusions=("dev-*",),
        keep_last=10,
        expire_untagged_days=3,
        scan_mode="scan_on_push",
        require_signing=False,
        customer_managed_key=False,
    ),
}
