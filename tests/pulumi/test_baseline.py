"""The Baseline model: profiles, validation with keyed errors, opt-outs."""

from __future__ import annotations

import re

import pytest

from audits.vocabulary import matches_release_tag
from components.baseline import Baseline, BaselineError, tag_safe

PROD = {"replicate_to": ["us-west-2"]}


def test_default_is_the_strict_profile_with_no_opt_outs_but_replication() -> None:
    assert Baseline().opt_outs() == {"replicate_to": "none"}
    assert Baseline(replicate_to=("us-west-2",)).opt_outs() == {}


def test_prod_is_strictest() -> None:
    b = Baseline.for_environment("prod", PROD)
    assert b.immutable_tags and b.immutable_tag_exclusions == ()
    assert b.scan_mode == "continuous"
    assert b.require_signing and b.customer_managed_key and not b.public
    assert b.replicate_to == ("us-west-2",)
    assert b.opt_outs() == {}


def test_prod_refuses_to_default_away_replication() -> None:
    with pytest.raises(BaselineError) as info:
        Baseline.for_environment("prod", {})
    assert info.value.key == "replicate_to"
    explicit = Baseline.for_environment("prod", {"replicate_to": []})
    assert explicit.opt_outs() == {"replicate_to": "none"}


def test_dev_is_relaxed_but_immutable_and_private() -> None:
    b = Baseline.for_environment("dev")
    assert b.immutable_tags and b.immutable_tag_exclusions == ("dev-*",)
    assert not b.public
    assert b.scan_mode == "scan_on_push" and b.replicate_to == ()
    assert b.opt_outs() == {
        "immutable_tag_exclusions": "dev-...",
        "scan_mode": "scan_on_push",
        "require_signing": "false",
        "customer_managed_key": "false",
        "replicate_to": "none",
    }


def test_unknown_environment_gets_the_strict_non_prod_profile() -> None:
    assert Baseline.for_environment("airgapped") == Baseline.for_environment("staging")


def test_mutable_override_in_dev_drops_the_profile_exclusions_and_is_an_opt_out() -> None:
    b = Baseline.for_environment("dev", {"immutable_tags": False})
    assert b.immutable_tag_exclusions == ()
    assert b.opt_outs()["immutable_tags"] == "false"


def test_public_is_an_opt_out() -> None:
    assert Baseline.for_environment("staging", {"public": True}).opt_outs()["public"] == "true"


@pytest.mark.parametrize(
    ("overrides", "key", "problem"),
    [
        ({"keep_lsat": 3}, "keep_lsat", "unknown baseline key"),
        ({"keep_last": 0}, "keep_last", "positive integer"),
        ({"keep_last": True}, "keep_last", "positive integer"),
        ({"expire_untagged_days": "7"}, "expire_untagged_days", "positive integer"),
        ({"scan_mode": "manual"}, "scan_mode", "scan_on_push, continuous"),
        ({"immutable_tags": "yes"}, "immutable_tags", "true or false"),
        ({"replicate_to": "us-west-2"}, "replicate_to", "expected a list"),
        ({"replicate_to": ["mars-1"]}, "replicate_to", "region"),
        ({"replicate_to": ["us-west-2", "us-west-2"]}, "replicate_to", "twice"),
        ({"immutable_tag_exclusions": ["v*"]}, "immutable_tag_exclusions", "release tags"),
        ({"immutable_tag_exclusions": ["dev/*"]}, "immutable_tag_exclusions", "not a tag filter"),
        (
            {"immutable_tags": False, "immutable_tag_exclusions": ["dev-*"]},
            "immutable_tag_exclusions",
            "only meaningful",
        ),
    ],
)
def test_bad_overrides_name_the_key(overrides: dict[str, object], key: str, problem: str) -> None:
    with pytest.raises(BaselineError) as info:
        Baseline.for_environment("staging", overrides)
    assert info.value.key == key
    assert problem in str(info.value)
    assert str(info.value).startswith(f"{key}: ")


@pytest.mark.parametrize(
    "pattern", ["*", "v*", "1.*", "*.3", "1*", "*.*.*", "*1.2.3*", "v1.2.3", "*3"]
)
def test_exclusions_covering_release_tags_are_detected(pattern: str) -> None:
    assert matches_release_tag(pattern)


@pytest.mark.parametrize(
    "pattern", ["dev-*", "sha-*", "*-rc", "latest", "v1.2", "pr-*-build", "x*.*.*", "*-dev*"]
)
def test_exclusions_that_spare_release_tags_are_allowed(pattern: str) -> None:
    assert not matches_release_tag(pattern)
    Baseline(immutable_tag_exclusions=(pattern,))


def test_release_check_agrees_with_a_brute_force_sample() -> None:
    """Cross-check the automaton with fnmatch over concrete release tags."""
    import fnmatch

    tags = [f"{p}{a}.{b}.{c}" for p in ("", "v") for a in (0, 1, 12) for b in (0, 2) for c in (3, 40)]
    for pattern in ["*.0.*", "v1*", "*2.3", "*4*", "sha-*", "12.*", "v*.40", "*-*"]:
        sampled = any(fnmatch.fnmatchcase(t, pattern) for t in tags)
        assert matches_release_tag(pattern) == sampled, pattern


def test_tag_safe_only_keeps_characters_aws_tags_allow() -> None:
    value = tag_safe("dev-* sha-* a,b;c")
    assert re.fullmatch(r"[\w .:/=+\-@]*", value)
    assert value.startswith("dev-... sha-...")
    assert len(tag_safe("x" * 400)) == 256
