"""The audit config: good input loads, bad input gives one clear line (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from audits.cli import main
from audits.config import ConfigError, load_config
from audits.targets import DistributionTarget

GOOD = """
environment: prod
use_cases: [enterprise-internal]
frameworks: [soc2, fedramp-moderate]
thresholds: {cert_min_days: 30, credential_max_age_days: 90, max_vuln_severity: high, pull_spike_factor: 5}
trusted_keys: [keys/release.pub]
targets:
  - name: edge
    kind: distribution
    url: https://registry.internal:5000
    ca_file: certs/internal-ca.pem
    username_env: EDGE_REGISTRY_USER
    password_env: EDGE_REGISTRY_PASSWORD
    repositories: ["app/*"]
  - {name: core, kind: ecr, region: us-east-1}
  - {name: laptop, kind: docker-config, path: ~/.docker/config.json}
  - {name: manifests, kind: image-refs, paths: [k8s/, Dockerfile]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "regguard.yaml"
    path.write_text(text)
    return path


def test_design_example_loads_and_resolves_paths(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    edge = config.targets[0]
    assert isinstance(edge, DistributionTarget)
    assert edge.ca_file == tmp_path / "certs/internal-ca.pem"
    assert config.trusted_keys == [tmp_path / "keys/release.pub"]
    assert [t.kind for t in config.targets] == ["distribution", "ecr", "docker-config", "image-refs"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "targets: [{name: a, kind: distribution, url: https://h:5000, colour: red}]",
            "targets[0].colour: unknown key",
        ),
        ("targets: [{name: a, kind: ecr, region: 42}]", "targets[0].region"),
        ("targets: [{name: a, kind: floppy}]", "targets[0].kind: unknown target kind"),
        ("targets: [{name: a, kind: distribution}]", "targets[0].url: required key is missing"),
        ("environment: prod\n", "targets: required key is missing"),
        (
            "targets: [{name: a, kind: distribution, url: https://h:5000, password: hunter2}]",
            "targets[0].password: secrets must not be written in the config",
        ),
        (
            "thresholds: {cert_min_days: soon}\ntargets: [{name: a, kind: ecr, region: us-east-1}]",
            "thresholds.cert_min_days",
        ),
        ("use_cases: [mainframe]\ntargets: [{name: a, kind: ecr, region: us-east-1}]", "unknown use case 'mainframe'"),
        ("targets: [{name: a, kind: ecr, region: us-east-1}, {name: a, kind: ecr, region: us-east-1}]", "used twice"),
        ("targets: [", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_inline_secret_value_never_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "targets: [{name: a, kind: distribution, url: https://h:5000, password: canary-3141}]")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "canary-3141" not in str(info.value)


def test_cli_exit_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "targets: [{name: a, kind: distribution, url: https://h:5000, colour: red}]")
    code = main(["audit", "-c", str(path), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.count("\n") == 1 and "colour" in err


def test_cli_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["audit", "-c", str(tmp_path / "nope.yaml")])
    assert code == 2
    assert "nope.yaml: file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["--format", "pdf"], "unknown format 'pdf'"), (["--fail-on", "dire"], "unknown severity 'dire'")],
)
def test_cli_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    path = write(tmp_path, "targets: [{name: a, kind: ecr, region: us-east-1}]")
    code = main(["audit", "-c", str(path), *args])
    assert code == 2
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize(
    ("target", "hint"),
    [
        ("{name: a, kind: distribution, url: 'https://h:5000', token: t0k3n}", "username_env / password_env"),
        ("{name: a, kind: ecr, region: us-east-1, secret_access_key: s3cr3t}", "AWS credential chain"),
        ("{name: a, kind: image-refs, paths: [k8s], token: x}", "takes no secrets"),
    ],
)
def test_inline_secret_hint_names_a_key_that_exists_for_the_kind(tmp_path: Path, target: str, hint: str) -> None:
    """`token:` used to say "name it with token_env", a key no kind accepts."""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"targets: [{target}]"))
    message = str(info.value)
    assert hint in message and "token_env" not in message and "secret_access_key_env" not in message
    for key in ("username_env", "password_env"):
        if key in message:  # every key the hint names is accepted by that kind
            entry = f"{{name: a, kind: distribution, url: 'https://h', {key}: V}}"
            config = load_config(write(tmp_path, f"targets: [{entry}]"))
            assert config.targets[0].kind == "distribution"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h:5000/v2/", "the registry's base URL: http(s)://host[:port], without a path"),
        ("ftp://h", "the registry's base URL"),
    ],
)
def test_a_url_with_a_path_is_explained_in_words_not_a_regex(tmp_path: Path, url: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"targets: [{{name: a, kind: distribution, url: '{url}'}}]"))
    message = str(info.value)
    assert f"targets[0].url: expected {expected}" in message
    assert "pattern" not in message and "^" not in message


def test_a_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"targets\[0\]\.name: expected a name of letters"):
        load_config(write(tmp_path, 'targets: [{name: "edge\\n", kind: ecr, region: us-east-1}]'))


@pytest.mark.parametrize("url", ["https://h:99999", "https://h:0", "https://h:port"])
def test_a_port_out_of_range_is_a_config_error(tmp_path: Path, url: str) -> None:
    """It used to pass validation and fail the whole collector as an internal error."""
    with pytest.raises(ConfigError, match=r"targets\[0\]\.url: .*(port|expected)"):
        load_config(write(tmp_path, f"targets: [{{name: a, kind: distribution, url: '{url}'}}]"))
