"""One meaning for each shared name: "production" is the same word for the
baseline profiles, the rules and the policy pack."""

from __future__ import annotations

import pytest

from audits.rules.registry import RuleContext
from audits.vocabulary import cosign_artifact, is_production_environment
from components.baseline import Baseline, BaselineError


@pytest.mark.parametrize("env", ["prod", "production", "Production", "PROD"])
def test_production_spellings_get_the_production_baseline_and_strict_rules(env: str) -> None:
    assert is_production_environment(env)
    assert RuleContext(environment=env).is_prod_environment
    with pytest.raises(BaselineError, match="replicate_to"):  # prod requires replication
        Baseline.for_environment(env)
    assert Baseline.for_environment(env, {"replicate_to": ["us-west-2"]}).keep_last == 100


@pytest.mark.parametrize("env", ["staging", "dev", "preprod", "qa"])
def test_other_environments_are_not_production(env: str) -> None:
    assert not is_production_environment(env)
    assert not RuleContext(environment=env).is_prod_environment
    Baseline.for_environment(env)  # no replication demanded


def test_cosign_artifact_tags_name_their_subject_exactly() -> None:
    digest = "ab" * 32
    assert cosign_artifact(f"sha256-{digest}.sig") == (f"sha256:{digest}", "sig")
    assert cosign_artifact(f"sha256-{digest}.att") == (f"sha256:{digest}", "att")
    assert cosign_artifact(f"sha256-{digest}.sig\n") is None
    assert cosign_artifact(f"sha256-{digest}") is None
    assert cosign_artifact("v1.2.3") is None
